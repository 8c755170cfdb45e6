package synth

import (
	"math"
	"reflect"
	"testing"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// history returns every rank's record of iterations 1..k.
func history(c *manifest.Case, seed uint64, k, fp, world, workers int) [][]manifest.IterationInfo {
	h := make([][]manifest.IterationInfo, k+1)
	for it := 1; it <= k; it++ {
		for r := range world {
			h[it] = append(h[it], TrainingIteration(c, seed, it, fp, r, world, workers))
		}
	}
	return h
}

// TestTrainingIdentities checks, for several world sizes, forward-pass
// counts and worker counts, the identities the merge and analysts rely on.
func TestTrainingIdentities(t *testing.T) {
	const k = 30
	for _, name := range []string{"tiny", "demo"} {
		c := loadCase(t, name)
		for _, sh := range []struct{ fp, world, workers int }{{8, 1, 0}, {8, 3, 2}, {5, 2, 1}, {4, 7, 3}, {1, 1, 4}, {13, 4, 3}} {
			h := history(c, 11, k, sh.fp, sh.world, sh.workers)
			var prevActive int64
			prevLB := math.Inf(-1)
			for it := 1; it <= k; it++ {
				cv := h[it][0].Convergence
				if cv == nil {
					t.Fatalf("%s %+v iteration %d: the root has no convergence row", name, sh, it)
				}
				var sp int32
				var lp int64
				for r, info := range h[it] {
					if r > 0 && info.Convergence != nil {
						t.Errorf("rank %d has a convergence row", r)
					}
					checkRows(t, info, it, r, sh.workers)
					owned := rank.Contiguous.Owned(sh.fp, rank.Identity{Rank: r, World: sh.world, Launcher: "explicit"})
					if int(info.MPIRank.ScenariosProcessed) != len(owned) {
						t.Errorf("%s %+v it %d rank %d: scenarios_processed %d, rank.Contiguous gives %d", name, sh, it, r, info.MPIRank.ScenariosProcessed, len(owned))
					}
					sp += info.MPIRank.ScenariosProcessed
					lp += info.MPIRank.LPSolves
				}
				if int(cv.ForwardPasses) != sh.fp || sp != cv.ForwardPasses {
					t.Errorf("%s %+v it %d: forward_passes %d, ranks processed %d, want %d", name, sh, it, cv.ForwardPasses, sp, sh.fp)
				}
				if lp != cv.LPSolves {
					t.Errorf("%s %+v it %d: lp_solves %d, ranks sum to %d", name, sh, it, cv.LPSolves, lp)
				}
				// At least one forward solve and (Stages-1) x openings backward
				// solves per pass, plus the lower bound.
				if min := int64(sh.fp*(c.Stages+(c.Stages-1)*TrainingOpenings) + 1); cv.LPSolves < min {
					t.Errorf("it %d: lp_solves %d < %d", it, cv.LPSolves, min)
				}
				if want := int32(sh.fp * (c.Stages - 1)); cv.CutsAdded != want {
					t.Errorf("it %d: cuts_added %d, want %d", it, cv.CutsAdded, want)
				}
				if cv.CutsRemoved < 0 || cv.CutsRemoved > cv.CutsAdded {
					t.Errorf("it %d: cuts_removed %d of %d added", it, cv.CutsRemoved, cv.CutsAdded)
				}
				if cv.CutsActive != prevActive+int64(cv.CutsAdded)-int64(cv.CutsRemoved) {
					t.Errorf("it %d: cuts_active %d, want %d + %d - %d", it, cv.CutsActive, prevActive, cv.CutsAdded, cv.CutsRemoved)
				}
				prevActive = cv.CutsActive
				if !(cv.LowerBound > prevLB) || cv.LowerBound <= 0 {
					t.Errorf("it %d: lower bound %v after %v, want rising", it, cv.LowerBound, prevLB)
				}
				prevLB = cv.LowerBound
				if cv.GapPercent == nil {
					t.Fatalf("it %d: gap_percent null", it)
				}
				if g := (cv.UpperBoundMean - cv.LowerBound) / math.Abs(cv.UpperBoundMean) * 100; *cv.GapPercent != g {
					t.Errorf("it %d: gap_percent %v, want %v", it, *cv.GapPercent, g)
				}
				if !(cv.UpperBoundStd >= 0) || (sh.fp == 1) != (cv.UpperBoundStd == 0) {
					t.Errorf("it %d with %d passes: upper_bound_std %v", it, sh.fp, cv.UpperBoundStd)
				}
				if cv.TimeTotalMs < cv.TimeForwardMs+cv.TimeBackwardMs {
					t.Errorf("it %d: time_total_ms %d < forward %d + backward %d", it, cv.TimeTotalMs, cv.TimeForwardMs, cv.TimeBackwardMs)
				}
				// The slowest rank sets the iteration's forward time.
				var slowest int64
				for _, info := range h[it] {
					slowest = max(slowest, info.MPIRank.ForwardTimeMs)
				}
				if cv.TimeForwardMs < slowest {
					t.Errorf("it %d: time_forward_ms %d < slowest rank's %d", it, cv.TimeForwardMs, slowest)
				}
			}
			// Cut selection starts in iteration 3 and removes something by the end.
			if h[1][0].Convergence.CutsRemoved != 0 || h[2][0].Convergence.CutsRemoved != 0 || h[k][0].Convergence.CutsRemoved == 0 {
				t.Errorf("%s %+v: cuts removed %d, %d, ..., %d", name, sh, h[1][0].Convergence.CutsRemoved, h[2][0].Convergence.CutsRemoved, h[k][0].Convergence.CutsRemoved)
			}
		}
	}
}

// checkRows checks the shape of one rank's rows.
func checkRows(t *testing.T, info manifest.IterationInfo, it, r, workers int) {
	t.Helper()
	if info.Iteration != it || len(info.Timing) != workers+1 || info.MPIRank == nil ||
		int(info.MPIRank.Iteration) != it || int(info.MPIRank.Rank) != r {
		t.Fatalf("it %d rank %d: %+v", it, r, info)
	}
	var busy []int64
	for k, row := range info.Timing {
		if int(row.Iteration) != it || row.Rank == nil || int(*row.Rank) != r || (k == 0) != (row.WorkerID == nil) || (k > 0 && int(*row.WorkerID) != k-1) {
			t.Fatalf("it %d rank %d timing row %d: %+v", it, r, k, row)
		}
		for _, v := range []int64{row.ForwardWallMs, row.BackwardWallMs, row.CutSelectionMs, row.MPIAllreduceMs, row.CutSyncMs, row.LowerBoundMs,
			row.StateExchangeMs, row.CutBatchBuildMs, row.BwdSetupMs, row.BwdLoadImbalanceMs, row.BwdSchedulingOverheadMs,
			row.FwdSetupMs, row.FwdLoadImbalanceMs, row.FwdSchedulingOverheadMs, row.OverheadMs} {
			if v < 0 {
				t.Fatalf("it %d rank %d timing row %d: negative time %+v", it, r, k, row)
			}
		}
		if k > 0 {
			busy = append(busy, row.ForwardWallMs)
			// A worker's forward time plus its wait is the busiest worker's.
			if row.ForwardWallMs > info.Timing[0].ForwardWallMs {
				t.Errorf("it %d rank %d worker %d: forward %d ms > the rank's %d", it, r, k-1, row.ForwardWallMs, info.Timing[0].ForwardWallMs)
			}
		}
	}
	if (r == 0) != (info.Timing[0].LowerBoundMs > 0 || info.Convergence != nil) {
		t.Errorf("it %d rank %d: lower_bound_ms %d", it, r, info.Timing[0].LowerBoundMs)
	}
	m := info.MPIRank
	if m.ForwardTimeMs != info.Timing[0].ForwardWallMs || m.BackwardTimeMs != info.Timing[0].BackwardWallMs || m.IdleTimeMs < 0 {
		t.Errorf("it %d rank %d: mpi_rank %+v disagrees with its timing row %+v", it, r, *m, info.Timing[0])
	}
	if m.ScenariosProcessed == 0 && m.LPSolves != 0 && r != 0 {
		t.Errorf("it %d rank %d: %d LP solves without scenarios", it, r, m.LPSolves)
	}
}

// TestTrainingConvergence: the gap shrinks overall, the bounds approach
// each other, and the convergence row does not depend on the rank count
// (except its times).
func TestTrainingConvergence(t *testing.T) {
	c := loadCase(t, "demo")
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		const k = 60
		var early, late float64
		for it := 1; it <= k; it++ {
			one := TrainingIteration(c, seed, it, 8, 0, 1, 2).Convergence
			for _, world := range []int{2, 5, 16} {
				other := *TrainingIteration(c, seed, it, 8, 0, world, 0).Convergence
				other.TimeForwardMs, other.TimeBackwardMs, other.TimeTotalMs = one.TimeForwardMs, one.TimeBackwardMs, one.TimeTotalMs
				if !reflect.DeepEqual(*one, other) {
					t.Fatalf("seed %d it %d: convergence with 1 rank %+v, with %d ranks %+v", seed, it, *one, world, other)
				}
			}
			g := *one.GapPercent
			if it <= 5 {
				early += g / 5
			}
			if it > k-5 {
				late += g / 5
			}
			if it == 1 && g < 20 {
				t.Errorf("seed %d: first gap %.1f%%, want a wide one", seed, g)
			}
		}
		if !(late < early/3) || math.Abs(late) > 10 {
			t.Errorf("seed %d: gap %.2f%% over the first 5 iterations, %.2f%% over the last 5: want it to shrink", seed, early, late)
		}
	}
}

// TestTrainingDeterminism: the same arguments give the same record in any
// call order; the seed changes the history.
func TestTrainingDeterminism(t *testing.T) {
	c := loadCase(t, "tiny")
	fwd := history(c, 7, 12, 6, 3, 2)
	for it := 12; it >= 1; it-- {
		for r := 2; r >= 0; r-- {
			if got := TrainingIteration(c, 7, it, 6, r, 3, 2); !reflect.DeepEqual(got, fwd[it][r]) {
				t.Fatalf("it %d rank %d differs when computed in reverse order", it, r)
			}
		}
	}
	// An unrelated call in between (another seed, case, shape) changes nothing.
	_ = TrainingIteration(loadCase(t, "demo"), 99, 5, 3, 0, 1, 0)
	if got := TrainingIteration(c, 7, 5, 6, 1, 3, 2); !reflect.DeepEqual(got, fwd[5][1]) {
		t.Fatal("record changed after an unrelated call")
	}
	a := TrainingIteration(c, 7, 5, 6, 0, 3, 2).Convergence
	b := TrainingIteration(c, 8, 5, 6, 0, 3, 2).Convergence
	if a.LowerBound == b.LowerBound || a.UpperBoundMean == b.UpperBoundMean {
		t.Fatalf("seeds 7 and 8 give the same bounds: %+v", a)
	}
}

// TestTrainingEdgeCases: no forward passes (gap undefined, null), more
// ranks than passes, and bad arguments panic.
func TestTrainingEdgeCases(t *testing.T) {
	c := loadCase(t, "tiny")
	z := TrainingIteration(c, 1, 3, 0, 0, 2, 1)
	if cv := z.Convergence; cv.ForwardPasses != 0 || cv.UpperBoundMean != 0 || cv.GapPercent != nil || cv.CutsAdded != 0 || cv.LPSolves != 1 {
		t.Errorf("no forward passes: %+v", cv)
	}
	idle := TrainingIteration(loadCase(t, "demo"), 1, 3, 2, 4, 5, 1)
	if idle.MPIRank.ScenariosProcessed != 0 || idle.MPIRank.LPSolves != 0 || idle.MPIRank.IdleTimeMs <= 0 {
		t.Errorf("rank 4 of 5 with 2 passes: %+v", *idle.MPIRank)
	}
	for name, f := range map[string]func(){
		"nil case":        func() { TrainingIteration(nil, 1, 1, 8, 0, 1, 0) },
		"iteration 0":     func() { TrainingIteration(c, 1, 0, 8, 0, 1, 0) },
		"rank 2 of 2":     func() { TrainingIteration(c, 1, 1, 8, 2, 2, 0) },
		"negative fp":     func() { TrainingIteration(c, 1, 1, -1, 0, 1, 0) },
		"negative worker": func() { TrainingIteration(c, 1, 1, 8, 0, 1, -1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
