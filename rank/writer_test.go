package rank_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

func tinyCase(t testing.TB) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func explicit(t testing.TB, r, w int) rank.Identity {
	t.Helper()
	id, err := rank.Explicit(r, w)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func gen(t testing.TB, c *manifest.Case, s int) *shard.Scenario {
	t.Helper()
	sc, err := synth.Generate(c, 7, s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestWriterCommits(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 3})
	if err != nil {
		t.Fatal(err)
	}
	for s := range 3 {
		if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteScenario(ctx, gen(t, c, 1)); !errors.Is(err, rank.ErrCommitted) {
		t.Fatalf("rewriting scenario 1: %v, want ErrCommitted", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Fatalf("committed %v", got)
	}
	st := readJournals(t, out)
	if len(st.opens) != 1 || st.opens[0].CaseHash != c.Hash() || st.opens[0].Case == nil || st.opens[0].Scenarios != 3 {
		t.Errorf("open record %+v", st.opens)
	}
	if len(st.closes) != 1 || st.closes[0].Status != manifest.StatusClean || st.closes[0].Committed != 3 {
		t.Errorf("close records %+v", st.closes)
	}
	// Every entity of the case is written, and nothing else; files are in
	// place (not left in tmp); the cost summary matches the costs rows.
	for s, files := range st.commits {
		var ents []string
		for _, f := range files {
			ents = append(ents, f.Entity)
			if _, err := os.Stat(filepath.Join(out, f.Path)); err != nil {
				t.Errorf("scenario %d: %v", s, err)
			}
			if want := "simulation/" + f.Entity + "/scenario_id=" + itoa(s) + "/data.parquet"; f.Path != want {
				t.Errorf("path %s, want %s", f.Path, want)
			}
		}
		if !reflect.DeepEqual(ents, c.Entities()) {
			t.Errorf("scenario %d entities %v, want %v", s, ents, c.Entities())
		}
	}
	if left, err := os.ReadDir(filepath.Join(out, layout.TempDir)); err != nil || len(left) != 0 {
		t.Errorf("%d files left in tmp after clean commits (%v)", len(left), err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCostSummary(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 1})
	if err != nil {
		t.Fatal(err)
	}
	sc := gen(t, c, 0)
	if err := w.WriteScenario(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var cost manifest.CostSummary
	commits := 0
	if _, err := journal.ReadFile(vfs.OS(), w.JournalPath(), func(r *manifest.Record) error {
		if r.Commit != nil {
			cost = r.Commit.Cost
			commits++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if commits != 1 {
		t.Fatalf("%d commit records, want 1", commits)
	}
	var total float64
	stages := make([]float64, c.Stages)
	for i, st := range sc.Costs.StageID {
		v := sc.Costs.ImmediateCost[i] * sc.Costs.DiscountFactor[i]
		stages[st] += v
		total += v
	}
	if !reflect.DeepEqual(cost.Stages, stages) || cost.Total != total {
		t.Fatalf("journal cost %+v, want total %v stages %v", cost, total, stages)
	}
}

// TestFaultAtEachStep injects an I/O error at every step of scenario 1's
// commit, each chosen by operation and path (not by how many calls came
// before), checks what is left on disk, then resumes with a new attempt.
// The cases run in parallel: each writer has its own fault-injecting FS.
func TestFaultAtEachStep(t *testing.T) {
	c := tinyCase(t)
	const s1 = "_shards/tmp/*.s1.*" // scenario 1's temp files
	cases := []struct {
		name string
		rule vfs.Rule
		// committed: the commit record was durable before the fault, so
		// scenario 1 is committed (the merge finishes its renames).
		committed bool
		// broken: the fault left the journal unable to take a close record.
		broken bool
	}{
		{"temp create EROFS", vfs.Rule{Op: vfs.OpCreate, Path: s1, Nth: 2, Err: syscall.EROFS}, false, false},
		{"temp short write ENOSPC", vfs.Rule{Op: vfs.OpWrite, Path: s1, Nth: 1, Short: true, Err: syscall.ENOSPC}, false, false},
		{"temp fsync EIO", vfs.Rule{Op: vfs.OpSync, Path: s1, Nth: 2, Err: syscall.EIO}, false, false},
		{"temp dir fsync EIO", vfs.Rule{Op: vfs.OpSyncDir, Path: "_shards/tmp", Nth: 2, Err: syscall.EIO}, false, false},
		{"journal append ENOSPC", vfs.Rule{Op: vfs.OpWrite, Path: "_shards/journal/*", Nth: 3, Err: syscall.ENOSPC}, false, true},
		{"journal fsync EIO", vfs.Rule{Op: vfs.OpSync, Path: "_shards/journal/*", Nth: 3, Err: syscall.EIO}, true, true},
		{"partition mkdir EROFS", vfs.Rule{Op: vfs.OpMkdir, Path: "scenario_id=1", Nth: 2, Err: syscall.EROFS}, true, false},
		{"rename EIO", vfs.Rule{Op: vfs.OpRenameNoReplace, Path: "scenario_id=1/data.parquet", Nth: 2, Err: syscall.EIO}, true, false},
		{"partition dir fsync EIO", vfs.Rule{Op: vfs.OpSyncDir, Path: "*/scenario_id=1", Nth: 2, Err: syscall.EIO}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			ctx := context.Background()
			fsys := vfs.Inject(vfs.OS(), tc.rule)
			w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 4, Workers: 1, FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			// The failure happens in the background: a later
			// WriteScenario or Flush returns it.
			var failed error
			for s := range 4 {
				if failed = w.WriteScenario(ctx, gen(t, c, s)); failed != nil {
					break
				}
			}
			if failed == nil {
				failed = w.Flush(ctx)
			}
			if !fsys.Fired(0) {
				t.Fatalf("the fault never fired (%d matching operations)", fsys.Hits(0))
			}
			var se *rank.ScenarioError
			if !errors.As(failed, &se) || se.Scenario != 1 {
				t.Fatalf("write error %v, want a *ScenarioError for scenario 1", failed)
			}
			if !errors.Is(failed, tc.rule.Err) {
				t.Fatalf("write error %v, want the injected %v", failed, tc.rule.Err)
			}
			if err := w.WriteScenario(ctx, gen(t, c, 3)); err == nil {
				t.Fatal("writer accepted a scenario after an I/O error")
			}
			if err := w.Close(); !errors.Is(err, tc.rule.Err) {
				t.Fatalf("Close: %v, want the injected fault again", err)
			}
			committed := checkInvariants(t, out)
			wantCommitted := []int{0}
			if tc.committed {
				wantCommitted = []int{0, 1} // the commit record was written
			}
			if !reflect.DeepEqual(committed, wantCommitted) {
				t.Fatalf("committed %v, want %v", committed, wantCommitted)
			}
			// A second attempt skips what is committed and finishes.
			w2, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 4})
			if err != nil {
				t.Fatal(err)
			}
			if got := w2.Committed(); !reflect.DeepEqual(got, wantCommitted) {
				t.Fatalf("resumed writer sees %v committed, want %v", got, wantCommitted)
			}
			for _, s := range w2.Pending([]int{0, 1, 2, 3}) {
				if err := w2.WriteScenario(ctx, gen(t, c, s)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w2.Close(); err != nil {
				t.Fatal(err)
			}
			if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{0, 1, 2, 3}) {
				t.Fatalf("after resume: committed %v", got)
			}
			st := readJournals(t, out)
			// A failed journal fsync leaves the journal unusable (the line's
			// durability is unknown): no close record follows it.
			wantCloses := 2
			if tc.broken {
				wantCloses = 1
			}
			if len(st.closes) != wantCloses {
				t.Errorf("close records %+v, want %d", st.closes, wantCloses)
			}
			failedCloses := 0
			for _, cl := range st.closes {
				if cl.Status == manifest.StatusFailed && strings.Contains(cl.Reason, "injected fault") {
					failedCloses++
				}
			}
			if failedCloses != wantCloses-1 {
				t.Errorf("close records %+v: want the first attempt's to say failed, with the reason", st.closes)
			}
		})
	}
}

func TestCaseMismatch(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	other := *c
	other.Name = "other"
	_, err = rank.Open(ctx, out, explicit(t, 0, 1), &other, rank.Options{Scenarios: 2})
	var me *rank.CaseMismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), w.JournalPath()) {
		t.Fatalf("other case: %v, want CaseMismatchError naming %s", err, w.JournalPath())
	}
	_, err = rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 3})
	if !errors.As(err, &me) || me.What != "scenario count" {
		t.Fatalf("other scenario count: %v", err)
	}
	_, err = rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 2, ScenarioPad: 4})
	if !errors.As(err, &me) || me.What != "scenario padding" {
		t.Fatalf("other padding: %v", err)
	}
}

// TestBadInput: bad scenarios are refused with a clear error, nothing is
// written, and the writer stays usable.
func TestBadInput(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 2})
	if err != nil {
		t.Fatal(err)
	}
	noHydros := gen(t, c, 0)
	noHydros.Hydros = nil
	short := gen(t, c, 0)
	short.Buses.LoadMW = short.Buses.LoadMW[1:]
	outOfRange := gen(t, c, 0)
	outOfRange.ID = 2
	for name, tc := range map[string]struct {
		sc   *shard.Scenario
		want string
	}{
		"missing table": {noHydros, "scenario 0: has no hydros table"},
		"short column":  {short, "scenario 0: simulation/buses.load_mw: column has"},
		"out of range":  {outOfRange, "scenario 2: id out of range"},
	} {
		err := w.WriteScenario(ctx, tc.sc)
		if err == nil || !strings.Contains(err.Error(), tc.want[:11]) || !strings.Contains(err.Error(), tc.want[12:]) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if err := w.WriteScenario(ctx, gen(t, c, 1)); err != nil {
		t.Fatalf("writer unusable after bad input: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("committed %v", got)
	}
	if left, err := os.ReadDir(filepath.Join(out, layout.TempDir)); err != nil || len(left) != 0 {
		t.Errorf("bad input left %d temp files (%v)", len(left), err)
	}
}

// TestSignalInterrupts: a SIGTERM cancels the context; Close records the
// journal as interrupted.
func TestSignalInterrupts(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	w, err := rank.Open(context.Background(), out, explicit(t, 0, 1), c, rank.Options{Scenarios: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := w.HandleSignals(context.Background())
	defer stop()
	if err := w.WriteScenario(ctx, gen(t, c, 0)); err != nil {
		t.Fatal(err)
	}
	// Scenario 0 is committed before the signal: a scenario still queued
	// when SIGTERM arrives is dropped by design, and on a loaded machine
	// the signal could otherwise overtake the dispatcher.
	if err := w.Flush(ctx); err != nil {
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
	if err := w.WriteScenario(ctx, gen(t, c, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("write after signal: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := readJournals(t, out)
	if len(st.closes) != 1 || st.closes[0].Status != manifest.StatusInterrupted || st.closes[0].Committed != 1 {
		t.Fatalf("close %+v", st.closes)
	}
}

// TestConcurrentWriteScenario: many goroutines share one writer.
func TestConcurrentWriteScenario(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 12, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 12)
	for s := range 12 {
		sc := gen(t, c, s)
		go func() { errs <- w.WriteScenario(ctx, sc) }()
	}
	for range 12 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); len(got) != 12 {
		t.Fatalf("committed %v", got)
	}
}

// TestWriterLease: an open writer holds a lease, Close releases it, and a
// writer that cannot renew its lease stops committing (a merge may
// already judge it dead and be recovering its work).
func TestWriterLease(t *testing.T) {
	t.Parallel()
	c := tinyCase(t)
	ctx := context.Background()
	const out = "/study/out"
	m := vfs.NewMem()
	interval := 20 * time.Millisecond
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 3, Workers: 1, FS: m, LeaseInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	leases := func() map[string]lease.State {
		t.Helper()
		st, err := lease.Judge(m, out, time.Now(), lease.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := leases(); len(st) != 1 {
		t.Fatalf("leases of an open writer: %+v", st)
	}
	if err := w.WriteScenario(ctx, gen(t, c, 0)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The lease directory vanishes: every renewal fails from now on.
	for _, p := range m.Paths() {
		if strings.Contains(p, "/"+layout.LeaseDir+"/") {
			if err := m.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Remove(layout.Join(out, layout.LeaseDir)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * lease.FreshIntervals * interval) // let the lease lapse: there is no event to wait for
	if err := w.WriteScenario(ctx, gen(t, c, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); !errors.Is(err, lease.ErrExpired) {
		t.Fatalf("commit with a lapsed lease: %v, want lease.ErrExpired", err)
	}
	if got := w.Committed(); !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("committed %v, want only scenario 0", got)
	}
	if err := w.Close(); !errors.Is(err, lease.ErrExpired) {
		t.Fatalf("Close after the lease lapsed: %v, want lease.ErrExpired", err)
	}

	// A writer closed normally leaves no lease.
	m2 := vfs.NewMem()
	w2, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 1, Workers: 1, FS: m2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := lease.Judge(m2, out, time.Now(), lease.Options{}); err != nil || len(st) != 0 {
		t.Fatalf("leases after Close: %+v, %v", st, err)
	}
}
