package interop

// Conformance of the merged dictionaries (OUT/training/dictionaries/) and
// training metadata with Cobre's, and DuckDB joins between them and the
// simulation tables, on two real runs: the demo case and the production
// case, each written by two simrank ranks (training with a policy
// checkpoint, then simulation) and merged.
//
// The expectations are Cobre's facts, transcribed from docs/cobre.md into
// testdata/cobre/ (codes.json, variables.csv, dictionaries.json); they are
// never derived from hydroshard's registry, so a drift of the code from
// Cobre fails here. The helpers below are this file's own (prefixed dict)
// so that it does not depend on interop_test.go's.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/policy"
)

// The runs: two ranks, a short training (2 iterations, a checkpoint at
// the last: the merge assembles OUT/policy), then a few scenarios.
const (
	dictWorld      = 2
	dictIterations = 2
	dictSeed       = 11
)

var dictCobreDir = filepath.Join("..", "..", "testdata", "cobre")

// dictFacts is testdata/cobre/dictionaries.json.
type dictFacts struct {
	Files    []string `json:"files"`
	Entities struct {
		Header     []string `json:"header"`
		RowsByCode []struct {
			Code     int    `json:"code"`
			CaseList string `json:"case_list"`
			BusID    string `json:"bus_id"`
		} `json:"rows_by_code"`
		SystemID string `json:"system_id"`
	} `json:"entities"`
	Variables struct {
		Header []string `json:"header"`
	} `json:"variables"`
	Bounds struct {
		Columns []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Nullable   bool   `json:"nullable"`
			AlwaysNull bool   `json:"always_null"`
		} `json:"columns"`
		ByEntityType []struct {
			EntityType       string   `json:"entity_type"`
			BoundTypes       []string `json:"bound_types"`
			OnlyWherePresent []string `json:"only_where_present"`
		} `json:"by_entity_type"`
	} `json:"bounds"`
	StateDictionary struct {
		Keys      []string       `json:"keys"`
		Version   string         `json:"version"`
		Storage   dictStateFacts `json:"storage"`
		InflowLag dictStateFacts `json:"inflow_lag"`
	} `json:"state_dictionary"`
	TrainingMetadata struct {
		StoppingMode []string `json:"stopping_mode"`
	} `json:"training_metadata"`
}

type dictStateFacts struct {
	Type       string   `json:"type"`
	EntityType string   `json:"entity_type"`
	Unit       string   `json:"unit"`
	Keys       []string `json:"keys"`
}

// dictCobre is every fact the tests compare with.
type dictCobre struct {
	facts     dictFacts
	codes     map[string]any      // testdata/cobre/codes.json
	variables [][]string          // testdata/cobre/variables.csv
	labels    map[string][]string // code set -> labels by code ("" where no code)
}

func dictLoadCobre(t *testing.T) *dictCobre {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dictCobreDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var c dictCobre
	dec := json.NewDecoder(bytes.NewReader(read("dictionaries.json")))
	if err := dec.Decode(&c.facts); err != nil {
		t.Fatalf("testdata/cobre/dictionaries.json: %v", err)
	}
	if err := json.Unmarshal(read("codes.json"), &c.codes); err != nil {
		t.Fatalf("testdata/cobre/codes.json: %v", err)
	}
	recs, err := csv.NewReader(bytes.NewReader(read("variables.csv"))).ReadAll()
	if err != nil {
		t.Fatalf("testdata/cobre/variables.csv: %v", err)
	}
	c.variables = recs
	c.labels = map[string][]string{}
	for set, v := range c.codes {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		for k, label := range m {
			code, err := strconv.Atoi(k)
			if err != nil {
				t.Fatalf("codes.json %s: key %q", set, k)
			}
			for len(c.labels[set]) <= code {
				c.labels[set] = append(c.labels[set], "")
			}
			c.labels[set][code] = label.(string)
		}
	}
	return &c
}

// code returns the code of label in Cobre's set.
func (c *dictCobre) code(t *testing.T, set, label string) int {
	t.Helper()
	i := slices.Index(c.labels[set], label)
	if i < 0 || label == "" {
		t.Fatalf("Cobre's %s has no label %q", set, label)
	}
	return i
}

// ---------------------------------------------------------------------------
// The runs.

type dictRun struct {
	name string
	out  string
	cas  *manifest.Case
}

// dictSimrank builds cmd/simrank into dir.
func dictSimrank(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "simrank")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/simrank")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/simrank: %v\n%s", err, out)
	}
	return bin
}

// dictDoRun runs dictWorld simrank ranks on caseArg (with training and a
// policy checkpoint) into out, then merges out, which must come out
// complete.
func dictDoRun(t *testing.T, bin, name, caseArg string, c *manifest.Case, scenarios int, out string) *dictRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmds := make([]*exec.Cmd, dictWorld)
	errs := make([]bytes.Buffer, dictWorld)
	for r := range dictWorld {
		cmds[r] = exec.CommandContext(ctx, bin, "--case", caseArg, "--out", out, "--quiet",
			"--scenarios", strconv.Itoa(scenarios), "--seed", strconv.Itoa(dictSeed),
			"--iterations", strconv.Itoa(dictIterations), "--checkpoint-every", strconv.Itoa(dictIterations),
			"--rank", strconv.Itoa(r), "--world", strconv.Itoa(dictWorld))
		cmds[r].Env = testtools.CleanEnv()
		cmds[r].Stderr = &errs[r]
		if err := cmds[r].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for r, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s: simrank rank %d: %v\n%s", name, r, err, errs[r].String())
		}
	}
	rep, err := merge.Run(ctx, out, merge.Options{})
	if err != nil {
		t.Fatalf("%s: merge: %v", name, err)
	}
	if rep.Outcome != merge.Complete || rep.Training == nil || rep.Training.Status != merge.TrainingComplete {
		t.Fatalf("%s: merge outcome %v, training %+v: want complete", name, rep.Outcome, rep.Training)
	}
	if _, err := os.Stat(filepath.Join(out, "policy", "metadata.json")); err != nil {
		t.Fatalf("%s: the merge assembled no policy: %v", name, err)
	}
	return &dictRun{name: name, out: out, cas: c}
}

// TestCobreDictionaries runs the demo and the production case and checks
// every dictionary against Cobre's facts, the training metadata, and the
// DuckDB joins of the dictionaries with the simulation tables.
func TestCobreDictionaries(t *testing.T) {
	t.Parallel()
	cobre := dictLoadCobre(t)
	dir := t.TempDir()
	bin := dictSimrank(t, dir)
	demoDir := filepath.Join(dir, "cases", "demo")
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cases", "demo", "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(demoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(demoDir, "case.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	demo, err := manifest.LoadCase(demoDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, arg string
		c         *manifest.Case
		scenarios int
	}{
		{"demo", demoDir, demo, 6},
		{"production", "production", synth.Production(), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := dictDoRun(t, bin, tc.name, tc.arg, tc.c, tc.scenarios, filepath.Join(dir, "run-"+tc.name))
			t.Run("files", func(t *testing.T) { dictCheckFiles(t, cobre, run) })
			t.Run("codes.json", func(t *testing.T) { dictCheckCodes(t, cobre, run) })
			t.Run("entities.csv", func(t *testing.T) { dictCheckEntities(t, cobre, run) })
			t.Run("variables.csv", func(t *testing.T) { dictCheckVariables(t, cobre, run) })
			t.Run("bounds.parquet", func(t *testing.T) { dictCheckBounds(t, cobre, run) })
			t.Run("state_dictionary.json", func(t *testing.T) { dictCheckState(t, cobre, run) })
			t.Run("training metadata", func(t *testing.T) { dictCheckMetadata(t, cobre, run) })
			t.Run("duckdb joins", func(t *testing.T) { dictCheckJoins(t, cobre, run, dir) })
		})
	}
}

func dictPath(run *dictRun, name string) string {
	return filepath.Join(run.out, "training", "dictionaries", name)
}

func dictRead(t *testing.T, run *dictRun, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(dictPath(run, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---------------------------------------------------------------------------
// The dictionaries against the facts.

func dictCheckFiles(t *testing.T, cobre *dictCobre, run *dictRun) {
	ents, err := os.ReadDir(filepath.Join(run.out, "training", "dictionaries"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := slices.Clone(cobre.facts.Files)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("training/dictionaries/ holds %v, want %v", got, want)
	}
}

// dictCheckCodes: every code table equal to Cobre's, version the string
// "1.0", generated_at an RFC 3339 time, no other key.
func dictCheckCodes(t *testing.T, cobre *dictCobre, run *dictRun) {
	raw := dictRead(t, run, "codes.json")
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("codes.json: %v\n%s", err, raw)
	}
	gen, ok := got["generated_at"].(string)
	if _, err := time.Parse(time.RFC3339Nano, gen); !ok || err != nil {
		t.Errorf("generated_at %v is not an RFC 3339 time", got["generated_at"])
	}
	want := map[string]any{}
	for k, v := range cobre.codes {
		want[k] = v
	}
	delete(got, "generated_at")
	delete(want, "generated_at")
	if !reflect.DeepEqual(got, want) {
		for _, k := range dictUnion(got, want) {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("codes.json %s = %v, Cobre's %v", k, got[k], want[k])
			}
		}
	}
}

func dictUnion(a, b map[string]any) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// dictCaseEntities lists one case list's entities as (id, name, bus) by id.
func dictCaseEntities(t *testing.T, c *manifest.Case, list string) [][3]string {
	t.Helper()
	var out [][3]string
	add := func(id int32, name string, bus int32) {
		out = append(out, [3]string{strconv.Itoa(int(id)), name, strconv.Itoa(int(bus))})
	}
	switch list {
	case "hydros":
		for _, e := range c.Hydros {
			add(e.ID, e.Name, e.BusID)
		}
	case "thermals":
		for _, e := range c.Thermals {
			add(e.ID, e.Name, e.BusID)
		}
	case "buses":
		for _, e := range c.Buses {
			add(e.ID, e.Name, e.ID)
		}
	case "lines":
		for _, e := range c.Lines {
			add(e.ID, e.Name, e.SourceBusID)
		}
	case "pumping_stations":
		for _, e := range c.PumpingStations {
			add(e.ID, e.Name, e.BusID)
		}
	case "contracts":
		for _, e := range c.Contracts {
			add(e.ID, e.Name, e.BusID)
		}
	case "non_controllables":
		for _, e := range c.NonControllables {
			add(e.ID, e.Name, e.BusID)
		}
	default:
		t.Fatalf("facts name case list %q", list)
	}
	slices.SortFunc(out, func(a, b [3]string) int {
		x, _ := strconv.Atoi(a[0])
		y, _ := strconv.Atoi(b[0])
		return x - y
	})
	return out
}

// dictCheckEntities: the header, then every entity of the case by entity
// type code and id, with Cobre's bus_id and system_id rules.
func dictCheckEntities(t *testing.T, cobre *dictCobre, run *dictRun) {
	recs, err := csv.NewReader(bytes.NewReader(dictRead(t, run, "entities.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{cobre.facts.Entities.Header}
	codes := map[int]bool{}
	for _, r := range cobre.facts.Entities.RowsByCode {
		codes[r.Code] = true
		if cobre.labels["entity_type"][r.Code] == "" {
			t.Fatalf("facts: entities code %d is not in codes.json entity_type", r.Code)
		}
		for _, e := range dictCaseEntities(t, run.cas, r.CaseList) {
			bus := e[2]
			switch r.BusID {
			case "own id":
				bus = e[0]
			case "bus":
			default:
				bus = r.BusID
			}
			want = append(want, []string{strconv.Itoa(r.Code), e[0], e[1], bus, cobre.facts.Entities.SystemID})
		}
	}
	// The facts must list the codes in order (the file's row order).
	for i := 1; i < len(cobre.facts.Entities.RowsByCode); i++ {
		if cobre.facts.Entities.RowsByCode[i].Code <= cobre.facts.Entities.RowsByCode[i-1].Code {
			t.Fatal("facts: rows_by_code not in code order")
		}
	}
	if len(want) < 10 {
		t.Fatalf("only %d expected rows: the check is vacuous", len(want))
	}
	if !reflect.DeepEqual(recs, want) {
		for i := range max(len(recs), len(want)) {
			var a, b []string
			if i < len(recs) {
				a = recs[i]
			}
			if i < len(want) {
				b = want[i]
			}
			if !slices.Equal(a, b) {
				t.Errorf("entities.csv line %d = %q, want %q", i+1, a, b)
			}
		}
	}
}

// dictCheckVariables: the header, and every row's file, column, type, unit
// and nullable equal to Cobre's, in Cobre's order; a description on each.
func dictCheckVariables(t *testing.T, cobre *dictCobre, run *dictRun) {
	recs, err := csv.NewReader(bytes.NewReader(dictRead(t, run, "variables.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], cobre.facts.Variables.Header) {
		t.Fatalf("variables.csv header %q, want %q", recs[:min(1, len(recs))], cobre.facts.Variables.Header)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	fhead := cobre.variables[0]
	var got [][]string
	for _, r := range recs[1:] {
		var row []string
		for _, h := range fhead {
			row = append(row, r[col[h]])
		}
		got = append(got, row)
		if r[col["description"]] == "" {
			t.Errorf("variables.csv %s.%s: no description", r[0], r[1])
		}
	}
	want := cobre.variables[1:]
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var a, b []string
			if i < len(got) {
				a = got[i]
			}
			if i < len(want) {
				b = want[i]
			}
			if !slices.Equal(a, b) {
				t.Errorf("variables.csv row %d %v = %q, Cobre's %q", i+1, fhead, a, b)
			}
		}
	}
}

// dictReadBounds reads bounds.parquet with arrow-go.
func dictReadBounds(t *testing.T, run *dictRun) arrow.Table {
	t.Helper()
	pf, err := file.OpenParquetFile(dictPath(run, "bounds.parquet"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Close() })
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release)
	return tbl
}

// dictColumnValues returns a column's values as float64 (chunks joined)
// and its null count.
func dictColumnValues(t *testing.T, tbl arrow.Table, name string) ([]float64, int) {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("bounds.parquet: no column %s", name)
	}
	var out []float64
	nulls := 0
	for _, ch := range tbl.Column(idx[0]).Data().Chunks() {
		nulls += ch.NullN()
		for i := range ch.Len() {
			switch a := ch.(type) {
			case *array.Int8:
				out = append(out, float64(a.Value(i)))
			case *array.Int32:
				out = append(out, float64(a.Value(i)))
			case *array.Float64:
				out = append(out, a.Value(i))
			default:
				t.Fatalf("bounds.parquet %s: %T", name, ch)
			}
		}
	}
	return out, nulls
}

var dictRustTypes = map[arrow.Type]string{arrow.INT8: "i8", arrow.INT32: "i32", arrow.INT64: "i64", arrow.FLOAT64: "f64", arrow.BOOL: "bool"}

// dictCheckBounds: Cobre's schema; for every entity type of the facts (in
// their order), every entity of the case (by id), every stage and every
// bound type Cobre lists for it (in order, defaults included), one row;
// block_id null. The values are the case's limits (mins the case lacks
// are 0).
func dictCheckBounds(t *testing.T, cobre *dictCobre, run *dictRun) {
	tbl := dictReadBounds(t, run)
	var gotSchema, wantSchema []string
	for _, f := range tbl.Schema().Fields() {
		gotSchema = append(gotSchema, fmt.Sprintf("%s %s nullable=%v", f.Name, dictRustTypes[f.Type.ID()], f.Nullable))
	}
	for _, c := range cobre.facts.Bounds.Columns {
		wantSchema = append(wantSchema, fmt.Sprintf("%s %s nullable=%v", c.Name, c.Type, c.Nullable))
	}
	if !slices.Equal(gotSchema, wantSchema) {
		t.Fatalf("bounds.parquet schema %v, Cobre's %v", gotSchema, wantSchema)
	}
	et, _ := dictColumnValues(t, tbl, "entity_type_code")
	id, _ := dictColumnValues(t, tbl, "entity_id")
	st, _ := dictColumnValues(t, tbl, "stage_id")
	blk, blkNulls := dictColumnValues(t, tbl, "block_id")
	bt, _ := dictColumnValues(t, tbl, "bound_type_code")
	bv, _ := dictColumnValues(t, tbl, "bound_value")
	if blkNulls != len(blk) {
		t.Errorf("block_id: %d nulls in %d rows, want all null", blkNulls, len(blk))
	}
	type key struct{ et, id, stage, bt int }
	var got []key
	for i := range et {
		got = append(got, key{int(et[i]), int(id[i]), int(st[i]), int(bt[i])})
	}

	c := run.cas
	lists := map[string]string{"hydro": "hydros", "thermal": "thermals", "line": "lines", "pumping_station": "pumping_stations", "contract": "contracts"}
	var want []key
	perType := map[int]int{}
	for _, g := range cobre.facts.Bounds.ByEntityType {
		etc := cobre.code(t, "entity_type", g.EntityType)
		list, ok := lists[g.EntityType]
		if !ok {
			t.Fatalf("facts: bounds of entity type %q: no case list known to the test", g.EntityType)
		}
		var types []int
		for _, b := range g.BoundTypes {
			// The case has no maximum outflow: a bound Cobre writes only
			// where it exists is never written.
			if !slices.Contains(g.OnlyWherePresent, b) {
				types = append(types, cobre.code(t, "bound_type", b))
			}
		}
		for _, e := range dictCaseEntities(t, c, list) {
			eid, _ := strconv.Atoi(e[0])
			for s := range c.Stages {
				for _, b := range types {
					want = append(want, key{etc, eid, s, b})
				}
			}
			perType[etc] += c.Stages * len(types)
		}
	}
	if len(want) == 0 {
		t.Fatal("no expected bounds: the check is vacuous")
	}
	if !slices.Equal(got, want) {
		gotPer := map[int]int{}
		for _, k := range got {
			gotPer[k.et]++
		}
		t.Errorf("bounds.parquet rows per entity type %v, want %v", gotPer, perType)
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("bounds.parquet row %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		t.Fatalf("bounds.parquet has %d rows, want %d", len(got), len(want))
	}

	// Values: the case's limits.
	value := map[key]float64{}
	b := func(entity, bound string) (int, int) {
		return cobre.code(t, "entity_type", entity), cobre.code(t, "bound_type", bound)
	}
	set := func(entity string, id int32, kv map[string]float64) {
		for bound, v := range kv {
			e, k := b(entity, bound)
			value[key{e, int(id), 0, k}] = v
		}
	}
	for _, h := range c.Hydros {
		set("hydro", h.ID, map[string]float64{"storage_min": h.StorageMinHm3, "storage_max": h.StorageMaxHm3, "turbined_min": 0,
			"turbined_max": h.TurbinedMaxM3s, "outflow_min": 0, "generation_min": 0, "generation_max": h.Productivity * h.TurbinedMaxM3s})
	}
	for _, e := range c.Thermals {
		set("thermal", e.ID, map[string]float64{"generation_min": 0, "generation_max": e.CapacityMW})
	}
	for _, e := range c.Lines {
		set("line", e.ID, map[string]float64{"flow_min": 0, "flow_max": e.CapacityMW})
	}
	for _, e := range c.PumpingStations {
		set("pumping_station", e.ID, map[string]float64{"flow_min": 0, "flow_max": e.MaxFlowM3s})
	}
	for _, e := range c.Contracts {
		set("contract", e.ID, map[string]float64{"flow_min": 0, "flow_max": e.MaxMW})
	}
	for i, k := range got {
		k.stage = 0
		if v, ok := value[k]; !ok || v != bv[i] {
			t.Errorf("bounds.parquet row %d %+v: value %v, want %v (from the case)", i, got[i], bv[i], v)
			break
		}
	}
}

// dictCheckState: Cobre's shape and order; the length is the case's state
// dimension and the policy's state_dimension, and policy.Open checks it
// (a dictionary one variable short is refused).
func dictCheckState(t *testing.T, cobre *dictCobre, run *dictRun) {
	f := cobre.facts.StateDictionary
	raw := dictRead(t, run, "state_dictionary.json")
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("state_dictionary.json: %v\n%.500s", err, raw)
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := slices.Clone(f.Keys)
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("state_dictionary.json keys %v, Cobre's %v", keys, wantKeys)
	}
	var version string
	if err := json.Unmarshal(doc["version"], &version); err != nil || version != f.Version {
		t.Errorf("version %s, want %q", doc["version"], f.Version)
	}
	var vars []map[string]any
	if err := json.Unmarshal(doc["state_variables"], &vars); err != nil {
		t.Fatalf("state_variables: %v", err)
	}
	c := run.cas
	ids := make([]int, 0, len(c.Hydros))
	for _, h := range c.Hydros {
		ids = append(ids, int(h.ID))
	}
	slices.Sort(ids)
	var want []map[string]any
	entry := func(sf dictStateFacts, id, lag int) map[string]any {
		m := map[string]any{"type": sf.Type, "entity_type": sf.EntityType, "entity_id": float64(id), "unit": sf.Unit}
		if lag > 0 {
			m["lag_index"] = float64(lag)
		}
		return m
	}
	for _, id := range ids {
		want = append(want, entry(f.Storage, id, 0))
	}
	for _, id := range ids {
		for lag := 1; lag <= c.InflowLagOrder; lag++ {
			want = append(want, entry(f.InflowLag, id, lag))
		}
	}
	for i, v := range vars {
		var ks []string
		for k := range v {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		sf := f.Storage
		if v["type"] == f.InflowLag.Type {
			sf = f.InflowLag
		}
		wk := slices.Clone(sf.Keys)
		slices.Sort(wk)
		if !slices.Equal(ks, wk) {
			t.Errorf("state variable %d keys %v, Cobre's %v", i, ks, wk)
		}
		if i < len(want) && !reflect.DeepEqual(v, want[i]) {
			t.Errorf("state variable %d = %v, want %v", i, v, want[i])
		}
	}
	if len(vars) != len(want) || len(vars) != c.StateDimension() || len(vars) == 0 {
		t.Fatalf("%d state variables, want %d (the case's state dimension %d)", len(vars), len(want), c.StateDimension())
	}

	// The policy agrees, and policy.Open checks the dictionary.
	pol := filepath.Join(run.out, "policy")
	p, err := policy.Open(pol, policy.Expect{})
	if err != nil {
		t.Fatalf("policy.Open: %v", err)
	}
	if *p.Metadata.StateDimension != len(vars) {
		t.Errorf("policy state_dimension %d, state dictionary %d variables", *p.Metadata.StateDimension, len(vars))
	}
	var short map[string]any
	if err := json.Unmarshal(raw, &short); err != nil {
		t.Fatal(err)
	}
	short["state_variables"] = vars[:len(vars)-1]
	sb, err := json.Marshal(short)
	if err != nil {
		t.Fatal(err)
	}
	path := dictPath(run, "state_dictionary.json")
	if err := os.WriteFile(path, sb, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = policy.Open(pol, policy.Expect{})
	if werr := os.WriteFile(path, raw, 0o644); werr != nil {
		t.Fatal(werr)
	}
	if !errors.Is(err, policy.ErrStateDimension) {
		t.Errorf("policy.Open with a state dictionary one variable short: %v, want ErrStateDimension", err)
	}
}

// dictCheckMetadata: training/metadata.json as Cobre writes it:
// iterations.converged_at always present (null: simrank stops at the
// iteration limit), configuration.stopping_mode "any" or "all", and the
// termination reason in convergence.termination_reason.
func dictCheckMetadata(t *testing.T, cobre *dictCobre, run *dictRun) {
	raw, err := os.ReadFile(filepath.Join(run.out, "training", "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Configuration map[string]json.RawMessage `json:"configuration"`
		Iterations    map[string]json.RawMessage `json:"iterations"`
		Convergence   map[string]json.RawMessage `json:"convergence"`
	}
	if err := json.Unmarshal(raw, &md); err != nil {
		t.Fatalf("training/metadata.json: %v\n%s", err, raw)
	}
	ca, ok := md.Iterations["converged_at"]
	if !ok || string(ca) != "null" {
		t.Errorf("iterations.converged_at = %q (present %v), want null: the run stopped at its iteration limit", ca, ok)
	}
	var mode string
	if err := json.Unmarshal(md.Configuration["stopping_mode"], &mode); err != nil || !slices.Contains(cobre.facts.TrainingMetadata.StoppingMode, mode) {
		t.Errorf("configuration.stopping_mode = %s, want one of %q", md.Configuration["stopping_mode"], cobre.facts.TrainingMetadata.StoppingMode)
	}
	var reason string
	if err := json.Unmarshal(md.Convergence["termination_reason"], &reason); err != nil || reason != "iteration_limit" {
		t.Errorf("convergence.termination_reason = %s, want \"iteration_limit\" (what simrank's root recorded)", md.Convergence["termination_reason"])
	}
}

// ---------------------------------------------------------------------------
// DuckDB joins.

// dictCheckJoins: in DuckDB, every entity_type_code and bound_type_code of
// bounds.parquet, every operative_state_code and storage_binding_code of
// the simulation tables has a label in codes.json, and every entity id of
// the simulation tables has a row in entities.csv under the entity type
// code whose label is its kind. The labels come from codes.json itself
// (read_json_objects), never from a list in the test, so a code written
// with a meaning codes.json does not give it fails the join.
func dictCheckJoins(t *testing.T, cobre *dictCobre, run *dictRun, parent string) {
	sql := testtools.SQLQuote
	sim := func(entity string) string {
		return "read_parquet(" + sql(filepath.Join(run.out, "simulation", entity, "**", "*.parquet")) + ", hive_partitioning = true)"
	}
	labels := `CREATE TABLE labels AS SELECT s.code_set, CAST(k.key AS INTEGER) AS code,
  json_extract_string(j.json, '$.' || s.code_set || '."' || k.key || '"') AS label
FROM read_json_objects(` + sql(dictPath(run, "codes.json")) + `) j,
  (VALUES ('operative_state'), ('storage_binding'), ('contract_type'), ('entity_type'), ('bound_type')) s(code_set),
  LATERAL unnest(json_keys(json_extract(j.json, '$.' || s.code_set))) k(key)`
	entities := "CREATE TABLE entities AS SELECT * FROM read_csv(" + sql(dictPath(run, "entities.csv")) + ", header = true)"
	bounds := "read_parquet(" + sql(dictPath(run, "bounds.parquet")) + ")"

	// A code column's join: rows, rows without a label, the labels seen.
	codeJoin := func(src, column, set string) string {
		return fmt.Sprintf(`SELECT count(*) AS n, count(*) FILTER (WHERE l.label IS NULL) AS unlabeled,
  list_sort(list_distinct(list(l.label))) AS labels, list_sort(list_distinct(list(t.%[2]s) FILTER (WHERE l.label IS NULL))) AS bad
FROM %[1]s t LEFT JOIN labels l ON l.code_set = '%[3]s' AND l.code = t.%[2]s`, src, column, set)
	}
	type codeQ struct {
		what, src, column, set string
		atLeast                []string // labels the run must use (else the join checks little)
	}
	codeQs := []codeQ{
		{"bounds.parquet entity_type_code", bounds, "entity_type_code", "entity_type", []string{"hydro", "thermal", "line", "pumping_station", "contract"}},
		{"bounds.parquet bound_type_code", bounds, "bound_type_code", "bound_type", []string{"storage_min", "storage_max", "turbined_max", "generation_max", "flow_min", "flow_max"}},
		{"hydros storage_binding_code", sim("hydros"), "storage_binding_code", "storage_binding", []string{"none"}},
		{"hydros operative_state_code", sim("hydros"), "operative_state_code", "operative_state", []string{"operating"}},
		{"thermals operative_state_code", sim("thermals"), "operative_state_code", "operative_state", []string{"operating", "saturated"}},
		{"exchanges operative_state_code", sim("exchanges"), "operative_state_code", "operative_state", []string{"operating"}},
		{"pumping_stations operative_state_code", sim("pumping_stations"), "operative_state_code", "operative_state", []string{"operating"}},
		{"contracts operative_state_code", sim("contracts"), "operative_state_code", "operative_state", []string{"operating"}},
		{"non_controllables operative_state_code", sim("non_controllables"), "operative_state_code", "operative_state", []string{"operating"}},
	}
	// Entity joins: every id of a table has a row of entities.csv under
	// the code labelled with its kind; the count of distinct ids is the
	// count of such rows (no entity missing from the data either).
	type entQ struct{ entity, column, kind string }
	entQs := []entQ{
		{"hydros", "hydro_id", "hydro"}, {"thermals", "thermal_id", "thermal"}, {"exchanges", "line_id", "line"},
		{"buses", "bus_id", "bus"}, {"pumping_stations", "pumping_station_id", "pumping_station"},
		{"contracts", "contract_id", "contract"}, {"non_controllables", "non_controllable_id", "non_controllable"},
		{"inflow_lags", "hydro_id", "hydro"},
	}
	entJoin := func(q entQ) string {
		return fmt.Sprintf(`WITH kind AS (SELECT e.* FROM entities e JOIN labels l
    ON l.code_set = 'entity_type' AND l.code = e.entity_type_code AND l.label = '%[3]s')
SELECT count(*) AS n, count(*) FILTER (WHERE k.entity_id IS NULL) AS unmatched,
  count(DISTINCT t.%[2]s) AS ids, (SELECT count(*) FROM kind) AS rows_of_kind,
  list_sort(list_distinct(list(t.%[2]s) FILTER (WHERE k.entity_id IS NULL))) AS bad
FROM %[1]s t LEFT JOIN kind k ON k.entity_id = t.%[2]s`, sim(q.entity), q.column, q.kind)
	}
	sqls := []string{labels, entities, "SELECT count(*) FROM labels"}
	for _, q := range codeQs {
		sqls = append(sqls, codeJoin(q.src, q.column, q.set))
	}
	for _, q := range entQs {
		sqls = append(sqls, entJoin(q))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := testtools.DuckQuery(t, ctx, parent, sqls...)
	num := func(v any) int64 {
		switch x := v.(type) {
		case string:
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				t.Fatalf("DuckDB value %q", x)
			}
			return n
		case float64:
			return int64(x)
		}
		t.Fatalf("DuckDB value %v (%T)", v, v)
		return 0
	}
	nLabels := 0
	for _, l := range cobre.labels {
		for _, x := range l {
			if x != "" {
				nLabels++
			}
		}
	}
	if got := num(res[2].Rows[0][0]); got != int64(nLabels) {
		t.Fatalf("DuckDB read %d labels from codes.json, Cobre's tables have %d", got, nLabels)
	}
	for i, q := range codeQs {
		r := res[3+i].Rows[0]
		n, unlabeled := num(r[0]), num(r[1])
		if n == 0 {
			t.Errorf("%s: no rows", q.what)
			continue
		}
		if unlabeled != 0 {
			t.Errorf("%s: %d of %d rows have no label in codes.json %s (values %v)", q.what, unlabeled, n, q.set, r[3])
		}
		var seen []string
		if l, ok := r[2].([]any); ok {
			for _, x := range l {
				if s, ok := x.(string); ok {
					seen = append(seen, s)
				}
			}
		}
		for _, want := range q.atLeast {
			if !slices.Contains(seen, want) {
				t.Errorf("%s: no row labelled %s (labels seen %v): the run exercises too little", q.what, want, seen)
			}
		}
		t.Logf("%s: %d rows, labels %v", q.what, n, seen)
	}
	for i, q := range entQs {
		r := res[3+len(codeQs)+i].Rows[0]
		n, unmatched, ids, rows := num(r[0]), num(r[1]), num(r[2]), num(r[3])
		if n == 0 {
			t.Errorf("%s: no rows", q.entity)
			continue
		}
		if unmatched != 0 {
			t.Errorf("%s.%s: %d of %d rows have no %s row in entities.csv (ids %v)", q.entity, q.column, unmatched, n, q.kind, r[4])
		}
		if ids != rows {
			t.Errorf("%s.%s: %d distinct ids, entities.csv has %d %s rows", q.entity, q.column, ids, rows, q.kind)
		}
	}
}
