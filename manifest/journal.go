package manifest

import (
	"fmt"
	"strconv"
)

// JournalVersion is the version of the journal record format.
const JournalVersion = 1

// Record types.
const (
	RecordOpen   = "open"
	RecordCommit = "commit"
	RecordClose  = "close"
)

// Close statuses.
const (
	StatusClean       = "clean"
	StatusInterrupted = "interrupted"
	StatusFailed      = "failed"
)

// TimeFormat is how journals write times: RFC 3339, UTC, with a fixed
// nine-digit fraction, so that string order is time order (RFC3339Nano
// trims trailing zeros and would not sort).
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Record is one journal line's payload. Exactly one of Open, Commit, Close
// is set, matching Type.
type Record struct {
	Type      string         `json:"type"`
	Seq       int64          `json:"seq"`  // 0 for open, then +1 per record
	Time      string         `json:"time"` // TimeFormat
	Open      *OpenInfo      `json:"open,omitempty"`
	Commit    *CommitInfo    `json:"commit,omitempty"`
	Iteration *IterationInfo `json:"iteration,omitempty"`
	// Checkpoint is a rank's policy checkpoint fragments (training journals).
	Checkpoint *CheckpointInfo `json:"checkpoint,omitempty"`
	Close      *CloseInfo      `json:"close,omitempty"`
	// Revoke voids commits whose files were lost or damaged (a merge's
	// journal only).
	Revoke *RevokeInfo `json:"revoke,omitempty"`
}

// OpenInfo says who wrote a journal and for what run.
type OpenInfo struct {
	Version   int    `json:"version"`
	Producer  string `json:"producer"` // "hydroshard <version>"
	Writer    string `json:"writer"`   // unique writer id: also the journal file's base name
	Rank      int    `json:"rank"`
	World     int    `json:"world"`
	LocalRank int    `json:"local_rank"`
	Host      string `json:"host"`
	JobID     string `json:"job_id,omitempty"`
	Attempt   int    `json:"attempt"`
	Launcher  string `json:"launcher"`
	PID       int    `json:"pid"`
	Solver    string `json:"solver"`
	Threads   int    `json:"threads,omitempty"`
	CaseName  string `json:"case_name"`
	CaseHash  string `json:"case_hash"`
	// Case is the whole case document, so the merge can build dictionaries
	// without the input files.
	Case      *Case  `json:"case,omitempty"`
	Scenarios int    `json:"scenarios"` // expected scenario count of the run
	Layout    Layout `json:"layout"`
	// Phase is PhaseSimulation ("") or PhaseTraining.
	Phase string `json:"phase,omitempty"`
	// Training is the root rank's training configuration (training
	// journals only).
	Training *TrainingConfig `json:"training,omitempty"`
}

// Layout holds the options that decide file names; all ranks of a run must
// agree on them.
type Layout struct {
	// ScenarioPad is the zero-padding width of scenario_id=N directory
	// names; 0 means unpadded (the default, so DuckDB types the column
	// BIGINT), 4 reproduces Cobre's scenario_id=0042.
	ScenarioPad int    `json:"scenario_pad"`
	Ownership   string `json:"ownership"`
}

// PartitionDir returns the name of a scenario's partition directory.
func (l Layout) PartitionDir(scenario int) string {
	return fmt.Sprintf("scenario_id=%0*d", l.ScenarioPad, scenario)
}

// CommitInfo is the commit point of one scenario: once this record is
// durable, the files it lists are the scenario's result.
type CommitInfo struct {
	Scenario int          `json:"scenario"`
	Files    []FileRecord `json:"files"`
	Cost     CostSummary  `json:"cost"`
}

// FileRecord describes one committed data file. Paths are relative to the
// output directory and use forward slashes.
type FileRecord struct {
	Entity string `json:"entity"`
	Temp   string `json:"temp"`
	Path   string `json:"path"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	XXH64  string `json:"xxh64"` // 16 lowercase hex digits
}

// CostSummary is the scenario's cost, carried in the journal so that the
// merge computes statistics without reopening Parquet files.
type CostSummary struct {
	Total  float64   `json:"total"`
	Stages []float64 `json:"stages"`
}

// CloseInfo ends a journal.
type CloseInfo struct {
	Status    string `json:"status"`
	Committed int    `json:"committed"` // scenarios (simulation) or iterations (training)
	Reason    string `json:"reason,omitempty"`
	// Termination is why training stopped (training journals of the root
	// rank): "converged", "iteration_limit", "signal", ...
	Termination string `json:"termination,omitempty"`
}

// FormatXXH64 renders a checksum the way journals and manifests store it.
func FormatXXH64(h uint64) string { return fmt.Sprintf("%016x", h) }

// ParseXXH64 parses a checksum written by FormatXXH64.
func ParseXXH64(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("checksum %q: want 16 hex digits", s)
	}
	return strconv.ParseUint(s, 16, 64)
}
