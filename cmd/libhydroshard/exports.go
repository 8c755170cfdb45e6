package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#define HYDROSHARD_BUILDING 1
#include <stdlib.h>
#include "hydroshard.h"

// The C side of a handle: what hydroshard_errmsg returns lives here, so
// that it stays valid after the call that set it. A ring of messages, so
// that a message another thread is reading is not freed under it by the
// next failure.
#define HS_MAGIC 0x6879647273686172ULL
#define HS_RING 8
struct hydroshard_rank {
	uint64_t magic;
	uint64_t id;
	char *msgs[HS_RING];
	int last; // index of the last message in msgs, -1: none
};
static struct hydroshard_rank *hs_alloc(uint64_t id) {
	struct hydroshard_rank *h = calloc(1, sizeof *h);
	if (h) { h->magic = HS_MAGIC; h->id = id; h->last = -1; }
	return h;
}
static int hs_valid(const struct hydroshard_rank *h) { return h && h->magic == HS_MAGIC; }
static void hs_set_msg(struct hydroshard_rank *h, char *msg) {
	int i = (h->last + 1) % HS_RING;
	free(h->msgs[i]);
	h->msgs[i] = msg;
	h->last = i;
}
static const char *hs_msg(const struct hydroshard_rank *h) { return h->last < 0 ? "" : h->msgs[h->last]; }
static void hs_free(struct hydroshard_rank *h) {
	for (int i = 0; i < HS_RING; i++) free(h->msgs[i]);
	h->magic = 0;
	free(h);
}
static const char *hs_null_msg(void) { return "hydroshard: the handle is NULL (no handle, or hydroshard_new ran out of memory)"; }
static const char *hs_bad_msg(void) { return "hydroshard: not a hydroshard handle (freed already, or never one)"; }
*/
import "C"

import (
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/cdata"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
)

// abiVersion is HYDROSHARD_ABI_VERSION of include/hydroshard.h; a test
// checks the two agree.
const abiVersion = 1

var (
	registryMu sync.Mutex
	registry   = map[uint64]*handle{}
	nextID     atomic.Uint64
)

// lookup finds the Go side of a C handle.
func lookup(ch *C.hydroshard_rank) (*handle, error) {
	if ch == nil {
		return nil, inval("hydroshard: the handle is NULL")
	}
	if C.hs_valid(ch) == 0 {
		return nil, inval("hydroshard: not a hydroshard handle (freed already, or never one)")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	h := registry[uint64(ch.id)]
	if h == nil {
		return nil, inval("hydroshard: not a hydroshard handle (freed already)")
	}
	return h, nil
}

// result records err as the handle's message and returns its code.
func result(ch *C.hydroshard_rank, err error) C.int {
	if err == nil {
		return codeOK
	}
	setMessage(ch, errorText(err))
	return C.int(codeOf(err))
}

var msgMu sync.Mutex

func setMessage(ch *C.hydroshard_rank, msg string) {
	if ch == nil || C.hs_valid(ch) == 0 {
		return
	}
	msgMu.Lock()
	defer msgMu.Unlock()
	C.hs_set_msg(ch, C.CString(msg))
}

// guard turns a panic into HYDROSHARD_EINTERNAL: a Go panic never
// crosses into the host.
func guard(ch *C.hydroshard_rank, rc *C.int) {
	if p := recover(); p != nil {
		setMessage(ch, fmt.Sprintf("hydroshard: internal error (a bug in hydroshard; please report it with this message): %v; %s", p, debug.Stack()))
		*rc = codeInternal
	}
}

// with runs fn on the handle's Go side under its lock.
func with(ch *C.hydroshard_rank, fn func(h *handle) error) (rc C.int) {
	defer guard(ch, &rc)
	h, err := lookup(ch)
	if err != nil {
		return result(ch, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return result(ch, fn(h))
}

// count runs fn, which returns a count, under the handle's lock: -1 on
// failure.
func count(ch *C.hydroshard_rank, fn func(h *handle) (int64, error)) (n C.int64_t) {
	var got int64
	rc := with(ch, func(h *handle) error {
		var err error
		got, err = fn(h)
		return err
	})
	if rc != codeOK {
		return -1
	}
	return C.int64_t(got)
}

func goString(s *C.char, what string) (string, error) {
	if s == nil {
		return "", inval("%s is NULL", what)
	}
	return C.GoString(s), nil
}

//export hydroshard_version
func hydroshard_version() *C.char { return versionC }

// versionC is allocated once and never freed: hydroshard_version returns a
// static string.
var versionC = C.CString(manifest.Version)

//export hydroshard_abi_version
func hydroshard_abi_version() C.int { return abiVersion }

//export hydroshard_new
func hydroshard_new() *C.hydroshard_rank {
	id := nextID.Add(1)
	ch := C.hs_alloc(C.uint64_t(id))
	if ch == nil {
		return nil
	}
	registryMu.Lock()
	registry[id] = newHandle()
	registryMu.Unlock()
	return ch
}

//export hydroshard_errmsg
func hydroshard_errmsg(ch *C.hydroshard_rank) *C.char {
	switch {
	case ch == nil:
		return C.hs_null_msg()
	case C.hs_valid(ch) == 0:
		return C.hs_bad_msg()
	}
	msgMu.Lock()
	defer msgMu.Unlock()
	return C.hs_msg(ch)
}

//export hydroshard_free
func hydroshard_free(ch *C.hydroshard_rank) {
	defer func() { _ = recover() }()
	h, err := lookup(ch)
	if err != nil {
		return
	}
	h.mu.Lock()
	if !h.closed {
		_ = h.close("interrupted", "freed without close")
	}
	h.mu.Unlock()
	registryMu.Lock()
	delete(registry, uint64(ch.id))
	registryMu.Unlock()
	msgMu.Lock()
	C.hs_free(ch)
	msgMu.Unlock()
}

//export hydroshard_set_identity
func hydroshard_set_identity(ch *C.hydroshard_rank, r, world C.int) C.int {
	return with(ch, func(h *handle) error { return h.setIdentity(int(r), int(world)) })
}

//export hydroshard_set_case
func hydroshard_set_case(ch *C.hydroshard_rank, path *C.char) C.int {
	return with(ch, func(h *handle) error {
		p, err := goString(path, "hydroshard_set_case: path")
		if err != nil {
			return err
		}
		return h.setCase(p)
	})
}

//export hydroshard_set_case_json
func hydroshard_set_case_json(ch *C.hydroshard_rank, text *C.char) C.int {
	return with(ch, func(h *handle) error {
		t, err := goString(text, "hydroshard_set_case_json: json")
		if err != nil {
			return err
		}
		return h.setCaseJSON(t)
	})
}

//export hydroshard_set_int
func hydroshard_set_int(ch *C.hydroshard_rank, name *C.char, v C.int64_t) C.int {
	return with(ch, func(h *handle) error {
		n, err := goString(name, "hydroshard_set_int: name")
		if err != nil {
			return err
		}
		return h.setInt(n, int64(v))
	})
}

//export hydroshard_set_string
func hydroshard_set_string(ch *C.hydroshard_rank, name, value *C.char) C.int {
	return with(ch, func(h *handle) error {
		n, err := goString(name, "hydroshard_set_string: name")
		if err != nil {
			return err
		}
		v, err := goString(value, "hydroshard_set_string: "+n)
		if err != nil {
			return err
		}
		return h.setString(n, v)
	})
}

//export hydroshard_set_double
func hydroshard_set_double(ch *C.hydroshard_rank, name *C.char, v C.double) C.int {
	return with(ch, func(h *handle) error {
		n, err := goString(name, "hydroshard_set_double: name")
		if err != nil {
			return err
		}
		return h.setDouble(n, float64(v))
	})
}

//export hydroshard_open
func hydroshard_open(ch *C.hydroshard_rank, out *C.char) C.int {
	return with(ch, func(h *handle) error {
		o, err := goString(out, "hydroshard_open: out")
		if err != nil {
			return err
		}
		return h.open(o)
	})
}

//export hydroshard_rank_id
func hydroshard_rank_id(ch *C.hydroshard_rank) C.int {
	id := -1
	with(ch, func(h *handle) error {
		if h.r != nil {
			id = h.r.Identity().Rank
		}
		return nil
	})
	return C.int(id)
}

//export hydroshard_world
func hydroshard_world(ch *C.hydroshard_rank) C.int {
	n := -1
	with(ch, func(h *handle) error {
		if h.r != nil {
			n = h.r.Identity().World
		}
		return nil
	})
	return C.int(n)
}

//export hydroshard_case_int
func hydroshard_case_int(ch *C.hydroshard_rank, what *C.char) C.int64_t {
	return count(ch, func(h *handle) (int64, error) {
		w, err := goString(what, "hydroshard_case_int: what")
		if err != nil {
			return 0, err
		}
		return h.caseInt(w)
	})
}

// copyIDs copies ids into the caller's array of capacity n and returns how
// many there are.
func copyIDs(out *C.int32_t, capacity C.int64_t, list []int32) (int64, error) {
	if capacity < 0 || (capacity > 0 && out == nil) {
		return 0, inval("the id array is NULL or its capacity (%d) negative", int64(capacity))
	}
	if capacity > 0 {
		copy(unsafe.Slice((*int32)(unsafe.Pointer(out)), int(capacity)), list)
	}
	return int64(len(list)), nil
}

//export hydroshard_case_ids
func hydroshard_case_ids(ch *C.hydroshard_rank, entity *C.char, out *C.int32_t, capacity C.int64_t) C.int64_t {
	return count(ch, func(h *handle) (int64, error) {
		e, err := goString(entity, "hydroshard_case_ids: entity")
		if err != nil {
			return 0, err
		}
		list, err := h.caseIDs(e)
		if err != nil {
			return 0, err
		}
		return copyIDs(out, capacity, list)
	})
}

var (
	columnsMu    sync.Mutex
	columnsCache = map[string]*C.char{}
)

//export hydroshard_table_columns
func hydroshard_table_columns(entity *C.char) (s *C.char) {
	defer func() {
		if recover() != nil {
			s = nil
		}
	}()
	if entity == nil {
		return nil
	}
	e := C.GoString(entity)
	columnsMu.Lock()
	defer columnsMu.Unlock()
	if c, ok := columnsCache[e]; ok {
		return c
	}
	text, ok := columnsText(e)
	if !ok {
		return nil
	}
	// Allocated once per table and never freed: a static string.
	c := C.CString(text)
	columnsCache[e] = c
	return c
}

//export hydroshard_handle_signals
func hydroshard_handle_signals(ch *C.hydroshard_rank) C.int {
	return with(ch, func(h *handle) error { return h.handleSignals() })
}

//export hydroshard_interrupted
func hydroshard_interrupted(ch *C.hydroshard_rank) (rc C.int) {
	defer guard(ch, &rc)
	h, err := lookup(ch)
	if err != nil || !h.interrupted() {
		return 0
	}
	return 1
}

//export hydroshard_interrupt
func hydroshard_interrupt(ch *C.hydroshard_rank) C.int {
	return with(ch, func(h *handle) error { return h.interrupt() })
}

// ids copies a list of scenario ids into the caller's array.
func ids(ch *C.hydroshard_rank, out *C.int32_t, capacity C.int64_t, remaining bool) C.int64_t {
	return count(ch, func(h *handle) (int64, error) {
		list, err := h.owned(remaining)
		if err != nil {
			return 0, err
		}
		ids := make([]int32, len(list))
		for i, s := range list {
			ids[i] = int32(s)
		}
		return copyIDs(out, capacity, ids)
	})
}

//export hydroshard_owned
func hydroshard_owned(ch *C.hydroshard_rank, out *C.int32_t, capacity C.int64_t) C.int64_t {
	return ids(ch, out, capacity, false)
}

//export hydroshard_remaining
func hydroshard_remaining(ch *C.hydroshard_rank, out *C.int32_t, capacity C.int64_t) C.int64_t {
	return ids(ch, out, capacity, true)
}

//export hydroshard_is_committed
func hydroshard_is_committed(ch *C.hydroshard_rank, scenario C.int) C.int {
	n := count(ch, func(h *handle) (int64, error) {
		ok, err := h.isCommitted(int(scenario))
		if ok {
			return 1, err
		}
		return 0, err
	})
	return C.int(n)
}

//export hydroshard_table
func hydroshard_table(ch *C.hydroshard_rank, scenario C.int, entity *C.char, rows C.int64_t, columns *C.char, data *unsafe.Pointer, valid *unsafe.Pointer) C.int {
	return with(ch, func(h *handle) error {
		e, err := goString(entity, "hydroshard_table: entity")
		if err != nil {
			return err
		}
		cl, err := goString(columns, fmt.Sprintf("hydroshard_table: scenario %d: %s: columns", int(scenario), e))
		if err != nil {
			return err
		}
		names := splitColumns(cl)
		if len(names) > 0 && data == nil {
			return inval("hydroshard_table: scenario %d: %s: data is NULL for %d columns", int(scenario), e, len(names))
		}
		var d, v []unsafe.Pointer
		if len(names) > 0 {
			d = unsafe.Slice(data, len(names))
			if valid != nil {
				v = unsafe.Slice(valid, len(names))
			}
		}
		return h.addTable(int(scenario), e, func(s slot, back *[]func()) (reflect.Value, error) {
			return plainTable(s, int64(rows), names, d, v, copies{borrow: h.borrow, bufs: &h.bufs, back: back})
		})
	})
}

//export hydroshard_table_arrow
func hydroshard_table_arrow(ch *C.hydroshard_rank, scenario C.int, entity *C.char, arr *C.struct_ArrowArray, sch *C.struct_ArrowSchema) C.int {
	carr := (*cdata.CArrowArray)(unsafe.Pointer(arr))
	csch := (*cdata.CArrowSchema)(unsafe.Pointer(sch))
	// The library takes both structs whatever happens: released here on
	// failure, the schema at once and the array after the commit on
	// success.
	imported := false
	defer func() {
		if !imported {
			if carr != nil {
				cdata.ReleaseCArrowArray(carr)
			}
			if csch != nil {
				cdata.ReleaseCArrowSchema(csch)
			}
		}
	}()
	return with(ch, func(h *handle) error {
		e, err := goString(entity, "hydroshard_table_arrow: entity")
		if err != nil {
			return err
		}
		if carr == nil || csch == nil {
			return inval("hydroshard_table_arrow: scenario %d: %s: the ArrowArray or ArrowSchema is NULL", int(scenario), e)
		}
		if _, err := tableFor(e); err != nil {
			return inval("scenario %d: %v", int(scenario), err)
		}
		if err := checkArrowShape(carr, csch); err != nil {
			return inval("hydroshard_table_arrow: scenario %d: %s: %v", int(scenario), e, err)
		}
		rec, err := importRecord(carr, csch)
		imported = true // the schema is released by the import, the array moved or released
		if err != nil {
			cdata.ReleaseCArrowArray(carr)
			return inval("hydroshard_table_arrow: scenario %d: %s: not a record batch of the C Data Interface: %v", int(scenario), e, err)
		}
		return h.addTable(int(scenario), e, func(s slot, back *[]func()) (reflect.Value, error) {
			*back = append(*back, rec.Release)
			return arrowTable(s, rec)
		})
	})
}

// importRecord imports a record batch; arrow-go panics on some malformed
// input (children of another length than the struct), which is the
// caller's error, not a bug here.
func importRecord(carr *cdata.CArrowArray, csch *cdata.CArrowSchema) (rec arrow.RecordBatch, err error) {
	defer func() {
		if p := recover(); p != nil {
			rec, err = nil, fmt.Errorf("malformed: %v", p)
		}
	}()
	return cdata.ImportCRecordBatch(carr, csch)
}

// checkArrowShape checks what the import would trip on, naming the column:
// a struct whose schema and array disagree on the children, or a child
// shorter than the struct.
func checkArrowShape(carr *cdata.CArrowArray, csch *cdata.CArrowSchema) error {
	a := (*C.struct_ArrowArray)(unsafe.Pointer(carr))
	s := (*C.struct_ArrowSchema)(unsafe.Pointer(csch))
	if a.release == nil || s.release == nil {
		return fmt.Errorf("the ArrowArray or ArrowSchema is released already (its release is NULL)")
	}
	if s.n_children != a.n_children {
		return fmt.Errorf("the schema has %d children, the array %d", int64(s.n_children), int64(a.n_children))
	}
	if a.n_children < 0 || a.n_children > 1<<16 || (a.n_children > 0 && (a.children == nil || s.children == nil)) {
		return fmt.Errorf("%d children, or NULL children", int64(a.n_children))
	}
	if a.length < 0 || a.offset < 0 {
		return fmt.Errorf("length %d, offset %d: want >= 0", int64(a.length), int64(a.offset))
	}
	n := int(a.n_children)
	achildren := unsafe.Slice(a.children, n)
	schildren := unsafe.Slice(s.children, n)
	for i := 0; i < n; i++ {
		if achildren[i] == nil || schildren[i] == nil {
			return fmt.Errorf("child %d is NULL", i)
		}
		name := "?"
		if schildren[i].name != nil {
			name = C.GoString(schildren[i].name)
		}
		if got, want := int64(achildren[i].length), int64(a.offset+a.length); got < want {
			return fmt.Errorf("column %q has %d rows, want %d (the length of the record batch)", name, got, want)
		}
	}
	return nil
}

//export hydroshard_write_scenario
func hydroshard_write_scenario(ch *C.hydroshard_rank, scenario C.int) C.int {
	return with(ch, func(h *handle) error { return h.writeScenario(int(scenario)) })
}

//export hydroshard_discard_scenario
func hydroshard_discard_scenario(ch *C.hydroshard_rank, scenario C.int) C.int {
	return with(ch, func(h *handle) error { return h.discard(int(scenario)) })
}

//export hydroshard_flush
func hydroshard_flush(ch *C.hydroshard_rank) C.int {
	return with(ch, func(h *handle) error { return h.flush() })
}

//export hydroshard_last_iteration
func hydroshard_last_iteration(ch *C.hydroshard_rank) C.int64_t {
	return count(ch, func(h *handle) (int64, error) {
		n, err := h.lastIteration()
		return int64(n), err
	})
}

//export hydroshard_write_iteration_json
func hydroshard_write_iteration_json(ch *C.hydroshard_rank, text *C.char) C.int {
	return with(ch, func(h *handle) error {
		t, err := goString(text, "hydroshard_write_iteration_json: json")
		if err != nil {
			return err
		}
		return h.writeIteration(t)
	})
}

// floats copies n*dim doubles (nil when p is NULL).
func floats(p *C.double, n int) []float64 {
	if p == nil || n == 0 {
		return nil
	}
	return append([]float64(nil), unsafe.Slice((*float64)(unsafe.Pointer(p)), n)...)
}

//export hydroshard_checkpoint_stage
func hydroshard_checkpoint_stage(ch *C.hydroshard_rank, iteration, stage C.int, capacity, warm C.uint32_t,
	ncuts C.int64_t, dim C.int, cutIDs *C.uint64_t, slotIdx, iters, fwd *C.uint32_t,
	intercepts, coefficients, statesAt *C.double, active *C.uint8_t) C.int {
	return with(ch, func(h *handle) error {
		it, st, n, d := int(iteration), int(stage), int64(ncuts), int(dim)
		where := fmt.Sprintf("hydroshard_checkpoint_stage: checkpoint %d: stage %d", it, st)
		if n < 0 || n > maxRows || d < 0 || d > 1<<20 || n*int64(d) > 1<<31 {
			return inval("%s: %d cuts of dimension %d: out of range", where, n, d)
		}
		if n > 0 && (cutIDs == nil || slotIdx == nil || iters == nil || fwd == nil || intercepts == nil || active == nil || (coefficients == nil && d > 0)) {
			return inval("%s: a NULL array for %d cuts (only states_at_generation may be NULL)", where, n)
		}
		cuts := policy.StageCuts{StageID: uint32(st), StateDimension: uint32(d), Capacity: uint32(capacity), WarmStartCount: uint32(warm)}
		if n > 0 {
			idv := unsafe.Slice((*uint64)(unsafe.Pointer(cutIDs)), n)
			sv := unsafe.Slice((*uint32)(unsafe.Pointer(slotIdx)), n)
			iv := unsafe.Slice((*uint32)(unsafe.Pointer(iters)), n)
			fv := unsafe.Slice((*uint32)(unsafe.Pointer(fwd)), n)
			bv := unsafe.Slice((*float64)(unsafe.Pointer(intercepts)), n)
			av := unsafe.Slice((*uint8)(unsafe.Pointer(active)), n)
			coef := floats(coefficients, int(n)*d)
			sat := floats(statesAt, int(n)*d)
			cuts.Cuts = make([]policy.Cut, n)
			for i := range cuts.Cuts {
				if av[i] > 1 {
					return inval("%s: cut %d: active is %d: want 0 or 1", where, i, av[i])
				}
				c := policy.Cut{CutID: idv[i], SlotIndex: sv[i], Iteration: iv[i], ForwardPassIndex: fv[i], Intercept: bv[i], IsActive: av[i] == 1}
				if d > 0 {
					c.Coefficients = coef[i*d : (i+1)*d : (i+1)*d]
					if sat != nil {
						c.StateAtGeneration = sat[i*d : (i+1)*d : (i+1)*d]
					}
				}
				cuts.Cuts[i] = c
			}
		}
		return h.addCuts(it, st, cuts)
	})
}

//export hydroshard_checkpoint_meta_json
func hydroshard_checkpoint_meta_json(ch *C.hydroshard_rank, iteration C.int, text *C.char) C.int {
	return with(ch, func(h *handle) error {
		t, err := goString(text, "hydroshard_checkpoint_meta_json: json")
		if err != nil {
			return err
		}
		return h.addMeta(int(iteration), t)
	})
}

//export hydroshard_checkpoint_basis
func hydroshard_checkpoint_basis(ch *C.hydroshard_rank, iteration, stage C.int, basisIteration C.uint32_t,
	ncols C.int64_t, colStatus *C.uint8_t, nrows C.int64_t, rowStatus *C.uint8_t, numCutRows C.uint32_t) C.int {
	return with(ch, func(h *handle) error {
		where := fmt.Sprintf("hydroshard_checkpoint_basis: checkpoint %d: stage %d", int(iteration), int(stage))
		if ncols < 0 || nrows < 0 || ncols > maxRows || nrows > maxRows {
			return inval("%s: %d columns, %d rows: out of range", where, int64(ncols), int64(nrows))
		}
		if (ncols > 0 && colStatus == nil) || (nrows > 0 && rowStatus == nil) {
			return inval("%s: a status array is NULL", where)
		}
		b := policy.StageBasis{StageID: uint32(stage), Iteration: uint32(basisIteration), NumCutRows: uint32(numCutRows)}
		if ncols > 0 {
			b.ColumnStatus = append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(colStatus)), int(ncols))...)
		}
		if nrows > 0 {
			b.RowStatus = append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(rowStatus)), int(nrows))...)
		}
		return h.addBasis(int(iteration), int(stage), b)
	})
}

//export hydroshard_checkpoint_states
func hydroshard_checkpoint_states(ch *C.hydroshard_rank, iteration, stage C.int, n C.int64_t, dim C.int, data *C.double) C.int {
	return with(ch, func(h *handle) error {
		where := fmt.Sprintf("hydroshard_checkpoint_states: checkpoint %d: stage %d", int(iteration), int(stage))
		if n < 0 || dim < 0 || int64(n)*int64(dim) > 1<<31 {
			return inval("%s: %d states of dimension %d: out of range", where, int64(n), int(dim))
		}
		if n > 0 && dim > 0 && data == nil {
			return inval("%s: data is NULL", where)
		}
		s := policy.StageStates{StageID: uint32(stage), StateDimension: uint32(dim), Data: floats(data, int(n)*int(dim))}
		return h.addStates(int(iteration), int(stage), s)
	})
}

//export hydroshard_write_checkpoint
func hydroshard_write_checkpoint(ch *C.hydroshard_rank, iteration C.int) C.int {
	return with(ch, func(h *handle) error { return h.writeCheckpoint(int(iteration)) })
}

//export hydroshard_close
func hydroshard_close(ch *C.hydroshard_rank) C.int {
	return with(ch, func(h *handle) error { return h.close("", "") })
}

//export hydroshard_close_interrupted
func hydroshard_close_interrupted(ch *C.hydroshard_rank, reason *C.char) C.int {
	return with(ch, func(h *handle) error {
		r := "interrupted"
		if reason != nil {
			r = C.GoString(reason)
		}
		return h.close("interrupted", r)
	})
}

//export hydroshard_close_terminated
func hydroshard_close_terminated(ch *C.hydroshard_rank, termination *C.char) C.int {
	return with(ch, func(h *handle) error {
		t, err := goString(termination, "hydroshard_close_terminated: termination")
		if err != nil {
			return err
		}
		return h.close("terminated", t)
	})
}

func main() {}
