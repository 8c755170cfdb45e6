package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleCasesFromAnyDirectory: the example cases are embedded, so a
// rank started from a job's scratch directory finds --case demo.
func TestExampleCasesFromAnyDirectory(t *testing.T) {
	out := t.TempDir()
	t.Chdir(t.TempDir())
	var stderr bytes.Buffer
	if code := run([]string{"--case", "tiny", "--out", out, "--scenarios", "2", "--rank", "1", "--world", "2", "--quiet"}, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	m, _ := filepath.Glob(filepath.Join(out, "simulation/costs/scenario_id=*/data.parquet"))
	if len(m) != 1 || !strings.Contains(m[0], "scenario_id=1") {
		t.Fatalf("rank 1 of 2 wrote %v, want scenario 1 only", m)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, k := range []string{"SLURM_PROCID", "SLURM_NTASKS", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	ids := filepath.Join(t.TempDir(), "ids")
	os.WriteFile(ids, []byte("1\n7\n"), 0o644)
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--case", "tiny"}, "--out is required", exitUsage},
		{[]string{"--out", t.TempDir(), "--case", "tiny"}, "no launcher environment", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "2", "--world", "2"}, "Rank", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--case", "nope"}, `case "nope"`, exitError},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--case", "tiny", "--scenarios", "5", "--scenarios-from", ids}, "line 2: \"7\" is not a scenario id in 0..4", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--ownership", "zigzag"}, "zigzag", exitUsage},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		code := run(tc.args, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
