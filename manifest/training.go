package manifest

// Phases of a journal: a rank writes one journal per phase and attempt.
const (
	PhaseSimulation = "" // the default: simulation journals predate phases
	PhaseTraining   = "training"
)

// RecordIteration is the record type of one durable training iteration.
const RecordIteration = "iteration"

// TrainingConfig is what the root rank records about the training run in
// its open record (training/metadata.json "configuration").
type TrainingConfig struct {
	Seed          uint64  `json:"seed"`
	MaxIterations int     `json:"max_iterations"`
	ForwardPasses int     `json:"forward_passes"`
	StoppingMode  string  `json:"stopping_mode"` // e.g. "iteration_limit", "gap"
	PolicyMode    string  `json:"policy_mode"`   // e.g. "fresh", "warm_start"
	GapTolerance  float64 `json:"gap_tolerance_percent,omitempty"`
}

// IterationInfo is one rank's durable record of one completed training
// iteration. Rows use the column names of the training tables (see
// shard.Convergence, shard.TimingIterations, shard.TimingMPIRanks).
type IterationInfo struct {
	Iteration int `json:"iteration"`
	// Convergence is written by the root rank only.
	Convergence *ConvergenceRow `json:"convergence,omitempty"`
	// Timing holds this rank's rows: one with WorkerID nil (the rank
	// level), then one per worker.
	Timing []TimingRow `json:"timing"`
	// MPIRank is this rank's row of training/timing/mpi_ranks.
	MPIRank *MPIRankRow `json:"mpi_rank,omitempty"`
}

// ConvergenceRow is one row of training/convergence.
type ConvergenceRow struct {
	Iteration      int32    `json:"iteration"`
	LowerBound     float64  `json:"lower_bound"`
	UpperBoundMean float64  `json:"upper_bound_mean"`
	UpperBoundStd  float64  `json:"upper_bound_std"`
	GapPercent     *float64 `json:"gap_percent"`
	CutsAdded      int32    `json:"cuts_added"`
	CutsRemoved    int32    `json:"cuts_removed"`
	CutsActive     int64    `json:"cuts_active"`
	TimeForwardMs  int64    `json:"time_forward_ms"`
	TimeBackwardMs int64    `json:"time_backward_ms"`
	TimeTotalMs    int64    `json:"time_total_ms"`
	ForwardPasses  int32    `json:"forward_passes"`
	LPSolves       int64    `json:"lp_solves"`
}

// TimingRow is one row of training/timing/iterations.
type TimingRow struct {
	Iteration               int32  `json:"iteration"`
	Rank                    *int32 `json:"rank"`
	WorkerID                *int32 `json:"worker_id"`
	ForwardWallMs           int64  `json:"forward_wall_ms"`
	BackwardWallMs          int64  `json:"backward_wall_ms"`
	CutSelectionMs          int64  `json:"cut_selection_ms"`
	MPIAllreduceMs          int64  `json:"mpi_allreduce_ms"`
	CutSyncMs               int64  `json:"cut_sync_ms"`
	LowerBoundMs            int64  `json:"lower_bound_ms"`
	StateExchangeMs         int64  `json:"state_exchange_ms"`
	CutBatchBuildMs         int64  `json:"cut_batch_build_ms"`
	BwdSetupMs              int64  `json:"bwd_setup_ms"`
	BwdLoadImbalanceMs      int64  `json:"bwd_load_imbalance_ms"`
	BwdSchedulingOverheadMs int64  `json:"bwd_scheduling_overhead_ms"`
	FwdSetupMs              int64  `json:"fwd_setup_ms"`
	FwdLoadImbalanceMs      int64  `json:"fwd_load_imbalance_ms"`
	FwdSchedulingOverheadMs int64  `json:"fwd_scheduling_overhead_ms"`
	OverheadMs              int64  `json:"overhead_ms"`
}

// MPIRankRow is one row of training/timing/mpi_ranks.
type MPIRankRow struct {
	Iteration           int32 `json:"iteration"`
	Rank                int32 `json:"rank"`
	ForwardTimeMs       int64 `json:"forward_time_ms"`
	BackwardTimeMs      int64 `json:"backward_time_ms"`
	CommunicationTimeMs int64 `json:"communication_time_ms"`
	IdleTimeMs          int64 `json:"idle_time_ms"`
	LPSolves            int64 `json:"lp_solves"`
	ScenariosProcessed  int32 `json:"scenarios_processed"`
}
