package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/merge"
)

// liveTrials is how many trials TestMergeBesideLiveRun runs: a few in CI,
// HYDROSHARD_LIVE_TRIALS=N for a long run.
func liveTrials(t *testing.T) int {
	if v := os.Getenv("HYDROSHARD_LIVE_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HYDROSHARD_LIVE_TRIALS=%q: want a positive count", v)
		}
		return n
	}
	return 2
}

// TestMergeBesideLiveRun: merges, reports and a status view run in a loop
// beside 4 live ranks (one of them killed with SIGKILL at a random moment
// and rerun). No rank fails because of a merge, every merge while writers
// are live exits 4 and changes nothing of theirs, and the final merge is
// complete with an integrity index byte-identical to an uninterrupted
// run's.
func TestMergeBesideLiveRun(t *testing.T) {
	t.Parallel()
	const ranks, scenarios, job = 4, 100, "7001"
	args := []string{"--scenarios", strconv.Itoa(scenarios), "--seed", "11", "--quiet", "--lease-interval", "200ms"}
	refIndex := referenceIndex(t, ranks, job, args...)

	for trial := range liveTrials(t) {
		t.Run(fmt.Sprintf("trial %d", trial), func(t *testing.T) {
			out := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(trial), 7))
			cmds, _, rankErrs, done := startRanks(t, ranks, job, append([]string{"--out", out, "--scenario-delay", "250ms"}, args...)...)
			victim := rng.IntN(ranks)
			// The victim dies after a random share of its work.
			killAt := time.Duration(500+rng.IntN(4000)) * time.Millisecond
			killed := time.AfterFunc(killAt, func() { _ = cmds[victim].Process.Signal(syscall.SIGKILL) })
			defer killed.Stop()

			merges, running := 0, 0
		loop:
			for {
				select {
				case <-done:
					break loop
				default:
				}
				r := mergeShards(t, "--json", "--lease-grace", "30s", out)
				merges++
				switch r.code {
				case 4:
					running++
					var rep struct {
						Live []struct {
							Writer string `json:"writer"`
						} `json:"live"`
						Written []string `json:"written"`
					}
					if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Live) == 0 || len(rep.Written) != 0 {
						t.Fatalf("merge %d exit 4: live %v, written %v, %v\n%s", merges, rep.Live, rep.Written, err, r)
					}
				case 1:
					// Only before the first journal exists.
					if !strings.Contains(r.stderr, "no journals") {
						t.Fatalf("merge %d beside live ranks: %s", merges, r)
					}
				case 0, 3:
					// Every writer had closed (or died) by then.
				default:
					t.Fatalf("merge %d beside live ranks: %s", merges, r)
				}
				if merges%3 == 0 {
					if rep := mergeShards(t, "report", out); rep.code != 4 && rep.code != 0 && rep.code != 3 && !strings.Contains(rep.stderr, "no journals") {
						t.Fatalf("report beside live ranks: %s", rep)
					}
				}
				if merges%3 == 1 {
					if st := mergeShards(t, "status", "--json", out); st.code != 0 {
						t.Fatalf("status beside live ranks: %s", st)
					}
				}
			}
			for r, err := range rankErrs {
				if r == victim {
					continue // killed (or done before the kill)
				}
				if err != nil {
					t.Fatalf("rank %d failed beside the merges: %v", r, err)
				}
			}
			// At least 10 merges beside live writers, or the trial proved
			// little (a loaded machine, with two suites at once, runs
			// about 20; an idle one 40).
			if running < 10 {
				t.Fatalf("only %d of %d merges ran while ranks were live, want at least 10", running, merges)
			}
			// The victim's next attempt finishes its share; then the merge
			// completes.
			runSimrank(t, append(slurmEnv(victim, ranks, job), "SLURM_RESTART_COUNT=1"), append([]string{"--out", out}, args...)...)
			wantExit(t, mergeShards(t, out), 0)
			if got := readFile(t, simPath(out, layout.IndexName)); !bytes.Equal(got, refIndex) {
				t.Fatalf("integrity index differs from an uninterrupted run's")
			}
			if v := mergeShards(t, "verify", "--full", out); v.code != 0 {
				t.Fatalf("verify --full: %s", v)
			}
			t.Logf("trial %d: %d merges, %d while ranks were live (exit 4); rank %d killed after %v", trial, merges, running, victim, killAt)
		})
	}
}

// TestLeaseExpiry: a rank killed with SIGKILL on another host (simulated:
// this test's merge cannot see its pid) is reported live until its lease
// expires, then dead, and then recovered by the merge.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	ctx := testCtx(t)
	cmd := simrankCmd(ctx, slurmEnv(0, 1, "7002"), "--out", out, "--scenarios", "50", "--scenario-delay", "30ms", "--lease-interval", "100ms", "--quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it has committed something.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if countInJournals(out, "", `"type":"commit"`) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no commit in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	ents, err := os.ReadDir(filepath.Join(out, layout.LeaseDir))
	leases := 0
	for _, e := range ents {
		if _, perr := layout.ParseLeaseName(e.Name()); perr == nil {
			leases++ // (a renewal cut short may leave its dot-named temp)
		}
	}
	if err != nil || leases != 1 {
		t.Fatalf("lease directory after the kill: %v, %v", ents, err)
	}
	// Same host: the pid is gone, so the lease is dead at once.
	wantExit(t, mergeShards(t, "report", "--lease-grace", "1h", out), 3)
	// Another host's reader can only wait for the grace (min 6 intervals,
	// 600 ms): the library judges by age alone when it cannot check a pid.
	grace := 2 * time.Second
	first := time.Now()
	sawLive := false
	for {
		code := reportAsOtherHost(t, out, grace)
		if code == 4 {
			sawLive = true
		} else if code == 3 {
			break
		} else {
			t.Fatalf("report: exit %d", code)
		}
		if time.Since(first) > 30*time.Second {
			t.Fatal("the lease never expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawLive {
		t.Fatal("the killed rank was never reported live: the grace did not hold")
	}
	wantExit(t, mergeShards(t, out), 3) // recovered: the dead rank's work is merged
}

// reportAsOtherHost runs the merge's analysis as a reader on another host
// would judge leases: by age alone (it cannot see the writer's pid).
func reportAsOtherHost(t *testing.T, out string, grace time.Duration) int {
	t.Helper()
	rep, err := merge.Analyze(context.Background(), out, merge.Options{Lease: lease.Options{Grace: grace, Alive: func(int) bool { return true }}})
	if err != nil {
		t.Fatal(err)
	}
	return rep.ExitCode()
}
