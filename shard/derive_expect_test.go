package shard_test

// Derived columns checked against values computed here, independently of
// shard/derive.go, from the inputs and the case, with the formulas of
// docs/tables.md ("Derived columns"):
//
//	block hours   case block_hours[block_id]; a stage-level row (null
//	              block_id) counts as one hour
//	*_mwh         the *_mw column x block hours
//	outflow_m3s   turbined_m3s + spillage_m3s
//	net_flow_mw   direct_flow_mw - reverse_flow_mw
//	losses_mw     the line's loss_fraction x (direct_flow_mw + reverse_flow_mw)
//	pumped_volume_hm3  pumped_flow_m3s x block hours x 3600 / 1e6
//
// The fixture is testdata/derived: case.json (written by hand: 3 blocks
// of different hours, 3 lines of different loss fractions listed out of id
// order, several entities of each kind), scenario.json (the rows a solver
// supplies, made by derivedScenarios) and expected.json (every derived
// value, made by expectDerived). internal/interop/derived_test.go checks
// the files the rank writer makes from scenario.json, read by DuckDB,
// against expected.json. Regenerate both after a change here or in the
// rows structs:
//
//	go test ./shard -run TestDerivedFixtureUpToDate -update-derived

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

var updateDerived = flag.Bool("update-derived", false, "rewrite testdata/derived/scenario.json and expected.json")

var derivedDir = filepath.Join("testdata", "derived")

// derivedRow is what a formula sees of one input row.
type derivedRow struct {
	col   func(name string) float64 // a supplied float64 column's value
	hours float64                   // the row's block hours
	loss  float64                   // the row's line loss fraction (exchanges only)
}

// derivedFormulas: for each table with derived columns, each derived
// column's formula, written from docs/tables.md (never from derive.go).
var derivedFormulas = map[string]map[string]func(r derivedRow) float64{
	"hydros": {
		"outflow_m3s":    func(r derivedRow) float64 { return r.col("turbined_m3s") + r.col("spillage_m3s") },
		"generation_mwh": func(r derivedRow) float64 { return r.col("generation_mw") * r.hours },
	},
	"thermals": {
		"generation_mwh": func(r derivedRow) float64 { return r.col("generation_mw") * r.hours },
	},
	"exchanges": {
		"net_flow_mw":  func(r derivedRow) float64 { return r.col("direct_flow_mw") - r.col("reverse_flow_mw") },
		"net_flow_mwh": func(r derivedRow) float64 { return (r.col("direct_flow_mw") - r.col("reverse_flow_mw")) * r.hours },
		"losses_mw":    func(r derivedRow) float64 { return r.loss * (r.col("direct_flow_mw") + r.col("reverse_flow_mw")) },
		"losses_mwh": func(r derivedRow) float64 {
			return r.loss * (r.col("direct_flow_mw") + r.col("reverse_flow_mw")) * r.hours
		},
	},
	"buses": {
		"load_mwh":    func(r derivedRow) float64 { return r.col("load_mw") * r.hours },
		"deficit_mwh": func(r derivedRow) float64 { return r.col("deficit_mw") * r.hours },
		"excess_mwh":  func(r derivedRow) float64 { return r.col("excess_mw") * r.hours },
	},
	"pumping_stations": {
		"pumped_volume_hm3":      func(r derivedRow) float64 { return r.col("pumped_flow_m3s") * r.hours * 3600 / 1e6 },
		"energy_consumption_mwh": func(r derivedRow) float64 { return r.col("power_consumption_mw") * r.hours },
	},
	"contracts": {
		"energy_mwh": func(r derivedRow) float64 { return r.col("power_mw") * r.hours },
	},
	"non_controllables": {
		"generation_mwh":  func(r derivedRow) float64 { return r.col("generation_mw") * r.hours },
		"curtailment_mwh": func(r derivedRow) float64 { return r.col("curtailment_mw") * r.hours },
	},
}

// derivedExpect is a scenario's derived values: table entity -> column ->
// one value per input row, in input order.
type derivedExpect map[string]map[string][]float64

// rowsField returns the field of a rows struct that supplies column name.
func rowsField(rows any, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(rows).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("col") == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// blockOf returns row i's block and whether it has one (false: a
// stage-level row).
func blockOf(b shard.NullInt32, i int) (int32, bool) {
	if b.Values == nil || (b.Valid != nil && !b.Valid[i]) {
		return 0, false
	}
	return b.Values[i], true
}

// caseHours is the documented block-hours rule, read from the case data.
func caseHours(c *manifest.Case) func(block int32, ok bool) float64 {
	return func(block int32, ok bool) float64 {
		if !ok {
			return 1
		}
		return c.Hours[block]
	}
}

// caseLoss is the loss fraction of line id in the case's line list.
func caseLoss(c *manifest.Case) func(line int32) float64 {
	return func(line int32) float64 {
		for _, l := range c.Lines {
			if l.ID == line {
				return l.LossFraction
			}
		}
		panic(fmt.Sprintf("line %d is not in case %s", line, c.Name))
	}
}

// expectDerived computes every derived value of s with derivedFormulas,
// block hours from hours and loss fractions from loss.
func expectDerived(t testing.TB, s *shard.Scenario, hours func(block int32, ok bool) float64, loss func(line int32) float64) derivedExpect {
	t.Helper()
	out := derivedExpect{}
	for _, tr := range s.Tables() {
		fs, ok := derivedFormulas[tr.Table.Entity]
		if !ok {
			continue
		}
		stage, _ := rowsField(tr.Rows, "stage_id")
		n := stage.Len()
		bf, _ := rowsField(tr.Rows, "block_id")
		block := bf.Interface().(shard.NullInt32)
		var lines []int32
		if lf, ok := rowsField(tr.Rows, "line_id"); ok {
			lines = lf.Interface().([]int32)
		}
		cols := map[string][]float64{}
		get := func(name string) []float64 {
			if c, ok := cols[name]; ok {
				return c
			}
			f, ok := rowsField(tr.Rows, name)
			if !ok {
				t.Fatalf("%s: a formula reads %s, which no field supplies", tr.Table.Name, name)
			}
			c, ok := f.Interface().([]float64)
			if !ok {
				t.Fatalf("%s: a formula reads %s, which is not a []float64 input", tr.Table.Name, name)
			}
			cols[name] = c
			return c
		}
		out[tr.Table.Entity] = map[string][]float64{}
		for name, formula := range fs {
			vals := make([]float64, n)
			for i := range vals {
				r := derivedRow{col: func(c string) float64 { return get(c)[i] }, hours: hours(blockOf(block, i))}
				if lines != nil {
					r.loss = loss(lines[i])
				}
				vals[i] = formula(r)
			}
			out[tr.Table.Entity][name] = vals
		}
	}
	return out
}

// derivedEntityIDs is each entity table's ids, in the case's order.
func derivedEntityIDs(c *manifest.Case) map[string][]int32 {
	ids := func(n int, id func(int) int32) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	return map[string][]int32{
		"hydros":            ids(len(c.Hydros), func(i int) int32 { return c.Hydros[i].ID }),
		"thermals":          ids(len(c.Thermals), func(i int) int32 { return c.Thermals[i].ID }),
		"exchanges":         ids(len(c.Lines), func(i int) int32 { return c.Lines[i].ID }),
		"buses":             ids(len(c.Buses), func(i int) int32 { return c.Buses[i].ID }),
		"pumping_stations":  ids(len(c.PumpingStations), func(i int) int32 { return c.PumpingStations[i].ID }),
		"contracts":         ids(len(c.Contracts), func(i int) int32 { return c.Contracts[i].ID }),
		"non_controllables": ids(len(c.NonControllables), func(i int) int32 { return c.NonControllables[i].ID }),
	}
}

type derivedKey struct {
	stage, block int32
	hasBlock     bool
	entity       int32
}

// derivedKeys orders a scenario's rows of one entity table. Scenario 0:
// stage, block, entity in case order (consecutive rows change entity, and
// lines are listed out of id order). Scenario 1: entity-major in another
// order, blocks backwards, and a stage-level row (null block_id, one
// hour) after each stage's blocks (consecutive rows of one line, so a
// per-line cache in the encoder is exercised too).
func derivedKeys(c *manifest.Case, scenario int, ids []int32) []derivedKey {
	var out []derivedKey
	if scenario == 0 {
		for st := range c.Stages {
			for b := range c.Hours {
				for _, id := range ids {
					out = append(out, derivedKey{int32(st), int32(b), true, id})
				}
			}
		}
		return out
	}
	rot := append(slices.Clone(ids[1:]), ids[0])
	for _, id := range rot {
		for st := range c.Stages {
			for b := len(c.Hours) - 1; b >= 0; b-- {
				out = append(out, derivedKey{int32(st), int32(b), true, id})
			}
			out = append(out, derivedKey{int32(st), 0, false, id})
		}
	}
	return out
}

// derivedScenarios makes the fixture's inputs: two scenarios of every table
// the case has, every supplied column filled (floats from a seeded
// generator with 3 decimals; codes 0; nullable floats null). Flows are
// chosen so that losses see direct only, reverse only and both; contract
// power is of both signs.
func derivedScenarios(t testing.TB, c *manifest.Case) []*shard.Scenario {
	t.Helper()
	entityIDs := derivedEntityIDs(c)
	var out []*shard.Scenario
	for sc := range 2 {
		r := rand.New(rand.NewPCG(20260101, uint64(sc)))
		s := &shard.Scenario{ID: sc,
			Costs: &shard.CostsRows{}, Hydros: &shard.HydrosRows{}, Thermals: &shard.ThermalsRows{},
			Exchanges: &shard.ExchangesRows{}, Buses: &shard.BusesRows{}, PumpingStations: &shard.PumpingStationsRows{},
			Contracts: &shard.ContractsRows{}, NonControllables: &shard.NonControllablesRows{}}
		for _, tr := range s.Tables() {
			var keys []derivedKey
			entityCol := ""
			if tr.Table == shard.Costs {
				for st := range c.Stages {
					keys = append(keys, derivedKey{stage: int32(st)})
				}
			} else {
				ids, ok := entityIDs[tr.Table.Entity]
				if !ok {
					t.Fatalf("no ids for %s", tr.Table.Entity)
				}
				keys = derivedKeys(c, sc, ids)
				entityCol = tr.Table.Columns[2].Name
			}
			n := len(keys)
			v := reflect.ValueOf(tr.Rows).Elem()
			for fi := 0; fi < v.NumField(); fi++ {
				name := v.Type().Field(fi).Tag.Get("col")
				f := v.Field(fi)
				switch {
				case name == "stage_id" || name == entityCol:
					col := make([]int32, n)
					for i, k := range keys {
						col[i] = k.stage
						if name == entityCol {
							col[i] = k.entity
						}
					}
					f.Set(reflect.ValueOf(col))
				case name == "block_id":
					b := shard.NullInt32{Values: make([]int32, n), Valid: make([]bool, n)}
					all := true
					for i, k := range keys {
						b.Values[i], b.Valid[i] = k.block, k.hasBlock
						all = all && k.hasBlock
					}
					if all {
						b.Valid = nil
					}
					if tr.Table == shard.Costs {
						b = shard.NullInt32{} // one stage-level row per stage
					}
					f.Set(reflect.ValueOf(b))
				default:
					switch f.Interface().(type) {
					case []float64:
						col := make([]float64, n)
						for i := range col {
							x := math.Round(r.Float64()*1e6) / 1e3
							switch {
							case name == "direct_flow_mw" && i%4 == 1, name == "reverse_flow_mw" && i%4 == 0:
								x = 0
							case name == "power_mw":
								x -= 500
							}
							col[i] = x
						}
						f.Set(reflect.ValueOf(col))
					case []int8:
						f.Set(reflect.ValueOf(make([]int8, n)))
					case []bool:
						col := make([]bool, n)
						for i := range col {
							col[i] = i%2 == 1
						}
						f.Set(reflect.ValueOf(col))
					case shard.NullFloat64:
						// Values nil: all null.
					default:
						t.Fatalf("%s.%s: no fixture rule for %s", tr.Table.Name, name, f.Type())
					}
				}
			}
		}
		if err := shard.CheckValues(c, s.Tables()...); err != nil {
			t.Fatalf("fixture scenario %d: %v", sc, err)
		}
		out = append(out, s)
	}
	return out
}

// fixtureJSON renders v with one line per value at depth leaf (a column):
// readable diffs, and a file of reasonable size. Struct fields keep their
// order, map keys are sorted.
func fixtureJSON(v any, leaf int) ([]byte, error) {
	var buf bytes.Buffer
	var write func(v reflect.Value, depth int) error
	write = func(v reflect.Value, depth int) error {
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		ind := strings.Repeat("  ", depth+1)
		if depth == leaf || v.Kind() == reflect.Pointer || (v.Kind() != reflect.Struct && v.Kind() != reflect.Map && v.Kind() != reflect.Slice) {
			b, err := json.Marshal(v.Interface())
			buf.Write(b)
			return err
		}
		var names []string
		var vals []reflect.Value
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				names = append(names, v.Type().Field(i).Name)
				vals = append(vals, v.Field(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				names = append(names, k.String())
			}
			sort.Strings(names)
			for _, k := range names {
				vals = append(vals, v.MapIndex(reflect.ValueOf(k)))
			}
		case reflect.Slice:
			buf.WriteString("[\n")
			for i := 0; i < v.Len(); i++ {
				buf.WriteString(ind)
				if err := write(v.Index(i), depth+1); err != nil {
					return err
				}
				if i < v.Len()-1 {
					buf.WriteByte(',')
				}
				buf.WriteByte('\n')
			}
			buf.WriteString(ind[2:] + "]")
			return nil
		}
		buf.WriteString("{\n")
		for i, name := range names {
			k, _ := json.Marshal(name)
			fmt.Fprintf(&buf, "%s%s: ", ind, k)
			if err := write(vals[i], depth+1); err != nil {
				return err
			}
			if i < len(names)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(ind[2:] + "}")
		return nil
	}
	if err := write(reflect.ValueOf(v), 0); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func loadDerivedCase(t testing.TB) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase(filepath.Join(derivedDir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loadDerivedScenarios decodes scenario.json strictly (a field renamed in
// the rows structs is an error, not a column silently left empty).
func loadDerivedScenarios(t testing.TB) []*shard.Scenario {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(derivedDir, "scenario.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var out []*shard.Scenario
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("scenario.json: %v (regenerate with -update-derived)", err)
	}
	return out
}

// TestDerivedFixtureUpToDate: testdata/derived/scenario.json is what
// derivedScenarios makes and expected.json what the formulas give for it;
// every derived column of the registry has a formula here, and every
// formula a derived column.
func TestDerivedFixtureUpToDate(t *testing.T) {
	for _, tb := range shard.AllTables {
		fs := derivedFormulas[tb.Entity]
		for _, col := range tb.Columns {
			if _, ok := fs[col.Name]; col.Derived && !ok {
				t.Errorf("%s.%s is derived, and has no independent formula in derivedFormulas", tb.Name, col.Name)
			}
		}
		for name := range fs {
			if col, ok := tb.Column(name); !ok || !col.Derived {
				t.Errorf("derivedFormulas has %s.%s, which is not a derived column of the registry", tb.Name, name)
			}
		}
	}
	for entity := range derivedFormulas {
		if _, err := shard.TableByEntity(entity); err != nil {
			t.Errorf("derivedFormulas: %v", err)
		}
	}

	c := loadDerivedCase(t)
	scs := derivedScenarios(t, c)
	var exp []derivedExpect
	for _, s := range scs {
		exp = append(exp, expectDerived(t, s, caseHours(c), caseLoss(c)))
	}
	for _, f := range []struct {
		name string
		v    any
		leaf int
	}{{"scenario.json", scs, 2}, {"expected.json", exp, 3}} {
		want, err := fixtureJSON(f.v, f.leaf)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(derivedDir, f.name)
		if *updateDerived {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: regenerate it with go test ./shard -run TestDerivedFixtureUpToDate -update-derived", path)
		}
	}
	// scenario.json decodes back to the very rows (strict decoding).
	if got := loadDerivedScenarios(t); !reflect.DeepEqual(got, scs) {
		t.Errorf("scenario.json does not decode to the rows it was made from")
	}
}

// TestDerivedFixtureDiscriminates: the fixture can tell the documented
// formulas from the likely mistakes. Every mistaken variant below (block
// hours permuted, a stage-level row given a block's hours, every line
// given one line's loss fraction or the fractions by list position)
// changes at least one value of every derived column it concerns.
func TestDerivedFixtureDiscriminates(t *testing.T) {
	c := loadDerivedCase(t)
	scs := loadDerivedScenarios(t)
	type variant struct {
		name    string
		hours   func(block int32, ok bool) float64
		loss    func(line int32) float64
		columns func(col string) bool // the derived columns it must change
	}
	usesHours := func(col string) bool {
		return strings.HasSuffix(col, "_mwh") || col == "pumped_volume_hm3"
	}
	usesLoss := func(col string) bool { return strings.HasPrefix(col, "losses_") }
	var variants []variant
	// Every permutation of the block hours but the identity.
	var permute func(p []int, k int)
	permute = func(p []int, k int) {
		if k == len(p) {
			perm := slices.Clone(p)
			if !slices.IsSorted(perm) {
				variants = append(variants, variant{fmt.Sprintf("block hours permuted %v", perm),
					func(b int32, ok bool) float64 {
						if !ok {
							return 1
						}
						return c.Hours[perm[b]]
					}, caseLoss(c), usesHours})
			}
			return
		}
		for i := k; i < len(p); i++ {
			p[k], p[i] = p[i], p[k]
			permute(p, k+1)
			p[k], p[i] = p[i], p[k]
		}
	}
	permute([]int{0, 1, 2}, 0)
	if len(variants) != 5 {
		t.Fatalf("%d hour permutations, want 5 (the case must have 3 blocks)", len(variants))
	}
	variants = append(variants, variant{"stage-level rows take block 0's hours",
		func(b int32, ok bool) float64 { return c.Hours[b] }, caseLoss(c), usesHours})
	for i := range c.Lines {
		frac := c.Lines[i].LossFraction
		variants = append(variants, variant{fmt.Sprintf("every line has line %d's loss fraction", c.Lines[i].ID),
			caseHours(c), func(int32) float64 { return frac }, usesLoss})
	}
	variants = append(variants, variant{"loss fraction of the line at list position id mod 3",
		caseHours(c), func(line int32) float64 { return c.Lines[int(line)%len(c.Lines)].LossFraction }, usesLoss})

	for _, v := range variants {
		changed := map[string]bool{} // "entity.column" changed in some scenario
		concerned := map[string]bool{}
		for _, s := range scs {
			want := expectDerived(t, s, caseHours(c), caseLoss(c))
			got := expectDerived(t, s, v.hours, v.loss)
			for entity, cols := range want {
				for col, vals := range cols {
					if v.columns(col) {
						concerned[entity+"."+col] = true
						changed[entity+"."+col] = changed[entity+"."+col] || !slices.Equal(got[entity][col], vals)
					}
				}
			}
		}
		if len(concerned) == 0 {
			t.Errorf("%q concerns no derived column", v.name)
		}
		for col := range concerned {
			if !changed[col] {
				t.Errorf("%s is the same under %q in every scenario: the fixture would not catch that mistake", col, v.name)
			}
		}
	}
}

// sameDerived compares a derived value with the formula's: equal up to
// rounding (1e-12 relative: the formulas may associate differently from
// the encoder), and no NaN.
func sameDerived(got, want float64) bool {
	return got == want || math.Abs(got-want) <= 1e-12*math.Abs(want)
}

// TestDerivedColumnsMatchFormulas encodes every table of the fixture's
// scenarios, reads the files back with pqarrow and compares every derived
// column, value by value, with the formulas of docs/tables.md computed
// here from the inputs and the case.
func TestDerivedColumnsMatchFormulas(t *testing.T) {
	c := loadDerivedCase(t)
	scs := loadDerivedScenarios(t)
	if len(scs) != 2 {
		t.Fatalf("scenario.json holds %d scenarios, want 2", len(scs))
	}
	enc := shard.NewEncoder()
	checked := map[string]int{} // "table.column" -> values compared
	for _, s := range scs {
		want := expectDerived(t, s, caseHours(c), caseLoss(c))
		for _, tr := range s.Tables() {
			tb := tr.Table
			t.Run(fmt.Sprintf("scenario=%d/%s", s.ID, tb.Entity), func(t *testing.T) {
				var buf bytes.Buffer
				n, err := enc.Encode(&buf, tr, c)
				if err != nil {
					t.Fatal(err)
				}
				tbl := shard.ReadBack(t, buf.Bytes())
				if tbl.NumRows() != n {
					t.Fatalf("read %d rows, encoded %d", tbl.NumRows(), n)
				}
				// The rows come back in input order: the keys say so.
				for _, name := range []string{"stage_id", tb.Columns[min(2, len(tb.Columns)-1)].Name} {
					f, _ := rowsField(tr.Rows, name)
					in, ok := f.Interface().([]int32)
					if !ok {
						continue
					}
					if got := shard.ColumnOf(t, tbl, name).(*array.Int32).Int32Values(); !slices.Equal(got, in) {
						t.Fatalf("%s read back %v, supplied %v", name, got, in)
					}
				}
				bf, _ := rowsField(tr.Rows, "block_id")
				blocks := shard.ColumnOf(t, tbl, "block_id").(*array.Int32)
				for i := 0; i < blocks.Len(); i++ {
					b, ok := blockOf(bf.Interface().(shard.NullInt32), i)
					if blocks.IsValid(i) != ok || (ok && blocks.Value(i) != b) {
						t.Fatalf("row %d: block_id read back differs from the input", i)
					}
				}
				for _, col := range tb.Columns {
					if !col.Derived {
						continue
					}
					exp, ok := want[tb.Entity][col.Name]
					if !ok {
						t.Fatalf("%s: no expected values (see TestDerivedFixtureUpToDate)", col.Name)
					}
					arr := shard.ColumnOf(t, tbl, col.Name).(*array.Float64)
					if arr.NullN() != 0 {
						t.Errorf("%s: %d nulls", col.Name, arr.NullN())
					}
					got := arr.Float64Values()
					bad := 0
					for i := range got {
						if !sameDerived(got[i], exp[i]) {
							if bad++; bad <= 5 {
								t.Errorf("%s row %d (%s): %v, want %v", col.Name, i, describeRow(tr, i), got[i], exp[i])
							}
						}
					}
					if bad > 5 {
						t.Errorf("%s: %d of %d values differ", col.Name, bad, len(got))
					}
					checked[tb.Entity+"."+col.Name] += len(got)
				}
			})
		}
	}
	// Every derived column of every table was compared.
	for _, tb := range shard.SimulationTables {
		for _, col := range tb.Columns {
			if col.Derived && checked[tb.Entity+"."+col.Name] == 0 {
				t.Errorf("%s.%s: no value compared", tb.Name, col.Name)
			}
		}
	}
}

// describeRow names row i's key for a message: "stage 1, block 2, line_id 9".
func describeRow(tr shard.TableRows, i int) string {
	var parts []string
	for _, col := range tr.Table.Columns[:3] {
		f, ok := rowsField(tr.Rows, col.Name)
		if !ok {
			continue
		}
		switch x := f.Interface().(type) {
		case []int32:
			parts = append(parts, fmt.Sprintf("%s %d", col.Name, x[i]))
		case shard.NullInt32:
			if b, ok := blockOf(x, i); ok {
				parts = append(parts, fmt.Sprintf("block %d", b))
			} else {
				parts = append(parts, "block null")
			}
		}
	}
	return strings.Join(parts, ", ")
}
