package merge_test

// The policy merge assembles each stage once: the analysis writes each
// stage file to a temp file as it checks it, and the write only renames
// them into place. These tests watch the file-system operations of a
// merge (vfs.Recorder) to check that, and that the protocol still holds:
// no stage file is published before every stage has checked out, every
// temp file is fsynced before its rename, a problem leaves no temp file,
// and Analyze writes nothing.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/vfs"
)

// recordedMerge runs merge.Run (or, with dry, merge.Analyze) of out on a
// vfs.Recorder and returns the report and the operations.
func recordedMerge(t *testing.T, out string, dry bool) (*merge.Report, []vfs.RecordedOp) {
	t.Helper()
	rec := vfs.Record(vfs.OS())
	opts := merge.Options{Verify: merge.VerifyFull, FS: rec}
	var rep *merge.Report
	var err error
	if dry {
		rep, err = merge.Analyze(context.Background(), out, opts)
	} else {
		rep, err = merge.Run(context.Background(), out, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep, rec.Ops()
}

// relTo returns p relative to out, with forward slashes ("" when p is
// not under out).
func relTo(out, p string) string {
	rel, err := filepath.Rel(out, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return ""
	}
	return filepath.ToSlash(rel)
}

func isFragment(rel string) bool {
	return strings.HasPrefix(rel, layout.ShardsDir+"/policy/") || (strings.HasPrefix(rel, layout.TempDir+"/") && strings.Contains(rel, "_stage_"))
}

func TestPolicySinglePass(t *testing.T) {
	out := t.TempDir()
	polWrite(t, out, 3, map[int][]polRank{5: {
		{cuts: func(st, i int) bool { return i < 12 }},
		{cuts: func(st, i int) bool { return i >= 8 }, temp: true}, // rolled forward
		{cuts: func(st, i int) bool { return i%3 == 0 }},
	}})
	rep, ops := recordedMerge(t, out, false)
	if len(rep.Problems) > 0 || rep.Training == nil || rep.Training.Policy == nil || rep.Training.Policy.Cuts != polStages*polCuts {
		t.Fatalf("problems %v, training %+v", rep.Problems, rep.Training)
	}
	checkPolicy(t, out)

	opens := map[string]int{}      // fragment -> times opened
	lastFragmentRead := -1         // index of the last open of a fragment
	tmpOf := map[int]string{}      // handle -> temp file created in _shards/tmp
	synced := map[string]bool{}    // temp files fsynced
	stagedAt := map[string]int{}   // temp file -> index of its create
	renamed := map[string]string{} // policy file -> the temp renamed over it
	firstRename := len(ops)        // index of the first rename into policy/
	for _, o := range ops {
		rel := relTo(out, o.Path)
		switch o.Op {
		case vfs.OpOpen:
			if isFragment(rel) {
				opens[rel]++
				lastFragmentRead = o.Index
			}
		case vfs.OpCreate:
			if strings.HasPrefix(rel, layout.TempDir+"/merge.") && strings.Contains(rel, ".stage_") {
				tmpOf[o.Handle] = rel
				stagedAt[rel] = o.Index
			}
		case vfs.OpSync:
			if tmp, ok := tmpOf[o.Handle]; ok && o.Err == nil {
				synced[tmp] = true
			}
		case vfs.OpRename:
			to := relTo(out, o.New)
			if strings.HasPrefix(to, layout.PolicyDir+"/") && to != layout.PolicyMetadataFile {
				if !synced[rel] {
					t.Errorf("%s renamed over %s before its fsync", rel, to)
				}
				renamed[to] = rel
				firstRename = min(firstRename, o.Index)
			}
		}
	}
	if len(opens) == 0 {
		t.Fatal("no fragment read")
	}
	for f, n := range opens {
		if n != 1 {
			t.Errorf("fragment %s read %d times, want once (each stage assembled once)", f, n)
		}
	}
	// cuts for every stage, basis for stages 0 and 2 (polWrite).
	if want := polStages + 2; len(renamed) != want || len(stagedAt) != want {
		t.Fatalf("%d stage files renamed into place, %d staged, want %d: %v", len(renamed), len(stagedAt), want, renamed)
	}
	if lastFragmentRead > firstRename {
		t.Fatalf("a stage file was renamed into policy/ (op %d) before the last fragment was read and checked (op %d)", firstRename, lastFragmentRead)
	}
	// Staged during the analysis: before the roll-forward of rank 1's
	// fragments (the first change the apply phase makes to them).
	for _, o := range ops {
		if o.Op == vfs.OpRenameNoReplace && isFragment(relTo(out, o.Path)) {
			for tmp, at := range stagedAt {
				if at > o.Index {
					t.Fatalf("%s staged at op %d, after the roll-forward at op %d: not during the analysis", tmp, at, o.Index)
				}
			}
			break
		}
	}
	if ents, err := os.ReadDir(filepath.Join(out, layout.TempDir)); err != nil || len(ents) != 0 {
		t.Fatalf("left in %s: %v %v", layout.TempDir, ents, err)
	}
}

// TestPolicyAnalyzeStagesNothing: Analyze (merge-shards report) of a
// first merge writes, renames, removes and syncs nothing in _shards/tmp
// or policy/.
func TestPolicyAnalyzeStagesNothing(t *testing.T) {
	out := t.TempDir()
	polWrite(t, out, 2, map[int][]polRank{5: {{cuts: all}, {cuts: all}}})
	rep, ops := recordedMerge(t, out, true)
	if len(rep.Problems) > 0 || rep.Training == nil || rep.Training.Policy == nil || rep.Training.Policy.Cuts != polStages*polCuts {
		t.Fatalf("problems %v, training %+v", rep.Problems, rep.Training)
	}
	for _, o := range ops {
		// (The lease judge's clock probe in _shards/ is Analyze's own.)
		rel := relTo(out, o.Path)
		if !strings.HasPrefix(rel, layout.TempDir) && !strings.HasPrefix(rel, layout.PolicyDir) {
			continue
		}
		switch o.Op {
		case vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpRename, vfs.OpRenameNoReplace, vfs.OpRemove, vfs.OpMkdir, vfs.OpSyncDir:
			t.Errorf("Analyze changed the directory: %v", o)
		}
	}
}

// TestPolicyProblemRemovesStaged: a conflict in the last stage is found
// after the earlier stages were staged; their temp files are removed,
// nothing is published, and a leftover temp file of an earlier merge of
// this same process id is left for the apply phase (not taken over).
func TestPolicyProblemRemovesStaged(t *testing.T) {
	out := t.TempDir()
	polWrite(t, out, 2, map[int][]polRank{5: {
		{cuts: all},
		{cuts: all, mutate: func(st int, c *policy.Cut) {
			if st == polStages-1 && c.CutID == polCut(st, 4).CutID {
				c.Intercept++
			}
		}},
	}})
	leftover := filepath.Join(out, filepath.FromSlash(layout.MergeTemp(os.Getpid(), 0, "policy/cuts/"+layout.StageFileName(0))))
	if err := os.WriteFile(leftover, []byte("an earlier merge's"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, ops := recordedMerge(t, out, false)
	if rep.ExitCode() != 2 || len(rep.Problems) != 1 || rep.Problems[0].Kind != merge.ProblemConflict {
		t.Fatalf("exit %d, problems %v", rep.ExitCode(), rep.Problems)
	}
	created, removed := map[string]bool{}, map[string]bool{}
	for _, o := range ops {
		rel := relTo(out, o.Path)
		switch o.Op {
		case vfs.OpCreate:
			if strings.HasPrefix(rel, layout.TempDir+"/") && o.Err == nil {
				created[rel] = true
			}
		case vfs.OpRemove:
			removed[rel] = true
		case vfs.OpRename, vfs.OpRenameNoReplace:
			t.Errorf("renamed on a corrupt outcome: %v", o)
		}
	}
	if len(created) == 0 {
		t.Fatal("no stage was staged before the conflict was found")
	}
	for c := range created {
		if !removed[c] {
			t.Errorf("staged %s not removed", c)
		}
	}
	if _, err := os.Stat(filepath.Join(out, layout.PolicyDir)); !os.IsNotExist(err) {
		t.Fatalf("policy/ exists after a corrupt merge: %v", err)
	}
	ents, err := os.ReadDir(filepath.Join(out, layout.TempDir))
	if err != nil || len(ents) != 1 || ents[0].Name() != filepath.Base(leftover) {
		t.Fatalf("%s holds %v (%v), want only the leftover", layout.TempDir, ents, err)
	}
	if b, err := os.ReadFile(leftover); err != nil || string(b) != "an earlier merge's" {
		t.Fatalf("leftover: %q %v", b, err)
	}
	// Repaired, the next merge removes the leftover and publishes.
	polWrite(t, out, 2, map[int][]polRank{5: {{cuts: all}, {cuts: all}}})
	if rep := polMerge(t, out); len(rep.Problems) > 0 {
		t.Fatal(rep.Problems)
	}
	checkPolicy(t, out)
	if ents, err := os.ReadDir(filepath.Join(out, layout.TempDir)); err != nil || len(ents) != 0 {
		t.Fatalf("left in %s: %v %v", layout.TempDir, ents, err)
	}
}
