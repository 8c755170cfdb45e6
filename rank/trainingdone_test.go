package rank_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// trainRank opens a training writer for rank r of world, makes iterations
// from..to durable and, when ckpt > 0, writes its checkpoint of that
// iteration. The caller closes the writer (or leaves it open).
func trainRank(t *testing.T, out string, c *manifest.Case, r, world, from, to, ckpt int, cfg manifest.TrainingConfig) *rank.TrainingWriter {
	t.Helper()
	id := explicit(t, r, world)
	w := openTraining(t, out, id, c, cfg)
	ctx := context.Background()
	for it := from; it <= to; it++ {
		if err := w.WriteIteration(ctx, iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	if ckpt > 0 {
		var err error
		if r == 0 {
			cuts, basis, states, meta := rootCheckpoint(c, ckpt)
			err = w.WriteCheckpoint(ctx, ckpt, cuts, basis, states, meta)
		} else {
			cuts := synth.CheckpointCutsCap(c, trainSeed, ckpt, 10, 8, r, world, false)
			err = w.WriteCheckpoint(ctx, ckpt, cuts, nil, nil, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func closeTerminated(t *testing.T, w *rank.TrainingWriter, term string) {
	t.Helper()
	if err := w.CloseTerminated(term); err != nil {
		t.Fatal(err)
	}
}

func trainingDone(t *testing.T, out string, c *manifest.Case, cfg manifest.TrainingConfig) rank.TrainingState {
	t.Helper()
	st, err := rank.TrainingDone(context.Background(), out, c, rank.TrainingOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTrainingDone: the decision a rerun's rank makes before training,
// against every state a training can be left in. A done training is done
// whatever the asking rank's world size; an unfinished one is not, and
// OpenTraining still refuses to resume it with another world size.
func TestTrainingDone(t *testing.T) {
	c := tinyCase(t)
	cfg := trainCfg(4, 8)
	const world = 2
	// full writes a 2-rank training of iterations 1..4 in two attempts:
	// 1..2 with checkpoint 2, closed without a reason (not done by
	// itself), then 3..4 with checkpoint 4, closed with term.
	full := func(t *testing.T, term string) string {
		out := t.TempDir()
		for r := range world {
			trainRank(t, out, c, r, world, 1, 2, 2, cfg).Close()
			closeTerminated(t, trainRank(t, out, c, r, world, 3, 4, 4, cfg), term)
		}
		return out
	}

	t.Run("no training", func(t *testing.T) {
		// A first run (nothing there yet), and a study whose ranks only
		// simulated.
		simOnly := t.TempDir()
		w, err := rank.Open(context.Background(), simOnly, explicit(t, 0, 1), c, rank.Options{Scenarios: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, out := range []string{filepath.Join(t.TempDir(), "new"), simOnly} {
			st := trainingDone(t, out, c, cfg)
			if st.Done || st.World != 0 || st.Reason != "no training journal" {
				t.Errorf("%s: %+v, want not done, world 0, no training journal", out, st)
			}
		}
	})

	t.Run("complete", func(t *testing.T) {
		out := full(t, rank.TerminationIterationLimit)
		st := trainingDone(t, out, c, cfg)
		if !st.Done || st.World != world || st.Iterations != 4 || st.Termination != rank.TerminationIterationLimit || st.Reason != "" {
			t.Fatalf("%+v, want done: world 2, 4 iterations, iteration_limit", st)
		}
		// The limit comes from the journals when the caller gives none;
		// a lower limit than recorded is still done (nothing to add).
		for _, k := range []int{0, 3} {
			nc := cfg
			nc.MaxIterations = k
			if st := trainingDone(t, out, c, nc); !st.Done {
				t.Errorf("max_iterations %d: %+v, want done", k, st)
			}
		}
		// A caller that raises the limit continues the training: not done.
		if st := trainingDone(t, out, c, trainCfg(6, 8)); st.Done || !strings.Contains(st.Reason, "4 iterations of max_iterations 6") {
			t.Errorf("max_iterations 6: %+v, want not done (4 of 6)", st)
		}
		// The decision does not depend on the asker's world size, but
		// OpenTraining keeps refusing another one: a rerun must ask first.
		var me *rank.CaseMismatchError
		_, err := rank.OpenTraining(context.Background(), out, explicit(t, 0, 3), c, rank.TrainingOptions{Config: cfg})
		if !errors.As(err, &me) || me.What != "training world size" {
			t.Errorf("OpenTraining with world 3 on a done training: %v, want the world-size refusal", err)
		}
	})

	t.Run("converged early", func(t *testing.T) {
		out := t.TempDir()
		for r := range world {
			closeTerminated(t, trainRank(t, out, c, r, world, 1, 2, 2, cfg), rank.TerminationConverged)
		}
		st := trainingDone(t, out, c, cfg)
		if !st.Done || st.Iterations != 2 || st.Termination != rank.TerminationConverged {
			t.Fatalf("%+v, want done: converged after 2 of 4", st)
		}
	})

	t.Run("solver's own termination", func(t *testing.T) {
		out := t.TempDir()
		for r := range world {
			closeTerminated(t, trainRank(t, out, c, r, world, 1, 3, 0, cfg), "time_limit")
		}
		if st := trainingDone(t, out, c, cfg); !st.Done || st.Termination != "time_limit" {
			t.Fatalf("%+v, want done (the solver stopped: time_limit)", st)
		}
	})

	t.Run("clean close without termination", func(t *testing.T) {
		out := t.TempDir()
		for r := range world {
			trainRank(t, out, c, r, world, 1, 3, 0, cfg).Close()
		}
		if st := trainingDone(t, out, c, cfg); st.Done || !strings.Contains(st.Reason, "3 iterations of max_iterations 4") {
			t.Fatalf("3 of 4, closed without a reason: %+v, want not done", st)
		}
		for r := range world {
			trainRank(t, out, c, r, world, 4, 4, 0, cfg).Close()
		}
		if st := trainingDone(t, out, c, cfg); !st.Done {
			t.Fatalf("4 of 4, closed without a reason: %+v, want done", st)
		}
	})

	t.Run("incomplete", func(t *testing.T) {
		for _, tc := range []struct {
			name, reason string
			build        func(t *testing.T, out string)
		}{
			{"a rank lacks iterations", "rank 1 of 2 lacks iteration 4", func(t *testing.T, out string) {
				closeTerminated(t, trainRank(t, out, c, 0, world, 1, 4, 0, cfg), rank.TerminationIterationLimit)
				trainRank(t, out, c, 1, world, 1, 3, 0, cfg).Close()
			}},
			{"a rank has no journal", "rank 2 of 3 has no training journal", func(t *testing.T, out string) {
				for r := range 2 {
					closeTerminated(t, trainRank(t, out, c, r, 3, 1, 0, 0, cfg), "time_limit")
				}
			}},
			{"the root lacks iterations", "rank 0 of 2 lacks iteration 4", func(t *testing.T, out string) {
				trainRank(t, out, c, 0, world, 1, 3, 0, cfg).Close()
				closeTerminated(t, trainRank(t, out, c, 1, world, 1, 4, 0, cfg), rank.TerminationIterationLimit)
			}},
			{"the root interrupted", "closed interrupted", func(t *testing.T, out string) {
				for r := range world {
					w := trainRank(t, out, c, r, world, 1, 4, 0, cfg)
					if r == 0 {
						w.CloseInterrupted("preempted")
					} else {
						closeTerminated(t, w, rank.TerminationIterationLimit)
					}
				}
			}},
			{"the root still open", "is not closed", func(t *testing.T, out string) {
				for r := range world {
					w := trainRank(t, out, c, r, world, 1, 4, 0, cfg)
					if r != 0 {
						closeTerminated(t, w, rank.TerminationIterationLimit)
					} else {
						t.Cleanup(func() { w.Close() })
					}
				}
			}},
			{"the root's latest attempt interrupted", "closed interrupted", func(t *testing.T, out string) {
				for r := range world {
					closeTerminated(t, trainRank(t, out, c, r, world, 1, 4, 0, cfg), rank.TerminationIterationLimit)
				}
				trainRank(t, out, c, 0, world, 5, 4, 0, cfg).CloseInterrupted("preempted")
			}},
			{"a rank owes its last checkpoint", "rank 1 of 2 lacks the checkpoint of iteration 4", func(t *testing.T, out string) {
				closeTerminated(t, trainRank(t, out, c, 0, world, 1, 4, 4, cfg), rank.TerminationIterationLimit)
				trainRank(t, out, c, 1, world, 1, 4, 2, cfg).Close() // killed before checkpoint 4
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out := t.TempDir()
				tc.build(t, out)
				st := trainingDone(t, out, c, cfg)
				if st.Done || !strings.Contains(st.Reason, tc.reason) {
					t.Fatalf("%+v, want not done: %q", st, tc.reason)
				}
				// Unfinished: resuming with another world size is refused.
				var me *rank.CaseMismatchError
				_, err := rank.OpenTraining(context.Background(), out, explicit(t, 0, st.World+1), c, rank.TrainingOptions{Config: cfg})
				if !errors.As(err, &me) || me.What != "training world size" {
					t.Errorf("OpenTraining with world %d: %v, want the world-size refusal", st.World+1, err)
				}
			})
		}
	})

	t.Run("resumed to done", func(t *testing.T) {
		out := t.TempDir()
		closeTerminated(t, trainRank(t, out, c, 0, world, 1, 4, 4, cfg), rank.TerminationIterationLimit)
		trainRank(t, out, c, 1, world, 1, 2, 0, cfg).Close()
		if st := trainingDone(t, out, c, cfg); st.Done {
			t.Fatalf("before the resume: %+v", st)
		}
		// Rank 1 resumes with its own world size, as today.
		closeTerminated(t, trainRank(t, out, c, 1, world, 3, 4, 4, cfg), rank.TerminationIterationLimit)
		if st := trainingDone(t, out, c, cfg); !st.Done {
			t.Fatalf("after the resume: %+v", st)
		}
	})

	t.Run("mismatch", func(t *testing.T) {
		out := full(t, rank.TerminationIterationLimit)
		var me *rank.CaseMismatchError
		other := *c
		other.Name = "other"
		if _, err := rank.TrainingDone(context.Background(), out, &other, rank.TrainingOptions{Config: cfg}); !errors.As(err, &me) || me.What != "case" {
			t.Errorf("other case: %v", err)
		}
		bad := cfg
		bad.Seed++
		if _, err := rank.TrainingDone(context.Background(), out, c, rank.TrainingOptions{Config: bad}); !errors.As(err, &me) || me.What != "training seed" {
			t.Errorf("other seed: %v", err)
		}
		if _, err := rank.TrainingDone(context.Background(), out, c, rank.TrainingOptions{Config: trainCfg(4, 6)}); !errors.As(err, &me) || me.What != "training forward passes" {
			t.Errorf("other forward passes: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := rank.TrainingDone(ctx, out, c, rank.TrainingOptions{Config: cfg}); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: %v", err)
		}
	})
}
