package merge

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

// revocable groups problems by scenario when every one of them is a
// committed simulation file (or its temp copy) that is missing, truncated
// or altered: what a rerun of the scenario repairs. Any other problem
// (a damaged journal, a foreign case, a policy fragment) makes it nil.
func revocable(ps []Problem) map[int][]Problem {
	if len(ps) == 0 {
		return nil
	}
	out := map[int][]Problem{}
	for _, p := range ps {
		switch p.Kind {
		case ProblemLost, ProblemSize, ProblemChecksum:
		default:
			return nil
		}
		if p.Scenario == nil || !(layout.Under(p.Path, layout.SimDir) || layout.Under(p.Path, layout.TempDir)) {
			return nil
		}
		out[*p.Scenario] = append(out[*p.Scenario], p)
	}
	return out
}

// requeueLost revokes the scenarios whose committed files were lost or
// damaged after their commit, when those are the merge's only problems.
// First every copy the scenarios' commits left (final and temp files) is
// moved aside under _shards/superseded/<merge writer>/, durably, so that a
// rerun finds the final paths free and nothing committed is deleted; then
// one revoke record per scenario, naming every commit of it, goes to a
// journal of the merge's own (created, appended and closed with the same
// fsync discipline as a rank's). A crash between the two leaves the files
// moved and the commits standing: the next merge finds them lost and
// revokes them then. It returns the revoked scenarios.
func (s *state) requeueLost() ([]int, error) {
	byScen := revocable(s.report.Problems)
	if byScen == nil || s.ref == nil || s.caseRef == nil {
		return nil, nil
	}
	tok := make([]byte, layout.TokenLen/2)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	writer := layout.NewWriterID("merge", 0, 0, layout.MergeTag, tok).String()
	dirty := map[string]bool{}
	var infos []*manifest.RevokeInfo
	for _, sc := range sortedKeys(byScen) {
		info := &manifest.RevokeInfo{Scenario: sc}
		var reasons []string
		for _, p := range byScen[sc] {
			reasons = append(reasons, p.Path+": "+p.Detail)
		}
		info.Reason = strings.Join(reasons, "; ")
		moved := map[string]bool{}
		for _, c := range s.byScenario[sc] {
			info.Commits = append(info.Commits, manifest.CommitRef{Writer: c.writer(), Seq: c.seq})
			for _, f := range c.files {
				for _, rel := range []string{f.Path, f.Temp} {
					if moved[rel] {
						continue
					}
					if _, err := s.fsys.Lstat(layout.Join(s.out, rel)); err != nil {
						continue // lost, or never there
					}
					to := layout.Superseded(writer, rel)
					if err := s.move(rel, to, dirty); err != nil {
						return nil, fmt.Errorf("revoking scenario %d: %w", sc, err)
					}
					moved[rel] = true
					info.Moved = append(info.Moved, to)
				}
			}
		}
		infos = append(infos, info)
	}
	if err := s.syncDirs(dirty); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	open := &manifest.OpenInfo{
		Version:   manifest.JournalVersion,
		Producer:  "hydroshard " + manifest.Version,
		Writer:    writer,
		World:     1,
		Host:      host,
		Launcher:  "merge-shards",
		PID:       os.Getpid(),
		Solver:    "merge-shards --requeue-lost",
		CaseName:  s.caseRef.CaseName,
		CaseHash:  s.caseRef.CaseHash,
		Case:      s.caseRef.Case,
		Scenarios: s.ref.Scenarios,
		Layout:    s.ref.Layout,
		Phase:     manifest.PhaseMerge,
	}
	j, err := journal.Create(s.dirs, s.out, writer, time.Now, open)
	if err != nil {
		return nil, err
	}
	var revoked []int
	for _, info := range infos {
		if err := j.Append(&manifest.Record{Type: manifest.RecordRevoke, Revoke: info}); err != nil {
			_, _ = j.Close(&manifest.CloseInfo{Status: manifest.StatusFailed, Reason: err.Error()})
			return nil, err
		}
		revoked = append(revoked, info.Scenario)
	}
	aerr, cerr := j.Close(&manifest.CloseInfo{Status: manifest.StatusClean, Committed: len(infos), Reason: "requeue-lost"})
	if aerr != nil {
		return nil, aerr
	}
	return revoked, cerr
}
