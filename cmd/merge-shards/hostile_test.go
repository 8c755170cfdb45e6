package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

// TestForgedJournalRecords: journal records that are well framed (valid
// line checksums) but name something the layout would never make, or
// claim impossible counts, are refused by name: exit 2, a journal problem
// naming the file and line, nothing outside OUT touched and nothing inside
// changed. A line's checksum guards against damage, not against a writer.
func TestForgedJournalRecords(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	runSimrank(t, nil, "--out", base, "--scenarios", "2", "--rank", "0", "--world", "1", "--iterations", "2", "--checkpoint-every", "2", "--quiet")
	var simJ, trainJ string
	for _, p := range journalPaths(t, base) {
		if strings.Contains(filepath.Base(p), "."+layout.TrainingTag+".") {
			trainJ = p
		} else {
			simJ = p
		}
	}
	if simJ == "" || trainJ == "" {
		t.Fatalf("journals %v", journalPaths(t, base))
	}
	firstCommit := func(recs []*manifest.Record) *manifest.CommitInfo {
		for _, r := range recs {
			if r.Commit != nil {
				return r.Commit
			}
		}
		t.Fatal("no commit record")
		return nil
	}
	firstCheckpoint := func(recs []*manifest.Record) *manifest.CheckpointInfo {
		for _, r := range recs {
			if r.Checkpoint != nil {
				return r.Checkpoint
			}
		}
		t.Fatal("no checkpoint record")
		return nil
	}
	other := layout.NewWriterID("9", 1, 0, "", []byte{1, 2, 3, 4, 5, 6}).String()
	sim := func(f func([]*manifest.Record)) func(string, string) { return func(s, _ string) { edit(t, s, f) } }
	train := func(f func([]*manifest.Record)) func(string, string) { return func(_, tr string) { edit(t, tr, f) } }
	file := func(f func(*manifest.FileRecord)) func(string, string) {
		return sim(func(recs []*manifest.Record) { f(&firstCommit(recs).Files[0]) })
	}
	frag := func(f func(*manifest.PolicyFile)) func(string, string) {
		return train(func(recs []*manifest.Record) { f(&firstCheckpoint(recs).Files[0]) })
	}
	cases := []struct {
		name   string
		forge  func(simJournal, trainJournal string)
		detail string // in the problem
	}{
		{"path escapes OUT", file(func(f *manifest.FileRecord) { f.Path = "../escape-A/pwned.parquet" }), "file path"},
		{"absolute path", file(func(f *manifest.FileRecord) { f.Path = "/tmp/pwned.parquet" }), "file path"},
		{"path of another entity", file(func(f *manifest.FileRecord) { f.Path = layout.DataFile("zz_other", 0, 0) }), "file path"},
		{"path of another scenario", file(func(f *manifest.FileRecord) { f.Path = layout.DataFile(f.Entity, 0, 1) }), "file path"},
		{"padded path in an unpadded run", file(func(f *manifest.FileRecord) { f.Path = layout.DataFile(f.Entity, 4, 0) }), "file path"},
		{"path into training/", file(func(f *manifest.FileRecord) { f.Path = layout.ConvergenceFile }), "file path"},
		{"temp outside OUT", file(func(f *manifest.FileRecord) { f.Temp = "../victim.txt" }), "temp path"},
		{"temp of another writer", file(func(f *manifest.FileRecord) { f.Temp = layout.SimTemp(other, 0, f.Entity) }), "temp path"},
		{"temp that is a data file", file(func(f *manifest.FileRecord) { f.Temp = f.Path }), "temp path"},
		{"negative rows", file(func(f *manifest.FileRecord) { f.Rows = -5 }), "rows"},
		{"huge rows", file(func(f *manifest.FileRecord) { f.Rows = 9e18 }), "rows"},
		{"negative bytes", file(func(f *manifest.FileRecord) { f.Bytes = -1 }), "bytes"},
		{"huge bytes", file(func(f *manifest.FileRecord) { f.Bytes = 1 << 62 }), "bytes"},
		{"non-hex checksum", file(func(f *manifest.FileRecord) { f.XXH64 = "zzzzzzzzzzzzzzzz" }), "checksum"},
		{"short checksum", file(func(f *manifest.FileRecord) { f.XXH64 = "abc" }), "checksum"},
		{"uppercase checksum", file(func(f *manifest.FileRecord) { f.XXH64 = strings.ToUpper(f.XXH64) }), "checksum"},
		{"empty file list", sim(func(recs []*manifest.Record) { firstCommit(recs).Files = nil }), "no file"},
		{"table listed twice", sim(func(recs []*manifest.Record) {
			c := firstCommit(recs)
			c.Files = append(c.Files, c.Files[0])
		}), "twice"},
		{"table missing", sim(func(recs []*manifest.Record) {
			c := firstCommit(recs)
			c.Files = c.Files[1:]
		}), "has no"},
		{"table not in the case", sim(func(recs []*manifest.Record) {
			c := firstCommit(recs)
			c.Files[0].Entity = "zz_other"
		}), "not one of case"},
		{"scenario out of range", sim(func(recs []*manifest.Record) { firstCommit(recs).Scenario = 99 }), "scenario 99"},
		{"negative scenario", sim(func(recs []*manifest.Record) { firstCommit(recs).Scenario = -1 }), "scenario -1"},
		{"a billion scenarios", sim(func(recs []*manifest.Record) { recs[0].Open.Scenarios = 1e9 }), "scenarios"},
		{"padding beyond the limit", sim(func(recs []*manifest.Record) { recs[0].Open.Layout.ScenarioPad = 99 }), "padding"},
		{"writer id escapes", sim(func(recs []*manifest.Record) { recs[0].Open.Writer = "../../../escape-E" }), "writer id"},
		{"writer id of another journal", sim(func(recs []*manifest.Record) { recs[0].Open.Writer = other }), "names writer"},
		{"revoke record in a rank's journal", sim(func(recs []*manifest.Record) {
			recs[len(recs)-1] = &manifest.Record{Type: manifest.RecordRevoke, Seq: recs[len(recs)-1].Seq, Time: recs[len(recs)-1].Time,
				Revoke: &manifest.RevokeInfo{Scenario: 0, Commits: []manifest.CommitRef{{Writer: recs[0].Open.Writer, Seq: 1}}}}
		}), "revoke record"},
		{"checkpoint record in a simulation journal", sim(func(recs []*manifest.Record) {
			c := firstCommit(recs)
			for _, r := range recs {
				if r.Commit == c {
					r.Type, r.Commit, r.Checkpoint = manifest.RecordCheckpoint, nil, &manifest.CheckpointInfo{Iteration: 1}
				}
			}
		}), "checkpoint record"},
		{"fragment path escapes", frag(func(f *manifest.PolicyFile) { f.Path = "../escape/cuts_stage_000.bin" }), "file path"},
		{"fragment of another writer", frag(func(f *manifest.PolicyFile) { f.Path = layout.Fragment(2, other, f.Kind, f.Stage) }), "file path"},
		{"fragment temp forged", frag(func(f *manifest.PolicyFile) { f.Temp = "../victim.txt" }), "temp path"},
		{"fragment of an unknown kind", frag(func(f *manifest.PolicyFile) { f.Kind = "bogus" }), "kind"},
		{"fragment of a huge stage", frag(func(f *manifest.PolicyFile) { f.Stage = 99_999_999 }), "stage"},
		{"fragment of a negative stage", frag(func(f *manifest.PolicyFile) { f.Stage = -1 }), "stage"},
		{"checkpoint of iteration 0", train(func(recs []*manifest.Record) { firstCheckpoint(recs).Iteration = 0 }), "iteration 0"},
		{"checkpoint of iteration a billion", train(func(recs []*manifest.Record) { firstCheckpoint(recs).Iteration = 1e9 }), "iteration 1000000000"},
		{"iteration record of iteration a billion", train(func(recs []*manifest.Record) {
			for _, r := range recs {
				if r.Iteration != nil {
					r.Iteration.Iteration = 1e9
					return
				}
			}
			t.Fatal("no iteration record")
		}), "iteration 1000000000"},
		{"iteration record in a simulation journal", sim(func(recs []*manifest.Record) {
			c := firstCommit(recs)
			for _, r := range recs {
				if r.Commit == c {
					r.Type, r.Commit, r.Iteration = manifest.RecordIteration, nil, &manifest.IterationInfo{Iteration: 1}
				}
			}
		}), "iteration record"},
		{"a world of a billion ranks", train(func(recs []*manifest.Record) { recs[0].Open.World = 1e9 }), "world"},
		{"a rank outside its world", sim(func(recs []*manifest.Record) { recs[0].Open.Rank = 5 }), "world"},
		{"a case of a million stages", sim(func(recs []*manifest.Record) { recs[0].Open.Case.Stages = 1e6 }), "case"},
		{"a case with lag order a billion", sim(func(recs []*manifest.Record) {
			recs[0].Open.Case.InflowLagOrder = 1e9
		}), "case"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			out := filepath.Join(root, "out")
			if err := os.Rename(copyTree(t, base), out); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(root, "victim.txt")
			if err := os.WriteFile(victim, []byte("not the study's"), 0o644); err != nil {
				t.Fatal(err)
			}
			rel := func(p string) string { return filepath.Join(out, layout.JournalDir, filepath.Base(p)) }
			c.forge(rel(simJ), rel(trainJ))
			before, outside := snapshot(t, out), snapshot(t, root)
			r := mergeShards(t, out)
			wantExit(t, r, 2)
			if !strings.Contains(r.stdout, "PROBLEM      journal:") || !strings.Contains(r.stdout, "line ") || !strings.Contains(r.stdout, c.detail) {
				t.Fatalf("want a journal problem naming the line and %q:\n%s", c.detail, r)
			}
			sameSnapshot(t, "a merge refusing a forged record", before, snapshot(t, out))
			after := snapshot(t, root)
			for p, v := range outside {
				if !strings.HasPrefix(p, "out") && after[p] != v {
					t.Fatalf("%s outside OUT changed: %s -> %s", p, v, after[p])
				}
			}
			for p := range after {
				if _, ok := outside[p]; !ok && !strings.HasPrefix(p, "out") {
					t.Fatalf("%s appeared outside OUT", p)
				}
			}
		})
	}
}

// edit rewrites a journal's records (with valid line checksums).
func edit(t *testing.T, p string, f func([]*manifest.Record)) {
	t.Helper()
	recs := readRecords(t, p)
	f(recs)
	writeRecords(t, p, recs)
}
