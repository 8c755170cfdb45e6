package shard

// Columnar rows of the training tables and the bounds dictionary, built by
// the merge from the ranks' journal records.

// ConvergenceRows holds training/convergence.
type ConvergenceRows struct {
	Iteration      []int32     `col:"iteration"`
	LowerBound     []float64   `col:"lower_bound"`
	UpperBoundMean []float64   `col:"upper_bound_mean"`
	UpperBoundStd  []float64   `col:"upper_bound_std"`
	GapPercent     NullFloat64 `col:"gap_percent"`
	CutsAdded      []int32     `col:"cuts_added"`
	CutsRemoved    []int32     `col:"cuts_removed"`
	CutsActive     []int64     `col:"cuts_active"`
	TimeForwardMs  []int64     `col:"time_forward_ms"`
	TimeBackwardMs []int64     `col:"time_backward_ms"`
	TimeTotalMs    []int64     `col:"time_total_ms"`
	ForwardPasses  []int32     `col:"forward_passes"`
	LPSolves       []int64     `col:"lp_solves"`
}

// TimingIterationsRows holds training/timing/iterations.
type TimingIterationsRows struct {
	Iteration               []int32   `col:"iteration"`
	Rank                    NullInt32 `col:"rank"`
	WorkerID                NullInt32 `col:"worker_id"`
	ForwardWallMs           []int64   `col:"forward_wall_ms"`
	BackwardWallMs          []int64   `col:"backward_wall_ms"`
	CutSelectionMs          []int64   `col:"cut_selection_ms"`
	MPIAllreduceMs          []int64   `col:"mpi_allreduce_ms"`
	CutSyncMs               []int64   `col:"cut_sync_ms"`
	LowerBoundMs            []int64   `col:"lower_bound_ms"`
	StateExchangeMs         []int64   `col:"state_exchange_ms"`
	CutBatchBuildMs         []int64   `col:"cut_batch_build_ms"`
	BwdSetupMs              []int64   `col:"bwd_setup_ms"`
	BwdLoadImbalanceMs      []int64   `col:"bwd_load_imbalance_ms"`
	BwdSchedulingOverheadMs []int64   `col:"bwd_scheduling_overhead_ms"`
	FwdSetupMs              []int64   `col:"fwd_setup_ms"`
	FwdLoadImbalanceMs      []int64   `col:"fwd_load_imbalance_ms"`
	FwdSchedulingOverheadMs []int64   `col:"fwd_scheduling_overhead_ms"`
	OverheadMs              []int64   `col:"overhead_ms"`
}

// TimingMPIRanksRows holds training/timing/mpi_ranks.
type TimingMPIRanksRows struct {
	Iteration           []int32 `col:"iteration"`
	Rank                []int32 `col:"rank"`
	ForwardTimeMs       []int64 `col:"forward_time_ms"`
	BackwardTimeMs      []int64 `col:"backward_time_ms"`
	CommunicationTimeMs []int64 `col:"communication_time_ms"`
	IdleTimeMs          []int64 `col:"idle_time_ms"`
	LPSolves            []int64 `col:"lp_solves"`
	ScenariosProcessed  []int32 `col:"scenarios_processed"`
}

// BoundsRows holds training/dictionaries/bounds.
type BoundsRows struct {
	EntityTypeCode []int8    `col:"entity_type_code"`
	EntityID       []int32   `col:"entity_id"`
	StageID        []int32   `col:"stage_id"`
	BlockID        NullInt32 `col:"block_id"`
	BoundTypeCode  []int8    `col:"bound_type_code"`
	BoundValue     []float64 `col:"bound_value"`
}
