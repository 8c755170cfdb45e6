package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
)

// TestRequeueLost: committed files lost or damaged after their commit (one
// deleted, one truncated) make the merge exit 2 naming both; with
// --requeue-lost it revokes exactly those scenarios, moves the damaged
// copies aside, lists them for a rerun (exit 3), and the rerun completes
// the study byte-identical to an undamaged one.
func TestRequeueLost(t *testing.T) {
	t.Parallel()
	const job = "7301"
	args := []string{"--scenarios", "8", "--seed", "5", "--quiet"}
	refIndex := referenceIndex(t, 2, job, args...)

	out := t.TempDir()
	runRanks(t, 2, job, append([]string{"--out", out}, args...)...)
	wantExit(t, mergeShards(t, out), 0)
	lost := layout.DataFile("hydros", 0, 2)
	cut := layout.DataFile("costs", 0, 5)
	if err := os.Remove(filepath.Join(out, lost)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(out, cut), 100); err != nil {
		t.Fatal(err)
	}

	r := mergeShards(t, out)
	wantExit(t, r, 2)
	for _, want := range []string{lost, cut, "--requeue-lost"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("the corrupt report does not name %s:\n%s", want, r)
		}
	}
	mustNotExist(t, simPath(out, layout.SuccessName))

	list := filepath.Join(t.TempDir(), "rerun.txt")
	rep := mergeJSON(t, 3, "--requeue-lost", "--rerun-list", list, out)
	if got := ints(t, rep["revoked"]); !reflect.DeepEqual(got, []int{2, 5}) {
		t.Fatalf("revoked %v, want [2 5]", got)
	}
	if got := readIDFile(t, list); !reflect.DeepEqual(got, []int{2, 5}) {
		t.Fatalf("rerun list %v, want [2 5]", got)
	}
	// Nothing committed is deleted: the truncated copy (and the intact
	// files of the revoked scenarios) are kept under _shards/superseded.
	kept, _ := filepath.Glob(filepath.Join(out, layout.SupersededDir, "*", cut))
	if len(kept) != 1 {
		t.Fatalf("the truncated copy was not moved aside: %v", kept)
	}
	mustNotExist(t, filepath.Join(out, cut))
	// A second merge agrees: partial, the same two missing.
	again := mergeJSON(t, 3, out)
	if got := ints(t, again["missing"]); !reflect.DeepEqual(got, []int{2, 5}) {
		t.Fatalf("second merge: missing %v", got)
	}

	runSimrank(t, append(slurmEnv(0, 1, job), "SLURM_RESTART_COUNT=1"), append([]string{"--out", out, "--scenarios-from", list}, args...)...)
	wantExit(t, mergeShards(t, out), 0)
	if got := readFile(t, simPath(out, layout.IndexName)); !bytes.Equal(got, refIndex) {
		t.Fatal("after the rerun the integrity index differs from an undamaged run's")
	}
	wantExit(t, mergeShards(t, "verify", "--full", out), 0)
}
