package rank_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

const trainSeed = 3

func trainCfg(k, fp int) manifest.TrainingConfig {
	return manifest.TrainingConfig{Seed: trainSeed, MaxIterations: k, ForwardPasses: fp, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
}

func openTraining(t *testing.T, out string, id rank.Identity, c *manifest.Case, cfg manifest.TrainingConfig) *rank.TrainingWriter {
	t.Helper()
	return openTrainingFS(t, out, id, c, cfg, nil)
}

// openTrainingFS is openTraining on fsys (nil: the OS).
func openTrainingFS(t *testing.T, out string, id rank.Identity, c *manifest.Case, cfg manifest.TrainingConfig, fsys vfs.FS) *rank.TrainingWriter {
	t.Helper()
	w, err := rank.OpenTraining(context.Background(), out, id, c, rank.TrainingOptions{Config: cfg, Threads: 2, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// iter is a valid record of iteration it for the writer's rank.
func iter(c *manifest.Case, id rank.Identity, it int) manifest.IterationInfo {
	return synth.TrainingIteration(c, trainSeed, it, 8, id.Rank, id.World, 2)
}

// trainingJournal is what one training journal holds.
type trainingJournal struct {
	path  string
	open  manifest.OpenInfo
	iters []manifest.IterationInfo
	close *manifest.CloseInfo
}

// readTraining reads every training journal of out (failing on damage)
// and counts the durable records per (rank, iteration).
func readTraining(t *testing.T, out string) ([]trainingJournal, map[[2]int]int) {
	t.Helper()
	var js []trainingJournal
	count := map[[2]int]int{}
	files, err := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		var j trainingJournal
		_, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			switch {
			case r.Open != nil:
				j.open = *r.Open
			case r.Iteration != nil:
				j.iters = append(j.iters, *r.Iteration)
				count[[2]int{j.open.Rank, r.Iteration.Iteration}]++
			case r.Close != nil:
				j.close = r.Close
			}
			return nil
		})
		if err != nil {
			t.Fatalf("journal %s: %v", p, err)
		}
		if j.open.Phase == manifest.PhaseTraining {
			if !strings.Contains(filepath.Base(p), "."+layout.TrainingTag+".") {
				t.Errorf("training journal %s: name lacks .%s.", p, layout.TrainingTag)
			}
			j.path = p
			js = append(js, j)
		}
	}
	return js, count
}

// exactlyOnce checks that every rank of world recorded iterations 1..k
// exactly once each, and nothing else.
func exactlyOnce(t *testing.T, count map[[2]int]int, world, k int) {
	t.Helper()
	for r := range world {
		for it := 1; it <= k; it++ {
			if n := count[[2]int{r, it}]; n != 1 {
				t.Errorf("rank %d iteration %d recorded %d times, want once", r, it, n)
			}
		}
	}
	if len(count) != world*k {
		t.Errorf("%d (rank, iteration) records, want %d: %v", len(count), world*k, count)
	}
}

func TestTrainingWriterOrder(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	id := explicit(t, 0, 1)
	ctx := context.Background()
	w := openTraining(t, out, id, c, trainCfg(4, 8))
	if w.LastIteration() != 0 || w.ResumedFrom() != 0 {
		t.Fatalf("fresh writer: last %d resumed %d", w.LastIteration(), w.ResumedFrom())
	}
	var ie *rank.IterationError
	err := w.WriteIteration(ctx, iter(c, id, 2))
	if !errors.Is(err, rank.ErrIterationOrder) || !errors.As(err, &ie) || ie.Rank != 0 || ie.Iteration != 2 ||
		!strings.Contains(err.Error(), "rank 0 iteration 2") || !strings.Contains(err.Error(), "last durable iteration is 0, the next must be 1") {
		t.Fatalf("iteration 2 first: %v", err)
	}
	for it := 1; it <= 2; it++ {
		if err := w.WriteIteration(ctx, iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	err = w.WriteIteration(ctx, iter(c, id, 2))
	if !errors.Is(err, rank.ErrIterationOrder) || !strings.Contains(err.Error(), "already durable") || !strings.Contains(err.Error(), "last durable iteration is 2, the next must be 3") {
		t.Fatalf("iteration 2 again: %v", err)
	}
	// Refused iterations leave the writer usable.
	for it := 3; it <= 4; it++ {
		if err := w.WriteIteration(ctx, iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteIteration(ctx, iter(c, id, 5)); err == nil || !strings.Contains(err.Error(), "beyond max_iterations 4") {
		t.Fatalf("iteration 5 of 4: %v", err)
	}
	if err := w.CloseTerminated(rank.TerminationIterationLimit); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteIteration(ctx, iter(c, id, 5)); err == nil {
		t.Fatal("WriteIteration after Close accepted")
	}
	js, count := readTraining(t, out)
	exactlyOnce(t, count, 1, 4)
	j := js[0]
	if j.open.Phase != manifest.PhaseTraining || j.open.Training == nil || *j.open.Training != trainCfg(4, 8) ||
		j.open.Scenarios != 8 || j.open.CaseHash != c.Hash() || j.open.Case == nil || j.open.Threads != 2 {
		t.Errorf("open record %+v", j.open)
	}
	want := manifest.CloseInfo{Status: manifest.StatusClean, Committed: 4, Termination: rank.TerminationIterationLimit}
	if j.close == nil || *j.close != want {
		t.Errorf("close %+v, want %+v", j.close, want)
	}
	// The records hold exactly what was written.
	for i, got := range j.iters {
		if w := iter(c, id, i+1); !reflect.DeepEqual(got, w) {
			t.Errorf("iteration %d: journal has %+v, wrote %+v", i+1, got, w)
		}
	}
}

// TestTrainingRowRules: each broken row is refused with an error that says
// what is wrong; nothing is written and the writer stays usable.
func TestTrainingRowRules(t *testing.T) {
	c := tinyCase(t)
	nan := math.NaN()
	cases := []struct {
		name string
		rank int
		edit func(*manifest.IterationInfo)
		want string
	}{
		{"root without convergence", 0, func(i *manifest.IterationInfo) { i.Convergence = nil }, "root rank (rank 0) must record the convergence row"},
		{"non-root with convergence", 1, func(i *manifest.IterationInfo) {
			i.Convergence = synth.TrainingIteration(c, trainSeed, 1, 8, 0, 2, 2).Convergence
		}, "only the root rank"},
		{"convergence of another iteration", 0, func(i *manifest.IterationInfo) { i.Convergence.Iteration = 2 }, "convergence row has iteration 2"},
		{"NaN lower bound", 0, func(i *manifest.IterationInfo) { i.Convergence.LowerBound = nan }, "lower_bound is NaN"},
		{"infinite gap", 0, func(i *manifest.IterationInfo) { g := math.Inf(1); i.Convergence.GapPercent = &g }, "gap_percent is +Inf"},
		{"negative cuts", 0, func(i *manifest.IterationInfo) { i.Convergence.CutsRemoved = -1 }, "cuts_removed is -1"},
		{"no timing", 1, func(i *manifest.IterationInfo) { i.Timing = nil }, "no timing rows"},
		{"timing of another iteration", 1, func(i *manifest.IterationInfo) { i.Timing[1].Iteration = 7 }, "timing row 1 has iteration 7"},
		{"timing without rank", 1, func(i *manifest.IterationInfo) { i.Timing[0].Rank = nil }, "timing row 0 has rank null, want 1"},
		{"timing of another rank", 1, func(i *manifest.IterationInfo) { r := int32(0); i.Timing[2].Rank = &r }, "timing row 2 has rank 0, want 1"},
		{"worker row first", 1, func(i *manifest.IterationInfo) { i.Timing = i.Timing[1:] }, "timing row 0 has worker_id 0, want null"},
		{"workers out of order", 1, func(i *manifest.IterationInfo) { i.Timing[1], i.Timing[2] = i.Timing[2], i.Timing[1] }, "timing row 1 has worker_id 1, want 0"},
		{"second rank-level row", 1, func(i *manifest.IterationInfo) { i.Timing[2].WorkerID = nil }, "timing row 2 has worker_id null, want 1"},
		{"negative time", 1, func(i *manifest.IterationInfo) { i.Timing[1].BackwardWallMs = -3 }, "backward_wall_ms is -3"},
		{"no mpi_rank row", 1, func(i *manifest.IterationInfo) { i.MPIRank = nil }, "no mpi_rank row"},
		{"mpi_rank of another rank", 1, func(i *manifest.IterationInfo) { i.MPIRank.Rank = 0 }, "mpi_rank row has iteration 1 rank 0, want iteration 1 rank 1"},
		{"negative lp solves", 0, func(i *manifest.IterationInfo) { i.MPIRank.LPSolves = -1 }, "lp_solves is -1"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			id := explicit(t, tc.rank, 2)
			cfg := trainCfg(3, 8)
			w := openTraining(t, out, id, c, cfg)
			bad := iter(c, id, 1)
			tc.edit(&bad)
			err := w.WriteIteration(ctx, bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "iteration 1") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if w.LastIteration() != 0 {
				t.Fatalf("a refused iteration moved LastIteration to %d", w.LastIteration())
			}
			if err := w.WriteIteration(ctx, iter(c, id, 1)); err != nil {
				t.Fatalf("writer unusable after a refused row: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, count := readTraining(t, out)
			if !reflect.DeepEqual(count, map[[2]int]int{{tc.rank, 1}: 1}) {
				t.Fatalf("durable records %v, want only the valid one", count)
			}
		})
	}
}

// TestTrainingResume: a second writer (a requeued attempt) continues after
// the last durable iteration of its own rank; other ranks' progress is
// their own; simulation and training journals coexist.
func TestTrainingResume(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	r0, r1 := explicit(t, 0, 2), explicit(t, 1, 2)
	// A simulation journal in the directory is read and ignored.
	sw, err := rank.Open(ctx, out, r0, c, rank.Options{Scenarios: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.WriteScenario(ctx, gen(t, c, 0)); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}

	w0 := openTraining(t, out, r0, c, trainCfg(6, 8))
	w1 := openTraining(t, out, r1, c, trainCfg(6, 8))
	for it := 1; it <= 3; it++ {
		if err := w0.WriteIteration(ctx, iter(c, r0, it)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w1.WriteIteration(ctx, iter(c, r1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w0.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}

	a0 := r0
	a0.Attempt = 1
	v0 := openTraining(t, out, a0, c, trainCfg(6, 8))
	v1 := openTraining(t, out, r1, c, trainCfg(6, 8))
	if v0.LastIteration() != 3 || v0.ResumedFrom() != 3 || v1.LastIteration() != 1 {
		t.Fatalf("resumed at rank 0: %d, rank 1: %d; want 3 and 1", v0.LastIteration(), v1.LastIteration())
	}
	if err := v0.WriteIteration(ctx, iter(c, r0, 3)); !errors.Is(err, rank.ErrIterationOrder) || !strings.Contains(err.Error(), "rank 0 iteration 3") {
		t.Fatalf("iteration 3 again after resume: %v", err)
	}
	for it := 4; it <= 6; it++ {
		if err := v0.WriteIteration(ctx, iter(c, r0, it)); err != nil {
			t.Fatal(err)
		}
	}
	for it := 2; it <= 6; it++ {
		if err := v1.WriteIteration(ctx, iter(c, r1, it)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v0.CloseTerminated(rank.TerminationIterationLimit); err != nil {
		t.Fatal(err)
	}
	if err := v1.CloseTerminated(rank.TerminationIterationLimit); err != nil {
		t.Fatal(err)
	}
	js, count := readTraining(t, out)
	exactlyOnce(t, count, 2, 6)
	committed := map[string]int{}
	for _, j := range js {
		committed[filepath.Base(j.path)[:len("job-local.rank-00000.attempt-0")]] += j.close.Committed
	}
	if want := map[string]int{"job-local.rank-00000.attempt-0": 3, "job-local.rank-00000.attempt-1": 3, "job-local.rank-00001.attempt-0": 6}; !reflect.DeepEqual(committed, want) {
		t.Errorf("close records count %v, want %v", committed, want)
	}
	// The simulation writer still resumes with training journals present.
	sw, err = rank.Open(ctx, out, r0, c, rank.Options{Scenarios: 2})
	if err != nil {
		t.Fatalf("simulation writer after training: %v", err)
	}
	if got := sw.Committed(); !reflect.DeepEqual(got, []int{0}) {
		t.Errorf("simulation resume sees %v committed, want [0]", got)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	// Raising the iteration limit continues the same history; a lower
	// limit than what is durable is refused.
	x := openTraining(t, out, r0, c, trainCfg(8, 8))
	if x.LastIteration() != 6 {
		t.Fatalf("resume with a higher limit at %d, want 6", x.LastIteration())
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rank.OpenTraining(ctx, out, r0, c, rank.TrainingOptions{Config: trainCfg(5, 8)}); err == nil || !strings.Contains(err.Error(), "iteration 6") || !strings.Contains(err.Error(), "max_iterations 5") {
		t.Fatalf("limit below the durable history: %v", err)
	}
}

// TestTrainingMismatch: journals of another case, world size or training
// configuration are refused; so is a history with a gap.
func TestTrainingMismatch(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	id := explicit(t, 0, 2)
	w := openTraining(t, out, id, c, trainCfg(3, 8))
	for it := 1; it <= 3; it++ {
		if err := w.WriteIteration(ctx, iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var me *rank.CaseMismatchError
	other := *c
	other.Name = "other"
	_, err := rank.OpenTraining(ctx, out, id, &other, rank.TrainingOptions{Config: trainCfg(3, 8)})
	if !errors.As(err, &me) || me.What != "case" || !strings.Contains(err.Error(), w.JournalPath()) {
		t.Fatalf("other case: %v", err)
	}
	// The simulation writer refuses the training journal of another case too.
	if _, err := rank.Open(ctx, out, id, &other, rank.Options{Scenarios: 2}); !errors.As(err, &me) || me.What != "case" {
		t.Fatalf("simulation writer, other case: %v", err)
	}
	for _, tc := range []struct {
		id   rank.Identity
		cfg  manifest.TrainingConfig
		what string
	}{
		{explicit(t, 0, 3), trainCfg(3, 8), "training world size"},
		{id, trainCfg(3, 6), "training forward passes"},
		{id, manifest.TrainingConfig{Seed: 9, MaxIterations: 3, ForwardPasses: 8}, "training seed"},
	} {
		_, err := rank.OpenTraining(ctx, out, tc.id, c, rank.TrainingOptions{Config: tc.cfg})
		if !errors.As(err, &me) || me.What != tc.what {
			t.Errorf("%s: %v", tc.what, err)
		}
	}
	// Bad configurations.
	for _, cfg := range []manifest.TrainingConfig{{}, {ForwardPasses: 8, MaxIterations: -1}, {ForwardPasses: -1}, {ForwardPasses: 8, GapTolerance: math.NaN()}} {
		if _, err := rank.OpenTraining(ctx, t.TempDir(), id, c, rank.TrainingOptions{Config: cfg}); err == nil {
			t.Errorf("config %+v accepted for the root", cfg)
		}
	}
	// A non-root rank may omit the configuration (and then records none).
	nr := openTraining(t, t.TempDir(), explicit(t, 1, 2), c, manifest.TrainingConfig{})
	if err := nr.Close(); err != nil {
		t.Fatal(err)
	}
	var open *manifest.OpenInfo
	if _, err := journal.ReadFile(vfs.OS(), nr.JournalPath(), func(r *manifest.Record) error {
		if r.Open != nil {
			open = r.Open
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if open == nil || open.Training != nil || open.Scenarios != 0 || open.Phase != manifest.PhaseTraining {
		t.Errorf("non-root open record without a config: %+v", open)
	}
	// A history with a gap: a second attempt wrote 4..5, then the first
	// attempt's journal (1..3) disappeared.
	a1 := id
	a1.Attempt = 1
	v := openTraining(t, out, a1, c, trainCfg(5, 8))
	for it := 4; it <= 5; it++ {
		if err := v.WriteIteration(ctx, iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(w.JournalPath()); err != nil {
		t.Fatal(err)
	}
	_, err = rank.OpenTraining(ctx, out, id, c, rank.TrainingOptions{Config: trainCfg(5, 8)})
	if err == nil || !strings.Contains(err.Error(), "rank 0") || !strings.Contains(err.Error(), "iteration 5") || !strings.Contains(err.Error(), "not iteration 1") {
		t.Fatalf("history with a gap: %v", err)
	}
}

// TestTrainingJournalDamage: the shared journal code finds a flipped byte
// in a training journal; a damaged last line is a torn append, whose
// iteration is not durable and is written again.
func TestTrainingJournalDamage(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	id := explicit(t, 0, 1)
	write := func(out string, n int, close bool) string {
		w := openTraining(t, out, id, c, trainCfg(5, 8))
		for it := 1; it <= n; it++ {
			if err := w.WriteIteration(ctx, iter(c, id, it)); err != nil {
				t.Fatal(err)
			}
		}
		if close {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		return w.JournalPath()
	}
	flip := func(p string, line int) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		l := []byte(lines[line])
		i := strings.Index(string(l), `"lower_bound":`) + len(`"lower_bound":`) + 1
		if i < len(`"lower_bound":`)+1 {
			i = len(l) / 2
		}
		l[i] ^= 0x01 // a digit becomes another digit: the JSON stays valid
		lines[line] = string(l)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A flipped byte in iteration 2 of 3 (line 3 of 5).
	out := t.TempDir()
	p := write(out, 3, true)
	flip(p, 2)
	_, err := rank.OpenTraining(ctx, out, id, c, rank.TrainingOptions{Config: trainCfg(5, 8)})
	var je *journal.Error
	if !errors.As(err, &je) || !errors.Is(err, journal.ErrChecksum) || je.Line != 3 || !strings.Contains(err.Error(), p) {
		t.Fatalf("flipped byte: %v, want a checksum error at %s line 3", err, p)
	}
	if _, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: 1}); !errors.Is(err, journal.ErrChecksum) {
		t.Fatalf("simulation writer over the damaged training journal: %v", err)
	}
	// The last line damaged (a killed rank: no close record; iteration 3
	// torn): iterations 1..2 are durable, 3 is written again.
	out = t.TempDir()
	p = write(out, 3, false)
	flip(p, 3)
	w := openTraining(t, out, id, c, trainCfg(5, 8))
	if w.LastIteration() != 2 {
		t.Fatalf("after a torn iteration 3: LastIteration %d, want 2", w.LastIteration())
	}
	for it := 3; it <= 5; it++ {
		if err := w.WriteIteration(ctx, iter(c, id, it)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, count := readTraining(t, out)
	exactlyOnce(t, count, 1, 5)
}

// TestTrainingFaults: an I/O error while appending an iteration breaks the
// writer; what was durable stays, and the next attempt continues after it.
func TestTrainingFaults(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	id := explicit(t, 0, 1)
	// The journal's write (or fsync) number 4 is iteration 3's: number 1
	// is the open record. Either leaves the journal unable to take even a
	// close record (a failed write may have left part of a line).
	for _, tc := range []struct {
		name    string
		rule    vfs.Rule
		durable int
	}{
		{"append ENOSPC", vfs.Rule{Op: vfs.OpWrite, Path: "_shards/journal/*", Nth: 4, Err: syscall.ENOSPC}, 2},
		{"fsync EIO", vfs.Rule{Op: vfs.OpSync, Path: "_shards/journal/*", Nth: 4, Err: syscall.EIO}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			durable := tc.durable
			w := openTrainingFS(t, out, id, c, trainCfg(5, 8), vfs.Inject(vfs.OS(), tc.rule))
			var failed error
			for it := 1; it <= 5 && failed == nil; it++ {
				failed = w.WriteIteration(ctx, iter(c, id, it))
			}
			if !errors.Is(failed, tc.rule.Err) || !strings.Contains(failed.Error(), "rank 0 iteration 3") {
				t.Fatalf("write error %v, want the injected fault at iteration 3", failed)
			}
			if err := w.WriteIteration(ctx, iter(c, id, 3)); !errors.Is(err, tc.rule.Err) {
				t.Fatalf("broken writer accepted an iteration: %v", err)
			}
			if err := w.Close(); !errors.Is(err, tc.rule.Err) {
				t.Fatalf("Close: %v, want the injected fault", err)
			}
			js, _ := readTraining(t, out)
			// The line's durability is unknown: no close record follows it.
			if cl := js[0].close; cl != nil {
				t.Errorf("close record %+v after a failed append", cl)
			}
			v := openTraining(t, out, id, c, trainCfg(5, 8))
			if v.LastIteration() != durable {
				t.Fatalf("resumed at %d, want %d", v.LastIteration(), durable)
			}
			for it := durable + 1; it <= 5; it++ {
				if err := v.WriteIteration(ctx, iter(c, id, it)); err != nil {
					t.Fatal(err)
				}
			}
			if err := v.CloseTerminated(rank.TerminationIterationLimit); err != nil {
				t.Fatal(err)
			}
			_, count := readTraining(t, out)
			exactlyOnce(t, count, 1, 5)
		})
	}
}

// TestTrainingSignal: SIGTERM cancels the context; Close records the
// journal as interrupted with termination "signal".
func TestTrainingSignal(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	id := explicit(t, 0, 1)
	w := openTraining(t, out, id, c, trainCfg(5, 8))
	ctx, stop := w.HandleSignals(context.Background())
	defer stop()
	if err := w.WriteIteration(ctx, iter(c, id, 1)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
	if err := w.WriteIteration(ctx, iter(c, id, 2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("write after signal: %v", err)
	}
	if !w.Interrupted() {
		t.Fatal("Interrupted() is false after SIGTERM")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	js, _ := readTraining(t, out)
	want := manifest.CloseInfo{Status: manifest.StatusInterrupted, Committed: 1, Reason: "signal", Termination: rank.TerminationSignal}
	if cl := js[0].close; cl == nil || *cl != want {
		t.Fatalf("close %+v, want %+v", cl, want)
	}
}
