package manifest

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/hydroshard/hydroshard/layout"
)

// CompactVersion is the schema version of compacted/_manifest.json.
const CompactVersion = 1

// CompactStatusVerified is the only status a compaction manifest has: it
// is written once every compacted file was verified against the partition
// files, so its presence is the commit of the compaction.
const CompactStatusVerified = "verified"

// What a compaction did with the partition files (CompactManifest.Partitions).
const (
	// PartitionsKept: both forms hold the dataset; readers may use either.
	PartitionsKept = "kept"
	// PartitionsRemoved: compact --replace removes (or removed) the
	// partition files. Written, durably, before the first is removed: from
	// then on the compacted files are the dataset, and a partition file
	// simulation/_files.csv lists may be missing without anything being lost.
	PartitionsRemoved = "removed"
)

// MaxCompactFiles bounds the files a compaction manifest may list (and so
// what a reader of one allocates): far more than the tables of a study
// times the parts a 256 MiB target makes of the largest possible one.
const MaxCompactFiles = 1 << 20

// CompactManifest is compacted/_manifest.json: every compacted file with
// its size, XXH64 and scenario ranges, and the partition dataset it was
// made from and verified against.
type CompactManifest struct {
	SchemaVersion int    `json:"schema_version"`
	Producer      string `json:"producer"`
	Status        string `json:"status"` // CompactStatusVerified
	// Partitions is PartitionsKept or PartitionsRemoved.
	Partitions string `json:"partitions"`
	CaseName   string `json:"case_name"`
	CaseHash   string `json:"case_hash"`
	// DatasetXXH64 is simulation/_manifest.json's dataset_xxh64: the
	// partition files this compaction was made from (simulation/_files.csv
	// still lists them, with their checksums, after --replace).
	DatasetXXH64 string        `json:"dataset_xxh64"`
	ScenarioPad  int           `json:"scenario_pad"`
	Scenarios    int           `json:"scenarios"`
	TargetSize   int64         `json:"target_size"`
	RowGroupRows int64         `json:"row_group_rows"`
	Files        []CompactFile `json:"files"`
	CompletedAt  string        `json:"completed_at"`
}

// CompactFile is one compacted file.
type CompactFile struct {
	Path          string `json:"path"` // relative to OUT: layout.CompactPart
	Entity        string `json:"entity"`
	FirstScenario int    `json:"first_scenario"`
	LastScenario  int    `json:"last_scenario"`
	Scenarios     int    `json:"scenarios"`
	Rows          int64  `json:"rows"`
	Bytes         int64  `json:"bytes"`
	XXH64         string `json:"xxh64"`
	// RowGroups lists each row group's scenario range and rows, in order.
	RowGroups []CompactRowGroup `json:"row_groups"`
	// ContentXXH64 is the XXH64 of every (scenario, rows, column value
	// hashes) of the file in order, as the verification computed it on
	// both sides: verify --full recomputes it from the compacted file.
	ContentXXH64 string `json:"content_xxh64"`
	// SourceBytes is the size of the partition files it was made from.
	SourceBytes int64 `json:"source_bytes"`
}

// CompactRowGroup is one row group's scenario range.
type CompactRowGroup struct {
	FirstScenario int   `json:"first_scenario"`
	LastScenario  int   `json:"last_scenario"`
	Rows          int64 `json:"rows"`
}

var xxh64Form = regexp.MustCompile(`^[0-9a-f]{16}$`)

// ReadCompactManifest strictly decodes compacted/_manifest.json (path
// names it in errors) and checks what every reader relies on: the schema
// version and status this build writes, every path a compacted file name
// of its entity, files of an entity in part order with ascending,
// non-overlapping scenario ranges inside [0, MaxScenarios), row groups
// that add up to the file's rows and stay inside its range, and
// well-formed checksums. It says nothing about the files themselves.
func ReadCompactManifest(path string, data []byte) (*CompactManifest, error) {
	var m CompactManifest
	if err := decodeStrict(bytes.NewReader(data), &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...))
	}
	switch {
	case m.SchemaVersion != CompactVersion:
		return nil, bad("schema version %d, this build reads %d", m.SchemaVersion, CompactVersion)
	case m.Status != CompactStatusVerified:
		return nil, bad("status %q, want %q", m.Status, CompactStatusVerified)
	case m.Partitions != PartitionsKept && m.Partitions != PartitionsRemoved:
		return nil, bad("partitions %q, want %q or %q", m.Partitions, PartitionsKept, PartitionsRemoved)
	case !xxh64Form.MatchString(m.DatasetXXH64):
		return nil, bad("dataset_xxh64 %q is not 16 lowercase hex digits", m.DatasetXXH64)
	case m.Scenarios < 0 || m.Scenarios > MaxScenarios:
		return nil, bad("scenarios %d outside 0..%d", m.Scenarios, MaxScenarios)
	case len(m.Files) > MaxCompactFiles:
		return nil, bad("%d files, more than %d", len(m.Files), MaxCompactFiles)
	}
	next := map[string]int{} // entity -> next part number
	last := map[string]int{} // entity -> last scenario so far
	for i, f := range m.Files {
		fbad := func(format string, a ...any) error {
			return bad("file %d (%s): %s", i, f.Path, fmt.Sprintf(format, a...))
		}
		entity, n, err := layout.ParseCompactPart(f.Path)
		if err != nil {
			return nil, fbad("%v", err)
		}
		if entity != f.Entity {
			return nil, fbad("entity %q, its path says %q", f.Entity, entity)
		}
		if n != next[entity] {
			return nil, fbad("part %d, want %d (parts of an entity are listed in order from 0)", n, next[entity])
		}
		next[entity]++
		prev, seen := last[entity]
		switch {
		case f.FirstScenario < 0 || f.LastScenario < f.FirstScenario || f.LastScenario >= MaxScenarios:
			return nil, fbad("scenarios %d-%d", f.FirstScenario, f.LastScenario)
		case seen && f.FirstScenario <= prev:
			return nil, fbad("scenarios %d-%d overlap or precede the previous file's (up to %d)", f.FirstScenario, f.LastScenario, prev)
		case f.Scenarios < 1 || f.Scenarios > f.LastScenario-f.FirstScenario+1:
			return nil, fbad("%d scenarios in the range %d-%d", f.Scenarios, f.FirstScenario, f.LastScenario)
		case f.Rows < 0 || f.Bytes < 0 || f.SourceBytes < 0:
			return nil, fbad("negative rows or bytes")
		case !xxh64Form.MatchString(f.XXH64) || !xxh64Form.MatchString(f.ContentXXH64):
			return nil, fbad("xxh64 %q content_xxh64 %q: want 16 lowercase hex digits", f.XXH64, f.ContentXXH64)
		}
		last[entity] = f.LastScenario
		var rows int64
		lo := f.FirstScenario
		for g, rg := range f.RowGroups {
			if rg.FirstScenario < lo || rg.LastScenario < rg.FirstScenario || rg.LastScenario > f.LastScenario || rg.Rows < 1 {
				return nil, fbad("row group %d: scenarios %d-%d, %d rows (want ascending ranges inside %d-%d, with rows)", g, rg.FirstScenario, rg.LastScenario, rg.Rows, f.FirstScenario, f.LastScenario)
			}
			// A scenario larger than a row group spans several: the next
			// one may start where this one ends.
			lo = rg.LastScenario
			rows += rg.Rows
		}
		if rows != f.Rows {
			return nil, fbad("row groups hold %d rows, the file %d", rows, f.Rows)
		}
	}
	return &m, nil
}

// Covers returns the compacted file of entity holding scenario, if any.
func (m *CompactManifest) Covers(entity string, scenario int) (*CompactFile, bool) {
	for i := range m.Files {
		f := &m.Files[i]
		if f.Entity == entity && f.FirstScenario <= scenario && scenario <= f.LastScenario {
			return f, true
		}
	}
	return nil, false
}
