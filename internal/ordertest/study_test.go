package ordertest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// out is the study's output directory inside each in-memory file system.
const out = "/study/out"

const (
	seed   = 7
	passes = 2 // forward passes per training iteration
)

func tinyCase(t testing.TB) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase("../../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// study is a one-rank study: an optional training (iterations, with one
// checkpoint), then the simulation of every scenario.
type study struct {
	c          *manifest.Case
	scenarios  int
	iterations int // 0: no training
	checkpoint int // the iteration that takes the checkpoint (0: none)
	opts       rank.Options
	flushEvery int // Flush after every so many scenarios (0: only Close)
}

// marker marks the log when a call returned nil; nil marks nothing.
type marker func(label string)

func (m marker) mark(label string) {
	if m != nil {
		m(label)
	}
}

// run is one attempt of the rank on fsys: training after its last durable
// iteration (and the checkpoint it owes), then the scenarios not committed
// yet. It stops at the first error.
func (st study) run(ctx context.Context, fsys vfs.FS, attempt int, mark marker) error {
	id, err := rank.Explicit(0, 1)
	if err != nil {
		return err
	}
	id.Attempt = attempt
	if st.iterations > 0 {
		if err := st.train(ctx, fsys, id, mark); err != nil {
			return err
		}
	}
	opts := st.opts
	opts.Scenarios, opts.FS = st.scenarios, fsys
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	w, err := rank.Open(ctx, out, id, st.c, opts)
	if err != nil {
		return err
	}
	mark.mark("rank.Open returned")
	all := make([]int, st.scenarios)
	for i := range all {
		all[i] = i
	}
	var werr error
	for i, s := range w.Pending(all) {
		sc, err := synth.Generate(st.c, seed, s)
		if err != nil {
			return errors.Join(err, w.Close())
		}
		if werr = w.WriteScenario(ctx, sc); werr != nil {
			break
		}
		if st.flushEvery > 0 && (i+1)%st.flushEvery == 0 {
			if werr = w.Flush(ctx); werr != nil {
				break
			}
			mark.mark("Flush returned")
		}
	}
	cerr := w.Close()
	if werr == nil && cerr == nil {
		mark.mark("Close returned")
	}
	return errors.Join(werr, cerr)
}

func (st study) train(ctx context.Context, fsys vfs.FS, id rank.Identity, mark marker) error {
	cfg := manifest.TrainingConfig{Seed: seed, MaxIterations: st.iterations, ForwardPasses: passes, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
	tw, err := rank.OpenTraining(ctx, out, id, st.c, rank.TrainingOptions{Config: cfg, FS: fsys})
	if err != nil {
		return err
	}
	mark.mark("rank.OpenTraining returned")
	err = func() error {
		if st.checkpoint > 0 && tw.LastIteration() >= st.checkpoint {
			last, err := tw.LastCheckpoint()
			if err != nil {
				return err
			}
			if last < st.checkpoint {
				if err := st.writeCheckpoint(ctx, tw); err != nil {
					return err
				}
				mark.mark("WriteCheckpoint returned")
			}
		}
		for it := tw.LastIteration() + 1; it <= st.iterations; it++ {
			if err := tw.WriteIteration(ctx, synth.TrainingIteration(st.c, seed, it, passes, id.Rank, id.World, 1)); err != nil {
				return err
			}
			mark.mark("WriteIteration returned")
			if it == st.checkpoint {
				if err := st.writeCheckpoint(ctx, tw); err != nil {
					return err
				}
				mark.mark("WriteCheckpoint returned")
			}
		}
		return nil
	}()
	if err != nil {
		return errors.Join(err, tw.Close())
	}
	if err := tw.CloseTerminated(rank.TerminationIterationLimit); err != nil {
		return err
	}
	mark.mark("CloseTerminated returned")
	return nil
}

func (st study) writeCheckpoint(ctx context.Context, tw *rank.TrainingWriter) error {
	it := st.checkpoint
	cuts := synth.CheckpointCutsCap(st.c, seed, it, st.iterations, passes, 0, 1, true)
	active := make([]int, len(cuts))
	for s := range cuts {
		for _, cut := range cuts[s].Cuts {
			if cut.IsActive {
				active[s]++
			}
		}
	}
	basis := synth.CheckpointBasis(st.c, seed, it, active)
	meta := synth.CheckpointMeta(st.c, seed, it, st.iterations, passes, 0)
	return tw.WriteCheckpoint(ctx, it, cuts, basis, nil, meta)
}

// mergeOptions: a dead writer's lease names this test's own pid, alive,
// renewed a moment ago; here its process is judged gone and the grace is
// as short as can be (as in internal/crashtest).
func mergeOptions(fsys vfs.FS) merge.Options {
	return merge.Options{FS: fsys, Workers: 1, Lease: lease.Options{Grace: time.Nanosecond, Alive: func(int) bool { return false }}}
}

// runMerge runs the merge on a Recorder and marks its return. A merge
// that fails, or finds the output corrupt, fails t (after the caller has
// reported what the Checker found in the logs before it).
func runMerge(t *testing.T, r *vfs.Recorder) *merge.Report {
	t.Helper()
	rep, err := merge.Run(context.Background(), out, mergeOptions(r))
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if rep.Outcome == merge.Corrupt || rep.Outcome == merge.Running {
		t.Fatalf("merge outcome %v: %v", rep.Outcome, rep.Problems)
	}
	r.Mark("merge.Run returned")
	return rep
}

// clean fails t with every violation the Checker found after the first
// from (those before were reported already) and returns the count, for
// the next call.
func clean(t *testing.T, c *Checker, from int) int {
	t.Helper()
	v := c.Violations()
	if len(v) <= from {
		return len(v)
	}
	var b strings.Builder
	for _, x := range v[from:] {
		b.WriteString("\n  " + x.String())
	}
	t.Errorf("%d protocol violations:%s", len(v)-from, b.String())
	return len(v)
}
