package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickRunJSON runs the command end to end, shrunk below --quick (one
// round, the tiny case for the RSS children) so CI stays short, and checks
// that the JSON has every figure, each positive. It asserts nothing about
// speed: that is what the command reports, not what it tests.
func TestQuickRunJSON(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	code := runWith([]string{"--quick", "--json", jsonPath, "--out", t.TempDir()}, &stdout, &stderr, knobs{tiny: true})
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, b)
	}
	_, noDuck := doc["duckdb_missing"]
	if noDuck {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the run left DuckDB out: %v", doc["duckdb_missing"])
		}
		t.Logf("\n!!! DuckDB NOT MEASURED, its keys not checked: %v\n!!! install it with scripts/install-test-tools.sh", doc["duckdb_missing"])
	}
	if doc["quick"] != true || doc["scale"] != "production" || doc["xl_scale"] != "xl" || doc["rss_case"] != "tiny" {
		t.Errorf("quick=%v scale=%v xl_scale=%v rss_case=%v, want true, production, xl, tiny", doc["quick"], doc["scale"], doc["xl_scale"], doc["rss_case"])
	}
	for _, k := range []string{"go_version", "parquet_go_version"} {
		if s, _ := doc[k].(string); s == "" {
			t.Errorf("%s = %v, want a non-empty string", k, doc[k])
		}
	}
	perScale := []string{"writer_1w_mbps", "writer_2w_mbps", "raw_zstd_mbps", "parquet_go_mbps",
		"writer_full_1w_mbps", "writer_full_2w_mbps", "bytes_writer", "bytes_parquet_go", "bytes_raw_zstd",
		"bytes_writer_full", "input_bytes", "input_bytes_full", "rows",
		"ratio_writer_1w_raw_zstd", "ratio_writer_1w_parquet_go", "ratio_writer_2w_writer_1w",
		"value_checks_mbps", "value_check_overhead", "value_check_overhead_1w"}
	duckPerScale := []string{"duckdb_1t_mbps", "duckdb_2t_mbps", "bytes_duckdb", "ratio_writer_1w_duckdb_1t", "ratio_bytes_writer_duckdb"}
	var want []string
	for _, p := range []string{"", "xl_"} {
		for _, k := range perScale {
			want = append(want, p+k)
		}
		if !noDuck {
			for _, k := range duckPerScale {
				want = append(want, p+k)
			}
		}
	}
	want = append(want, "rss_200_mb", "rss_2000_mb", "ratio_rss_2000_200", "gomaxprocs", "workers")
	if !noDuck {
		if s, _ := doc["duckdb_version"].(string); !strings.HasPrefix(s, "v") {
			t.Errorf("duckdb_version = %v", doc["duckdb_version"])
		}
	}
	for _, k := range want {
		v, ok := doc[k].(float64)
		if !ok || !(v > 0) {
			t.Errorf("%s = %v, want a positive number", k, doc[k])
		}
	}
	// The analyst section: the compaction against cp -r, its peak RSS at
	// two study sizes, and each engine's queries on both forms.
	want = []string{"compact_mbps", "cp_mbps", "compact_cp_ratio", "compact_s", "cp_s", "compact_rss_small_mb", "compact_rss_large_mb",
		"compact_rss_ratio", "partition_bytes", "partition_files", "compacted_bytes", "analyst_scenarios", "rows_per_scenario"}
	for engine, missingKey := range map[string]string{"duckdb": "analyst_duckdb_missing", "polars": "polars_missing"} {
		if why, missing := doc[missingKey]; missing {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true but the run left %s out of the analyst queries: %v", engine, why)
			}
			t.Logf("\n!!! %s NOT MEASURED in the analyst queries, its keys not checked: %v\n!!! install it with scripts/install-test-tools.sh", engine, why)
			continue
		}
		for _, q := range []string{"agg", "filter"} {
			want = append(want, engine+"_"+q+"_hive_ms", engine+"_"+q+"_compacted_ms", engine+"_"+q+"_ratio")
		}
	}
	if _, ok := doc["polars_missing"]; !ok {
		if s, _ := doc["polars_version"].(string); s == "" {
			t.Errorf("polars_version = %v", doc["polars_version"])
		}
	}
	for _, k := range want {
		v, ok := doc[k].(float64)
		if !ok || !(v > 0) {
			t.Errorf("%s = %v, want a positive number", k, doc[k])
		}
	}
	if doc["analyst_case"] != "tiny" || doc["analyst_scenarios"] != 20.0 || doc["analyst_scenarios_small"] != 4.0 {
		t.Errorf("analyst_case=%v analyst_scenarios=%v analyst_scenarios_small=%v, want tiny, 20, 4", doc["analyst_case"], doc["analyst_scenarios"], doc["analyst_scenarios_small"])
	}
	// The capi section: the Go API and each C way in, on the disk (and
	// on tmpfs where there is one), every contestant the same bytes.
	want = []string{"capi_scenarios", "capi_bytes"}
	for _, k := range []string{"go_mbps", "arrays_mbps", "borrow_mbps", "arrow_mbps", "arrays_ratio", "borrow_ratio", "arrow_ratio"} {
		want = append(want, "capi_"+k)
	}
	for _, k := range want {
		if v, ok := doc[k].(float64); !ok || !(v > 0) {
			t.Errorf("%s = %v, want a positive number", k, doc[k])
		}
	}
	if ts, _ := doc["targets"].([]any); len(ts) == 0 {
		t.Errorf("no targets in the JSON")
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--workers", "1"}, "--workers 1", 2},
		{[]string{"--reps", "-1"}, "--reps -1", 2},
		{[]string{"extra"}, `unexpected argument "extra"`, 2},
		{[]string{"--sections", "writer,bogus"}, `unknown section "bogus"`, 2},
		{[]string{"--sections", ","}, "want at least one of", 2},
		{[]string{"-h"}, "usage: shardbench", 0},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}

// TestAnswerChecks: the analyst section's comparison of two answers fails
// on a wrong one and passes sums taken in another order.
func TestAnswerChecks(t *testing.T) {
	ref := []aggRow{{0, 1.5e10, 3000.25, 96000}, {1, 1.7e10, 3100.5, 96000}}
	same := []aggRow{{0, 1.5e10 * (1 + 1e-13), 3000.25, 96000}, {1, 1.7e10, 3100.5 * (1 - 1e-13), 96000}}
	if err := sameAgg(ref, same); err != nil {
		t.Errorf("sums in another order: %v", err)
	}
	for i, bad := range [][]aggRow{
		{{0, 1.5e10, 3000.25, 96000}},
		{{0, 1.5e10, 3000.25, 96000}, {2, 1.7e10, 3100.5, 96000}},
		{{0, 1.5e10, 3000.25, 96000}, {1, 1.7e10 * 1.001, 3100.5, 96000}},
		{{0, 1.5e10, 3000.25, 96000}, {1, 1.7e10, 3100.5, 95999}},
	} {
		if err := sameAgg(ref, bad); err == nil {
			t.Errorf("case %d: a wrong aggregate passed", i)
		}
	}
	if err := sameAgg(nil, nil); err == nil {
		t.Errorf("an empty aggregate passed")
	}
	f := filterResult{Rows: 28800, Columns: 32, SumGen: 4.46e9, SumStage: 849600, SumHydro: 2318400, ScenarioIDs: []float64{66}}
	g := f
	g.SumGen *= 1 + 1e-13
	if err := sameFilter(f, g); err != nil {
		t.Errorf("sums in another order: %v", err)
	}
	g.Rows--
	if err := sameFilter(f, g); err == nil {
		t.Errorf("a wrong filter passed")
	}
}

// TestReencodeFlag: the re-encode switch is found in a compact help text
// whatever its spelling, and only when it is a switch.
func TestReencodeFlag(t *testing.T) {
	for _, tc := range []struct{ help, want string }{
		{"Flags:\n  -json\n    \tprint the report\n  -target-size string\n", ""},
		{"Flags:\n  -json\n  -reencode\n    \tdecode and encode every page\n", "reencode"},
		{"Flags:\n  -json\n  --re-encode\n", "re-encode"},
		{"Flags:\n  -re-encode-level int\n", ""},
		{"Flags:\n  -no-page-copy\n", "no-page-copy"},
	} {
		got := ""
		if m := reencodeRE.FindStringSubmatch(tc.help); m != nil && strings.TrimSpace(m[2]) == "" {
			got = m[1]
		}
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.help, got, tc.want)
		}
	}
}
