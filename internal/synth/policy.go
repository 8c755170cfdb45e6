package synth

import (
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
)

// Hash tags of the synthetic policy (far from the training tags).
const (
	tagCutIntercept uint64 = 0x100 + iota
	tagCutCoef
	tagCutState
	tagCutLife
	tagBasis
	tagVisited
)

// CheckpointCuts returns the cuts of the synthetic policy checkpoint taken
// after training iteration iteration, one policy.StageCuts per stage
// 0..Stages-1, with Capacity = iteration x forwardPasses (see
// CheckpointCutsCap for the capacity of a run with a known iteration
// limit).
func CheckpointCuts(c *manifest.Case, seed uint64, iteration, forwardPasses, rank, world int, allCuts bool) []policy.StageCuts {
	return CheckpointCutsCap(c, seed, iteration, iteration, forwardPasses, rank, world, allCuts)
}

// CheckpointCutID is the run-wide id of the cut generated at stage s by
// forward pass p of iteration it (1-based) with forwardPasses passes:
// ((it-1) x forwardPasses + p) x Stages + s.
func CheckpointCutID(c *manifest.Case, it, forwardPasses, p, s int) uint64 {
	return uint64(((it-1)*forwardPasses+p)*c.Stages + s)
}

// CheckpointCutsCap is CheckpointCuts with every stage's Capacity =
// maxIterations x forwardPasses (no warm-start cuts), the LP cut-row slots
// of a run of at most maxIterations iterations (>= iteration).
//
// Layout: every iteration it' <= iteration and forward pass p add one cut
// at each stage s < Stages-1 (the last stage has no future cost, so its
// StageCuts is empty): cuts_added = forwardPasses x (Stages-1), as the
// synthetic training history says. The cut's CutID is CheckpointCutID,
// unique over the run; its SlotIndex is (it'-1) x forwardPasses + p
// (warm start 0), so each stage's cuts are ordered by slot. Coefficients
// have c.StateDimension() entries ordered hydro by hydro (storage, then
// InflowLagOrder lags): storage water values are negative and grow in
// magnitude as the policy learns, lag coefficients are small;
// StateAtGeneration is a storage/lag trial point. Cut selection
// deactivates some cuts two or more iterations old (IsActive false).
//
// A rank holds the cuts of the forward passes it owns (a contiguous split
// of forwardPasses over world, as in TrainingIteration) unless allCuts;
// a cut's content depends only on (c, seed, iteration, cut id), so every
// rank that holds a cut holds the same bytes, and the union over ranks is
// the allCuts set.
//
// It panics on iteration < 1, forwardPasses < 1, maxIterations <
// iteration or a rank outside 0..world-1.
func CheckpointCutsCap(c *manifest.Case, seed uint64, iteration, maxIterations, forwardPasses, rank, world int, allCuts bool) []policy.StageCuts {
	if iteration < 1 || forwardPasses < 1 || maxIterations < iteration || world < 1 || rank < 0 || rank >= world {
		panic(fmt.Sprintf("synth.CheckpointCuts: iteration %d max %d forward passes %d rank %d world %d", iteration, maxIterations, forwardPasses, rank, world))
	}
	first, count := 0, forwardPasses
	if !allCuts {
		first, count = contiguous(forwardPasses, world, rank)
	}
	dim := c.StateDimension()
	out := make([]policy.StageCuts, c.Stages)
	for s := range out {
		sc := policy.StageCuts{StageID: uint32(s), StateDimension: uint32(dim), Capacity: uint32(maxIterations * forwardPasses)}
		if s < c.Stages-1 {
			sc.Cuts = make([]policy.Cut, 0, iteration*count)
			for it := 1; it <= iteration; it++ {
				for p := first; p < first+count; p++ {
					sc.Cuts = append(sc.Cuts, checkpointCut(c, seed, iteration, it, forwardPasses, p, s, dim))
				}
			}
		}
		out[s] = sc
	}
	return out
}

func checkpointCut(c *manifest.Case, seed uint64, ckpt, it, passes, p, s, dim int) policy.Cut {
	id := CheckpointCutID(c, it, passes, p, s)
	learn := 1 - math.Exp(-0.3*float64(it)) // water values firm up as training goes on
	remaining := float64(c.Stages - 1 - s)
	cut := policy.Cut{
		CutID:             id,
		SlotIndex:         uint32((it-1)*passes + p),
		Iteration:         uint32(it),
		ForwardPassIndex:  uint32(p),
		Coefficients:      make([]float64, dim),
		StateAtGeneration: make([]float64, dim),
	}
	per := 1 + c.InflowLagOrder
	var bx float64 // beta'x_hat
	for h, hy := range c.Hydros {
		base := h * per
		wv := -(5 + 45*unit(seed, tagCutCoef, id, uint64(base))) * learn * remaining / float64(max(c.Stages-1, 1))
		lo, hi := hy.StorageMinHm3, max(hy.StorageMaxHm3, hy.StorageMinHm3)
		x := lo + (hi-lo)*unit(seed, tagCutState, id, uint64(base))
		cut.Coefficients[base] = wv
		cut.StateAtGeneration[base] = x
		bx += wv * x
		for l := 1; l < per; l++ {
			k := base + l
			coef := -(0.5 + 2*unit(seed, tagCutCoef, id, uint64(k))) * learn / float64(l)
			inflow := hy.MeanInflowM3s * (0.5 + unit(seed, tagCutState, id, uint64(k)))
			cut.Coefficients[k] = coef
			cut.StateAtGeneration[k] = inflow
			bx += coef * inflow
		}
	}
	// The cut's value at its trial point (a share of the remaining cost);
	// intercept = value - beta'x_hat.
	value := 1000 * remaining * (0.5 + unit(seed, tagCutIntercept, id)) * learn
	cut.Intercept = value - bx
	life := unit(seed, tagCutLife, id)
	age := ckpt - it
	cut.IsActive = !(life < 0.45 && age >= 2+int(life*10))
	return cut
}

// CheckpointBasis returns the root's synthetic LP bases of the checkpoint
// at iteration: one per stage, columns = 4 per hydro + StateDimension,
// rows = 2 per hydro + 1 + the stage's active cut rows (numCutRows[s],
// e.g. from the cuts' IsActive), status codes 0..3.
func CheckpointBasis(c *manifest.Case, seed uint64, iteration int, numCutRows []int) []policy.StageBasis {
	out := make([]policy.StageBasis, c.Stages)
	cols := 4*len(c.Hydros) + c.StateDimension() + len(c.Thermals)
	for s := range out {
		nc := 0
		if s < len(numCutRows) {
			nc = numCutRows[s]
		}
		rows := 2*len(c.Hydros) + 1 + nc
		b := policy.StageBasis{StageID: uint32(s), Iteration: uint32(iteration), ColumnStatus: make([]byte, cols), RowStatus: make([]byte, rows), NumCutRows: uint32(nc)}
		for i := range b.ColumnStatus {
			b.ColumnStatus[i] = byte(key(seed, tagBasis, uint64(iteration), uint64(s), uint64(i)) % 4)
		}
		for i := range b.RowStatus {
			b.RowStatus[i] = byte(key(seed, tagBasis, uint64(iteration), uint64(s), uint64(cols+i)) % 4)
		}
		out[s] = b
	}
	return out
}

// CheckpointStates returns the root's synthetic visited states: per stage,
// one state per forward pass of every iteration 1..iteration (iteration x
// forwardPasses rows of StateDimension values).
func CheckpointStates(c *manifest.Case, seed uint64, iteration, forwardPasses int) []policy.StageStates {
	dim := c.StateDimension()
	per := 1 + c.InflowLagOrder
	out := make([]policy.StageStates, c.Stages)
	for s := range out {
		st := policy.StageStates{StageID: uint32(s), StateDimension: uint32(dim), Data: make([]float64, 0, iteration*forwardPasses*dim)}
		for it := 1; it <= iteration; it++ {
			for p := range forwardPasses {
				for h, hy := range c.Hydros {
					lo, hi := hy.StorageMinHm3, max(hy.StorageMaxHm3, hy.StorageMinHm3)
					st.Data = append(st.Data, lo+(hi-lo)*unit(seed, tagVisited, uint64(it), uint64(p), uint64(s), uint64(h*per)))
					for l := 1; l < per; l++ {
						st.Data = append(st.Data, hy.MeanInflowM3s*(0.5+unit(seed, tagVisited, uint64(it), uint64(p), uint64(s), uint64(h*per+l))))
					}
				}
			}
		}
		out[s] = st
	}
	return out
}

// CheckpointMeta returns the root rank's metadata fragment of the
// checkpoint at iteration: bounds from the synthetic training history
// (lower bound of iteration, best upper bound = lowest forward-pass mean
// so far), capacity per stage = maxIterations x forwardPasses, warm-start
// counts 0, system hash = the case hash, config hash = XXH64 of the case
// hash and the training configuration. visitedStates is the number of
// states exported (0 when none).
func CheckpointMeta(c *manifest.Case, seed uint64, iteration, maxIterations, forwardPasses, visitedStates int) *manifest.PolicyMeta {
	t := newTrainingModel(c, seed, forwardPasses)
	lb, _, _ := t.bounds(iteration)
	best := math.Inf(1)
	for it := 1; it <= iteration; it++ {
		_, mean, _ := t.bounds(it)
		best = min(best, mean)
	}
	var ub *float64
	if !math.IsInf(best, 1) {
		ub = &best
	}
	m := &manifest.PolicyMeta{
		Iteration:          iteration,
		LowerBound:         lb,
		BestUpperBound:     ub,
		Seed:               seed,
		ConfigHash:         fmt.Sprintf("%016x", xxhash.Sum64String(fmt.Sprintf("%s/seed=%d/max_iterations=%d/forward_passes=%d", c.Hash(), seed, maxIterations, forwardPasses))),
		SystemHash:         c.Hash(),
		MaxIterations:      maxIterations,
		ForwardPasses:      forwardPasses,
		StateDimension:     c.StateDimension(),
		NumStages:          c.Stages,
		Capacity:           make([]uint32, c.Stages),
		WarmStartCounts:    make([]uint32, c.Stages),
		TotalVisitedStates: visitedStates,
	}
	for s := range m.Capacity {
		m.Capacity[s] = uint32(maxIterations * forwardPasses)
	}
	return m
}
