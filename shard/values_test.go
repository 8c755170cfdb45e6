package shard_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

func loadCase(t testing.TB, name string) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase("../testdata/cases/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func scenario(t testing.TB, c *manifest.Case, s int) *shard.Scenario {
	t.Helper()
	sc, err := synth.Generate(c, 7, s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestCheckValuesSynth: well-formed synthetic scenarios of every case
// pass, and every simulation table is among them (the checks are not
// vacuous: each table has rows).
func TestCheckValuesSynth(t *testing.T) {
	for _, c := range []*manifest.Case{loadCase(t, "tiny"), loadCase(t, "demo"), synth.Production()} {
		for s := range 2 {
			sc := scenario(t, c, s)
			tables := sc.Tables()
			if len(tables) != len(shard.SimulationTables) {
				t.Fatalf("%s: %d tables, want all %d", c.Name, len(tables), len(shard.SimulationTables))
			}
			if err := shard.CheckValues(c, tables...); err != nil {
				t.Errorf("%s scenario %d: %v", c.Name, s, err)
			}
		}
	}
}

// TestCheckValuesRegistry: every simulation table's entity-id column (the
// columns documented "Identifier of the ...") is the one the checks read:
// an unknown id in it is refused, in every table but costs, which has none.
func TestCheckValuesRegistry(t *testing.T) {
	c := loadCase(t, "tiny")
	for _, tb := range shard.SimulationTables {
		var ids []string
		for _, col := range tb.Columns {
			if strings.HasPrefix(col.Doc, "Identifier of the ") {
				ids = append(ids, col.Name)
			}
		}
		if tb == shard.Costs {
			if len(ids) != 0 {
				t.Errorf("costs has entity columns %v", ids)
			}
			continue
		}
		if len(ids) != 1 {
			t.Fatalf("%s: entity columns %v, want one", tb.Name, ids)
		}
		sc := scenario(t, c, 0)
		var tr shard.TableRows
		for _, x := range sc.Tables() {
			if x.Table == tb {
				tr = x
			}
		}
		entityColumn(t, tr, ids[0])[1] = 99
		var ve *shard.ValueError
		if err := shard.CheckValues(c, tr); !errors.As(err, &ve) || ve.Column != ids[0] || ve.Row != 1 || ve.Value != "99" {
			t.Errorf("%s: id 99 in %s row 1: %v", tb.Name, ids[0], err)
		}
	}
}

// entityColumn returns the entity-id column of a simulation table's rows.
func entityColumn(t *testing.T, tr shard.TableRows, name string) []int32 {
	switch r := tr.Rows.(type) {
	case *shard.HydrosRows:
		return r.HydroID
	case *shard.ThermalsRows:
		return r.ThermalID
	case *shard.ExchangesRows:
		return r.LineID
	case *shard.BusesRows:
		return r.BusID
	case *shard.PumpingStationsRows:
		return r.PumpingStationID
	case *shard.ContractsRows:
		return r.ContractID
	case *shard.NonControllablesRows:
		return r.NonControllableID
	case *shard.InflowLagsRows:
		return r.HydroID
	case *shard.GenericViolationsRows:
		return r.ConstraintID
	}
	t.Fatalf("%s: no entity column %s", tr.Table.Name, name)
	return nil
}

func TestCheckValuesErrors(t *testing.T) {
	c := loadCase(t, "tiny") // 3 stages x 2 blocks, hydros 1 and 2, inflow_lag_order 1
	type mod func(s *shard.Scenario)
	cases := []struct {
		name string
		mod  mod
		want string // the whole error
	}{
		{"unknown hydro", func(s *shard.Scenario) { s.Hydros.HydroID[5] = 99 },
			"simulation/hydros: column hydro_id row 5: id 99 is not a hydro of case tiny"},
		{"unknown bus", func(s *shard.Scenario) { s.Buses.BusID[0] = -1 },
			"simulation/buses: column bus_id row 0: id -1 is not a bus of case tiny"},
		{"unknown lag hydro", func(s *shard.Scenario) { s.InflowLags.HydroID[3] = 3 },
			"simulation/inflow_lags: column hydro_id row 3: id 3 is not a hydro of case tiny"},
		{"lag 0", func(s *shard.Scenario) { s.InflowLags.LagIndex[2] = 0 },
			"simulation/inflow_lags: column lag_index row 2: lag 0 is not in 1..1, the inflow_lag_order of case tiny"},
		{"lag beyond the order", func(s *shard.Scenario) { s.InflowLags.LagIndex[4] = 2 },
			"simulation/inflow_lags: column lag_index row 4: lag 2 is not in 1..1, the inflow_lag_order of case tiny"},
		// Rows are (stage, block, hydro) ascending: rows 0 and 1 are
		// (0, 0, 1) and (0, 0, 2).
		{"duplicate key", func(s *shard.Scenario) { s.Hydros.HydroID[1] = 1 },
			"simulation/hydros: column (stage_id, block_id, hydro_id) row 1: key (stage_id, block_id, hydro_id) = (0, 0, 1) repeats row 0"},
		{"duplicate key, far apart", func(s *shard.Scenario) {
			h := s.Hydros
			last := len(h.StageID) - 1
			h.StageID[last], h.BlockID.Values[last], h.HydroID[last] = 0, 1, 2
		}, "simulation/hydros: column (stage_id, block_id, hydro_id) row 11: key (stage_id, block_id, hydro_id) = (0, 1, 2) repeats row 3"},
		{"duplicate stage-level key", func(s *shard.Scenario) {
			s.Hydros.BlockID.Valid = make([]bool, len(s.Hydros.StageID)) // every row stage-level: 6 per (stage, hydro)
		}, "simulation/hydros: column (stage_id, block_id, hydro_id) row 2: key (stage_id, block_id, hydro_id) = (0, null, 1) repeats row 0"},
		{"duplicate costs stage", func(s *shard.Scenario) { s.Costs.StageID[2] = 0 },
			"simulation/costs: column (stage_id, block_id) row 2: key (stage_id, block_id) = (0, null) repeats row 0"},
		{"duplicate lag", func(s *shard.Scenario) { s.InflowLags.StageID[1] = 0; s.InflowLags.HydroID[1] = 1 },
			"simulation/inflow_lags: column (stage_id, hydro_id, lag_index) row 1: key (stage_id, hydro_id, lag_index) = (0, 1, 1) repeats row 0"},
		{"NaN", func(s *shard.Scenario) { s.Hydros.TurbinedM3s[7] = math.NaN() },
			"simulation/hydros: column turbined_m3s row 7: NaN is not a finite number (the column is not nullable, and only finite numbers are written)"},
		{"+Inf", func(s *shard.Scenario) { s.Thermals.GenerationCost[3] = math.Inf(1) },
			"simulation/thermals: column generation_cost row 3: +Inf is not a finite number (the column is not nullable, and only finite numbers are written)"},
		{"-Inf", func(s *shard.Scenario) { s.Costs.FutureCost[2] = math.Inf(-1) },
			"simulation/costs: column future_cost row 2: -Inf is not a finite number (the column is not nullable, and only finite numbers are written)"},
		{"NaN in a present nullable value", func(s *shard.Scenario) {
			n := len(s.Hydros.StageID)
			s.Hydros.EvaporationM3s = shard.NullFloat64{Values: make([]float64, n), Valid: make([]bool, n)}
			s.Hydros.EvaporationM3s.Values[4], s.Hydros.EvaporationM3s.Valid[4] = math.NaN(), true
		}, "simulation/hydros: column evaporation_m3s row 4: NaN is not a finite number (a missing value is a null, never NaN or ±Inf)"},
		{"Inf in a nullable column without validity", func(s *shard.Scenario) {
			s.Thermals.GNLCommittedMW = shard.NullFloat64{Values: make([]float64, len(s.Thermals.StageID))}
			s.Thermals.GNLCommittedMW.Values[5] = math.Inf(1)
		}, "simulation/thermals: column gnl_committed_mw row 5: +Inf is not a finite number (a missing value is a null, never NaN or ±Inf)"},
		{"id before a NaN", func(s *shard.Scenario) { s.Buses.LoadMW[0] = math.NaN(); s.Buses.BusID[3] = 7 },
			"simulation/buses: column bus_id row 3: id 7 is not a bus of case tiny"},
		{"operative state outside codes.json", func(s *shard.Scenario) { s.Thermals.OperativeStateCode[4] = 4 },
			"simulation/thermals: column operative_state_code row 4: code 4 is not in codes.json operative_state (0 deactivated, 1 maintenance, 2 operating, 3 saturated)"},
		{"negative operative state", func(s *shard.Scenario) { s.NonControllables.OperativeStateCode[2] = -1 },
			"simulation/non_controllables: column operative_state_code row 2: code -1 is not in codes.json operative_state (0 deactivated, 1 maintenance, 2 operating, 3 saturated)"},
		{"storage binding outside codes.json", func(s *shard.Scenario) { s.Hydros.StorageBindingCode[9] = 7 },
			"simulation/hydros: column storage_binding_code row 9: code 7 is not in codes.json storage_binding (0 none, 1 below_minimum, 2 above_maximum, 3 both)"},
		{"short column", func(s *shard.Scenario) { s.Buses.LoadMW = s.Buses.LoadMW[1:] },
			"simulation/buses.load_mw: column has 11 rows, want 12 (the length of stage_id)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := scenario(t, c, 0)
			tc.mod(sc)
			err := shard.CheckValues(c, sc.Tables()...)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error\n  %v\nwant\n  %s", err, tc.want)
			}
			var ve *shard.ValueError
			var ce *shard.ColumnError
			if !errors.As(err, &ve) && !errors.As(err, &ce) {
				t.Fatalf("%T is neither a *ValueError nor a *ColumnError", err)
			}
		})
	}
}

// TestCheckValuesCodes: every code column of every table is checked
// against its set in codes.json: each code of the set passes, the values
// just outside it and an arbitrary one fail, naming table, column and row.
// Bounds rows (entity_type_code, bound_type_code) too.
func TestCheckValuesCodes(t *testing.T) {
	c := loadCase(t, "tiny")
	checked := map[string]bool{}
	for _, tb := range shard.AllTables {
		for ci, col := range tb.Columns {
			set, ok := codeSetOf(col.Name)
			if !ok {
				continue
			}
			t.Run(tb.Name+"."+col.Name, func(t *testing.T) {
				tr := codeRows(t, c, tb)
				codes := codeColumn(t, tr, ci)
				allowed := map[int8]bool{}
				for _, code := range set.Codes {
					allowed[code.Value] = true
					codes[0] = code.Value
					if err := shard.CheckValues(c, tr); err != nil {
						t.Errorf("code %d (%s): %v", code.Value, code.Label, err)
					}
				}
				for v := -128; v <= 127; v++ {
					if allowed[int8(v)] {
						continue
					}
					codes[0] = int8(v)
					var ve *shard.ValueError
					err := shard.CheckValues(c, tr)
					if !errors.As(err, &ve) || ve.Table != tb.Name || ve.Column != col.Name || ve.Row != 0 || ve.Value != strconv.Itoa(v) ||
						!strings.Contains(ve.Reason, "codes.json "+set.Name) {
						t.Fatalf("code %d: %v, want a *ValueError naming %s, %s, row 0 and the set %s", v, err, tb.Name, col.Name, set.Name)
					}
				}
				checked[tb.Name+"."+col.Name] = true
			})
		}
	}
	// Not vacuous: the simulation tables' code columns and the bounds'.
	want := []string{"simulation/hydros.operative_state_code", "simulation/hydros.storage_binding_code",
		"simulation/thermals.operative_state_code", "simulation/exchanges.operative_state_code",
		"simulation/pumping_stations.operative_state_code", "simulation/contracts.operative_state_code",
		"simulation/non_controllables.operative_state_code",
		"training/dictionaries/bounds.entity_type_code", "training/dictionaries/bounds.bound_type_code"}
	for _, w := range want {
		if !checked[w] {
			t.Errorf("%s was not checked", w)
		}
	}
}

func codeSetOf(column string) (shard.CodeSet, bool) {
	for _, s := range shard.CodeSets {
		if slices.Contains(s.Columns, column) {
			return s, true
		}
	}
	return shard.CodeSet{}, false
}

// codeRows returns well-formed rows of a table with a code column: a
// synthetic scenario's table, or one bounds row.
func codeRows(t *testing.T, c *manifest.Case, tb *shard.Table) shard.TableRows {
	t.Helper()
	if tb == shard.Bounds {
		return shard.TableRows{Table: tb, Rows: &shard.BoundsRows{EntityTypeCode: []int8{shard.EntityHydro}, EntityID: []int32{1},
			StageID: []int32{0}, BoundTypeCode: []int8{shard.BoundStorageMax}, BoundValue: []float64{1}}}
	}
	for _, tr := range scenario(t, c, 0).Tables() {
		if tr.Table == tb {
			return tr
		}
	}
	t.Fatalf("no %s in a synthetic scenario of %s", tb.Name, c.Name)
	return shard.TableRows{}
}

// codeColumn returns column ci of rows (an []int8 field tagged with the
// column's name).
func codeColumn(t *testing.T, tr shard.TableRows, ci int) []int8 {
	t.Helper()
	v := reflect.ValueOf(tr.Rows).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("col") == tr.Table.Columns[ci].Name {
			return v.Field(i).Interface().([]int8)
		}
	}
	t.Fatalf("%s: no field for %s", tr.Table.Name, tr.Table.Columns[ci].Name)
	return nil
}

// TestCheckValuesNulls: what is under a null is not looked at, and a
// column of nulls only has nothing to check.
func TestCheckValuesNulls(t *testing.T) {
	c := loadCase(t, "tiny")
	sc := scenario(t, c, 0)
	n := len(sc.Hydros.StageID)
	ev := shard.NullFloat64{Values: make([]float64, n), Valid: make([]bool, n)}
	for i := range ev.Values {
		ev.Values[i], ev.Valid[i] = math.NaN(), i%2 == 0
		if ev.Valid[i] {
			ev.Values[i] = 1.5
		}
	}
	ev.Values[1] = math.Inf(-1)
	sc.Hydros.EvaporationM3s = ev
	sc.Hydros.ProductivityMWPerM3s = shard.NullFloat64{} // all null
	if err := shard.CheckValues(c, sc.Tables()...); err != nil {
		t.Fatal(err)
	}
}

// TestCheckValuesUnordered: the key check does not depend on the rows'
// order (the fast path only takes ordered rows; the others go to the
// bitset).
func TestCheckValuesUnordered(t *testing.T) {
	c := loadCase(t, "demo")
	sc := scenario(t, c, 0)
	h := sc.Hydros
	r := rand.New(rand.NewPCG(1, 2))
	perm := r.Perm(len(h.StageID))
	shuffled := &shard.HydrosRows{}
	*shuffled = *h
	stage, block, hydro := make([]int32, len(perm)), make([]int32, len(perm)), make([]int32, len(perm))
	for i, p := range perm {
		stage[i], block[i], hydro[i] = h.StageID[p], h.BlockID.Values[p], h.HydroID[p]
	}
	shuffled.StageID, shuffled.BlockID, shuffled.HydroID = stage, shard.NullInt32{Values: block}, hydro
	tr := shard.TableRows{Table: shard.Hydros, Rows: shuffled}
	if err := shard.CheckValues(c, tr); err != nil {
		t.Fatalf("shuffled rows: %v", err)
	}
	// Rows 10 and 20 (shuffled) now share a key.
	stage[20], block[20], hydro[20] = stage[10], block[10], hydro[10]
	var ve *shard.ValueError
	if err := shard.CheckValues(c, tr); !errors.As(err, &ve) || ve.Row != 20 || !strings.HasSuffix(ve.Reason, "repeats row 10") {
		t.Fatalf("shuffled rows with a repeated key: %v", err)
	}
}

// bigCase has a key space too large for the bitset (10,000 stages x 1,001
// blocks x 3 buses), and sparse bus ids: the sorting fallback and the
// binary-search lookup.
func bigCase() *manifest.Case {
	hours := make([]float64, manifest.MaxBlocks)
	for i := range hours {
		hours[i] = 1
	}
	return &manifest.Case{Version: manifest.CaseVersion, Name: "big", Stages: manifest.MaxStages, Hours: hours,
		Buses: []manifest.Bus{{ID: 5}, {ID: 1_000_000}, {ID: -2_000_000_000}}}
}

func TestCheckValuesBigKeySpace(t *testing.T) {
	c := bigCase()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rows := func(stage, block, bus []int32) shard.TableRows {
		n := len(stage)
		f := func() []float64 { return make([]float64, n) }
		return shard.TableRows{Table: shard.Buses, Rows: &shard.BusesRows{StageID: stage, BlockID: shard.NullInt32{Values: block},
			BusID: bus, LoadMW: f(), DeficitMW: f(), ExcessMW: f(), SpotPrice: f()}}
	}
	ok := rows([]int32{9999, 0, 5000, 0}, []int32{999, 0, 3, 0}, []int32{5, 1_000_000, -2_000_000_000, -2_000_000_000})
	if err := shard.CheckValues(c, ok); err != nil {
		t.Fatalf("distinct keys, unordered: %v", err)
	}
	dup := rows([]int32{9999, 0, 5000, 9999}, []int32{999, 0, 3, 999}, []int32{1_000_000, 5, 5, 1_000_000})
	var ve *shard.ValueError
	if err := shard.CheckValues(c, dup); !errors.As(err, &ve) || ve.Row != 3 || ve.Value != "(9999, 999, 1000000)" || !strings.HasSuffix(ve.Reason, "repeats row 0") {
		t.Fatalf("repeated key: %v", err)
	}
	unknown := rows([]int32{0}, []int32{0}, []int32{6})
	if err := shard.CheckValues(c, unknown); !errors.As(err, &ve) || ve.Reason != "id 6 is not a bus of case big" {
		t.Fatalf("unknown sparse id: %v", err)
	}
}

// TestOffGridRowsAreTheEncoders: a row whose (stage, block) is not in the
// case is not a value check's (CheckValues leaves it out of the key
// check); the encoder refuses it, in every simulation table.
func TestOffGridRowsAreTheEncoders(t *testing.T) {
	c := loadCase(t, "tiny")
	cases := []struct {
		name string
		mod  func(s *shard.Scenario) shard.TableRows
		want string
	}{
		{"hydros block", func(s *shard.Scenario) shard.TableRows {
			s.Hydros.BlockID.Values[0], s.Hydros.BlockID.Values[1] = 9, 9 // also a repeated key, off the grid
			s.Hydros.HydroID[1] = 1
			return shard.TableRows{Table: shard.Hydros, Rows: s.Hydros}
		}, "simulation/hydros row 0: stage 0 block 9 is not in the case"},
		{"hydros stage-level stage", func(s *shard.Scenario) shard.TableRows {
			s.Hydros.BlockID.Valid = make([]bool, len(s.Hydros.StageID))
			for i := range s.Hydros.StageID {
				s.Hydros.StageID[i] = int32(3 + i) // distinct keys, every stage off the grid
			}
			return shard.TableRows{Table: shard.Hydros, Rows: s.Hydros}
		}, "simulation/hydros row 0: stage 3 is not in the case"},
		{"costs stage", func(s *shard.Scenario) shard.TableRows {
			s.Costs.StageID[1] = -1
			return shard.TableRows{Table: shard.Costs, Rows: s.Costs}
		}, "simulation/costs row 1: stage -1 is not in the case"},
		{"inflow_lags stage", func(s *shard.Scenario) shard.TableRows {
			s.InflowLags.StageID[2] = 3
			return shard.TableRows{Table: shard.InflowLags, Rows: s.InflowLags}
		}, "simulation/inflow_lags row 2: stage 3 is not in the case"},
		{"violations/generic block", func(s *shard.Scenario) shard.TableRows {
			s.GenericViolations.BlockID.Values[3] = 2
			return shard.TableRows{Table: shard.GenericViolations, Rows: s.GenericViolations}
		}, "simulation/violations/generic row 3: stage 1 block 2 is not in the case"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := tc.mod(scenario(t, c, 0))
			if err := shard.CheckValues(c, tr); err != nil {
				t.Fatalf("CheckValues: %v, want nil (the encoder's)", err)
			}
			var buf bytes.Buffer
			_, err := shard.NewEncoder().Encode(&buf, tr, c)
			var be *shard.BadRowError
			if !errors.As(err, &be) || err.Error() != tc.want {
				t.Fatalf("Encode: %v, want a *BadRowError %q", err, tc.want)
			}
		})
	}
}

// TestCheckValuesConcurrent: one pool of scratch, many callers (-race).
func TestCheckValuesConcurrent(t *testing.T) {
	tiny, demo := loadCase(t, "tiny"), loadCase(t, "demo")
	scs := []*shard.Scenario{scenario(t, tiny, 0), scenario(t, demo, 0)}
	bad := scenario(t, demo, 1)
	bad.Thermals.ThermalID[0] = 999
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 20 {
				c, sc := tiny, scs[0]
				if (g+i)%2 == 1 {
					c, sc = demo, scs[1]
				}
				if err = shard.CheckValues(c, sc.Tables()...); err != nil {
					break
				}
				if err = shard.CheckValues(demo, bad.Tables()...); err == nil {
					err = errors.New("unknown thermal accepted")
					break
				}
				err = nil
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkCheckValues is the value checks of one production scenario (all
// ten tables), against encoding the same tables in memory.
func BenchmarkCheckValues(b *testing.B) {
	c := synth.Production()
	sc := scenario(b, c, 0)
	tables := sc.Tables()
	enc := shard.NewEncoder()
	var buf bytes.Buffer
	var tCheck, tEncode time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := shard.CheckValues(c, tables...); err != nil {
			b.Fatal(err)
		}
		tCheck += time.Since(t0)
		t0 = time.Now()
		for _, tr := range tables {
			buf.Reset()
			if _, err := enc.Encode(&buf, tr, c); err != nil {
				b.Fatal(err)
			}
		}
		tEncode += time.Since(t0)
	}
	b.ReportMetric(float64(tCheck.Microseconds())/float64(b.N), "check_us/scenario")
	b.ReportMetric(float64(tEncode.Microseconds())/float64(b.N), "encode_us/scenario")
	b.ReportMetric(tCheck.Seconds()/tEncode.Seconds(), "check/encode")
}
