package manifest

// RecordCheckpoint is the record type of one rank's durable policy
// checkpoint fragments (written in training journals).
const RecordCheckpoint = "checkpoint"

// Policy fragment kinds.
const (
	FragmentCuts   = "cuts"
	FragmentBasis  = "basis"
	FragmentStates = "states"
)

// CheckpointInfo is the commit point of one rank's fragments of the
// checkpoint taken at an iteration: once the record is durable, the files
// it lists are the rank's part of that checkpoint (the merge rolls their
// renames forward like simulation files).
type CheckpointInfo struct {
	Iteration int          `json:"iteration"`
	Files     []PolicyFile `json:"files"`
	// Meta is written by the root rank only.
	Meta *PolicyMeta `json:"meta,omitempty"`
}

// PolicyFile is one committed fragment: a FlatBuffers StageCuts,
// StageBasis or StageStates buffer of one stage. Paths are relative to the
// output directory: Temp under _shards/tmp, Path under _shards/policy.
type PolicyFile struct {
	Kind  string `json:"kind"`
	Stage int    `json:"stage"`
	Temp  string `json:"temp"`
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	XXH64 string `json:"xxh64"`
}

// PolicyMeta is the root rank's checkpoint metadata fragment: what
// policy/metadata.json needs beyond the files.
type PolicyMeta struct {
	Iteration          int      `json:"iteration"`
	LowerBound         float64  `json:"lower_bound"`
	BestUpperBound     *float64 `json:"best_upper_bound"`
	Seed               uint64   `json:"rng_seed"`
	RNGState           string   `json:"rng_state,omitempty"`
	ConfigHash         string   `json:"config_hash"`
	SystemHash         string   `json:"system_hash"`
	MaxIterations      int      `json:"max_iterations"`
	ForwardPasses      int      `json:"forward_passes"`
	StateDimension     int      `json:"state_dimension"`
	NumStages          int      `json:"num_stages"`
	Capacity           []uint32 `json:"capacity"`          // per stage: LP cut row slots
	WarmStartCounts    []uint32 `json:"warm_start_counts"` // per stage
	TotalVisitedStates int      `json:"total_visited_states"`
}
