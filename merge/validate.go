package merge

import (
	"fmt"
	"path"
	"strings"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

// Limits a journal's claims must respect before the merge acts on them
// (allocates for them, or joins a path from them to OUT). A record
// beyond them is a problem naming the journal and line.
const (
	// MaxScenarios bounds a run's scenario count.
	MaxScenarios = manifest.MaxScenarios
	// MaxFileRows and MaxFileBytes bound one committed file.
	MaxFileRows  = 1 << 40
	MaxFileBytes = 1 << 44
	// MaxStages bounds a checkpoint fragment's stage.
	MaxStages = 1_000_000
	// MaxWorld bounds a journal's world size (ranks of the run).
	MaxWorld = 1 << 20
	// MaxIterations bounds a training iteration number.
	MaxIterations = 1_000_000
)

// Every path a journal names is trusted only when it is exactly the name
// the layout makes for that writer, entity, scenario, kind, stage and
// iteration: a line's checksum guards against damage, not against a
// writer that forges a path ("../x", an absolute path, another writer's
// temp file). These checks run while the journals are read; a record that
// fails is a problem and the merge then changes nothing.

// checkOpen validates an open record against the journal file's name.
func checkOpen(rel string, o *manifest.OpenInfo) error {
	base := strings.TrimSuffix(path.Base(rel), layout.JournalSuffix)
	if _, err := layout.ParseWriterID(o.Writer); err != nil {
		return fmt.Errorf("open record: %w", err)
	}
	if o.Writer != base {
		return fmt.Errorf("open record names writer %q, the journal file is %q", o.Writer, path.Base(rel))
	}
	if o.Scenarios < 0 || o.Scenarios > MaxScenarios {
		return fmt.Errorf("open record claims %d scenarios, want 0..%d", o.Scenarios, MaxScenarios)
	}
	if o.Layout.ScenarioPad < 0 || o.Layout.ScenarioPad > layout.MaxPad {
		return fmt.Errorf("open record has scenario padding %d, want 0..%d", o.Layout.ScenarioPad, layout.MaxPad)
	}
	if o.World < 1 || o.World > MaxWorld || o.Rank < 0 || o.Rank >= o.World {
		return fmt.Errorf("open record has rank %d of world %d, want a world of 1..%d and a rank below it", o.Rank, o.World, MaxWorld)
	}
	if o.Case != nil {
		// The dictionaries are built from this case: its limits
		// (stages, blocks, entities, lag order) are checked before
		// anything is allocated for it, and before anything changes.
		if err := o.Case.Validate(); err != nil {
			return fmt.Errorf("open record's case: %w", err)
		}
	}
	return nil
}

// checkIteration validates a training iteration record.
func checkIteration(it *manifest.IterationInfo) error {
	if it.Iteration < 1 || it.Iteration > MaxIterations {
		return fmt.Errorf("iteration record of iteration %d, want 1..%d", it.Iteration, MaxIterations)
	}
	return nil
}

// checkFile validates one file of a commit or checkpoint record.
func checkFile(f manifest.FileRecord, wantPath, wantTemp string) error {
	switch {
	case f.Path != wantPath:
		return fmt.Errorf("%s file path %q, want %q", f.Entity, f.Path, wantPath)
	case f.Temp != wantTemp:
		return fmt.Errorf("%s temp path %q, want %q", f.Entity, f.Temp, wantTemp)
	case f.Rows < 0 || f.Rows > MaxFileRows:
		return fmt.Errorf("%s: %d rows, want 0..%d", f.Path, f.Rows, int64(MaxFileRows))
	case f.Bytes < 0 || f.Bytes > MaxFileBytes:
		return fmt.Errorf("%s: %d bytes, want 0..%d", f.Path, f.Bytes, int64(MaxFileBytes))
	case len(f.XXH64) != 16 || strings.Trim(f.XXH64, "0123456789abcdef") != "":
		return fmt.Errorf("%s: checksum %q, want 16 lowercase hex digits", f.Path, f.XXH64)
	}
	return nil
}

// checkCommit validates a simulation commit record whole: the scenario in
// range, each table of the journal's case exactly once, every path the
// layout's, counts and checksums well formed.
func checkCommit(o *manifest.OpenInfo, c *manifest.CommitInfo) error {
	if c.Scenario < 0 || c.Scenario >= o.Scenarios {
		return fmt.Errorf("commit of scenario %d, the run has scenarios 0..%d", c.Scenario, o.Scenarios-1)
	}
	// The tables of the journal's case, when it carries one (the rank
	// writer's always do); the layout's entity rule otherwise.
	var want map[string]bool
	if o.Case != nil {
		want = map[string]bool{}
		for _, e := range o.Case.Entities() {
			want[e] = true
		}
	}
	seen := map[string]bool{}
	if len(c.Files) == 0 {
		return fmt.Errorf("commit of scenario %d lists no file", c.Scenario)
	}
	for _, f := range c.Files {
		if want != nil && !want[f.Entity] {
			return fmt.Errorf("commit of scenario %d: table %q is not one of case %q", c.Scenario, f.Entity, o.CaseName)
		}
		if e, sc, err := layout.ParseDataFile(f.Path, o.Layout.ScenarioPad); err != nil || e != f.Entity || sc != c.Scenario {
			return fmt.Errorf("commit of scenario %d: %s file path %q is not the layout's (%v)", c.Scenario, f.Entity, f.Path, err)
		}
		if seen[f.Entity] {
			return fmt.Errorf("commit of scenario %d lists table %s twice", c.Scenario, f.Entity)
		}
		seen[f.Entity] = true
		p := layout.DataFile(f.Entity, o.Layout.ScenarioPad, c.Scenario)
		if err := checkFile(f, p, layout.SimTemp(o.Writer, c.Scenario, f.Entity)); err != nil {
			return fmt.Errorf("commit of scenario %d: %w", c.Scenario, err)
		}
	}
	if want != nil && len(seen) != len(want) {
		for _, e := range o.Case.Entities() {
			if !seen[e] {
				return fmt.Errorf("commit of scenario %d has no %s table", c.Scenario, e)
			}
		}
	}
	return nil
}

// checkCheckpoint validates a checkpoint record's fragment names.
func checkCheckpoint(o *manifest.OpenInfo, c *manifest.CheckpointInfo) error {
	if c.Iteration < 1 || c.Iteration > MaxIterations {
		return fmt.Errorf("checkpoint of iteration %d, want 1..%d", c.Iteration, MaxIterations)
	}
	stages := 0
	if o.Case != nil {
		stages = o.Case.Stages
	}
	for _, f := range c.Files {
		known := false
		for _, k := range layout.StageKinds {
			known = known || f.Kind == k
		}
		if !known {
			return fmt.Errorf("checkpoint of iteration %d: fragment kind %q", c.Iteration, f.Kind)
		}
		// Without the case (a journal that does not carry it), the root's
		// checkpoint metadata bounds the stages later.
		if f.Stage < 0 || f.Stage >= MaxStages || (o.Case != nil && f.Stage >= stages) {
			return fmt.Errorf("checkpoint of iteration %d: %s fragment of stage %d, the case has %d stages", c.Iteration, f.Kind, f.Stage, stages)
		}
		rec := manifest.FileRecord{Entity: f.Kind, Path: f.Path, Temp: f.Temp, Bytes: f.Bytes, XXH64: f.XXH64}
		if err := checkFile(rec, layout.Fragment(c.Iteration, o.Writer, f.Kind, f.Stage), layout.CheckpointTemp(o.Writer, c.Iteration, f.Kind, f.Stage)); err != nil {
			return fmt.Errorf("checkpoint of iteration %d: %w", c.Iteration, err)
		}
	}
	return nil
}
