package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// TestExampleCasesFromAnyDirectory: the example cases are embedded, so a
// rank started from a job's scratch directory finds --case demo.
func TestExampleCasesFromAnyDirectory(t *testing.T) {
	out := t.TempDir()
	t.Chdir(t.TempDir())
	var stderr bytes.Buffer
	if code := run([]string{"--case", "tiny", "--out", out, "--scenarios", "2", "--rank", "1", "--world", "2", "--quiet"}, io.Discard, &stderr); code != exitOK {
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
	// A case asking for a million stages: refused before anything is
	// sized from it (it used to exhaust memory).
	tiny, err := os.ReadFile("../../testdata/cases/tiny/case.json")
	if err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(t.TempDir(), "huge.json")
	os.WriteFile(huge, regexp.MustCompile(`"stages":\s*\d+`).ReplaceAll(tiny, []byte(`"stages": 1000000`)), 0o644)
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--case", "tiny"}, "--out is required", exitUsage},
		{[]string{"--out", t.TempDir(), "--case", "tiny"}, "no launcher environment", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "2", "--world", "2"}, "Rank", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--case", "nope"}, `--case "nope": not a builtin`, exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--case", huge}, "stages = 1000000, want 1..10000", exitError},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--case", "tiny", "--scenarios", "5", "--scenarios-from", ids}, "line 2: \"7\" is not a scenario id in 0..4", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--ownership", "zigzag"}, "zigzag", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--scenarios", "2000000000"}, "--scenarios 2000000000: want 1..10000000", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--iterations", "-1"}, "--iterations -1", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--iterations", "2", "--forward-passes", "0"}, "--forward-passes 0", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--threads", "0"}, "--threads 0", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--checkpoint-every", "-1"}, "--checkpoint-every -1", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--scenario-delay", "-1s"}, "--scenario-delay -1s", exitUsage},
		{[]string{"--out", t.TempDir(), "--rank", "0", "--world", "1", "--iteration-delay", "-1s"}, "--iteration-delay -1s", exitUsage},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		code := run(tc.args, io.Discard, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}

// TestTrainingPhase: --iterations K journals K iterations (the synthetic
// history, with the configuration in the open record) before simulating;
// a second run finds the training done (rank.TrainingDone) and skips it,
// opening no training journal, and a larger K continues the history.
func TestTrainingPhase(t *testing.T) {
	out := t.TempDir()
	args := []string{"--case", "tiny", "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1", "--quiet", "--iterations", "3", "--forward-passes", "5", "--threads", "2", "--seed", "4"}
	for i := range 2 {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != exitOK {
			t.Fatalf("run %d: exit %d: %s", i, code, stderr.String())
		}
		if skipped := strings.Contains(stderr.String(), "training: already done"); skipped != (i == 1) {
			t.Errorf("run %d: training skipped %v, want %v:\n%s", i, skipped, i == 1, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run(append(args, "--iterations", "4"), io.Discard, &stderr); code != exitOK {
		t.Fatalf("K=4: exit %d: %s", code, stderr.String())
	}
	cs, err := manifest.LoadCase(filepath.Join("..", "..", "testdata", "cases", "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*.training.*"+layout.JournalSuffix))
	if len(files) != 2 {
		t.Fatalf("%d training journals, want 2 (K=3, then K=4)", len(files))
	}
	var iters []int
	var written []int
	for _, p := range files {
		_, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			switch {
			case r.Open != nil:
				want := manifest.TrainingConfig{Seed: 4, ForwardPasses: 5, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
				if r.Open.Training == nil || r.Open.Threads != 2 || r.Open.Phase != manifest.PhaseTraining {
					t.Errorf("open record %+v", r.Open)
				} else if want.MaxIterations = r.Open.Training.MaxIterations; *r.Open.Training != want || (want.MaxIterations != 3 && want.MaxIterations != 4) {
					t.Errorf("training config %+v", *r.Open.Training)
				}
			case r.Iteration != nil:
				iters = append(iters, r.Iteration.Iteration)
				if want := synth.TrainingIteration(cs, 4, r.Iteration.Iteration, 5, 0, 1, 2); !reflect.DeepEqual(*r.Iteration, want) {
					t.Errorf("iteration %d is not the synthetic record", r.Iteration.Iteration)
				}
			case r.Close != nil:
				if r.Close.Status != manifest.StatusClean || r.Close.Termination != rank.TerminationIterationLimit {
					t.Errorf("close %+v", r.Close)
				}
				written = append(written, r.Close.Committed)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Ints(written)
	if len(iters) != 4 || !reflect.DeepEqual(written, []int{1, 3}) {
		t.Fatalf("iterations %v, closes say %v written: want 1..4 once each, written 3, then 1", iters, written)
	}
	seen := map[int]bool{}
	for _, it := range iters {
		if seen[it] || it < 1 || it > 4 {
			t.Fatalf("iterations %v", iters)
		}
		seen[it] = true
	}
	if m, _ := filepath.Glob(filepath.Join(out, "simulation/costs/scenario_id=*/data.parquet")); len(m) != 2 {
		t.Fatalf("simulation wrote %v", m)
	}
}

// TestCheckpointEvery: --checkpoint-every 2 with 5 iterations journals the
// checkpoints of iterations 2, 4 and 5 on every rank; --all-cuts gives
// every rank all cuts.
func TestCheckpointEvery(t *testing.T) {
	for _, allCuts := range []bool{false, true} {
		out := t.TempDir()
		for r := range 2 {
			args := []string{"--case", "tiny", "--out", out, "--scenarios", "2", "--rank", strconv.Itoa(r), "--world", "2", "--quiet", "--iterations", "5", "--checkpoint-every", "2", "--forward-passes", "3"}
			if allCuts {
				args = append(args, "--all-cuts")
			}
			var stderr bytes.Buffer
			if code := run(args, io.Discard, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
		}
		files, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*training*"))
		got := map[int][]int{}
		cuts := map[int]int{} // iteration -> cut count over ranks, stage 0
		for _, p := range files {
			var r int
			if _, err := journal.ReadFile(vfs.OS(), p, func(rec *manifest.Record) error {
				if rec.Open != nil {
					r = rec.Open.Rank
				}
				if ck := rec.Checkpoint; ck != nil {
					got[r] = append(got[r], ck.Iteration)
					if (ck.Meta != nil) != (r == 0) {
						t.Errorf("rank %d meta %v", r, ck.Meta)
					}
					b, err := os.ReadFile(filepath.Join(out, ck.Files[0].Path))
					if err != nil {
						t.Fatal(err)
					}
					v, err := policy.ReadStageCuts(b)
					if err != nil {
						t.Fatal(err)
					}
					cuts[ck.Iteration] += len(v.Cuts)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		for r := range 2 {
			if !reflect.DeepEqual(got[r], []int{2, 4, 5}) {
				t.Errorf("allCuts %v rank %d checkpoints %v, want [2 4 5]", allCuts, r, got[r])
			}
		}
		want := 5 * 3
		if allCuts {
			want *= 2
		}
		if cuts[5] != want {
			t.Errorf("allCuts %v: %d stage-0 cuts at iteration 5 over ranks, want %d", allCuts, cuts[5], want)
		}
	}
}

// TestRerunOtherWorldSize: a rerun of missing scenarios with the original
// arguments (--iterations included) on another rank count skips a finished
// training and simulates; an unfinished training is refused on another
// rank count, naming its world size, and resumed on its own.
func TestRerunOtherWorldSize(t *testing.T) {
	common := []string{"--case", "tiny", "--scenarios", "4", "--quiet", "--iterations", "3", "--checkpoint-every", "2", "--forward-passes", "3"}
	ids := filepath.Join(t.TempDir(), "ids")
	if err := os.WriteFile(ids, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rankRun := func(out string, r, world int, extra ...string) (int, string) {
		var stderr bytes.Buffer
		args := append(append([]string{"--out", out, "--rank", strconv.Itoa(r), "--world", strconv.Itoa(world)}, common...), extra...)
		return run(args, io.Discard, &stderr), stderr.String()
	}
	trainingJournals := func(out string) int {
		m, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*.training.*"))
		return len(m)
	}

	done := t.TempDir()
	for r := range 2 {
		if code, log := rankRun(done, r, 2); code != exitOK {
			t.Fatalf("rank %d of 2: exit %d: %s", r, code, log)
		}
	}
	code, log := rankRun(done, 0, 3, "--scenarios-from", ids)
	if code != exitOK || !strings.Contains(log, "training: already done") || !strings.Contains(log, "3 iterations on 2 ranks") {
		t.Fatalf("rerun on 3 ranks of a done training: exit %d, want 0 and the training skipped:\n%s", code, log)
	}
	if n := trainingJournals(done); n != 2 {
		t.Errorf("%d training journals after the rerun, want 2 (the rerun opens none)", n)
	}

	unfinished := t.TempDir()
	if code, log := rankRun(unfinished, 0, 2); code != exitOK {
		t.Fatalf("rank 0 of 2: exit %d: %s", code, log)
	}
	code, log = rankRun(unfinished, 0, 3, "--scenarios-from", ids)
	if code != exitError || !strings.Contains(log, "rank 1 of 2 has no training journal") || !strings.Contains(log, "resume it with 2 ranks") {
		t.Fatalf("rerun on 3 ranks of an unfinished training: exit %d, want 1 naming the world size 2:\n%s", code, log)
	}
	if code, log := rankRun(unfinished, 1, 2); code != exitOK || strings.Contains(log, "already done") {
		t.Fatalf("rank 1 of 2 resuming the training: exit %d: %s", code, log)
	}
	code, log = rankRun(unfinished, 0, 3, "--scenarios-from", ids)
	if code != exitOK || !strings.Contains(log, "training: already done") {
		t.Fatalf("rerun on 3 ranks once the training is done: exit %d:\n%s", code, log)
	}
}
