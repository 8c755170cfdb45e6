// Package synth is a synthetic rank: it produces physically plausible,
// deterministic results of one scenario for a case, in the columnar form a
// solver hands to the writer (shard.Scenario). It is the demo data source
// and the load generator of cmd/simrank.
//
// The numbers are not optimal dispatch, but they obey the physics an analyst
// would check: the water balance of every reservoir (with cascades, pumping
// and evaporation), storage and turbine bounds, the power balance of every
// bus (with line losses), and stage costs that add up from the entity
// tables. Everything depends only on (case, seed, scenario): one PRNG stream
// per scenario, no clock, no global state, so runs with any rank count give
// identical data.
package synth

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// Storage binding codes (simulation/hydros storage_binding_code), Cobre's
// table (see shard): the code describes the final storage of the block.
const (
	// StorageBindingNone: storage strictly between its minimum and maximum.
	StorageBindingNone = shard.StorageBindingNone
	// StorageBindingBelowMinimum: storage at its minimum, or below it
	// (then storage_violation_below_hm3 > 0).
	StorageBindingBelowMinimum = shard.StorageBindingBelowMinimum
	// StorageBindingAboveMaximum: storage at its maximum (the plant spills
	// or turbines at full capacity to stay there).
	StorageBindingAboveMaximum = shard.StorageBindingAboveMaximum
	// StorageBindingBoth: minimum and maximum coincide (a run-of-river
	// plant with no operating range) and the storage is there.
	StorageBindingBoth = shard.StorageBindingBoth
)

// Operative state codes (operative_state_code of every entity table),
// Cobre's table (see shard). The synthetic solver writes three of them.
const (
	// OperativeOperating: the entity is in service within its limits;
	// every row not described below.
	OperativeOperating = shard.OperativeOperating
	// OperativeMaintenance: a thermal plant out for maintenance for the
	// whole stage; it produces nothing (generation 0).
	OperativeMaintenance = shard.OperativeMaintenance
	// OperativeSaturated: a thermal plant dispatched at its full capacity
	// (capacity_mw > 0).
	OperativeSaturated = shard.OperativeSaturated
)

// StorageViolationPenalty is the penalty, in $ per hm3 and per block row, of
// storage below its minimum: storage_violation_cost of a stage is the sum of
// storage_violation_below_hm3 over its hydro rows times this penalty.
const StorageViolationPenalty = 1e6

// GNLLeadStages is the commitment lead time of GNL (LNG) thermals: the
// gnl_decision_mw of stage t is the gnl_committed_mw of stage t+GNLLeadStages.
// Before that, commitments are GNLInitialCommitment x capacity.
const (
	GNLLeadStages        = 2
	GNLInitialCommitment = 0.3
)

// Model parameters.
const (
	hm3PerM3sHour    = 3600 / 1e6 // m3/s during one hour, in hm3
	mwhPerHm3PerMW   = 1e6 / 3600 // MWh produced by 1 hm3 through 1 MW/(m3/s)
	inflowSigma      = 0.35       // innovation std of the log-inflow AR process
	inflowBusCorr    = 0.6        // share of innovation variance common to a bus
	inflowClamp      = 2.5        // |log-inflow state| bound
	evaporationCoef  = 0.0024     // m3/s of evaporation per hm3 of storage proxy
	maintenanceProb  = 0.02       // per thermal and stage
	genericViolProb  = 0.04       // per generic constraint and block
	genericViolScale = 20         // mean positive slack
	snapRel          = 1e-10      // rounding snap of storage to its bounds and of bus balances
	minPrice         = 0.01       // $/MWh, floor of the spot price
)

// Generate returns the results of one scenario. Deterministic: depends only
// on (case, seed, scenario) — never on rank count, time, or call order — so
// runs with 1 rank and 3 ranks produce identical data.
func Generate(c *manifest.Case, seed uint64, scenario int) (*shard.Scenario, error) {
	if c == nil {
		return nil, errors.New("synth: nil case")
	}
	if scenario < 0 {
		return nil, fmt.Errorf("synth: scenario %d, want >= 0", scenario)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("synth: case %q: %w", c.Name, err)
	}
	if !(c.DiscountRate > -1) {
		return nil, fmt.Errorf("synth: case %q: discount_rate %v, want > -1", c.Name, c.DiscountRate)
	}
	m, err := newModel(c)
	if err != nil {
		return nil, err
	}
	g := &gen{model: m, rng: rand.New(rand.NewPCG(seed, uint64(scenario)))}
	return g.run(scenario), nil
}

// Cost returns the scenario's cost summary computed from the costs rows:
// total = sum over stages of discount_factor*immediate_cost; per-stage =
// discount_factor*immediate_cost for each stage in order.
func Cost(s *shard.Scenario) (total float64, stages []float64) {
	if s == nil || s.Costs == nil {
		return 0, nil
	}
	k := s.Costs
	stages = make([]float64, len(k.StageID))
	for i := range stages {
		stages[i] = k.DiscountFactor[i] * k.ImmediateCost[i]
		total += stages[i]
	}
	return total, stages
}

// model is the case resolved into indices, computed once per Generate call.
type model struct {
	c      *manifest.Case
	nT, nB int

	hydroBus  []int
	upstream  [][]int // hydros whose downstream is this one, in case order
	order     []int   // hydros, upstream before downstream
	cumProd   []float64
	divIn     []bool // hydro is the destination of a pumping station
	divOut    []bool // hydro is the source of a pumping station
	hasEvap   []bool
	allProd   []bool
	thermBus  []int
	isGNL     []bool
	merit     [][]int // per bus: thermals by cost, then index
	lineSrc   []int
	lineTgt   []int
	pumpBus   []int
	pumpFrom  []int
	pumpTo    []int
	contrBus  []int
	contrSign []float64
	ncBus     []int

	busLineCap []float64 // total capacity of the lines touching each bus
	busHydros  [][]int   // hydros of each bus, in case order

	phi       []float64 // AR coefficients, lag 1..p
	basePrice float64   // $/MWh, mean thermal cost
	loadBlock []float64 // load factor per block (heavy .. light)
	pumpBlock []float64 // pumping propensity per block
}

func newModel(c *manifest.Case) (*model, error) {
	m := &model{c: c, nT: c.Stages, nB: len(c.Hours)}
	bus := make(map[int32]int, len(c.Buses))
	for i, b := range c.Buses {
		bus[b.ID] = i
	}
	hyd := make(map[int32]int, len(c.Hydros))
	for i, h := range c.Hydros {
		hyd[h.ID] = i
	}
	nH := len(c.Hydros)
	m.hydroBus = make([]int, nH)
	m.upstream = make([][]int, nH)
	m.cumProd = make([]float64, nH)
	m.divIn = make([]bool, nH)
	m.divOut = make([]bool, nH)
	m.hasEvap = make([]bool, nH)
	m.allProd = make([]bool, nH)
	down := make([]int, nH)
	indeg := make([]int, nH)
	m.busHydros = make([][]int, len(c.Buses))
	for i, h := range c.Hydros {
		m.hydroBus[i] = bus[h.BusID]
		m.busHydros[m.hydroBus[i]] = append(m.busHydros[m.hydroBus[i]], i)
		m.hasEvap[i] = h.Evaporation
		m.allProd[i] = true
		down[i] = -1
		if h.DownstreamID >= 0 {
			d := hyd[h.DownstreamID]
			if d == i {
				return nil, fmt.Errorf("synth: case %q: hydro %d is its own downstream", c.Name, h.ID)
			}
			down[i] = d
			m.upstream[d] = append(m.upstream[d], i)
			indeg[d]++
		}
	}
	// Kahn's algorithm, FIFO from case order: deterministic.
	m.order = make([]int, 0, nH)
	for i := range nH {
		if indeg[i] == 0 {
			m.order = append(m.order, i)
		}
	}
	for k := 0; k < len(m.order); k++ {
		if d := down[m.order[k]]; d >= 0 {
			if indeg[d]--; indeg[d] == 0 {
				m.order = append(m.order, d)
			}
		}
	}
	if len(m.order) != nH {
		return nil, fmt.Errorf("synth: case %q: the hydro cascade (downstream_id) has a cycle", c.Name)
	}
	for k := nH - 1; k >= 0; k-- {
		i := m.order[k]
		m.cumProd[i] = c.Hydros[i].Productivity
		if down[i] >= 0 {
			m.cumProd[i] += m.cumProd[down[i]]
		}
	}

	m.thermBus = make([]int, len(c.Thermals))
	m.isGNL = make([]bool, len(c.Thermals))
	m.merit = make([][]int, len(c.Buses))
	sumCost := 0.0
	for i, t := range c.Thermals {
		m.thermBus[i] = bus[t.BusID]
		m.isGNL[i] = t.GNL
		m.merit[m.thermBus[i]] = append(m.merit[m.thermBus[i]], i)
		sumCost += t.CostPerMWh
	}
	for _, ord := range m.merit {
		slices.SortStableFunc(ord, func(a, b int) int {
			ca, cb := c.Thermals[a].CostPerMWh, c.Thermals[b].CostPerMWh
			switch {
			case ca < cb:
				return -1
			case ca > cb:
				return 1
			}
			return 0
		})
	}
	m.basePrice = 100
	if len(c.Thermals) > 0 && sumCost > 0 {
		m.basePrice = sumCost / float64(len(c.Thermals))
	}

	m.busLineCap = make([]float64, len(c.Buses))
	for _, l := range c.Lines {
		m.lineSrc = append(m.lineSrc, bus[l.SourceBusID])
		m.lineTgt = append(m.lineTgt, bus[l.TargetBusID])
		m.busLineCap[bus[l.SourceBusID]] += max(0, l.CapacityMW)
		m.busLineCap[bus[l.TargetBusID]] += max(0, l.CapacityMW)
	}
	for _, p := range c.PumpingStations {
		m.pumpBus = append(m.pumpBus, bus[p.BusID])
		f, t := hyd[p.FromHydroID], hyd[p.ToHydroID]
		m.pumpFrom = append(m.pumpFrom, f)
		m.pumpTo = append(m.pumpTo, t)
		m.divOut[f] = true
		m.divIn[t] = true
	}
	for _, k := range c.Contracts {
		m.contrBus = append(m.contrBus, bus[k.BusID])
		s := 1.0
		if k.Type == "export" {
			s = -1
		}
		m.contrSign = append(m.contrSign, s)
	}
	for _, n := range c.NonControllables {
		m.ncBus = append(m.ncBus, bus[n.BusID])
	}

	m.phi = make([]float64, c.InflowLagOrder)
	for l := range m.phi {
		m.phi[l] = 0.6 * math.Pow(0.3, float64(l)) // sum < 0.86: stationary
	}
	m.loadBlock = make([]float64, m.nB)
	m.pumpBlock = make([]float64, m.nB)
	for b := range m.nB {
		if m.nB == 1 {
			m.loadBlock[b], m.pumpBlock[b] = 1, 0.5
			continue
		}
		x := float64(b) / float64(m.nB-1) // 0 heavy .. 1 light
		m.loadBlock[b] = 1.15 - 0.30*x
		m.pumpBlock[b] = 0.1 + 0.8*x
	}
	return m, nil
}

// Seasonality over monthly-like stages.
func inflowSeason(t int) float64 { return 1 + 0.45*math.Cos(2*math.Pi*float64(t-1)/12) }
func loadSeason(t int) float64   { return 1 + 0.04*math.Cos(2*math.Pi*float64(t-1)/12) }
func evapSeason(t int) float64   { return 1 + 0.3*math.Cos(2*math.Pi*float64(t-8)/12) }

func clamp(x, lo, hi float64) float64 { return max(lo, min(hi, x)) }

// evaporation returns the evaporated flow of hydro i (0 without
// evaporation): it grows with the storage (a proxy of the lake's area).
func (g *gen) evaporation(i int, s0, season float64) float64 {
	h := &g.c.Hydros[i]
	if !h.Evaporation {
		return 0
	}
	return evaporationCoef * (0.3*h.StorageMaxHm3 + 0.7*max(0, s0)) * season
}

// release chooses the turbined and spilled flows of hydro i in a block from
// its storage at the start of the block s0, its inflows and the block's
// load factor lf, scaled by scale. It turbines less rather than go below
// the minimum storage, turbines more (up to its maximum) and then spills
// rather than exceed the maximum. frac is the storage level in [0, 1].
func (g *gen) release(i int, s0, in, din, dout, ev, conv, lf, scale float64) (tur, spill, frac float64) {
	h := &g.c.Hydros[i]
	lo, hi, tmax := h.StorageMinHm3, h.StorageMaxHm3, max(0, h.TurbinedMaxM3s)
	frac = 1
	if span := hi - lo; span > 0 {
		frac = clamp((s0-lo)/span, 0, 1)
	}
	net := in + din - ev - dout
	target := clamp(scale*lf*(0.35*tmax*(0.3+frac)+0.5*max(net, 0)), 0, tmax)
	avail := (s0-lo)/conv + net // turbinable without going below the minimum
	tur = min(target, max(avail, 0))
	if s1 := s0 + (net-tur)*conv; s1 > hi {
		extra := (s1 - hi) / conv
		add := min(extra, tmax-tur)
		tur += add
		spill = max(0, extra-add)
	}
	return tur, spill, frac
}

// gen holds the scenario being generated.
type gen struct {
	*model
	rng *rand.Rand
}

// floats returns k zeroed columns of n rows backed by one allocation.
func floats(n, k int) [][]float64 {
	buf := make([]float64, n*k)
	out := make([][]float64, k)
	for i := range out {
		out[i] = buf[i*n : (i+1)*n : (i+1)*n]
	}
	return out
}

// blockKeys returns the stage, block and entity columns of a block-level
// table: rows by stage, then block, then entity in case order.
func blockKeys(nT, nB int, ids []int32) ([]int32, shard.NullInt32, []int32) {
	k := len(ids)
	n := nT * nB * k
	stage, block, ent := make([]int32, n), make([]int32, n), make([]int32, n)
	r := 0
	for t := range nT {
		for b := range nB {
			for _, id := range ids {
				stage[r], block[r], ent[r] = int32(t), int32(b), id
				r++
			}
		}
	}
	return stage, shard.NullInt32{Values: block}, ent
}

// nullable returns a column of n rows, valid where valid[row % k] holds:
// Values nil when no entity is valid, Valid nil when all are.
func nullable(n int, valid []bool) shard.NullFloat64 {
	cnt := 0
	for _, v := range valid {
		if v {
			cnt++
		}
	}
	switch cnt {
	case 0:
		return shard.NullFloat64{}
	case len(valid):
		return shard.NullFloat64{Values: make([]float64, n)}
	}
	out := shard.NullFloat64{Values: make([]float64, n), Valid: make([]bool, n)}
	for r := range n {
		out.Valid[r] = valid[r%len(valid)]
	}
	return out
}

func int8s(n int) []int8 { return make([]int8, n) }

// operating returns n operative state codes, all OperativeOperating.
func operating(n int) []int8 {
	out := make([]int8, n)
	for i := range out {
		out[i] = OperativeOperating
	}
	return out
}

func (g *gen) run(scenario int) *shard.Scenario {
	c := g.c
	nT, nB := g.nT, g.nB
	nH, nTh, nL, nBus := len(c.Hydros), len(c.Thermals), len(c.Lines), len(c.Buses)
	nP, nK, nN, nG := len(c.PumpingStations), len(c.Contracts), len(c.NonControllables), len(c.GenericConstraints)
	s := &shard.Scenario{ID: scenario}

	// Costs.
	cf := floats(nT, 24)
	costs := &shard.CostsRows{
		StageID: make([]int32, nT), TotalCost: cf[0], ImmediateCost: cf[1], FutureCost: cf[2], DiscountFactor: cf[3],
		ThermalCost: cf[4], ContractCost: cf[5], DeficitCost: cf[6], ExcessCost: cf[7], StorageViolationCost: cf[8],
		FillingTargetCost: cf[9], HydroViolationCost: cf[10], OutflowViolationBelowCost: cf[11], OutflowViolationAboveCost: cf[12],
		TurbinedViolationCost: cf[13], GenerationViolationCost: cf[14], EvaporationViolationCost: cf[15],
		WithdrawalViolationCost: cf[16], InflowPenaltyCost: cf[17], GenericViolationCost: cf[18], SpillageCost: cf[19],
		FphaTurbinedCost: cf[20], CurtailmentCost: cf[21], ExchangeCost: cf[22], PumpingCost: cf[23],
	}
	s.Costs = costs

	// Buses (a valid case always has some).
	busIDs := make([]int32, nBus)
	for i, b := range c.Buses {
		busIDs[i] = b.ID
	}
	n := nT * nB * nBus
	bf := floats(n, 4)
	buses := &shard.BusesRows{LoadMW: bf[0], DeficitMW: bf[1], ExcessMW: bf[2], SpotPrice: bf[3]}
	buses.StageID, buses.BlockID, buses.BusID = blockKeys(nT, nB, busIDs)
	s.Buses = buses

	var hy *shard.HydrosRows
	if nH > 0 {
		ids := idsOf(c.Hydros, func(e manifest.Hydro) int32 { return e.ID })
		n := nT * nB * nH
		f := floats(n, 20)
		hy = &shard.HydrosRows{
			TurbinedM3s: f[0], SpillageM3s: f[1], IncrementalInflowM3s: f[2], InflowM3s: f[3],
			StorageInitialHm3: f[4], StorageFinalHm3: f[5], GenerationMW: f[6], SpillageCost: f[7], WaterValuePerHm3: f[8],
			TurbinedSlackM3s: f[9], OutflowSlackBelowM3s: f[10], OutflowSlackAboveM3s: f[11], GenerationSlackMW: f[12],
			StorageViolationBelowHm3: f[13], FillingTargetViolationHm3: f[14], EvaporationViolationPosM3s: f[15],
			EvaporationViolationNegM3s: f[16], InflowNonnegativitySlackM3s: f[17], WaterWithdrawalViolationPosM3s: f[18],
			WaterWithdrawalViolationNegM3s: f[19],
			EvaporationM3s:                 nullable(n, g.hasEvap),
			DivertedInflowM3s:              nullable(n, g.divIn),
			DivertedOutflowM3s:             nullable(n, g.divOut),
			ProductivityMWPerM3s:           nullable(n, g.allProd),
			StorageBindingCode:             int8s(n),
			OperativeStateCode:             operating(n),
		}
		hy.StageID, hy.BlockID, hy.HydroID = blockKeys(nT, nB, ids)
		s.Hydros = hy
	}
	var th *shard.ThermalsRows
	if nTh > 0 {
		ids := idsOf(c.Thermals, func(e manifest.Thermal) int32 { return e.ID })
		n := nT * nB * nTh
		f := floats(n, 2)
		th = &shard.ThermalsRows{
			GenerationMW: f[0], GenerationCost: f[1], IsGNL: make([]bool, n),
			GNLCommittedMW: nullable(n, g.isGNL), GNLDecisionMW: nullable(n, g.isGNL),
			OperativeStateCode: operating(n),
		}
		th.StageID, th.BlockID, th.ThermalID = blockKeys(nT, nB, ids)
		for r := range n {
			th.IsGNL[r] = g.isGNL[r%nTh]
		}
		s.Thermals = th
	}
	var ex *shard.ExchangesRows
	if nL > 0 {
		ids := idsOf(c.Lines, func(e manifest.Line) int32 { return e.ID })
		n := nT * nB * nL
		f := floats(n, 3)
		ex = &shard.ExchangesRows{DirectFlowMW: f[0], ReverseFlowMW: f[1], ExchangeCost: f[2], OperativeStateCode: operating(n)}
		ex.StageID, ex.BlockID, ex.LineID = blockKeys(nT, nB, ids)
		s.Exchanges = ex
	}
	var ps *shard.PumpingStationsRows
	if nP > 0 {
		ids := idsOf(c.PumpingStations, func(e manifest.PumpingStation) int32 { return e.ID })
		n := nT * nB * nP
		f := floats(n, 3)
		ps = &shard.PumpingStationsRows{PumpedFlowM3s: f[0], PowerConsumptionMW: f[1], PumpingCost: f[2], OperativeStateCode: operating(n)}
		ps.StageID, ps.BlockID, ps.PumpingStationID = blockKeys(nT, nB, ids)
		s.PumpingStations = ps
	}
	var ct *shard.ContractsRows
	if nK > 0 {
		ids := idsOf(c.Contracts, func(e manifest.Contract) int32 { return e.ID })
		n := nT * nB * nK
		f := floats(n, 3)
		ct = &shard.ContractsRows{PowerMW: f[0], PricePerMWh: f[1], TotalCost: f[2], OperativeStateCode: operating(n)}
		ct.StageID, ct.BlockID, ct.ContractID = blockKeys(nT, nB, ids)
		s.Contracts = ct
	}
	var nc *shard.NonControllablesRows
	if nN > 0 {
		ids := idsOf(c.NonControllables, func(e manifest.NonControllable) int32 { return e.ID })
		n := nT * nB * nN
		f := floats(n, 4)
		nc = &shard.NonControllablesRows{GenerationMW: f[0], AvailableMW: f[1], CurtailmentMW: f[2], CurtailmentCost: f[3], OperativeStateCode: operating(n)}
		nc.StageID, nc.BlockID, nc.NonControllableID = blockKeys(nT, nB, ids)
		s.NonControllables = nc
	}
	var lags *shard.InflowLagsRows
	p := c.InflowLagOrder
	if p > 0 && nH > 0 {
		n := nT * nH * p
		lags = &shard.InflowLagsRows{StageID: make([]int32, n), HydroID: make([]int32, n), LagIndex: make([]int32, n), InflowM3s: make([]float64, n)}
		s.InflowLags = lags
	}
	var gv *shard.GenericViolationsRows
	if nG > 0 {
		ids := idsOf(c.GenericConstraints, func(e manifest.GenericConstraint) int32 { return e.ID })
		n := nT * nB * nG
		f := floats(n, 2)
		gv = &shard.GenericViolationsRows{SlackValue: f[0], SlackCost: f[1]}
		gv.StageID, gv.BlockID, gv.ConstraintID = blockKeys(nT, nB, ids)
		s.GenericViolations = gv
	}

	// State carried across stages and blocks.
	storage := make([]float64, nH)
	for i, h := range c.Hydros {
		storage[i] = h.StorageInitialHm3
	}
	// xHist[l][h]: log-inflow state of stage t-1-l; incHist[l][h]: its
	// incremental inflow (MeanInflowM3s before the horizon).
	xHist := make([][]float64, p)
	incHist := make([][]float64, p)
	for l := range p {
		xHist[l] = make([]float64, nH)
		incHist[l] = make([]float64, nH)
		for i, h := range c.Hydros {
			incHist[l][i] = h.MeanInflowM3s
		}
	}
	// GNL commitment ring: gnlRing[t%lead][i] holds the decision made at
	// stage t-lead for stage t.
	gnlRing := make([][]float64, GNLLeadStages)
	for k := range gnlRing {
		gnlRing[k] = make([]float64, nTh)
		for i, t := range c.Thermals {
			gnlRing[k][i] = GNLInitialCommitment * t.CapacityMW
		}
	}

	common := make([]float64, nBus)
	loadNoise := make([]float64, nBus)
	incr := make([]float64, nH)
	xNew := make([]float64, nH)
	outflow := make([]float64, nH)
	dIn := make([]float64, nH)
	dOut := make([]float64, nH)
	pumpBudget := make([]float64, nH)
	roomBudget := make([]float64, nH)
	maint := make([]bool, nTh)
	committed := make([]float64, nTh)
	decision := make([]float64, nTh)
	thermGen := make([]float64, nTh)
	busHydro := make([]float64, nBus)
	busPump := make([]float64, nBus)
	busContr := make([]float64, nBus)
	busNC := make([]float64, nBus)
	busNCAvail := make([]float64, nBus)
	busTherm := make([]float64, nBus)
	busThermAvail := make([]float64, nBus)
	busLine := make([]float64, nBus)
	busLoad := make([]float64, nBus)
	surplus := make([]float64, nBus)
	resid := make([]float64, nBus)
	marginal := make([]float64, nBus)
	hydroScale := make([]float64, nBus)
	cheap := make([]float64, nBus)
	busGNL := make([]float64, nBus)

	sqCommon, sqIdio := math.Sqrt(inflowBusCorr), math.Sqrt(1-inflowBusCorr)
	lagRow := 0
	for t := range nT {
		costs.StageID[t] = int32(t)
		costs.DiscountFactor[t] = 1 / math.Pow(1+c.DiscountRate, float64(t))

		// Stage-level draws, in a fixed order.
		for b := range nBus {
			loadNoise[b] = 1 + 0.02*clamp(g.rng.NormFloat64(), -3, 3)
			common[b] = g.rng.NormFloat64()
		}
		season := inflowSeason(t)
		for i, h := range c.Hydros {
			eps := sqCommon*common[g.hydroBus[i]] + sqIdio*g.rng.NormFloat64()
			x := inflowSigma * eps
			for l := range p {
				x += g.phi[l] * xHist[l][i]
			}
			x = clamp(x, -inflowClamp, inflowClamp)
			xNew[i] = x
			incr[i] = h.MeanInflowM3s * season * math.Exp(x-0.5*inflowSigma*inflowSigma)
		}
		if lags != nil {
			for i, h := range c.Hydros {
				for l := range p {
					lags.StageID[lagRow] = int32(t)
					lags.HydroID[lagRow] = h.ID
					lags.LagIndex[lagRow] = int32(l + 1)
					lags.InflowM3s[lagRow] = incHist[l][i]
					lagRow++
				}
			}
		}
		if p > 0 {
			// Shift: the oldest lag row becomes the newest.
			xOld, incOld := xHist[p-1], incHist[p-1]
			copy(xHist[1:], xHist[:p-1])
			copy(incHist[1:], incHist[:p-1])
			copy(xOld, xNew)
			copy(incOld, incr)
			xHist[0], incHist[0] = xOld, incOld
		}

		sysNum, sysDen := 0.0, 0.0
		for i, h := range c.Hydros {
			sysNum += max(0, storage[i]-h.StorageMinHm3)
			sysDen += h.StorageMaxHm3 - h.StorageMinHm3
		}
		sysFrac := 0.5
		if sysDen > 0 {
			sysFrac = clamp(sysNum/sysDen, 0, 1)
		}
		stagePrice := g.basePrice * (0.6 + 0.8*(1-sysFrac))

		for i, tc := range c.Thermals {
			maint[i] = g.rng.Float64() < maintenanceProb
			if g.isGNL[i] {
				slot := gnlRing[t%GNLLeadStages]
				committed[i] = slot[i]
				decision[i] = tc.CapacityMW * clamp(0.9-sysFrac+0.15*g.rng.NormFloat64(), 0, 1)
				slot[i] = decision[i]
			}
		}

		ls := loadSeason(t)
		evs := evapSeason(t)
		for b := range nB {
			hours := c.Hours[b]
			conv := hours * hm3PerM3sHour
			lf := g.loadBlock[b]
			sb := t*nB + b
			for k, bus := range c.Buses {
				busLoad[k] = max(0, bus.LoadMW*ls*lf*loadNoise[k])
			}
			clear(busHydro)
			clear(busPump)
			clear(busContr)
			clear(busNC)
			clear(busNCAvail)
			clear(busTherm)
			clear(busThermAvail)
			clear(busGNL)
			clear(busLine)
			clear(marginal)

			// Pumping, decided at the start of the block from the
			// storage levels: at most half the water above the source's
			// minimum, half the room below the destination's maximum.
			if nP > 0 {
				clear(dIn)
				clear(dOut)
				for i, h := range c.Hydros {
					pumpBudget[i] = 0.5 * max(0, storage[i]-h.StorageMinHm3) / conv
					roomBudget[i] = 0.5 * max(0, h.StorageMaxHm3-storage[i]) / conv
				}
				for k, pc := range c.PumpingStations {
					u := g.rng.Float64()
					f, to := g.pumpFrom[k], g.pumpTo[k]
					flow := max(0, pc.MaxFlowM3s) * g.pumpBlock[b] * (0.5 + 0.5*u)
					flow = max(0, min(flow, pumpBudget[f], roomBudget[to]))
					pumpBudget[f] -= flow
					roomBudget[to] -= flow
					dOut[f] += flow
					dIn[to] += flow
					r := sb*nP + k
					ps.PumpedFlowM3s[r] = flow
					ps.PowerConsumptionMW[r] = flow * pc.MWPerM3s
					ps.PumpingCost[r] = ps.PowerConsumptionMW[r] * hours * pc.CostPerMWh
					costs.PumpingCost[t] += ps.PumpingCost[r]
					busPump[g.pumpBus[k]] += ps.PowerConsumptionMW[r]
				}
			}

			// Non-controllable availability and contracts.
			for k, q := range c.NonControllables {
				r := sb*nN + k
				nc.AvailableMW[r] = max(0, q.CapacityMW) * (0.15 + 0.75*g.rng.Float64())
				busNCAvail[g.ncBus[k]] += nc.AvailableMW[r]
			}
			for k, q := range c.Contracts {
				r := sb*nK + k
				u := g.rng.Float64()
				pw := max(0, q.MaxMW) * (0.5 + 0.5*u)
				if g.contrSign[k] < 0 {
					pw = -max(0, q.MaxMW) * (0.3 + 0.7*u)
				}
				ct.PowerMW[r] = pw
				ct.PricePerMWh[r] = q.PricePerMWh
				ct.TotalCost[r] = pw * hours * q.PricePerMWh
				costs.ContractCost[t] += ct.TotalCost[r]
				busContr[g.contrBus[k]] += pw
			}

			// Hydros, upstream first. A first pass at full propensity
			// estimates each bus's hydro generation; where it exceeds what
			// the bus can use (load net of must-run supply, plus some
			// export), the plants of that bus store water instead: the
			// second pass, the real one, scales their targets down.
			if nH > 0 {
				clear(busHydro)
				for _, i := range g.order {
					in := incr[i]
					for _, u := range g.upstream[i] {
						in += outflow[u]
					}
					ev := g.evaporation(i, storage[i], evs)
					tur, spill, _ := g.release(i, storage[i], in, dIn[i], dOut[i], ev, conv, lf, 1)
					outflow[i] = tur + spill
					busHydro[g.hydroBus[i]] += c.Hydros[i].Productivity * tur
				}
				for k := range nBus {
					mustRun := busContr[k] + 0.5*busNCAvail[k]
					for _, i := range g.merit[k] {
						if g.isGNL[i] && !maint[i] {
							mustRun += committed[i]
						}
					}
					use := busLoad[k] + busPump[k] - mustRun + 0.25*g.busLineCap[k]
					hydroScale[k] = 1
					if busHydro[k] > use {
						hydroScale[k] = clamp(use/busHydro[k], 0, 1)
					}
				}
				clear(busHydro)
			}
			for _, i := range g.order {
				h := &c.Hydros[i]
				r := sb*nH + i
				in := incr[i]
				for _, u := range g.upstream[i] {
					in += outflow[u]
				}
				s0 := storage[i]
				ev := g.evaporation(i, s0, evs)
				tur, spill, frac := g.release(i, s0, in, dIn[i], dOut[i], ev, conv, lf, hydroScale[g.hydroBus[i]])
				lo, hi := h.StorageMinHm3, h.StorageMaxHm3
				sf := s0 + (in+dIn[i]-tur-spill-ev-dOut[i])*conv
				tol := snapRel * max(1, math.Abs(hi), math.Abs(s0))
				if sf > hi && sf-hi <= tol {
					sf = hi
				}
				if sf < lo && lo-sf <= tol {
					sf = lo
				}
				viol := max(0, lo-sf)
				code := StorageBindingNone
				switch {
				case sf <= lo && sf >= hi:
					code = StorageBindingBoth
				case sf <= lo:
					code = StorageBindingBelowMinimum
				case sf >= hi:
					code = StorageBindingAboveMaximum
				}
				outflow[i] = tur + spill
				storage[i] = sf

				hy.TurbinedM3s[r] = tur
				hy.SpillageM3s[r] = spill
				if hy.EvaporationM3s.Values != nil {
					hy.EvaporationM3s.Values[r] = ev
				}
				if hy.DivertedInflowM3s.Values != nil {
					hy.DivertedInflowM3s.Values[r] = dIn[i]
				}
				if hy.DivertedOutflowM3s.Values != nil {
					hy.DivertedOutflowM3s.Values[r] = dOut[i]
				}
				hy.IncrementalInflowM3s[r] = incr[i]
				hy.InflowM3s[r] = in
				hy.StorageInitialHm3[r] = s0
				hy.StorageFinalHm3[r] = sf
				hy.GenerationMW[r] = h.Productivity * tur
				hy.ProductivityMWPerM3s.Values[r] = h.Productivity
				hy.WaterValuePerHm3[r] = g.cumProd[i]*mwhPerHm3PerMW*stagePrice*(1.5-frac) + minPrice
				hy.StorageBindingCode[r] = code
				hy.StorageViolationBelowHm3[r] = viol
				costs.StorageViolationCost[t] += viol * StorageViolationPenalty
				busHydro[g.hydroBus[i]] += hy.GenerationMW[r]
			}

			for i, tc := range c.Thermals {
				if !maint[i] {
					busThermAvail[g.thermBus[i]] += max(0, tc.CapacityMW)
					if g.isGNL[i] {
						busGNL[g.thermBus[i]] += clamp(committed[i], 0, max(0, tc.CapacityMW))
					}
				}
			}

			// Lines: greedy transfers, in line order. Where either side
			// cannot cover its load even with all its thermals, the line
			// shares the shortage; otherwise cheap energy (hydro,
			// non-controllables, contracts, committed GNL) flows to the
			// side with less of it, never so much that the source could not
			// cover its own load with its thermals.
			for k := range nBus {
				cheap[k] = busHydro[k] + busNCAvail[k] + busContr[k] - busPump[k] + busGNL[k] - busLoad[k]
				surplus[k] = cheap[k] + busThermAvail[k] - busGNL[k]
			}
			for k, l := range c.Lines {
				r := sb*nL + k
				u := g.rng.Float64()
				src, tgt := g.lineSrc[k], g.lineTgt[k]
				capMW := max(0, l.CapacityMW)
				var dir, rev float64
				switch {
				case surplus[src] < 0 || surplus[tgt] < 0:
					// Adequacy: share the shortage.
					if d := surplus[src] - surplus[tgt]; d > 0 {
						dir = min(capMW, d/2) * (0.7 + 0.3*u)
					} else {
						rev = min(capMW, -d/2) * (0.7 + 0.3*u)
					}
				default:
					// Economy: cheap energy flows, both sides stay adequate.
					if d := cheap[src] - cheap[tgt]; d > 0 {
						dir = min(capMW, d/2, surplus[src]) * (0.7 + 0.3*u)
					} else {
						rev = min(capMW, -d/2, surplus[tgt]) * (0.7 + 0.3*u)
					}
				}
				keep := 1 - l.LossFraction
				surplus[src] += -dir + rev*keep
				surplus[tgt] += dir*keep - rev
				cheap[src] += -dir + rev*keep
				cheap[tgt] += dir*keep - rev
				busLine[src] += -dir + rev*keep
				busLine[tgt] += dir*keep - rev
				ex.DirectFlowMW[r] = dir
				ex.ReverseFlowMW[r] = rev
				ex.ExchangeCost[r] = (dir + rev) * hours * l.CostPerMWh
				costs.ExchangeCost[t] += ex.ExchangeCost[r]
			}

			// Residual load: non-controllables, committed GNL, then merit order.
			for k := range nBus {
				resid[k] = busLoad[k] - busHydro[k] - busContr[k] + busPump[k] - busLine[k]
			}
			for k, q := range c.NonControllables {
				r := sb*nN + k
				bus := g.ncBus[k]
				gn := min(nc.AvailableMW[r], max(0, resid[bus]))
				resid[bus] -= gn
				nc.GenerationMW[r] = gn
				nc.CurtailmentMW[r] = nc.AvailableMW[r] - gn
				nc.CurtailmentCost[r] = nc.CurtailmentMW[r] * hours * q.CurtailmentCost
				costs.CurtailmentCost[t] += nc.CurtailmentCost[r]
				busNC[bus] += gn
			}
			for i, tc := range c.Thermals {
				thermGen[i] = 0
				if g.isGNL[i] && !maint[i] {
					thermGen[i] = clamp(committed[i], 0, max(0, tc.CapacityMW))
					resid[g.thermBus[i]] -= thermGen[i]
				}
			}
			// A bus left with more supply than load spills water rather
			// than generate it: turbined flow becomes spillage. The outflow,
			// hence the water balance and the plants downstream, are
			// unchanged.
			for k := range nBus {
				for _, i := range g.busHydros[k] {
					if resid[k] >= 0 {
						break
					}
					r := sb*nH + i
					prod := c.Hydros[i].Productivity
					if prod <= 0 || hy.TurbinedM3s[r] <= 0 {
						continue
					}
					d := min(hy.TurbinedM3s[r], -resid[k]/prod)
					hy.TurbinedM3s[r] -= d
					hy.SpillageM3s[r] += d
					gen := prod * hy.TurbinedM3s[r]
					resid[k] += hy.GenerationMW[r] - gen
					busHydro[k] -= hy.GenerationMW[r] - gen
					hy.GenerationMW[r] = gen
				}
			}
			for i, h := range c.Hydros {
				r := sb*nH + i
				hy.SpillageCost[r] = hy.SpillageM3s[r] * conv * h.SpillageCost
				costs.SpillageCost[t] += hy.SpillageCost[r]
			}
			for k, ord := range g.merit {
				for _, i := range ord {
					if maint[i] || resid[k] <= 0 {
						continue
					}
					add := min(max(0, c.Thermals[i].CapacityMW)-thermGen[i], resid[k])
					if add > 0 {
						thermGen[i] += add
						resid[k] -= add
						marginal[k] = c.Thermals[i].CostPerMWh
					}
				}
			}
			for i, tc := range c.Thermals {
				r := sb*nTh + i
				th.GenerationMW[r] = thermGen[i]
				th.GenerationCost[r] = thermGen[i] * hours * tc.CostPerMWh
				if g.isGNL[i] {
					th.GNLCommittedMW.Values[r] = committed[i]
					th.GNLDecisionMW.Values[r] = decision[i]
				}
				switch {
				case maint[i]:
					th.OperativeStateCode[r] = OperativeMaintenance
				case tc.CapacityMW > 0 && thermGen[i] >= tc.CapacityMW:
					th.OperativeStateCode[r] = OperativeSaturated
				}
				costs.ThermalCost[t] += th.GenerationCost[r]
				busTherm[g.thermBus[i]] += thermGen[i]
			}

			// Bus balance: deficit and excess close it exactly.
			for k, bus := range c.Buses {
				r := sb*nBus + k
				supply := busHydro[k] + busTherm[k] + busNC[k] + busContr[k] - busPump[k] + busLine[k]
				load := busLoad[k]
				def, exc := 0.0, 0.0
				if d := load - supply; math.Abs(d) > snapRel*max(1, load, math.Abs(supply)) {
					def, exc = max(0, d), max(0, -d)
				}
				price := 0.0
				switch {
				case def > 0:
					price = bus.DeficitCost
				case exc > 0:
					price = bus.ExcessCost
				case marginal[k] > 0:
					price = marginal[k]
				default:
					price = 0.5 * stagePrice
				}
				if def == 0 && bus.DeficitCost > 0 {
					price = min(price, 0.95*bus.DeficitCost)
				}
				price = max(price, minPrice)
				buses.LoadMW[r] = load
				buses.DeficitMW[r] = def
				buses.ExcessMW[r] = exc
				buses.SpotPrice[r] = price
				costs.DeficitCost[t] += def * hours * bus.DeficitCost
				costs.ExcessCost[t] += exc * hours * bus.ExcessCost
			}

			// Generic constraints: mostly slack-free, a few violations.
			for k, q := range c.GenericConstraints {
				r := sb*nG + k
				v := 0.0
				if g.rng.Float64() < genericViolProb {
					v = -math.Log(1-g.rng.Float64()) * genericViolScale
				}
				gv.SlackValue[r] = v
				gv.SlackCost[r] = v * q.Penalty
				costs.GenericViolationCost[t] += gv.SlackCost[r]
			}
		}
	}

	// Immediate cost, then a cost-to-go estimate: the scenario's mean
	// immediate cost over the remaining stages, discounted (non-increasing,
	// 0 at the last stage).
	mean := 0.0
	for t := range nT {
		k := costs
		k.ImmediateCost[t] = k.ThermalCost[t] + k.ContractCost[t] + k.DeficitCost[t] + k.ExcessCost[t] +
			k.StorageViolationCost[t] + k.FillingTargetCost[t] + k.HydroViolationCost[t] +
			k.OutflowViolationBelowCost[t] + k.OutflowViolationAboveCost[t] + k.TurbinedViolationCost[t] +
			k.GenerationViolationCost[t] + k.EvaporationViolationCost[t] + k.WithdrawalViolationCost[t] +
			k.InflowPenaltyCost[t] + k.GenericViolationCost[t] + k.SpillageCost[t] + k.FphaTurbinedCost[t] +
			k.CurtailmentCost[t] + k.ExchangeCost[t] + k.PumpingCost[t]
		mean += k.ImmediateCost[t]
	}
	mean = max(0, mean/float64(nT))
	d := 1 / (1 + c.DiscountRate)
	future := 0.0
	for t := nT - 1; t >= 0; t-- {
		costs.FutureCost[t] = future
		costs.TotalCost[t] = costs.ImmediateCost[t] + future
		future = d * (mean + future)
	}
	return s
}

// idsOf lists the ids of a case's entities, in case order (the row order
// of every entity table).
func idsOf[T any](xs []T, id func(T) int32) []int32 {
	out := make([]int32, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}
