package main

// Process tests of merge-shards: every rank is a real simrank process, every
// merge a real merge-shards process, and every expectation is computed
// independently (journals read with manifest.ReadJournalFile, files hashed
// here, statistics computed here).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
)

// TestKillNineRerunMerge kills real ranks with SIGKILL at random moments,
// several times: the merge must report exactly the scenarios without a
// durable commit (computed from the journals here), a rerun of only those as
// a new job must complete the run, the result must be byte-identical to an
// uninterrupted run of the same seed, and merging the merged directory
// again must change no byte.
func TestKillNineRerunMerge(t *testing.T) {
	t.Parallel()
	const n, seed = 24, "9"
	ref := t.TempDir()
	runRanks(t, 3, "500", "--out", ref, "--scenarios", strconv.Itoa(n), "--seed", seed)
	wantExit(t, mergeShards(t, ref), 0)
	refData := dataHashes(t, ref)
	if len(refData) != n*entityCount() {
		t.Fatalf("uninterrupted run has %d data files, want %d", len(refData), n*entityCount())
	}
	refIndex, _ := os.ReadFile(simPath(ref, layout.IndexName))
	refSummary, _ := os.ReadFile(simPath(ref, layout.SummaryName))

	rngSeed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", rngSeed)
	rng := rand.New(rand.NewPCG(rngSeed, 1))
	victimSets := [][]int{{1}, {0, 2}, {0, 1, 2}, {rng.IntN(3)}}
	for trial, victims := range victimSets {
		t.Run(fmt.Sprintf("trial%d-kill%v", trial, victims), func(t *testing.T) {
			out := t.TempDir()
			job := strconv.Itoa(600 + trial)
			ctx := testCtx(t)
			cmds := make([]*exec.Cmd, 3)
			stderr := make([]bytes.Buffer, 3)
			errs := make([]error, 3)
			done := make([]chan struct{}, 3)
			for r := range 3 {
				cmds[r] = simrankCmd(ctx, slurmEnv(r, 3, job), "--out", out, "--scenarios", strconv.Itoa(n), "--seed", seed)
				cmds[r].Stderr = &stderr[r]
				if err := cmds[r].Start(); err != nil {
					t.Fatal(err)
				}
				done[r] = make(chan struct{})
				go func() { errs[r] = cmds[r].Wait(); close(done[r]) }()
			}
			// Each victim owns 8 scenarios: await 1..5 of its commits in
			// its journal, then kill -9 it after a random jitter.
			for _, r := range victims {
				await := 1 + rng.IntN(5)
				jitter := time.Duration(rng.IntN(40)) * time.Millisecond
				t.Logf("rank %d: kill -9 after %d commits + %v", r, await, jitter)
				go func() {
					part := fmt.Sprintf("job-%s.rank-%05d", job, r)
					for countInJournals(out, part, `"type":"commit"`) < await {
						select {
						case <-done[r]:
							return
						case <-time.After(time.Millisecond): // poll interval of the awaited condition
						}
					}
					time.Sleep(jitter) // the random kill moment, not synchronisation
					cmds[r].Process.Signal(syscall.SIGKILL)
				}()
			}
			victim := map[int]bool{}
			for _, r := range victims {
				victim[r] = true
			}
			killed := 0
			for r := range 3 {
				<-done[r]
				ws, _ := cmds[r].ProcessState.Sys().(syscall.WaitStatus)
				switch {
				case victim[r] && ws.Signaled() && ws.Signal() == syscall.SIGKILL:
					killed++
				case victim[r]:
					t.Logf("rank %d finished before its kill landed: %v", r, errs[r])
				case errs[r] != nil:
					t.Fatalf("surviving rank %d: %v\n%s", r, errs[r], stderr[r].String())
				}
			}
			if killed == 0 {
				t.Fatal("no kill landed: the test did not interrupt anything")
			}

			st := readJournals(t, out)
			expected := st.missing(n)
			t.Logf("%d torn journal tails; missing %v", len(st.torn), expected)
			wantCode := 3
			if len(expected) == 0 {
				wantCode = 0 // a kill landed after the rank's last commit
			}

			// report changes nothing.
			before := snapshot(t, out)
			wantExit(t, mergeShards(t, "report", out), wantCode)
			sameSnapshot(t, "merge-shards report", before, snapshot(t, out))

			temps, _ := filepath.Glob(filepath.Join(out, layout.TempDir, "*"))
			list := filepath.Join(t.TempDir(), "rerun.txt")
			rep := mergeJSON(t, wantCode, "--rerun-list", list, out)
			t.Logf("%d temp files before the merge: %d rolled forward, %d removed", len(temps), num(t, rep, "rolled_forward"), num(t, rep, "temp_removed"))
			if left, _ := filepath.Glob(filepath.Join(out, layout.TempDir, "*")); len(left) > 0 {
				t.Fatalf("temp files left after a merge: %v", left)
			}
			if got := ints(t, rep["missing"]); !reflect.DeepEqual(got, expected) {
				t.Fatalf("report missing %v, journals say %v", got, expected)
			}
			if got := readIDFile(t, list); !reflect.DeepEqual(got, expected) {
				t.Fatalf("--rerun-list has %v, journals say %v", got, expected)
			}
			if wantCode == 3 {
				mustNotExist(t, simPath(out, layout.SuccessName))
				if rep["status"] != "partial" {
					t.Fatalf("status %v, want partial", rep["status"])
				}
			}
			checkSummary(t, out)

			if len(expected) > 0 {
				rerunJob := strconv.Itoa(700 + trial)
				runRanks(t, 2, rerunJob, "--out", out, "--scenarios", strconv.Itoa(n), "--seed", seed, "--scenarios-from", list)
				// The rerun committed exactly the missing scenarios.
				var rerun []int
				for _, c := range readJournals(t, out).commitsOf(t, "job-"+rerunJob+".") {
					rerun = append(rerun, c.info.Scenario)
				}
				sort.Ints(rerun)
				if !reflect.DeepEqual(rerun, expected) {
					t.Fatalf("rerun job committed %v, want exactly %v", rerun, expected)
				}
				wantExit(t, mergeShards(t, out), 0)
			}
			mustExist(t, simPath(out, layout.SuccessName))
			sameData(t, "interrupted+rerun vs uninterrupted run", refData, dataHashes(t, out))
			if b, _ := os.ReadFile(simPath(out, layout.IndexName)); !bytes.Equal(b, refIndex) {
				t.Fatalf("_files.csv differs from the uninterrupted run's")
			}
			if b, _ := os.ReadFile(simPath(out, layout.SummaryName)); !bytes.Equal(b, refSummary) {
				t.Fatalf("summary.json differs from the uninterrupted run's")
			}
			checkSummary(t, out)
			wantExit(t, mergeShards(t, "verify", "--full", out), 0)
			if left, _ := filepath.Glob(filepath.Join(out, layout.TempDir, "*")); len(left) > 0 {
				t.Fatalf("temp files left after a complete merge: %v", left)
			}

			// Idempotent: a merged directory merges to the same bytes.
			before = snapshot(t, out)
			wantExit(t, mergeShards(t, out), 0)
			sameSnapshot(t, "a second merge", before, snapshot(t, out))
			mustNotExist(t, filepath.Join(out, layout.LockFile))
		})
	}
}

// TestRollForwardInterruptedRenames kills a rank (by fault injection, at
// the exact step) after its commit point, half way through the renames of
// a scenario; the merge must finish them.
func TestRollForwardInterruptedRenames(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	tables := entityCount()
	// Scenario 0 renames hit 1..tables; scenario 1's second rename is
	// hit tables+2: one of its files is in place, the others are not.
	cmd := simrankCmd(testCtx(t), []string{fmt.Sprintf("HYDROSHARD_FAULT=rename:kill:%d", tables+2)}, "--out", out, "--scenarios", "4", "--rank", "0", "--world", "1", "--workers", "1")
	err := cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("simrank was not killed by its fault: %v", err)
	}
	st := readJournals(t, out)
	win := st.latest()
	if len(win) != 2 {
		t.Fatalf("committed %d scenarios before the kill, want 2 (0 and 1)", len(win))
	}
	inPlace, inTemp := 0, 0
	for _, f := range win[1].info.Files {
		switch {
		case exists(filepath.Join(out, f.Path)):
			inPlace++
		case exists(filepath.Join(out, f.Temp)):
			inTemp++
		}
	}
	if inPlace != 1 || inTemp != tables-1 {
		t.Fatalf("scenario 1: %d files in place, %d in tmp; want 1 and %d", inPlace, inTemp, tables-1)
	}
	// A requeued rank finishes the other scenarios; it does not roll
	// forward another attempt's commit (that is the merge's job).
	runSimrank(t, nil, "--out", out, "--scenarios", "4", "--rank", "0", "--world", "1")

	rep := mergeJSON(t, 0, "--verify", "full", out)
	if got := num(t, rep, "rolled_forward"); got != tables-1 {
		t.Fatalf("rolled_forward %d, want %d", got, tables-1)
	}
	for s, c := range readJournals(t, out).latest() {
		for _, f := range c.info.Files {
			size, h := fileHash(t, filepath.Join(out, f.Path))
			if size != f.Bytes || h != f.XXH64 {
				t.Errorf("scenario %d: %s is %d bytes %s, committed %d %s", s, f.Path, size, h, f.Bytes, f.XXH64)
			}
			mustNotExist(t, filepath.Join(out, f.Temp))
		}
	}
	mustExist(t, simPath(out, layout.SuccessName))
	r := mergeShards(t, "verify", "--full", out)
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, "OK") {
		t.Fatalf("verify --full does not say OK:\n%s", r)
	}
}

// lineBounds returns the byte offsets [start, end) of each line of b,
// newline excluded.
func lineBounds(b []byte) [][2]int {
	var out [][2]int
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, [2]int{start, i})
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, [2]int{start, len(b)})
	}
	return out
}

// TestJournalTornTailAndDamage: a journal whose last line was cut short by a
// crash merges fine; one altered byte on an earlier line is corruption that
// names the journal and the line, changes nothing and leaves no _SUCCESS.
func TestJournalTornTailAndDamage(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	runSimrank(t, nil, "--out", base, "--scenarios", "4", "--rank", "0", "--world", "1")

	t.Run("torn last line", func(t *testing.T) {
		out := copyTree(t, base)
		j := journalPaths(t, out)[0]
		b, _ := os.ReadFile(j)
		lines := lineBounds(b)
		last := lines[len(lines)-1] // the close record
		cut := last[0] + (last[1]-last[0])/2
		if err := os.Truncate(j, int64(cut)); err != nil {
			t.Fatal(err)
		}
		rep := mergeJSON(t, 0, out)
		torn, _ := rep["torn_tails"].([]any)
		if len(torn) != 1 || !strings.HasSuffix(fmt.Sprint(torn[0]), filepath.Base(j)) {
			t.Fatalf("torn_tails %v, want the journal %s", rep["torn_tails"], filepath.Base(j))
		}
		mustExist(t, simPath(out, layout.SuccessName))
		if num(t, rep, "committed") != 4 {
			t.Fatalf("committed %v, want 4", rep["committed"])
		}
	})

	t.Run("flipped byte in an earlier line", func(t *testing.T) {
		out := copyTree(t, base)
		wantExit(t, mergeShards(t, out), 0)
		mustExist(t, simPath(out, layout.SuccessName))
		j := journalPaths(t, out)[0]
		b, _ := os.ReadFile(j)
		line2 := lineBounds(b)[1] // scenario 0's commit; lines 3..6 follow it
		i := line2[0] + (line2[1]-line2[0])/2
		b[i] ^= 0x01
		if err := os.WriteFile(j, b, 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, out)
		r := mergeShards(t, out)
		wantExit(t, r, 2)
		for _, want := range []string{filepath.Base(j), "line 2"} {
			if !strings.Contains(r.output(), want) {
				t.Errorf("output does not name %q:\n%s", want, r)
			}
		}
		mustNotExist(t, simPath(out, layout.SuccessName))
		sameSnapshot(t, "a merge of a damaged journal", before, snapshot(t, out), "simulation/_SUCCESS")

		rep := mergeJSON(t, 2, out)
		probs, _ := rep["problems"].([]any)
		if len(probs) != 1 {
			t.Fatalf("problems %v, want one", rep["problems"])
		}
		p := probs[0].(map[string]any)
		if p["kind"] != "journal" || !strings.HasSuffix(p["path"].(string), filepath.Base(j)) || !strings.Contains(p["detail"].(string), "line 2") {
			t.Fatalf("problem %v, want kind journal naming %s line 2", p, filepath.Base(j))
		}
		wantExit(t, mergeShards(t, "report", out), 2)
	})
}

// TestDamagedDataAfterMerge damages a data file of a merged directory in
// three ways. Size-only verification catches a truncated or deleted file,
// but NOT a same-size alteration (by design: it reads no data; that is what
// --full is for). Full verification catches all three, names the file and
// exits 2; the merge then leaves no _SUCCESS and changes nothing else.
func TestDamagedDataAfterMerge(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	runSimrank(t, nil, "--out", base, "--scenarios", "3", "--rank", "0", "--world", "1")
	wantExit(t, mergeShards(t, base), 0)
	const victim = "simulation/hydros/scenario_id=1/data.parquet"
	cases := []struct {
		name        string
		damage      func(t *testing.T, p string)
		sizeCatches bool
	}{
		{"truncated", func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"altered same size", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"deleted", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := copyTree(t, base)
			c.damage(t, filepath.Join(out, victim))
			names := func(r result) {
				t.Helper()
				if !strings.Contains(r.output(), victim) {
					t.Errorf("output does not name %s:\n%s", victim, r)
				}
			}
			r := mergeShards(t, "verify", out)
			if c.sizeCatches {
				wantExit(t, r, 2)
				names(r)
				// The merge's own size check (its default) catches it too.
				r = mergeShards(t, out)
				wantExit(t, r, 2)
				names(r)
				mustNotExist(t, simPath(out, layout.SuccessName))
			} else {
				// Documented limit: size-only verification reads no data,
				// so a same-size alteration passes it (and a size-level
				// merge). Only --full sees it.
				wantExit(t, r, 0)
				wantExit(t, mergeShards(t, out), 0)
			}
			r = mergeShards(t, "verify", "--full", out)
			wantExit(t, r, 2)
			names(r)

			before := snapshot(t, out)
			r = mergeShards(t, "--verify", "full", out)
			wantExit(t, r, 2)
			names(r)
			mustNotExist(t, simPath(out, layout.SuccessName))
			sameSnapshot(t, "a merge of damaged data", before, snapshot(t, out), "simulation/_SUCCESS")
			r = mergeShards(t, "verify", "--full", out)
			wantExit(t, r, 2)
			names(r)
		})
	}
}

// graft brings a second attempt's commit of a scenario (made by simrank in
// its own directory from) into out: its journal into the journal directory
// and its committed files into _shards/tmp at their temp paths, exactly as
// if that attempt had run in out and been killed after its commit point,
// before its renames.
func graft(t *testing.T, out, from string) jcommit {
	t.Helper()
	js := journalPaths(t, from)
	if len(js) != 1 {
		t.Fatalf("%s has %d journals, want 1", from, len(js))
	}
	copyFile(t, js[0], filepath.Join(out, layout.JournalDir, filepath.Base(js[0])))
	cs := readJournals(t, from).commits
	if len(cs) != 1 {
		t.Fatalf("%s has %d commits, want 1", from, len(cs))
	}
	for _, f := range cs[0].info.Files {
		copyFile(t, filepath.Join(from, f.Path), filepath.Join(out, f.Temp))
	}
	return cs[0]
}

// rewriteTime sets the time of the commit of scenario in the journal p.
func rewriteTime(t *testing.T, p string, scenario int, tm time.Time) {
	t.Helper()
	recs := readRecords(t, p)
	n := 0
	for _, r := range recs {
		if r.Commit != nil && r.Commit.Scenario == scenario {
			r.Time = tm.UTC().Format(time.RFC3339Nano)
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%s: %d commits of scenario %d", p, n, scenario)
	}
	writeRecords(t, p, recs)
}

// TestDuplicateAndConflictingCommits: a scenario committed twice with the
// same bytes is a harmless duplicate; committed twice with different bytes
// it is a conflict: reported, the latest commit wins, the losing copy is
// preserved under _shards/superseded, and --strict refuses it.
func TestDuplicateAndConflictingCommits(t *testing.T) {
	t.Parallel()
	const k = 1
	base := t.TempDir()
	runSimrank(t, slurmEnv(0, 1, "41"), "--out", base, "--scenarios", "3", "--seed", "1")
	wantExit(t, mergeShards(t, base), 0)
	list := filepath.Join(t.TempDir(), "k.txt")
	writeIDs(t, list, k)
	// Second attempts of scenario k run in directories of their own:
	// simrank skips scenarios already committed where it writes.
	same, diff := t.TempDir(), t.TempDir()
	runSimrank(t, slurmEnv(0, 1, "42"), "--out", same, "--scenarios", "3", "--seed", "1", "--scenarios-from", list)
	runSimrank(t, slurmEnv(0, 1, "43"), "--out", diff, "--scenarios", "3", "--seed", "2", "--scenarios-from", list)
	first := readJournals(t, base).latest()[k]

	t.Run("identical", func(t *testing.T) {
		out := copyTree(t, base)
		data := dataHashes(t, out)
		graft(t, out, same)
		rep := mergeJSON(t, 0, out)
		if got := num(t, rep, "duplicate_commits"); got != 1 {
			t.Fatalf("duplicate_commits %d, want 1", got)
		}
		if rep["conflicts"] != nil {
			t.Fatalf("conflicts %v for identical bytes", rep["conflicts"])
		}
		if got := num(t, rep, "temp_removed"); got != entityCount() {
			t.Fatalf("temp_removed %d, want %d (the duplicate's redundant copies)", got, entityCount())
		}
		if left, _ := filepath.Glob(filepath.Join(out, layout.TempDir, "*")); len(left) > 0 {
			t.Fatalf("the duplicate's temp copies were not removed: %v", left)
		}
		sameData(t, "identical duplicate", data, dataHashes(t, out))
		mustExist(t, simPath(out, layout.SuccessName))
		wantExit(t, mergeShards(t, "verify", "--full", out), 0)
	})

	// differing lists, independently, the entities whose bytes differ.
	differing := func(a, b jcommit) map[string]bool {
		m := map[string]bool{}
		bf := map[string]manifest.FileRecord{}
		for _, f := range b.info.Files {
			bf[f.Entity] = f
		}
		for _, f := range a.info.Files {
			if g := bf[f.Entity]; g.XXH64 != f.XXH64 || g.Bytes != f.Bytes {
				m[f.Entity] = true
			}
		}
		return m
	}
	// checkConflict checks that winner's bytes are in place, loser's are
	// preserved, and the report and manifest say so.
	checkConflict := func(t *testing.T, out string, rep map[string]any, winner, loser jcommit) {
		t.Helper()
		want := differing(loser, winner)
		if len(want) == 0 {
			t.Fatal("the two attempts have identical bytes: no conflict to test")
		}
		got := map[string]bool{}
		confs, _ := rep["conflicts"].([]any)
		for _, c := range confs {
			c := c.(map[string]any)
			e := c["entity"].(string)
			got[e] = true
			kept := path.Join(layout.SupersededDir, loser.writer, layout.DataFile(e, manifest.Layout{}.ScenarioPad, k))
			if int(c["scenario"].(float64)) != k || c["winner"] != winner.writer || c["loser"] != loser.writer || c["kept"] != kept {
				t.Errorf("conflict %v, want scenario %d winner %s loser %s kept %s", c, k, winner.writer, loser.writer, kept)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("conflicting entities %v, want %v", got, want)
		}
		for _, f := range winner.info.Files {
			if size, h := fileHash(t, filepath.Join(out, f.Path)); size != f.Bytes || h != f.XXH64 {
				t.Errorf("%s: %d bytes %s in place, the winner committed %d %s", f.Path, size, h, f.Bytes, f.XXH64)
			}
		}
		for _, f := range loser.info.Files {
			if !want[f.Entity] {
				continue
			}
			p := filepath.Join(out, layout.SupersededDir, loser.writer, f.Path)
			if size, h := fileHash(t, p); size != f.Bytes || h != f.XXH64 {
				t.Errorf("preserved loser %s: %d bytes %s, it committed %d %s", p, size, h, f.Bytes, f.XXH64)
			}
		}
		mp := simPath(out, layout.ManifestName)
		m, err := manifest.ReadSimManifest(mp, readFile(t, mp))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Conflicts) != len(want) {
			t.Fatalf("manifest lists %d conflicts, want %d", len(m.Conflicts), len(want))
		}
		mustExist(t, simPath(out, layout.SuccessName))
		checkSummary(t, out) // the winner's cost counts
		wantExit(t, mergeShards(t, "verify", "--full", out), 0)
		before := snapshot(t, out)
		wantExit(t, mergeShards(t, out), 0)
		sameSnapshot(t, "a second merge after a conflict", before, snapshot(t, out))
	}

	t.Run("different", func(t *testing.T) {
		out := copyTree(t, base)
		second := graft(t, out, diff)
		before := snapshot(t, out)
		r := mergeShards(t, "--strict", out)
		wantExit(t, r, 2)
		for _, want := range []string{"conflict", fmt.Sprintf("scenario %d", k)} {
			if !strings.Contains(r.output(), want) {
				t.Errorf("--strict output does not say %q:\n%s", want, r)
			}
		}
		mustNotExist(t, simPath(out, layout.SuccessName))
		sameSnapshot(t, "a --strict merge with a conflict", before, snapshot(t, out), "simulation/_SUCCESS")

		rep := mergeJSON(t, 0, out)
		checkConflict(t, out, rep, second, first)
	})

	t.Run("different, merge killed after moving the loser aside", func(t *testing.T) {
		ref := copyTree(t, base)
		graft(t, ref, diff)
		out := copyTree(t, ref)
		mergeJSON(t, 0, ref)
		want := contentOnly(snapshot(t, ref))
		// The loser's copies are moved aside before the first rename of
		// the winner's: kill the merge at that rename.
		cmd := exec.CommandContext(testCtx(t), mergeBin, out)
		cmd.Env = append(testtools.CleanEnv(), "HYDROSHARD_FAULT=rename:kill:1")
		cmd.Run()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("the merge was not killed")
		}
		wantExit(t, mergeShards(t, out), 0)
		if d := diffSnapshots(want, contentOnly(snapshot(t, out))); len(d) > 0 {
			t.Fatalf("differs from an uninterrupted merge:\n  %s", strings.Join(d, "\n  "))
		}
	})

	t.Run("latest by the clock, not by string order", func(t *testing.T) {
		// Journals written before the fixed-width time format have RFC
		// 3339 times with trailing zeros trimmed (and such journals stay
		// in output directories): the first attempt committed at a whole
		// second T ("...:05Z"), the second 100 ms later ("...:05.1Z").
		// The second is the latest, although its time sorts first as a
		// string.
		out := copyTree(t, base)
		second := graft(t, out, diff)
		T := second.time.Truncate(time.Second).Add(time.Second)
		rewriteTime(t, filepath.Join(out, layout.JournalDir, first.journal), k, T)
		rewriteTime(t, filepath.Join(out, layout.JournalDir, second.journal), k, T.Add(100*time.Millisecond))
		st := readJournals(t, out)
		win := st.latest()[k]
		if win.writer != second.writer {
			t.Fatalf("test setup: independent choice is %s", win.writer)
		}
		var firstNow jcommit
		for _, c := range st.commits {
			if c.info.Scenario == k && c.writer == first.writer {
				firstNow = c
			}
		}
		rep := mergeJSON(t, 0, out)
		checkConflict(t, out, rep, win, firstNow)
	})
}

// TestJournalOfAnotherCase: a journal written for another case in the same
// directory is an inconsistency that names the journal (exit 2).
func TestJournalOfAnotherCase(t *testing.T) {
	t.Parallel()
	out, other := t.TempDir(), t.TempDir()
	runRanks(t, 3, "61", "--out", out, "--scenarios", "3")
	wantExit(t, mergeShards(t, out), 0)
	// The same scenario count and layout: only the case differs.
	list := filepath.Join(t.TempDir(), "one.txt")
	writeIDs(t, list, 0)
	runSimrank(t, nil, "--case", demoDir, "--out", other, "--scenarios", "3", "--rank", "0", "--world", "1", "--scenarios-from", list)
	foreign := journalPaths(t, other)[0]
	foreignHash := readJournals(t, other).opens[filepath.Base(foreign)].CaseHash
	copyFile(t, foreign, filepath.Join(out, layout.JournalDir, filepath.Base(foreign)))
	before := snapshot(t, out)
	r := mergeShards(t, out)
	wantExit(t, r, 2)
	for _, want := range []string{filepath.Base(foreign), "another case", foreignHash} {
		if !strings.Contains(r.output(), want) {
			t.Errorf("output does not name %q:\n%s", want, r)
		}
	}
	mustNotExist(t, simPath(out, layout.SuccessName))
	sameSnapshot(t, "a merge with a foreign journal", before, snapshot(t, out), "simulation/_SUCCESS")
	rep := mergeJSON(t, 2, out)
	probs, _ := rep["problems"].([]any)
	if len(probs) != 1 || probs[0].(map[string]any)["kind"] != "inconsistent" || !strings.HasSuffix(probs[0].(map[string]any)["path"].(string), filepath.Base(foreign)) {
		t.Fatalf("problems %v, want one inconsistency naming %s", rep["problems"], filepath.Base(foreign))
	}

	// One journal against one, the foreign one first in directory order:
	// there is no majority to call either "the run", so the merge must
	// name both rather than blame the one that sorts second.
	t.Run("no majority", func(t *testing.T) {
		one := t.TempDir()
		runSimrank(t, nil, "--out", one, "--scenarios", "3", "--rank", "0", "--world", "1")
		own := journalPaths(t, one)[0]
		// The foreign journal, renamed to a writer id that sorts first
		// (its records renamed with it: the merge refuses a journal whose
		// records name another writer than its file).
		w := "job-0.rank-00000.attempt-0.000000000000"
		recs := readRecords(t, foreign)
		recs[0].Open.Writer = w
		for _, r := range recs {
			if r.Commit != nil {
				for i := range r.Commit.Files {
					f := &r.Commit.Files[i]
					f.Temp = layout.SimTemp(w, r.Commit.Scenario, f.Entity)
				}
			}
		}
		early := filepath.Join(one, layout.Journal(w))
		writeRecords(t, early, recs)
		r := mergeShards(t, one)
		wantExit(t, r, 2)
		for _, want := range []string{filepath.Base(early), filepath.Base(own)} {
			if !strings.Contains(r.output(), want) {
				t.Errorf("output does not name %s:\n%s", want, r)
			}
		}
	})
}

// TestMergeLock: a merge lock held by a live process refuses a merge (exit
// 1, naming the lock); one left by a dead process on this host is taken
// over.
func TestMergeLock(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1")
	lock := filepath.Join(out, layout.LockFile)
	host, _ := os.Hostname()
	writeLock := func(pid int, host string) []byte {
		b, _ := json.Marshal(merge.LockInfo{PID: pid, Host: host, Started: time.Now().UTC().Format(time.RFC3339)})
		if err := os.WriteFile(lock, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		pid  int
		host string
	}{
		{"live process on this host", os.Getpid(), host},
		{"process on another host", 1, "another-host.invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := writeLock(c.pid, c.host)
			r := mergeShards(t, out)
			wantExit(t, r, 1)
			if !strings.Contains(r.stderr, lock) || !strings.Contains(r.stderr, "another merge") {
				t.Fatalf("message does not name the lock %s:\n%s", lock, r)
			}
			if b, _ := os.ReadFile(lock); !bytes.Equal(b, body) {
				t.Fatalf("the held lock was changed")
			}
			mustNotExist(t, simPath(out, layout.ManifestName))
		})
	}
	t.Run("stale lock of a dead process", func(t *testing.T) {
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		writeLock(dead.ProcessState.Pid(), host)
		wantExit(t, mergeShards(t, out), 0)
		mustNotExist(t, lock)
		mustExist(t, simPath(out, layout.SuccessName))
	})
}

// TestSummaryStatistics checks summary.json against statistics computed
// here from the journals' cost summaries. 23 scenarios make p5 the 2nd
// and p95 the 22nd smallest value, so the quantile definition matters.
func TestSummaryStatistics(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	runRanks(t, 3, "90", "--out", out, "--scenarios", "23", "--seed", "5")
	wantExit(t, mergeShards(t, out), 0)
	checkSummary(t, out)
	// Self-check of the independent Student t against tabulated values.
	for df, want := range map[int]float64{1: 12.706204736174707, 10: 2.2281388519649385, 22: 2.0738730679040147} {
		if got := studentT975(df); !close9(got, want) {
			t.Fatalf("studentT975(%d) = %.17g, want %.17g", df, got, want)
		}
	}
}

// TestMetadataKeySet: simulation/metadata.json has exactly Cobre's key set;
// optional keys are omitted when unknown, never null.
func TestMetadataKeySet(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	check := func(t *testing.T, out string, n, world int, job string) {
		t.Helper()
		wantExit(t, mergeShards(t, out), 0)
		b, err := os.ReadFile(simPath(out, layout.MetadataName))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("null")) {
			t.Fatalf("metadata.json has a null:\n%s", b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		keys := func(m map[string]any) []string {
			var k []string
			for key := range m {
				k = append(k, key)
			}
			sort.Strings(k)
			return k
		}
		want := []string{"cobre_version", "completed_at", "distribution", "duration_seconds", "hostname", "scenarios", "solver", "started_at", "status"}
		if got := keys(m); !reflect.DeepEqual(got, want) {
			t.Fatalf("metadata.json keys %v, want %v", got, want)
		}
		if got := keys(m["scenarios"].(map[string]any)); !reflect.DeepEqual(got, []string{"completed", "failed", "total"}) {
			t.Fatalf("scenarios keys %v", got)
		}
		wantDist := []string{"backend", "num_nodes", "ranks_participated", "threads_per_rank", "world_size"}
		if job != "" {
			wantDist = append(wantDist, "slurm_job_id")
			sort.Strings(wantDist)
		}
		dist := m["distribution"].(map[string]any)
		if got := keys(dist); !reflect.DeepEqual(got, wantDist) {
			t.Fatalf("distribution keys %v, want %v", got, wantDist)
		}
		// Values, from the journals.
		st := readJournals(t, out)
		sort.Slice(st.times, func(i, j int) bool { return st.times[i].Before(st.times[j]) })
		first, last := st.times[0], st.times[len(st.times)-1]
		var launcher string
		for _, o := range st.opens {
			if o.Rank == 0 {
				launcher = o.Launcher
			}
		}
		checks := []struct {
			what      string
			got, want any
		}{
			{"hostname", m["hostname"], host},
			{"status", m["status"], "complete"},
			{"scenarios", m["scenarios"], map[string]any{"total": float64(n), "completed": float64(n), "failed": 0.0}},
			{"backend", dist["backend"], launcher},
			{"world_size", dist["world_size"], float64(world)},
			{"ranks_participated", dist["ranks_participated"], float64(world)},
			{"num_nodes", dist["num_nodes"], 1.0},
			{"threads_per_rank", dist["threads_per_rank"], 1.0},
		}
		if job != "" {
			checks = append(checks, struct {
				what      string
				got, want any
			}{"slurm_job_id", dist["slurm_job_id"], job})
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("metadata %s = %v, want %v", c.what, c.got, c.want)
			}
		}
		// started_at/completed_at are the first and last journal record
		// times (as instants: the journal time format is not ours).
		for _, c := range []struct {
			key  string
			want time.Time
		}{{"started_at", first}, {"completed_at", last}} {
			got, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m[c.key]))
			if err != nil || !got.Equal(c.want) {
				t.Errorf("metadata %s = %v, want %v", c.key, m[c.key], c.want.Format(time.RFC3339Nano))
			}
		}
		if d := m["duration_seconds"].(float64); !close9(d, last.Sub(first).Seconds()) {
			t.Errorf("duration_seconds %v, want %v", d, last.Sub(first).Seconds())
		}
	}
	t.Run("slurm", func(t *testing.T) {
		out := t.TempDir()
		runRanks(t, 2, "4242", "--out", out, "--scenarios", "2")
		check(t, out, 2, 2, "4242")
	})
	t.Run("explicit rank, no job id", func(t *testing.T) {
		out := t.TempDir()
		runSimrank(t, nil, "--out", out, "--scenarios", "1", "--rank", "0", "--world", "1")
		check(t, out, 1, 1, "")
	})
}

// TestHelpDocumentsFlagsAndExitCodes: --help documents every flag (in the
// synopsis and with a description) and every exit code.
func TestHelpDocumentsFlagsAndExitCodes(t *testing.T) {
	t.Parallel()
	// flag.PrintDefaults: "  -name [type]" then indented description lines.
	flagLine := regexp.MustCompile(`(?m)^  -([a-z-]+)(?: [a-zA-Z]+)?\n((?:    \s*\S.*\n)+)`)
	cases := []struct {
		args  []string
		flags []string
	}{
		{[]string{"--help"}, []string{"gc", "json", "lease-grace", "requeue-lost", "rerun-list", "strict", "verify", "workers"}},
		{[]string{"verify", "--help"}, []string{"full", "json", "workers"}},
		{[]string{"report", "--help"}, []string{"html", "json", "lease-grace"}},
		{[]string{"compact", "--help"}, []string{"json", "re-encode", "replace", "row-group-rows", "target-size"}},
		{[]string{"status", "--help"}, []string{"interval", "json", "lease-grace", "watch"}},
	}
	for _, c := range cases {
		r := mergeShards(t, c.args...)
		wantExit(t, r, 0)
		text := r.output()
		synopsis, flagsPart, ok := strings.Cut(text, "Flags:\n")
		if !ok {
			t.Fatalf("%v: no Flags section:\n%s", c.args, text)
		}
		var got []string
		for _, m := range flagLine.FindAllStringSubmatch(flagsPart, -1) {
			got = append(got, m[1])
			if !strings.Contains(synopsis, "--"+m[1]) {
				t.Errorf("%v: flag --%s is not in the usage synopsis", c.args, m[1])
			}
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, c.flags) {
			t.Errorf("%v: documented flags %v, want %v\n%s", c.args, got, c.flags, text)
		}
		for code, what := range map[int]string{0: "complete", 1: "usage", 2: "corrupt", 3: "partial", 4: "running"} {
			if !regexp.MustCompile(fmt.Sprintf(`(?m)^\s+%d\s+%s`, code, what)).MatchString(synopsis) {
				t.Errorf("%v: exit code %d (%s) is not documented:\n%s", c.args, code, what, synopsis)
			}
		}
		for _, want := range []string{"--rerun-list FILE", "simrank --scenarios-from FILE", "verify [--full]", "report"} {
			if !strings.Contains(synopsis, want) {
				t.Errorf("%v: help does not mention %q", c.args, want)
			}
		}
	}
}

// TestUsageErrors: bad invocations exit 1 and say why.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "want exactly one output directory"},
		{[]string{"--verify", "sometimes", empty}, "verify level"},
		{[]string{filepath.Join(empty, "nope")}, "is not a directory"},
		{[]string{empty}, "no journals"},
		{[]string{"verify", empty}, "not a merged directory"},
		{[]string{"--no-such-flag", empty}, "no-such-flag"},
	} {
		r := mergeShards(t, c.args...)
		wantExit(t, r, 1)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: stderr does not say %q:\n%s", c.args, c.want, r)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("a refused merge created %v in a directory that is no hydroshard output", names)
	}
}

// contentOnly drops modification times from a snapshot: what two
// directories that were written at different times must share.
func contentOnly(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k], _, _ = strings.Cut(v, " mtime ")
	}
	return out
}

// TestMergeKilledMidWay kills the merge itself (SIGKILL by fault injection
// at the exact step) while it rolls commits forward and while it writes its
// outputs; merging again must take over the dead merge's lock, clear its
// temp files and end in exactly the state of an uninterrupted merge.
func TestMergeKilledMidWay(t *testing.T) {
	t.Parallel()
	tables := entityCount()
	base := t.TempDir()
	// Scenario 1's renames interrupted after its first file, then the rank
	// requeued: the merge has tables-1 files to roll forward.
	cmd := simrankCmd(testCtx(t), []string{fmt.Sprintf("HYDROSHARD_FAULT=rename:kill:%d", tables+2)}, "--out", base, "--scenarios", "3", "--rank", "0", "--world", "1", "--workers", "1")
	cmd.Run()
	runSimrank(t, nil, "--out", base, "--scenarios", "3", "--rank", "0", "--world", "1")

	ref := copyTree(t, base)
	rep := mergeJSON(t, 0, ref)
	if num(t, rep, "rolled_forward") != tables-1 {
		t.Fatalf("test setup: rolled_forward %v, want %d", rep["rolled_forward"], tables-1)
	}
	want := contentOnly(snapshot(t, ref))

	// Hits in a merge: rename and dir-fsync once per rolled-forward file;
	// temp-write and temp-fsync once per output written (_files.csv,
	// metadata.json, summary.json, _manifest.json, _SUCCESS).
	for _, fault := range []string{"rename:kill:1", "rename:kill:5", "dir-fsync:kill:3", "temp-write:kill:1", "temp-fsync:kill:2", "temp-write:kill:4", "temp-fsync:kill:5"} {
		t.Run(fault, func(t *testing.T) {
			out := copyTree(t, base)
			cmd := exec.CommandContext(testCtx(t), mergeBin, out)
			cmd.Env = append(testtools.CleanEnv(), "HYDROSHARD_FAULT="+fault)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the merge was not killed at %s: %v\n%s", fault, err, stderr.String())
			}
			mustExist(t, filepath.Join(out, layout.LockFile)) // left by the dead merge
			wantExit(t, mergeShards(t, out), 0)
			if d := diffSnapshots(want, contentOnly(snapshot(t, out))); len(d) > 0 {
				t.Fatalf("after a merge killed at %s and a second merge, the directory differs from an uninterrupted merge:\n  %s", fault, strings.Join(d, "\n  "))
			}
		})
	}
}

// TestUnclaimedDataFiles: a data file that no commit claims is moved
// out of the dataset (never deleted) to _shards/unclaimed/ with its path
// kept, the directory it leaves empty is removed, and the report names it;
// verify names a stray that appears after the merge; --gc deletes the
// quarantined copies.
func TestUnclaimedDataFiles(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1")
	const stray = "simulation/hydros/scenario_id=7/data.parquet"
	src := filepath.Join(out, "simulation/hydros/scenario_id=0/data.parquet")
	copyFile(t, src, filepath.Join(out, stray))
	rep := mergeJSON(t, 0, out)
	if u := fmt.Sprint(rep["unclaimed"]); u != "["+stray+"]" {
		t.Fatalf("unclaimed %s, want [%s]", u, stray)
	}
	mustNotExist(t, filepath.Join(out, stray))
	mustNotExist(t, filepath.Join(out, filepath.Dir(stray)))
	if a, b := fileHashOf(t, src), fileHashOf(t, filepath.Join(out, layout.Unclaimed(stray))); a != b {
		t.Fatalf("the quarantined copy differs from the stray file")
	}
	mustExist(t, simPath(out, layout.SuccessName))
	wantExit(t, mergeShards(t, "verify", "--full", out), 0)

	// A stray appearing after the merge: verify names it (a warning, as
	// the next merge will move it), and the next merge quarantines it too.
	copyFile(t, src, filepath.Join(out, stray))
	r := mergeShards(t, "verify", out)
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, stray) || !strings.Contains(r.stdout, "EXTRA") {
		t.Fatalf("verify does not name %s:\n%s", stray, r)
	}
	rep = mergeJSON(t, 0, "--gc", out)
	if num(t, rep, "gc_removed") != 2 {
		t.Fatalf("gc_removed %v, want 2 (the first quarantined copy and the second, numbered)", rep["gc_removed"])
	}
	mustNotExist(t, filepath.Join(out, stray))
	mustNotExist(t, filepath.Join(out, layout.UnclaimedDir))
	wantExit(t, mergeShards(t, "verify", "--full", out), 0)
}

func fileHashOf(t *testing.T, p string) string {
	t.Helper()
	n, h := fileHash(t, p)
	return fmt.Sprint(n, h)
}

// TestSameIdentityTwice: two processes that claim the same rank of the
// same job (a launcher mistake) write the same scenarios; with the same
// seed their commits are identical duplicates and the merge completes.
func TestSameIdentityTwice(t *testing.T) {
	t.Parallel()
	const n = 4
	out := t.TempDir()
	ctx := testCtx(t)
	cmds := []*exec.Cmd{}
	for range 2 {
		c := simrankCmd(ctx, slurmEnv(0, 1, "77"), "--out", out, "--scenarios", strconv.Itoa(n))
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("simrank: %v", err)
		}
	}
	st := readJournals(t, out)
	if len(st.opens) != 2 {
		t.Fatalf("%d journals, want 2 (one per process)", len(st.opens))
	}
	rep := mergeJSON(t, 0, "--verify", "full", out)
	if got, want := num(t, rep, "duplicate_commits"), len(st.commits)-n; got != want {
		t.Fatalf("duplicate_commits %d, want %d (%d commits of %d scenarios)", got, want, len(st.commits), n)
	}
	if rep["conflicts"] != nil {
		t.Fatalf("conflicts %v", rep["conflicts"])
	}
}

// TestConcurrentMergeRefused runs two real merges at once: the first is
// frozen (SIGSTOP) while it holds the lock, the second must be refused
// (exit 1, naming the lock), and the first, resumed, completes.
func TestConcurrentMergeRefused(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	runSimrank(t, nil, "--out", base, "--scenarios", "4", "--rank", "0", "--world", "1")
	// The first merge can finish before it is frozen: then try again on
	// a fresh copy.
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			t.Fatal("never caught the first merge holding its lock")
		}
		out := copyTree(t, base)
		lock := filepath.Join(out, layout.LockFile)
		first := exec.CommandContext(testCtx(t), mergeBin, "--verify", "full", out)
		first.Env = testtools.CleanEnv()
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- first.Wait() }()
		held := false
	await:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("first merge: %v", err)
				}
				break await
			default:
			}
			if b, err := os.ReadFile(lock); err == nil && bytes.Contains(b, []byte(fmt.Sprintf(`"pid":%d,`, first.Process.Pid))) {
				first.Process.Signal(syscall.SIGSTOP)
				// Frozen: is the lock still there, or did it finish first?
				held = exists(lock)
				break
			}
			time.Sleep(100 * time.Microsecond) // poll interval of the awaited condition
		}
		if !held {
			first.Process.Signal(syscall.SIGCONT)
			<-done
			continue
		}
		r := mergeShards(t, out)
		first.Process.Signal(syscall.SIGCONT)
		wantExit(t, r, 1)
		if !strings.Contains(r.stderr, lock) || !strings.Contains(r.stderr, fmt.Sprintf("pid %d", first.Process.Pid)) {
			t.Fatalf("refusal does not name the lock %s and its owner:\n%s", lock, r)
		}
		if err := <-done; err != nil {
			t.Fatalf("the first merge, resumed: %v", err)
		}
		mustExist(t, simPath(out, layout.SuccessName))
		mustNotExist(t, lock)
		t.Logf("caught the first merge holding the lock on attempt %d", attempt+1)
		return
	}
}
