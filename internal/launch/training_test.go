package launch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// trainingArgs make the study one with training: 4 iterations of 8
// forward passes, a policy checkpoint every 2.
var trainingArgs = []string{"--iterations", "4", "--forward-passes", "8", "--checkpoint-every", "2"}

// killOnceWrapper writes a rank program that arms fault for rank 2 of the
// first job only (a marker directory), then runs simrank.
func killOnceWrapper(t *testing.T, dir, fault string) string {
	t.Helper()
	wrapper := filepath.Join(dir, "rank.sh")
	script := fmt.Sprintf(`#!/bin/sh
if [ "${SLURM_PROCID:-}" = 2 ] && mkdir %q 2>/dev/null; then
  export HYDROSHARD_FAULT=%q
fi
exec %q "$@"
`, filepath.Join(dir, "killed-once"), fault, simrankBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// trainingJournals reads the open and close records of every training
// journal under out.
func trainingJournals(t *testing.T, out string) []journalSummary {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var js []journalSummary
	for _, p := range files {
		j := journalSummary{path: p}
		if _, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			switch {
			case r.Open != nil:
				j.open = r.Open
			case r.Close != nil:
				j.close = r.Close
			}
			return nil
		}); err != nil {
			t.Fatalf("journal %s: %v", p, err)
		}
		if j.open != nil && j.open.Phase == manifest.PhaseTraining {
			js = append(js, j)
		}
	}
	return js
}

var (
	trainRefOnce sync.Once
	trainRefDir  string
	trainRefErr  error
)

// trainingReference is the study with training written by 4 simrank
// processes (--rank i --world 4, one after the other), never interrupted,
// and merged: its training tables and policy are what a SLURM study of 4
// ranks must end with.
func trainingReference(t *testing.T) string {
	t.Helper()
	trainRefOnce.Do(func() {
		out := filepath.Join(workDir, "reference-training")
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		for r := range 4 {
			args := append([]string{"--out", out, "--rank", strconv.Itoa(r), "--world", "4"}, studyArgs...)
			cmd := exec.CommandContext(ctx, simrankBin, append(args, trainingArgs...)...)
			cmd.Env = cleanEnv()
			if b, err := cmd.CombinedOutput(); err != nil {
				trainRefErr = fmt.Errorf("reference run, rank %d: %v\n%s", r, err, b)
				return
			}
		}
		cmd := exec.CommandContext(ctx, mergeBin, out)
		cmd.Env = cleanEnv()
		if b, err := cmd.CombinedOutput(); err != nil {
			trainRefErr = fmt.Errorf("reference merge: %v\n%s", err, b)
			return
		}
		trainRefDir = out
	})
	if trainRefErr != nil {
		t.Fatal(trainRefErr)
	}
	return trainRefDir
}

// wantTrainingComplete checks a merged study with training: the simulation
// as wantComplete does; training/_SUCCESS; and every training table and
// policy file byte-identical to the uninterrupted reference's (the JSON
// documents carry the journals' timestamps, so they are left out).
func wantTrainingComplete(t *testing.T, out string) {
	t.Helper()
	wantComplete(t, out)
	if _, err := os.Stat(filepath.Join(out, "training", layout.SuccessName)); err != nil {
		t.Errorf("training: %v", err)
	}
	ref := trainingReference(t)
	n := 0
	for _, top := range []string{"training", "policy"} {
		err := filepath.WalkDir(filepath.Join(ref, top), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, ".json") {
				return err
			}
			rel, _ := filepath.Rel(ref, p)
			want, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got, err := os.ReadFile(filepath.Join(out, rel))
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				return nil
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the uninterrupted run's (%d bytes, want %d)", rel, len(got), len(want))
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 5 {
		t.Errorf("compared %d training and policy files with the reference, want the tables and the policy's stage files", n)
	}
}

// TestSubmitRankKilledAfterTraining: a study WITH training (iterations and
// checkpoints). Rank 2 of the run job finishes its training, then kills
// itself (SIGKILL, an injected fault on its simulation journal) when about
// to commit its second scenario. The merge job finds the scenarios of rank
// 2 missing and reruns them on fewer ranks than the training's 4, with the
// original arguments (--iterations included): the rerun ranks find the
// training done (rank.TrainingDone), skip it, and simulate; the second
// merge is COMPLETE, and every output, training tables and policy
// included, is byte-identical to an uninterrupted run.
func TestSubmitRankKilledAfterTraining(t *testing.T) {
	needCluster(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "study")
	// Writes to simulation journals only: their names have the random
	// token (hex) right after the attempt, training journals ".training.".
	wrapper := killOnceWrapper(t, dir, "write@_shards/journal/*.attempt-0.[0-9a-f]*:kill:3")
	args := append([]string{"-n", "4", "--program", wrapper, out, "--"}, studyArgs...)
	runID, mergeID := submit(t, jobEnv(), append(args, trainingArgs...)...)
	run := awaitJob(t, runID)
	if run["JobState"] != "FAILED" {
		t.Errorf("run job %s: %s exit %s, want FAILED (a rank was killed)", runID, run["JobState"], run["ExitCode"])
	}
	rounds := followMerges(t, out+".slurm", mergeID)
	js := readJournals(t, out)
	firstJob := committed(ofJob(js, runID))
	missing := missingOf(firstJob, scenarios)
	if len(missing) == 0 || len(missing) >= 4 {
		t.Fatalf("the killed run committed %v: want all but 1-3 scenarios, so that the rerun runs on fewer ranks than the training's 4", ids(firstJob))
	}
	t.Logf("run job %s committed %d scenarios; missing %v", runID, len(firstJob), missing)
	// The training of the run job is complete: rank 2 died after it.
	tj := trainingJournals(t, out)
	for _, j := range tj {
		if j.open.JobID != runID || j.close == nil || j.close.Termination != "iteration_limit" {
			t.Errorf("training journal %s: job %s close %+v, want job %s closed by iteration_limit", j.path, j.open.JobID, j.close, runID)
		}
	}
	if len(tj) != 4 {
		t.Errorf("%d training journals, want 4 (the run job's ranks; the rerun trains nothing)", len(tj))
	}
	if len(rounds) != 2 {
		t.Fatalf("want 2 merge rounds (partial, then complete), got %d: %+v", len(rounds), rounds)
	}
	r1, r2 := rounds[0], rounds[1]
	if m := partialLine.FindStringSubmatch(r1.log); r1.state != "COMPLETED" || m == nil || m[1] != strconv.Itoa(len(missing)) {
		t.Errorf("round 1: %s, want COMPLETED after reporting PARTIAL (%d missing):\n%s", r1.state, len(missing), r1.log)
	}
	if r1.rerunRanks != len(missing) {
		t.Errorf("rerun on %d ranks, want %d (one per missing scenario; the training is done)", r1.rerunRanks, len(missing))
	}
	if listed := readIDs(t, filepath.Join(out+".slurm", "rerun-round-1.txt")); !slices.Equal(listed, missing) {
		t.Errorf("rerun list %v, want exactly the missing scenarios %v", listed, missing)
	}
	info := awaitJob(t, r1.rerunID)
	rerunLog := readLog(t, filepath.Join(out+".slurm", "rerun-round-1-"+r1.rerunID+".out"))
	if info["JobState"] != "COMPLETED" || info["NumTasks"] != strconv.Itoa(r1.rerunRanks) {
		t.Errorf("rerun job %s: %s exit %s with %s tasks, want COMPLETED with %d:\n%s", r1.rerunID, info["JobState"], info["ExitCode"], info["NumTasks"], r1.rerunRanks, rerunLog)
	}
	if !strings.Contains(rerunLog, "--iterations 4") || strings.Count(rerunLog, "training: already done") != r1.rerunRanks {
		t.Errorf("rerun job %s: want the original --iterations and every rank skipping the done training:\n%s", r1.rerunID, rerunLog)
	}
	if r2.state != "COMPLETED" || !strings.Contains(r2.log, "COMPLETE after round 2") || !strings.Contains(r2.log, "training     COMPLETE") {
		t.Errorf("round 2: %s, want COMPLETED, COMPLETE, training COMPLETE:\n%s", r2.state, r2.log)
	}
	if got := ids(committed(ofJob(js, r1.rerunID))); !slices.Equal(got, missing) {
		t.Errorf("rerun job %s committed %v, want %v", r1.rerunID, got, missing)
	}
	for s, n := range committed(js) {
		if n != 1 {
			t.Errorf("scenario %d committed %d times", s, n)
		}
	}
	wantTrainingComplete(t, out)
}

// TestSubmitRankKilledInTraining: the training itself is unfinished (rank
// 2 killed at its third training journal write, iteration 2). The merge
// must rerun on the training's 4 ranks, even though RERUN_NTASKS asks for
// 2: the rerun ranks resume the training (rank 2 from its last durable
// iteration; rank.OpenTraining refuses another world size), then simulate
// what is missing; the second merge is COMPLETE and byte-identical to an
// uninterrupted run.
func TestSubmitRankKilledInTraining(t *testing.T) {
	needCluster(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "study")
	wrapper := killOnceWrapper(t, dir, "write@_shards/journal/*.training.*:kill:3")
	args := append([]string{"-n", "4", "--program", wrapper, out, "--"}, studyArgs...)
	runID, mergeID := submit(t, jobEnv("RERUN_NTASKS=2"), append(args, trainingArgs...)...)
	if run := awaitJob(t, runID); run["JobState"] != "FAILED" {
		t.Errorf("run job %s: %s exit %s, want FAILED (a rank was killed)", runID, run["JobState"], run["ExitCode"])
	}
	rounds := followMerges(t, out+".slurm", mergeID)
	if len(rounds) != 2 {
		t.Fatalf("want 2 merge rounds (partial, then complete), got %d: %+v", len(rounds), rounds)
	}
	r1, r2 := rounds[0], rounds[1]
	if !strings.Contains(r1.log, "training     PARTIAL") || !strings.Contains(r1.log, "the rerun resumes it on the training's 4 ranks (not 2)") || r1.rerunRanks != 4 {
		t.Errorf("round 1: want training PARTIAL and a rerun on the training's 4 ranks, got %d:\n%s", r1.rerunRanks, r1.log)
	}
	info := awaitJob(t, r1.rerunID)
	rerunLog := readLog(t, filepath.Join(out+".slurm", "rerun-round-1-"+r1.rerunID+".out"))
	if info["JobState"] != "COMPLETED" || info["NumTasks"] != "4" {
		t.Errorf("rerun job %s: %s exit %s with %s tasks, want COMPLETED with 4:\n%s", r1.rerunID, info["JobState"], info["ExitCode"], info["NumTasks"], rerunLog)
	}
	if strings.Contains(rerunLog, "training: already done") {
		t.Errorf("rerun job %s skipped an unfinished training:\n%s", r1.rerunID, rerunLog)
	}
	if r2.state != "COMPLETED" || !strings.Contains(r2.log, "COMPLETE after round 2") || !strings.Contains(r2.log, "training     COMPLETE") {
		t.Errorf("round 2: %s, want COMPLETED, COMPLETE, training COMPLETE:\n%s", r2.state, r2.log)
	}
	// Rank 2 resumed its training in the rerun job, on world 4.
	resumed := false
	for _, j := range trainingJournals(t, out) {
		if j.open.World != 4 {
			t.Errorf("training journal %s: world %d, want 4", j.path, j.open.World)
		}
		resumed = resumed || j.open.JobID == r1.rerunID && j.open.Rank == 2 && j.close != nil && j.close.Committed > 0
	}
	if !resumed {
		t.Errorf("no training journal of rank 2 in the rerun job %s with iterations", r1.rerunID)
	}
	for s, n := range committed(readJournals(t, out)) {
		if n != 1 {
			t.Errorf("scenario %d committed %d times", s, n)
		}
	}
	wantTrainingComplete(t, out)
}
