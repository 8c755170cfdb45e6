package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// Return codes, as hydroshard.h defines them.
const (
	codeOK          = 0
	codeInval       = 1
	codeCase        = 2
	codeIdentity    = 3
	codeCommitted   = 4
	codeClosed      = 5
	codeIO          = 6
	codeInterrupted = 7
	codeInternal    = 8
)

// apiError carries the return code a failure maps to when the error's
// type alone does not say it.
type apiError struct {
	code int
	err  error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func inval(format string, args ...any) error {
	return &apiError{codeInval, fmt.Errorf(format, args...)}
}

// codeOf maps an error of the Go API to the C return code.
func codeOf(err error) int {
	var ae *apiError
	var colErr *shard.ColumnError
	var valErr *shard.ValueError
	var rowErr *shard.BadRowError
	var idErr *rank.IdentityError
	var worldErr *rank.WorldMismatchError
	var caseErr *rank.CaseMismatchError
	var ckErr *rank.CheckpointError
	var itErr *rank.IterationError
	var scErr *rank.ScenarioError
	var rerunErr *rank.RerunListError
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	var sysErr *os.SyscallError
	var errno syscall.Errno
	switch {
	case err == nil:
		return codeOK
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, rank.ErrCommitted):
		return codeCommitted
	case errors.Is(err, rank.ErrClosed):
		return codeClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return codeInterrupted
	case errors.As(err, &idErr), errors.As(err, &worldErr), errors.As(err, &caseErr):
		return codeIdentity
	case errors.As(err, &rerunErr):
		return codeInval // a bad or missing rerun list is the caller's
	case errors.As(err, &pathErr), errors.As(err, &linkErr), errors.As(err, &sysErr), errors.As(err, &errno):
		// Before the input errors: a ScenarioError or CheckpointError may
		// wrap a failed write ("committed, but publishing ...").
		return codeIO
	case errors.As(err, &colErr), errors.As(err, &valErr), errors.As(err, &rowErr),
		errors.As(err, &ckErr), errors.As(err, &itErr), errors.As(err, &scErr),
		errors.Is(err, rank.ErrIterationOrder), errors.Is(err, rank.ErrCheckpointOrder):
		return codeInval
	}
	return codeIO
}

// handle is the Go side of one hydroshard_rank.
type handle struct {
	mu     sync.Mutex
	opts   hydroshard.RankOptions
	borrow bool
	r      *hydroshard.Rank
	ctx    context.Context
	stop   func() // ends signal handling; nil without it
	sim    *rank.Writer
	train  *rank.TrainingWriter
	closed bool

	// pending holds the tables given for scenarios not written yet.
	pending map[int]*pendingScenario
	// held keeps, per written scenario, what to release once it is
	// committed (the writer reads the buffers until then): its Arrow data
	// and its copied columns' buffers.
	held map[int][]func()
	// bufs are the copied columns' buffers, reused from scenario to
	// scenario.
	bufs buffers
	// ckpt holds the checkpoint parts given per iteration.
	ckpt map[int]*pendingCheckpoint
}

type pendingScenario struct {
	s shard.Scenario
	// back releases what the tables hold: Arrow records, copy buffers.
	back []func()
}

func (p *pendingScenario) release() {
	for _, f := range p.back {
		f()
	}
	p.back = nil
}

type pendingCheckpoint struct {
	cuts   map[int]policy.StageCuts
	basis  map[int]policy.StageBasis
	states map[int]policy.StageStates
	meta   *manifest.PolicyMeta
}

func newHandle() *handle {
	return &handle{
		ctx:     context.Background(),
		pending: map[int]*pendingScenario{},
		held:    map[int][]func(){},
		ckpt:    map[int]*pendingCheckpoint{},
	}
}

// usable refuses calls on a closed handle.
func (h *handle) usable(call string) error {
	if h.closed {
		return fmt.Errorf("%s: %w", call, rank.ErrClosed)
	}
	return nil
}

func (h *handle) opened(call string) error {
	if err := h.usable(call); err != nil {
		return err
	}
	if h.r == nil {
		return inval("%s: the rank is not open: call hydroshard_open first", call)
	}
	return nil
}

func (h *handle) notOpened(call string) error {
	if err := h.usable(call); err != nil {
		return err
	}
	if h.r != nil {
		return inval("%s: the rank is already open: options are set before hydroshard_open", call)
	}
	return nil
}

func (h *handle) setIdentity(r, world int) error {
	if err := h.notOpened("hydroshard_set_identity"); err != nil {
		return err
	}
	id, err := rank.Explicit(r, world)
	if err != nil {
		return err
	}
	h.opts.Identity = &id
	return nil
}

func (h *handle) setCase(path string) error {
	if err := h.notOpened("hydroshard_set_case"); err != nil {
		return err
	}
	c, err := hydroshard.LoadCase(path)
	if err != nil {
		return &apiError{codeCase, err}
	}
	if err := c.Validate(); err != nil {
		return &apiError{codeCase, fmt.Errorf("case %s: %w", path, err)}
	}
	h.opts.Case = c
	return nil
}

func (h *handle) setCaseJSON(text string) error {
	if err := h.notOpened("hydroshard_set_case_json"); err != nil {
		return err
	}
	c, err := manifest.DecodeCase(strings.NewReader(text))
	if err != nil {
		return &apiError{codeCase, fmt.Errorf("case JSON: %w", err)}
	}
	if err := c.Validate(); err != nil {
		return &apiError{codeCase, fmt.Errorf("case JSON: %w", err)}
	}
	h.opts.Case = c
	return nil
}

func (h *handle) setInt(name string, v int64) error {
	if err := h.notOpened("hydroshard_set_int"); err != nil {
		return err
	}
	small := func() (int, error) {
		if v < 0 || v > 1<<31-1 {
			return 0, inval("hydroshard_set_int: %s = %d: want 0..%d", name, v, 1<<31-1)
		}
		return int(v), nil
	}
	var err error
	var n int
	switch name {
	case "seed":
		if v < 0 {
			return inval("hydroshard_set_int: seed = %d: want >= 0", v)
		}
		h.opts.Training.Seed = uint64(v)
		return nil
	case "borrow":
		if v != 0 && v != 1 {
			return inval("hydroshard_set_int: borrow = %d: want 0 or 1", v)
		}
		h.borrow = v == 1
		return nil
	}
	if n, err = small(); err != nil {
		return err
	}
	switch name {
	case "scenarios":
		h.opts.Scenarios = n
	case "scenario_pad":
		h.opts.ScenarioPad = n
	case "workers":
		h.opts.Workers = n
	case "queue":
		h.opts.Queue = n
	case "threads":
		h.opts.Threads = n
	case "forward_passes":
		h.opts.Training.ForwardPasses = n
	case "max_iterations":
		h.opts.Training.MaxIterations = n
	default:
		return inval("hydroshard_set_int: unknown option %q (scenarios, scenario_pad, workers, queue, threads, borrow, forward_passes, max_iterations, seed)", name)
	}
	return nil
}

func (h *handle) setString(name, v string) error {
	if err := h.notOpened("hydroshard_set_string"); err != nil {
		return err
	}
	switch name {
	case "ownership":
		o, err := rank.ParseOwnership(v)
		if err != nil {
			return inval("hydroshard_set_string: ownership: %v", err)
		}
		h.opts.Ownership = o
	case "rerun_file":
		h.opts.RerunFile = v
	case "solver":
		h.opts.Solver = v
	case "stopping_mode":
		h.opts.Training.StoppingMode = v
	case "policy_mode":
		h.opts.Training.PolicyMode = v
	default:
		return inval("hydroshard_set_string: unknown option %q (ownership, rerun_file, solver, stopping_mode, policy_mode)", name)
	}
	return nil
}

func (h *handle) setDouble(name string, v float64) error {
	if err := h.notOpened("hydroshard_set_double"); err != nil {
		return err
	}
	switch name {
	case "gap_tolerance_percent":
		h.opts.Training.GapTolerance = v
	default:
		return inval("hydroshard_set_double: unknown option %q (gap_tolerance_percent)", name)
	}
	return nil
}

func (h *handle) open(out string) error {
	if err := h.notOpened("hydroshard_open"); err != nil {
		return err
	}
	if out == "" {
		return inval("hydroshard_open: no output directory")
	}
	if h.opts.Case == nil {
		return inval("hydroshard_open: no case: call hydroshard_set_case or hydroshard_set_case_json first")
	}
	if h.opts.Identity == nil {
		h.opts.Env = os.LookupEnv
	}
	r, err := hydroshard.OpenRank(h.ctx, out, h.opts)
	if err != nil {
		return err
	}
	h.r = r
	return nil
}

func (h *handle) simulation(call string) (*rank.Writer, error) {
	if err := h.opened(call); err != nil {
		return nil, err
	}
	if h.sim == nil {
		if h.opts.Scenarios <= 0 {
			return nil, inval("%s: the simulation needs the run's scenario count: hydroshard_set_int(h, \"scenarios\", N) before hydroshard_open", call)
		}
		w, err := h.r.Simulation(h.ctx)
		if err != nil {
			return nil, err
		}
		h.sim = w
	}
	return h.sim, nil
}

func (h *handle) training(call string) (*rank.TrainingWriter, error) {
	if err := h.opened(call); err != nil {
		return nil, err
	}
	if h.train == nil {
		if h.r.Identity().Rank == 0 && h.opts.Training.ForwardPasses < 1 {
			return nil, inval("%s: the root rank (rank 0) opens the training writer with the training configuration: hydroshard_set_int(h, \"forward_passes\", N) before hydroshard_open", call)
		}
		w, err := h.r.Training(h.ctx)
		if err != nil {
			return nil, err
		}
		h.train = w
	}
	return h.train, nil
}

func (h *handle) handleSignals() error {
	if err := h.opened("hydroshard_handle_signals"); err != nil {
		return err
	}
	if h.stop != nil {
		return nil
	}
	h.ctx, h.stop = h.r.HandleSignals(h.ctx)
	return nil
}

func (h *handle) interrupt() error {
	if err := h.opened("hydroshard_interrupt"); err != nil {
		return err
	}
	if h.sim != nil {
		h.sim.Interrupt()
	}
	if h.train != nil {
		h.train.Interrupt()
	}
	return nil
}

// interrupted holds h.mu only to read h.r: a solver polls it from any
// thread, and must not wait on a call that blocks (those release h.mu).
func (h *handle) interrupted() bool {
	h.mu.Lock()
	r := h.r
	h.mu.Unlock()
	return r != nil && r.Interrupted()
}

func (h *handle) owned(remaining bool) ([]int, error) {
	w, err := h.simulation("hydroshard_owned")
	if err != nil {
		return nil, err
	}
	if remaining {
		return w.Remaining(), nil
	}
	return w.Owned(), nil
}

func (h *handle) isCommitted(s int) (bool, error) {
	w, err := h.simulation("hydroshard_is_committed")
	if err != nil {
		return false, err
	}
	return w.IsCommitted(s), nil
}

// addTable records one table of a scenario not written yet. build makes
// the rows, adding to back what must be released once the writer is done
// with them.
func (h *handle) addTable(scenario int, entity string, build func(s slot, back *[]func()) (reflect.Value, error)) error {
	if err := h.opened("hydroshard_table"); err != nil {
		return err
	}
	s, err := tableFor(entity)
	if err != nil {
		return inval("scenario %d: %v", scenario, err)
	}
	p := h.pending[scenario]
	if p != nil && !reflect.ValueOf(p.s).Field(s.field).IsNil() {
		return inval("scenario %d: table %s given twice", scenario, entity)
	}
	var back []func()
	rv, err := build(s, &back)
	if err != nil {
		for _, f := range back {
			f()
		}
		return &apiError{codeInval, fmt.Errorf("scenario %d: %w", scenario, err)}
	}
	if p == nil {
		p = &pendingScenario{}
		h.pending[scenario] = p
	}
	reflect.ValueOf(&p.s).Elem().Field(s.field).Set(rv)
	p.back = append(p.back, back...)
	return nil
}

func (h *handle) writeScenario(scenario int) error {
	w, err := h.simulation("hydroshard_write_scenario")
	if err != nil {
		return err
	}
	p := h.pending[scenario]
	if p == nil {
		return inval("hydroshard_write_scenario: scenario %d: %v", scenario, errNoTables)
	}
	p.s.ID = scenario
	// The lock is released while the writer may block on a full queue,
	// so other threads can build their scenarios meanwhile.
	delete(h.pending, scenario)
	ctx := h.ctx
	h.mu.Unlock()
	err = w.WriteScenario(ctx, &p.s)
	h.mu.Lock()
	switch {
	case err == nil:
		if len(p.back) > 0 {
			h.held[scenario] = p.back
		}
	case errors.Is(err, rank.ErrCommitted):
		p.release()
	default:
		if h.pending[scenario] == nil && !h.closed {
			h.pending[scenario] = p
		} else {
			p.release()
		}
	}
	h.releaseCommitted(false)
	return err
}

// releaseCommitted releases what committed scenarios held (every
// scenario's when all is set: nothing queued refers to them any more).
func (h *handle) releaseCommitted(all bool) {
	for s, back := range h.held {
		if all || (h.sim != nil && h.sim.IsCommitted(s)) {
			for _, f := range back {
				f()
			}
			delete(h.held, s)
		}
	}
}

func (h *handle) discard(scenario int) error {
	if err := h.usable("hydroshard_discard_scenario"); err != nil {
		return err
	}
	p := h.pending[scenario]
	if p == nil {
		return inval("hydroshard_discard_scenario: scenario %d: no table is pending", scenario)
	}
	p.release()
	delete(h.pending, scenario)
	return nil
}

func (h *handle) flush() error {
	w, err := h.simulation("hydroshard_flush")
	if err != nil {
		return err
	}
	ctx := h.ctx
	h.mu.Unlock()
	err = w.Flush(ctx)
	h.mu.Lock()
	h.releaseCommitted(err == nil)
	return err
}

// decodeStrict decodes one JSON object, refusing unknown fields and
// trailing data.
func decodeStrict(what, text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return inval("%s: %v", what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return inval("%s: data after the JSON object", what)
	}
	return nil
}

func (h *handle) lastIteration() (int, error) {
	w, err := h.training("hydroshard_last_iteration")
	if err != nil {
		return 0, err
	}
	return w.LastIteration(), nil
}

func (h *handle) writeIteration(text string) error {
	w, err := h.training("hydroshard_write_iteration_json")
	if err != nil {
		return err
	}
	var info manifest.IterationInfo
	if err := decodeStrict("hydroshard_write_iteration_json", text, &info); err != nil {
		return err
	}
	return w.WriteIteration(h.ctx, info)
}

func (h *handle) checkpoint(iteration int) *pendingCheckpoint {
	p := h.ckpt[iteration]
	if p == nil {
		p = &pendingCheckpoint{cuts: map[int]policy.StageCuts{}, basis: map[int]policy.StageBasis{}, states: map[int]policy.StageStates{}}
		h.ckpt[iteration] = p
	}
	return p
}

// checkStage bounds a stage number by the case.
func (h *handle) checkStage(call string, iteration, stage int) error {
	if err := h.opened(call); err != nil {
		return err
	}
	if n := h.r.Case().Stages; stage < 0 || stage >= n {
		return inval("%s: checkpoint %d: stage %d: the case has stages 0..%d", call, iteration, stage, n-1)
	}
	return nil
}

// addStagePart records one stage's part of a checkpoint (its cuts, basis
// or states, as part picks the map), once per stage.
func addStagePart[T any](h *handle, call string, iteration, stage int, part func(*pendingCheckpoint) map[int]T, v T) error {
	if err := h.checkStage(call, iteration, stage); err != nil {
		return err
	}
	m := part(h.checkpoint(iteration))
	if _, ok := m[stage]; ok {
		return inval("%s: checkpoint %d: stage %d given twice", call, iteration, stage)
	}
	m[stage] = v
	return nil
}

func (h *handle) addCuts(iteration, stage int, cuts policy.StageCuts) error {
	return addStagePart(h, "hydroshard_checkpoint_stage", iteration, stage, func(p *pendingCheckpoint) map[int]policy.StageCuts { return p.cuts }, cuts)
}

func (h *handle) addBasis(iteration, stage int, b policy.StageBasis) error {
	return addStagePart(h, "hydroshard_checkpoint_basis", iteration, stage, func(p *pendingCheckpoint) map[int]policy.StageBasis { return p.basis }, b)
}

func (h *handle) addStates(iteration, stage int, st policy.StageStates) error {
	return addStagePart(h, "hydroshard_checkpoint_states", iteration, stage, func(p *pendingCheckpoint) map[int]policy.StageStates { return p.states }, st)
}

func (h *handle) addMeta(iteration int, text string) error {
	if err := h.opened("hydroshard_checkpoint_meta_json"); err != nil {
		return err
	}
	var m manifest.PolicyMeta
	if err := decodeStrict("hydroshard_checkpoint_meta_json", text, &m); err != nil {
		return err
	}
	h.checkpoint(iteration).meta = &m
	return nil
}

// inOrder lists a map's values by stage.
func inOrder[T any](m map[int]T) []T {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func (h *handle) writeCheckpoint(iteration int) error {
	w, err := h.training("hydroshard_write_checkpoint")
	if err != nil {
		return err
	}
	p := h.ckpt[iteration]
	if p == nil {
		return inval("hydroshard_write_checkpoint: checkpoint %d: no stage was given (hydroshard_checkpoint_stage first)", iteration)
	}
	if n := h.r.Case().Stages; len(p.cuts) != n {
		var missing []string
		for st := 0; st < n; st++ {
			if _, ok := p.cuts[st]; !ok {
				missing = append(missing, fmt.Sprint(st))
			}
		}
		return inval("hydroshard_write_checkpoint: checkpoint %d: no cuts given for stage %s (every stage is given, with 0 cuts when it has none)", iteration, strings.Join(missing, ", "))
	}
	var basis []policy.StageBasis
	var states []policy.StageStates
	if len(p.basis) > 0 {
		basis = inOrder(p.basis)
	}
	if len(p.states) > 0 {
		states = inOrder(p.states)
	}
	err = w.WriteCheckpoint(h.ctx, iteration, inOrder(p.cuts), basis, states, p.meta)
	if err == nil || codeOf(err) != codeInval {
		delete(h.ckpt, iteration)
	}
	return err
}

// close ends the rank: how says which way ("" clean; "interrupted" with
// reason; "terminated" with the termination of the training).
func (h *handle) close(how, reason string) error {
	if err := h.usable("hydroshard_close"); err != nil {
		return err
	}
	var errs []error
	keep := func(err error) {
		if err != nil && !errors.Is(err, rank.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if h.r == nil {
		h.closed = true
		h.dropPending()
		return nil
	}
	switch how {
	case "interrupted":
		if h.train != nil {
			keep(h.train.CloseInterrupted(reason))
		}
		if h.sim != nil {
			keep(h.sim.CloseInterrupted(reason))
		}
	case "terminated":
		w, err := h.training("hydroshard_close_terminated")
		if err != nil {
			keep(err)
		} else {
			keep(w.CloseTerminated(reason))
		}
	}
	h.closed = true
	ctx := h.ctx
	h.mu.Unlock()
	keep(h.r.Close(ctx))
	h.mu.Lock()
	if h.stop != nil {
		h.stop()
	}
	// Every writer is closed: nothing reads the borrowed data any more.
	h.releaseCommitted(true)
	h.dropPending()
	return errors.Join(errs...)
}

func (h *handle) dropPending() {
	for s, p := range h.pending {
		p.release()
		delete(h.pending, s)
	}
	h.ckpt = map[int]*pendingCheckpoint{}
}

// errorText is the message C callers read: one line, the Go error, with
// the Go API's advice put in the C API's words.
func errorText(err error) string {
	s := strings.ReplaceAll(err.Error(), "rank.Explicit(rank, world)", "hydroshard_set_identity(h, rank, world)")
	return strings.ReplaceAll(s, "\n", "; ")
}

// theCase is the case set on the handle (before or after open).
func (h *handle) theCase(call string) (*manifest.Case, error) {
	if err := h.usable(call); err != nil {
		return nil, err
	}
	if h.opts.Case == nil {
		return nil, inval("%s: no case: call hydroshard_set_case or hydroshard_set_case_json first", call)
	}
	return h.opts.Case, nil
}

func (h *handle) caseInt(what string) (int64, error) {
	c, err := h.theCase("hydroshard_case_int")
	if err != nil {
		return 0, err
	}
	switch what {
	case "stages":
		return int64(c.Stages), nil
	case "blocks":
		return int64(len(c.Hours)), nil
	case "inflow_lag_order":
		return int64(c.InflowLagOrder), nil
	case "state_dimension":
		return int64(c.StateDimension()), nil
	}
	return 0, inval("hydroshard_case_int: unknown %q (stages, blocks, inflow_lag_order, state_dimension)", what)
}

// caseIDs lists the ids of a table's entities in case order.
func (h *handle) caseIDs(entity string) ([]int32, error) {
	c, err := h.theCase("hydroshard_case_ids")
	if err != nil {
		return nil, err
	}
	if _, err := tableFor(entity); err != nil {
		return nil, inval("hydroshard_case_ids: %v", err)
	}
	ids, ok := c.IDs(entity)
	if !ok {
		return nil, inval("hydroshard_case_ids: %q is no simulation table", entity)
	}
	return ids, nil
}

// columnsText describes a table's input columns for hydroshard_table_columns.
func columnsText(entity string) (string, bool) {
	s, err := tableFor(entity)
	if err != nil {
		return "", false
	}
	var parts []string
	for _, c := range s.table.Columns {
		if c.Derived {
			continue
		}
		typ := map[arrow.Type]string{arrow.INT32: "int32", arrow.INT8: "int8", arrow.FLOAT64: "double", arrow.BOOL: "bool", arrow.INT64: "int64"}[c.Type.ID()]
		if c.Nullable {
			typ += "?"
		}
		parts = append(parts, c.Name+":"+typ)
	}
	return strings.Join(parts, ","), true
}
