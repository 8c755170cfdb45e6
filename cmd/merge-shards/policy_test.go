package main

import (
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/vfs"
)

// TestPolicyEndToEnd: real ranks write checkpoint fragments while they
// train (each rank only the cuts of its own forward passes); the merged
// checkpoint is the same bytes as one rank holding every cut, policy.Open
// accepts it with the case's dimensions, and flatc-compatible files sit
// where Cobre's reader looks for them.
func TestPolicyEndToEnd(t *testing.T) {
	t.Parallel()
	c := tinyCaseT(t)
	args := []string{"--scenarios", "2", "--iterations", "5", "--forward-passes", "6", "--checkpoint-every", "2"}
	one, three := t.TempDir(), t.TempDir()
	runSimrank(t, []string{"SLURM_PROCID=0", "SLURM_NTASKS=1", "SLURM_JOB_ID=1"}, append([]string{"--out", one, "--all-cuts"}, args...)...)
	for r := range 3 {
		runSimrank(t, []string{"SLURM_PROCID=" + strconv.Itoa(r), "SLURM_NTASKS=3", "SLURM_JOB_ID=2"}, append([]string{"--out", three}, args...)...)
	}
	for _, out := range []string{one, three} {
		rep := mergeJSON(t, 0, out)
		tr := rep["training"].(map[string]any)
		p := tr["policy"].(map[string]any)
		if p["iteration"].(float64) != 5 {
			t.Fatalf("%s: policy from iteration %v, want 5 (the last checkpoint)", out, p["iteration"])
		}
		pol, err := policy.Open(filepath.Join(out, "policy"), policy.Expect{StateDimension: c.StateDimension(), NumStages: c.Stages})
		if err != nil {
			t.Fatalf("policy.Open: %v", err)
		}
		if len(pol.Stages) != c.Stages {
			t.Fatalf("%d stages", len(pol.Stages))
		}
		if _, err := policy.Open(filepath.Join(out, "policy"), policy.Expect{StateDimension: c.StateDimension() + 1}); err == nil || !strings.Contains(err.Error(), "state") {
			t.Fatalf("wrong state dimension accepted: %v", err)
		}
		r := mergeShards(t, "report", out)
		if !strings.Contains(r.stdout, "policy       checkpoint of iteration 5") {
			t.Fatalf("report lacks the policy line:\n%s", r.stdout)
		}
	}
	a, b := snapshotHashes(t, filepath.Join(one, "policy")), snapshotHashes(t, filepath.Join(three, "policy"))
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("1-rank and 3-rank policies differ:\n%v\n%v", a, b)
	}
}

func tinyCaseT(t *testing.T) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// snapshotHashes maps every stage file of a policy directory (cuts/,
// basis/, states/; metadata.json carries the run's own times) to its
// xxh64.
func snapshotHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, sub := range []string{"cuts", "basis", "states"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.bin"))
		for _, f := range files {
			info, err := vfs.HashFile(vfs.OS(), f)
			if err != nil {
				t.Fatal(err)
			}
			m[sub+"/"+filepath.Base(f)] = manifest.FormatXXH64(info.XXH64)
		}
	}
	if len(m) == 0 {
		t.Fatalf("no policy files under %s", dir)
	}
	return m
}
