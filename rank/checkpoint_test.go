package rank_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// trained opens a training writer for id and makes iterations 1..n durable.
func trained(t *testing.T, out string, id rank.Identity, c *manifest.Case, n int) *rank.TrainingWriter {
	t.Helper()
	w := openTraining(t, out, id, c, trainCfg(10, 8))
	for it := 1; it <= n; it++ {
		if err := w.WriteIteration(context.Background(), iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func rootCheckpoint(c *manifest.Case, it int) ([]policy.StageCuts, []policy.StageBasis, []policy.StageStates, *manifest.PolicyMeta) {
	cuts := synth.CheckpointCutsCap(c, trainSeed, it, 10, 8, 0, 1, true)
	return cuts, synth.CheckpointBasis(c, trainSeed, it, []int{1, 2, 0}), synth.CheckpointStates(c, trainSeed, it, 8), synth.CheckpointMeta(c, trainSeed, it, 10, 8, it*8*c.Stages)
}

// checkpointRecords reads the checkpoint records of every journal of out.
func checkpointRecords(t *testing.T, out string) []*manifest.CheckpointInfo {
	t.Helper()
	var recs []*manifest.CheckpointInfo
	files, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*.jsonl"))
	for _, p := range files {
		if _, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			if r.Checkpoint != nil {
				recs = append(recs, r.Checkpoint)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

func TestWriteCheckpoint(t *testing.T) {
	c := tinyCase(t)
	out := t.TempDir()
	id, _ := rank.Explicit(0, 1)
	w := trained(t, out, id, c, 3)
	cuts, basis, states, meta := rootCheckpoint(c, 2)
	if err := w.WriteCheckpoint(context.Background(), 2, cuts, basis, states, meta); err != nil {
		t.Fatal(err)
	}
	if last, err := w.LastCheckpoint(); err != nil || last != 2 {
		t.Fatalf("LastCheckpoint = %d, %v", last, err)
	}
	if err := w.CloseTerminated(rank.TerminationIterationLimit); err != nil {
		t.Fatal(err)
	}
	recs := checkpointRecords(t, out)
	if len(recs) != 1 || recs[0].Iteration != 2 || recs[0].Meta == nil || !reflect.DeepEqual(*recs[0].Meta, *meta) {
		t.Fatalf("checkpoint records %+v", recs)
	}
	rec := recs[0]
	if want := 3 * c.Stages; len(rec.Files) != want {
		t.Fatalf("%d files, want %d", len(rec.Files), want)
	}
	for _, f := range rec.Files {
		if !strings.HasPrefix(f.Path, "_shards/policy/iter-000002/job-local.rank-00000.") || !strings.HasSuffix(f.Path, "/"+f.Kind+"_"+layout.StageFileName(f.Stage)) {
			t.Errorf("path %s", f.Path)
		}
		if _, err := os.Stat(filepath.Join(out, f.Temp)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temp %s still there: %v", f.Temp, err)
		}
		buf, err := os.ReadFile(filepath.Join(out, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := vfs.HashFile(vfs.OS(), filepath.Join(out, f.Path))
		if manifest.FormatXXH64(info.XXH64) != f.XXH64 || info.Bytes != f.Bytes {
			t.Errorf("%s: hash/size differ from the record", f.Path)
		}
		switch f.Kind {
		case manifest.FragmentCuts:
			v, err := policy.ReadStageCuts(buf)
			if err != nil {
				t.Fatal(err)
			}
			in := cuts[f.Stage]
			if v.StageID != in.StageID || v.StateDimension != in.StateDimension || v.Capacity != in.Capacity || len(v.Cuts) != len(in.Cuts) {
				t.Fatalf("stage %d header differs", f.Stage)
			}
			for k, cv := range v.Cuts {
				ic := in.Cuts[k]
				if cv.CutID != ic.CutID || cv.SlotIndex != ic.SlotIndex || cv.Iteration != ic.Iteration || cv.ForwardPassIndex != ic.ForwardPassIndex ||
					cv.Intercept != ic.Intercept || cv.IsActive != ic.IsActive || !reflect.DeepEqual(cv.Coefficients(), ic.Coefficients) ||
					!reflect.DeepEqual(cv.StateAtGeneration(), ic.StateAtGeneration) {
					t.Fatalf("stage %d cut %d differs", f.Stage, k)
				}
			}
		case manifest.FragmentBasis:
			v, err := policy.ReadStageBasis(buf)
			if err != nil || !reflect.DeepEqual(v.RowStatus, basis[f.Stage].RowStatus) || !reflect.DeepEqual(v.ColumnStatus, basis[f.Stage].ColumnStatus) {
				t.Fatalf("basis stage %d: %v", f.Stage, err)
			}
		case manifest.FragmentStates:
			v, err := policy.ReadStageStates(buf)
			if err != nil || !reflect.DeepEqual(v.Data, states[f.Stage].Data) {
				t.Fatalf("states stage %d: %v", f.Stage, err)
			}
		}
	}
	// A resumed rank knows its last checkpoint.
	w2 := openTraining(t, out, id, c, trainCfg(10, 8))
	defer w2.Close()
	if last, err := w2.LastCheckpoint(); err != nil || last != 2 {
		t.Fatalf("resumed LastCheckpoint = %d, %v", last, err)
	}
	err := w2.WriteCheckpoint(context.Background(), 2, cuts, basis, states, meta)
	if !errors.Is(err, rank.ErrCheckpointOrder) {
		t.Fatalf("second checkpoint of iteration 2: %v", err)
	}
}

func TestWriteCheckpointRules(t *testing.T) {
	c := tinyCase(t)
	out := t.TempDir()
	root, _ := rank.Explicit(0, 2)
	other, _ := rank.Explicit(1, 2)
	w := trained(t, out, root, c, 3)
	defer w.Close()
	w1 := trained(t, out, other, c, 3)
	defer w1.Close()
	ctx := context.Background()
	cuts, basis, _, meta := rootCheckpoint(c, 2)
	mod := func(f func(cs []policy.StageCuts) []policy.StageCuts) []policy.StageCuts {
		cp := make([]policy.StageCuts, len(cuts))
		copy(cp, cuts)
		for i := range cp {
			cp[i].Cuts = append([]policy.Cut(nil), cp[i].Cuts...)
		}
		return f(cp)
	}
	metaWith := func(f func(m *manifest.PolicyMeta)) *manifest.PolicyMeta { m := *meta; f(&m); return &m }
	cases := []struct {
		name string
		w    *rank.TrainingWriter
		it   int
		cuts []policy.StageCuts
		b    []policy.StageBasis
		meta *manifest.PolicyMeta
		want string
	}{
		{"not durable", w, 4, cuts, basis, metaWith(func(m *manifest.PolicyMeta) { m.Iteration = 4 }), "rank 0 checkpoint iteration 4: rank: checkpoint out of order: iteration 4 is not durable"},
		{"zero", w, 0, cuts, basis, meta, "iteration 0, want >= 1"},
		{"missing stage", w, 2, cuts[:2], basis, meta, "rank 0 checkpoint iteration 2 stage 2: cuts: stage 2 missing"},
		{"dup stage", w, 2, mod(func(cs []policy.StageCuts) []policy.StageCuts { cs[2].StageID = 1; return cs }), basis, meta, "stage 1: cuts: stage 1 given twice"},
		{"stage range", w, 2, mod(func(cs []policy.StageCuts) []policy.StageCuts { cs[2].StageID = 9; return cs }), basis, meta, "stage 9: cuts fragment 2: stage 9, the case has stages 0..2"},
		{"dim", w, 2, mod(func(cs []policy.StageCuts) []policy.StageCuts { cs[1].StateDimension = 7; return cs }), basis, meta, "stage 1: cuts: state_dimension 7"},
		{"coef length", w, 2, mod(func(cs []policy.StageCuts) []policy.StageCuts { cs[1].Cuts[0].Coefficients = []float64{1}; return cs }), basis, meta, "stage 1: policy: invalid input"},
		{"future cut", w, 2, mod(func(cs []policy.StageCuts) []policy.StageCuts { cs[0].Cuts[0].Iteration = 3; return cs }), basis, meta, "stage 0: cut 0 (cut_id 0) has iteration 3, after the checkpoint"},
		{"no meta", w, 2, cuts, basis, nil, "rank 0 checkpoint iteration 2: the root rank (rank 0) must give the checkpoint metadata"},
		{"meta iteration", w, 2, cuts, basis, metaWith(func(m *manifest.PolicyMeta) { m.Iteration = 1 }), "metadata iteration 1"},
		{"meta capacity", w, 2, cuts, basis, metaWith(func(m *manifest.PolicyMeta) { m.Capacity = nil }), "0 capacities"},
		{"non-root meta", w1, 2, cuts, nil, meta, "rank 1 checkpoint iteration 2: only the root rank (rank 0)"},
		{"non-root basis", w1, 2, cuts, basis, nil, "only the root rank"},
	}
	for _, tc := range cases {
		err := tc.w.WriteCheckpoint(ctx, tc.it, tc.cuts, tc.b, nil, tc.meta)
		var ce *rank.CheckpointError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a *CheckpointError with %q", tc.name, err, tc.want)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(out, layout.TempDir, "*")); len(tmp) != 0 {
		t.Errorf("refused checkpoints left temps %v", tmp)
	}
	// Both writers are still usable.
	if err := w.WriteCheckpoint(ctx, 2, cuts, basis, nil, meta); err != nil {
		t.Fatal(err)
	}
	if err := w1.WriteCheckpoint(ctx, 3, synth.CheckpointCutsCap(c, trainSeed, 3, 10, 8, 1, 2, false), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteIteration(ctx, iter(c, root, 4)); err != nil {
		t.Fatal(err)
	}
	if n := len(checkpointRecords(t, out)); n != 2 {
		t.Fatalf("%d checkpoint records, want 2", n)
	}
}

// TestWriteCheckpointIOError: an I/O error breaks the writer, leaves no
// temp and no journal record.
func TestWriteCheckpointIOError(t *testing.T) {
	c := tinyCase(t)
	out := t.TempDir()
	id, _ := rank.Explicit(0, 1)
	// The second fragment's temp file (stage 1's cuts) cannot be created.
	fsys := vfs.Inject(vfs.OS(), vfs.Rule{Op: vfs.OpCreate, Path: "_shards/tmp/*.ckpt2.*", Nth: 2, Err: syscall.ENOSPC})
	w := openTrainingFS(t, out, id, c, trainCfg(10, 8), fsys)
	for it := 1; it <= 2; it++ {
		if err := w.WriteIteration(context.Background(), iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	cuts, basis, _, meta := rootCheckpoint(c, 2)
	err := w.WriteCheckpoint(context.Background(), 2, cuts, basis, nil, meta)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "rank 0 checkpoint iteration 2 stage 1") {
		t.Fatalf("got %v", err)
	}
	if err2 := w.WriteIteration(context.Background(), iter(c, id, 3)); err2 == nil {
		t.Fatal("writer still usable after an I/O error")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after an I/O error returned nil")
	}
	if tmp, _ := filepath.Glob(filepath.Join(out, layout.TempDir, "*")); len(tmp) != 0 {
		t.Errorf("temps left %v", tmp)
	}
	if n := len(checkpointRecords(t, out)); n != 0 {
		t.Fatalf("%d checkpoint records", n)
	}
}

// TestCheckpointKill kills simrank (SIGKILL) during checkpoint fragment
// writes and at the checkpoint's commit fsync: nothing under _shards/policy
// is a partial or uncommitted fragment, and every committed checkpoint's
// files are in place or in tmp with the recorded hashes. A rerun finishes.
func TestCheckpointKill(t *testing.T) {
	for _, fault := range []string{"temp-write:kill:2", "temp-write:kill:8", "journal-fsync:kill:4", "journal-fsync:kill:7", "rename:kill:2"} {
		t.Run(fault, func(t *testing.T) {
			out := t.TempDir()
			args := []string{"--out", out, "--scenarios", "2", "--rank", "0", "--world", "1", "--iterations", "4", "--checkpoint-every", "2", "--forward-passes", "3"}
			cmd := simrank(context.Background(), []string{"HYDROSHARD_FAULT=" + fault}, args...)
			if err := cmd.Run(); err == nil {
				t.Fatalf("%s: simrank survived", fault)
			}
			checkPolicyShards(t, out)
			runOK(t, simrank(context.Background(), nil, args...))
			recs := checkPolicyShards(t, out)
			its := map[int]bool{}
			for _, r := range recs {
				its[r.Iteration] = true
			}
			if !its[2] || !its[4] {
				t.Fatalf("after the rerun: checkpoints %v, want 2 and 4", its)
			}
		})
	}
}

// checkPolicyShards checks the on-disk policy fragments against the
// journals' committed checkpoint records.
func checkPolicyShards(t *testing.T, out string) []*manifest.CheckpointInfo {
	t.Helper()
	recs := checkpointRecords(t, out)
	listed := map[string]bool{}
	for _, r := range recs {
		for _, f := range r.Files {
			listed[f.Path] = true
			ok := false
			for _, p := range []string{f.Path, f.Temp} {
				info, err := vfs.HashFile(vfs.OS(), filepath.Join(out, p))
				if err == nil && manifest.FormatXXH64(info.XXH64) == f.XXH64 && info.Bytes == f.Bytes {
					ok = true
					break
				}
			}
			if !ok {
				t.Errorf("committed fragment %s: neither it nor %s has the recorded hash", f.Path, f.Temp)
			}
		}
	}
	_ = filepath.Walk(filepath.Join(out, layout.PolicyShardDir), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		if !listed[filepath.ToSlash(rel)] {
			t.Errorf("%s is under _shards/policy but no committed checkpoint lists it", rel)
		}
		return nil
	})
	return recs
}
