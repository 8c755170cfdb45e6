package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/internal/testtools"
)

// buildCSolver builds the C API's library (with the faultinject tag, so
// that HYDROSHARD_FAULT can kill a rank inside it) and examples/c/simulate.c
// against it, as a user of scripts/build-lib.sh would.
func buildCSolver(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"gcc", "mpicc"} {
		if _, err := exec.LookPath(tool); err != nil {
			testtools.Missing(t, tool+" is not installed", "scripts/install-test-tools.sh installs gcc and libopenmpi-dev (as root)")
		}
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	prog := filepath.Join(dir, "simulate")
	for _, args := range [][]string{
		{"go", "build", "-tags", "faultinject", "-buildmode=c-shared", "-o", filepath.Join(lib, "libhydroshard.so"), "./cmd/libhydroshard"},
		{"mpicc", "-O2", "-I", filepath.Join(root, "include"), "examples/c/simulate.c", "-L", lib, "-lhydroshard", "-Wl,-rpath," + lib, "-o", prog},
	} {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return prog
}

// TestSubmitCSolver: scripts/slurm/submit.sh --program with a solver
// written in C (examples/c/simulate.c on libhydroshard). Rank 2 of the
// first job is killed inside the library when it is about to commit its
// third scenario; the merge job finds the study partial and submits a rerun
// job, whose C ranks get --scenarios-from and write exactly the missing
// scenarios; the second merge completes.
func TestSubmitCSolver(t *testing.T) {
	needCluster(t)
	prog := buildCSolver(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "study")
	wrapper := filepath.Join(dir, "rank.sh")
	script := fmt.Sprintf(`#!/bin/sh
if [ "${SLURM_PROCID:-}" = 2 ] && mkdir %q 2>/dev/null; then
  export HYDROSHARD_FAULT=journal-append:kill:3
fi
exec %q "$@"
`, filepath.Join(dir, "killed-once"), prog)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 16
	// --identity env: under srun the library reads SLURM's variables (MPI
	// there may not be wired to SLURM).
	runID, mergeID := submit(t, jobEnv(), "-n", "4", "--program", wrapper, out, "--", "--case", "demo", "--scenarios", strconv.Itoa(n), "--identity", "env")
	run := awaitJob(t, runID)
	runLog := readLog(t, filepath.Join(out+".slurm", "run-"+runID+".out"))
	if run["JobState"] != "FAILED" {
		t.Errorf("run job %s: %s exit %s, want FAILED (a rank was killed)\n%s", runID, run["JobState"], run["ExitCode"], runLog)
	}
	rounds := followMerges(t, out+".slurm", mergeID)
	t.Logf("run job log:\n%s", runLog)
	js := readJournals(t, out)
	missing := missingOf(committed(ofJob(js, runID)), n)
	if len(missing) == 0 || len(missing) >= n {
		t.Fatalf("the killed run committed %v: want some but not all scenarios", ids(committed(ofJob(js, runID))))
	}
	if len(rounds) != 2 || !strings.Contains(rounds[1].log, "COMPLETE after round 2") {
		t.Fatalf("want 2 merge rounds (partial, then complete), got %+v", rounds)
	}
	if got := ids(committed(ofJob(js, rounds[0].rerunID))); !slices.Equal(got, missing) {
		t.Errorf("the C rerun job %s committed %v, want exactly the missing %v", rounds[0].rerunID, got, missing)
	}
	for s, k := range committed(js) {
		if k != 1 {
			t.Errorf("scenario %d committed %d times", s, k)
		}
	}
	for _, j := range js {
		if j.open.Launcher != "slurm" || j.open.World != 4 && j.open.JobID == runID {
			t.Errorf("%s: launcher %q world %d: want the identity from SLURM", j.path, j.open.Launcher, j.open.World)
		}
	}
	if r := mergeShards(t, "verify", "--full", out); r.code != 0 {
		t.Errorf("merge-shards verify --full: exit %d\n%s", r.code, r.stderr)
	}
}
