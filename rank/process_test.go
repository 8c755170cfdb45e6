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
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

var simrankBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "simrank-bin")
	if err != nil {
		panic(err)
	}
	simrankBin = filepath.Join(dir, "simrank")
	// The fault-injection hook (HYDROSHARD_FAULT) exists only in binaries
	// built with the faultinject tag: release builds never read it.
	build := exec.Command("go", "build", "-tags", "faultinject", "-o", simrankBin, "../cmd/simrank")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building simrank:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// simrank runs the synthetic rank as a real child process.
func simrank(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, simrankBin, append([]string{"--case", "../testdata/cases/tiny", "--quiet"}, args...)...)
	cmd.Env = append(testtools.CleanEnv(), env...)
	return cmd
}

func runOK(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, stderr.String())
	}
}

// dataFiles maps each data file's path (relative to out) to its xxh64.
func dataFiles(t *testing.T, out string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	err := filepath.WalkDir(filepath.Join(out, layout.SimDir), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := vfs.HashFile(vfs.OS(), p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(out, p)
		if err != nil {
			return err
		}
		m[rel] = info.XXH64
		return nil
	})
	if err != nil {
		t.Fatalf("reading the data files of %s: %v", out, err)
	}
	return m
}

// TestMultiRankByteIdentical runs 3 ranks as processes with SLURM-style
// launcher variables, and 1 rank, with the same seed: disjoint scenario
// sets that together cover all scenarios, every partition file exactly
// once, and byte-identical data files.
func TestMultiRankByteIdentical(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 10
	one, three := t.TempDir(), t.TempDir()
	runOK(t, simrank(ctx, []string{"SLURM_PROCID=0", "SLURM_NTASKS=1", "SLURM_JOB_ID=11"}, "--out", one, "--scenarios", fmt.Sprint(n), "--seed", "5"))
	cmds := make([]*exec.Cmd, 3)
	errs := make([]bytes.Buffer, 3)
	for r := range 3 {
		cmds[r] = simrank(ctx, []string{fmt.Sprintf("SLURM_PROCID=%d", r), "SLURM_NTASKS=3", "SLURM_JOB_ID=12"}, "--out", three, "--scenarios", fmt.Sprint(n), "--seed", "5")
		cmds[r].Stderr = &errs[r]
		if err := cmds[r].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for r, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("rank %d: %v\n%s", r, err, errs[r].String())
		}
	}
	// Disjoint ownership covering every scenario, read from the journals.
	st := readJournals(t, three)
	if len(st.opens) != 3 {
		t.Fatalf("%d journals, want 3", len(st.opens))
	}
	owner := map[int]int{}
	for _, p := range mustGlob(t, filepath.Join(three, layout.JournalDir, "*")) {
		jr := readJournalsOf(t, p)
		for _, s := range jr.scenarios {
			if prev, dup := owner[s]; dup {
				t.Errorf("scenario %d committed by ranks %d and %d", s, prev, jr.rank)
			}
			owner[s] = jr.rank
		}
	}
	if len(owner) != n {
		t.Fatalf("scenarios committed: %v, want all %d", owner, n)
	}
	a, b := dataFiles(t, one), dataFiles(t, three)
	c := tinyCase(t)
	if len(a) != n*len(c.Entities()) {
		t.Fatalf("1-rank run has %d files, want %d", len(a), n*len(c.Entities()))
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("1-rank and 3-rank data files differ:\n%v\n%v", a, b)
	}
	checkInvariants(t, three)
}

type journalSummary struct {
	rank      int
	scenarios []int
}

func readJournalsOf(t *testing.T, p string) journalSummary {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, layout.JournalDir), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, layout.JournalDir, filepath.Base(p)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	st := readJournals(t, dir)
	if len(st.opens) != 1 {
		t.Fatalf("journal %s: %d open records, want 1", p, len(st.opens))
	}
	js := journalSummary{rank: st.opens[0].Rank}
	for s := range st.commits {
		js.scenarios = append(js.scenarios, s)
	}
	return js
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v (%d matches)", pattern, err, len(m))
	}
	return m
}

// TestKillAtEachStep crashes a real simrank process with SIGKILL at each
// step of the commit protocol (the process kills itself at the exact
// point), checks the invariants, and lets a second attempt finish.
func TestKillAtEachStep(t *testing.T) {
	c := tinyCase(t)
	tables := len(c.Entities())
	points := map[string]int{
		"temp-write":               2*tables + 3, // inside scenario 2's encoding
		"temp-fsync":               2*tables + 3,
		"journal-append":           3, // scenario 1's commit (write 1 is the open record)
		"journal-fsync":            3,
		"sync-dir@_shards/tmp":     2,          // before scenario 1's commit record
		"mkdir@*/scenario_id=1":    2,          // scenario 1's second partition
		"rename":                   tables + 2, // scenario 1's second rename
		"sync-dir@*/scenario_id=1": 2,          // after it
	}
	for point, n := range points {
		t.Run(point, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out := t.TempDir()
			cmd := simrank(ctx, []string{fmt.Sprintf("HYDROSHARD_FAULT=%s:kill:%d", point, n)}, "--out", out, "--scenarios", "5", "--rank", "0", "--world", "1", "--workers", "1")
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed by SIGKILL: %v", err)
			}
			committed := checkInvariants(t, out)
			if len(committed) >= 5 {
				t.Fatalf("crash at %s committed everything: %v", point, committed)
			}
			resumeAndFinish(t, ctx, out, committed, 5)
		})
	}
}

// resumeAndFinish runs a second attempt, which must skip the committed
// scenarios, and checks that everything is committed afterwards.
func resumeAndFinish(t *testing.T, ctx context.Context, out string, committed []int, n int) {
	t.Helper()
	before := readJournals(t, out)
	runOK(t, simrank(ctx, []string{"SLURM_PROCID=0", "SLURM_NTASKS=1", "SLURM_RESTART_COUNT=1"}, "--out", out, "--scenarios", fmt.Sprint(n)))
	if after := checkInvariants(t, out); len(after) != n {
		t.Fatalf("after resume committed %v, want all %d", after, n)
	}
	// The second attempt committed exactly the scenarios that were missing.
	st := readJournals(t, out)
	if got, want := len(st.opens), len(before.opens)+1; got != want {
		t.Fatalf("%d journals, want %d", got, want)
	}
	var last []int
	for _, p := range mustGlob(t, filepath.Join(out, layout.JournalDir, "*attempt-1*")) {
		last = readJournalsOf(t, p).scenarios
	}
	sort.Ints(last)
	var want []int
	for s := range n {
		if !contains(committed, s) {
			want = append(want, s)
		}
	}
	if !reflect.DeepEqual(last, want) {
		t.Fatalf("second attempt committed %v, want exactly the missing %v", last, want)
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestKillAtRandomMoments sends a real kill -9 to a running rank after a
// random number of durable commits, several times. Every trial must kill
// the child (a child that finished on its own tested no crash), no commit
// seen in the journal before the kill may be lost, and at least one trial
// must kill a child with scenarios still to do (the first trial always
// awaits at least one commit). The seed is logged: HYDROSHARD_KILL_SEED
// replays it.
func TestKillAtRandomMoments(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HYDROSHARD_KILL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("HYDROSHARD_KILL_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (HYDROSHARD_KILL_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const n = 30
	midRun := 0 // trials that killed a child with scenarios still pending
	for trial := range 3 {
		// Await k durable commits (k random in 0..19; at least 1 in the
		// first trial), then kill.
		k := rng.IntN(20)
		if trial == 0 {
			k = 1 + rng.IntN(19)
		}
		t.Run(fmt.Sprint(trial), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out := t.TempDir()
			cmd := simrank(ctx, nil, "--out", out, "--scenarios", fmt.Sprint(n), "--rank", "0", "--world", "1", "--workers", "2")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for countCommits(t, out) < k && ctx.Err() == nil {
				time.Sleep(time.Millisecond) // polling the journal: there is no event to wait for
			}
			if err := ctx.Err(); err != nil {
				t.Fatalf("%d commits awaited, %d seen before the timeout: %v\n%s", k, countCommits(t, out), err, stderr.String())
			}
			// What the journal holds now was acknowledged: the commit
			// point is the journal line, and a later kill may not undo it.
			acked := countCommits(t, out)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
			err := cmd.Wait()
			ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed by SIGKILL (it ended on its own: %v), so this trial tested no crash\n%s", err, stderr.String())
			}
			committed := checkInvariants(t, out)
			t.Logf("awaited %d commits, %d in the journal at the kill, %d durable after it", k, acked, len(committed))
			if len(committed) < acked {
				t.Fatalf("lost commits: %d were in the journal before the kill, %d are durable after it", acked, len(committed))
			}
			if len(committed) < n {
				midRun++
			}
			resumeAndFinish(t, ctx, out, committed, n)
		})
	}
	if midRun == 0 {
		t.Fatal("no trial killed a child with scenarios still pending: the test crashed nothing mid-run")
	}
}

// countCommits counts the complete commit lines in the journals (a poll
// of the condition the test waits for, not a timing guess).
func countCommits(t *testing.T, out string) int {
	t.Helper()
	n := 0
	files, err := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			n += bytes.Count(b[:i+1], []byte(`"type":"commit"`)) // a line still being appended does not count
		}
	}
	return n
}

// TestSIGTERMClosesInterrupted: SLURM's --signal (or scancel) sends TERM to
// a running rank; it finishes the scenario in progress, closes its journal
// as interrupted and exits 0, and nothing committed is lost.
func TestSIGTERMClosesInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := t.TempDir()
	const n = 60
	cmd := simrank(ctx, nil, "--out", out, "--scenarios", fmt.Sprint(n), "--rank", "0", "--world", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for countCommits(t, out) < 2 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("simrank after SIGTERM: %v (want exit 0)\n%s", err, stderr.String())
	}
	st := readJournals(t, out)
	if len(st.closes) != 1 || st.closes[0].Status != "interrupted" {
		t.Fatalf("close records %+v, want one interrupted", st.closes)
	}
	committed := checkInvariants(t, out)
	if len(committed) < 2 || len(committed) == n || st.closes[0].Committed != len(committed) {
		t.Fatalf("%d committed (close says %d); want at least the 2 awaited and fewer than %d", len(committed), st.closes[0].Committed, n)
	}
	resumeAndFinish(t, ctx, out, committed, n)
}
