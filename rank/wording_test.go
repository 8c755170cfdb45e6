package rank_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// TestScenarioErrorWording: what WriteScenario says about a scenario's
// tables, and about a scenario handed over twice, as an embedding user
// reads it.
func TestScenarioErrorWording(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	noLines := *c
	noLines.Lines = nil // no transmission lines: no exchanges table
	noLinesOrLags := noLines
	noLinesOrLags.InflowLagOrder = 0
	for _, tc := range []struct {
		name    string
		edit    func(*shard.Scenario)
		want    string
		notWant []string
	}{
		{
			name: "a table the case has no entities for (an)",
			edit: func(s *shard.Scenario) {},
			want: "scenario 0: has an exchanges table but case tiny has no exchanges: leave it nil",
		},
		{
			name: "costs left nil",
			edit: func(s *shard.Scenario) { s.Costs, s.Exchanges = nil, nil },
			want: "scenario 0: has no costs table: the costs table is required in every scenario (shard.Scenario.Costs is nil)",
			// Costs are no entities of the case.
			notWant: []string{"such entities", "has costs"},
		},
		{
			name: "an entity table left nil",
			edit: func(s *shard.Scenario) { s.Exchanges = nil; s.Hydros = nil },
			want: "scenario 0: has no hydros table but case tiny has hydros: the table of every entity type of the case is required",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), &noLines, rank.Options{Scenarios: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			sc := gen(t, c, 0) // the full case's scenario: it has exchanges
			tc.edit(sc)
			err = w.WriteScenario(ctx, sc)
			var se *rank.ScenarioError
			if !errors.As(err, &se) || err.Error() != tc.want {
				t.Fatalf("error %q, want a *ScenarioError saying %q", err, tc.want)
			}
			for _, s := range tc.notWant {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q says %q", err, s)
				}
			}
		})
	}
	t.Run("a vowel in another table: an inflow_lags table", func(t *testing.T) {
		w, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), &noLinesOrLags, rank.Options{Scenarios: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		sc := gen(t, c, 0)
		sc.Exchanges = nil
		if err := w.WriteScenario(ctx, sc); err == nil || !strings.Contains(err.Error(), "has an inflow_lags table but case tiny has no inflow_lags") {
			t.Fatalf("error %v", err)
		}
		sc.InflowLags, sc.Hydros = nil, nil
		if err := w.WriteScenario(ctx, sc); err == nil || !strings.Contains(err.Error(), "has no hydros table") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("a column left nil is missing", func(t *testing.T) {
		w, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), c, rank.Options{Scenarios: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		sc := gen(t, c, 0)
		n := len(sc.Buses.LoadMW)
		sc.Buses.LoadMW = nil
		want := "scenario 0: simulation/buses.load_mw: column is missing (its field is empty), want " + itoa(n) + " rows"
		if err := w.WriteScenario(ctx, sc); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("error %v, want it to start %q", err, want)
		}
	})
	t.Run("a thermals table: a", func(t *testing.T) {
		noThermals := *c
		noThermals.Thermals = nil
		w, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), &noThermals, rank.Options{Scenarios: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := w.WriteScenario(ctx, gen(t, c, 0)); err == nil || !strings.Contains(err.Error(), "has a thermals table but case tiny has no thermals") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestQueuedIsNotCommitted: a scenario handed over again while the first
// copy waits in the queue is ErrQueued ("already queued or being
// written"), which also matches ErrCommitted; once committed it is
// ErrCommitted ("already committed"), not ErrQueued.
func TestQueuedIsNotCommitted(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), c, rank.Options{Scenarios: 2, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	rank.SetTestHookEncode(w, func(int) { <-release })
	if err := w.WriteScenario(ctx, gen(t, c, 0)); err != nil {
		t.Fatal(err)
	}
	err = w.WriteScenario(ctx, gen(t, c, 0))
	var se *rank.ScenarioError
	if !errors.As(err, &se) || se.Scenario != 0 || !errors.Is(err, rank.ErrQueued) || !errors.Is(err, rank.ErrCommitted) {
		t.Fatalf("scenario 0 again while queued: %v, want a *ScenarioError matching ErrQueued and ErrCommitted", err)
	}
	if want := "scenario 0: rank: scenario already queued or being written by this writer (not committed yet)"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	close(release)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	err = w.WriteScenario(ctx, gen(t, c, 0))
	if !errors.Is(err, rank.ErrCommitted) || errors.Is(err, rank.ErrQueued) || err.Error() != "scenario 0: rank: scenario already committed" {
		t.Fatalf("scenario 0 again once committed: %v, want ErrCommitted only", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
