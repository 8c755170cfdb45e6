package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ManifestVersion is the schema version of simulation/_manifest.json.
const ManifestVersion = 1

// Run statuses of a merged output.
const (
	StatusComplete = "complete"
	StatusPartial  = "partial"
	StatusCorrupt  = "corrupt"
	// StatusRunning is a report's status (never a manifest's) while
	// writers hold live leases.
	StatusRunning = "running"
)

// SimManifest is simulation/_manifest.json: what the merge found and
// wrote. Everything in it is derived from the journals and the files, never
// from the clock, so merging twice gives the same bytes.
type SimManifest struct {
	SchemaVersion int                   `json:"schema_version"`
	Producer      string                `json:"producer"`
	Status        string                `json:"status"`
	CaseName      string                `json:"case_name"`
	CaseHash      string                `json:"case_hash"`
	StartedAt     string                `json:"started_at"`
	CompletedAt   string                `json:"completed_at"`
	Scenarios     ScenarioCounts        `json:"scenarios"`
	Entities      map[string]EntityInfo `json:"entities"`
	Layout        Layout                `json:"layout"`
	// Index names the per-file integrity index (relative to simulation/).
	Index string `json:"index"`
	// DatasetXXH64 is the XXH64 of the index's data rows: one value that
	// changes when any file's path, size or checksum does.
	DatasetXXH64 string     `json:"dataset_xxh64"`
	Files        int        `json:"files"`
	Bytes        int64      `json:"bytes"`
	Ranks        RanksInfo  `json:"ranks"`
	Missing      []int      `json:"missing_scenarios"`
	Conflicts    []Conflict `json:"conflicts,omitempty"`
}

// ScenarioCounts counts scenarios of a run.
type ScenarioCounts struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// EntityInfo counts one entity table's partitions and rows.
type EntityInfo struct {
	Partitions int   `json:"partitions"`
	Rows       int64 `json:"rows"`
	Bytes      int64 `json:"bytes"`
}

// RanksInfo says which ranks and attempts wrote the run.
type RanksInfo struct {
	WorldSize         int      `json:"world_size"`
	Participated      []int    `json:"participated"`
	Hosts             []string `json:"hosts"`
	SlurmJobIDs       []string `json:"slurm_job_ids,omitempty"`
	Attempts          []int    `json:"attempts"`
	Journals          int      `json:"journals"`
	InterruptedCloses int      `json:"interrupted_closes"`
	FailedCloses      int      `json:"failed_closes"`
	Unclosed          int      `json:"unclosed"`
}

// Conflict records a scenario committed twice with different bytes.
type Conflict struct {
	Scenario int    `json:"scenario"`
	Entity   string `json:"entity"`
	Winner   string `json:"winner"` // writer id of the commit kept
	Loser    string `json:"loser"`
	// Kept is where the losing copy was preserved, if it had been in place.
	Kept string `json:"kept,omitempty"`
}

// SimMetadata is simulation/metadata.json with the key set Cobre's report
// reads. Optional keys are omitted when unknown, never null.
type SimMetadata struct {
	CobreVersion    string         `json:"cobre_version"`
	Hostname        string         `json:"hostname"`
	Solver          string         `json:"solver"`
	StartedAt       string         `json:"started_at"`
	CompletedAt     string         `json:"completed_at"`
	DurationSeconds float64        `json:"duration_seconds"`
	Status          string         `json:"status"`
	Scenarios       ScenarioCounts `json:"scenarios"`
	Distribution    Distribution   `json:"distribution"`
}

// Distribution describes how the run was spread over processes.
type Distribution struct {
	Backend           string `json:"backend"`
	WorldSize         int    `json:"world_size"`
	RanksParticipated int    `json:"ranks_participated"`
	NumNodes          int    `json:"num_nodes"`
	ThreadsPerRank    int    `json:"threads_per_rank,omitempty"`
	SlurmJobID        string `json:"slurm_job_id,omitempty"`
}

// Summary is simulation/summary.json: cost statistics across scenarios.
type Summary struct {
	SchemaVersion int `json:"schema_version"`
	// Cost says which cost is summarised (SummaryCost).
	Cost       string      `json:"cost"`
	Scenarios  int         `json:"scenarios"`
	TotalCost  *Stats      `json:"total_cost"`
	StageCosts []StageStat `json:"stage_costs"`
}

// SummaryCost is Summary.Cost: what its statistics are of.
const SummaryCost = "discounted cost: immediate_cost x discount_factor of simulation/costs, summed over the blocks of each stage (stage_costs) and over all stages (total_cost), per scenario"

// StageStat is the statistics of one stage's discounted cost.
type StageStat struct {
	Stage int `json:"stage_id"`
	Stats
}

// Stats summarises a sample. CI95 is the 95% confidence interval of the
// mean (Student's t); it and Std are omitted for fewer than 2 samples.
type Stats struct {
	Count int         `json:"count"`
	Mean  float64     `json:"mean"`
	Std   float64     `json:"std"`
	CI95  *[2]float64 `json:"ci95_mean,omitempty"`
	Min   float64     `json:"min"`
	Max   float64     `json:"max"`
	P5    float64     `json:"p5"`
	P50   float64     `json:"p50"`
	P95   float64     `json:"p95"`
}

// Marshal renders a document the way hydroshard writes every JSON file:
// two-space indented, a final newline, map keys sorted (encoding/json sorts
// them), so equal documents are equal bytes.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadSimManifest strictly decodes simulation/_manifest.json from its
// bytes; path names the file in errors.
func ReadSimManifest(path string, data []byte) (*SimManifest, error) {
	var m SimManifest
	if err := decodeStrict(bytes.NewReader(data), &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.SchemaVersion != ManifestVersion {
		return nil, fmt.Errorf("%s: schema version %d, this build reads %d", path, m.SchemaVersion, ManifestVersion)
	}
	return &m, nil
}

// ReadTrainingManifest decodes training/_manifest.json (path names it in
// errors) as ReadSimManifest does the simulation's: strictly (unknown
// keys and trailing data are errors: the format is ours) and only in the
// schema version this build writes.
func ReadTrainingManifest(path string, data []byte) (*TrainingManifest, error) {
	var m TrainingManifest
	if err := decodeStrict(bytes.NewReader(data), &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.SchemaVersion != ManifestVersion {
		return nil, fmt.Errorf("%s: schema version %d, this build reads %d", path, m.SchemaVersion, ManifestVersion)
	}
	return &m, nil
}

// decodeStrict decodes one JSON value into v: unknown fields and anything
// but white space after the value are errors.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON document")
	}
	return nil
}
