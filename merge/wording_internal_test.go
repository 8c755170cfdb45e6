package merge

import (
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

// TestStrictConflictNamesTheConflictingFile: a --strict conflict problem
// (its line in the report and its JSON "path") names the file of the
// entity whose bytes differ, not the scenario's first file (costs), and
// the file of the losing commit when only that commit has the entity.
func TestStrictConflictNamesTheConflictingFile(t *testing.T) {
	const sc = 3
	file := func(entity, hash string) manifest.FileRecord {
		return manifest.FileRecord{Entity: entity, Path: layout.DataFile(entity, 0, sc), Bytes: 10, XXH64: hash}
	}
	for _, tc := range []struct {
		name       string
		win, lose  []manifest.FileRecord
		wantEntity []string
	}{
		{"hydros differ", []manifest.FileRecord{file("costs", "a"), file("hydros", "b")}, []manifest.FileRecord{file("costs", "a"), file("hydros", "c")},
			[]string{"hydros"}},
		{"thermals and exchanges differ", []manifest.FileRecord{file("costs", "a"), file("thermals", "b"), file("exchanges", "d")},
			[]manifest.FileRecord{file("costs", "a"), file("thermals", "c"), file("exchanges", "e")}, []string{"thermals", "exchanges"}},
		{"only the loser has it", []manifest.FileRecord{file("costs", "a")}, []manifest.FileRecord{file("costs", "a"), file("buses", "f")},
			[]string{"buses"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jw := &journalState{open: &manifest.OpenInfo{Writer: "w"}}
			jl := &journalState{open: &manifest.OpenInfo{Writer: "l"}}
			s := &state{
				opts:       Options{Strict: true},
				report:     &Report{},
				ref:        &manifest.OpenInfo{Scenarios: 10},
				byScenario: map[int][]*commit{sc: {{j: jw, scenario: sc, time: "2026-01-01T00:00:02Z", files: tc.win}, {j: jl, scenario: sc, time: "2026-01-01T00:00:01Z", files: tc.lose}}},
				chosen:     map[int]*commit{},
				conflicted: map[conflictKey]bool{},
			}
			s.choose()
			if len(s.report.Problems) != len(tc.wantEntity) {
				t.Fatalf("problems %v, want one per entity of %v", s.report.Problems, tc.wantEntity)
			}
			for i, e := range tc.wantEntity {
				p := s.report.Problems[i]
				if want := layout.DataFile(e, 0, sc); p.Path != want || p.Kind != ProblemConflict || !strings.HasPrefix(p.Detail, e+" committed with different bytes") {
					t.Errorf("problem %d: %+v, want a conflict at %s about %s", i, p, want, e)
				}
			}
		})
	}
}

// TestPartialHintNamesAnySolver: the rerun hint of a partial merge speaks
// of the user's solver and the list format, simrank only as an example.
func TestPartialHintNamesAnySolver(t *testing.T) {
	got := (&Report{Outcome: Partial}).Human()
	for _, want := range []string{"rerun the missing scenarios with your solver", "one per line", "e.g. simrank --scenarios-from FILE"} {
		if !strings.Contains(got, want) {
			t.Errorf("partial report does not say %q:\n%s", want, got)
		}
	}
}
