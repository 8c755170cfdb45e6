package rank

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/vfs"
)

// CheckpointError wraps an error with the rank, checkpoint iteration and
// (when it concerns one, else -1) stage.
type CheckpointError struct {
	Rank, Iteration, Stage int
	Err                    error
}

func (e *CheckpointError) Error() string {
	if e.Stage >= 0 {
		return fmt.Sprintf("rank %d checkpoint iteration %d stage %d: %v", e.Rank, e.Iteration, e.Stage, e.Err)
	}
	return fmt.Sprintf("rank %d checkpoint iteration %d: %v", e.Rank, e.Iteration, e.Err)
}
func (e *CheckpointError) Unwrap() error { return e.Err }

// ErrCheckpointOrder is wrapped by a *CheckpointError for a checkpoint of
// an iteration that is not durable yet, or not after the rank's last
// checkpoint.
var ErrCheckpointOrder = errors.New("rank: checkpoint out of order")

// checkpointState is a TrainingWriter's checkpoint bookkeeping, loaded
// lazily by the first checkpoint call: a training run that never
// checkpoints pays nothing for it.
type checkpointState struct {
	loaded bool
	last   int // this rank's last durable checkpoint, any attempt
	enc    *policy.Writer
}

// LastCheckpoint returns the last checkpoint iteration this rank made
// durable (any attempt); 0 if none.
func (w *TrainingWriter) LastCheckpoint() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := w.checkpointState()
	if err != nil {
		return 0, err
	}
	return st.last, nil
}

// checkpointState returns the writer's checkpoint state, scanning the
// journals for this rank's checkpoint records the first time. Callers
// hold w.mu.
func (w *TrainingWriter) checkpointState() (*checkpointState, error) {
	st := &w.ckpt
	if st.loaded {
		return st, nil
	}
	last := 0
	err := scanJournals(w.fsys, w.out, w.cas, func(p string, o *manifest.OpenInfo, r *manifest.Record) error {
		if o != nil && o.Phase == manifest.PhaseTraining && o.Rank == w.id.Rank && r.Checkpoint != nil {
			last = max(last, r.Checkpoint.Iteration)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.loaded, st.last = true, last
	st.enc = policy.NewWriter(1 << 16)
	return st, nil
}

// WriteCheckpoint makes this rank's fragments of the policy checkpoint
// taken at iteration durable, with the simulation writer's discipline:
// each stage's fragment is encoded (one reused policy.Writer) and written
// with vfs.WriteNewSync (streaming XXH64 + fsync) to
// _shards/tmp/<writer>.ckpt<iteration>.<kind>_stage_NNN.tmp; then ONE
// "checkpoint" journal record listing every file (manifest.CheckpointInfo)
// is appended and fsynced — the commit point — and the files are renamed,
// never replacing an existing file, to CheckpointPath and their
// directories fsynced. A crash before the commit point leaves temp
// garbage only; after it, the merge finishes the renames.
//
// Rules: iteration must be durable (<= LastIteration) and after this
// rank's last checkpoint (LastCheckpoint); cuts must hold exactly one
// StageCuts per stage 0..Stages-1 of the case (a rank may give all cuts
// or only those it generated; a stage may have none), with StateDimension
// = the case's StateDimension and no cut of a later iteration. basis,
// states and meta come from the root rank (rank 0) only, and the root must
// give meta (Iteration, NumStages and StateDimension agreeing, Capacity and
// WarmStartCounts one per stage). basis and states are optional, at most
// one per stage.
//
// Invalid input is a *CheckpointError and leaves the writer usable; an I/O
// error breaks it, as in WriteIteration. The caller's data is read, never
// kept.
func (w *TrainingWriter) WriteCheckpoint(ctx context.Context, iteration int, cuts []policy.StageCuts, basis []policy.StageBasis, states []policy.StageStates, meta *manifest.PolicyMeta) error {
	if err := w.enter(ctx, "WriteCheckpoint"); err != nil {
		return err
	}
	defer w.mu.Unlock()
	st, err := w.checkpointState()
	if err != nil {
		return err
	}
	cerr := func(stage int, err error) error {
		return &CheckpointError{Rank: w.id.Rank, Iteration: iteration, Stage: stage, Err: err}
	}
	switch {
	case iteration < 1:
		return cerr(-1, fmt.Errorf("%w: iteration %d, want >= 1", ErrCheckpointOrder, iteration))
	case iteration > w.last:
		return cerr(-1, fmt.Errorf("%w: iteration %d is not durable (this rank's last durable iteration is %d)", ErrCheckpointOrder, iteration, w.last))
	case iteration <= st.last:
		return cerr(-1, fmt.Errorf("%w: this rank's last checkpoint is iteration %d, the next must be later", ErrCheckpointOrder, st.last))
	}
	if err := w.checkCheckpoint(iteration, cuts, basis, states, meta, cerr); err != nil {
		return err
	}
	tmpDir := layout.Join(w.out, layout.TempDir)
	if err := w.dirs.Ensure(tmpDir); err != nil {
		w.err = cerr(-1, err)
		return w.err
	}

	var files []manifest.PolicyFile
	cleanup := func() {
		for _, f := range files {
			_ = w.fsys.Remove(layout.Join(w.out, f.Temp))
		}
	}
	write := func(kind string, stage int, encode func() ([]byte, error)) error {
		buf, err := encode()
		if err != nil {
			cleanup()
			if errors.Is(err, policy.ErrInvalid) {
				return cerr(stage, err) // bad input: usable
			}
			w.err = cerr(stage, err)
			return w.err
		}
		tmp := layout.CheckpointTemp(w.name, iteration, kind, stage)
		info, err := vfs.WriteNewSync(w.fsys, layout.Join(w.out, tmp), func(out io.Writer) error {
			_, err := out.Write(buf)
			return err
		})
		if err != nil {
			cleanup()
			w.err = cerr(stage, err)
			return w.err
		}
		files = append(files, manifest.PolicyFile{
			Kind: kind, Stage: stage, Temp: tmp,
			Path:  layout.Fragment(iteration, w.name, kind, stage),
			Bytes: info.Bytes, XXH64: manifest.FormatXXH64(info.XXH64),
		})
		return nil
	}
	for i := range cuts {
		s := &cuts[i]
		if err := write(manifest.FragmentCuts, int(s.StageID), func() ([]byte, error) { return st.enc.EncodeStageCuts(s) }); err != nil {
			return err
		}
	}
	for i := range basis {
		b := &basis[i]
		if err := write(manifest.FragmentBasis, int(b.StageID), func() ([]byte, error) { return st.enc.EncodeStageBasis(b) }); err != nil {
			return err
		}
	}
	for i := range states {
		s := &states[i]
		if err := write(manifest.FragmentStates, int(s.StageID), func() ([]byte, error) { return st.enc.EncodeStageStates(s) }); err != nil {
			return err
		}
	}
	info := &manifest.CheckpointInfo{Iteration: iteration, Files: files}
	if meta != nil {
		m := *meta
		m.Capacity = append([]uint32(nil), meta.Capacity...)
		m.WarmStartCounts = append([]uint32(nil), meta.WarmStartCounts...)
		if meta.BestUpperBound != nil {
			ub := *meta.BestUpperBound
			m.BestUpperBound = &ub
		}
		info.Meta = &m
	}
	// The fragments' names must be durable before the record that
	// commits them (see Writer.commit).
	if err := w.dirs.SyncDir(tmpDir); err != nil {
		cleanup()
		w.err = cerr(-1, err)
		return w.err
	}
	if err := appendRecord(w.journal, w.lease, &manifest.Record{Type: manifest.RecordCheckpoint, Checkpoint: info}); err != nil {
		// The line may be half written (or durable): the temps stay for
		// the merge to judge against the journal.
		w.err = cerr(-1, err)
		return w.err
	}
	st.last = iteration
	recs := make([]manifest.FileRecord, len(files))
	for i, f := range files {
		recs[i] = manifest.FileRecord{Entity: f.Kind, Temp: f.Temp, Path: f.Path, Bytes: f.Bytes, XXH64: f.XXH64}
	}
	if err := journal.Publish(w.dirs, w.out, recs); err != nil {
		w.err = cerr(-1, fmt.Errorf("committed, but %w (the merge will finish it)", err))
		return w.err
	}
	return nil
}

// checkCheckpoint applies WriteCheckpoint's input rules (no I/O).
func (w *TrainingWriter) checkCheckpoint(iteration int, cuts []policy.StageCuts, basis []policy.StageBasis, states []policy.StageStates, meta *manifest.PolicyMeta, cerr func(int, error) error) error {
	stages, dim := w.cas.Stages, w.cas.StateDimension()
	stageSet := func(kind string, n int, id func(int) uint32, all bool) error {
		seen := make([]bool, stages)
		for i := range n {
			s := id(i)
			if int64(s) >= int64(stages) {
				return cerr(int(s), fmt.Errorf("%s fragment %d: stage %d, the case has stages 0..%d", kind, i, s, stages-1))
			}
			if seen[s] {
				return cerr(int(s), fmt.Errorf("%s: stage %d given twice", kind, s))
			}
			seen[s] = true
		}
		if all {
			for s, ok := range seen {
				if !ok {
					return cerr(s, fmt.Errorf("%s: stage %d missing: want one StageCuts per stage 0..%d (it may hold no cuts)", kind, s, stages-1))
				}
			}
		}
		return nil
	}
	if err := stageSet("cuts", len(cuts), func(i int) uint32 { return cuts[i].StageID }, true); err != nil {
		return err
	}
	for i := range cuts {
		sc := &cuts[i]
		s := int(sc.StageID)
		if int(sc.StateDimension) != dim {
			return cerr(s, fmt.Errorf("cuts: state_dimension %d, the case's is %d", sc.StateDimension, dim))
		}
		if len(sc.Cuts) > int(sc.Capacity) {
			return cerr(s, fmt.Errorf("cuts: %d cuts over capacity %d", len(sc.Cuts), sc.Capacity))
		}
		for k := range sc.Cuts {
			c := &sc.Cuts[k]
			if int64(c.Iteration) > int64(iteration) {
				return cerr(s, fmt.Errorf("cut %d (cut_id %d) has iteration %d, after the checkpoint", k, c.CutID, c.Iteration))
			}
			if c.SlotIndex >= sc.Capacity {
				return cerr(s, fmt.Errorf("cut %d (cut_id %d) has slot_index %d, capacity %d", k, c.CutID, c.SlotIndex, sc.Capacity))
			}
		}
	}
	if w.id.Rank != 0 {
		if len(basis) > 0 || len(states) > 0 || meta != nil {
			return cerr(-1, errors.New("only the root rank (rank 0) writes basis, states and metadata fragments"))
		}
		return nil
	}
	if meta == nil {
		return cerr(-1, errors.New("the root rank (rank 0) must give the checkpoint metadata"))
	}
	switch {
	case meta.Iteration != iteration:
		return cerr(-1, fmt.Errorf("metadata iteration %d", meta.Iteration))
	case meta.NumStages != stages:
		return cerr(-1, fmt.Errorf("metadata num_stages %d, the case has %d", meta.NumStages, stages))
	case meta.StateDimension != dim:
		return cerr(-1, fmt.Errorf("metadata state_dimension %d, the case's is %d", meta.StateDimension, dim))
	case len(meta.Capacity) != stages || len(meta.WarmStartCounts) != stages:
		return cerr(-1, fmt.Errorf("metadata has %d capacities and %d warm-start counts, want one per stage (%d)", len(meta.Capacity), len(meta.WarmStartCounts), stages))
	}
	if err := stageSet("basis", len(basis), func(i int) uint32 { return basis[i].StageID }, false); err != nil {
		return err
	}
	if err := stageSet("states", len(states), func(i int) uint32 { return states[i].StageID }, false); err != nil {
		return err
	}
	for i := range states {
		if int(states[i].StateDimension) != dim {
			return cerr(int(states[i].StageID), fmt.Errorf("states: state_dimension %d, the case's is %d", states[i].StateDimension, dim))
		}
	}
	return nil
}
