package synth

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/hydroshard/hydroshard/manifest"
)

// TrainingOpenings is the number of backward-pass openings (noise
// realisations) solved per trial state and stage in the synthetic
// training: each forward pass costs Stages LP solves forward and
// (Stages-1) x TrainingOpenings backward.
const TrainingOpenings = 4

// Hash tags: each quantity draws from its own deterministic stream.
const (
	tagRun uint64 = iota + 1
	tagUB
	tagCuts
	tagPassFwd
	tagPassBwd
	tagRetry
	tagRank
)

// TrainingIteration returns rank's record of training iteration it (1-based)
// of a synthetic SDDP run with forwardPasses forward passes per iteration,
// world ranks and workers worker threads per rank. It depends only on its
// arguments: no clock, no state, no call order, so every rank computes the
// same job-level numbers and a resumed run continues the same history.
//
// The history is plausible: the lower bound rises and flattens,
// LB = U* x (1 - a exp(-b it)), towards U*, an estimate of the case's
// expected discounted cost; the upper bound is the mean (and standard
// deviation) of the forward passes' costs, lognormal around a policy cost
// that falls towards U*, so the gap shrinks (with sampling noise, and it
// may turn slightly negative late, as a statistical upper bound does).
// Each iteration adds one cut per forward pass per stage after the first
// (cuts_added = forwardPasses x (Stages-1)); cut selection removes some
// from the third iteration on; cuts_active is the running sum of added
// minus removed. Times follow the LP count and size, and backward solves
// slow down as cuts accumulate.
//
// Work is split as the ranks would: forward passes in contiguous blocks
// over the ranks (the first forwardPasses%world ranks get one extra, as
// rank.Contiguous does), then over the rank's workers the same way. The
// identities the merge can check hold for every iteration:
//
//   - convergence.forward_passes = forwardPasses = the sum over ranks of
//     mpi_rank.scenarios_processed;
//   - convergence.lp_solves = the sum over ranks of mpi_rank.lp_solves
//     (each pass's solves, with occasional numerical retries, plus one
//     lower-bound solve on the root);
//   - cuts_active(it) = cuts_active(it-1) + cuts_added - cuts_removed.
//
// The convergence row's bounds, cuts, forward passes and LP solves do not
// depend on world or workers; its times do (the slowest rank sets them).
// Only rank 0 gets the convergence row. Timing holds the rank-level row
// and one row per worker (none when workers is 0).
//
// It panics on a nil or invalid case, it < 1, forwardPasses < 0, workers
// < 0 or a rank outside 0..world-1: those are programming errors.
func TrainingIteration(c *manifest.Case, seed uint64, it, forwardPasses, rank, world, workers int) manifest.IterationInfo {
	if c == nil {
		panic("synth: TrainingIteration: nil case")
	}
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("synth: TrainingIteration: case %q: %v", c.Name, err))
	}
	if it < 1 || it > math.MaxInt32 || forwardPasses < 0 || forwardPasses > math.MaxInt32 || workers < 0 || world < 1 || rank < 0 || rank >= world {
		panic(fmt.Sprintf("synth: TrainingIteration: iteration %d, forward passes %d, rank %d of %d, %d workers: out of range", it, forwardPasses, rank, world, workers))
	}
	t := newTrainingModel(c, seed, forwardPasses)
	cf := t.cutFactor(it)
	ranks := make([]rankWork, world)
	for r := range ranks {
		ranks[r] = t.rankWork(it, r, world, workers, cf)
	}
	var maxFwd, maxBwd float64
	for _, w := range ranks {
		maxFwd = max(maxFwd, w.fwdWall)
		maxBwd = max(maxBwd, w.bwdWall)
	}
	me := ranks[rank]
	it32, r32 := int32(it), int32(rank)
	idle := (maxFwd - me.fwdWall) + (maxBwd - me.bwdWall)
	comm := t.commMs(it, rank, world)
	cutSync, stateEx := t.cutSyncMs(world), t.stateExchangeMs(world)
	cutSel := t.cutSelectionMs(it, rank, world)
	lbMs := 0.0
	if rank == 0 {
		lbMs = t.lowerBoundMs(it, cf)
	}
	overhead := 0.2 + 0.3*unit(seed, tagRank, uint64(it), uint64(rank), 9)
	info := manifest.IterationInfo{Iteration: it}

	// The rank-level timing row, then one row per worker.
	var fwdImb, bwdImb float64
	for k := range me.workerFwd {
		fwdImb += me.maxWorkerFwd - me.workerFwd[k]
		bwdImb += me.maxWorkerBwd - me.workerBwd[k]
	}
	if n := float64(len(me.workerFwd)); n > 0 {
		fwdImb, bwdImb = fwdImb/n, bwdImb/n
	}
	batch := t.cutBatchMs(me.count)
	info.Timing = append(info.Timing, manifest.TimingRow{
		Iteration: it32, Rank: ptr(r32),
		ForwardWallMs:           ms(me.fwdWall),
		BackwardWallMs:          ms(me.bwdWall),
		CutSelectionMs:          ms(cutSel),
		MPIAllreduceMs:          ms(comm + idle),
		CutSyncMs:               ms(cutSync),
		LowerBoundMs:            ms(lbMs),
		StateExchangeMs:         ms(stateEx),
		CutBatchBuildMs:         ms(batch),
		BwdSetupMs:              ms(me.bwdSetup),
		BwdLoadImbalanceMs:      ms(bwdImb),
		BwdSchedulingOverheadMs: ms(me.bwdSched),
		FwdSetupMs:              ms(me.fwdSetup),
		FwdLoadImbalanceMs:      ms(fwdImb),
		FwdSchedulingOverheadMs: ms(me.fwdSched),
		OverheadMs:              ms(overhead),
	})
	for k := 0; k < workers; k++ {
		info.Timing = append(info.Timing, manifest.TimingRow{
			Iteration: it32, Rank: ptr(r32), WorkerID: ptr(int32(k)),
			ForwardWallMs:           ms(me.workerFwd[k]),
			BackwardWallMs:          ms(me.workerBwd[k]),
			CutBatchBuildMs:         ms(batch / float64(workers)),
			BwdSetupMs:              ms(me.bwdSetup),
			BwdLoadImbalanceMs:      ms(me.maxWorkerBwd - me.workerBwd[k]),
			BwdSchedulingOverheadMs: ms(me.bwdSched / float64(workers)),
			FwdSetupMs:              ms(me.fwdSetup),
			FwdLoadImbalanceMs:      ms(me.maxWorkerFwd - me.workerFwd[k]),
			FwdSchedulingOverheadMs: ms(me.fwdSched / float64(workers)),
		})
	}
	info.MPIRank = &manifest.MPIRankRow{
		Iteration:           it32,
		Rank:                r32,
		ForwardTimeMs:       ms(me.fwdWall),
		BackwardTimeMs:      ms(me.bwdWall),
		CommunicationTimeMs: ms(comm + cutSync + stateEx),
		IdleTimeMs:          ms(idle),
		LPSolves:            me.lp,
		ScenariosProcessed:  int32(me.count),
	}
	if rank != 0 {
		return info
	}

	var lp int64
	passes := 0
	for _, w := range ranks {
		lp += w.lp
		passes += w.count
	}
	lb, ubMean, ubStd := t.bounds(it)
	var gap *float64
	if ubMean != 0 {
		g := (ubMean - lb) / math.Abs(ubMean) * 100
		gap = &g
	}
	added, removed, active := t.cuts(it)
	fwdMs := ms(maxFwd + stateEx)
	bwdMs := ms(maxBwd + cutSync + comm)
	info.Convergence = &manifest.ConvergenceRow{
		Iteration:      it32,
		LowerBound:     lb,
		UpperBoundMean: ubMean,
		UpperBoundStd:  ubStd,
		GapPercent:     gap,
		CutsAdded:      int32(added),
		CutsRemoved:    int32(removed),
		CutsActive:     active,
		TimeForwardMs:  fwdMs,
		TimeBackwardMs: bwdMs,
		TimeTotalMs:    fwdMs + bwdMs + ms(lbMs+cutSel+overhead),
		ForwardPasses:  int32(passes),
		LPSolves:       lp,
	}
	return info
}

// trainingModel holds what the case and seed fix for the whole run.
type trainingModel struct {
	seed     uint64
	stages   int
	passes   int
	ubStar   float64 // expected discounted cost the bounds converge to
	lpMs     float64 // one LP solve without cuts
	stateDim int     // storage and inflow lags per hydro
	// Run shape: LB = U*(1 - a exp(-b it)); policy cost U*(1 + cu exp(-d it));
	// relative std of a forward pass's cost.
	a, b, cu, d, sigma float64
}

func newTrainingModel(c *manifest.Case, seed uint64, passes int) *trainingModel {
	t := &trainingModel{seed: seed, stages: c.Stages, passes: passes}
	var hours, load float64
	for _, h := range c.Hours {
		hours += h
	}
	for _, b := range c.Buses {
		load += b.LoadMW
	}
	// Price of the energy hydro does not cover: a share of the mean
	// thermal cost (capacity weighted), or a small share of the deficit
	// cost for a case without thermals.
	var capMW, costCap, deficit float64
	for _, th := range c.Thermals {
		capMW += th.CapacityMW
		costCap += th.CapacityMW * th.CostPerMWh
	}
	for _, b := range c.Buses {
		deficit += b.DeficitCost / float64(len(c.Buses))
	}
	price := 0.02 * deficit
	if capMW > 0 {
		price = 0.35 * costCap / capMW
	}
	df := 1.0
	for range c.Stages {
		t.ubStar += df * load * hours * price
		df /= 1 + c.DiscountRate
	}
	t.ubStar = max(t.ubStar, 1000)
	size := len(c.Hydros)*(4+c.InflowLagOrder) + len(c.Thermals) + 3*len(c.Buses) + 2*len(c.Lines) +
		len(c.PumpingStations) + len(c.Contracts) + len(c.NonControllables) + len(c.GenericConstraints)
	t.lpMs = 0.1 + 0.003*float64(size*len(c.Hours))
	t.stateDim = len(c.Hydros) * (1 + c.InflowLagOrder)
	t.a = 0.55 + 0.3*unit(seed, tagRun, 1)
	t.b = 0.12 + 0.1*unit(seed, tagRun, 2)
	t.cu = 0.25 + 0.25*unit(seed, tagRun, 3)
	t.d = t.b * (1.2 + 0.3*unit(seed, tagRun, 4))
	t.sigma = 0.08 + 0.07*unit(seed, tagRun, 5)
	return t
}

// bounds returns the lower bound and the forward passes' cost mean and
// sample standard deviation of iteration it (0, 0 without passes).
func (t *trainingModel) bounds(it int) (lb, mean, std float64) {
	x := float64(it)
	lb = t.ubStar * (1 - t.a*math.Exp(-t.b*x))
	if t.passes == 0 {
		return lb, 0, 0
	}
	policy := t.ubStar * (1 + t.cu*math.Exp(-t.d*x))
	rng := rand.New(rand.NewPCG(key(t.seed, tagUB), uint64(it)))
	costs := make([]float64, t.passes)
	for i := range costs {
		costs[i] = policy * math.Exp(t.sigma*rng.NormFloat64()-t.sigma*t.sigma/2)
		mean += costs[i]
	}
	mean /= float64(t.passes)
	if t.passes > 1 {
		var ss float64
		for _, v := range costs {
			ss += (v - mean) * (v - mean)
		}
		std = math.Sqrt(ss / float64(t.passes-1))
	}
	return lb, mean, std
}

// cutsAdded is one cut per forward pass per stage after the first.
func (t *trainingModel) cutsAdded() int { return t.passes * (t.stages - 1) }

// cutsRemoved is iteration j's cut selection: nothing in the first two
// iterations, then a share of the iteration's new cuts that grows towards
// about 60% (so the pool keeps growing, ever more slowly). It never
// exceeds cutsAdded, so cuts_active never falls below zero.
func (t *trainingModel) cutsRemoved(j int) int {
	if j <= 2 {
		return 0
	}
	f := 0.6 * (1 - math.Exp(-float64(j-2)/8)) * (0.7 + 0.6*unit(t.seed, tagCuts, uint64(j)))
	return min(t.cutsAdded(), int(math.Floor(f*float64(t.cutsAdded()))))
}

// cuts returns iteration it's added and removed cuts and the active count
// after it: the sum over iterations 1..it of added minus removed.
func (t *trainingModel) cuts(it int) (added, removed int, active int64) {
	added = t.cutsAdded()
	for j := 1; j <= it; j++ {
		active += int64(added - t.cutsRemoved(j))
	}
	return added, t.cutsRemoved(it), active
}

// cutFactor is how much slower a backward LP is with the cuts active
// before iteration it.
func (t *trainingModel) cutFactor(it int) float64 {
	_, _, active := t.cuts(it - 1)
	return 1 + float64(active)/float64(max(1, t.stages-1))/400
}

// rankWork is one rank's share of an iteration.
type rankWork struct {
	count                      int // forward passes (scenarios) processed
	lp                         int64
	workerFwd, workerBwd       []float64 // busy ms per worker
	maxWorkerFwd, maxWorkerBwd float64
	fwdSetup, bwdSetup         float64
	fwdSched, bwdSched         float64
	fwdWall, bwdWall           float64
}

// contiguous is rank.Contiguous's block of n items for rank r of world.
func contiguous(n, world, r int) (start, count int) {
	base, extra := n/world, n%world
	if r < extra {
		return r * (base + 1), base + 1
	}
	return extra*(base+1) + (r-extra)*base, base
}

func (t *trainingModel) rankWork(it, r, world, workers int, cf float64) rankWork {
	first, count := contiguous(t.passes, world, r)
	w := rankWork{count: count}
	nw := max(workers, 1) // no worker rows: the rank is its own single worker
	w.workerFwd, w.workerBwd = make([]float64, nw), make([]float64, nw)
	for k := range nw {
		ws, wc := contiguous(count, nw, k)
		for p := first + ws; p < first+ws+wc; p++ {
			pp := uint64(p)
			w.workerFwd[k] += float64(t.stages) * t.lpMs * (0.85 + 0.3*unit(t.seed, tagPassFwd, uint64(it), pp))
			w.workerBwd[k] += float64(t.stages-1) * TrainingOpenings * t.lpMs * cf * (0.85 + 0.3*unit(t.seed, tagPassBwd, uint64(it), pp))
			w.lp += int64(t.stages + (t.stages-1)*TrainingOpenings + t.retries(it, p))
		}
		w.maxWorkerFwd = max(w.maxWorkerFwd, w.workerFwd[k])
		w.maxWorkerBwd = max(w.maxWorkerBwd, w.workerBwd[k])
	}
	if r == 0 {
		w.lp++ // the lower bound: the first stage with the current cuts
	}
	u := func(k uint64) float64 { return unit(t.seed, tagRank, uint64(it), uint64(r), k) }
	w.fwdSetup = 0.2 + 0.05*t.lpMs*float64(t.stages)*u(1)
	w.bwdSetup = 0.3 + 0.05*t.lpMs*float64(t.stages)*cf*u(2)
	w.fwdSched = 0.02 * float64(count) * (0.5 + u(3))
	w.bwdSched = 0.03 * float64(count) * (0.5 + u(4))
	w.fwdWall = w.fwdSetup + w.maxWorkerFwd + w.fwdSched
	w.bwdWall = w.bwdSetup + w.maxWorkerBwd + w.bwdSched
	return w
}

// retries is the number of extra solves of forward pass p (numerical
// trouble: an LP solved again with another algorithm); mostly 0.
func (t *trainingModel) retries(it, p int) int {
	u := unit(t.seed, tagRetry, uint64(it), uint64(p))
	return int(3 * u * u * u * u)
}

// commMs is rank r's time in collectives (one per stage in the backward
// pass, plus bounds), excluding waiting for slower ranks.
func (t *trainingModel) commMs(it, r, world int) float64 {
	lat := 0.002 + 0.05*math.Log2(float64(world))
	return lat * float64(t.stages+2) * (0.8 + 0.4*unit(t.seed, tagRank, uint64(it), uint64(r), 5))
}

// cutSyncMs: every rank receives every new cut (state_dimension + 1
// coefficients).
func (t *trainingModel) cutSyncMs(world int) float64 {
	if world == 1 {
		return 0
	}
	return 1e-5 * float64(t.cutsAdded()*(t.stateDim+1)) * math.Log2(float64(2*world))
}

// stateExchangeMs: trial states gathered after the forward pass.
func (t *trainingModel) stateExchangeMs(world int) float64 {
	if world == 1 {
		return 0
	}
	return 1e-5 * float64(t.passes*t.stages*t.stateDim) * math.Log2(float64(2*world))
}

// cutSelectionMs grows with the active cuts the rank checks.
func (t *trainingModel) cutSelectionMs(it, r, world int) float64 {
	_, _, active := t.cuts(it)
	return 2e-4 * float64(active) * float64(t.stateDim+1) / float64(world) * (0.8 + 0.4*unit(t.seed, tagRank, uint64(it), uint64(r), 6))
}

// lowerBoundMs: the root solves the first stage with its cuts.
func (t *trainingModel) lowerBoundMs(it int, cf float64) float64 {
	return t.lpMs * cf * (1 + unit(t.seed, tagRank, uint64(it), 0, 7))
}

// cutBatchMs: building the cut batch of the rank's trial states.
func (t *trainingModel) cutBatchMs(count int) float64 {
	return 2e-4 * float64(count*(t.stages-1)*(t.stateDim+1))
}

func ptr[T any](v T) *T { return &v }

// ms rounds a duration in milliseconds to the tables' int64 ms.
func ms(v float64) int64 { return int64(math.Round(max(v, 0))) }

// key hashes the seed and parts into one stream key (SplitMix64 steps).
func key(seed uint64, parts ...uint64) uint64 {
	h := splitmix(seed ^ 0x7472_6169_6e69_6e67) // "training"
	for _, p := range parts {
		h = splitmix(h ^ p)
	}
	return h
}

// unit is a deterministic uniform draw in [0, 1) from the seed and parts.
func unit(seed uint64, parts ...uint64) float64 {
	return float64(key(seed, parts...)>>11) / (1 << 53)
}

func splitmix(x uint64) uint64 {
	x += 0x9e37_79b9_7f4a_7c15
	x = (x ^ (x >> 30)) * 0xbf58_476d_1ce4_e5b9
	x = (x ^ (x >> 27)) * 0x94d0_49bb_1331_11eb
	return x ^ (x >> 31)
}
