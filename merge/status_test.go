package merge_test

// Status tests on crafted directories (journals written by hand in an
// in-memory file system); the process tests with real ranks are in
// cmd/merge-shards/status_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

const statusOut = "/study/out"

// deadPID is a pid the crafted leases claim and the tests' Alive says is
// gone.
const deadPID = 1 << 30

var statusT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// craftWriter writes one journal by hand: its records are stamped with
// the given offsets from statusT0 (the open record first).
type craftWriter struct {
	t     *testing.T
	w     *journal.Writer
	times []time.Duration
}

// craftSeq makes the crafted writer ids unique.
var craftSeq int

func craft(t *testing.T, m *vfs.Mem, job string, r, world, attempt, n int, rule, tag string, times ...time.Duration) (*craftWriter, string) {
	t.Helper()
	craftSeq++
	id := layout.NewWriterID(job, r, attempt, tag, []byte{byte(craftSeq >> 8), byte(craftSeq), 0xc0, 0xff, 0xee, byte(r)}).String()
	cw := &craftWriter{t: t, times: times}
	open := &manifest.OpenInfo{Version: manifest.JournalVersion, Writer: id, Rank: r, World: world, Attempt: attempt, JobID: job,
		Host: "node1", PID: deadPID, Scenarios: n, Layout: manifest.Layout{Ownership: rule}, CaseName: "tiny", CaseHash: "0123456789abcdef"}
	if tag == layout.TrainingTag {
		open.Phase = manifest.PhaseTraining
		open.Training = &manifest.TrainingConfig{MaxIterations: 10, ForwardPasses: 4}
	}
	w, err := journal.Create(vfs.NewDirs(m, statusOut), statusOut, id, cw.now, open)
	if err != nil {
		t.Fatal(err)
	}
	cw.w = w
	return cw, id
}

func (c *craftWriter) now() time.Time {
	if len(c.times) == 0 {
		c.t.Fatal("craftWriter: more records than times")
	}
	d := c.times[0]
	c.times = c.times[1:]
	return statusT0.Add(d)
}

func (c *craftWriter) commit(scenarios ...int) *craftWriter {
	for _, s := range scenarios {
		if err := c.w.Append(&manifest.Record{Type: manifest.RecordCommit, Commit: &manifest.CommitInfo{Scenario: s, Files: []manifest.FileRecord{}}}); err != nil {
			c.t.Fatal(err)
		}
	}
	return c
}

func (c *craftWriter) iteration(it int, root bool) *craftWriter {
	info := &manifest.IterationInfo{Iteration: it, Timing: []manifest.TimingRow{}}
	if root {
		gap := 100.0 / float64(it)
		info.Convergence = &manifest.ConvergenceRow{Iteration: int32(it), LowerBound: 1000 * float64(it), UpperBoundMean: 2000, UpperBoundStd: 5, GapPercent: &gap}
	}
	if err := c.w.Append(&manifest.Record{Type: manifest.RecordIteration, Iteration: info}); err != nil {
		c.t.Fatal(err)
	}
	return c
}

func (c *craftWriter) close(status, termination string) {
	if a, b := c.w.Close(&manifest.CloseInfo{Status: status, Termination: termination}); a != nil || b != nil {
		c.t.Fatal(a, b)
	}
}

func alive(pid int) bool { return pid != deadPID }

// acquireLease takes a live lease (renewed hourly, so never during a
// test) and releases it at the end of the test.
func acquireLease(t *testing.T, m *vfs.Mem, writer string, r int) {
	t.Helper()
	l, err := lease.Acquire(vfs.NewDirs(m, statusOut), statusOut, writer, r, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release() })
}

// deadLease writes a lease of this host whose process is gone.
func deadLease(t *testing.T, m *vfs.Mem, writer string, r int) {
	t.Helper()
	host, _ := os.Hostname()
	b, _ := json.Marshal(lease.Info{Writer: writer, Rank: r, Host: host, PID: deadPID, IntervalMS: 1000, Seq: 3})
	if err := m.WriteFile(layout.Join(statusOut, layout.Lease(writer)), b); err != nil {
		t.Fatal(err)
	}
}

func findRank(t *testing.T, rep *merge.StatusReport, r int) merge.RankStatus {
	t.Helper()
	for _, rs := range rep.Ranks {
		if rs.Rank == r {
			return rs
		}
	}
	t.Fatalf("rank %d not in the report:\n%s", r, rep.Human())
	return merge.RankStatus{}
}

func approx(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-6 }

// TestStatusCrafted: every state a rank and a writer can be in, read from
// a crafted directory of 12 scenarios on 6 ranks (contiguous: 2 each).
func TestStatusCrafted(t *testing.T) {
	m := vfs.NewMem()
	const n, world, rule = 12, 6, "contiguous"
	sec := func(s int) time.Duration { return time.Duration(s) * time.Second }
	// Rank 0: training (3 iterations, closed at the iteration limit),
	// then its simulation (closed clean), then a rerun writer of another
	// job that committed scenario 7 (rank 3's) and closed clean.
	tr, _ := craft(t, m, "100", 0, world, 0, 4, "", layout.TrainingTag, sec(0), sec(10), sec(20), sec(30), sec(30))
	tr.iteration(1, true).iteration(2, true).iteration(3, true).close(manifest.StatusClean, "iteration_limit")
	craft0, _ := craft(t, m, "100", 0, world, 0, n, rule, "", sec(40), sec(70), sec(100), sec(100))
	craft0.commit(0, 1).close(manifest.StatusClean, "")
	rerun, _ := craft(t, m, "101", 0, world, 0, n, rule, "", sec(200), sec(230), sec(230))
	rerun.commit(7).close(manifest.StatusClean, "")
	// Rank 1: attempt 0 killed after committing 2 (no close, no lease);
	// attempt 1 live (lease), nothing committed yet, its journal ending
	// in a torn line.
	dead1, _ := craft(t, m, "100", 1, world, 0, n, rule, "", sec(41), sec(60))
	dead1.commit(2)
	_, id1 := craft(t, m, "100", 1, world, 1, n, rule, "", sec(300))
	acquireLease(t, m, id1, 1)
	p1 := layout.Join(statusOut, layout.Journal(id1))
	b, _ := m.ReadFile(p1)
	if err := m.WriteFile(p1, append(b, `{"xxh64":"0000`...)); err != nil {
		t.Fatal(err)
	}
	// Rank 2: live, one commit one minute after its open: 1/min, one
	// scenario left: ETA 60 s.
	live2, id2 := craft(t, m, "100", 2, world, 0, n, rule, "", sec(40), sec(100))
	live2.commit(4)
	acquireLease(t, m, id2, 2)
	// Rank 3: a live lease and no journal yet (a writer starting).
	id3 := layout.NewWriterID("100", 3, 0, "", []byte{3, 3, 3, 3, 3, 3}).String()
	acquireLease(t, m, id3, 3)
	// Rank 4: committed 8, its lease left behind by a process of this
	// host that is gone.
	dead4, id4 := craft(t, m, "100", 4, world, 0, n, rule, "", sec(40), sec(45))
	dead4.commit(8)
	deadLease(t, m, id4, 4)
	// Rank 5: no journal at all.
	// A journal whose open record never became durable describes nothing.
	empty := layout.NewWriterID("100", 5, 0, "", []byte{5, 5, 5, 5, 5, 5}).String()
	if err := m.WriteFile(layout.Join(statusOut, layout.Journal(empty)), nil); err != nil {
		t.Fatal(err)
	}

	before := m.Paths()
	rep, err := merge.Status(context.Background(), statusOut, merge.Options{FS: m, Lease: lease.Options{Alive: alive}})
	if err != nil {
		t.Fatal(err)
	}
	if after := m.Paths(); !slices.Equal(before, after) {
		t.Fatalf("Status changed the directory:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("\n%s", rep.Human())
	if !rep.ClockFromFS {
		t.Error("the clock did not come from the file system")
	}
	wantTotals := merge.StatusTotals{Scenarios: n, Committed: 6, Ranks: 6, Live: 3, Dead: 1, Closed: 1, Absent: 1,
		Writers: 8, WritersLive: 3, WritersDead: 2, WritersClosed: 3}
	got := rep.Totals
	got.ETASeconds = nil // rank 1 has work left and no rate: no total ETA
	if got != wantTotals || rep.Totals.ETASeconds != nil {
		t.Errorf("totals %+v (eta %v), want %+v", rep.Totals, rep.Totals.ETASeconds, wantTotals)
	}
	if rep.Journals != 8 {
		t.Errorf("journals %d, want 8 (the empty one included)", rep.Journals)
	}
	type want struct {
		state, closeStatus          string
		owned, committed, any, iter int
		writers                     int
	}
	for r, w := range map[int]want{
		0: {merge.StateClosed, manifest.StatusClean, 2, 2, 2, 3, 3},
		1: {merge.StateLive, "", 2, 1, 1, 0, 2},
		2: {merge.StateLive, "", 2, 1, 1, 0, 1},
		3: {merge.StateLive, "", 2, 0, 1, 0, 1},
		4: {merge.StateDead, "", 2, 1, 1, 0, 1},
		5: {merge.StateAbsent, "", 2, 0, 0, 0, 0},
	} {
		rs := findRank(t, rep, r)
		g := want{rs.State, rs.CloseStatus, rs.Owned, rs.Committed, rs.CommittedAny, rs.Iteration, len(rs.Writers)}
		if g != w {
			t.Errorf("rank %d: %+v, want %+v", r, g, w)
		}
	}
	// Rates and ETAs by record times; lease ages by the file system.
	if rs := findRank(t, rep, 0); !approx(rs.RatePerMin, 2) || !approx(rs.ETASeconds, 0) || rs.LeaseAgeSeconds != nil {
		t.Errorf("rank 0: rate %v (want 2/min: the rerun writer), eta %v, lease %v", rs.RatePerMin, rs.ETASeconds, rs.LeaseAgeSeconds)
	}
	if rs := findRank(t, rep, 2); !approx(rs.RatePerMin, 1) || !approx(rs.ETASeconds, 60) || rs.LeaseAgeSeconds == nil || *rs.LeaseAgeSeconds > 60 {
		t.Errorf("rank 2: rate %v, eta %v (want 1/min, 60 s), lease age %v", rs.RatePerMin, rs.ETASeconds, rs.LeaseAgeSeconds)
	}
	if rs := findRank(t, rep, 1); rs.ETASeconds != nil || rs.RatePerMin != nil {
		t.Errorf("rank 1: a live writer without commits has no rate nor ETA: rate %v, eta %v", rs.RatePerMin, rs.ETASeconds)
	}
	r1 := findRank(t, rep, 1)
	for _, w := range r1.Writers {
		switch w.Attempt {
		case 0:
			if w.State != merge.StateDead || w.LeaseAgeSeconds != nil || w.Committed != 1 {
				t.Errorf("rank 1 attempt 0: %+v, want dead without a lease, 1 commit", w)
			}
		case 1:
			if w.State != merge.StateLive || !w.Torn || w.Committed != 0 {
				t.Errorf("rank 1 attempt 1: %+v, want live with a torn tail", w)
			}
		}
	}
	if w := findRank(t, rep, 4).Writers[0]; w.State != merge.StateDead || w.LeaseAgeSeconds == nil {
		t.Errorf("rank 4: %+v, want dead with a lease (its process is gone)", w)
	}
	tr0 := rep.Training
	if tr0 == nil || tr0.Iteration != 3 || tr0.MaxIterations != 10 || tr0.LowerBound != 3000 || tr0.UpperBoundMean != 2000 ||
		!approx(tr0.GapPercent, 100.0/3) || tr0.State != merge.StateClosed || tr0.Termination != "iteration_limit" {
		t.Errorf("training: %+v", tr0)
	}
	// The JSON form and the table.
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	h := rep.Human()
	for _, s := range []string{"committed 6/12 scenarios", "ranks: 3 live, 1 dead, 1 closed, 1 absent", "closed (clean)", "absent", "1 dead", "iteration 3/10"} {
		if !strings.Contains(h, s) {
			t.Errorf("table does not say %q:\n%s", s, h)
		}
	}
	if lines := strings.Count(h, "\n"); lines != 3+1+6 {
		t.Errorf("table: %d lines, want 10 (3 heads, a header, one per rank):\n%s", lines, h)
	}

	// Killing the live writers' processes (here: their leases say so)
	// makes them dead.
	rep, err = merge.Status(context.Background(), statusOut, merge.Options{FS: m, Lease: lease.Options{Alive: func(int) bool { return false }}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.WritersLive != 0 || findRank(t, rep, 2).State != merge.StateDead || findRank(t, rep, 3).State != merge.StateAbsent {
		t.Errorf("all processes gone: %+v\n%s", rep.Totals, rep.Human())
	}
}

// hookFS runs fn once, the first time the lease directory is listed:
// between Status's reading of the journals and its judging of the leases.
type hookFS struct {
	vfs.FS
	once sync.Once
	fn   func()
}

func (h *hookFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == layout.Join(statusOut, layout.LeaseDir) {
		h.once.Do(h.fn)
	}
	return h.FS.ReadDir(name)
}

// TestStatusWriterClosesDuringRead: a writer that appends its close record
// and releases its lease after Status read its journal, but before Status
// judged the leases, is closed, not dead: its journal grew, so it is
// read again.
func TestStatusWriterClosesDuringRead(t *testing.T) {
	m := vfs.NewMem()
	cw, id := craft(t, m, "1", 0, 1, 0, 2, "contiguous", "", 0, time.Second, time.Second, 2*time.Second)
	cw.commit(0, 1)
	l, err := lease.Acquire(vfs.NewDirs(m, statusOut), statusOut, id, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := &hookFS{FS: m, fn: func() {
		cw.close(manifest.StatusClean, "")
		if err := l.Release(); err != nil {
			t.Error(err)
		}
	}}
	rep, err := merge.Status(context.Background(), statusOut, merge.Options{FS: h})
	if err != nil {
		t.Fatal(err)
	}
	if rs := findRank(t, rep, 0); rs.State != merge.StateClosed || rs.CloseStatus != manifest.StatusClean || rs.Committed != 2 {
		t.Fatalf("a writer that closed during the read: %+v", rs)
	}
}

// TestStatusEmpty: a directory without journals is read (no rank has
// started); a missing one is an error.
func TestStatusEmpty(t *testing.T) {
	m := vfs.NewMem()
	if err := m.Mkdir("/study"); err != nil {
		t.Fatal(err)
	}
	rep, err := merge.Status(context.Background(), "/study", merge.Options{FS: m})
	if err != nil || rep.Journals != 0 || len(rep.Ranks) != 0 || rep.Totals != (merge.StatusTotals{}) {
		t.Fatalf("empty directory: %+v, %v", rep, err)
	}
	if paths := m.Paths(); len(paths) != 0 {
		t.Fatalf("Status created %v", paths)
	}
	if _, err := merge.Status(context.Background(), "/nope", merge.Options{FS: m}); err == nil {
		t.Fatal("a missing directory: no error")
	}
}

// TestStatusOwnershipAgreesWithRank: Status's owned scenarios are
// rank.Ownership.Owned's, for both rules over many layouts: each rank
// reports Owned = len(Owned), and of a set of scenarios committed by one
// rerun writer of rank 0, exactly the ones Owned lists.
func TestStatusOwnershipAgreesWithRank(t *testing.T) {
	for _, own := range []rank.Ownership{rank.Contiguous, rank.RoundRobin} {
		for _, n := range []int{0, 1, 2, 5, 7, 16, 33} {
			for _, world := range []int{1, 2, 3, 4, 7, 9} {
				t.Run(fmt.Sprintf("%s/n=%d/world=%d", own, n, world), func(t *testing.T) {
					m := vfs.NewMem()
					for r := range world {
						cw, _ := craft(t, m, "1", r, world, 0, n, own.String(), "", 0, 0)
						cw.close(manifest.StatusClean, "")
					}
					var committed []int
					times := []time.Duration{0}
					for s := range n {
						if s%3 != 1 {
							committed = append(committed, s)
							times = append(times, time.Second)
						}
					}
					cw, _ := craft(t, m, "2", 0, world, 0, n, own.String(), "", times...)
					cw.commit(committed...)
					rep, err := merge.Status(context.Background(), statusOut, merge.Options{FS: m, Lease: lease.Options{Alive: alive}})
					if err != nil {
						t.Fatal(err)
					}
					if len(rep.Ranks) != world {
						t.Fatalf("%d ranks, want %d", len(rep.Ranks), world)
					}
					for r := range world {
						id, err := rank.Explicit(r, world)
						if err != nil {
							t.Fatal(err)
						}
						owned := own.Owned(n, id)
						inter := 0
						for _, s := range owned {
							if slices.Contains(committed, s) {
								inter++
							}
						}
						wantMine := 0
						if r == 0 {
							wantMine = inter
						}
						rs := rep.Ranks[r]
						if rs.Rank != r || rs.Owned != len(owned) || rs.CommittedAny != inter || rs.Committed != wantMine {
							t.Errorf("rank %d: owned %d, committed %d, any %d; rank.Owned %v gives %d, %d, %d", r, rs.Owned, rs.Committed, rs.CommittedAny, owned, len(owned), wantMine, inter)
						}
					}
					if rep.Totals.Committed != len(committed) {
						t.Errorf("total committed %d, want %d", rep.Totals.Committed, len(committed))
					}
				})
			}
		}
	}
}

// TestStatusHugeWorld: a journal claiming a world of a billion ranks (the
// merge refuses it) does not make Status list a billion absent ranks: it
// answers at once, in bounded memory, with the ranks it has journals of.
func TestStatusHugeWorld(t *testing.T) {
	m := vfs.NewMem()
	j, _ := craft(t, m, "100", 0, 1_000_000_000, 0, 4, "contiguous", "", 0, time.Second, 2*time.Second)
	j.commit(0).close(manifest.StatusClean, "")
	rep, err := merge.Status(context.Background(), statusOut, merge.Options{FS: m, Lease: lease.Options{Alive: alive}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ranks) != 1 || rep.Totals.Committed != 1 {
		t.Fatalf("%d ranks, %d committed; want the one rank with a journal, 1 committed\n%s", len(rep.Ranks), rep.Totals.Committed, rep.Human())
	}
}
