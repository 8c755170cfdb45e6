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
		{[]string{"-h"}, "usage: shardbench", 0},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
