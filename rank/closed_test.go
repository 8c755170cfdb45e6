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
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// TestErrClosed: after Close every WriteScenario, Flush and Close of any
// kind returns an error matching rank.ErrClosed, naming the call; the
// first Close returned the writer's outcome; nothing more is written.
func TestErrClosed(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	calls := []struct {
		op   string
		call func(w *rank.Writer) error
	}{
		{"WriteScenario", func(w *rank.Writer) error { return w.WriteScenario(ctx, gen(t, c, 1)) }},
		{"Flush", func(w *rank.Writer) error { return w.Flush(ctx) }},
		{"Close", func(w *rank.Writer) error { return w.Close() }},
		{"CloseContext", func(w *rank.Writer) error { return w.CloseContext(ctx) }},
		{"CloseInterrupted", func(w *rank.Writer) error { return w.CloseInterrupted("again") }},
	}
	for _, first := range []string{"Close", "CloseContext", "CloseInterrupted"} {
		for _, tc := range calls {
			t.Run(first+"/then/"+tc.op, func(t *testing.T) {
				out := t.TempDir()
				w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 2})
				if err != nil {
					t.Fatal(err)
				}
				if err := w.WriteScenario(ctx, gen(t, c, 0)); err != nil {
					t.Fatal(err)
				}
				switch first {
				case "Close":
					err = w.Close()
				case "CloseContext":
					err = w.CloseContext(ctx)
				case "CloseInterrupted":
					err = w.CloseInterrupted("test")
				}
				if err != nil {
					t.Fatalf("first %s: %v", first, err)
				}
				before := readDisk(t, out)
				err = tc.call(w)
				if !errors.Is(err, rank.ErrClosed) {
					t.Fatalf("%s after %s: %v, want an error matching rank.ErrClosed", tc.op, first, err)
				}
				if want := "rank: " + tc.op + " after Close"; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("message %q, want it to start %q", err, want)
				}
				if errors.Is(err, rank.ErrCommitted) {
					t.Errorf("%v matches ErrCommitted", err)
				}
				sameDisk(t, tc.op+" after "+first, before, readDisk(t, out))
				if got := w.Committed(); !reflect.DeepEqual(got, []int{0}) || w.CommittedHere() != 1 {
					t.Errorf("after Close: Committed %v, CommittedHere %d; want [0], 1", got, w.CommittedHere())
				}
			})
		}
	}
	// A cancelled ctx does not hide that the writer is closed.
	w, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), c, rank.Options{Scenarios: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.WriteScenario(cancelled, gen(t, c, 1)); !errors.Is(err, rank.ErrClosed) {
		t.Fatalf("WriteScenario(cancelled ctx) after Close: %v, want ErrClosed", err)
	}
}

// TestErrClosedAfterFailure: a writer broken by an I/O error returns the
// error until Close, and Close returns it; after Close, ErrClosed.
func TestErrClosedAfterFailure(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	// The first temp file's fsync fails: an I/O error, the writer breaks.
	fsys := vfs.Inject(vfs.OS(), vfs.Rule{Op: vfs.OpSync, Path: "_shards/tmp/*", Nth: 1, Err: syscall.EIO})
	w, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), c, rank.Options{Scenarios: 3, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteScenario(ctx, gen(t, c, 0)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Flush: %v, want the injected EIO", err)
	}
	if err := w.WriteScenario(ctx, gen(t, c, 1)); !errors.Is(err, syscall.EIO) || errors.Is(err, rank.ErrClosed) {
		t.Fatalf("WriteScenario on a broken writer: %v, want EIO, not ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, syscall.EIO) || errors.Is(err, rank.ErrClosed) {
		t.Fatalf("first Close of a broken writer: %v, want EIO", err)
	}
	for name, err := range map[string]error{"Close": w.Close(), "Flush": w.Flush(ctx), "WriteScenario": w.WriteScenario(ctx, gen(t, c, 2))} {
		if !errors.Is(err, rank.ErrClosed) {
			t.Errorf("%s after Close of a broken writer: %v, want ErrClosed", name, err)
		}
	}
}

// TestTrainingErrClosed: the training writer follows the same rule.
func TestTrainingErrClosed(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	for _, first := range []string{"Close", "CloseTerminated", "CloseInterrupted"} {
		t.Run(first, func(t *testing.T) {
			out := t.TempDir()
			id := explicit(t, 0, 1)
			w := openTraining(t, out, id, c, trainCfg(4, 8))
			if err := w.WriteIteration(ctx, iter(c, id, 1)); err != nil {
				t.Fatal(err)
			}
			var err error
			switch first {
			case "Close":
				err = w.Close()
			case "CloseTerminated":
				err = w.CloseTerminated(rank.TerminationConverged)
			case "CloseInterrupted":
				err = w.CloseInterrupted("test")
			}
			if err != nil {
				t.Fatal(err)
			}
			cuts, basis, states, meta := rootCheckpoint(c, 1)
			for op, err := range map[string]error{
				"WriteIteration":   w.WriteIteration(ctx, iter(c, id, 2)),
				"WriteCheckpoint":  w.WriteCheckpoint(ctx, 1, cuts, basis, states, meta),
				"Close":            w.Close(),
				"CloseTerminated":  w.CloseTerminated(rank.TerminationIterationLimit),
				"CloseInterrupted": w.CloseInterrupted("again"),
			} {
				if !errors.Is(err, rank.ErrClosed) || !strings.HasPrefix(err.Error(), "rank: "+op+" after Close") {
					t.Errorf("%s after %s: %v, want rank.ErrClosed naming %s", op, first, err, op)
				}
			}
			if w.LastIteration() != 1 || w.Written() != 1 {
				t.Errorf("after Close: LastIteration %d, Written %d; want 1, 1", w.LastIteration(), w.Written())
			}
		})
	}
}

// TestCloseContext: when its ctx ends while scenarios wait, CloseContext
// drops those not started, finishes what is being encoded, closes the
// journal as interrupted and says how many were dropped; a requeue then
// writes them. With time enough it is Close.
func TestCloseContext(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	t.Run("deadline", func(t *testing.T) {
		out := t.TempDir()
		id := explicit(t, 0, 1)
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: 5, Workers: 1, Queue: 8})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan int, 64)
		release := make(chan struct{})
		rank.SetTestHookEncode(w, func(s int) {
			started <- s
			if s == 0 {
				<-release
			}
		})
		for s := range 4 {
			if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
				t.Fatal(err)
			}
		}
		<-started // scenario 0's first table is being encoded (held); 1..3 wait
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		go func() { <-short.Done(); time.Sleep(20 * time.Millisecond); close(release) }()
		err = w.CloseContext(short)
		// Scenario 0 was not fully encoded: its other tables are not
		// started once the deadline passed, so it is dropped with 1..3.
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "4 accepted scenarios dropped") {
			t.Fatalf("CloseContext: %v, want DeadlineExceeded and 4 scenarios dropped", err)
		}
		if got := checkInvariants(t, out); len(got) != 0 {
			t.Fatalf("committed %v, want none", got)
		}
		st := readJournals(t, out)
		if len(st.closes) != 1 || st.closes[0].Status != manifest.StatusInterrupted || st.closes[0].Committed != 0 || !strings.Contains(st.closes[0].Reason, "4 accepted scenarios dropped") {
			t.Fatalf("close records %+v, want one, interrupted, none committed, naming the drop", st.closes)
		}
		if left, err := os.ReadDir(filepath.Join(out, layout.TempDir)); err != nil || len(left) != 0 {
			t.Errorf("the dropped scenarios left %d temp files (%v)", len(left), err)
		}
		// The requeued attempt writes the dropped ones.
		w, err = rank.Open(ctx, out, id, c, rank.Options{Scenarios: 5})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Remaining(); !reflect.DeepEqual(got, []int{0, 1, 2, 3, 4}) {
			t.Fatalf("Remaining after the drop %v, want [0 1 2 3 4]", got)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("in time", func(t *testing.T) {
		out := t.TempDir()
		w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 3})
		if err != nil {
			t.Fatal(err)
		}
		for s := range 3 {
			if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
				t.Fatal(err)
			}
		}
		bounded, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := w.CloseContext(bounded); err != nil {
			t.Fatal(err)
		}
		st := readJournals(t, out)
		if len(st.closes) != 1 || st.closes[0].Status != manifest.StatusClean || st.closes[0].Committed != 3 {
			t.Fatalf("close records %+v, want one, clean, 3 committed", st.closes)
		}
	})
}
