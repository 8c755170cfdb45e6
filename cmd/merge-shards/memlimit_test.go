package main

// Memory and supervision, with the real binary under a real address-space
// limit: a journal's claims cost the merge nothing it does not find on
// disk, and a worker that dies (Go's runtime out of memory, the kernel's
// SIGKILL) is exit 1, never the 2 that means "corrupt".

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
)

// memLimit is the address space (RLIMIT_AS) the tests give merge-shards:
// 2 GiB, of which Go's runtime reserves over a gigabyte before main runs.
const memLimit = 2 << 30

// limitEnv pins the thread count: under RLIMIT_AS every thread costs its
// stack and a malloc arena (the binary links cgo), and a 64-CPU runner
// would spend the limit on threads alone. Two is a small node's count.
var limitEnv = []string{"GOMAXPROCS=2"}

var (
	releaseOnce sync.Once
	releaseBin  string
	releaseErr  error
)

// releaseMerge builds merge-shards without the faultinject tag, as users
// run it: supervised by default.
func releaseMerge(t *testing.T) string {
	t.Helper()
	releaseOnce.Do(func() {
		bin := filepath.Join(binDir, "merge-shards-release")
		build := exec.Command("go", "build", "-o", bin, ".")
		var stderr bytes.Buffer
		build.Stderr = &stderr
		if err := build.Run(); err != nil {
			releaseErr = fmt.Errorf("building merge-shards: %v\n%s", err, stderr.String())
			return
		}
		releaseBin = bin
	})
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	return releaseBin
}

// runLimited runs bin with args under an address-space limit of limit
// bytes (0: none), with env added to the clean environment. A process
// that does not exit normally fails the test.
func runLimited(t *testing.T, limit int64, bin string, env []string, args ...string) result {
	t.Helper()
	argv := append([]string{bin}, args...)
	if limit > 0 {
		if p, err := exec.LookPath("prlimit"); err == nil {
			argv = append([]string{p, fmt.Sprintf("--as=%d", limit), "--"}, argv...)
		} else {
			// POSIX sh: ulimit -v (KiB) is RLIMIT_AS.
			argv = append([]string{"sh", "-c", `ulimit -v "$0" && exec "$@"`, fmt.Sprint(limit >> 10)}, argv...)
		}
	}
	cmd := exec.CommandContext(testCtx(t), argv[0], argv[1:]...)
	cmd.Env = append(testtools.CleanEnv(limitEnv...), env...)
	return runCmd(t, cmd, args, fmt.Sprint(argv))
}

// claim makes every journal of out claim n scenarios (the merge reports
// journals that disagree, so all of them).
func claim(t *testing.T, out string, n int) {
	t.Helper()
	for _, p := range journalPaths(t, out) {
		edit(t, p, func(recs []*manifest.Record) {
			if recs[0].Open.Phase == manifest.PhaseSimulation {
				recs[0].Open.Scenarios = n
			}
		})
	}
}

// TestClaimedScenariosUnderMemoryLimit: journals of a real run whose open
// records claim ten million scenarios (merge.MaxScenarios) while two are
// committed merge under a 2 GiB address-space limit in well under a
// second: partial (exit 3), with the exact count, the lowest
// merge.MaxListedMissing missing ids listed (report, --json,
// --rerun-list, manifest), a manifest that verify reads back. A claim of a
// billion is refused by name (exit 2, nothing changed), under the same
// limit. Listing every missing id took gigabytes: the Go runtime died with
// exit 2, "corrupt".
func TestClaimedScenariosUnderMemoryLimit(t *testing.T) {
	t.Parallel()
	bin := releaseMerge(t)
	base := t.TempDir()
	// Rank 0 of 2 commits scenarios 0 and 1 of 4.
	runSimrank(t, nil, "--out", base, "--scenarios", "4", "--rank", "0", "--world", "2")

	t.Run("ten million", func(t *testing.T) {
		t.Parallel()
		out := copyTree(t, base)
		claim(t, out, merge.MaxScenarios)
		const n, committed, listed = merge.MaxScenarios, 2, merge.MaxListedMissing
		list := filepath.Join(t.TempDir(), "rerun.txt")
		start := time.Now()
		r := runLimited(t, memLimit, bin, nil, "--json", "--rerun-list", list, out)
		took := time.Since(start)
		wantExit(t, r, 3)
		t.Logf("merge of %d claimed scenarios, %d committed, under a %d MiB address space: %v", n, committed, memLimit>>20, took)
		if took > 20*time.Second {
			t.Errorf("the merge took %v: its time follows the claim, not the commits", took)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("--json: %v\n%s", err, r)
		}
		if num(t, rep, "scenarios") != n || num(t, rep, "committed") != committed {
			t.Fatalf("scenarios %v, committed %v; want %d and %d", rep["scenarios"], rep["committed"], n, committed)
		}
		wantLowest := func(what string, ids []int) {
			t.Helper()
			if len(ids) != listed {
				t.Fatalf("%s lists %d missing scenarios, want the lowest %d", what, len(ids), listed)
			}
			for i, id := range ids {
				if id != committed+i {
					t.Fatalf("%s: missing[%d] = %d, want %d", what, i, id, committed+i)
				}
			}
		}
		wantLowest("the report", ints(t, rep["missing"]))
		wantLowest("--rerun-list", readIDFile(t, list))
		if want := fmt.Sprintf("lists the first %d of the %d missing scenarios", listed, n-committed); !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
		m := readJSONFile(t, simPath(out, layout.ManifestName))
		wantLowest("missing_scenarios", ints(t, m["missing_scenarios"]))
		for _, doc := range []map[string]any{m, readJSONFile(t, simPath(out, layout.MetadataName))} {
			sc, _ := doc["scenarios"].(map[string]any)
			if num(t, sc, "total") != n || num(t, sc, "completed") != committed || num(t, sc, "failed") != n-committed {
				t.Fatalf("scenarios %v, want total %d, completed %d, failed %d", doc["scenarios"], n, committed, n-committed)
			}
		}
		h := runLimited(t, memLimit, bin, nil, out)
		wantExit(t, h, 3)
		if want := fmt.Sprintf("%d of %d committed, %d missing: %d-%d (the first %d listed)", committed, n, n-committed, committed, committed+listed-1, listed); !strings.Contains(h.stdout, want) {
			t.Errorf("the report does not say %q:\n%s", want, h)
		}
		wantExit(t, runLimited(t, memLimit, bin, nil, "verify", out), 0)
	})

	t.Run("a billion", func(t *testing.T) {
		t.Parallel()
		out := copyTree(t, base)
		claim(t, out, 1_000_000_000)
		before := snapshot(t, out)
		r := runLimited(t, memLimit, bin, nil, out)
		wantExit(t, r, 2)
		if want := fmt.Sprintf("open record claims 1000000000 scenarios, want 0..%d", merge.MaxScenarios); !strings.Contains(r.stdout, "PROBLEM      journal:") || !strings.Contains(r.stdout, want) {
			t.Fatalf("want a journal problem saying %q:\n%s", want, r)
		}
		sameSnapshot(t, "a merge refusing a billion scenarios", before, snapshot(t, out))
	})
}

// TestLongTornTailUnderMemoryLimit: a journal whose file goes on, after
// its last record, with 384 MiB of NUL bytes and no newline (a file system
// can leave such a tail after a power cut; here it is sparse). The reader
// never holds more than journal.MaxLineBytes of a line, so under 2 GiB of
// address space (over half of it the runtime's own reservations) the
// merge finds the tail torn and completes. (It read the tail whole
// before, and died of out of memory.)
func TestLongTornTailUnderMemoryLimit(t *testing.T) {
	t.Parallel()
	bin := releaseMerge(t)
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1")
	j := journalPaths(t, out)[0]
	st, err := os.Stat(j)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(j, st.Size()+384<<20); err != nil {
		t.Fatal(err)
	}
	r := runLimited(t, memLimit, bin, nil, out)
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, "1 with a torn last line") {
		t.Fatalf("the NUL tail is not reported torn:\n%s", r)
	}
	wantExit(t, mergeShards(t, "verify", "--full", out), 0)
}

// TestOutOfMemoryIsExit1: a merge that runs out of memory for real, under
// a real address-space limit. Every input is bounded (that is the point
// of the limits), so the memory is taken by a fault-injection rule
// ("exhaust": allocate until the runtime dies) at the merge's first output
// write. Alone, Go's runtime ends the process with exit 2, "corrupt";
// supervised, merge-shards exits 1 and says so, with the runtime's report
// streamed through. Nothing was changed but the lock the dead worker
// held; the next merge, without the fault, takes it over and completes.
func TestOutOfMemoryIsExit1(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1")
	sim := snapshot(t, filepath.Join(out, layout.SimDir))
	fault := "HYDROSHARD_FAULT=create@_shards/tmp/merge.*:exhaust:1"

	alone := runLimited(t, memLimit, mergeBin, []string{superviseEnv + "=0", fault}, out)
	if alone.code != 2 || !strings.Contains(alone.stderr, "fatal error: out of memory") {
		t.Fatalf("test setup: unsupervised, the merge should die of Go's out of memory (exit 2):\n%s", alone)
	}
	for _, env := range [][]string{
		{superviseEnv + "=1", fault},
		// A marker inherited from elsewhere is not this process's parent:
		// it does not turn supervision off.
		{superviseEnv + "=1", fault, childEnv + "=1"},
	} {
		r := runLimited(t, memLimit, mergeBin, env, out)
		if r.code != 1 {
			t.Fatalf("env %v: want exit 1, got\n%s", env, r)
		}
		for _, want := range []string{"fatal error: out of memory", "merge-shards: out of memory: its worker process (pid ", "exit 1; nothing committed is lost"} {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("env %v: stderr does not say %q:\n%s", env, want, r.stderr)
			}
		}
	}
	sameSnapshot(t, "a merge that ran out of memory", sim, snapshot(t, filepath.Join(out, layout.SimDir)))
	mustExist(t, filepath.Join(out, layout.LockFile)) // the dead worker's

	wantExit(t, mergeShards(t, out), 0)
	mustNotExist(t, filepath.Join(out, layout.LockFile))
	wantExit(t, mergeShards(t, "verify", "--full", out), 0)
}

// TestKilledWorkerIsExit1: a worker killed by SIGKILL, as the kernel's
// OOM killer kills, at an exact step of writing the outputs (fault
// injection; a test build supervises with HYDROSHARD_MERGE_SUPERVISE=1):
// merge-shards exits 1 and says so, and the next merge ends in exactly
// the state of an uninterrupted one.
func TestKilledWorkerIsExit1(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	runSimrank(t, nil, "--out", base, "--scenarios", "3", "--rank", "0", "--world", "1")
	ref := copyTree(t, base)
	mergeJSON(t, 0, ref)
	want := contentOnly(snapshot(t, ref))

	out := copyTree(t, base)
	cmd := exec.CommandContext(testCtx(t), mergeBin, out)
	cmd.Env = append(testtools.CleanEnv(), superviseEnv+"=1", "HYDROSHARD_FAULT=temp-write:kill:2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Exited() || ws.ExitStatus() != 1 {
		t.Fatalf("want exit 1, got %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"merge-shards: killed (out of memory?): its worker process (pid ", "SIGKILL", "exit 1; nothing committed is lost"} {
		if !strings.Contains(stderr.String(), want) {
			t.Fatalf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	mustExist(t, filepath.Join(out, layout.LockFile)) // left by the dead worker
	wantExit(t, mergeShards(t, out), 0)
	if d := diffSnapshots(want, contentOnly(snapshot(t, out))); len(d) > 0 {
		t.Fatalf("after a killed worker and a second merge, the directory differs from an uninterrupted merge:\n  %s", strings.Join(d, "\n  "))
	}
}

// TestSupervisorForwardsSignals: SIGINT and SIGTERM sent to merge-shards
// (the supervising parent alone, not its process group) reach the worker,
// which handles them as it always has: status --watch ends with exit 0.
func TestSupervisorForwardsSignals(t *testing.T) {
	t.Parallel()
	bin := releaseMerge(t)
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, "status", "--watch", "--interval", "1h", out)
		cmd.Env = testtools.CleanEnv()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The first refresh is printed: the worker runs, and waits an hour.
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			t.Fatalf("%v: no first refresh: %v\n%s", sig, err, stderr.String())
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		cancel()
		if err != nil {
			t.Fatalf("%v to the supervisor: want exit 0 (the end of a watch), got %v\n%s", sig, err, stderr.String())
		}
	}
}

// TestStderrWatch: the first line of a runtime crash report is found
// however the pipe splits it, only at the start of a line; every byte is
// passed on.
func TestStderrWatch(t *testing.T) {
	text := "merge-shards: a line\nnot a fatal error: at the start\nruntime: out of memory: cannot allocate 4194304-byte block (0 in use)\nfatal error: out of memory\n\ngoroutine 1 [running]:\nfatal error: a second one\n"
	for _, size := range []int{1, 3, 7, 64, len(text)} {
		var passed bytes.Buffer
		w := &stderrWatch{w: &passed}
		for i := 0; i < len(text); i += size {
			w.Write([]byte(text[i:min(i+size, len(text))]))
		}
		w.flush()
		if passed.String() != text {
			t.Fatalf("chunks of %d: passed on %q", size, passed.String())
		}
		if got := w.crashLine(); got != "fatal error: out of memory" || !resourceFatal(got) {
			t.Fatalf("chunks of %d: crash line %q", size, got)
		}
	}
	for line, want := range map[string]bool{
		"fatal error: out of memory":               true,
		"panic: runtime error: index out of range": true,
		"SIGSEGV: segmentation violation":          true,
		"SIGQUIT: quit":                            true,
		"runtime/cgo: pthread_create failed: Resource temporarily unavailable": true,
		"merge-shards: SIGNAL: not one":                                        false,
		"SIG: short":                                                           false,
		"Sigh: no":                                                             false,
		"merge-shards: fatal error: no":                                        false,
		"runtime: out of memory: cannot allocate 4194304-byte block (0 in use)": false,
	} {
		if isCrashLine([]byte(line)) != want {
			t.Errorf("isCrashLine(%q) = %v", line, !want)
		}
	}
	for line, want := range map[string]bool{
		"fatal error: out of memory":                                           true,
		"fatal error: runtime: cannot allocate memory":                         true,
		"fatal error: out of memory allocating heap arena map":                 true,
		"fatal error: newosproc":                                               true,
		"runtime/cgo: pthread_create failed: Resource temporarily unavailable": true,
		"fatal error: concurrent map writes":                                   false,
		"fatal error: all goroutines are asleep - deadlock!":                   false,
	} {
		if resourceFatal(line) != want {
			t.Errorf("resourceFatal(%q) = %v", line, !want)
		}
	}
}
