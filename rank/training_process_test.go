package rank_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// countIterations counts iteration lines in the journals (the condition
// the kill tests wait for).
func countIterations(out string) int {
	n := 0
	files, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		n += bytes.Count(b, []byte(`"type":"iteration"`))
	}
	return n
}

// durablePrefix checks that each rank's durable iterations are 1..n_r,
// each once, and returns n_r per rank.
func durablePrefix(t *testing.T, count map[[2]int]int, world int) []int {
	t.Helper()
	last := make([]int, world)
	for k, n := range count {
		if n != 1 {
			t.Errorf("rank %d iteration %d recorded %d times", k[0], k[1], n)
		}
		last[k[0]] = max(last[k[0]], k[1])
	}
	for r := range world {
		for it := 1; it <= last[r]; it++ {
			if count[[2]int{r, it}] == 0 {
				t.Errorf("rank %d: iteration %d missing below %d", r, it, last[r])
			}
		}
	}
	return last
}

// checkRerun checks that the attempt-1 training journals hold exactly the
// iterations each rank lacked before (before[r]+1..k).
func checkRerun(t *testing.T, js []trainingJournal, before []int, k int) {
	t.Helper()
	got := map[int][]int{}
	for _, j := range js {
		if j.open.Attempt != 1 {
			continue
		}
		for _, it := range j.iters {
			got[j.open.Rank] = append(got[j.open.Rank], it.Iteration)
		}
	}
	for r, b := range before {
		var want []int
		for it := b + 1; it <= k; it++ {
			want = append(want, it)
		}
		if !reflect.DeepEqual(got[r], want) {
			t.Errorf("rank %d: the rerun wrote iterations %v, want exactly the missing %v", r, got[r], want)
		}
	}
}

// checkTrainingIdentities checks, per iteration, the cross-rank sums the
// merge relies on: forward passes and LP solves of the root's convergence
// row equal the sums over the ranks' mpi_ranks rows.
func checkTrainingIdentities(t *testing.T, js []trainingJournal, world, k, fp int) {
	t.Helper()
	conv := map[int]*manifest.ConvergenceRow{}
	sp, lp := map[int]int32{}, map[int]int64{}
	for _, j := range js {
		for _, it := range j.iters {
			if it.Convergence != nil {
				conv[it.Iteration] = it.Convergence
			}
			sp[it.Iteration] += it.MPIRank.ScenariosProcessed
			lp[it.Iteration] += it.MPIRank.LPSolves
		}
	}
	for it := 1; it <= k; it++ {
		c := conv[it]
		if c == nil {
			t.Errorf("iteration %d: no convergence row", it)
			continue
		}
		if int(c.ForwardPasses) != fp || sp[it] != c.ForwardPasses || lp[it] != c.LPSolves {
			t.Errorf("iteration %d: forward_passes %d (want %d), ranks processed %d; lp_solves %d, ranks %d", it, c.ForwardPasses, fp, sp[it], c.LPSolves, lp[it])
		}
	}
}

// TestTrainingKillAtJournalStep crashes a real simrank --iterations run
// with SIGKILL inside the journal append and inside the fsync of
// iteration 4: iterations 1..3 are durable, iteration 4 at most; the rerun
// (a new attempt) writes exactly the missing iterations, then simulates.
func TestTrainingKillAtJournalStep(t *testing.T) {
	const k, n = 6, 3
	for _, point := range []string{"journal-append", "journal-fsync"} {
		t.Run(point, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out := t.TempDir()
			// Journal hit 1 is the training open record; iteration i is hit i+1.
			cmd := simrank(ctx, []string{fmt.Sprintf("HYDROSHARD_FAULT=%s:kill:5", point)}, "--out", out, "--scenarios", fmt.Sprint(n), "--rank", "0", "--world", "1", "--iterations", fmt.Sprint(k))
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed by SIGKILL: %v", err)
			}
			js, count := readTraining(t, out)
			last := durablePrefix(t, count, 1)
			if last[0] < 3 || last[0] > 4 || (point == "journal-append" && last[0] != 3) {
				t.Fatalf("killed in iteration 4's %s: %d iterations durable", point, last[0])
			}
			if len(js) != 1 || js[0].close != nil {
				t.Fatalf("training journals %+v, want one without a close record", js)
			}
			if st := readJournals(t, out); len(st.opens) != 1 {
				t.Fatalf("%d journals: the simulation started before training finished", len(st.opens))
			}
			runOK(t, simrank(ctx, []string{"SLURM_PROCID=0", "SLURM_NTASKS=1", "SLURM_RESTART_COUNT=1"}, "--out", out, "--scenarios", fmt.Sprint(n), "--iterations", fmt.Sprint(k)))
			js, count = readTraining(t, out)
			exactlyOnce(t, count, 1, k)
			checkRerun(t, js, last, k)
			checkTrainingIdentities(t, js, 1, k, 8)
			if got := checkInvariants(t, out); len(got) != n {
				t.Fatalf("simulation after the rerun committed %v, want %d scenarios", got, n)
			}
		})
	}
}

// TestTrainingKillAtRandomMoments runs two ranks as processes, sends both
// a real kill -9 after a random number of durable iteration records, and
// reruns them: each (rank, iteration) ends up recorded exactly once.
func TestTrainingKillAtRandomMoments(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	const k, world, fp = 20, 2, 5
	args := func(out string) []string {
		return []string{"--out", out, "--scenarios", "2", "--iterations", fmt.Sprint(k), "--forward-passes", fmt.Sprint(fp), "--threads", "3", "--iteration-delay", "2ms"}
	}
	for trial := range 2 {
		t.Run(fmt.Sprint(trial), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out := t.TempDir()
			cmds := make([]*exec.Cmd, world)
			for r := range world {
				cmds[r] = simrank(ctx, []string{fmt.Sprintf("SLURM_PROCID=%d", r), fmt.Sprintf("SLURM_NTASKS=%d", world), "SLURM_JOB_ID=40"}, args(out)...)
				if err := cmds[r].Start(); err != nil {
					t.Fatal(err)
				}
			}
			want := 1 + rng.IntN(world*k*3/4)
			for countIterations(out) < want && ctx.Err() == nil {
				time.Sleep(200 * time.Microsecond)
			}
			for _, cmd := range cmds {
				cmd.Process.Signal(syscall.SIGKILL)
			}
			for _, cmd := range cmds {
				cmd.Wait()
			}
			_, count := readTraining(t, out)
			last := durablePrefix(t, count, world)
			t.Logf("killed after >= %d iteration records: ranks at %v", want, last)
			if last[0]+last[1] < want {
				t.Fatalf("%v durable after awaiting %d records", last, want)
			}
			cmds = cmds[:0]
			errs := make([]bytes.Buffer, world)
			for r := range world {
				cmd := simrank(ctx, []string{fmt.Sprintf("SLURM_PROCID=%d", r), fmt.Sprintf("SLURM_NTASKS=%d", world), "SLURM_JOB_ID=40", "SLURM_RESTART_COUNT=1"}, args(out)...)
				cmd.Stderr = &errs[r]
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds = append(cmds, cmd)
			}
			for r, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("rerun of rank %d: %v\n%s", r, err, errs[r].String())
				}
			}
			js, count := readTraining(t, out)
			exactlyOnce(t, count, world, k)
			checkRerun(t, js, last, k)
			checkTrainingIdentities(t, js, world, k, fp)
			for _, j := range js {
				for _, it := range j.iters {
					if len(it.Timing) != 4 {
						t.Fatalf("rank %d iteration %d: %d timing rows, want the rank row and 3 workers", j.open.Rank, it.Iteration, len(it.Timing))
					}
				}
			}
		})
	}
}

// TestTrainingSIGTERM: a TERM during training closes the training journal
// as interrupted (termination "signal"), skips the simulation and exits 0;
// the rerun continues the training and then simulates.
func TestTrainingSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := t.TempDir()
	const k = 40
	args := []string{"--out", out, "--scenarios", "2", "--iterations", fmt.Sprint(k)}
	cmd := simrank(ctx, nil, append(args, "--rank", "0", "--world", "1", "--iteration-delay", "3ms")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for countIterations(out) < 3 && ctx.Err() == nil {
		time.Sleep(200 * time.Microsecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("simrank after SIGTERM: %v (want exit 0)\n%s", err, stderr.String())
	}
	js, count := readTraining(t, out)
	last := durablePrefix(t, count, 1)
	if len(js) != 1 || js[0].close == nil || js[0].close.Status != manifest.StatusInterrupted || js[0].close.Termination != rank.TerminationSignal ||
		js[0].close.Committed != last[0] || last[0] < 3 || last[0] == k {
		t.Fatalf("after SIGTERM: %d iterations, close %+v; want interrupted by signal with at least the 3 awaited", last[0], js[0].close)
	}
	if st := readJournals(t, out); len(st.opens) != 1 {
		t.Fatalf("%d journals: the simulation ran after a SIGTERM in training", len(st.opens))
	}
	runOK(t, simrank(ctx, []string{"SLURM_PROCID=0", "SLURM_NTASKS=1", "SLURM_RESTART_COUNT=1"}, args...))
	js, count = readTraining(t, out)
	exactlyOnce(t, count, 1, k)
	checkRerun(t, js, last, k)
	for _, j := range js {
		if j.open.Attempt == 1 && (j.close == nil || j.close.Status != manifest.StatusClean || j.close.Termination != rank.TerminationIterationLimit) {
			t.Errorf("rerun close %+v, want clean with iteration_limit", j.close)
		}
	}
	if got := checkInvariants(t, out); len(got) != 2 {
		t.Fatalf("simulation after the rerun committed %v", got)
	}
}
