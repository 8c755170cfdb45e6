package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// casesDir is where the case files live (tests run in the package dir).
var casesDir = filepath.Join("..", "..", "testdata", "cases")

func loadCase(t testing.TB, name string) *manifest.Case {
	t.Helper()
	if c, ok := Builtin(name); ok {
		return c
	}
	c, err := manifest.LoadCase(filepath.Join(casesDir, name))
	if err != nil {
		t.Fatalf("loading case %s: %v", name, err)
	}
	return c
}

func generate(t testing.TB, c *manifest.Case, seed uint64, scenario int) *shard.Scenario {
	t.Helper()
	s, err := Generate(c, seed, scenario)
	if err != nil {
		t.Fatalf("Generate(%s, %d, %d): %v", c.Name, seed, scenario, err)
	}
	return s
}

// near reports whether a and b agree to a relative 1e-9 of mag (at least 1).
func near(a, b, mag float64) bool {
	return math.Abs(a-b) <= 1e-9*max(1, math.Abs(mag))
}

// valid reports whether row r of a nullable column holds a value.
func valid(c shard.NullFloat64, r int) bool {
	return c.Values != nil && (c.Valid == nil || c.Valid[r])
}

// val returns row r of a nullable column, 0 when null (as the physics reads it).
func val(c shard.NullFloat64, r int) float64 {
	if !valid(c, r) {
		return 0
	}
	return c.Values[r]
}

const conv = 3600 / 1e6 // m3/s for one hour, in hm3

// errs collects the failures of one check, reporting only the first few of
// each kind so that a broken invariant does not flood the log.
type errs struct {
	t    *testing.T
	seen map[string]int
}

func (e *errs) check(ok bool, kind, format string, args ...any) {
	if ok {
		return
	}
	e.t.Helper()
	if e.seen == nil {
		e.seen = map[string]int{}
	}
	e.seen[kind]++
	if e.seen[kind] <= 3 {
		e.t.Errorf("%s: "+format, append([]any{kind}, args...)...)
	}
}

func TestCasesValidate(t *testing.T) {
	for _, name := range []string{"tiny", "demo", "production", "xl"} {
		c := loadCase(t, name)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if c.Name != name {
			t.Errorf("case %s has Name %q", name, c.Name)
		}
		// Entity lists are in ascending id order (rows follow case order).
		asc := func(kind string, ids []int32) {
			for i := 1; i < len(ids); i++ {
				if ids[i] <= ids[i-1] {
					t.Errorf("%s: %s ids not ascending at %d: %v", name, kind, i, ids[i-1:i+1])
				}
			}
		}
		asc("bus", idsOf(c.Buses, func(b manifest.Bus) int32 { return b.ID }))
		asc("hydro", idsOf(c.Hydros, func(h manifest.Hydro) int32 { return h.ID }))
		asc("thermal", idsOf(c.Thermals, func(h manifest.Thermal) int32 { return h.ID }))
		asc("line", idsOf(c.Lines, func(h manifest.Line) int32 { return h.ID }))
		asc("pumping", idsOf(c.PumpingStations, func(h manifest.PumpingStation) int32 { return h.ID }))
		asc("contract", idsOf(c.Contracts, func(h manifest.Contract) int32 { return h.ID }))
		asc("non-controllable", idsOf(c.NonControllables, func(h manifest.NonControllable) int32 { return h.ID }))
		asc("generic", idsOf(c.GenericConstraints, func(h manifest.GenericConstraint) int32 { return h.ID }))
		// Round trip through the strict decoder.
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		d, err := manifest.DecodeCase(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: strict decode of its own encoding: %v", name, err)
		} else if d.Hash() != c.Hash() {
			t.Errorf("%s: hash changes through a JSON round trip", name)
		}
	}
}

func TestCaseShapes(t *testing.T) {
	tiny := loadCase(t, "tiny")
	want := map[string]int{"stages": 3, "blocks": 2, "buses": 2, "hydros": 2, "thermals": 2, "lines": 1, "pumping": 1, "contracts": 1, "nc": 1, "lag": 1, "generic": 1}
	if got := shape(tiny); !reflect.DeepEqual(got, want) {
		t.Errorf("tiny shape %v, want %v", got, want)
	}
	gnl, cascade := 0, false
	for _, th := range tiny.Thermals {
		if th.GNL {
			gnl++
		}
	}
	for _, h := range tiny.Hydros {
		if h.DownstreamID >= 0 {
			cascade = true
		}
	}
	if gnl != 1 || !cascade {
		t.Errorf("tiny: %d GNL thermals (want 1), cascade %v (want true)", gnl, cascade)
	}
	tricky := false
	for _, h := range tiny.Hydros {
		if strings.ContainsAny(h.Name, ",") && strings.Contains(h.Name, `"`) && utf8.RuneCountInString(h.Name) < len(h.Name) {
			tricky = true
		}
	}
	if !tricky {
		t.Error("tiny: no hydro name with a comma, a double quote and a non-ASCII character")
	}

	demo := loadCase(t, "demo")
	got := shape(demo)
	if got["stages"] != 12 || got["blocks"] != 3 || got["buses"] != 3 || got["lag"] != 2 || got["thermals"] != 8 ||
		got["lines"] != 3 || got["pumping"] != 1 || got["contracts"] != 1 || got["nc"] != 2 || got["generic"] != 2 ||
		got["hydros"] < 9 || got["hydros"] > 12 {
		t.Errorf("demo shape %v", got)
	}

	prod := Production()
	got = shape(prod)
	if got["stages"] != 60 || got["blocks"] != 3 || got["hydros"] != 160 || got["thermals"] != 130 || got["buses"] != 6 ||
		got["lines"] != 10 || got["lag"] != 2 || got["pumping"] == 0 || got["contracts"] == 0 || got["nc"] == 0 || got["generic"] == 0 {
		t.Errorf("production shape %v", got)
	}
	if !reflect.DeepEqual(Production(), prod) || Production().Hash() != prod.Hash() {
		t.Error("Production() is not deterministic")
	}
	xl := XL()
	if got := xl.Stages * len(xl.Hours) * len(xl.Hydros); got != 96_000 {
		t.Errorf("xl: %d hydro rows per scenario, want 96000", got)
	}
	if got := prod.Stages * len(prod.Hours) * len(prod.Hydros); got != 28_800 {
		t.Errorf("production: %d hydro rows per scenario, want 28800", got)
	}
	for _, name := range []string{"production", "xl"} {
		if c, ok := Builtin(name); !ok || c.Name != name {
			t.Errorf("Builtin(%q) = %v, %v", name, c, ok)
		}
	}
	if c, ok := Builtin("tiny"); ok || c != nil {
		t.Error(`Builtin("tiny") should not exist`)
	}
}

func shape(c *manifest.Case) map[string]int {
	return map[string]int{
		"stages": c.Stages, "blocks": len(c.Hours), "buses": len(c.Buses), "hydros": len(c.Hydros),
		"thermals": len(c.Thermals), "lines": len(c.Lines), "pumping": len(c.PumpingStations),
		"contracts": len(c.Contracts), "nc": len(c.NonControllables), "lag": c.InflowLagOrder,
		"generic": len(c.GenericConstraints),
	}
}

func TestPhysics(t *testing.T) {
	for _, tc := range []struct {
		name      string
		scenarios []int
	}{
		{"tiny", []int{0, 1, 2, 3, 17}},
		{"demo", []int{0, 1, 5, 42}},
		{"production", []int{0, 7}},
	} {
		c := loadCase(t, tc.name)
		for _, sc := range tc.scenarios {
			t.Run(fmt.Sprintf("%s/%d", tc.name, sc), func(t *testing.T) {
				s := generate(t, c, 20260101, sc)
				checkScenario(t, c, s)
				checkEncodes(t, c, s)
			})
		}
	}
}

// TestStorageViolation drives a reservoir below its minimum (evaporation
// larger than its inflow, starting at the minimum, no pumping) and checks
// that the violation is recorded, penalised, and that the physics still hold.
func TestStorageViolation(t *testing.T) {
	c := loadCase(t, "tiny")
	c.PumpingStations = nil
	c.Hydros[0].MeanInflowM3s = 0.05
	c.Hydros[0].StorageInitialHm3 = c.Hydros[0].StorageMinHm3
	c.Hydros[0].Evaporation = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := generate(t, c, 1, 0)
	checkScenario(t, c, s)
	checkEncodes(t, c, s)
	if s.PumpingStations != nil || s.Hydros.DivertedInflowM3s.Values != nil || s.Hydros.DivertedOutflowM3s.Values != nil {
		t.Error("no pumping stations: the table must be nil and the diversions null")
	}
	n, cost := 0, 0.0
	for r, v := range s.Hydros.StorageViolationBelowHm3 {
		if v > 0 {
			n++
			if c := s.Hydros.StorageBindingCode[r]; c != StorageBindingBelowMinimum && c != StorageBindingBoth {
				t.Errorf("row %d: violation %v with binding code %d", r, v, s.Hydros.StorageBindingCode[r])
			}
		}
	}
	for _, v := range s.Costs.StorageViolationCost {
		cost += v
	}
	if n == 0 || !(cost > 0) {
		t.Errorf("expected storage violations: %d rows, cost %v", n, cost)
	}
}

// TestSparseCase: a case with buses and thermals only (lag order > 0 but no
// hydros) has nil tables for every absent entity type.
func TestSparseCase(t *testing.T) {
	c := loadCase(t, "tiny")
	c.Hydros, c.PumpingStations, c.Lines, c.Contracts, c.NonControllables, c.GenericConstraints = nil, nil, nil, nil, nil, nil
	c.InflowLagOrder = 2
	s := generate(t, c, 3, 4)
	checkScenario(t, c, s)
	checkEncodes(t, c, s)
	if s.Hydros != nil || s.InflowLags != nil || s.Exchanges != nil || s.PumpingStations != nil ||
		s.Contracts != nil || s.NonControllables != nil || s.GenericViolations != nil {
		t.Error("absent entity types must give nil tables")
	}
	// Thermals alone cannot serve this load: deficits and their price.
	def := 0
	for _, d := range s.Buses.DeficitMW {
		if d > 0 {
			def++
		}
	}
	if def == 0 {
		t.Error("expected deficits with thermals only")
	}

	c = loadCase(t, "tiny")
	c.InflowLagOrder = 0
	s = generate(t, c, 3, 4)
	checkScenario(t, c, s)
	if s.InflowLags != nil {
		t.Error("lag order 0: inflow_lags must be nil")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Generate(nil, 1, 0); err == nil {
		t.Error("nil case: no error")
	}
	c := loadCase(t, "tiny")
	if _, err := Generate(c, 1, -1); err == nil {
		t.Error("negative scenario: no error")
	}
	c.Hydros[1].DownstreamID = c.Hydros[0].ID // 1 -> 2 -> 1
	if _, err := Generate(c, 1, 0); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cascade cycle: err = %v", err)
	}
	c = loadCase(t, "tiny")
	c.Version = 99
	if _, err := Generate(c, 1, 0); err == nil {
		t.Error("invalid case: no error")
	}
}

func TestDeterminism(t *testing.T) {
	for _, name := range []string{"tiny", "demo", "production"} {
		c := loadCase(t, name)
		a := generate(t, c, 99, 5)
		// Other scenarios in between must not matter (no shared state).
		generate(t, c, 99, 6)
		generate(t, loadCase(t, "tiny"), 1, 0)
		b := generate(t, loadCase(t, name), 99, 5)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two generations of (seed 99, scenario 5) differ", name)
		}
		if o := generate(t, c, 99, 6); reflect.DeepEqual(a.Hydros, o.Hydros) || reflect.DeepEqual(a.Costs, o.Costs) {
			t.Errorf("%s: scenarios 5 and 6 give the same data", name)
		}
		if o := generate(t, c, 100, 5); reflect.DeepEqual(a.Hydros, o.Hydros) || reflect.DeepEqual(a.Costs, o.Costs) {
			t.Errorf("%s: seeds 99 and 100 give the same data", name)
		}
		if a.ID != 5 {
			t.Errorf("%s: Scenario.ID = %d, want 5", name, a.ID)
		}
	}
}

func TestCost(t *testing.T) {
	for _, name := range []string{"tiny", "demo", "production"} {
		c := loadCase(t, name)
		s := generate(t, c, 11, 2)
		total, stages := Cost(s)
		if len(stages) != c.Stages {
			t.Fatalf("%s: %d stage costs, want %d", name, len(stages), c.Stages)
		}
		sum, want, mag := 0.0, 0.0, 0.0
		for st, v := range stages {
			sum += v
			df := 1 / math.Pow(1+c.DiscountRate, float64(st))
			imm := recomputeImmediate(c, s, st)
			if !near(v, df*imm, math.Abs(df*imm)) {
				t.Errorf("%s: stage %d cost %v, want %v", name, st, v, df*imm)
			}
			want += df * imm
			mag += math.Abs(df * imm)
		}
		if !near(total, sum, mag) || !near(total, want, mag) {
			t.Errorf("%s: total %v, sum of stages %v, recomputed %v", name, total, sum, want)
		}
		if !(total > 0) {
			t.Errorf("%s: total cost %v, want > 0", name, total)
		}
	}
	if total, stages := Cost(&shard.Scenario{}); total != 0 || stages != nil {
		t.Error("Cost of a scenario without costs")
	}
}

// recomputeImmediate sums the stage's costs from the entity tables.
func recomputeImmediate(c *manifest.Case, s *shard.Scenario, stage int) float64 {
	comp := stageComponents(c, s)
	sum := 0.0
	for _, v := range comp[stage] {
		sum += v
	}
	return sum
}

// stageComponents recomputes, per stage, the cost components from the
// entity tables and the case: thermal, contract, deficit, excess, spillage,
// exchange, pumping, curtailment, generic, storage violation.
func stageComponents(c *manifest.Case, s *shard.Scenario) []map[string]float64 {
	out := make([]map[string]float64, c.Stages)
	for i := range out {
		out[i] = map[string]float64{}
	}
	hours := func(_ []int32, b shard.NullInt32, r int) float64 { return c.Hours[b.Values[r]] }
	if x := s.Thermals; x != nil {
		cost := map[int32]float64{}
		for _, th := range c.Thermals {
			cost[th.ID] = th.CostPerMWh
		}
		for r := range x.StageID {
			out[x.StageID[r]]["thermal"] += x.GenerationMW[r] * hours(x.StageID, x.BlockID, r) * cost[x.ThermalID[r]]
		}
	}
	if x := s.Contracts; x != nil {
		price := map[int32]float64{}
		for _, k := range c.Contracts {
			price[k.ID] = k.PricePerMWh
		}
		for r := range x.StageID {
			out[x.StageID[r]]["contract"] += x.PowerMW[r] * hours(x.StageID, x.BlockID, r) * price[x.ContractID[r]]
		}
	}
	{
		x := s.Buses
		bus := map[int32]manifest.Bus{}
		for _, b := range c.Buses {
			bus[b.ID] = b
		}
		for r := range x.StageID {
			h := hours(x.StageID, x.BlockID, r)
			out[x.StageID[r]]["deficit"] += x.DeficitMW[r] * h * bus[x.BusID[r]].DeficitCost
			out[x.StageID[r]]["excess"] += x.ExcessMW[r] * h * bus[x.BusID[r]].ExcessCost
		}
	}
	if x := s.Hydros; x != nil {
		sc := map[int32]float64{}
		for _, h := range c.Hydros {
			sc[h.ID] = h.SpillageCost
		}
		for r := range x.StageID {
			h := hours(x.StageID, x.BlockID, r)
			out[x.StageID[r]]["spillage"] += x.SpillageM3s[r] * h * conv * sc[x.HydroID[r]]
			out[x.StageID[r]]["storage_violation"] += x.StorageViolationBelowHm3[r] * StorageViolationPenalty
		}
	}
	if x := s.Exchanges; x != nil {
		lc := map[int32]float64{}
		for _, l := range c.Lines {
			lc[l.ID] = l.CostPerMWh
		}
		for r := range x.StageID {
			out[x.StageID[r]]["exchange"] += (x.DirectFlowMW[r] + x.ReverseFlowMW[r]) * hours(x.StageID, x.BlockID, r) * lc[x.LineID[r]]
		}
	}
	if x := s.PumpingStations; x != nil {
		pc := map[int32]float64{}
		for _, p := range c.PumpingStations {
			pc[p.ID] = p.CostPerMWh
		}
		for r := range x.StageID {
			out[x.StageID[r]]["pumping"] += x.PowerConsumptionMW[r] * hours(x.StageID, x.BlockID, r) * pc[x.PumpingStationID[r]]
		}
	}
	if x := s.NonControllables; x != nil {
		cc := map[int32]float64{}
		for _, n := range c.NonControllables {
			cc[n.ID] = n.CurtailmentCost
		}
		for r := range x.StageID {
			out[x.StageID[r]]["curtailment"] += x.CurtailmentMW[r] * hours(x.StageID, x.BlockID, r) * cc[x.NonControllableID[r]]
		}
	}
	if x := s.GenericViolations; x != nil {
		pen := map[int32]float64{}
		for _, g := range c.GenericConstraints {
			pen[g.ID] = g.Penalty
		}
		for r := range x.StageID {
			out[x.StageID[r]]["generic"] += x.SlackValue[r] * pen[x.ConstraintID[r]]
		}
	}
	return out
}

func TestRowCounts(t *testing.T) {
	for _, name := range []string{"production", "xl"} {
		c := loadCase(t, name)
		s := generate(t, c, 5, 1)
		want := map[string]int{"hydros": 28_800}
		if name == "xl" {
			want["hydros"] = 96_000
		}
		if got := len(s.Hydros.StageID); got != want["hydros"] {
			t.Errorf("%s: %d hydro rows, want %d", name, got, want["hydros"])
		}
		checkCounts(t, c, s)
	}
}

// checkCounts checks the tables present against the case's entity list and
// the row count of each against stages x blocks x entities.
func checkCounts(t *testing.T, c *manifest.Case, s *shard.Scenario) {
	t.Helper()
	var got []string
	for _, tr := range s.Tables() {
		got = append(got, tr.Table.Entity)
	}
	if want := c.Entities(); !reflect.DeepEqual(got, want) {
		t.Errorf("tables %v, want %v (Case.Entities)", got, want)
	}
	T, B := c.Stages, len(c.Hours)
	rows := func(name string, n, want int) {
		if n != want {
			t.Errorf("%s: %d rows, want %d", name, n, want)
		}
	}
	rows("costs", len(s.Costs.StageID), T)
	rows("buses", len(s.Buses.StageID), T*B*len(c.Buses))
	if s.Hydros != nil {
		rows("hydros", len(s.Hydros.StageID), T*B*len(c.Hydros))
	}
	if s.Thermals != nil {
		rows("thermals", len(s.Thermals.StageID), T*B*len(c.Thermals))
	}
	if s.Exchanges != nil {
		rows("exchanges", len(s.Exchanges.StageID), T*B*len(c.Lines))
	}
	if s.PumpingStations != nil {
		rows("pumping_stations", len(s.PumpingStations.StageID), T*B*len(c.PumpingStations))
	}
	if s.Contracts != nil {
		rows("contracts", len(s.Contracts.StageID), T*B*len(c.Contracts))
	}
	if s.NonControllables != nil {
		rows("non_controllables", len(s.NonControllables.StageID), T*B*len(c.NonControllables))
	}
	if s.InflowLags != nil {
		rows("inflow_lags", len(s.InflowLags.StageID), T*len(c.Hydros)*c.InflowLagOrder)
	}
	if s.GenericViolations != nil {
		rows("violations/generic", len(s.GenericViolations.StageID), T*B*len(c.GenericConstraints))
	}
}

// checkEncodes hands every table to the writer's record builder: lengths,
// types and nullability must be accepted and derived columns computable.
func checkEncodes(t *testing.T, c *manifest.Case, s *shard.Scenario) {
	t.Helper()
	enc := shard.NewEncoder()
	for _, tr := range s.Tables() {
		rec, err := enc.Record(tr, c)
		if err != nil {
			t.Errorf("%s: %v", tr.Table.Name, err)
			continue
		}
		rec.Release()
	}
}

// checkKeys checks that a block-level table is ordered by stage, block, then
// entity in case order, with a non-null block id.
func checkKeys(e *errs, table string, c *manifest.Case, stage []int32, block shard.NullInt32, ent []int32, ids []int32) {
	n := c.Stages * len(c.Hours) * len(ids)
	e.check(len(stage) == n && len(ent) == n && len(block.Values) == n && block.Valid == nil, table+" keys",
		"lengths %d %d %d (valid %v), want %d", len(stage), len(ent), len(block.Values), block.Valid != nil, n)
	if len(stage) != n || len(ent) != n || len(block.Values) != n {
		return
	}
	r := 0
	for st := range c.Stages {
		for b := range len(c.Hours) {
			for _, id := range ids {
				e.check(stage[r] == int32(st) && block.Values[r] == int32(b) && ent[r] == id, table+" order",
					"row %d is (%d, %d, %d), want (%d, %d, %d)", r, stage[r], block.Values[r], ent[r], st, b, id)
				r++
			}
		}
	}
}

// checkScenario checks every physical invariant of a scenario, recomputing
// from the case and the rows only.
func checkScenario(t *testing.T, c *manifest.Case, s *shard.Scenario) {
	checkCounts(t, c, s)
	e := &errs{t: t}
	T, B := c.Stages, len(c.Hours)
	nH, nBus := len(c.Hydros), len(c.Buses)

	busIdx := map[int32]int{}
	for i, b := range c.Buses {
		busIdx[b.ID] = i
	}
	hydIdx := map[int32]int{}
	for i, h := range c.Hydros {
		hydIdx[h.ID] = i
	}
	// Per (stage, block, bus) supply terms, for the bus balance.
	type terms struct{ sum, mag float64 }
	balance := make([]terms, T*B*nBus)
	add := func(st, b int32, bus int32, v float64) {
		k := (int(st)*B+int(b))*nBus + busIdx[bus]
		balance[k].sum += v
		balance[k].mag += math.Abs(v)
	}

	// Pumping stations (needed by the hydro water balance).
	pumpIn := make([]float64, T*B*nH)
	pumpOut := make([]float64, T*B*nH)
	isTo, isFrom := make([]bool, nH), make([]bool, nH)
	for _, p := range c.PumpingStations {
		isTo[hydIdx[p.ToHydroID]] = true
		isFrom[hydIdx[p.FromHydroID]] = true
	}
	if x := s.PumpingStations; x != nil {
		checkKeys(e, "pumping", c, x.StageID, x.BlockID, x.PumpingStationID, idsOf(c.PumpingStations, func(p manifest.PumpingStation) int32 { return p.ID }))
		for r := range x.StageID {
			p := c.PumpingStations[r%len(c.PumpingStations)]
			st, b := x.StageID[r], x.BlockID.Values[r]
			h := c.Hours[b]
			f := x.PumpedFlowM3s[r]
			e.check(f >= 0 && f <= p.MaxFlowM3s*(1+1e-12), "pumped flow bounds", "row %d: %v not in [0, %v]", r, f, p.MaxFlowM3s)
			e.check(near(x.PowerConsumptionMW[r], f*p.MWPerM3s, x.PowerConsumptionMW[r]), "pumping power", "row %d", r)
			e.check(near(x.PumpingCost[r], x.PowerConsumptionMW[r]*h*p.CostPerMWh, x.PumpingCost[r]), "pumping cost", "row %d", r)
			e.check(x.OperativeStateCode[r] == OperativeOperating, "pumping state", "row %d", r)
			k := int(st)*B + int(b)
			pumpIn[k*nH+hydIdx[p.ToHydroID]] += f
			pumpOut[k*nH+hydIdx[p.FromHydroID]] += f
			add(st, b, p.BusID, -x.PowerConsumptionMW[r])
		}
	}

	// Hydros.
	if x := s.Hydros; x != nil {
		checkKeys(e, "hydros", c, x.StageID, x.BlockID, x.HydroID, idsOf(c.Hydros, func(h manifest.Hydro) int32 { return h.ID }))
		var incSum, meanSum float64
		for r := range x.StageID {
			i := r % nH
			h := c.Hydros[i]
			st, b := x.StageID[r], x.BlockID.Values[r]
			hours := c.Hours[b]
			k := int(st)*B + int(b)
			tur, spill := x.TurbinedM3s[r], x.SpillageM3s[r]
			e.check(tur >= 0 && tur <= h.TurbinedMaxM3s*(1+1e-12), "turbined bounds", "row %d: %v not in [0, %v]", r, tur, h.TurbinedMaxM3s)
			e.check(spill >= 0, "spillage >= 0", "row %d: %v", r, spill)
			e.check(valid(x.EvaporationM3s, r) == h.Evaporation, "evaporation null iff not modelled", "row %d hydro %d", r, h.ID)
			e.check(val(x.EvaporationM3s, r) >= 0, "evaporation >= 0", "row %d", r)
			e.check(valid(x.DivertedInflowM3s, r) == isTo[i], "diverted inflow valid iff pumped into", "row %d hydro %d", r, h.ID)
			e.check(valid(x.DivertedOutflowM3s, r) == isFrom[i], "diverted outflow valid iff pumped from", "row %d hydro %d", r, h.ID)
			e.check(near(val(x.DivertedInflowM3s, r), pumpIn[k*nH+i], pumpIn[k*nH+i]), "diverted inflow = pumped in", "row %d", r)
			e.check(near(val(x.DivertedOutflowM3s, r), pumpOut[k*nH+i], pumpOut[k*nH+i]), "diverted outflow = pumped out", "row %d", r)
			e.check(valid(x.ProductivityMWPerM3s, r) && x.ProductivityMWPerM3s.Values[r] == h.Productivity, "productivity", "row %d", r)
			e.check(near(x.GenerationMW[r], h.Productivity*tur, x.GenerationMW[r]), "generation = productivity x turbined", "row %d", r)
			e.check(x.IncrementalInflowM3s[r] >= 0, "incremental inflow >= 0", "row %d", r)
			e.check(x.IncrementalInflowM3s[r] == x.IncrementalInflowM3s[int(st)*B*nH+i], "incremental inflow constant within the stage", "row %d", r)
			if b == 0 {
				incSum += x.IncrementalInflowM3s[r]
				meanSum += h.MeanInflowM3s
			}
			// Total inflow: incremental plus the upstream outflows.
			in, mag := x.IncrementalInflowM3s[r], x.IncrementalInflowM3s[r]
			for j, u := range c.Hydros {
				if u.DownstreamID == h.ID {
					ru := k*nH + j
					in += x.TurbinedM3s[ru] + x.SpillageM3s[ru]
					mag += x.TurbinedM3s[ru] + x.SpillageM3s[ru]
				}
			}
			e.check(near(x.InflowM3s[r], in, mag), "inflow = incremental + upstream outflow", "row %d: %v, want %v", r, x.InflowM3s[r], in)
			// Water balance.
			s0, sf := x.StorageInitialHm3[r], x.StorageFinalHm3[r]
			flows := []float64{x.InflowM3s[r], val(x.DivertedInflowM3s, r), -tur, -spill, -val(x.EvaporationM3s, r), -val(x.DivertedOutflowM3s, r)}
			want, wmag := s0, math.Abs(s0)
			for _, f := range flows {
				want += f * hours * conv
				wmag += math.Abs(f * hours * conv)
			}
			e.check(near(sf, want, wmag), "water balance", "row %d hydro %d stage %d block %d: final %v, want %v", r, h.ID, st, b, sf, want)
			// Chaining.
			if k == 0 {
				e.check(s0 == h.StorageInitialHm3, "first storage = initial", "hydro %d: %v, want %v", h.ID, s0, h.StorageInitialHm3)
			} else {
				prev := x.StorageFinalHm3[(k-1)*nH+i]
				e.check(s0 == prev, "storage chains", "row %d: initial %v, previous final %v", r, s0, prev)
			}
			// Bounds, violations and binding codes.
			viol := x.StorageViolationBelowHm3[r]
			tol := 1e-9 * max(1, h.StorageMaxHm3)
			e.check(sf <= h.StorageMaxHm3+tol, "storage <= max", "row %d: %v > %v", r, sf, h.StorageMaxHm3)
			e.check(viol >= 0, "violation >= 0", "row %d", r)
			if viol > 0 {
				e.check(near(sf+viol, h.StorageMinHm3, h.StorageMinHm3), "violation = min - storage", "row %d: final %v + %v, min %v", r, sf, viol, h.StorageMinHm3)
			} else {
				e.check(sf >= h.StorageMinHm3-tol, "storage >= min without violation", "row %d: %v < %v", r, sf, h.StorageMinHm3)
			}
			code := x.StorageBindingCode[r]
			switch {
			case sf <= h.StorageMinHm3 && sf >= h.StorageMaxHm3:
				e.check(code == StorageBindingBoth, "binding code", "row %d: storage %v at min %v and max %v, code %d", r, sf, h.StorageMinHm3, h.StorageMaxHm3, code)
			case sf <= h.StorageMinHm3:
				e.check(code == StorageBindingBelowMinimum, "binding code", "row %d: storage %v at min %v, code %d", r, sf, h.StorageMinHm3, code)
			case sf >= h.StorageMaxHm3:
				e.check(code == StorageBindingAboveMaximum, "binding code", "row %d: storage %v at max %v, code %d", r, sf, h.StorageMaxHm3, code)
			default:
				e.check(code == StorageBindingNone, "binding code", "row %d: storage %v inside (%v, %v), code %d", r, sf, h.StorageMinHm3, h.StorageMaxHm3, code)
			}
			e.check(near(x.SpillageCost[r], spill*hours*conv*h.SpillageCost, x.SpillageCost[r]), "spillage cost", "row %d", r)
			e.check(x.WaterValuePerHm3[r] > 0, "water value > 0", "row %d: %v", r, x.WaterValuePerHm3[r])
			e.check(x.OperativeStateCode[r] == OperativeOperating, "hydro state", "row %d", r)
			for name, col := range map[string][]float64{
				"turbined_slack": x.TurbinedSlackM3s, "outflow_slack_below": x.OutflowSlackBelowM3s, "outflow_slack_above": x.OutflowSlackAboveM3s,
				"generation_slack": x.GenerationSlackMW, "filling_target": x.FillingTargetViolationHm3, "evaporation_pos": x.EvaporationViolationPosM3s,
				"evaporation_neg": x.EvaporationViolationNegM3s, "inflow_nonnegativity": x.InflowNonnegativitySlackM3s,
				"withdrawal_pos": x.WaterWithdrawalViolationPosM3s, "withdrawal_neg": x.WaterWithdrawalViolationNegM3s,
			} {
				e.check(col[r] == 0, "zero slacks", "%s row %d: %v", name, r, col[r])
			}
			add(st, b, h.BusID, x.GenerationMW[r])
		}
		// The inflow process stays around its mean (loose: seasonality
		// and lognormal noise average out over the horizon).
		if meanSum > 0 {
			ratio := incSum / meanSum
			e.check(ratio > 0.4 && ratio < 2.5, "inflow level", "incremental / mean = %v", ratio)
		}
	}

	// Inflow lags.
	if p := c.InflowLagOrder; p > 0 && nH > 0 {
		x := s.InflowLags
		n := T * nH * p
		e.check(x != nil && len(x.StageID) == n && len(x.HydroID) == n && len(x.LagIndex) == n && len(x.InflowM3s) == n, "inflow_lags shape", "want %d rows", n)
		if x != nil && len(x.StageID) == n {
			r := 0
			for st := range T {
				for i, h := range c.Hydros {
					for l := 1; l <= p; l++ {
						e.check(x.StageID[r] == int32(st) && x.HydroID[r] == h.ID && x.LagIndex[r] == int32(l), "inflow_lags order",
							"row %d is (%d, %d, %d)", r, x.StageID[r], x.HydroID[r], x.LagIndex[r])
						want := h.MeanInflowM3s
						if st-l >= 0 {
							want = s.Hydros.IncrementalInflowM3s[(st-l)*B*nH+i]
						}
						e.check(x.InflowM3s[r] == want, "inflow lag value", "stage %d hydro %d lag %d: %v, want %v", st, h.ID, l, x.InflowM3s[r], want)
						r++
					}
				}
			}
		}
	}

	// Thermals.
	if x := s.Thermals; x != nil {
		nTh := len(c.Thermals)
		checkKeys(e, "thermals", c, x.StageID, x.BlockID, x.ThermalID, idsOf(c.Thermals, func(h manifest.Thermal) int32 { return h.ID }))
		for r := range x.StageID {
			th := c.Thermals[r%nTh]
			st, b := x.StageID[r], x.BlockID.Values[r]
			g := x.GenerationMW[r]
			e.check(g >= 0 && g <= th.CapacityMW*(1+1e-12), "thermal generation bounds", "row %d: %v not in [0, %v]", r, g, th.CapacityMW)
			e.check(near(x.GenerationCost[r], g*c.Hours[b]*th.CostPerMWh, x.GenerationCost[r]), "thermal cost", "row %d", r)
			e.check(x.IsGNL[r] == th.GNL, "is_gnl", "row %d", r)
			e.check(valid(x.GNLCommittedMW, r) == th.GNL && valid(x.GNLDecisionMW, r) == th.GNL, "gnl columns valid iff GNL", "row %d", r)
			state := x.OperativeStateCode[r]
			e.check(state == OperativeOperating || state == OperativeMaintenance || state == OperativeSaturated, "thermal state", "row %d: %d", r, state)
			e.check(state != OperativeMaintenance || g == 0, "maintenance means no generation", "row %d: %v", r, g)
			atCap := th.CapacityMW > 0 && g >= th.CapacityMW
			e.check(state == OperativeMaintenance || (state == OperativeSaturated) == atCap, "saturated iff at capacity", "row %d: state %d, generation %v of %v", r, state, g, th.CapacityMW)
			first := x.OperativeStateCode[int(st)*B*nTh+r%nTh]
			e.check((first == OperativeMaintenance) == (state == OperativeMaintenance), "maintenance lasts the stage", "row %d", r)
			if th.GNL {
				cm, dc := x.GNLCommittedMW.Values[r], x.GNLDecisionMW.Values[r]
				e.check(cm >= 0 && cm <= th.CapacityMW && dc >= 0 && dc <= th.CapacityMW, "gnl bounds", "row %d: %v %v", r, cm, dc)
				e.check(state == OperativeMaintenance || g >= cm-1e-9*max(1, cm), "gnl generation >= committed", "row %d: %v < %v", r, g, cm)
				if int(st) >= GNLLeadStages {
					prev := x.GNLDecisionMW.Values[r-GNLLeadStages*B*nTh]
					e.check(cm == prev, "gnl commitment = decision of lead stages before", "row %d: %v, want %v", r, cm, prev)
				} else {
					e.check(near(cm, GNLInitialCommitment*th.CapacityMW, cm), "initial gnl commitment", "row %d", r)
				}
			}
			add(st, b, th.BusID, g)
		}
	}

	// Non-controllables.
	if x := s.NonControllables; x != nil {
		checkKeys(e, "non_controllables", c, x.StageID, x.BlockID, x.NonControllableID, idsOf(c.NonControllables, func(h manifest.NonControllable) int32 { return h.ID }))
		for r := range x.StageID {
			q := c.NonControllables[r%len(c.NonControllables)]
			st, b := x.StageID[r], x.BlockID.Values[r]
			a, g, cu := x.AvailableMW[r], x.GenerationMW[r], x.CurtailmentMW[r]
			e.check(a >= 0 && a <= q.CapacityMW && g >= 0 && cu >= 0, "non-controllable bounds", "row %d: avail %v gen %v curt %v", r, a, g, cu)
			e.check(near(g+cu, a, a), "generation + curtailment = available", "row %d", r)
			e.check(near(x.CurtailmentCost[r], cu*c.Hours[b]*q.CurtailmentCost, x.CurtailmentCost[r]), "curtailment cost", "row %d", r)
			e.check(x.OperativeStateCode[r] == OperativeOperating, "non-controllable state", "row %d", r)
			add(st, b, q.BusID, g)
		}
	}

	// Contracts.
	if x := s.Contracts; x != nil {
		checkKeys(e, "contracts", c, x.StageID, x.BlockID, x.ContractID, idsOf(c.Contracts, func(h manifest.Contract) int32 { return h.ID }))
		for r := range x.StageID {
			q := c.Contracts[r%len(c.Contracts)]
			st, b := x.StageID[r], x.BlockID.Values[r]
			pw := x.PowerMW[r]
			if q.Type == "import" {
				e.check(pw >= 0 && pw <= q.MaxMW, "import power in [0, max]", "row %d: %v", r, pw)
			} else {
				e.check(pw <= 0 && pw >= -q.MaxMW, "export power in [-max, 0]", "row %d: %v", r, pw)
			}
			e.check(x.PricePerMWh[r] == q.PricePerMWh, "contract price", "row %d", r)
			e.check(near(x.TotalCost[r], pw*c.Hours[b]*q.PricePerMWh, x.TotalCost[r]), "contract cost", "row %d", r)
			e.check(x.OperativeStateCode[r] == OperativeOperating, "contract state", "row %d", r)
			add(st, b, q.BusID, pw)
		}
	}

	// Exchanges.
	if x := s.Exchanges; x != nil {
		checkKeys(e, "exchanges", c, x.StageID, x.BlockID, x.LineID, idsOf(c.Lines, func(h manifest.Line) int32 { return h.ID }))
		for r := range x.StageID {
			l := c.Lines[r%len(c.Lines)]
			st, b := x.StageID[r], x.BlockID.Values[r]
			d, v := x.DirectFlowMW[r], x.ReverseFlowMW[r]
			e.check(d >= 0 && v >= 0 && d <= l.CapacityMW && v <= l.CapacityMW, "line flow bounds", "row %d: %v %v", r, d, v)
			e.check(near(x.ExchangeCost[r], (d+v)*c.Hours[b]*l.CostPerMWh, x.ExchangeCost[r]), "exchange cost", "row %d", r)
			e.check(x.OperativeStateCode[r] == OperativeOperating, "exchange state", "row %d", r)
			keep := 1 - l.LossFraction
			add(st, b, l.SourceBusID, -d+v*keep)
			add(st, b, l.TargetBusID, d*keep-v)
		}
	}

	// Buses: balance and prices.
	x := s.Buses
	checkKeys(e, "buses", c, x.StageID, x.BlockID, x.BusID, idsOf(c.Buses, func(h manifest.Bus) int32 { return h.ID }))
	maxNormal := make([]float64, nBus)
	minDeficit := make([]float64, nBus)
	for i := range minDeficit {
		minDeficit[i] = math.Inf(1)
	}
	for r := range x.StageID {
		bus := c.Buses[r%nBus]
		load, def, exc := x.LoadMW[r], x.DeficitMW[r], x.ExcessMW[r]
		e.check(load > 0.5*bus.LoadMW && load < 1.5*bus.LoadMW, "load near the case load", "row %d: %v vs %v", r, load, bus.LoadMW)
		e.check(def >= 0 && exc >= 0 && (def == 0 || exc == 0), "deficit/excess", "row %d: %v %v", r, def, exc)
		bt := balance[r]
		got := bt.sum + def - exc
		e.check(near(got, load, bt.mag+def+exc+load), "bus balance", "row %d bus %d stage %d block %d: supply+deficit-excess %v, load %v", r, bus.ID, x.StageID[r], x.BlockID.Values[r], got, load)
		e.check(x.SpotPrice[r] > 0, "spot price > 0", "row %d: %v", r, x.SpotPrice[r])
		k := r % nBus
		if def > 0 {
			minDeficit[k] = min(minDeficit[k], x.SpotPrice[r])
		} else {
			maxNormal[k] = max(maxNormal[k], x.SpotPrice[r])
		}
	}
	for k := range nBus {
		e.check(maxNormal[k] < minDeficit[k], "spot price higher in deficit", "bus %d: max without deficit %v, min with deficit %v", c.Buses[k].ID, maxNormal[k], minDeficit[k])
	}

	// Generic constraints.
	if x := s.GenericViolations; x != nil {
		checkKeys(e, "violations/generic", c, x.StageID, x.BlockID, x.ConstraintID, idsOf(c.GenericConstraints, func(h manifest.GenericConstraint) int32 { return h.ID }))
		for r := range x.StageID {
			q := c.GenericConstraints[r%len(c.GenericConstraints)]
			e.check(x.SlackValue[r] >= 0, "slack >= 0", "row %d", r)
			e.check(near(x.SlackCost[r], x.SlackValue[r]*q.Penalty, x.SlackCost[r]), "slack cost", "row %d", r)
		}
	}

	// Costs.
	k := s.Costs
	e.check(k.BlockID.Values == nil, "costs block_id null", "")
	comp := stageComponents(c, s)
	cols := map[string][]float64{
		"thermal": k.ThermalCost, "contract": k.ContractCost, "deficit": k.DeficitCost, "excess": k.ExcessCost,
		"spillage": k.SpillageCost, "exchange": k.ExchangeCost, "pumping": k.PumpingCost, "curtailment": k.CurtailmentCost,
		"generic": k.GenericViolationCost, "storage_violation": k.StorageViolationCost,
	}
	zero := map[string][]float64{
		"filling_target": k.FillingTargetCost, "hydro_violation": k.HydroViolationCost, "outflow_below": k.OutflowViolationBelowCost,
		"outflow_above": k.OutflowViolationAboveCost, "turbined_violation": k.TurbinedViolationCost, "generation_violation": k.GenerationViolationCost,
		"evaporation_violation": k.EvaporationViolationCost, "withdrawal_violation": k.WithdrawalViolationCost,
		"inflow_penalty": k.InflowPenaltyCost, "fpha_turbined": k.FphaTurbinedCost,
	}
	for st := range T {
		e.check(k.StageID[st] == int32(st), "costs stage order", "row %d: %d", st, k.StageID[st])
		imm, mag := 0.0, 0.0
		for name, col := range cols {
			imm += comp[st][name]
			mag += math.Abs(comp[st][name])
			e.check(near(col[st], comp[st][name], math.Abs(comp[st][name])), "cost component", "stage %d %s: %v, recomputed %v", st, name, col[st], comp[st][name])
		}
		for name, col := range zero {
			e.check(col[st] == 0, "zero cost component", "stage %d %s: %v", st, name, col[st])
		}
		e.check(near(k.ImmediateCost[st], imm, mag), "immediate cost", "stage %d: %v, recomputed %v", st, k.ImmediateCost[st], imm)
		e.check(near(k.DiscountFactor[st], 1/math.Pow(1+c.DiscountRate, float64(st)), 1), "discount factor", "stage %d", st)
		e.check(k.FutureCost[st] >= 0, "future cost >= 0", "stage %d", st)
		if st > 0 {
			e.check(k.FutureCost[st] <= k.FutureCost[st-1], "future cost non-increasing", "stage %d: %v > %v", st, k.FutureCost[st], k.FutureCost[st-1])
		}
		e.check(near(k.TotalCost[st], k.ImmediateCost[st]+k.FutureCost[st], math.Abs(k.ImmediateCost[st])+k.FutureCost[st]), "total cost", "stage %d", st)
	}
	e.check(k.FutureCost[T-1] == 0, "future cost 0 at the last stage", "%v", k.FutureCost[T-1])
}

func BenchmarkGenerateProduction(b *testing.B) {
	c := Production()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Generate(c, 1, i); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateXL(b *testing.B) {
	c := XL()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Generate(c, 1, i); err != nil {
			b.Fatal(err)
		}
	}
}
