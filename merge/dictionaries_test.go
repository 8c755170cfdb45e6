package merge

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
	"github.com/hydroshard/hydroshard/shard"
)

const dictGeneratedAt = "2026-03-01T12:00:00.000000000Z"

func dictLoadCase(t *testing.T, name string) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase(filepath.Join("..", "testdata", "cases", name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dictCopyCase(t *testing.T, c *manifest.Case) *manifest.Case {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out manifest.Case
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// dictAwkwardCase is the tiny case with names that break naive CSV
// writers and readers, entities listed out of id order, and a hydro whose
// minimum storage is the default (0).
func dictAwkwardCase(t *testing.T) *manifest.Case {
	t.Helper()
	c := dictCopyCase(t, dictLoadCase(t, "tiny"))
	c.Buses[1].Name = "Sul, \"Grande\"\nRS"
	c.Hydros[0].Name = "  Serra Azul "
	c.Hydros[0].StorageMinHm3 = 0
	c.Hydros[0].StorageInitialHm3 = 700
	c.Thermals[0].Name = "Usina 日本語 ☃ Ñandú"
	c.Lines[0].Name = "a,b,,c"
	c.Contracts[0].Name = "linha 1\nlinha 2\n"
	c.NonControllables[0].Name = "'simples'; ponto e vírgula\ttab"
	c.GenericConstraints[0].Name = `"entre aspas"`
	c.PumpingStations[0].Name = `a""b`
	slices.Reverse(c.Buses)
	slices.Reverse(c.Hydros)
	slices.Reverse(c.Thermals)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func dictBuild(t *testing.T, c *manifest.Case) map[string][]byte {
	t.Helper()
	files, err := buildDictionaries(c, dictGeneratedAt)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"codes.json", "entities.csv", "variables.csv", "bounds.parquet", "state_dictionary.json"}
	out := map[string][]byte{}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		out[f.Name] = f.Data
	}
	if !slices.Equal(names, want) {
		t.Fatalf("buildDictionaries returned %v, want %v", names, want)
	}
	return out
}

// ---------------------------------------------------------------------------
// DuckDB through node, as internal/interop runs it.

const dictDuckScript = `
import { readFileSync } from 'node:fs'
import { DuckDBInstance } from '@duckdb/node-api'
const queries = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const instance = await DuckDBInstance.create(':memory:')
const conn = await instance.connect()
const out = []
try {
  for (const q of queries) {
    const r = await conn.runAndReadAll(q)
    out.push({ columns: r.columnNames(), types: r.columnTypes().map((t) => t.toString()), rows: r.getRowsJson() })
  }
} finally {
  conn.closeSync()
  instance.closeSync()
}
process.stdout.write(JSON.stringify(out))
`

type dictDuckResult struct {
	Columns []string `json:"columns"`
	Types   []string `json:"types"`
	Rows    [][]any  `json:"rows"`
}

// dictDuckDB runs queries in one DuckDB instance and returns their results.
func dictDuckDB(t *testing.T, queries ...string) []dictDuckResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testtools.Missing(t, "DuckDB read-back of the dictionaries: node is not on PATH", testtools.InstallHint)
	}
	mods := filepath.Join(testtools.NodeDir(), "node_modules")
	if _, err := os.Stat(filepath.Join(mods, "@duckdb", "node-api", "package.json")); err != nil {
		testtools.Missing(t, "DuckDB read-back of the dictionaries: node package @duckdb/node-api is not installed under "+testtools.NodeDir()+" (HYDROSHARD_NODE_DIR)", testtools.InstallHint)
	}
	dir := t.TempDir()
	abs, err := filepath.Abs(mods)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "duck.mjs")
	qfile := filepath.Join(dir, "queries.json")
	qb, _ := json.Marshal(queries)
	if err := os.WriteFile(script, []byte(dictDuckScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(qfile, qb, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, qfile)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node duckdb: %v\nqueries: %q\nstderr:\n%s", err, queries, stderr.String())
	}
	var out []dictDuckResult
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("node duckdb output: %v", err)
	}
	return out
}

func dictSQLString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func dictWriteTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ---------------------------------------------------------------------------
// entities.csv

// dictTinyEntities is entities.csv of the tiny case, written out by hand
// from Cobre's rules (docs/cobre.md): hydros 0, thermals 1, buses 2 (bus_id
// their own id), lines 3 (bus_id -1), pumping stations 4, contracts 5,
// non-controllables 7; system_id 0; the generic constraint has no row.
var dictTinyEntities = [][]string{
	{"entity_type_code", "entity_id", "name", "bus_id", "system_id"},
	{"0", "1", "Serra Azul", "1", "0"},
	{"0", "2", `Itaipú "Binacional", PR`, "2", "0"},
	{"1", "1", "Angra", "1", "0"},
	{"1", "2", "Norte Fluminense GNL", "2", "0"},
	{"2", "1", "Sudeste", "1", "0"},
	{"2", "2", "Sul", "2", "0"},
	{"3", "1", "Sudeste - Sul", "-1", "0"},
	{"4", "1", "EEB Serra Azul", "1", "0"},
	{"5", "1", "Exportação Uruguai", "2", "0"},
	{"7", "1", "EOL Ventos do Sul", "2", "0"},
}

func dictAwkwardEntities() [][]string {
	rows := slices.Clone(dictTinyEntities)
	set := func(typ, id, name string) {
		for i, r := range rows {
			if r[0] == typ && r[1] == id {
				r = slices.Clone(r)
				r[2] = name
				rows[i] = r
				return
			}
		}
		panic("no row " + typ + " " + id)
	}
	set("2", "2", "Sul, \"Grande\"\nRS")
	set("0", "1", "  Serra Azul ")
	set("1", "1", "Usina 日本語 ☃ Ñandú")
	set("3", "1", "a,b,,c")
	set("5", "1", "linha 1\nlinha 2\n")
	set("7", "1", "'simples'; ponto e vírgula\ttab")
	set("4", "1", `a""b`)
	return rows
}

func TestDictEntitiesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *manifest.Case
		want [][]string
	}{
		{"tiny", dictLoadCase(t, "tiny"), dictTinyEntities},
		{"awkward", dictAwkwardCase(t), dictAwkwardEntities()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dictBuild(t, tc.c)["entities.csv"]
			got, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil {
				t.Fatalf("encoding/csv: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("encoding/csv read back\n%q\nwant\n%q", got, tc.want)
			}

			// DuckDB, as an analyst would read it: read_csv with its sniffer.
			p := dictWriteTemp(t, "entities.csv", b)
			src := "read_csv(" + dictSQLString(p) + ")"
			res := dictDuckDB(t,
				"DESCRIBE SELECT * FROM "+src,
				"SELECT entity_type_code::VARCHAR, entity_id::VARCHAR, name, bus_id::VARCHAR, system_id::VARCHAR FROM "+src)
			var cols []string
			for _, r := range res[0].Rows {
				cols = append(cols, fmt.Sprint(r[0])+" "+fmt.Sprint(r[1]))
			}
			if cols[2] != "name VARCHAR" || len(cols) != 5 {
				t.Errorf("DuckDB columns %v, want 5 with name VARCHAR", cols)
			}
			for i, c := range cols {
				if i != 2 && !strings.HasSuffix(c, "INT") && !strings.HasSuffix(c, "INTEGER") {
					t.Errorf("DuckDB typed %s, want an integer type", c)
				}
			}
			var duck [][]string
			for _, r := range res[1].Rows {
				row := make([]string, len(r))
				for i, v := range r {
					if v == nil {
						t.Fatalf("DuckDB row %v: null in column %d", r, i)
					}
					row[i] = v.(string)
				}
				duck = append(duck, row)
			}
			if !reflect.DeepEqual(duck, tc.want[1:]) {
				t.Fatalf("DuckDB read back\n%q\nwant\n%q", duck, tc.want[1:])
			}
		})
	}
}

func TestDictEntitiesRejectLossyNames(t *testing.T) {
	for _, name := range []string{"a\r\nb", "a\rb", "bad \xff utf8", "nul\x00"} {
		c := dictCopyCase(t, dictLoadCase(t, "tiny"))
		c.Thermals[1].Name = name
		_, err := buildDictionaries(c, dictGeneratedAt)
		if err == nil || !strings.Contains(err.Error(), "thermal 2") || !strings.Contains(err.Error(), "entities.csv") {
			t.Errorf("name %q: err = %v, want an error naming entities.csv and thermal 2", name, err)
		}
	}
}

func TestDictBadInput(t *testing.T) {
	if _, err := buildDictionaries(nil, dictGeneratedAt); err == nil {
		t.Error("nil case: no error")
	}
	if _, err := buildDictionaries(dictLoadCase(t, "tiny"), ""); err == nil || !strings.Contains(err.Error(), "generated_at") {
		t.Errorf("empty generated_at: %v", err)
	}
	c := dictCopyCase(t, dictLoadCase(t, "tiny"))
	c.Hydros[0].BusID = 99
	if _, err := buildDictionaries(c, dictGeneratedAt); err == nil || !strings.Contains(err.Error(), "bus 99") {
		t.Errorf("dangling bus: %v", err)
	}
}

// ---------------------------------------------------------------------------
// variables.csv

// dictCSVTypes spells the Arrow types read back from files as
// testdata/columns.csv does.
var dictCSVTypes = map[arrow.Type]string{
	arrow.INT8: "Int8", arrow.INT32: "Int32", arrow.INT64: "Int64", arrow.FLOAT64: "Float64", arrow.BOOL: "Boolean",
}

// dictCobreTypes spells them as Cobre's variables.csv does (docs/cobre.md).
var dictCobreTypes = map[string]string{"Int8": "i8", "Int32": "i32", "Int64": "i64", "Float64": "f64", "Boolean": "bool"}

// dictCobreFiles is Cobre's short name ("file" of variables.csv) of each
// table, in Cobre's order (docs/cobre.md).
var dictCobreFiles = []struct{ file, table string }{
	{"costs", "simulation/costs"}, {"hydros", "simulation/hydros"}, {"thermals", "simulation/thermals"},
	{"exchanges", "simulation/exchanges"}, {"buses", "simulation/buses"}, {"pumping_stations", "simulation/pumping_stations"},
	{"contracts", "simulation/contracts"}, {"non_controllables", "simulation/non_controllables"},
	{"inflow_lags", "simulation/inflow_lags"}, {"generic_violations", "simulation/violations/generic"},
	{"convergence", "training/convergence"}, {"iteration_timing", "training/timing/iterations"},
	{"rank_timing", "training/timing/mpi_ranks"},
}

// dictOneRow fills every column field of a rows struct with one value.
func dictOneRow(rows any) any {
	v := reflect.ValueOf(rows).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("col") == "" {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Slice {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
			continue
		}
		vals := f.FieldByName("Values")
		vals.Set(reflect.MakeSlice(vals.Type(), 1, 1))
	}
	return rows
}

// TestDictVariablesMatchParquetFiles writes one real file per table with
// the shard encoder (bounds.parquet is the dictionary's own file), reads
// each file's schema back with arrow-go and checks that variables.csv
// lists exactly the columns of the 13 schemas Cobre lists, under Cobre's
// short names, in file order, with their types (Cobre's spelling) and
// nullability; that its rows, units included, are Cobre's
// (testdata/cobre/variables.csv); and that bounds.parquet, which it does
// not list (as in Cobre), has the schema of testdata/columns.csv.
func TestDictVariablesMatchParquetFiles(t *testing.T) {
	c := dictLoadCase(t, "tiny")
	dict := dictBuild(t, c)
	sc, err := synth.Generate(c, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"training/dictionaries/bounds": dict["bounds.parquet"]}
	enc := shard.NewEncoder()
	encode := func(tr shard.TableRows) {
		var b bytes.Buffer
		if _, err := enc.Encode(&b, tr, c); err != nil {
			t.Fatalf("%s: %v", tr.Table.Name, err)
		}
		files[tr.Table.Name] = b.Bytes()
	}
	for _, tr := range sc.Tables() {
		encode(tr)
	}
	encode(shard.TableRows{Table: shard.Convergence, Rows: dictOneRow(&shard.ConvergenceRows{})})
	encode(shard.TableRows{Table: shard.TimingIterations, Rows: dictOneRow(&shard.TimingIterationsRows{})})
	encode(shard.TableRows{Table: shard.TimingMPIRanks, Rows: dictOneRow(&shard.TimingMPIRanksRows{})})
	for _, tb := range shard.AllTables {
		if files[tb.Name] == nil {
			t.Fatalf("table %s: the test wrote no file for it; extend the test", tb.Name)
		}
	}

	// What the files say, by table.
	dir := t.TempDir()
	type colInfo struct{ schema, name, typ, nullable string }
	fromFiles := map[string][]colInfo{}
	for _, tb := range shard.AllTables {
		p := filepath.Join(dir, strings.ReplaceAll(tb.Name, "/", "__")+".parquet")
		if err := os.WriteFile(p, files[tb.Name], 0o644); err != nil {
			t.Fatal(err)
		}
		pf, err := file.OpenParquetFile(p, false)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		sch, err := fr.Schema()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, f := range sch.Fields() {
			typ, ok := dictCSVTypes[f.Type.ID()]
			if !ok {
				t.Fatalf("%s.%s: unexpected type %s in the file", tb.Name, f.Name, f.Type)
			}
			fromFiles[tb.Name] = append(fromFiles[tb.Name], colInfo{tb.Name, f.Name, typ, strconv.FormatBool(f.Nullable)})
		}
		pf.Close()
	}
	var wantCSV []colInfo
	for _, f := range dictCobreFiles {
		if len(fromFiles[f.table]) == 0 {
			t.Fatalf("no file for %s", f.table)
		}
		for _, c := range fromFiles[f.table] {
			wantCSV = append(wantCSV, colInfo{f.file, c.name, dictCobreTypes[c.typ], c.nullable})
		}
	}

	// What variables.csv says.
	recs, err := csv.NewReader(bytes.NewReader(dict["variables.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], []string{"file", "column", "type", "unit", "description", "nullable"}) {
		t.Fatalf("variables.csv header %q", recs[0])
	}
	var fromCSV []colInfo
	for _, r := range recs[1:] {
		fromCSV = append(fromCSV, colInfo{r[0], r[1], r[2], r[5]})
		if r[4] == "" {
			t.Errorf("variables.csv %s.%s: no description", r[0], r[1])
		}
	}
	if !slices.Equal(fromCSV, wantCSV) {
		for i := range max(len(fromCSV), len(wantCSV)) {
			var a, b colInfo
			if i < len(fromCSV) {
				a = fromCSV[i]
			}
			if i < len(wantCSV) {
				b = wantCSV[i]
			}
			if a != b {
				t.Errorf("row %d: variables.csv %v, files %v", i+1, a, b)
			}
		}
		t.FailNow()
	}

	// Cobre's rows, units included.
	facts, err := os.ReadFile(filepath.Join("..", "testdata", "cobre", "variables.csv"))
	if err != nil {
		t.Fatal(err)
	}
	frecs, err := csv.NewReader(bytes.NewReader(facts)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, r := range recs {
		got = append(got, []string{r[0], r[1], r[2], r[3], r[5]})
	}
	got[0] = []string{"file", "column", "type", "unit", "nullable"} // the fixture leaves out the description
	if !reflect.DeepEqual(got, frecs) {
		for i := range max(len(got), len(frecs)) {
			var a, b []string
			if i < len(got) {
				a = got[i]
			}
			if i < len(frecs) {
				b = frecs[i]
			}
			if !slices.Equal(a, b) {
				t.Errorf("line %d: variables.csv %q, Cobre %q", i+1, a, b)
			}
		}
	}

	// bounds.parquet has the schema of testdata/columns.csv.
	golden, err := os.ReadFile(filepath.Join("..", "testdata", "columns.csv"))
	if err != nil {
		t.Fatal(err)
	}
	grecs, err := csv.NewReader(bytes.NewReader(golden)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var goldenBounds []colInfo
	for _, r := range grecs[1:] {
		if r[0] == shard.Bounds.Name {
			goldenBounds = append(goldenBounds, colInfo{r[0], r[1], r[2], r[3]})
		}
	}
	if len(goldenBounds) == 0 || !slices.Equal(goldenBounds, fromFiles[shard.Bounds.Name]) {
		t.Errorf("bounds.parquet columns %v, testdata/columns.csv %v", fromFiles[shard.Bounds.Name], goldenBounds)
	}
}

// ---------------------------------------------------------------------------
// codes.json

type dictCodes struct {
	Version     string
	GeneratedAt string
	Sets        map[string]map[string]string
}

func dictReadCodes(t *testing.T, b []byte) dictCodes {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("codes.json: %v\n%s", err, b)
	}
	var out dictCodes
	out.Sets = map[string]map[string]string{}
	for k, v := range raw {
		var err error
		switch k {
		case "version":
			err = json.Unmarshal(v, &out.Version)
		case "generated_at":
			err = json.Unmarshal(v, &out.GeneratedAt)
		default:
			var m map[string]string
			err = json.Unmarshal(v, &m)
			out.Sets[k] = m
		}
		if err != nil {
			t.Fatalf("codes.json %s: %v", k, err)
		}
	}
	return out
}

// TestDictCodesCoverData: every code value the data holds (synth demo
// scenarios, entities.csv, bounds.parquet) has a label in codes.json. The
// code set of a column is its name without "_code".
func TestDictCodesCoverData(t *testing.T) {
	c := dictLoadCase(t, "demo")
	dict := dictBuild(t, c)
	codes := dictReadCodes(t, dict["codes.json"])
	if codes.Version != "1.0" || codes.GeneratedAt != dictGeneratedAt {
		t.Errorf("codes.json version %q generated_at %q", codes.Version, codes.GeneratedAt)
	}
	// Every code table is Cobre's (testdata/cobre/codes.json).
	facts, err := os.ReadFile(filepath.Join("..", "testdata", "cobre", "codes.json"))
	if err != nil {
		t.Fatal(err)
	}
	cobre := dictReadCodes(t, facts)
	if !reflect.DeepEqual(codes.Sets, cobre.Sets) || codes.Version != cobre.Version {
		t.Errorf("codes.json\n%s\nCobre's (testdata/cobre/codes.json)\n%s", dict["codes.json"], facts)
	}
	wantSets := []string{"bound_type", "contract_type", "entity_type", "operative_state", "storage_binding"}
	var gotSets []string
	for k := range codes.Sets {
		gotSets = append(gotSets, k)
	}
	slices.Sort(gotSets)
	if !slices.Equal(gotSets, wantSets) {
		t.Fatalf("codes.json sets %v, want %v", gotSets, wantSets)
	}
	if !bytes.HasPrefix(dict["codes.json"], []byte("{\n  \"version\": \"1.0\",\n  \"generated_at\": ")) {
		t.Errorf("codes.json does not start with version, generated_at:\n%s", dict["codes.json"])
	}
	if l := codes.Sets["contract_type"]; l["0"] != "import" || l["1"] != "export" {
		t.Errorf("contract_type %v", l)
	}

	seen := map[string]map[int8]bool{}
	note := func(column string, v int8) {
		set := strings.TrimSuffix(column, "_code")
		if seen[set] == nil {
			seen[set] = map[int8]bool{}
		}
		seen[set][v] = true
	}
	for sc := range 8 {
		s, err := synth.Generate(c, 42, sc)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range s.Tables() {
			v := reflect.ValueOf(tr.Rows).Elem()
			for i := 0; i < v.NumField(); i++ {
				name := v.Type().Field(i).Tag.Get("col")
				if !strings.HasSuffix(name, "_code") {
					continue
				}
				for _, x := range v.Field(i).Interface().([]int8) {
					note(name, x)
				}
			}
		}
	}
	ents, err := csv.NewReader(bytes.NewReader(dict["entities.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ents[1:] {
		v, err := strconv.ParseInt(r[0], 10, 8)
		if err != nil {
			t.Fatal(err)
		}
		note("entity_type_code", int8(v))
	}
	bt := dictReadParquet(t, dict["bounds.parquet"])
	for _, name := range []string{"entity_type_code", "bound_type_code"} {
		for _, x := range dictColumn(t, bt, name).(*array.Int8).Int8Values() {
			note(name, x)
		}
	}
	for _, set := range []string{"operative_state", "storage_binding", "entity_type", "bound_type"} {
		if len(seen[set]) == 0 {
			t.Errorf("no %s_code values seen in the data: the check is vacuous", set)
		}
	}
	// The demo data uses operating, maintenance and saturated and several
	// storage bindings; make sure the check saw them (else it checks
	// little).
	if !seen["operative_state"][shard.OperativeOperating] || !seen["operative_state"][shard.OperativeMaintenance] ||
		!seen["operative_state"][shard.OperativeSaturated] || len(seen["storage_binding"]) < 2 {
		t.Errorf("demo data exercised few codes: %v", seen)
	}
	for set, vals := range seen {
		labels, ok := codes.Sets[set]
		if !ok {
			t.Errorf("codes.json has no set %s (data column %s_code)", set, set)
			continue
		}
		for v := range vals {
			if labels[strconv.Itoa(int(v))] == "" {
				t.Errorf("%s_code value %d appears in data but not in codes.json %s %v", set, v, set, labels)
			}
		}
	}
}

// TestDictSynthUsesRegistryCodes: synth's code constants mean what the
// registry says (until synth uses the shard constants directly).
func TestDictSynthUsesRegistryCodes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int8
	}{
		{"StorageBindingNone", synth.StorageBindingNone, shard.StorageBindingNone},
		{"StorageBindingBelowMinimum", synth.StorageBindingBelowMinimum, shard.StorageBindingBelowMinimum},
		{"StorageBindingAboveMaximum", synth.StorageBindingAboveMaximum, shard.StorageBindingAboveMaximum},
		{"StorageBindingBoth", synth.StorageBindingBoth, shard.StorageBindingBoth},
		{"OperativeOperating", synth.OperativeOperating, shard.OperativeOperating},
		{"OperativeMaintenance", synth.OperativeMaintenance, shard.OperativeMaintenance},
		{"OperativeSaturated", synth.OperativeSaturated, shard.OperativeSaturated},
	} {
		if c.got != c.want {
			t.Errorf("synth.%s = %d, shard registry %d", c.name, c.got, c.want)
		}
	}
}

// ---------------------------------------------------------------------------
// state_dictionary.json

// TestDictStateDictionary: Cobre's shape (docs/cobre.md): {"version":
// "1.0", "state_variables": [...]}, one storage per hydro (by id), then each
// hydro's lags 1..order, hydro-major; exactly Cobre's keys per entry; the
// length is the case's state dimension; an empty list is [], not null.
func TestDictStateDictionary(t *testing.T) {
	custom := dictCopyCase(t, dictLoadCase(t, "tiny"))
	custom.InflowLagOrder = 3
	extra := custom.Hydros[1]
	extra.ID, extra.DownstreamID = 0, -1
	custom.Hydros = append(custom.Hydros, extra) // ids 1, 2, 0: not in id order
	noHydros := dictCopyCase(t, dictLoadCase(t, "tiny"))
	noHydros.Hydros, noHydros.PumpingStations = nil, nil
	noLags := dictCopyCase(t, dictLoadCase(t, "tiny"))
	noLags.InflowLagOrder = 0
	for _, tc := range []struct {
		name string
		c    *manifest.Case
		n    int
	}{
		{"tiny", dictLoadCase(t, "tiny"), 4},
		{"demo", dictLoadCase(t, "demo"), 30},
		{"unordered-ids", custom, 12},
		{"no-hydros", noHydros, 0},
		{"no-lags", noLags, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dictBuild(t, tc.c)["state_dictionary.json"]
			var d struct {
				Version        *string                      `json:"version"`
				StateVariables []map[string]json.RawMessage `json:"state_variables"`
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if d.Version == nil || *d.Version != "1.0" {
				t.Errorf("version %v, want \"1.0\"", d.Version)
			}
			if !bytes.Contains(b, []byte(`"state_variables": [`)) {
				t.Errorf("an empty list must be [], not null:\n%s", b)
			}
			if len(d.StateVariables) != tc.n || tc.c.StateDimension() != tc.n {
				t.Fatalf("%d state variables, StateDimension %d, want %d", len(d.StateVariables), tc.c.StateDimension(), tc.n)
			}
			var ids []int32
			for _, h := range tc.c.Hydros {
				ids = append(ids, h.ID)
			}
			slices.Sort(ids)
			want := func(i int) string {
				if i < len(ids) {
					return fmt.Sprintf(`{"entity_id":%d,"entity_type":"hydro","type":"storage","unit":"hm3"}`, ids[i])
				}
				p := tc.c.InflowLagOrder
				j := i - len(ids)
				return fmt.Sprintf(`{"entity_id":%d,"entity_type":"hydro","lag_index":%d,"type":"inflow_lag","unit":"m3/s"}`, ids[j/p], j%p+1)
			}
			for i, v := range d.StateVariables {
				got, _ := json.Marshal(v) // map keys sorted
				if string(got) != want(i) {
					t.Errorf("state variable %d = %s, want %s", i, got, want(i))
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// bounds.parquet

func dictReadParquet(t *testing.T, b []byte) arrow.Table {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
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

func dictColumn(t *testing.T, tbl arrow.Table, name string) arrow.Array {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %s", name)
	}
	ch := tbl.Column(idx[0]).Data()
	if len(ch.Chunks()) != 1 {
		t.Fatalf("%s: %d chunks", name, len(ch.Chunks()))
	}
	return ch.Chunk(0)
}

type dictBound struct {
	typ   int8
	id    int32
	stage int32
	bound int8
	value float64
}

// dictTinyBounds are the bounds of one stage of the tiny case, by hand
// from Cobre's list (docs/cobre.md): (entity type, id, bound type, value).
// Hydro: storage_min, storage_max, turbined_min, turbined_max,
// outflow_min, generation_min, generation_max (productivity x turbined
// max); no outflow_max (the case has no maximum outflow). Thermal,
// line, pumping station, contract: a minimum (0) and a maximum. Buses and
// non-controllables: none.
var dictTinyBounds = []dictBound{
	{0, 1, -1, 0, 100}, {0, 1, -1, 1, 1200}, {0, 1, -1, 2, 0}, {0, 1, -1, 3, 300}, {0, 1, -1, 4, 0}, {0, 1, -1, 6, 0}, {0, 1, -1, 7, 0.9 * 300},
	{0, 2, -1, 0, 500}, {0, 2, -1, 1, 2000}, {0, 2, -1, 2, 0}, {0, 2, -1, 3, 800}, {0, 2, -1, 4, 0}, {0, 2, -1, 6, 0}, {0, 2, -1, 7, 0.85 * 800},
	{1, 1, -1, 6, 0}, {1, 1, -1, 7, 400},
	{1, 2, -1, 6, 0}, {1, 2, -1, 7, 300},
	{3, 1, -1, 8, 0}, {3, 1, -1, 9, 400},
	{4, 1, -1, 8, 0}, {4, 1, -1, 9, 60},
	{5, 1, -1, 8, 0}, {5, 1, -1, 9, 80},
}

// dictExpand repeats one stage's bounds over the stages, ordered by
// entity type, id, stage, bound type.
func dictExpand(stages int, perStage []dictBound) []dictBound {
	var out []dictBound
	for i := 0; i < len(perStage); {
		j := i
		for j < len(perStage) && perStage[j].typ == perStage[i].typ && perStage[j].id == perStage[i].id {
			j++
		}
		for s := range int32(stages) {
			for _, b := range perStage[i:j] {
				b.stage = s
				out = append(out, b)
			}
		}
		i = j
	}
	return out
}

func TestDictBounds(t *testing.T) {
	// Every bound is listed, defaults and zeros included: thermal 1 at
	// 0 MW, hydro 1's minimum storage 0.
	awkward := dictAwkwardCase(t)
	for i := range awkward.Thermals {
		if awkward.Thermals[i].ID == 1 {
			awkward.Thermals[i].CapacityMW = 0
		}
	}
	awkwardPerStage := slices.Clone(dictTinyBounds)
	awkwardPerStage[0].value = 0  // hydro 1 storage_min
	awkwardPerStage[15].value = 0 // thermal 1 generation_max
	busesOnly := dictCopyCase(t, dictLoadCase(t, "tiny"))
	busesOnly.Hydros, busesOnly.Thermals, busesOnly.Lines, busesOnly.PumpingStations = nil, nil, nil, nil
	busesOnly.Contracts, busesOnly.NonControllables = nil, nil
	for _, tc := range []struct {
		name string
		c    *manifest.Case
		want []dictBound
	}{
		{"tiny", dictLoadCase(t, "tiny"), dictExpand(3, dictTinyBounds)},
		{"awkward", awkward, dictExpand(3, awkwardPerStage)},
		{"no-bounded-entities", busesOnly, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dictBuild(t, tc.c)["bounds.parquet"]
			tbl := dictReadParquet(t, b)
			var gotF, wantF []string
			for _, f := range tbl.Schema().Fields() {
				gotF = append(gotF, fmt.Sprintf("%s %s null=%v", f.Name, f.Type, f.Nullable))
			}
			for _, f := range shard.Bounds.Schema().Fields() {
				wantF = append(wantF, fmt.Sprintf("%s %s null=%v", f.Name, f.Type, f.Nullable))
			}
			if !slices.Equal(gotF, wantF) {
				t.Fatalf("schema %v, want %v", gotF, wantF)
			}
			n := int(tbl.NumRows())
			var got []dictBound
			if n > 0 {
				et := dictColumn(t, tbl, "entity_type_code").(*array.Int8)
				id := dictColumn(t, tbl, "entity_id").(*array.Int32)
				st := dictColumn(t, tbl, "stage_id").(*array.Int32)
				blk := dictColumn(t, tbl, "block_id").(*array.Int32)
				bt := dictColumn(t, tbl, "bound_type_code").(*array.Int8)
				bv := dictColumn(t, tbl, "bound_value").(*array.Float64)
				if blk.NullN() != n {
					t.Errorf("block_id: %d nulls of %d rows, want all null (whole-stage bounds)", blk.NullN(), n)
				}
				for i := range n {
					got = append(got, dictBound{et.Value(i), id.Value(i), st.Value(i), bt.Value(i), bv.Value(i)})
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("bounds\n%v\nwant\n%v", got, tc.want)
			}

			// DuckDB reads it with the right types and the same rows.
			p := dictWriteTemp(t, "bounds.parquet", b)
			src := "read_parquet(" + dictSQLString(p) + ")"
			res := dictDuckDB(t, "DESCRIBE SELECT * FROM "+src, "SELECT *, block_id IS NULL FROM "+src)
			wantTypes := []string{
				"entity_type_code TINYINT", "entity_id INTEGER", "stage_id INTEGER",
				"block_id INTEGER", "bound_type_code TINYINT", "bound_value DOUBLE",
			}
			var types []string
			for _, r := range res[0].Rows {
				types = append(types, fmt.Sprint(r[0])+" "+fmt.Sprint(r[1]))
			}
			if !slices.Equal(types, wantTypes) {
				t.Errorf("DuckDB types %v, want %v", types, wantTypes)
			}
			var duck []dictBound
			for _, r := range res[1].Rows {
				num := func(i int) float64 {
					f, err := r[i].(json.Number).Float64()
					if err != nil {
						t.Fatalf("row %v column %d: %v", r, i, err)
					}
					return f
				}
				if r[6] != true {
					t.Errorf("DuckDB row %v: block_id not NULL", r)
				}
				duck = append(duck, dictBound{int8(num(0)), int32(num(1)), int32(num(2)), int8(num(4)), num(5)})
			}
			if !slices.Equal(duck, tc.want) {
				t.Fatalf("DuckDB bounds\n%v\nwant\n%v", duck, tc.want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Determinism

// TestDictDeterministic: the same case gives the same bytes, build after
// build, and so does the same case with its entities listed in another
// order (everything is ordered by id).
func TestDictDeterministic(t *testing.T) {
	for _, name := range []string{"tiny", "demo"} {
		c := dictLoadCase(t, name)
		a := dictBuild(t, c)
		b := dictBuild(t, c)
		shuffled := dictCopyCase(t, c)
		slices.Reverse(shuffled.Buses)
		slices.Reverse(shuffled.Hydros)
		slices.Reverse(shuffled.Thermals)
		slices.Reverse(shuffled.Lines)
		slices.Reverse(shuffled.NonControllables)
		slices.Reverse(shuffled.GenericConstraints)
		s := dictBuild(t, shuffled)
		for f := range a {
			if !bytes.Equal(a[f], b[f]) {
				t.Errorf("%s %s: two builds differ", name, f)
			}
			if !bytes.Equal(a[f], s[f]) {
				t.Errorf("%s %s: reordering the case's entities changed the bytes", name, f)
			}
		}
	}
	// The awkward case too (names with newlines, out-of-order entities).
	a, b := dictBuild(t, dictAwkwardCase(t)), dictBuild(t, dictAwkwardCase(t))
	for f := range a {
		if !bytes.Equal(a[f], b[f]) {
			t.Errorf("awkward %s: two builds differ", f)
		}
	}
}
