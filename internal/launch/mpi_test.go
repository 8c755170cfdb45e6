package launch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/internal/testtools"
)

// mpirunArgs starts N copies of a program the way a user runs an MPI
// solver; root and more processes than cores need saying so.
func mpirunArgs(n int, prog string, args ...string) []string {
	return append([]string{"--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(n), prog}, args...)
}

func needMPI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("mpirun")
	if err != nil {
		testtools.Missing(t, "mpirun (OpenMPI) is not installed", "scripts/install-test-tools.sh installs openmpi-bin (as root)")
	}
	return p
}

// envRecorder is a rank program that records, per process, what the
// launcher told it (SLURM_PROCID and OMPI_COMM_WORLD_RANK) before
// starting simrank.
func envRecorder(t *testing.T, dir string) (prog, records string) {
	t.Helper()
	records = filepath.Join(dir, "env")
	if err := os.Mkdir(records, 0o755); err != nil {
		t.Fatal(err)
	}
	prog = filepath.Join(dir, "rank.sh")
	script := fmt.Sprintf(`#!/bin/sh
echo "SLURM_PROCID=${SLURM_PROCID:-unset}" > %q/"rank-$OMPI_COMM_WORLD_RANK"
exec %q "$@"
`, records, simrankBin)
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, records
}

// wantOpenMPIRanks checks that the 4 journals took their identity from
// OpenMPI (ranks 0..3 of 4), whatever SLURM said.
func wantOpenMPIRanks(t *testing.T, out string) {
	t.Helper()
	var ranks []int
	for _, j := range readJournals(t, out) {
		ranks = append(ranks, j.open.Rank)
		if j.open.Launcher != "openmpi" || j.open.World != 4 {
			t.Errorf("%s: launcher %q world %d, want openmpi, 4", j.path, j.open.Launcher, j.open.World)
		}
	}
	slices.Sort(ranks)
	if !slices.Equal(ranks, []int{0, 1, 2, 3}) {
		t.Errorf("journal ranks %v, want [0 1 2 3]", ranks)
	}
}

// TestMpirun: mpirun -np 4 simrank, outside SLURM, merges complete.
func TestMpirun(t *testing.T) {
	mpirun := needMPI(t)
	out := filepath.Join(t.TempDir(), "study")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpirun, mpirunArgs(4, simrankBin, append([]string{"--out", out}, studyArgs...)...)...)
	cmd.Env = cleanEnv()
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		t.Fatalf("mpirun: %v\n%s", err, outBuf.String())
	}
	wantOpenMPIRanks(t, out)
	if r := mergeShards(t, out); r.code != 0 {
		t.Fatalf("merge-shards: exit %d\n%s", r.code, r.stderr)
	}
	wantComplete(t, out)
}

// TestMpirunInAllocation: mpirun -np 4 inside an sbatch allocation of 4
// tasks. Every process sees SLURM_PROCID=0 there; ranks must come from
// OMPI_COMM_WORLD_RANK, or all four would write as rank 0.
func TestMpirunInAllocation(t *testing.T) {
	mpirun := needMPI(t)
	needCluster(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "study")
	prog, records := envRecorder(t, dir)
	logPath := filepath.Join(dir, "job.out")
	wrap := strings.Join(append([]string{mpirun}, mpirunArgs(4, prog, append([]string{"--out", out}, studyArgs...)...)...), " ")
	id := strings.TrimSpace(slurm(t, jobEnv(), "sbatch", "--parsable", "--export=ALL", "-n", "4", "-o", logPath, "--wrap", wrap))
	id, _, _ = strings.Cut(id, ";")
	info := awaitJob(t, id)
	if info["JobState"] != "COMPLETED" {
		t.Fatalf("job %s (%s): %s exit %s\n%s", id, wrap, info["JobState"], info["ExitCode"], readLog(t, logPath))
	}
	for r := range 4 {
		b, err := os.ReadFile(filepath.Join(records, fmt.Sprintf("rank-%d", r)))
		if err != nil {
			t.Fatalf("MPI rank %d recorded no environment: %v", r, err)
		}
		if got := strings.TrimSpace(string(b)); got != "SLURM_PROCID=0" {
			t.Errorf("MPI rank %d saw %s; this test is about SLURM_PROCID=0 in every process", r, got)
		}
	}
	wantOpenMPIRanks(t, out)
	if r := mergeShards(t, out); r.code != 0 {
		t.Fatalf("merge-shards: exit %d\n%s", r.code, r.stderr)
	}
	wantComplete(t, out)
}
