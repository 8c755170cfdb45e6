package rank_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// TestValueChecks: WriteScenario refuses, at once and with an error that
// names the scenario, table, column and row, a scenario whose values do
// not fit the case: an id of no entity of the case (every table with an
// entity column), a repeated key, a lag outside the inflow model, NaN and
// ±Inf where a value is present. The scenario is not queued and nothing of
// it is written; the same scenario id, corrected, is then accepted, other
// scenarios go on, Close succeeds and the journal has exactly the good
// commits.
//
// NaN and ±Inf are refused in nullable columns too when the slot is not
// null: a nullable column spells "missing" as a null (Valid[i] false); a
// NaN there would be a second spelling of it that readers do not treat as
// missing (SQL IS NULL is false on it, aggregates over it give NaN). What
// lies under a null is not looked at (it is not written): see "NaN under
// a null" below, which commits.
func TestValueChecks(t *testing.T) {
	c := tinyCase(t) // 3 stages x 2 blocks; ids 1..n of every entity type; inflow_lag_order 1
	cases := []struct {
		name   string
		mod    func(s *shard.Scenario)
		table  string // "": the scenario is good and commits
		column string
		row    int
		value  string
		want   string // the whole error
	}{
		{"unknown hydro", func(s *shard.Scenario) { s.Hydros.HydroID[5] = 99 }, "simulation/hydros", "hydro_id", 5, "99",
			"scenario %d: simulation/hydros: column hydro_id row 5: id 99 is not a hydro of case tiny"},
		{"unknown thermal", func(s *shard.Scenario) { s.Thermals.ThermalID[2] = 0 }, "simulation/thermals", "thermal_id", 2, "0",
			"scenario %d: simulation/thermals: column thermal_id row 2: id 0 is not a thermal of case tiny"},
		{"unknown line", func(s *shard.Scenario) { s.Exchanges.LineID[1] = 2 }, "simulation/exchanges", "line_id", 1, "2",
			"scenario %d: simulation/exchanges: column line_id row 1: id 2 is not a line of case tiny"},
		{"unknown bus", func(s *shard.Scenario) { s.Buses.BusID[3] = 3 }, "simulation/buses", "bus_id", 3, "3",
			"scenario %d: simulation/buses: column bus_id row 3: id 3 is not a bus of case tiny"},
		{"unknown pumping station", func(s *shard.Scenario) { s.PumpingStations.PumpingStationID[0] = -1 }, "simulation/pumping_stations", "pumping_station_id", 0, "-1",
			"scenario %d: simulation/pumping_stations: column pumping_station_id row 0: id -1 is not a pumping station of case tiny"},
		{"unknown contract", func(s *shard.Scenario) { s.Contracts.ContractID[4] = 1 << 30 }, "simulation/contracts", "contract_id", 4, "1073741824",
			"scenario %d: simulation/contracts: column contract_id row 4: id 1073741824 is not a contract of case tiny"},
		{"unknown non-controllable", func(s *shard.Scenario) { s.NonControllables.NonControllableID[5] = 7 }, "simulation/non_controllables", "non_controllable_id", 5, "7",
			"scenario %d: simulation/non_controllables: column non_controllable_id row 5: id 7 is not a non-controllable of case tiny"},
		{"unknown hydro in inflow_lags", func(s *shard.Scenario) { s.InflowLags.HydroID[1] = 3 }, "simulation/inflow_lags", "hydro_id", 1, "3",
			"scenario %d: simulation/inflow_lags: column hydro_id row 1: id 3 is not a hydro of case tiny"},
		{"unknown generic constraint", func(s *shard.Scenario) { s.GenericViolations.ConstraintID[2] = 9 }, "simulation/violations/generic", "constraint_id", 2, "9",
			"scenario %d: simulation/violations/generic: column constraint_id row 2: id 9 is not a generic constraint of case tiny"},
		{"lag outside the model", func(s *shard.Scenario) { s.InflowLags.LagIndex[3] = 2 }, "simulation/inflow_lags", "lag_index", 3, "2",
			"scenario %d: simulation/inflow_lags: column lag_index row 3: lag 2 is not in 1..1, the inflow_lag_order of case tiny"},
		// Rows 0 and 1 of hydros are (stage 0, block 0, hydro 1) and (0, 0, 2).
		{"duplicate key", func(s *shard.Scenario) { s.Hydros.HydroID[1] = 1 }, "simulation/hydros", "(stage_id, block_id, hydro_id)", 1, "(0, 0, 1)",
			"scenario %d: simulation/hydros: column (stage_id, block_id, hydro_id) row 1: key (stage_id, block_id, hydro_id) = (0, 0, 1) repeats row 0"},
		{"duplicate costs stage", func(s *shard.Scenario) { s.Costs.StageID[2] = 1 }, "simulation/costs", "(stage_id, block_id)", 2, "(1, null)",
			"scenario %d: simulation/costs: column (stage_id, block_id) row 2: key (stage_id, block_id) = (1, null) repeats row 1"},
		{"NaN", func(s *shard.Scenario) { s.Hydros.StorageFinalHm3[9] = math.NaN() }, "simulation/hydros", "storage_final_hm3", 9, "NaN",
			"scenario %d: simulation/hydros: column storage_final_hm3 row 9: NaN is not a finite number (the column is not nullable, and only finite numbers are written)"},
		{"+Inf", func(s *shard.Scenario) { s.Buses.SpotPrice[11] = math.Inf(1) }, "simulation/buses", "spot_price", 11, "+Inf",
			"scenario %d: simulation/buses: column spot_price row 11: +Inf is not a finite number (the column is not nullable, and only finite numbers are written)"},
		{"-Inf", func(s *shard.Scenario) { s.Costs.ImmediateCost[0] = math.Inf(-1) }, "simulation/costs", "immediate_cost", 0, "-Inf",
			"scenario %d: simulation/costs: column immediate_cost row 0: -Inf is not a finite number (the column is not nullable, and only finite numbers are written)"},
		{"NaN in a nullable column, not null", func(s *shard.Scenario) {
			n := len(s.Hydros.StageID)
			s.Hydros.ProductivityMWPerM3s = shard.NullFloat64{Values: make([]float64, n), Valid: make([]bool, n)}
			s.Hydros.ProductivityMWPerM3s.Values[6], s.Hydros.ProductivityMWPerM3s.Valid[6] = math.NaN(), true
		}, "simulation/hydros", "productivity_mw_per_m3s", 6, "NaN",
			"scenario %d: simulation/hydros: column productivity_mw_per_m3s row 6: NaN is not a finite number (a missing value is a null, never NaN or ±Inf)"},
		{"NaN under a null", func(s *shard.Scenario) {
			n := len(s.Hydros.StageID)
			s.Hydros.ProductivityMWPerM3s = shard.NullFloat64{Values: make([]float64, n), Valid: make([]bool, n)}
			s.Hydros.ProductivityMWPerM3s.Values[6] = math.NaN()
		}, "", "", 0, "", ""},
	}
	out := t.TempDir()
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: len(cases)})
	if err != nil {
		t.Fatal(err)
	}
	for s, tc := range cases {
		bad := gen(t, c, s)
		tc.mod(bad)
		err := w.WriteScenario(ctx, bad)
		if tc.table == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var se *rank.ScenarioError
		var ve *shard.ValueError
		switch {
		case err == nil:
			t.Errorf("%s: accepted", tc.name)
			continue
		case err.Error() != sprintf(tc.want, s):
			t.Errorf("%s:\n  %v\nwant\n  %s", tc.name, err, sprintf(tc.want, s))
		case !errors.As(err, &se) || se.Scenario != s:
			t.Errorf("%s: %v is not a *rank.ScenarioError of scenario %d", tc.name, err, s)
		case !errors.As(err, &ve):
			t.Errorf("%s: %v does not wrap a *shard.ValueError", tc.name, err)
		case ve.Table != tc.table || ve.Column != tc.column || ve.Row != tc.row || ve.Value != tc.value:
			t.Errorf("%s: %+v, want table %s column %s row %d value %s", tc.name, *ve, tc.table, tc.column, tc.row, tc.value)
		}
		// Not queued: the corrected scenario, same id, is accepted.
		if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Errorf("%s: the corrected scenario: %v", tc.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := make([]int, len(cases))
	for s := range want {
		want[s] = s
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("committed %v, want %v", got, want)
	}
	st := readJournals(t, out)
	order := append([]int(nil), st.order...)
	sort.Ints(order)
	if !reflect.DeepEqual(order, want) {
		t.Errorf("journal commits %v, want each of %v once", st.order, want)
	}
	if len(st.closes) != 1 || st.closes[0].Committed != len(cases) {
		t.Errorf("close records %+v", st.closes)
	}
	if left, _ := os.ReadDir(filepath.Join(out, layout.TempDir)); len(left) != 0 {
		t.Errorf("%d files left in tmp", len(left))
	}
}

func sprintf(format string, s int) string {
	if format == "" {
		return ""
	}
	return fmt.Sprintf(format, s)
}

// TestOffGridRowFoundWhileEncoding: a row off the case's (stage, block)
// grid in a table without an energy column (violations/generic) is the
// encoder's to find, as in the tables with one: the scenario is not
// committed, the next call reports it, the writer goes on.
func TestOffGridRowFoundWhileEncoding(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 2})
	if err != nil {
		t.Fatal(err)
	}
	bad := gen(t, c, 0)
	bad.GenericViolations.StageID[0] = 3 // the case has stages 0..2
	if err := w.WriteScenario(ctx, bad); err != nil {
		t.Fatalf("WriteScenario: %v", err)
	}
	err = w.Flush(ctx)
	var be *shard.BadRowError
	if !errors.As(err, &be) || be.Table != "simulation/violations/generic" || be.Row != 0 {
		t.Fatalf("Flush: %v, want the encoder's *shard.BadRowError for violations/generic row 0", err)
	}
	for s := range 2 {
		if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Fatalf("scenario %d: %v", s, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{0, 1}) {
		t.Fatalf("committed %v", got)
	}
}

// TestValueChecksKeepBytes: well-formed production scenarios pass the
// checks unchanged: every file the rank writer commits has exactly the
// bytes of the same table encoded directly (the checks read, never
// write, the caller's slices).
func TestValueChecksKeepBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("production scale")
	}
	c := synth.Production()
	out := t.TempDir()
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 2, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var scs []*shard.Scenario
	for s := range 2 {
		sc, err := synth.Generate(c, 1, s)
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
		if err := w.WriteScenario(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := dataFiles(t, out)
	enc := shard.NewEncoder()
	var buf bytes.Buffer
	n := 0
	for _, sc := range scs {
		for _, tr := range sc.Tables() {
			buf.Reset()
			if _, err := enc.Encode(&buf, tr, c); err != nil {
				t.Fatal(err)
			}
			p := layout.DataFile(tr.Table.Entity, 0, sc.ID)
			got, ok := files[p]
			if !ok {
				t.Errorf("%s not written", p)
				continue
			}
			if want := xxhash.Sum64(buf.Bytes()); got != want {
				t.Errorf("%s: xxh64 %016x, direct encoding %016x", p, got, want)
			}
			n++
		}
	}
	if n != 2*len(shard.SimulationTables) || len(files) != n {
		t.Errorf("compared %d files of %d, want %d", n, len(files), 2*len(shard.SimulationTables))
	}
}
