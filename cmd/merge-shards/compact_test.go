package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
)

// compactedStudy runs one simrank over n scenarios, merges and compacts
// with the merge-shards binary.
func compactedStudy(t *testing.T, n int, args ...string) (string, merge.CompactManifest) {
	t.Helper()
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", fmt.Sprint(n), "--rank", "0", "--world", "1")
	wantExit(t, mergeShards(t, out), exitComplete)
	start := time.Now()
	r := mergeShards(t, append(append([]string{"compact"}, args...), out)...)
	wantExit(t, r, exitComplete)
	t.Logf("merge-shards compact (%d scenarios) took %v:\n%s", n, time.Since(start), r.stdout)
	var cm merge.CompactManifest
	if err := json.Unmarshal(readFile(t, filepath.Join(out, layout.CompactManifestFile)), &cm); err != nil {
		t.Fatal(err)
	}
	return out, cm
}

// TestCompactCLI: exit codes and what each case leaves on disk.
func TestCompactCLI(t *testing.T) {
	out, cm := compactedStudy(t, 4, "--target-size", "1MiB")
	if cm.TargetSize != 1<<20 || len(cm.Files) == 0 {
		t.Fatalf("manifest: %+v", cm)
	}
	before := snapshot(t, filepath.Join(out, layout.CompactDir))

	// Again: exit 0, nothing changed.
	r := mergeShards(t, "compact", out)
	wantExit(t, r, exitComplete)
	if !strings.Contains(r.stdout, "already compacted") {
		t.Errorf("second compact: %s", r)
	}
	sameSnapshot(t, "a second compact", before, snapshot(t, filepath.Join(out, layout.CompactDir)))
	// --json
	r = mergeShards(t, "compact", "--json", out)
	wantExit(t, r, exitComplete)
	var rep merge.CompactReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.Already {
		t.Errorf("compact --json: %v %s", err, r)
	}

	// Usage errors: exit 1, one line.
	for _, args := range [][]string{{"compact"}, {"compact", "--target-size", "0", out}, {"compact", "--target-size", "12XB", out}} {
		r := mergeShards(t, args...)
		wantExit(t, r, exitEnv)
		if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "merge-shards compact") {
			t.Errorf("usage error not one line: %s", r)
		}
	}
	if r := mergeShards(t, "help", "compact"); r.code != exitComplete || !strings.Contains(r.stdout, "--target-size") {
		t.Errorf("help compact: %s", r)
	}

	// A damaged partition file: exit 2, named, nothing published.
	fresh := t.TempDir()
	runSimrank(t, nil, "--out", fresh, "--scenarios", "3", "--rank", "0", "--world", "1")
	wantExit(t, mergeShards(t, fresh), exitComplete)
	rel := layout.DataFile("hydros", 0, 1)
	b := readFile(t, filepath.Join(fresh, rel))
	b[len(b)/2] ^= 0x5a
	if err := os.WriteFile(filepath.Join(fresh, rel), b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = mergeShards(t, "compact", fresh)
	wantExit(t, r, exitCorrupt)
	if !strings.Contains(r.stderr, rel) || !strings.Contains(r.stderr, "nothing was published") || strings.Contains(r.stderr, layout.TempDir) {
		t.Errorf("damaged partition not named: %s", r)
	}
	mustNotExist(t, filepath.Join(fresh, layout.CompactDir))

	// An incomplete study: exit 1, said, nothing written.
	partial := t.TempDir()
	list := filepath.Join(t.TempDir(), "ids")
	writeIDs(t, list, 0, 2)
	runSimrank(t, nil, "--out", partial, "--scenarios", "4", "--rank", "0", "--world", "1", "--scenarios-from", list)
	wantExit(t, mergeShards(t, partial), exitPartial)
	r = mergeShards(t, "compact", partial)
	wantExit(t, r, exitEnv)
	if !strings.Contains(r.stderr, "not a complete merged study") || !strings.Contains(r.stderr, "partial") {
		t.Errorf("incomplete study: %s", r)
	}
	mustNotExist(t, filepath.Join(partial, layout.CompactDir))
}

// TestCompactDuckDB reads the compacted files with DuckDB: every table
// holds exactly the partition files' rows, scenario_id is INTEGER, and a
// filter on one scenario returns exactly its rows. It also times one
// query over the partitions against the compacted files (logged only:
// the tiny study is too small to measure the file-system cost).
func TestCompactDuckDB(t *testing.T) {
	const n = 6
	out, cm := compactedStudy(t, n, "--target-size", "64KiB")
	entities := map[string]bool{}
	for _, f := range cm.Files {
		entities[f.Entity] = true
	}
	var sqls []string
	var what []string
	for _, e := range sortedSet(entities) {
		parts := sqlQuote(filepath.Join(out, layout.SimDir, filepath.FromSlash(e), "*", "data.parquet"))
		comp := sqlQuote(filepath.Join(out, layout.CompactDir, filepath.FromSlash(e), "*.parquet"))
		p := fmt.Sprintf("read_parquet(%s, hive_partitioning=true)", parts)
		c := fmt.Sprintf("read_parquet(%s)", comp)
		// Both ways EXCEPT ALL: equal multisets of rows, scenario_id included.
		sqls = append(sqls,
			fmt.Sprintf("SELECT count(*) FROM (SELECT * REPLACE (CAST(scenario_id AS INTEGER) AS scenario_id) FROM %s EXCEPT ALL SELECT * FROM (SELECT * EXCLUDE (scenario_id), scenario_id FROM %s))", p, c),
			fmt.Sprintf("SELECT count(*) FROM (SELECT * EXCLUDE (scenario_id), scenario_id FROM %s EXCEPT ALL SELECT * REPLACE (CAST(scenario_id AS INTEGER) AS scenario_id) FROM %s)", c, p),
			fmt.Sprintf("SELECT (SELECT count(*) FROM %s WHERE scenario_id = 3), (SELECT count(*) FROM %s WHERE scenario_id = 3), (SELECT count(*) FROM %s), (SELECT count(*) FROM %s)", c, p, c, p),
			fmt.Sprintf("SELECT typeof(scenario_id) FROM %s LIMIT 1", c),
		)
		what = append(what, e)
	}
	res := duckQuery(t, sqls...)
	for i, e := range what {
		r := res[4*i : 4*i+4]
		if got := fmt.Sprint(r[0].Rows); got != "[[0]]" {
			t.Errorf("%s: %s partition rows not in the compacted files", e, got)
		}
		if got := fmt.Sprint(r[1].Rows); got != "[[0]]" {
			t.Errorf("%s: %s compacted rows not in the partition files", e, got)
		}
		if len(r[2].Rows) != 1 || len(r[2].Rows[0]) != 4 || fmt.Sprint(r[2].Rows[0][0]) != fmt.Sprint(r[2].Rows[0][1]) || fmt.Sprint(r[2].Rows[0][2]) != fmt.Sprint(r[2].Rows[0][3]) || fmt.Sprint(r[2].Rows[0][0]) == "0" {
			t.Errorf("%s: counts (compacted s3, partitions s3, compacted, partitions) = %v", e, r[2].Rows)
		}
		if got := fmt.Sprint(r[3].Rows); got != "[[INTEGER]]" {
			t.Errorf("%s: scenario_id is %s, want INTEGER", e, got)
		}
	}
}

func sortedSet(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// TestCompactReplaceCLI: compact --replace removes the partition files;
// then verify --full, status and a re-merge all exit 0 and say the study
// is compacted, the re-merge changing no byte; a damaged compacted file is
// named by verify and the merge (exit 2).
func TestCompactReplaceCLI(t *testing.T) {
	out, cm := compactedStudy(t, 5, "--replace", "--target-size", "64KiB")
	if cm.Partitions != manifest.PartitionsRemoved {
		t.Fatalf("manifest partitions %q", cm.Partitions)
	}
	if entries, err := os.ReadDir(filepath.Join(out, layout.SimDir)); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("simulation/%s left after --replace", e.Name())
			}
		}
	}
	r := mergeShards(t, "verify", "--full", out)
	wantExit(t, r, exitComplete)
	if !strings.Contains(r.stdout, "OK") || !strings.Contains(r.stdout, "compact --replace") {
		t.Errorf("verify --full: %s", r)
	}
	r = mergeShards(t, "status", out)
	wantExit(t, r, exitComplete)
	if !strings.Contains(r.stdout, "compacted: ") || !strings.Contains(r.stdout, "removed") {
		t.Errorf("status: %s", r)
	}
	before := snapshot(t, out)
	wantExit(t, mergeShards(t, out), exitComplete)
	sameSnapshot(t, "a re-merge", before, snapshot(t, out))

	bad := filepath.Join(out, cm.Files[0].Path)
	b := readFile(t, bad)
	b[len(b)/2] ^= 0x5a
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = mergeShards(t, "verify", "--full", out)
	wantExit(t, r, exitCorrupt)
	if !strings.Contains(r.stdout, cm.Files[0].Path) {
		t.Errorf("verify --full of a damaged compacted file does not name it: %s", r)
	}
	r = mergeShards(t, "--verify", "full", out)
	wantExit(t, r, exitCorrupt)
	if !strings.Contains(r.stdout+r.stderr, cm.Files[0].Path) {
		t.Errorf("merge of a damaged compacted file does not name it: %s", r)
	}
}
