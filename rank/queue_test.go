package rank_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// TestQueueBackpressure: with the encoding held back, WriteScenario
// accepts Options.Queue scenarios and then blocks until a slot frees,
// which happens only when a scenario is committed.
func TestQueueBackpressure(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 4, Workers: 1, Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	rank.SetTestHookEncode(w, func(int) { <-release })
	for s := range 2 {
		if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Fatalf("scenario %d: %v", s, err)
		}
	}
	// The queue is full and nothing can be committed: a bounded wait must
	// end with the context's error, not with the scenario accepted.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = w.WriteScenario(short, gen(t, c, 2))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WriteScenario on a full queue: %v, want it to block until the deadline", err)
	}
	if got := w.Committed(); len(got) != 0 {
		t.Fatalf("committed %v while the encoding was held", got)
	}
	close(release)
	// Now it is accepted once a slot frees, i.e. once scenario 0 (the
	// first accepted, committed first) is durable.
	if err := w.WriteScenario(ctx, gen(t, c, 2)); err != nil {
		t.Fatal(err)
	}
	if !w.IsCommitted(0) {
		t.Fatal("a slot was freed before scenario 0 was committed")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Fatalf("committed %v, want [0 1 2]", got)
	}
}

// TestCommitOrderIsAcceptanceOrder: scenarios encode concurrently (and
// finish in any order) but the journal commits them in the order
// WriteScenario accepted them.
func TestCommitOrderIsAcceptanceOrder(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 8, Workers: 4, Queue: 8})
	if err != nil {
		t.Fatal(err)
	}
	// One table of scenario 0 is held (on one worker; the other three go
	// on) until every other scenario has started encoding: scenario 0
	// finishes last.
	var mu sync.Mutex
	started := map[int]bool{}
	others := make(chan struct{})
	held := false
	rank.SetTestHookEncode(w, func(s int) {
		mu.Lock()
		if s == 0 {
			hold := !held
			held = true
			mu.Unlock()
			if hold {
				select {
				case <-others:
				case <-time.After(time.Minute):
					t.Error("the other scenarios never started while scenario 0 was held")
				}
			}
			return
		}
		defer mu.Unlock()
		if !started[s] {
			started[s] = true
			if len(started) == 7 {
				close(others)
			}
		}
	})
	order := []int{0, 5, 1, 7, 2, 6, 3, 4}
	for _, s := range order {
		if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readJournals(t, out).order; !reflect.DeepEqual(got, order) {
		t.Fatalf("journal commit order %v, want acceptance order %v", got, order)
	}
}

// TestBadRowFoundWhileEncoding: a key the case does not have is found
// only while encoding; the scenario is not committed, the error is
// returned once by a later call, and the writer goes on.
func TestBadRowFoundWhileEncoding(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 3})
	if err != nil {
		t.Fatal(err)
	}
	bad := gen(t, c, 0)
	bad.Hydros.BlockID.Values[0] = 99 // no block 99 in the case
	if err := w.WriteScenario(ctx, bad); err != nil {
		t.Fatalf("the bad row is not visible before encoding, yet: %v", err)
	}
	err = w.Flush(ctx)
	var be *shard.BadRowError
	var se *rank.ScenarioError
	if !errors.As(err, &be) || !errors.As(err, &se) || se.Scenario != 0 {
		t.Fatalf("Flush: %v, want a *ScenarioError for scenario 0 wrapping a *shard.BadRowError", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("the error was reported twice: %v", err)
	}
	for s := range 3 {
		if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Fatalf("scenario %d after bad input: %v", s, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Fatalf("committed %v, want [0 1 2]", got)
	}
}

// TestWriteScenarioManyGoroutines: a solver's simulation workers share one
// writer with a small queue (run with -race: scripts/test.sh does).
func TestWriteScenarioManyGoroutines(t *testing.T) {
	out := t.TempDir()
	c := tinyCase(t)
	ctx := context.Background()
	const n = 40
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: n, Workers: 3, Queue: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := g; s < n; s += 8 {
				if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
					errs <- err
				}
				_ = w.IsCommitted(s)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); len(got) != n || w.CommittedHere() != n {
		t.Fatalf("committed %d (writer says %d), want %d", len(got), w.CommittedHere(), n)
	}
}
