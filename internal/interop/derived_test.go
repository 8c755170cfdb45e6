package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// derivedFixture is the fixture of shard/derive_expect_test.go: a case
// with blocks of different hours and lines of different loss fractions,
// the rows a solver supplies (scenario.json) and every derived value
// computed from them with the formulas of docs/tables.md, independently
// of the encoder (expected.json; the shard test checks that it is what
// the formulas give).
var derivedFixture = filepath.Join("..", "..", "shard", "testdata", "derived")

// derivedJSON strictly decodes a fixture file into v.
func derivedJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(derivedFixture, name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v (regenerate it: go test ./shard -run TestDerivedFixtureUpToDate -update-derived)", name, err)
	}
}

// derivedField returns the field of a rows struct that supplies column
// name ([]int32 for a key column, shard.NullInt32 for block_id).
func derivedField(rows any, name string) (any, bool) {
	v := reflect.ValueOf(rows).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("col") == name {
			return v.Field(i).Interface(), true
		}
	}
	return nil, false
}

// derivedRowKey is how a row is matched between the input and DuckDB:
// scenario, stage, block ("null" for a stage-level row) and entity id.
func derivedRowKey(scenario, stage int, block string, entity int) string {
	return fmt.Sprintf("scenario %d, stage %d, block %s, id %d", scenario, stage, block, entity)
}

// duckInt reads an INTEGER DuckDB rendered as a JSON number.
func duckInt(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) {
		return 0, false
	}
	return int(f), true
}

// TestDuckDBReadsDerivedColumns writes the fixture's scenarios with the
// rank writer (the production path: value checks, encoding, commit) and
// has DuckDB read every derived column of every table back through hive
// partitioning; each value must equal the one computed independently from
// the inputs (expected.json), row by row, matched by key, none missing
// and none extra.
func TestDuckDBReadsDerivedColumns(t *testing.T) {
	t.Parallel()
	c, err := manifest.LoadCase(filepath.Join(derivedFixture, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var scs []*shard.Scenario
	derivedJSON(t, "scenario.json", &scs)
	var exp []map[string]map[string][]float64
	derivedJSON(t, "expected.json", &exp)
	if len(scs) == 0 || len(exp) != len(scs) {
		t.Fatalf("scenario.json holds %d scenarios, expected.json %d", len(scs), len(exp))
	}

	// Every derived column of every table the scenarios have is expected,
	// and nothing else: the fixture covers the registry.
	entities := map[string]bool{}
	for si, s := range scs {
		if s.ID != si {
			t.Fatalf("scenario.json: scenario %d has id %d", si, s.ID)
		}
		for _, tr := range s.Tables() {
			var derived []string
			for _, col := range tr.Table.Columns {
				if col.Derived {
					derived = append(derived, col.Name)
				}
			}
			if len(derived) == 0 {
				continue
			}
			entities[tr.Table.Entity] = true
			var have []string
			for col := range exp[si][tr.Table.Entity] {
				have = append(have, col)
			}
			slices.Sort(derived)
			slices.Sort(have)
			if !slices.Equal(have, derived) {
				t.Fatalf("scenario %d %s: expected.json has %v, the registry's derived columns are %v", si, tr.Table.Entity, have, derived)
			}
		}
	}
	for _, tb := range shard.SimulationTables {
		for _, col := range tb.Columns {
			if col.Derived && !entities[tb.Entity] {
				t.Fatalf("%s.%s is derived, and the fixture has no %s rows", tb.Name, col.Name, tb.Entity)
			}
		}
	}

	// The rank writer writes the scenarios, as a solver rank would.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "out")
	id, err := rank.Explicit(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: len(scs), Solver: "interop-derived"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scs {
		if err := w.WriteScenario(ctx, s); err != nil {
			t.Fatalf("WriteScenario(%d): %v", s.ID, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := w.Committed(); len(got) != len(scs) {
		t.Fatalf("committed %v, want all %d scenarios", got, len(scs))
	}

	// One DuckDB query per table, over all scenarios.
	type tableQuery struct {
		entity, idCol string
		derived       []string
	}
	var queries []tableQuery
	var sqls []string
	for _, tr := range scs[0].Tables() {
		if !entities[tr.Table.Entity] {
			continue
		}
		q := tableQuery{entity: tr.Table.Entity, idCol: tr.Table.Columns[2].Name}
		for _, col := range tr.Table.Columns {
			if col.Derived {
				q.derived = append(q.derived, col.Name)
			}
		}
		glob := filepath.ToSlash(filepath.Join(out, "simulation", filepath.FromSlash(q.entity), "*", "*.parquet"))
		sqls = append(sqls, fmt.Sprintf(
			"SELECT CAST(scenario_id AS INTEGER) AS scenario_id, stage_id, block_id, %s, %s FROM read_parquet(%s, hive_partitioning = true)",
			q.idCol, strings.Join(q.derived, ", "), testtools.SQLQuote(glob)))
		queries = append(queries, q)
	}
	res := testtools.DuckQuery(t, ctx, t.TempDir(), sqls...)

	for qi, q := range queries {
		t.Run(q.entity, func(t *testing.T) {
			r := res[qi]
			wantCols := append([]string{"scenario_id", "stage_id", "block_id", q.idCol}, q.derived...)
			var gotCols []string
			for i, col := range r.Columns {
				gotCols = append(gotCols, col.Name)
				if i >= 4 && col.Type != "DOUBLE" {
					t.Errorf("%s: DuckDB type %s, want DOUBLE", col.Name, col.Type)
				}
			}
			if !slices.Equal(gotCols, wantCols) {
				t.Fatalf("DuckDB columns %v, want %v", gotCols, wantCols)
			}
			// The input rows of every scenario, by key.
			type inputRow struct{ scenario, row int }
			rows := map[string]inputRow{}
			for si, s := range scs {
				var tr shard.TableRows
				for _, x := range s.Tables() {
					if x.Table.Entity == q.entity {
						tr = x
					}
				}
				if tr.Table == nil {
					t.Fatalf("scenario %d has no %s table", si, q.entity)
				}
				st, _ := derivedField(tr.Rows, "stage_id")
				bl, _ := derivedField(tr.Rows, "block_id")
				ids, _ := derivedField(tr.Rows, q.idCol)
				stage, block, ent := st.([]int32), bl.(shard.NullInt32), ids.([]int32)
				for i := range stage {
					b := "null"
					if block.Values != nil && (block.Valid == nil || block.Valid[i]) {
						b = fmt.Sprint(block.Values[i])
					}
					k := derivedRowKey(si, int(stage[i]), b, int(ent[i]))
					if _, dup := rows[k]; dup {
						t.Fatalf("scenario.json: two %s rows have the key %s", q.entity, k)
					}
					rows[k] = inputRow{si, i}
				}
			}
			if len(r.Rows) != len(rows) {
				t.Errorf("DuckDB read %d rows, the scenarios supplied %d", len(r.Rows), len(rows))
			}
			seen := map[string]bool{}
			bad, compared := 0, 0
			for ri, row := range r.Rows {
				sc, ok1 := duckInt(row[0])
				stage, ok2 := duckInt(row[1])
				ent, ok3 := duckInt(row[3])
				b := "null"
				if row[2] != nil {
					bi, ok := duckInt(row[2])
					if !ok {
						t.Fatalf("DuckDB row %d: block_id %#v", ri, row[2])
					}
					b = fmt.Sprint(bi)
				}
				if !ok1 || !ok2 || !ok3 {
					t.Fatalf("DuckDB row %d: key %v is not integers", ri, row[:4])
				}
				k := derivedRowKey(sc, stage, b, ent)
				in, ok := rows[k]
				if !ok {
					t.Errorf("DuckDB read a row no scenario supplied: %s", k)
					continue
				}
				if seen[k] {
					t.Errorf("DuckDB read %s twice", k)
				}
				seen[k] = true
				for ci, col := range q.derived {
					want := exp[in.scenario][q.entity][col][in.row]
					got, ok := row[4+ci].(float64)
					compared++
					if !ok || !(got == want || math.Abs(got-want) <= 1e-12*math.Abs(want)) {
						if bad++; bad <= 10 {
							t.Errorf("%s at %s: DuckDB read %#v, want %v", col, k, row[4+ci], want)
						}
					}
				}
			}
			for k := range rows {
				if !seen[k] {
					t.Errorf("DuckDB did not read the row %s", k)
				}
			}
			if bad > 10 {
				t.Errorf("%d of %d values differ", bad, compared)
			}
			if compared == 0 {
				t.Fatal("no value compared")
			}
			t.Logf("%d rows x %d derived columns equal to the independent values", len(r.Rows), len(q.derived))
		})
	}
}
