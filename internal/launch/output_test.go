package launch

// Reading what the ranks and the merge left on disk, independently of the
// scripts under test: journals through the manifest package, the merged
// state through merge-shards' own JSON report.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hydroshard/hydroshard/journal"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// The study every test runs: the demo case, 16 scenarios, seed 42.
const (
	scenarios = 16
	seed      = 42
)

var studyArgs = []string{"--case", "demo", "--scenarios", strconv.Itoa(scenarios), "--seed", strconv.Itoa(seed), "--quiet"}

// journalSummary is one simulation journal: who opened it and what it committed.
type journalSummary struct {
	path    string
	open    *manifest.OpenInfo
	commits []int // scenario ids, in commit order
	close   *manifest.CloseInfo
}

// readJournals reads every simulation journal under out (training
// journals are skipped). A journal still being written may end in a torn
// line; that is fine while ranks run.
func readJournals(t *testing.T, out string) []journalSummary {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var js []journalSummary
	for _, p := range files {
		j := journalSummary{path: p}
		_, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			switch r.Type {
			case manifest.RecordOpen:
				j.open = r.Open
			case manifest.RecordCommit:
				j.commits = append(j.commits, r.Commit.Scenario)
			case manifest.RecordClose:
				j.close = r.Close
			}
			return nil
		})
		if err != nil {
			t.Fatalf("journal %s: %v", p, err)
		}
		if j.open == nil {
			continue // created, open record not written yet
		}
		if j.open.Phase == manifest.PhaseTraining {
			continue
		}
		js = append(js, j)
	}
	return js
}

// committed is every scenario committed by the journals, with a count.
func committed(js []journalSummary) map[int]int {
	m := map[int]int{}
	for _, j := range js {
		for _, s := range j.commits {
			m[s]++
		}
	}
	return m
}

// ofJob is the journals written by one SLURM job.
// missingOf lists, ascending, the scenarios 0..n-1 that byScenario (as
// committed returns it) does not hold.
func missingOf(byScenario map[int]int, n int) []int {
	var missing []int
	for s := range n {
		if byScenario[s] == 0 {
			missing = append(missing, s)
		}
	}
	return missing
}

func ofJob(js []journalSummary, jobID string) []journalSummary {
	var out []journalSummary
	for _, j := range js {
		if j.open.JobID == jobID {
			out = append(out, j)
		}
	}
	return out
}

// ids lists a set's keys in order.
func ids[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// mergeResult is one merge-shards run.
type mergeResult struct {
	code   int
	report map[string]any // --json output
	stderr string
}

// mergeShards runs merge-shards --json with args and the output dir.
func mergeShards(t *testing.T, args ...string) mergeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mergeBin, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := mergeResult{stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("merge-shards %v: %v", args, err)
	}
	if bytes.Contains([]byte(strings.Join(args, " ")), []byte("--json")) {
		if err := json.Unmarshal(stdout.Bytes(), &r.report); err != nil {
			t.Fatalf("merge-shards %v: exit %d, output is not JSON: %v\n%s\n%s", args, r.code, err, stdout.String(), r.stderr)
		}
	}
	return r
}

// wantComplete checks a merged directory: _SUCCESS, manifest status
// complete, every file verified by content (verify --full), and an
// integrity index byte-identical to the uninterrupted reference run's.
func wantComplete(t *testing.T, out string) {
	t.Helper()
	sim := filepath.Join(out, layout.SimDir)
	if _, err := os.Stat(filepath.Join(sim, layout.SuccessName)); err != nil {
		t.Errorf("%s: no _SUCCESS: %v", sim, err)
	}
	var man struct {
		Status string `json:"status"`
	}
	b, err := os.ReadFile(filepath.Join(sim, layout.ManifestName))
	if err == nil {
		err = json.Unmarshal(b, &man)
	}
	if err != nil {
		t.Fatalf("%s: %v", layout.ManifestName, err)
	}
	if man.Status != "complete" {
		t.Errorf("_manifest.json status %q, want complete", man.Status)
	}
	if r := mergeShards(t, "verify", "--full", out); r.code != 0 {
		t.Errorf("merge-shards verify --full %s: exit %d\n%s", out, r.code, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(sim, layout.IndexName))
	if err != nil {
		t.Fatal(err)
	}
	if want := reference(t); !bytes.Equal(got, want) {
		t.Errorf("%s differs from the uninterrupted single-process run's:\n got %d bytes\nwant %d bytes\n%s", layout.IndexName, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n got %q\nwant %q", i+1, x, y)
		}
	}
	return "same lines"
}

var (
	refOnce  sync.Once
	refIndex []byte
	refErr   error
)

// reference is the integrity index of the study written by one simrank
// process (--rank 0 --world 1), never interrupted, and merged.
func reference(t *testing.T) []byte {
	t.Helper()
	refOnce.Do(func() {
		out := filepath.Join(workDir, "reference")
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, simrankBin, append([]string{"--out", out, "--rank", "0", "--world", "1"}, studyArgs...)...)
		cmd.Env = cleanEnv()
		if b, err := cmd.CombinedOutput(); err != nil {
			refErr = fmt.Errorf("reference run: %v\n%s", err, b)
			return
		}
		cmd = exec.CommandContext(ctx, mergeBin, out)
		cmd.Env = cleanEnv()
		if b, err := cmd.CombinedOutput(); err != nil {
			refErr = fmt.Errorf("reference merge: %v\n%s", err, b)
			return
		}
		refIndex, refErr = os.ReadFile(filepath.Join(out, layout.SimDir, layout.IndexName))
	})
	if refErr != nil {
		t.Fatal(refErr)
	}
	return refIndex
}

// duckCount checks with DuckDB that every scenario of the hydros table is
// readable through the hive-partitioned glob analysts use.
func duckCount(t *testing.T, out string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	glob := testtools.SQLQuote(filepath.Join(out, layout.SimDir, "hydros", "**", "*.parquet"))
	res := testtools.DuckQuery(t, ctx, workDir,
		"SELECT count(DISTINCT scenario_id), min(scenario_id), max(scenario_id), count(*) > 0 FROM read_parquet("+glob+", hive_partitioning=true)")
	got := fmt.Sprint(res[0].Rows)
	want := fmt.Sprint([][]any{{fmt.Sprint(scenarios), "0", fmt.Sprint(scenarios - 1), true}})
	if got != want {
		t.Errorf("DuckDB over %s: got %s, want %s (distinct scenarios, min, max, rows > 0)", glob, got, want)
	}
}
