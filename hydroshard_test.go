package hydroshard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// The study the examples and tests run: the tiny case, 3 training
// iterations of 4 forward passes, a checkpoint at the last one.
const (
	studyIterations = 3
	studyPasses     = 4
	studySeed       = 1
)

func studyConfig() manifest.TrainingConfig {
	return manifest.TrainingConfig{Seed: studySeed, MaxIterations: studyIterations, ForwardPasses: studyPasses, StoppingMode: manifest.StoppingAny, PolicyMode: "fresh"}
}

// runStudy runs world ranks one after the other, each as ExampleOpenRank
// does: training (checkpoint at the last iteration), then simulation of
// its share of scenarios; the last rank leaves its last `short` scenarios
// unwritten.
func runStudy(ctx context.Context, out string, world, scenarios, short int) error {
	for rk := range world {
		id, err := rank.Explicit(rk, world)
		if err != nil {
			return err
		}
		r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &id, CasePath: "tiny", Scenarios: scenarios, Training: studyConfig(), Solver: "example"})
		if err != nil {
			return err
		}
		if err := train(ctx, r); err != nil {
			return errors.Join(err, r.Close(context.Background()))
		}
		skip := 0
		if rk == world-1 {
			skip = short
		}
		if err := simulate(ctx, r, skip); err != nil {
			return err
		}
	}
	return nil
}

// train runs a rank's training (ExampleOpenRank's loop) and closes the
// training writer with its termination.
func train(ctx context.Context, r *hydroshard.Rank) error {
	tw, err := r.Training(ctx)
	if err != nil {
		return err
	}
	id, c := r.Identity(), r.Case()
	for it := tw.LastIteration() + 1; it <= studyIterations; it++ {
		if err := tw.WriteIteration(ctx, synth.TrainingIteration(c, studySeed, it, studyPasses, id.Rank, id.World, 1)); err != nil {
			return err
		}
		if it == studyIterations {
			cuts := synth.CheckpointCutsCap(c, studySeed, it, studyIterations, studyPasses, id.Rank, id.World, false)
			var meta *manifest.PolicyMeta
			if id.Rank == 0 {
				meta = synth.CheckpointMeta(c, studySeed, it, studyIterations, studyPasses, 0)
			}
			if err := tw.WriteCheckpoint(ctx, it, cuts, nil, nil, meta); err != nil {
				return err
			}
		}
	}
	return tw.CloseTerminated(rank.TerminationIterationLimit)
}

// simulate writes the rank's remaining scenarios but the last skip, then
// closes the rank.
func simulate(ctx context.Context, r *hydroshard.Rank, skip ...int) error {
	w, err := r.Simulation(ctx)
	if err != nil {
		return errors.Join(err, r.Close(context.Background()))
	}
	todo := w.Remaining()
	if len(skip) > 0 {
		todo = todo[:len(todo)-skip[0]]
	}
	for _, s := range todo {
		sc, err := synth.Generate(r.Case(), studySeed, s)
		if err == nil {
			err = w.WriteScenario(ctx, sc)
		}
		if err != nil {
			return errors.Join(err, r.Close(context.Background()))
		}
	}
	return r.Close(context.Background())
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// closes returns the close record of every journal in out, by phase
// (manifest.PhaseSimulation "" or PhaseTraining), read with the journal
// package: an independent view of what the writers recorded.
func closes(t *testing.T, out string) map[string][]manifest.CloseInfo {
	t.Helper()
	rels, err := journal.List(vfs.OS(), out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]manifest.CloseInfo{}
	for _, rel := range rels {
		phase := "?"
		var cl *manifest.CloseInfo
		if _, err := journal.ReadFile(vfs.OS(), filepath.Join(out, rel), func(r *manifest.Record) error {
			if r.Open != nil {
				phase = r.Open.Phase
			}
			if r.Close != nil {
				cl = r.Close
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if cl == nil {
			t.Fatalf("%s has no close record", rel)
		}
		got[phase] = append(got[phase], *cl)
	}
	return got
}

// TestRankOptionsMapping: every option of rank.Options and
// rank.TrainingOptions has a field of the same name and type in
// RankOptions (Config is RankOptions.Training), and SimulationOptions and
// TrainingOptions copy each one. An option added to the rank package and
// not here fails this test, naming it.
func TestRankOptionsMapping(t *testing.T) {
	var o hydroshard.RankOptions
	ov := reflect.ValueOf(&o).Elem()
	now := func() time.Time { return time.Unix(7, 0) }
	fsys := vfs.OS()
	for i := range ov.NumField() {
		f := ov.Field(i)
		switch f.Kind() {
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 3))
		case reflect.String:
			f.SetString("v" + ov.Type().Field(i).Name)
		}
	}
	o.Ownership = rank.RoundRobin
	o.Training = studyConfig()
	o.Now = now
	o.FS = fsys
	check := func(name string, got any, rename map[string]string) {
		gv := reflect.ValueOf(got)
		for i := range gv.NumField() {
			gf := gv.Type().Field(i)
			if !gf.IsExported() {
				continue
			}
			src := gf.Name
			if r, ok := rename[src]; ok {
				src = r
			}
			of, ok := ov.Type().FieldByName(src)
			if !ok || of.Type != gf.Type {
				t.Errorf("%s.%s (%s): RankOptions has no field %s of that type: add it and copy it", name, gf.Name, gf.Type, src)
				continue
			}
			want, have := ov.FieldByIndex(of.Index), gv.Field(i)
			switch gf.Type.Kind() {
			case reflect.Func:
				if have.IsNil() || have.Pointer() != want.Pointer() {
					t.Errorf("%s.%s is not RankOptions.%s", name, gf.Name, src)
				}
			default:
				if !reflect.DeepEqual(have.Interface(), want.Interface()) {
					t.Errorf("%s.%s = %v, RankOptions.%s = %v", name, gf.Name, have.Interface(), src, want.Interface())
				}
			}
			if have.IsZero() {
				t.Errorf("%s.%s is zero: the test set every option", name, gf.Name)
			}
		}
	}
	check("rank.Options", o.SimulationOptions(), nil)
	check("rank.TrainingOptions", o.TrainingOptions(), map[string]string{"Config": "Training"})
}

// TestOpenRank: OpenRank takes or detects the identity, takes or loads the
// case (exactly one), reads the rerun list early, and touches nothing on
// disk.
func TestOpenRank(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	tiny, err := manifest.LoadCase("testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	bad := rank.Identity{Rank: 2, World: 2}
	rerun := filepath.Join(dir, "rerun.txt")
	if err := os.WriteFile(rerun, []byte("1\n4\n5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badRerun := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(badRerun, []byte("1\n99\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var idErr *rank.IdentityError
	if _, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Env: noEnv, Case: tiny}); !errors.As(err, &idErr) || idErr.Var != "" {
		t.Errorf("no launcher environment: %v, want a *rank.IdentityError with Var \"\"", err)
	}
	if _, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Env: env(map[string]string{"SLURM_PROCID": "3", "SLURM_NTASKS": "2"}), Case: tiny}); !errors.As(err, &idErr) || idErr.Var != "SLURM_PROCID" {
		t.Errorf("rank beyond the world: %v, want a *rank.IdentityError naming SLURM_PROCID", err)
	}
	if _, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &bad, Case: tiny}); !errors.As(err, &idErr) {
		t.Errorf("a bad explicit identity: %v, want a *rank.IdentityError", err)
	}
	for name, o := range map[string]hydroshard.RankOptions{
		"Case and CasePath": {Env: env(map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}), Case: tiny, CasePath: "tiny"},
		"no case":           {Env: env(map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1"})},
		"unknown case":      {Env: env(map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}), CasePath: filepath.Join(dir, "nowhere")},
		"invalid case":      {Env: env(map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}), Case: &manifest.Case{Version: manifest.CaseVersion, Name: "empty"}},
	} {
		if _, err := hydroshard.OpenRank(ctx, out, o); err == nil {
			t.Errorf("%s: OpenRank accepted it", name)
		}
	}
	var rlErr *rank.RerunListError
	if _, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &rank.Identity{Rank: 0, World: 1}, Case: tiny, Scenarios: 8, RerunFile: badRerun}); !errors.As(err, &rlErr) || rlErr.Line != 2 {
		t.Errorf("a bad rerun list: %v, want a *rank.RerunListError naming line 2", err)
	}

	r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Env: env(map[string]string{"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "77", "SLURM_RESTART_COUNT": "2"}), CasePath: "tiny", Scenarios: 8, RerunFile: rerun})
	if err != nil {
		t.Fatal(err)
	}
	if id := r.Identity(); id.Rank != 1 || id.World != 2 || id.JobID != "77" || id.Attempt != 2 || id.Launcher != "slurm" {
		t.Errorf("identity %+v, want rank 1 of 2, job 77, attempt 2, slurm", id)
	}
	if r.Case().Hash() != tiny.Hash() {
		t.Errorf("CasePath tiny loaded case %q, hash %s; testdata/cases/tiny has %s", r.Case().Name, r.Case().Hash(), tiny.Hash())
	}
	// Contiguous on the list's positions: rank 1 of 2 owns the second half.
	if got := r.Owned(); !slices.Equal(got, []int{5}) {
		t.Errorf("Owned %v, want [5] (rank 1 of 2's share of the rerun list 1, 4, 5)", got)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenRank touched the output directory: %v", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Errorf("Close of a rank that opened nothing: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close touched the output directory: %v", err)
	}
	// LoadCase: a file, a directory, an example case.
	for _, name := range []string{"testdata/cases/tiny/case.json", "testdata/cases/tiny", "tiny"} {
		c, err := hydroshard.LoadCase(name)
		if err != nil || c.Hash() != tiny.Hash() {
			t.Errorf("LoadCase(%q): %v", name, err)
		}
	}
}

// TestRankLifecycle: the writers open on first use and once; Close closes
// what the caller left open (and not what it closed), once; after it,
// everything is rank.ErrClosed. The journals say how each closed.
func TestRankLifecycle(t *testing.T) {
	ctx := testCtx(t)
	out := t.TempDir()
	id, err := rank.Explicit(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &id, CasePath: "tiny", Scenarios: 3, Training: studyConfig(), Queue: 2, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Simulation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w2, err := r.Simulation(ctx); err != nil || w2 != w {
		t.Errorf("a second Simulation gave another writer (%v)", err)
	}
	tw, err := r.Training(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tw2, err := r.Training(ctx); err != nil || tw2 != tw {
		t.Errorf("a second Training gave another writer (%v)", err)
	}
	if err := tw.WriteIteration(ctx, synth.TrainingIteration(r.Case(), studySeed, 1, studyPasses, 0, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := tw.CloseTerminated(rank.TerminationConverged); err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Remaining() {
		sc, err := synth.Generate(r.Case(), studySeed, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteScenario(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	// The queue may still hold scenarios: Close waits for them.
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v (the training writer closed by the caller is no error)", err)
	}
	if got := w.Committed(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("committed %v after Close, want [0 1 2]", got)
	}
	if err := r.Close(ctx); !errors.Is(err, rank.ErrClosed) {
		t.Errorf("second Close: %v, want rank.ErrClosed", err)
	}
	if _, err := r.Simulation(ctx); !errors.Is(err, rank.ErrClosed) {
		t.Errorf("Simulation after Close: %v, want rank.ErrClosed", err)
	}
	if _, err := r.Training(ctx); !errors.Is(err, rank.ErrClosed) {
		t.Errorf("Training after Close: %v, want rank.ErrClosed", err)
	}
	if err := w.Flush(ctx); !errors.Is(err, rank.ErrClosed) {
		t.Errorf("the simulation writer after Rank.Close: Flush %v, want rank.ErrClosed", err)
	}
	got := closes(t, out)
	sim, tr := got[manifest.PhaseSimulation], got[manifest.PhaseTraining]
	if len(sim) != 1 || sim[0].Status != manifest.StatusClean || sim[0].Committed != 3 {
		t.Errorf("simulation journal closed %+v, want one clean close with 3 committed", sim)
	}
	if len(tr) != 1 || tr[0].Status != manifest.StatusClean || tr[0].Termination != rank.TerminationConverged {
		t.Errorf("training journal closed %+v, want one clean close, termination converged (the caller's CloseTerminated)", tr)
	}

	// Close closes a training writer the caller left open: clean, no
	// termination.
	out2 := t.TempDir()
	r2, err := hydroshard.OpenRank(ctx, out2, hydroshard.RankOptions{Identity: &id, CasePath: "tiny", Training: studyConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Training(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if tr := closes(t, out2)[manifest.PhaseTraining]; len(tr) != 1 || tr[0].Status != manifest.StatusClean || tr[0].Termination != "" {
		t.Errorf("training journal left open, closed by Rank.Close: %+v, want one clean close without termination", tr)
	}
}

// TestRankSignals: one HandleSignals covers the writers open when it is
// called and those opened later; a writer opened after the signal (whose
// own handler could not see it) is still closed as interrupted.
func TestRankSignals(t *testing.T) {
	ctx := testCtx(t)
	id, err := rank.Explicit(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T) (*hydroshard.Rank, string) {
		out := t.TempDir()
		r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &id, CasePath: "tiny", Scenarios: 4, Training: studyConfig()})
		if err != nil {
			t.Fatal(err)
		}
		return r, out
	}
	signal := func(t *testing.T, sctx context.Context) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-sctx.Done():
		case <-ctx.Done():
			t.Fatal("SIGTERM did not cancel the context of HandleSignals")
		}
	}

	t.Run("writers opened before and after HandleSignals", func(t *testing.T) {
		r, out := open(t)
		tw, err := r.Training(ctx) // open before
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := r.HandleSignals(ctx)
		defer stop()
		w, err := r.Simulation(sctx) // opened after
		if err != nil {
			t.Fatal(err)
		}
		sc, err := synth.Generate(r.Case(), studySeed, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteScenario(sctx, sc); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(sctx); err != nil { // committed before the signal
			t.Fatal(err)
		}
		signal(t, sctx)
		if !r.Interrupted() || !w.Interrupted() || !tw.Interrupted() {
			t.Errorf("after SIGTERM: rank %v, simulation writer %v, training writer %v interrupted; want all", r.Interrupted(), w.Interrupted(), tw.Interrupted())
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		got := closes(t, out)
		for _, phase := range []string{manifest.PhaseSimulation, manifest.PhaseTraining} {
			if c := got[phase]; len(c) != 1 || c[0].Status != manifest.StatusInterrupted {
				t.Errorf("phase %q closed %+v, want one interrupted close", phase, c)
			}
		}
		if c := got[manifest.PhaseTraining]; len(c) == 1 && c[0].Termination != rank.TerminationSignal {
			t.Errorf("training termination %q, want %q", c[0].Termination, rank.TerminationSignal)
		}
		if c := got[manifest.PhaseSimulation]; len(c) == 1 && c[0].Committed != 1 {
			t.Errorf("simulation committed %d, want 1 (the scenario flushed before the signal)", c[0].Committed)
		}
	})

	t.Run("writer opened after the signal", func(t *testing.T) {
		r, out := open(t)
		sctx, stop := r.HandleSignals(ctx)
		defer stop()
		signal(t, sctx)
		if _, err := r.Simulation(sctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Simulation with the signalled context: %v, want context.Canceled", err)
		}
		w, err := r.Simulation(ctx) // a context the signal did not end
		if err != nil {
			t.Fatal(err)
		}
		if !w.Interrupted() {
			t.Fatal("the writer opened after the signal is not interrupted")
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if c := closes(t, out)[manifest.PhaseSimulation]; len(c) != 1 || c[0].Status != manifest.StatusInterrupted || c[0].Reason != "signal" {
			t.Errorf("closed %+v, want one interrupted close, reason signal", c)
		}
	})
}

// TestMergeRerunLoop: Merge writes the rerun list (exactly the missing
// scenarios, read back by rank.ReadRerunList) unless the outcome is
// corrupt; a rerun rank given it owns exactly those; the second merge is
// complete and writes an empty list. The report is merge.Run's, exit code
// included.
func TestMergeRerunLoop(t *testing.T) {
	ctx := testCtx(t)
	out := t.TempDir()
	if err := runStudy(ctx, out, 2, 7, 2); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "rerun.txt")
	rep, err := hydroshard.Merge(ctx, out, hydroshard.MergeOptions{RerunList: list})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != merge.Partial || rep.ExitCode() != 3 || !slices.Equal(rep.Missing, []int{5, 6}) {
		t.Fatalf("first merge: %s (exit %d), missing %v; want partial (3), missing [5 6]", rep.Status, rep.ExitCode(), rep.Missing)
	}
	ids, err := rank.ReadRerunList(list, 7)
	if err != nil || !slices.Equal(ids, []int{5, 6}) {
		t.Fatalf("rerun list %v (%v), want [5 6]", ids, err)
	}
	// Two rerun ranks share the list.
	var owned []int
	for rk := range 2 {
		id, err := rank.Explicit(rk, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &id, CasePath: "tiny", Scenarios: 7, RerunFile: list})
		if err != nil {
			t.Fatal(err)
		}
		owned = append(owned, r.Owned()...)
		if err := simulate(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(owned, []int{5, 6}) {
		t.Errorf("the rerun ranks own %v, want [5 6]", owned)
	}
	rep, err = hydroshard.Merge(ctx, out, hydroshard.MergeOptions{RerunList: list})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != merge.Complete || rep.ExitCode() != 0 || rep.Committed != 7 {
		t.Fatalf("second merge: %s (exit %d), %d committed; want complete (0), 7", rep.Status, rep.ExitCode(), rep.Committed)
	}
	if b, err := os.ReadFile(list); err != nil || len(b) != 0 {
		t.Errorf("rerun list after a complete merge: %q (%v), want empty", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, layout.SimDir, layout.SuccessName)); err != nil {
		t.Errorf("no simulation/_SUCCESS after a complete merge: %v", err)
	}

	// Corrupt: a committed file altered. Merge says so and leaves the
	// list alone; Verify names the file.
	if err := os.WriteFile(list, []byte("sentinel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(out, "simulation", "costs", "scenario_id=3", "data.parquet")
	if err := os.WriteFile(victim, []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := hydroshard.Verify(ctx, out, merge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || len(v.Problems) == 0 || !strings.Contains(v.Problems[0].Path, "scenario_id=3") {
		t.Errorf("Verify after altering %s: ok %v, problems %v", victim, v.OK, v.Problems)
	}
	rep, err = hydroshard.Merge(ctx, out, hydroshard.MergeOptions{RerunList: list})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != merge.Corrupt || rep.ExitCode() != 2 {
		t.Errorf("merge after altering a committed file: %s (exit %d), want corrupt (2)", rep.Status, rep.ExitCode())
	}
	if b, err := os.ReadFile(list); err != nil || string(b) != "sentinel\n" {
		t.Errorf("a corrupt merge wrote the rerun list: %q (%v)", b, err)
	}
	if _, err := hydroshard.Merge(ctx, t.TempDir(), hydroshard.MergeOptions{}); !errors.Is(err, merge.ErrNoJournals) {
		t.Errorf("Merge of an empty directory: %v, want merge.ErrNoJournals", err)
	}
}

// mergedStudy runs and merges a complete two-rank study with training and
// a checkpoint, and returns its directory.
func mergedStudy(t *testing.T) string {
	t.Helper()
	ctx := testCtx(t)
	out := t.TempDir()
	if err := runStudy(ctx, out, 2, 4, 0); err != nil {
		t.Fatal(err)
	}
	rep, err := hydroshard.Merge(ctx, out, hydroshard.MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != merge.Complete || rep.Training == nil || rep.Training.Policy == nil || rep.Training.Policy.Iteration != studyIterations {
		t.Fatalf("merge: %s, training %+v; want complete, with the policy of iteration %d", rep.Status, rep.Training, studyIterations)
	}
	return out
}

// The JSON documents a merge writes, with the type each is decoded into.
var mergedDocuments = []struct {
	rel  string
	into func() any
	// cobre: Cobre's format (its readers ignore unknown keys, and so do
	// hydroshard's); else hydroshard's own.
	cobre bool
}{
	{"simulation/_manifest.json", func() any { return new(manifest.SimManifest) }, false},
	{"simulation/metadata.json", func() any { return new(manifest.SimMetadata) }, true},
	{"simulation/summary.json", func() any { return new(manifest.Summary) }, false},
	{"training/metadata.json", func() any { return new(manifest.TrainingMetadata) }, true},
	{"training/_manifest.json", func() any { return new(manifest.TrainingManifest) }, false},
	{"policy/metadata.json", func() any { return new(policy.Metadata) }, true},
}

// TestMergedDocumentsRoundTrip: every JSON document of a merged study
// decodes strictly (no key its type lacks) into its type, and encodes
// back (manifest.Marshal) to the very bytes on disk: the types are the
// documents, key for key.
func TestMergedDocumentsRoundTrip(t *testing.T) {
	out := mergedStudy(t)
	for _, d := range mergedDocuments {
		t.Run(d.rel, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(out, d.rel))
			if err != nil {
				t.Fatal(err)
			}
			v := d.into()
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("strict decoding into %T: %v", v, err)
			}
			again, err := manifest.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, raw) {
				t.Errorf("%T encodes back to other bytes:\n%s\nthe file:\n%s", v, again, raw)
			}
		})
	}
	// The simulation manifest's own reader, as verify uses it.
	raw, err := os.ReadFile(filepath.Join(out, "simulation/_manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := manifest.ReadSimManifest("_manifest.json", raw); err != nil || m.Status != manifest.StatusComplete {
		t.Errorf("ReadSimManifest: %v", err)
	}
}

// TestReadersOnUnknownKeys: how the readers hydroshard ships treat a key
// they do not know, per document (docs/api.md, "Serialised types"):
// refused in simulation/_manifest.json (ours, strict: verify fails);
// tolerated in Cobre's documents (policy/metadata.json by policy.Open,
// training/metadata.json by verify); refused in training/_manifest.json
// (ours, strict, like the simulation's).
func TestReadersOnUnknownKeys(t *testing.T) {
	ctx := testCtx(t)
	withKey := func(t *testing.T, out, rel string) func() {
		t.Helper()
		p := filepath.Join(out, rel)
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.IndexByte(raw, '{')
		if i < 0 {
			t.Fatalf("%s is not a JSON object", rel)
		}
		edited := append(append(append([]byte{}, raw[:i+1]...), `"a_key_from_the_future": 1,`...), raw[i+1:]...)
		if err := os.WriteFile(p, edited, 0o644); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := os.WriteFile(p, raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := mergedStudy(t)
	verify := func(t *testing.T) (*merge.VerifyReport, error) {
		t.Helper()
		return hydroshard.Verify(ctx, out, merge.Options{Verify: merge.VerifyFull})
	}
	if v, err := verify(t); err != nil || !v.OK {
		t.Fatalf("verify of the untouched study: %v %+v", err, v)
	}

	t.Run("simulation/_manifest.json refused", func(t *testing.T) {
		defer withKey(t, out, "simulation/_manifest.json")()
		if _, err := verify(t); err == nil || !strings.Contains(err.Error(), "a_key_from_the_future") {
			t.Errorf("verify: %v, want the unknown key refused, named", err)
		}
	})
	t.Run("training/metadata.json tolerated", func(t *testing.T) {
		defer withKey(t, out, "training/metadata.json")()
		if v, err := verify(t); err != nil || !v.OK {
			t.Errorf("verify: %v %+v, want ok", err, v)
		}
	})
	t.Run("policy/metadata.json tolerated", func(t *testing.T) {
		defer withKey(t, out, "policy/metadata.json")()
		c, err := hydroshard.LoadCase("tiny")
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Open(filepath.Join(out, "policy"), policy.Expect{StateDimension: c.StateDimension(), NumStages: c.Stages})
		if err != nil {
			t.Fatalf("policy.Open: %v, want the unknown key ignored", err)
		}
		if len(p.Stages) != c.Stages {
			t.Errorf("policy.Open: %d stages, want %d", len(p.Stages), c.Stages)
		}
	})
	t.Run("training/_manifest.json refused", func(t *testing.T) {
		defer withKey(t, out, "training/_manifest.json")()
		if v, err := verify(t); err != nil || v.OK {
			t.Errorf("verify: %v %+v: want a problem (unknown key in training/_manifest.json)", err, v)
		}
	})
}
