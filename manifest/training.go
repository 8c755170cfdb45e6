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
	Seed          uint64 `json:"seed"`
	MaxIterations int    `json:"max_iterations"`
	ForwardPasses int    `json:"forward_passes"`
	// StoppingMode is how the solver's stopping rules combine, as Cobre's
	// configuration.stopping_mode: StoppingAny (stop when one rule is
	// met; "" means it too) or StoppingAll (when every rule is). It is not
	// why training stopped: that is the termination reason of the root's
	// close record (rank.TrainingWriter.CloseTerminated), which the merge
	// writes to metadata.json convergence.termination_reason. Journals of
	// earlier releases recorded a rule name here ("iteration_limit",
	// "gap"); the merge writes any value but "all" as "any".
	StoppingMode string  `json:"stopping_mode"`
	PolicyMode   string  `json:"policy_mode"` // e.g. "fresh", "warm_start"
	GapTolerance float64 `json:"gap_tolerance_percent,omitempty"`
}

// Values of configuration.stopping_mode in training/metadata.json (Cobre's).
const (
	StoppingAny = "any" // training stops when any stopping rule is met
	StoppingAll = "all" // training stops when every stopping rule is met
)

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

// TrainingMetadata is training/metadata.json: the key set Cobre's reader
// expects, plus this project's data_integrity. Status says what happened
// (complete, converged, interrupted, partial).
type TrainingMetadata struct {
	CobreVersion      string            `json:"cobre_version"`
	Hostname          string            `json:"hostname"`
	Solver            string            `json:"solver"`
	StartedAt         string            `json:"started_at"`
	CompletedAt       string            `json:"completed_at"`
	DurationSeconds   float64           `json:"duration_seconds"`
	Status            string            `json:"status"`
	Configuration     TrainingConfigDoc `json:"configuration"`
	ProblemDimensions ProblemDimensions `json:"problem_dimensions"`
	Iterations        IterationCounts   `json:"iterations"`
	Convergence       ConvergenceDoc    `json:"convergence"`
	RowPool           RowPool           `json:"row_pool"`
	Distribution      Distribution      `json:"distribution"`
	DataIntegrity     DataIntegrity     `json:"data_integrity"`
}

// TrainingConfigDoc is metadata.json "configuration".
type TrainingConfigDoc struct {
	Seed          uint64 `json:"seed"`
	MaxIterations int    `json:"max_iterations"`
	ForwardPasses int    `json:"forward_passes"`
	StoppingMode  string `json:"stopping_mode"` // StoppingAny or StoppingAll, never a termination reason
	PolicyMode    string `json:"policy_mode"`
}

// ProblemDimensions counts the case's entities.
type ProblemDimensions struct {
	NumStages   int `json:"num_stages"`
	NumHydros   int `json:"num_hydros"`
	NumThermals int `json:"num_thermals"`
	NumBuses    int `json:"num_buses"`
	NumLines    int `json:"num_lines"`
}

// IterationCounts is metadata.json "iterations".
type IterationCounts struct {
	Completed int `json:"completed"`
	// ConvergedAt is the iteration at which training converged; Cobre
	// always writes the key, null when the run did not converge.
	ConvergedAt *int `json:"converged_at"`
}

// ConvergenceDoc is metadata.json "convergence".
type ConvergenceDoc struct {
	Achieved          bool     `json:"achieved"`
	FinalGapPercent   *float64 `json:"final_gap_percent,omitempty"`
	TerminationReason string   `json:"termination_reason,omitempty"`
}

// RowPool counts cuts over the run.
type RowPool struct {
	TotalGenerated int64 `json:"total_generated"`
	TotalActive    int64 `json:"total_active"`
	PeakActive     int64 `json:"peak_active"`
}

// DataIntegrity holds SHA-256 digests (hex) of what the training produced
// and consumed.
type DataIntegrity struct {
	ConvergenceSHA256 string            `json:"convergence_sha256"`
	CaseSHA256        string            `json:"case_sha256"`
	PolicySHA256      map[string]string `json:"policy_sha256,omitempty"`
}

// TrainingManifest is training/_manifest.json.
type TrainingManifest struct {
	SchemaVersion int               `json:"schema_version"`
	Producer      string            `json:"producer"`
	Status        string            `json:"status"`
	CaseName      string            `json:"case_name"`
	CaseHash      string            `json:"case_hash"`
	StartedAt     string            `json:"started_at"`
	CompletedAt   string            `json:"completed_at"`
	Iterations    int               `json:"iterations"`
	Missing       []string          `json:"missing,omitempty"`
	Convergence   ConvergenceDoc    `json:"convergence"`
	FinalLower    float64           `json:"final_lower_bound"`
	FinalUpper    float64           `json:"final_upper_bound_mean"`
	Cuts          RowPool           `json:"cuts"`
	Files         map[string]string `json:"files_xxh64"` // path relative to training/ -> xxh64
	Distribution  Distribution      `json:"distribution"`
}
