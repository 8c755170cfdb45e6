package shard

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hydroshard/hydroshard/manifest"
)

// Value checks: what a table's values must satisfy against the case before
// a writer accepts them. CheckRows checks the shape (a field per column,
// equal lengths); the encoder checks each row's (stage, block) against the
// case's grid and each line's loss fraction while it derives columns
// (BadRowError); CheckValues checks the rest:
//
//   - every id of a table's entity-id column (hydro_id, thermal_id,
//     line_id, ...) is an entity of that type in the case;
//   - no two rows of a table share a key: (stage_id, block_id, entity id),
//     (stage_id, block_id) for costs, (stage_id, hydro_id, lag_index) for
//     inflow_lags, whose lag_index must be in 1..inflow_lag_order;
//   - every value of a code column (operative_state_code,
//     storage_binding_code, and in bounds rows entity_type_code and
//     bound_type_code) is a code of its set in codes.json (CodeSets):
//     Cobre's tables, so a value outside them would read as no label, or
//     as another meaning, in every notebook that joins codes.json;
//   - no float64 value that is present is NaN or ±Inf, in nullable
//     columns too. A nullable column says "missing" with a null
//     (NullFloat64.Valid[i] false, or Values nil); a NaN would be a second
//     spelling of it that readers do not take for missing (SQL's IS NULL
//     is false on it, and a sum over it is NaN), and an infinity is no
//     quantity a reader can add up. The value under a null is not looked
//     at: it is not written.
//
// It runs in the caller's goroutine on every scenario (rank.Writer's
// WriteScenario), so it is written for speed: no reflection per element,
// no map per row. The case's ids become a dense lookup (id -> index in the
// case), built per call from the case the caller passes: O(entities),
// nothing beside the rows. The key check exploits that solver rows are
// usually ordered (a strictly increasing packed key has no duplicate: one
// comparison per row) and otherwise falls back to a bitset over the dense
// key space, or to sorting the packed keys when that space is large.
// Scratch buffers are pooled.

// ValueError reports a value that does not fit the case or the registry:
// an unknown entity id, a repeated key, a lag outside the inflow model, a
// code outside its code set, a NaN or an infinity. It names the table, the column (for a repeated key, the key's
// columns), the row and the value.
type ValueError struct {
	Table  string // registry name, e.g. "simulation/hydros"
	Column string // e.g. "hydro_id"; "(stage_id, block_id, hydro_id)" for a repeated key
	Row    int    // 0-based row of the table
	Value  string // the value as text: "99", "NaN", "+Inf", "(3, 1, 7)"
	Reason string // what is wrong, naming the value
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%s: column %s row %d: %s", e.Table, e.Column, e.Row, e.Reason)
}

// entityKind is an entity type of the case that a table's id column refers to.
type entityKind int

const (
	kindHydro entityKind = iota
	kindThermal
	kindLine
	kindBus
	kindPumpingStation
	kindContract
	kindNonControllable
	kindGenericConstraint
	numKinds
)

var kindNames = [numKinds]string{"hydro", "thermal", "line", "bus", "pumping station", "contract", "non-controllable", "generic constraint"}

// appendIDs appends the case's ids of kind k, in case order, to dst.
func appendIDs(dst []int32, c *manifest.Case, k entityKind) []int32 {
	switch k {
	case kindHydro:
		for i := range c.Hydros {
			dst = append(dst, c.Hydros[i].ID)
		}
	case kindThermal:
		for i := range c.Thermals {
			dst = append(dst, c.Thermals[i].ID)
		}
	case kindLine:
		for i := range c.Lines {
			dst = append(dst, c.Lines[i].ID)
		}
	case kindBus:
		for i := range c.Buses {
			dst = append(dst, c.Buses[i].ID)
		}
	case kindPumpingStation:
		for i := range c.PumpingStations {
			dst = append(dst, c.PumpingStations[i].ID)
		}
	case kindContract:
		for i := range c.Contracts {
			dst = append(dst, c.Contracts[i].ID)
		}
	case kindNonControllable:
		for i := range c.NonControllables {
			dst = append(dst, c.NonControllables[i].ID)
		}
	case kindGenericConstraint:
		for i := range c.GenericConstraints {
			dst = append(dst, c.GenericConstraints[i].ID)
		}
	}
	return dst
}

// keySpec names a simulation table's entity-id column, the entity type
// its ids belong to, and any key column beyond stage, block and entity.
type keySpec struct {
	entity string
	kind   entityKind
	extra  string // inflow_lags: lag_index
}

var keySpecs = map[*Table]keySpec{
	Costs:             {},
	Hydros:            {entity: "hydro_id", kind: kindHydro},
	Thermals:          {entity: "thermal_id", kind: kindThermal},
	Exchanges:         {entity: "line_id", kind: kindLine},
	Buses:             {entity: "bus_id", kind: kindBus},
	PumpingStations:   {entity: "pumping_station_id", kind: kindPumpingStation},
	Contracts:         {entity: "contract_id", kind: kindContract},
	NonControllables:  {entity: "non_controllable_id", kind: kindNonControllable},
	InflowLags:        {entity: "hydro_id", kind: kindHydro, extra: "lag_index"},
	GenericViolations: {entity: "constraint_id", kind: kindGenericConstraint},
}

// valuePlan is what CheckValues reads of one table: column indexes into
// t.Columns (-1: the table has none) and the supplied float64 columns.
type valuePlan struct {
	keyed                     bool // a simulation table: keys and ids are checked
	stage, block, entity, lag int
	kind                      entityKind
	floats                    []int
	codes                     []codeCheck
	keyName                   string // "(stage_id, block_id, hydro_id)"
}

// codeCheck is one code column of a table and the values its set allows.
type codeCheck struct {
	col   int
	set   *CodeSet
	valid [256]bool // by uint8(value)
}

// codeSetOfColumn returns the code set that claims a column name.
func codeSetOfColumn(name string) (*CodeSet, bool) {
	for i := range CodeSets {
		for _, c := range CodeSets[i].Columns {
			if c == name {
				return &CodeSets[i], true
			}
		}
	}
	return nil, false
}

// describe lists the set's codes as "0 deactivated, 1 maintenance, ...".
func describe(s *CodeSet) string {
	parts := make([]string, len(s.Codes))
	for i, c := range s.Codes {
		parts[i] = strconv.Itoa(int(c.Value)) + " " + c.Label
	}
	return strings.Join(parts, ", ")
}

func newValuePlan(t *Table) *valuePlan {
	p := &valuePlan{stage: -1, block: -1, entity: -1, lag: -1}
	index := func(name string) int {
		for i, c := range t.Columns {
			if c.Name == name {
				return i
			}
		}
		return -1
	}
	for i, c := range t.Columns {
		if c.Type.ID() == f64.ID() && !c.Derived {
			p.floats = append(p.floats, i)
		}
		if c.Type.ID() == i8.ID() && !c.Derived {
			if set, ok := codeSetOfColumn(c.Name); ok {
				cc := codeCheck{col: i, set: set}
				for _, code := range set.Codes {
					cc.valid[uint8(code.Value)] = true
				}
				p.codes = append(p.codes, cc)
			}
		}
	}
	spec, ok := keySpecs[t]
	if !ok {
		return p // not a simulation table: only the floats are checked
	}
	p.keyed = true
	p.stage, p.block, p.kind = index("stage_id"), index("block_id"), spec.kind
	if spec.entity != "" {
		p.entity = index(spec.entity)
	}
	if spec.extra != "" {
		p.lag = index(spec.extra)
	}
	var names []string
	for _, i := range []int{p.stage, p.block, p.entity, p.lag} {
		if i >= 0 {
			names = append(names, t.Columns[i].Name)
		}
	}
	p.keyName = "(" + strings.Join(names, ", ") + ")"
	return p
}

var valuePlans = sync.OnceValue(func() map[*Table]*valuePlan {
	m := map[*Table]*valuePlan{}
	for _, t := range AllTables {
		m[t] = newValuePlan(t)
	}
	return m
})

func planOf(t *Table) *valuePlan {
	if p, ok := valuePlans()[t]; ok {
		return p
	}
	return newValuePlan(t) // a table outside the registry (tests)
}

// idIndex maps the ids of one entity type to their index in the case:
// densely (a slice over [min, max]) unless the ids are too sparse for
// that, then by binary search.
type idIndex struct {
	n      int
	min    int32
	dense  []int32 // id-min -> index+1; 0: not in the case
	sparse bool
	sorted []int64 // id<<32 | index, ascending
}

func (x *idIndex) build(ids []int32) {
	x.n = len(ids)
	x.sparse = false
	x.dense = x.dense[:0]
	if len(ids) == 0 {
		return
	}
	lo, hi := slices.Min(ids), slices.Max(ids)
	span := int64(hi) - int64(lo) + 1
	if span <= 4*int64(len(ids))+64 {
		x.min = lo
		x.dense = slices.Grow(x.dense, int(span))[:span]
		clear(x.dense)
		for i, id := range ids {
			x.dense[id-lo] = int32(i + 1)
		}
		return
	}
	x.sparse = true
	x.sorted = x.sorted[:0]
	for i, id := range ids {
		x.sorted = append(x.sorted, int64(id)<<32|int64(i))
	}
	slices.Sort(x.sorted)
}

// lookup returns id's index in the case.
func (x *idIndex) lookup(id int32) (int, bool) {
	if !x.sparse {
		d := uint64(int64(id) - int64(x.min))
		if d >= uint64(len(x.dense)) {
			return 0, false
		}
		v := x.dense[d]
		return int(v) - 1, v != 0
	}
	i, _ := slices.BinarySearch(x.sorted, int64(id)<<32)
	if i < len(x.sorted) && int32(x.sorted[i]>>32) == id {
		return int(uint32(x.sorted[i])), true
	}
	return 0, false
}

// offGrid marks, in the packed keys, a row whose (stage, block) is not in
// the case: the encoder refuses it (BadRowError), and it takes no part in
// the key check. The low bits hold the row, so no two are equal.
const offGrid = 1 << 63

// valueChecker holds one CheckValues call's lookups and scratch; the
// buffers are reused through a pool.
type valueChecker struct {
	c     *manifest.Case
	ids   [numKinds]idIndex
	built [numKinds]bool
	buf   []int32
	keys  []uint64
	sort  []uint64
	bits  []uint64
}

var checkers = sync.Pool{New: func() any { return new(valueChecker) }}

// CheckValues checks the values of tables against case c (the rules are
// above) and returns the first problem as a *ValueError, or a
// *ColumnError when a table's columns do not fit it (CheckRows). Tables of
// the registry that are not simulation tables get the code and float
// checks only.
// It modifies nothing; it is safe for concurrent use.
func CheckValues(c *manifest.Case, tables ...TableRows) error {
	if c == nil {
		return errors.New("shard: CheckValues: nil case")
	}
	vc := checkers.Get().(*valueChecker)
	vc.c, vc.built = c, [numKinds]bool{}
	var err error
	for _, tr := range tables {
		if err = vc.check(tr); err != nil {
			break
		}
	}
	vc.c = nil // the pool must not keep the case alive
	checkers.Put(vc)
	return err
}

func (vc *valueChecker) index(k entityKind) *idIndex {
	if !vc.built[k] {
		vc.buf = appendIDs(vc.buf[:0], vc.c, k)
		vc.ids[k].build(vc.buf)
		vc.built[k] = true
	}
	return &vc.ids[k]
}

func (vc *valueChecker) check(tr TableRows) error {
	t := tr.Table
	src, n, err := sources(tr)
	if err != nil {
		return err
	}
	p := planOf(t)
	if p.keyed {
		cols := keyCols{stage: *src[p.stage].Addr().Interface().(*[]int32)}
		if p.block >= 0 {
			cols.block = *src[p.block].Addr().Interface().(*NullInt32)
			cols.hasBlock = true
		}
		if p.entity >= 0 {
			cols.ent = *src[p.entity].Addr().Interface().(*[]int32)
		}
		if p.lag >= 0 {
			cols.lag = *src[p.lag].Addr().Interface().(*[]int32)
		}
		if err := vc.checkKeys(t, p, cols, n); err != nil {
			return err
		}
	}
	for i := range p.codes {
		cc := &p.codes[i]
		vals, ok := src[cc.col].Addr().Interface().(*[]int8)
		if !ok {
			continue
		}
		for row, v := range *vals {
			if !cc.valid[uint8(v)] {
				val := strconv.Itoa(int(v))
				return &ValueError{Table: t.Name, Column: t.Columns[cc.col].Name, Row: row, Value: val,
					Reason: fmt.Sprintf("code %s is not in codes.json %s (%s)", val, cc.set.Name, describe(cc.set))}
			}
		}
	}
	for _, i := range p.floats {
		var err error
		switch x := src[i].Addr().Interface().(type) {
		case *[]float64:
			err = checkFinite(t, t.Columns[i], *x, nil)
		case *NullFloat64:
			if x.Values != nil {
				err = checkFinite(t, t.Columns[i], x.Values, x.Valid)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keyCols are a table's key columns; ent and lag are nil when it has none.
type keyCols struct {
	stage    []int32
	block    NullInt32
	hasBlock bool
	ent, lag []int32
}

// blockOf returns the block of row i; ok is false for a null.
func (k *keyCols) blockOf(i int) (int32, bool) {
	if !k.hasBlock || k.block.Values == nil || (k.block.Valid != nil && !k.block.Valid[i]) {
		return 0, false
	}
	return k.block.Values[i], true
}

// checkKeys checks the entity ids and lags of every row and that no two
// rows share a key. A key is packed densely as
// ((stage*B' + block)*E + entity index)*L + lag - 1, where B' is the case's
// block count plus one (a null block) when the table has blocks; it fits
// 64 bits within the case limits (manifest.Max*: under 2^51). The key is
// built one column at a time, in tight loops that keep their few
// variables in registers: one loop over every column at once spilled
// them to the stack and took twice as long (production hydros).
func (vc *valueChecker) checkKeys(t *Table, p *valuePlan, k keyCols, n int) error {
	c := vc.c
	stages, blocks := uint32(c.Stages), uint32(len(c.Hours))
	keys := slices.Grow(vc.keys[:0], n)[:n]
	vc.keys = keys
	bw, ew, lw := uint64(1), uint64(1), uint64(1)
	if k.hasBlock {
		bw = uint64(blocks) + 1
	}
	// The stage and the block; off records that some row is off the
	// case's grid (a negative id is a huge uint32).
	off := false
	for i, s := range k.stage[:n] {
		off = off || uint32(s) >= stages
		keys[i] = uint64(uint32(s)) * bw
	}
	if k.hasBlock {
		switch b := k.block; {
		case b.Values == nil: // every block null
			for i := range keys {
				keys[i] += uint64(blocks)
			}
		case b.Valid == nil:
			for i, v := range b.Values[:n] {
				off = off || uint32(v) >= blocks
				keys[i] += uint64(uint32(v))
			}
		default:
			valid := b.Valid[:n]
			for i, v := range b.Values[:n] {
				if !valid[i] {
					v = int32(blocks)
				} else {
					off = off || uint32(v) >= blocks
				}
				keys[i] += uint64(uint32(v))
			}
		}
	}
	if k.ent != nil {
		ix := vc.index(p.kind)
		ew = uint64(max(ix.n, 1))
		if row := ix.appendIndexes(keys, k.ent[:n], ew); row >= 0 {
			id := strconv.Itoa(int(k.ent[row]))
			return &ValueError{Table: t.Name, Column: t.Columns[p.entity].Name, Row: row, Value: id,
				Reason: fmt.Sprintf("id %s is not a %s of case %s", id, kindNames[p.kind], c.Name)}
		}
	}
	if k.lag != nil {
		lags := int32(c.InflowLagOrder)
		lw = uint64(max(lags, 1))
		for i, l := range k.lag[:n] {
			if l < 1 || l > lags {
				v := strconv.Itoa(int(l))
				return &ValueError{Table: t.Name, Column: t.Columns[p.lag].Name, Row: i, Value: v,
					Reason: fmt.Sprintf("lag %s is not in 1..%d, the inflow_lag_order of case %s", v, lags, c.Name)}
			}
			keys[i] = keys[i]*lw + uint64(l-1)
		}
	}
	if off {
		for i := range keys {
			if uint32(k.stage[i]) >= stages {
				keys[i] = offGrid | uint64(i)
			} else if b, ok := k.blockOf(i); ok && uint32(b) >= blocks {
				keys[i] = offGrid | uint64(i)
			}
		}
	} else if strictlyIncreasing(keys) {
		return nil // no key twice
	}
	first, second := vc.duplicate(keys, uint64(stages)*bw*ew*lw)
	if second < 0 {
		return nil
	}
	key := vc.keyText(k, second)
	return &ValueError{Table: t.Name, Column: p.keyName, Row: second, Value: key,
		Reason: fmt.Sprintf("key %s = %s repeats row %d", p.keyName, key, first)}
}

// strictlyIncreasing reports whether every key is greater than the one
// before: then none repeats. Solver rows usually come so ordered.
func strictlyIncreasing(keys []uint64) bool {
	if len(keys) == 0 {
		return true
	}
	prev := keys[0]
	for _, k := range keys[1:] {
		if k <= prev {
			return false
		}
		prev = k
	}
	return true
}

// appendIndexes sets keys[i] = keys[i]*ew + the index of ids[i] in the
// case, and returns the first row whose id is not in it (-1: none).
func (x *idIndex) appendIndexes(keys []uint64, ids []int32, ew uint64) int {
	if x.sparse {
		for i, id := range ids {
			idx, ok := x.lookup(id)
			if !ok {
				return i
			}
			keys[i] = keys[i]*ew + uint64(idx)
		}
		return -1
	}
	dense, lo := x.dense, int64(x.min)
	for i, id := range ids {
		d := uint64(int64(id) - lo)
		if d >= uint64(len(dense)) || dense[d] == 0 {
			return i
		}
		keys[i] = keys[i]*ew + uint64(dense[d]-1)
	}
	return -1
}

// duplicate returns two rows first < second with the same key (-1, -1:
// none); space bounds the keys. second is the earliest row repeating an
// earlier one when the bitset is used.
func (vc *valueChecker) duplicate(keys []uint64, space uint64) (first, second int) {
	if space <= 64*uint64(len(keys))+1<<16 {
		// A bitset of at most about one word per row (plus 8 KiB).
		words := int((space + 63) / 64)
		bits := slices.Grow(vc.bits[:0], words)[:words]
		vc.bits = bits
		clear(bits)
		for i, key := range keys {
			if key&offGrid != 0 {
				continue
			}
			w, m := key>>6, uint64(1)<<(key&63)
			if bits[w]&m != 0 {
				return slices.Index(keys, key), i
			}
			bits[w] |= m
		}
		return -1, -1
	}
	vc.sort = append(vc.sort[:0], keys...)
	slices.Sort(vc.sort)
	for i := 1; i < len(vc.sort); i++ {
		if key := vc.sort[i]; key == vc.sort[i-1] {
			first = slices.Index(keys, key)
			return first, first + 1 + slices.Index(keys[first+1:], key)
		}
	}
	return -1, -1
}

// keyText formats row i's key as its column values: "(3, 1, 7)", a null
// block as null.
func (vc *valueChecker) keyText(k keyCols, i int) string {
	parts := []string{strconv.Itoa(int(k.stage[i]))}
	if k.hasBlock {
		if b, ok := k.blockOf(i); ok {
			parts = append(parts, strconv.Itoa(int(b)))
		} else {
			parts = append(parts, "null")
		}
	}
	if k.ent != nil {
		parts = append(parts, strconv.Itoa(int(k.ent[i])))
	}
	if k.lag != nil {
		parts = append(parts, strconv.Itoa(int(k.lag[i])))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// allFinite reports whether no value of xs is NaN or ±Inf: x*0 is ±0 for
// a finite x and NaN otherwise, and a NaN survives the sums. Four
// independent sums keep the floating-point adders busy; there is no branch
// per value.
func allFinite(xs []float64) bool {
	var a0, a1, a2, a3 float64
	for len(xs) >= 4 {
		a0 += xs[0] * 0
		a1 += xs[1] * 0
		a2 += xs[2] * 0
		a3 += xs[3] * 0
		xs = xs[4:]
	}
	for _, x := range xs {
		a0 += x * 0
	}
	return a0+a1+a2+a3 == 0
}

// checkFinite refuses a NaN or ±Inf in vals where a value is present
// (valid nil: everywhere), the rule of CheckValues.
func checkFinite(t *Table, c Column, vals []float64, valid []bool) error {
	if allFinite(vals) {
		return nil
	}
	for i, x := range vals {
		if x-x == 0 || (valid != nil && !valid[i]) {
			continue // finite, or under a null
		}
		v := strconv.FormatFloat(x, 'g', -1, 64)
		why := "the column is not nullable, and only finite numbers are written"
		if c.Nullable {
			why = "a missing value is a null, never NaN or ±Inf"
		}
		return &ValueError{Table: t.Name, Column: c.Name, Row: i, Value: v, Reason: fmt.Sprintf("%s is not a finite number (%s)", v, why)}
	}
	return nil
}
