package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

var (
	submitted   = regexp.MustCompile(`(?m)^(run|merge) (\d+)$`)
	nextRound   = regexp.MustCompile(`submitted rerun job (\d+) \((\d+) ranks\) and merge job (\d+) \(round (\d+)/`)
	partialLine = regexp.MustCompile(`PARTIAL \((\d+) missing`)
)

// submit runs scripts/slurm/submit.sh and returns the run and merge job ids.
func submit(t *testing.T, env []string, args ...string) (runID, mergeID string) {
	t.Helper()
	out := slurm(t, env, "bash", append([]string{filepath.Join(root, "scripts", "slurm", "submit.sh")}, args...)...)
	for _, m := range submitted.FindAllStringSubmatch(out, -1) {
		if m[1] == "run" {
			runID = m[2]
		} else {
			mergeID = m[2]
		}
	}
	if runID == "" || mergeID == "" {
		t.Fatalf("submit.sh printed no run and merge job ids:\n%s", out)
	}
	t.Logf("submit.sh: run job %s, merge job %s", runID, mergeID)
	return runID, mergeID
}

// round is one merge job of the rerun loop.
type round struct {
	mergeID, state, exit, log string
	rerunID                   string // the rerun job it submitted, if any
	rerunRanks                int
}

// followMerges waits for the merge job and every merge job it submitted
// (merge.sbatch's log names its follow-up jobs) and returns the rounds.
func followMerges(t *testing.T, work, mergeID string) []round {
	t.Helper()
	var rounds []round
	for id := mergeID; id != ""; {
		info := awaitJob(t, id)
		r := round{mergeID: id, state: info["JobState"], exit: info["ExitCode"]}
		r.log = readLog(t, filepath.Join(work, fmt.Sprintf("merge-round-%d-%s.out", len(rounds)+1, id)))
		id = ""
		if m := nextRound.FindStringSubmatch(r.log); m != nil {
			r.rerunID, id = m[1], m[3]
			r.rerunRanks, _ = strconv.Atoi(m[2])
			if want := strconv.Itoa(len(rounds) + 2); m[4] != want {
				t.Errorf("merge job %s submitted round %s, want %s", r.mergeID, m[4], want)
			}
		}
		t.Logf("merge round %d: job %s %s exit %s; rerun job %q", len(rounds)+1, r.mergeID, r.state, r.exit, r.rerunID)
		rounds = append(rounds, r)
		if len(rounds) > 5 {
			t.Fatalf("more than 5 merge rounds")
		}
	}
	return rounds
}

// TestSubmitComplete: submit.sh with 4 ranks of the demo case (training
// with checkpoints, then the simulation) ends with one merge job that
// finds everything: status complete, _SUCCESS, the same bytes as one
// uninterrupted process, readable by DuckDB.
func TestSubmitComplete(t *testing.T) {
	needCluster(t)
	out := filepath.Join(t.TempDir(), "study")
	args := append([]string{"-n", "4", out, "--"}, studyArgs...)
	args = append(args, "--iterations", "4", "--forward-passes", "8", "--checkpoint-every", "2")
	runID, mergeID := submit(t, jobEnv(), args...)
	run := awaitJob(t, runID)
	if run["JobState"] != "COMPLETED" || run["ExitCode"] != "0:0" {
		t.Errorf("run job %s: %s exit %s, want COMPLETED 0:0\n%s", runID, run["JobState"], run["ExitCode"], readLog(t, filepath.Join(out+".slurm", "run-"+runID+".out")))
	}
	rounds := followMerges(t, out+".slurm", mergeID)
	if len(rounds) != 1 || rounds[0].state != "COMPLETED" || !strings.Contains(rounds[0].log, "COMPLETE after round 1") {
		t.Fatalf("want one COMPLETED merge round, got %+v", rounds)
	}
	// The ranks are srun's tasks 0..3 of the run job.
	js := readJournals(t, out)
	var ranks []int
	for _, j := range js {
		ranks = append(ranks, j.open.Rank)
		if j.open.Launcher != "slurm" || j.open.World != 4 || j.open.JobID != runID {
			t.Errorf("%s: launcher %q world %d job %q, want slurm, 4, %s", j.path, j.open.Launcher, j.open.World, j.open.JobID, runID)
		}
	}
	slices.Sort(ranks)
	if !slices.Equal(ranks, []int{0, 1, 2, 3}) {
		t.Errorf("journal ranks %v, want [0 1 2 3]", ranks)
	}
	wantComplete(t, out)
	for _, p := range []string{"training/_SUCCESS", "policy/metadata.json"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("training and policy outputs: %v", err)
		}
	}
	duckCount(t, out)
}

// TestSubmitRankKilled: rank 2 of the run job kills itself (SIGKILL, by an
// injected fault) when about to commit its third scenario. The run job
// fails, the merge job runs anyway (afterany), finds the output partial,
// submits a rerun job for exactly the missing scenarios and a second
// merge, which completes; the result is byte-identical to an uninterrupted
// run.
func TestSubmitRankKilled(t *testing.T) {
	needCluster(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "study")
	// The rank program is a wrapper, as a user's solver might be: it arms
	// the fault for rank 2 of the first job only (the marker directory).
	wrapper := filepath.Join(dir, "rank.sh")
	script := fmt.Sprintf(`#!/bin/sh
if [ "${SLURM_PROCID:-}" = 2 ] && mkdir %q 2>/dev/null; then
  export HYDROSHARD_FAULT=%s:kill:3
fi
exec %q "$@"
`, filepath.Join(dir, "killed-once"), "journal-append", simrankBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	runID, mergeID := submit(t, jobEnv(), append([]string{"-n", "4", "--program", wrapper, out, "--"}, studyArgs...)...)
	run := awaitJob(t, runID)
	if run["JobState"] != "FAILED" {
		t.Errorf("run job %s: %s exit %s, want FAILED (a rank was killed)", runID, run["JobState"], run["ExitCode"])
	}
	// What the first job committed, read from its journals.
	rounds := followMerges(t, out+".slurm", mergeID)
	js := readJournals(t, out)
	firstJob := committed(ofJob(js, runID))
	missing := missingOf(firstJob, scenarios)
	if len(missing) == 0 || len(missing) >= scenarios {
		t.Fatalf("the killed run committed %v: want some but not all scenarios", ids(firstJob))
	}
	t.Logf("run job %s committed %d scenarios; missing %v", runID, len(firstJob), missing)

	if len(rounds) != 2 {
		t.Fatalf("want 2 merge rounds (partial, then complete), got %d: %+v", len(rounds), rounds)
	}
	r1, r2 := rounds[0], rounds[1]
	if m := partialLine.FindStringSubmatch(r1.log); r1.state != "COMPLETED" || m == nil || m[1] != strconv.Itoa(len(missing)) {
		t.Errorf("round 1: %s, want COMPLETED after reporting PARTIAL (%d missing):\n%s", r1.state, len(missing), r1.log)
	}
	listed := readIDs(t, filepath.Join(out+".slurm", "rerun-round-1.txt"))
	if !slices.Equal(listed, missing) {
		t.Errorf("rerun list %v, want exactly the missing scenarios %v", listed, missing)
	}
	if r2.state != "COMPLETED" || !strings.Contains(r2.log, "COMPLETE after round 2") {
		t.Errorf("round 2: %s, want COMPLETED and COMPLETE:\n%s", r2.state, r2.log)
	}
	// The rerun job committed exactly the missing scenarios, each once.
	if got := ids(committed(ofJob(js, r1.rerunID))); !slices.Equal(got, missing) {
		t.Errorf("rerun job %s committed %v, want %v", r1.rerunID, got, missing)
	}
	for s, n := range committed(js) {
		if n != 1 {
			t.Errorf("scenario %d committed %d times", s, n)
		}
	}
	info := awaitJob(t, r1.rerunID)
	if info["JobState"] != "COMPLETED" || info["NumTasks"] != strconv.Itoa(r1.rerunRanks) {
		t.Errorf("rerun job %s: %s with %s tasks, want COMPLETED with %d", r1.rerunID, info["JobState"], info["NumTasks"], r1.rerunRanks)
	}
	wantComplete(t, out)
}

// TestPreemptionRequeue: the run job's batch shell receives TERM before
// its time limit (what --signal=B:TERM@60 delivers at the lead time; sent
// here with scancel --batch so the test does not wait for the clock). The
// shell forwards it to the ranks, which close their journals as
// interrupted; nothing committed is lost. The job is then requeued
// (scontrol requeue, released with scontrol update starttime=now+2):
// the second attempt skips what was committed and finishes the rest.
func TestPreemptionRequeue(t *testing.T) {
	needCluster(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "study")
	logPath := filepath.Join(dir, "run.out")
	// One second of "solve time" per scenario: 4 scenarios per rank, so
	// the TERM lands mid-run.
	env := jobEnv("OUT="+out, "RANK_ARGS="+strings.Join(append(slices.Clone(studyArgs), "--scenario-delay", "1s"), " "), "HYDROSHARD_ROOT="+root)
	id := strings.TrimSpace(slurm(t, env, "sbatch", "--parsable", "--export=ALL", "-n", "4", "-o", logPath, filepath.Join(root, "scripts", "slurm", "run.sbatch")))
	id, _, _ = strings.Cut(id, ";")
	awaitJob(t, id, "RUNNING")
	// Wait until the ranks committed something (journals are polled:
	// nothing signals a commit to another process).
	deadline := time.Now().Add(jobTimeout)
	for len(committed(readJournals(t, out))) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no commits after %v:\n%s", jobTimeout, readLog(t, logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	slurm(t, jobEnv(), "scancel", "--batch", "--signal=TERM", id)
	info := awaitJob(t, id)
	log1 := readLog(t, logPath)
	if info["JobState"] != "COMPLETED" || info["ExitCode"] != "0:0" {
		t.Errorf("preempted job %s: %s exit %s, want COMPLETED 0:0 (ranks exit 0 when interrupted)\n%s", id, info["JobState"], info["ExitCode"], log1)
	}
	if !strings.Contains(log1, "SIGTERM received: forwarding") {
		t.Errorf("run.sbatch did not log the forwarded TERM:\n%s", log1)
	}
	first := readJournals(t, out)
	done := committed(first)
	if len(first) != 4 {
		t.Fatalf("%d journals after the first attempt, want 4", len(first))
	}
	for _, j := range first {
		if j.close == nil || j.close.Status != manifest.StatusInterrupted {
			t.Errorf("%s: close %+v, want status interrupted", j.path, j.close)
		}
	}
	if len(done) >= scenarios {
		t.Fatalf("the first attempt committed all %d scenarios before TERM: the test proves nothing", scenarios)
	}
	// What is committed stays: the files and the hashes their commits name.
	kept := committedFiles(t, out)
	if r := mergeShards(t, "--json", out); r.code != 3 {
		t.Errorf("merge after the preempted attempt: exit %d, want 3 (partial)\n%s", r.code, r.stderr)
	}

	slurm(t, jobEnv(), "scontrol", "requeue", id)
	// A requeued batch job is held (BeginTime) for about two minutes;
	// release it, but not within the second its first attempt ended:
	// slurmd revokes a job's credential when it ends, compares times in
	// whole seconds, and refuses a relaunch in that same second ("Job N
	// already killed, do not launch batch job"), failing the job.
	deadline = time.Now().Add(jobTimeout)
	for {
		st := jobInfo(t, id)
		if st["JobState"] == "PENDING" && st["Restarts"] == "1" {
			slurm(t, jobEnv(), "scontrol", "update", "jobid="+id, "starttime=now+2")
			break
		}
		if st["Restarts"] == "1" && st["JobState"] != "PENDING" && st["JobState"] != "REQUEUED" {
			break // already released and running (or done)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not requeued after %v: %v", id, jobTimeout, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	info = awaitJob(t, id)
	log2 := readLog(t, logPath)
	if info["JobState"] != "COMPLETED" || info["Restarts"] != "1" || !strings.Contains(log2, "attempt 1:") {
		t.Fatalf("requeued job %s: %s exit %s, Restarts %s, want COMPLETED, 1; log:\n%s\ndaemons:\n%s", id, info["JobState"], info["ExitCode"], info["Restarts"], log2, daemonLog(id))
	}
	all := readJournals(t, out)
	second := 0
	for _, j := range all {
		if j.open.Attempt == 1 {
			second++
			for _, s := range j.commits {
				if done[s] > 0 {
					t.Errorf("attempt 1 (%s) committed scenario %d again", j.path, s)
				}
			}
		}
	}
	if second == 0 {
		t.Errorf("no journal of attempt 1")
	}
	for s, n := range committed(all) {
		if n != 1 {
			t.Errorf("scenario %d committed %d times", s, n)
		}
	}
	now := committedFiles(t, out)
	for p, h := range kept {
		if got := now[p]; got != h {
			t.Errorf("%s: committed as %s before the requeue, now %s", p, h, got)
		}
	}
	if r := mergeShards(t, "--json", out); r.code != 0 {
		t.Errorf("merge after the requeued attempt: exit %d, want 0\n%s", r.code, r.stderr)
	}
	wantComplete(t, out)
}

// committedFiles maps each file named by a journal commit to its size and
// XXH64 as found on disk now (at its final path, or still at its temp
// path when the rename had not happened).
func committedFiles(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	for _, p := range files {
		if _, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			if r.Commit == nil {
				return nil
			}
			for _, f := range r.Commit.Files {
				fi, err := hashFile(filepath.Join(out, filepath.FromSlash(f.Path)))
				if err != nil {
					fi, err = hashFile(filepath.Join(out, filepath.FromSlash(f.Temp)))
				}
				if err != nil {
					return fmt.Errorf("committed file %s: %w", f.Path, err)
				}
				if fi != fmt.Sprintf("%d %s", f.Bytes, f.XXH64) {
					return fmt.Errorf("committed file %s: %s on disk, commit says %d %s", f.Path, fi, f.Bytes, f.XXH64)
				}
				m[f.Path] = fi
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	return m
}

// readIDs reads a --rerun-list file: one scenario id per line.
func readIDs(t *testing.T, p string) []int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q is not a scenario id", p, f)
		}
		out = append(out, n)
	}
	return out
}

// hashFile is a file's size and XXH64 as a journal writes them.
func hashFile(p string) (string, error) {
	fi, err := vfs.HashFile(vfs.OS(), p)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", fi.Bytes, manifest.FormatXXH64(fi.XXH64)), nil
}

// TestSubmitArraySweep: submit.sh --array with a sweep file runs one study
// per array task (task i with line i+1 of the file appended to the rank
// arguments) into OUT/task_i, each merged by its own merge task. Each line
// sets a seed and a scenario count of its own (neither the other line's nor
// the base arguments'), so every task must show exactly its line: the
// scenario count in its journals' open records and its merged manifest,
// and the seed in its data, byte-identical to one process run with that
// line's arguments.
func TestSubmitArraySweep(t *testing.T) {
	needCluster(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "sweep")
	sweep := filepath.Join(dir, "seeds.txt")
	lines := []struct{ seed, scenarios int }{{7, 4}, {8, 5}}
	var text strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&text, "--seed %d --scenarios %d\n", l.seed, l.scenarios)
	}
	if err := os.WriteFile(sweep, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "2", "--array", "0-1", "--sweep", sweep, base, "--", "--case", "demo", "--scenarios", "6", "--quiet"}
	runID, mergeID := submit(t, jobEnv(), args...)
	// Array jobs: wait until no task of either array is queued or running.
	deadline := time.Now().Add(jobTimeout)
	for strings.TrimSpace(slurm(t, jobEnv(), "squeue", "-h", "-j", runID+","+mergeID, "-o", "%i %T")) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("array jobs %s, %s not done after %v", runID, mergeID, jobTimeout)
		}
		time.Sleep(200 * time.Millisecond) // polling the controller: there is nothing to block on
	}
	for task, line := range lines {
		out := filepath.Join(base, fmt.Sprintf("task_%d", task))
		log := readLog(t, filepath.Join(base+".slurm", fmt.Sprintf("merge-%s_%d.out", mergeID, task)))
		if !strings.Contains(log, "COMPLETE after round 1: "+out) {
			t.Errorf("merge task %d:\n%s", task, log)
		}
		if r := mergeShards(t, "verify", "--full", out); r.code != 0 {
			t.Errorf("verify %s: exit %d\n%s", out, r.code, r.stderr)
		}
		js := readJournals(t, out)
		if len(js) != 2 {
			t.Errorf("task %d: %d journals, want one per rank (2)", task, len(js))
		}
		for _, j := range js {
			if j.open.JobID == "" || j.open.World != 2 {
				t.Errorf("%s: job %q world %d, want an array task's job id and world 2", j.path, j.open.JobID, j.open.World)
			}
			if j.open.Scenarios != line.scenarios {
				t.Errorf("task %d: %s was opened for %d scenarios, want %d: the task did not run sweep line %d (--seed %d --scenarios %d)",
					task, filepath.Base(j.path), j.open.Scenarios, line.scenarios, task+1, line.seed, line.scenarios)
			}
		}
		var man struct {
			Scenarios manifest.ScenarioCounts `json:"scenarios"`
		}
		b, err := os.ReadFile(filepath.Join(out, layout.SimDir, layout.ManifestName))
		if err == nil {
			err = json.Unmarshal(b, &man)
		}
		if err != nil {
			t.Fatalf("task %d: %v", task, err)
		}
		if man.Scenarios.Total != line.scenarios || man.Scenarios.Completed != line.scenarios {
			t.Errorf("task %d: merged manifest has scenarios %+v, want sweep line %d's %d, all completed", task, man.Scenarios, task+1, line.scenarios)
		}
		got, err := os.ReadFile(filepath.Join(out, layout.SimDir, layout.IndexName))
		if err != nil {
			t.Fatal(err)
		}
		want := sweepReference(t, "--case", "demo", "--quiet", "--seed", strconv.Itoa(line.seed), "--scenarios", strconv.Itoa(line.scenarios))
		if !bytes.Equal(got, want) {
			t.Errorf("task %d: %s differs from one process run with sweep line %d (--seed %d --scenarios %d):\n%s",
				task, layout.IndexName, task+1, line.seed, line.scenarios, firstDiff(got, want))
		}
	}
}

// sweepReference is the integrity index of a study that one simrank
// process (--rank 0 --world 1) writes with args, merged.
func sweepReference(t *testing.T, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "reference")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, simrankBin, append([]string{"--out", out, "--rank", "0", "--world", "1"}, args...)...)
	cmd.Env = cleanEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference run %v: %v\n%s", args, err, b)
	}
	if r := mergeShards(t, out); r.code != 0 {
		t.Fatalf("reference merge of %v: exit %d\n%s", args, r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, layout.SimDir, layout.IndexName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
