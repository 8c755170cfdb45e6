package crashtest

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// out is the study's output directory inside each in-memory file system.
const out = "/study/out"

const (
	seed   = 7
	passes = 2 // forward passes per training iteration
)

// study is a one-rank study: an optional training (iterations, with one
// checkpoint), then the simulation of every scenario.
type study struct {
	c          *manifest.Case
	scenarios  int
	iterations int // 0: no training
	checkpoint int // the iteration that takes the checkpoint (0: none)
}

func tinyCase(t testing.TB) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase("../../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run is one attempt of the rank on fsys: training after its last durable
// iteration (and the checkpoint it owes), then the scenarios not committed
// yet. It stops at the first error: a crashed file system fails every
// call from the crash on.
func (st study) run(ctx context.Context, fsys vfs.FS, attempt int) error {
	id, err := rank.Explicit(0, 1)
	if err != nil {
		return err
	}
	id.Attempt = attempt
	if st.iterations > 0 {
		if err := st.train(ctx, fsys, id); err != nil {
			return err
		}
	}
	w, err := rank.Open(ctx, out, id, st.c, rank.Options{Scenarios: st.scenarios, Workers: 1, Queue: 2, FS: fsys})
	if err != nil {
		return err
	}
	all := make([]int, st.scenarios)
	for i := range all {
		all[i] = i
	}
	var werr error
	for _, s := range w.Pending(all) {
		sc, err := synth.Generate(st.c, seed, s)
		if err != nil {
			return err
		}
		if werr = w.WriteScenario(ctx, sc); werr != nil {
			break
		}
	}
	return errors.Join(werr, w.Close())
}

func (st study) train(ctx context.Context, fsys vfs.FS, id rank.Identity) error {
	cfg := manifest.TrainingConfig{Seed: seed, MaxIterations: st.iterations, ForwardPasses: passes, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
	tw, err := rank.OpenTraining(ctx, out, id, st.c, rank.TrainingOptions{Config: cfg, FS: fsys})
	if err != nil {
		return err
	}
	err = func() error {
		// A rank killed between an iteration and its checkpoint writes
		// the checkpoint it owes first.
		if st.checkpoint > 0 && tw.LastIteration() >= st.checkpoint {
			last, err := tw.LastCheckpoint()
			if err != nil {
				return err
			}
			if last < st.checkpoint {
				if err := st.writeCheckpoint(ctx, tw); err != nil {
					return err
				}
			}
		}
		for it := tw.LastIteration() + 1; it <= st.iterations; it++ {
			if err := tw.WriteIteration(ctx, synth.TrainingIteration(st.c, seed, it, passes, id.Rank, id.World, 1)); err != nil {
				return err
			}
			if it == st.checkpoint {
				if err := st.writeCheckpoint(ctx, tw); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err != nil {
		return errors.Join(err, tw.Close())
	}
	return tw.CloseTerminated(rank.TerminationIterationLimit)
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

// files returns every file under out in m, by path relative to out.
func files(t testing.TB, m *vfs.Mem) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	for _, p := range m.Paths() {
		rel, ok := strings.CutPrefix(p, out+"/")
		if !ok {
			continue
		}
		b, err := m.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got[rel] = b
	}
	return got
}

// comparable keeps what must be byte-identical to an uninterrupted run,
// whatever attempts and writer ids made it: the data files, the
// integrity index, the convergence table and the policy's stage files.
// (Manifests and metadata carry writer ids and times.)
func comparable(all map[string][]byte) map[string][]byte {
	keep := map[string][]byte{}
	for rel, b := range all {
		switch {
		case strings.HasPrefix(rel, layout.SimDir+"/") && path.Base(rel) == layout.DataFileName,
			rel == path.Join(layout.SimDir, layout.IndexName),
			rel == layout.ConvergenceFile,
			strings.HasPrefix(rel, layout.PolicyDir+"/") && strings.HasSuffix(rel, ".bin"):
			keep[rel] = b
		}
	}
	return keep
}

func diff(got, want map[string][]byte) string {
	var d []string
	for rel, b := range want {
		g, ok := got[rel]
		switch {
		case !ok:
			d = append(d, "missing "+rel)
		case !bytes.Equal(g, b):
			d = append(d, fmt.Sprintf("%s differs (%d bytes, want %d)", rel, len(g), len(b)))
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			d = append(d, "extra "+rel)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

// mergeOptions: a crashed writer is dead, but its lease names this test's
// own pid, which is alive, and was renewed a moment ago (a power cut may
// even have kept the lease's name without its bytes). A real one's process
// is gone and its lease ages past the grace: here the process is judged
// gone (which also makes a crashed merge's lock stale) and the grace is
// as short as can be.
func mergeOptions(fsys vfs.FS) merge.Options {
	return merge.Options{FS: fsys, Workers: 1, Lease: lease.Options{Grace: time.Nanosecond, Alive: func(int) bool { return false }}}
}

func mergeRun(ctx context.Context, fsys vfs.FS) (*merge.Report, error) {
	return merge.Run(ctx, out, mergeOptions(fsys))
}

// reference runs the study uninterrupted and returns what the merge made
// of it.
func (st study) reference(t *testing.T) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	m := vfs.NewMem()
	if err := st.run(ctx, m, 0); err != nil {
		t.Fatal(err)
	}
	rep, err := mergeRun(ctx, m)
	if err != nil || rep.Outcome != merge.Complete {
		t.Fatalf("uninterrupted study: merge %v, %+v", err, rep)
	}
	return comparable(files(t, m))
}

// check verifies what a merge made of a crashed rank's leftovers (a), then
// a power cut right after that merge, a second merge, and a resumed rank.
func (st study) check(t *testing.T, what string, a *vfs.Mem, ref map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s\nfiles: %v", what, fmt.Sprintf(format, args...), a.Paths())
	}
	rep, err := mergeRun(ctx, a)
	committed := map[int]bool{}
	switch {
	case errors.Is(err, merge.ErrNoJournals):
		// Killed before its first journal was durable: nothing can be
		// committed.
		for rel := range comparable(files(t, a)) {
			fail("no journal, yet %s exists", rel)
		}
	case err != nil:
		fail("merge: %v", err)
	case rep.Outcome == merge.Corrupt:
		fail("merge found the output corrupt: %v", rep.Problems)
	default:
		// rep.Scenarios is 0 while no rank has started simulating.
		for s := range rep.Scenarios {
			committed[s] = !slices.Contains(rep.Missing, s)
		}
	}
	// A power cut right after the merge: what it reported must be durable.
	b := a.CrashClone(vfs.CrashOptions{})
	got := comparable(files(t, b))
	for s, ok := range committed {
		if !ok {
			continue
		}
		for _, e := range st.c.Entities() {
			rel := layout.DataFile(e, 0, s)
			if !bytes.Equal(got[rel], ref[rel]) {
				fail("scenario %d reported committed, but after a power cut %s is %d bytes (want %d, equal: false)", s, rel, len(got[rel]), len(ref[rel]))
			}
		}
	}
	if rep != nil {
		st.checkIndex(t, what, got, committed)
		if tr := rep.Training; tr != nil && tr.Policy != nil && tr.Policy.Iteration == st.checkpoint && st.checkpoint > 0 {
			for rel, want := range ref {
				if strings.HasPrefix(rel, layout.PolicyDir+"/") && !bytes.Equal(got[rel], want) {
					fail("policy of iteration %d reported, but after a power cut %s differs", st.checkpoint, rel)
				}
			}
			if _, err := policy.OpenFS(b, layout.Join(out, layout.PolicyDir), policy.Expect{}); err != nil {
				fail("policy reported, but after a power cut: %v", err)
			}
		}
		if tr := rep.Training; tr != nil {
			again, err := merge.Analyze(ctx, out, mergeOptions(b))
			if err != nil || again.Training == nil || again.Training.Iterations < tr.Iterations {
				fail("merge reported %d iterations; after a power cut: %v %+v", tr.Iterations, err, again)
			}
		}
		// A second merge changes no byte.
		before := files(t, b)
		rep2, err := mergeRun(ctx, b)
		if err != nil || rep2.Outcome != rep.Outcome {
			fail("second merge: %v, outcome %v, first %v", err, rep2, rep.Outcome)
		}
		if d := diff(files(t, b), before); d != "" {
			fail("the second merge changed files: %s", d)
		}
	}
	// A resumed rank completes the study, byte-identical.
	if err := st.run(ctx, b, 1); err != nil {
		fail("resumed rank: %v", err)
	}
	rep3, err := mergeRun(ctx, b)
	if err != nil || rep3.Outcome != merge.Complete {
		fail("merge after the resumed rank: %v %+v", err, rep3)
	}
	if d := diff(comparable(files(t, b)), ref); d != "" {
		fail("resumed study differs from an uninterrupted one: %s", d)
	}
}

// checkIndex checks that the integrity index, after the power cut, lists
// exactly the committed scenarios' files.
func (st study) checkIndex(t *testing.T, what string, got map[string][]byte, committed map[int]bool) {
	t.Helper()
	idx, ok := got[path.Join(layout.SimDir, layout.IndexName)]
	if !ok {
		for _, c := range committed {
			if c {
				t.Fatalf("%s: scenarios committed but no integrity index after a power cut", what)
			}
		}
		return
	}
	recs, err := csv.NewReader(bytes.NewReader(idx)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("%s: integrity index: %v", what, err)
	}
	listed := map[int]int{}
	for _, r := range recs[1:] {
		s, _ := strconv.Atoi(r[2])
		listed[s]++
		if _, ok := got[r[0]]; !ok {
			t.Fatalf("%s: the index lists %s, which a power cut took", what, r[0])
		}
	}
	for s, c := range committed {
		if want := len(st.c.Entities()); c && listed[s] != want || !c && listed[s] != 0 {
			t.Fatalf("%s: the index lists %d files of scenario %d (committed %v)", what, listed[s], s, c)
		}
	}
}

// crashEverywhere crashes one attempt of the study after each of its
// file-system operations in turn and checks what every kind of crash
// leaves. It returns the number of crash points.
func (st study) crashEverywhere(t *testing.T) int {
	ref := st.reference(t)
	ctx := context.Background()
	points := 0
	for k := 0; ; k++ {
		m := vfs.NewMem()
		m.CrashAfter(k)
		_ = st.run(ctx, m, 0) // fails once the crash comes
		if !m.Crashed() {
			break // the run ended before operation k+1: every point is done
		}
		points++
		st.check(t, fmt.Sprintf("killed after operation %d", k), m.Clone(), ref)
		st.check(t, fmt.Sprintf("power cut after operation %d", k), m.CrashClone(vfs.CrashOptions{}), ref)
		rng := rand.New(rand.NewPCG(uint64(k), 1))
		st.check(t, fmt.Sprintf("power cut after operation %d, random unsynced operations kept", k), m.CrashClone(vfs.CrashOptions{Rand: rng}), ref)
	}
	return points
}

func TestCrashSimulationCommits(t *testing.T) {
	t.Parallel()
	st := study{c: tinyCase(t), scenarios: 3}
	n := st.crashEverywhere(t)
	t.Logf("simulation commits: %d crash points enumerated, each as a kill, a power cut and a random power cut", n)
	if n < 3*2*len(st.c.Entities()) {
		t.Fatalf("only %d crash points", n)
	}
}

func TestCrashTrainingAndCheckpoint(t *testing.T) {
	t.Parallel()
	st := study{c: tinyCase(t), scenarios: 1, iterations: 3, checkpoint: 2}
	n := st.crashEverywhere(t)
	t.Logf("training iterations and a checkpoint: %d crash points enumerated, each as a kill, a power cut and a random power cut", n)
}

// TestCrashMergeApply crashes the merge itself after each of its
// file-system operations, on the leftovers of a rank killed while it was
// publishing a committed scenario: the merge has renames to finish, temp
// files to remove, and every output to write. What each crash leaves is
// merged again and checked like a crashed rank's.
func TestCrashMergeApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := study{c: tinyCase(t), scenarios: 3}
	ref := st.reference(t)
	var base *vfs.Mem
	for k := 1; base == nil; k++ {
		m := vfs.NewMem()
		m.CrashAfter(k)
		if err := st.run(ctx, m, 0); err == nil {
			t.Fatal("no crash point leaves a commit to roll forward")
		}
		c := m.Clone()
		rep, err := merge.Analyze(ctx, out, mergeOptions(c))
		if err == nil && rep.RolledForward > 0 && rep.Committed >= 2 {
			base = c
		}
	}
	points := 0
	for j := 0; ; j++ {
		c := base.Clone()
		c.CrashAfter(j)
		_, _ = mergeRun(ctx, c)
		if !c.Crashed() {
			break
		}
		points++
		for _, v := range []struct {
			what string
			m    *vfs.Mem
		}{
			{"killed", c.Clone()},
			{"power cut", c.CrashClone(vfs.CrashOptions{})},
			{"power cut, random unsynced operations kept", c.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(uint64(j), 2))})},
		} {
			// A lock the crashed merge had created but not yet written is
			// stale only once it is 10 s old (merge's lock tests); one it
			// had written names a dead pid here and is taken over.
			if b, err := v.m.ReadFile(layout.Join(out, layout.LockFile)); err == nil && len(b) == 0 {
				_ = v.m.Remove(layout.Join(out, layout.LockFile))
			}
			st.check(t, fmt.Sprintf("merge %s after operation %d", v.what, j), v.m, ref)
		}
	}
	t.Logf("merge apply phase: %d crash points enumerated, each as a kill, a power cut and a random power cut", points)
	if points < 20 {
		t.Fatalf("only %d crash points", points)
	}
}
