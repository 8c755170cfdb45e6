package main

// The analyst section: what a study's readers get. A production-like study
// (simrank, then merge-shards) is compacted by the real `merge-shards
// compact` binary, timed against `cp -r` of the same partition tree, its
// peak RSS read at two study sizes, and then DuckDB and Polars run the
// same queries on the hive partition tree and on the compacted files.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hydroshard/hydroshard/layout"
)

// analystScript is the query script, relative to the module root.
const analystScript = "scripts/bench/analyst-query.mjs"

// compactDir is where merge-shards compact writes, relative to OUT
// (OUT/compacted/<entity>/part-NNNNN.parquet).
const compactDir = "compacted"

// polarsPackages are what scripts/install-test-tools.sh installs for Polars:
// npm skips the native binary on node 20, so it is named explicitly.
var polarsPackages = []string{"nodejs-polars@0.25.2", "nodejs-polars-linux-x64-gnu@0.25.2"}

// timing is one measured quantity over the rounds.
type timing struct {
	key, label string
	sec        []float64 // per measured round, in round order
}

func (t *timing) median() float64 { return median(t.sec) }

func (t *timing) span() (lo, hi float64) { return slices.Min(t.sec), slices.Max(t.sec) }

// queryKind is one analyst query on the hydros table.
type queryKind struct {
	engine, query string // duckdb|polars, agg|filter
	hive, comp    *timing
}

func (q *queryKind) ratio() float64 { return q.hive.median() / q.comp.median() }

// analystResult is the analyst section's figures.
type analystResult struct {
	caseName         string
	counts           [2]int // small and large study: the large one is timed and queried
	files            int    // partition files of the large study
	partBytes        int64  // their bytes (the MB/s of cp and of the compaction)
	compactedBytes   int64  // bytes of the large study's compacted files
	cp, compact      *timing
	reencode         *timing // nil unless merge-shards compact has a re-encode flag
	reencodeFlag     string
	reencodeNote     string // why re-encoding was not measured
	rssKiB           [2]int64
	reencodeRSSKiB   int64
	rounds           int
	smallRounds      int
	queryRounds      int
	filterScenario   int
	rowsPerScenario  int
	queries          []*queryKind
	duckVersion      string
	polarsVersion    string
	duckMissing      string
	polarsMissing    string
	generateTook     time.Duration
	compactSmallTook float64 // median seconds of the small study's compactions
}

func (a *analystResult) mbps(t *timing) float64 { return float64(a.partBytes) / 1e6 / t.median() }

func (a *analystResult) rssMB(i int) float64 { return float64(a.rssKiB[i]) / 1024 }

// analystTools says what the query script needs: node and the engines'
// packages. A missing engine is left out (or fails the run with CI=true).
type analystTools struct {
	node, modules string
	duckMissing   string
	polarsMissing string
}

func findAnalystTools() analystTools {
	node, err := exec.LookPath("node")
	if err != nil {
		return analystTools{duckMissing: "node is not on PATH", polarsMissing: "node is not on PATH"}
	}
	nd := nodeDir()
	mods, err := filepath.Abs(filepath.Join(nd, "node_modules"))
	if err != nil {
		msg := fmt.Sprintf("node_modules under %s: %v", nd, err)
		return analystTools{duckMissing: msg, polarsMissing: msg}
	}
	t := analystTools{node: node, modules: mods}
	if _, err := os.Stat(filepath.Join(mods, "@duckdb", "node-api", "package.json")); err != nil {
		t.duckMissing = fmt.Sprintf("node package %s is not installed under %s (HYDROSHARD_NODE_DIR)", duckPackage, nd)
	}
	for _, p := range polarsPackages {
		name := p[:strings.LastIndex(p, "@")]
		if _, err := os.Stat(filepath.Join(mods, name, "package.json")); err != nil {
			t.polarsMissing = fmt.Sprintf("node package %s is not installed under %s (HYDROSHARD_NODE_DIR)", p, nd)
			break
		}
	}
	return t
}

// missingEngines is the analyst section's check at start: with CI=true a
// missing engine fails the run, otherwise it is announced and left out.
func (t analystTools) check(stderr io.Writer) error {
	var miss []string
	if t.duckMissing != "" {
		miss = append(miss, "DuckDB: "+t.duckMissing)
	}
	if t.polarsMissing != "" {
		miss = append(miss, "Polars: "+t.polarsMissing)
	}
	if len(miss) == 0 {
		return nil
	}
	if os.Getenv("CI") == "true" {
		return fmt.Errorf("analyst queries: %s\nCI=true: a missing tool is a failure; install it with scripts/install-test-tools.sh (npm install %s %s into $HYDROSHARD_NODE_DIR)",
			strings.Join(miss, "; "), duckPackage, strings.Join(polarsPackages, " "))
	}
	fmt.Fprintf(stderr, "\n!!! ANALYST QUERIES NOT MEASURED FOR %s\n!!! their keys are left out of the JSON; install with scripts/install-test-tools.sh (with CI=true this is a failure)\n\n", strings.Join(miss, "; "))
	return nil
}

// measureAnalyst runs the whole section: it generates and merges the two
// studies, runs the compaction rounds, then the query rounds.
func measureAnalyst(ctx context.Context, cfg config, bins builtTools, tools analystTools, root, scratch string, progress io.Writer) (*analystResult, error) {
	a := &analystResult{caseName: cfg.studyCase, counts: cfg.studyCounts, rounds: cfg.compactRounds, smallRounds: cfg.smallRounds, queryRounds: cfg.queryRounds,
		duckMissing: tools.duckMissing, polarsMissing: tools.polarsMissing}
	dir := filepath.Join(scratch, "analyst")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("analyst: %w", err)
	}
	defer os.RemoveAll(dir)

	t0 := time.Now()
	studies := make([]string, 2)
	for i, n := range cfg.studyCounts {
		studies[i] = filepath.Join(dir, fmt.Sprintf("study-%d", n))
		fmt.Fprintf(progress, "shardbench: analyst: simrank --case %s --scenarios %d, then merge-shards\n", cfg.studyCase, n)
		if err := makeStudy(ctx, bins, cfg.studyCase, n, studies[i], cfg.rssTimeout(n)); err != nil {
			return nil, err
		}
	}
	a.generateTook = time.Since(t0)
	large := studies[1]
	sim := filepath.Join(large, layout.SimDir)
	var err error
	if a.partBytes, a.files, err = parquetTree(sim); err != nil {
		return nil, fmt.Errorf("analyst: %w", err)
	}

	flag, note, err := reencodeFlag(ctx, bins.mergeShards)
	if err != nil {
		return nil, err
	}
	a.reencodeFlag, a.reencodeNote = flag, note
	if flag == "" {
		fmt.Fprintf(progress, "shardbench: analyst: re-encoding not measured: %s\n", note)
	}

	// The compaction rounds on the large study: cp -r and the compaction
	// (and the re-encoding one when there is a flag for it) once each per
	// round, in a fresh order each round.
	a.cp = &timing{key: "cp", label: "cp -r of the partition tree (no fsync)"}
	a.compact = &timing{key: "compact", label: "merge-shards compact (fsync, verified)"}
	type step struct {
		t   *timing
		run func() (float64, int64, error)
	}
	lastDefault := false
	var rssLarge, rssSmall, rssReencode []float64 // KiB, per run
	compactStep := func(args ...string) func() (float64, int64, error) {
		return func() (float64, int64, error) {
			sec, kib, rep, err := runCompact(ctx, bins, large, cfg.rssTimeout(cfg.studyCounts[1]), args...)
			if err == nil && rep.SourceBytes != a.partBytes {
				err = fmt.Errorf("merge-shards compact %s: it read %d partition bytes, shardbench counted %d", large, rep.SourceBytes, a.partBytes)
			}
			lastDefault = len(args) == 0
			return sec, kib, err
		}
	}
	steps := []step{
		{a.cp, func() (float64, int64, error) {
			sec, err := copyTree(ctx, sim, filepath.Join(dir, "cp"))
			return sec, 0, err
		}},
		{a.compact, compactStep()},
	}
	if flag != "" {
		a.reencode = &timing{key: "compact_reencode", label: fmt.Sprintf("merge-shards compact --%s (fsync, verified)", flag)}
		steps = append(steps, step{a.reencode, compactStep("--" + flag)})
	}
	for r := range cfg.compactRounds {
		fmt.Fprintf(progress, "shardbench: analyst: %d scenarios: cp -r vs compaction, round %d/%d\n", cfg.studyCounts[1], r+1, cfg.compactRounds)
		for _, i := range rand.New(rand.NewPCG(uint64(r), 0xc0ac7)).Perm(len(steps)) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			syscall.Sync() // the previous step's write-back is not this one's
			sec, kib, err := steps[i].run()
			if err != nil {
				return nil, err
			}
			steps[i].t.sec = append(steps[i].t.sec, sec)
			switch steps[i].t {
			case a.compact:
				rssLarge = append(rssLarge, float64(kib))
			case a.reencode:
				rssReencode = append(rssReencode, float64(kib))
			}
		}
	}
	if !lastDefault {
		// The queries read what a plain compaction writes.
		if _, _, _, err := runCompact(ctx, bins, large, cfg.rssTimeout(cfg.studyCounts[1])); err != nil {
			return nil, err
		}
	}
	if a.compactedBytes, _, err = parquetTree(filepath.Join(large, compactDir)); err != nil {
		return nil, fmt.Errorf("analyst: %w", err)
	}

	// The small study's compactions: its peak RSS, against the large one's
	// (each the median of its runs' peaks).
	var small []float64
	for r := range cfg.smallRounds {
		fmt.Fprintf(progress, "shardbench: analyst: %d scenarios: compaction %d/%d (peak RSS)\n", cfg.studyCounts[0], r+1, cfg.smallRounds)
		sec, kib, _, err := runCompact(ctx, bins, studies[0], cfg.rssTimeout(cfg.studyCounts[0]))
		if err != nil {
			return nil, err
		}
		small = append(small, sec)
		rssSmall = append(rssSmall, float64(kib))
	}
	a.compactSmallTook = median(small)
	a.rssKiB = [2]int64{int64(median(rssSmall)), int64(median(rssLarge))}
	if rssReencode != nil {
		a.reencodeRSSKiB = int64(median(rssReencode))
	}
	if err := os.RemoveAll(studies[0]); err != nil {
		return nil, fmt.Errorf("analyst: %w", err)
	}

	if err := runQueries(ctx, cfg, a, tools, root, dir, large, progress); err != nil {
		return nil, err
	}
	return a, nil
}

// makeStudy writes n scenarios of caseName with one simrank rank and
// merges them: a complete study, as an analyst receives it.
func makeStudy(ctx context.Context, bins builtTools, caseName string, n int, out string, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, args := range [][]string{
		{bins.simrank, "--rank", "0", "--world", "1", "--case", caseName, "--scenarios", strconv.Itoa(n), "--out", out, "--quiet"},
		{bins.mergeShards, out},
	} {
		cmd := exec.CommandContext(cctx, args[0], args[1:]...)
		cmd.Env = childEnv()
		cmd.WaitDelay = 5 * time.Second
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("analyst: %s %s: %w\n%s", filepath.Base(args[0]), strings.Join(args[1:], " "), err, tail(b))
		}
	}
	return nil
}

func tail(b []byte) []byte {
	if len(b) > 4<<10 {
		return b[len(b)-4<<10:]
	}
	return b
}

// compactReport is what shardbench reads of `merge-shards compact --json`.
type compactReport struct {
	Already     bool    `json:"already_compacted"`
	Scenarios   int     `json:"scenarios"`
	SourceBytes int64   `json:"source_bytes"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
}

// runCompact removes out/compacted (untimed) and runs `merge-shards compact
// --json [args] out` under rsswrap: the wall time of the child and its
// peak RSS (merge-shards runs its work in a supervised child, whose peak
// Linux folds into its parent's ru_maxrss once it has waited for it).
func runCompact(ctx context.Context, bins builtTools, out string, timeout time.Duration, args ...string) (float64, int64, compactReport, error) {
	var rep compactReport
	if err := os.RemoveAll(filepath.Join(out, compactDir)); err != nil {
		return 0, 0, rep, fmt.Errorf("analyst: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	what := "merge-shards compact " + strings.Join(append(slices.Clone(args), out), " ")
	cmd := exec.CommandContext(cctx, bins.wrap, append(append([]string{bins.mergeShards, "compact", "--json"}, args...), out)...)
	cmd.Env = childEnv()
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer // rsswrap sends the command's stdout (the JSON report) here
	cmd.Stderr = &stderr
	t0 := time.Now()
	stdout, err := cmd.Output()
	sec := time.Since(t0).Seconds()
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return 0, 0, rep, fmt.Errorf("%s: no exit within %v: %w", what, timeout, err)
		}
		return 0, 0, rep, fmt.Errorf("%s: rsswrap: %w\n%s", what, err, tail(stderr.Bytes()))
	}
	var res struct {
		MaxRSS int64 `json:"maxrss_kib"`
		Exit   int   `json:"exit"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		return 0, 0, rep, fmt.Errorf("%s: rsswrap output %q: %w", what, stdout, err)
	}
	if res.Exit != 0 {
		return 0, 0, rep, fmt.Errorf("%s: exit status %d\n%s", what, res.Exit, tail(stderr.Bytes()))
	}
	if res.MaxRSS <= 0 {
		return 0, 0, rep, fmt.Errorf("%s: no peak RSS reported", what)
	}
	// The report is the JSON document on the first line that is "{".
	b := stderr.Bytes()
	i := bytes.Index(b, []byte("\n{\n"))
	if bytes.HasPrefix(b, []byte("{\n")) {
		i = -1
	} else if i < 0 {
		return 0, 0, rep, fmt.Errorf("%s: no JSON report in its output:\n%s", what, tail(b))
	}
	if err := json.NewDecoder(bytes.NewReader(b[i+1:])).Decode(&rep); err != nil {
		return 0, 0, rep, fmt.Errorf("%s: its JSON report: %w", what, err)
	}
	if rep.Already || rep.Bytes <= 0 {
		return 0, 0, rep, fmt.Errorf("%s: already_compacted %v, %d bytes written: it did not compact", what, rep.Already, rep.Bytes)
	}
	if _, err := os.Stat(filepath.Join(out, compactDir, "hydros")); err != nil {
		return 0, 0, rep, fmt.Errorf("%s: %w", what, err)
	}
	return sec, res.MaxRSS, rep, nil
}

// copyTree times `cp -r src dst` and removes dst afterwards (untimed).
func copyTree(ctx context.Context, src, dst string) (float64, error) {
	if err := os.RemoveAll(dst); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dst)
	cmd := exec.CommandContext(ctx, "cp", "-r", src, dst)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	sec := time.Since(t0).Seconds()
	if err != nil {
		return 0, fmt.Errorf("cp -r %s %s: %w\n%s", src, dst, err, tail(out))
	}
	return sec, nil
}

// parquetTree counts the .parquet files under dir and their bytes.
func parquetTree(dir string) (int64, int, error) {
	var files int
	n, err := parquetBytes(dir)
	if err != nil {
		return 0, 0, err
	}
	err = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".parquet") {
			files++
		}
		return err
	})
	return n, files, err
}

var reencodeRE = regexp.MustCompile(`(?m)^\s+--?([A-Za-z0-9-]*(?:re-?encod|no-?page-?copy)[A-Za-z0-9-]*)(.*)$`)

// reencodeFlag looks in `merge-shards compact --help` for a flag that
// forces re-encoding (compaction copies pages by default); "" and why
// when there is none, or when it is not a plain switch.
func reencodeFlag(ctx context.Context, mergeShards string) (flag, note string, err error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, mergeShards, "compact", "--help").Output()
	if err != nil {
		return "", "", fmt.Errorf("analyst: merge-shards compact --help: %w", err)
	}
	// Only the flag list, not the prose above it.
	if i := bytes.LastIndex(out, []byte("\nFlags:")); i >= 0 {
		out = out[i:]
	}
	m := reencodeRE.FindSubmatch(out)
	if m == nil {
		return "", "merge-shards compact --help lists no re-encode flag", nil
	}
	if rest := strings.TrimSpace(string(m[2])); rest != "" {
		return "", fmt.Sprintf("merge-shards compact's -%s takes a value (%q): not a switch shardbench knows how to set", m[1], rest), nil
	}
	return string(m[1]), "", nil
}

// queryReply is the query script's output.
type queryReply struct {
	Version string          `json:"version"`
	MS      float64         `json:"ms"`
	Result  json.RawMessage `json:"result"`
}

// aggRow is a row of the aggregate: stage_id, sum(generation_mwh),
// avg(storage_final_hm3), count.
type aggRow [4]float64

type filterResult struct {
	Rows        int       `json:"rows"`
	Columns     int       `json:"columns"`
	SumGen      float64   `json:"sum_generation_mwh"`
	SumStage    float64   `json:"sum_stage_id"`
	SumHydro    float64   `json:"sum_hydro_id"`
	ScenarioIDs []float64 `json:"scenario_ids"`
}

// runQueries runs every query in a fresh node process, hive and compacted
// forms of each engine and query in a fresh order each round, and checks
// every answer against the first one of its query (whatever the engine
// and form): a benchmark that compared a wrong query would be worthless.
func runQueries(ctx context.Context, cfg config, a *analystResult, tools analystTools, root, dir, study string, progress io.Writer) error {
	var engines []string
	if tools.duckMissing == "" {
		engines = append(engines, "duckdb")
	}
	if tools.polarsMissing == "" {
		engines = append(engines, "polars")
	}
	if len(engines) == 0 {
		return nil
	}
	qdir := filepath.Join(dir, "query")
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return fmt.Errorf("analyst: %w", err)
	}
	if err := os.Symlink(tools.modules, filepath.Join(qdir, "node_modules")); err != nil {
		return fmt.Errorf("analyst: %w", err)
	}
	src, err := os.ReadFile(filepath.Join(root, analystScript))
	if err != nil {
		return fmt.Errorf("analyst: %w", err)
	}
	script := filepath.Join(qdir, filepath.Base(analystScript))
	if err := os.WriteFile(script, src, 0o644); err != nil {
		return fmt.Errorf("analyst: %w", err)
	}
	globs := map[string]string{
		"hive":      filepath.Join(study, layout.SimDir, "hydros", "**", "*.parquet"),
		"compacted": filepath.Join(study, compactDir, "hydros", "*.parquet"),
	}
	n := a.counts[1]
	a.filterScenario = n * 2 / 3
	type run struct {
		q    *queryKind
		form string
	}
	var runs []run
	for _, e := range engines {
		for _, q := range []string{"agg", "filter"} {
			k := &queryKind{engine: e, query: q,
				hive: &timing{key: e + "_" + q + "_hive"}, comp: &timing{key: e + "_" + q + "_compacted"}}
			a.queries = append(a.queries, k)
			runs = append(runs, run{k, "hive"}, run{k, "compacted"})
		}
	}
	var refAgg []aggRow
	var refFilter *filterResult
	var refFrom string
	for r := range cfg.queryRounds {
		fmt.Fprintf(progress, "shardbench: analyst: queries on hydros, round %d/%d (%s)\n", r+1, cfg.queryRounds, strings.Join(engines, ", "))
		for _, i := range rand.New(rand.NewPCG(uint64(r), 0x9e77)).Perm(len(runs)) {
			if err := ctx.Err(); err != nil {
				return err
			}
			q, form := runs[i].q, runs[i].form
			what := fmt.Sprintf("%s %s on the %s form", q.engine, q.query, form)
			rep, err := runQuery(ctx, tools.node, qdir, script, q.engine, form, q.query, globs[form], a.filterScenario, cfg.rssTimeout(n))
			if err != nil {
				return fmt.Errorf("analyst: %s: %w", what, err)
			}
			if rep.MS <= 0 {
				return fmt.Errorf("analyst: %s: took %v ms", what, rep.MS)
			}
			switch q.engine {
			case "duckdb":
				a.duckVersion = rep.Version
			case "polars":
				a.polarsVersion = rep.Version
			}
			if form == "hive" {
				q.hive.sec = append(q.hive.sec, rep.MS/1e3)
			} else {
				q.comp.sec = append(q.comp.sec, rep.MS/1e3)
			}
			if q.query == "agg" {
				var got []aggRow
				if err := json.Unmarshal(rep.Result, &got); err != nil {
					return fmt.Errorf("analyst: %s: result %s: %w", what, rep.Result, err)
				}
				if refAgg == nil {
					refAgg, refFrom = got, what
					continue
				}
				if err := sameAgg(refAgg, got); err != nil {
					return fmt.Errorf("analyst: WRONG ANSWER: %s differs from %s: %w", what, refFrom, err)
				}
				continue
			}
			var got filterResult
			if err := json.Unmarshal(rep.Result, &got); err != nil {
				return fmt.Errorf("analyst: %s: result %s: %w", what, rep.Result, err)
			}
			if len(got.ScenarioIDs) != 1 || got.ScenarioIDs[0] != float64(a.filterScenario) || got.Rows <= 0 {
				return fmt.Errorf("analyst: WRONG ANSWER: %s: scenario ids %v in %d rows, want only %d", what, got.ScenarioIDs, got.Rows, a.filterScenario)
			}
			if refFilter == nil {
				refFilter = &got
				a.rowsPerScenario = got.Rows
				continue
			}
			if err := sameFilter(*refFilter, got); err != nil {
				return fmt.Errorf("analyst: WRONG ANSWER: %s differs from the first filter: %w", what, err)
			}
		}
	}
	// Every scenario's rows, in both forms: the aggregate counted them all.
	if refAgg != nil && a.rowsPerScenario > 0 {
		var rows float64
		for _, r := range refAgg {
			rows += r[3]
		}
		if want := float64(n) * float64(a.rowsPerScenario); rows != want {
			return fmt.Errorf("analyst: WRONG ANSWER: the aggregate counted %v rows, want %d scenarios x %d rows", rows, n, a.rowsPerScenario)
		}
	}
	return nil
}

// closeTo compares sums taken in different orders.
func closeTo(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func sameAgg(want, got []aggRow) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d stages, want %d", len(got), len(want))
	}
	if len(want) == 0 {
		return errors.New("no rows")
	}
	for i := range want {
		w, g := want[i], got[i]
		if w[0] != g[0] || w[3] != g[3] || !closeTo(w[1], g[1]) || !closeTo(w[2], g[2]) {
			return fmt.Errorf("row %d: stage %v sum %v mean %v count %v, want stage %v sum %v mean %v count %v", i, g[0], g[1], g[2], g[3], w[0], w[1], w[2], w[3])
		}
	}
	return nil
}

func sameFilter(want, got filterResult) error {
	if got.Rows != want.Rows || got.Columns != want.Columns || got.SumStage != want.SumStage || got.SumHydro != want.SumHydro || !closeTo(got.SumGen, want.SumGen) {
		return fmt.Errorf("%+v, want %+v", got, want)
	}
	return nil
}

// runQuery runs one query in a fresh node process.
func runQuery(ctx context.Context, node, dir, script, engine, form, query, glob string, scenario int, timeout time.Duration) (*queryReply, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, node, script, engine, form, query, glob, strconv.Itoa(scenario))
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node %s: %w%s", filepath.Base(script), err, stderr.suffix())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var rep queryReply
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("{")) {
			if err := json.Unmarshal(line, &rep); err != nil {
				return nil, fmt.Errorf("reply %q: %w", line, err)
			}
			return &rep, nil
		}
	}
	return nil, fmt.Errorf("no reply on stdout: %q%s", tail(out), stderr.suffix())
}

// analystTargets are the analyst section's goals, as ratios measured side
// by side: the compaction at least half as fast as cp -r of the same
// bytes; its peak RSS flat in the study's size; the aggregate at least 10x
// faster on the compacted files, the single-scenario filter no slower.
func (rp *report) analystTargets() []target {
	a := rp.analyst
	if a == nil {
		return nil
	}
	// The range of the ratio of two times within each round.
	perRound := func(t *target, num, den *timing) {
		for i := range num.sec {
			r := num.sec[i] / den.sec[i]
			if i == 0 || r < t.lo {
				t.lo = r
			}
			if i == 0 || r > t.hi {
				t.hi = r
			}
		}
	}
	cp := target{name: "compact / cp -r (MB/s)", key: "compact_cp_ratio", value: a.cp.median() / a.compact.median(), bound: 0.5, atLeast: true}
	perRound(&cp, a.cp, a.compact)
	ts := []target{cp}
	ts = append(ts, target{name: fmt.Sprintf("compaction peak RSS, %d / %d scenarios", a.counts[1], a.counts[0]), key: "compact_rss_ratio",
		value: float64(a.rssKiB[1]) / float64(a.rssKiB[0]), bound: 1.1})
	for _, q := range a.queries {
		t := target{name: fmt.Sprintf("%s %s: hive / compacted (time)", q.engine, q.query), key: q.engine + "_" + q.query + "_ratio",
			value: q.ratio(), bound: 10, atLeast: true}
		if q.query == "filter" {
			t.bound = 1
		}
		perRound(&t, q.hive, q.comp)
		ts = append(ts, t)
	}
	return ts
}

// print writes the section's part of the human report.
func (a *analystResult) print(w io.Writer) {
	fmt.Fprintf(w, "\n== analyst: case %s, %s scenarios merged (%s partition files, %.1f MB; compacted %.1f MB); study generated in %.1fs\n",
		a.caseName, commas(int64(a.counts[1])), commas(int64(a.files)), float64(a.partBytes)/1e6, float64(a.compactedBytes)/1e6, a.generateTook.Seconds())
	fmt.Fprintf(w, "   cp -r of OUT/simulation (same file system, no fsync) and merge-shards compact (a child process, wall time), alternately, %d rounds; MB/s of partition bytes\n", a.rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tmedian MB/s\trange (min-max)\tmedian s\tpeak RSS\t")
	for _, t := range []*timing{a.cp, a.compact, a.reencode} {
		if t == nil {
			continue
		}
		lo, hi := t.span()
		rss := "-"
		switch t {
		case a.compact:
			rss = fmt.Sprintf("%.1f MB", a.rssMB(1))
		case a.reencode:
			rss = fmt.Sprintf("%.1f MB", float64(a.reencodeRSSKiB)/1024)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f-%.1f\t%.2f\t%s\t\n", t.label, a.mbps(t), float64(a.partBytes)/1e6/hi, float64(a.partBytes)/1e6/lo, t.median(), rss)
	}
	tw.Flush()
	if a.reencode == nil {
		fmt.Fprintf(w, "   re-encoding compaction: not measured (%s)\n", a.reencodeNote)
	}
	fmt.Fprintf(w, "   peak RSS of merge-shards compact (median over its runs): %s scenarios %.1f MB (%d runs, median %.2fs), %s scenarios %.1f MB (%d runs): ratio %.2f\n",
		commas(int64(a.counts[0])), a.rssMB(0), a.smallRounds, a.compactSmallTook, commas(int64(a.counts[1])), a.rssMB(1), a.rounds, float64(a.rssKiB[1])/float64(a.rssKiB[0]))
	if len(a.queries) == 0 {
		fmt.Fprintf(w, "   queries: NOT MEASURED (DuckDB: %s; Polars: %s)\n", a.duckMissing, a.polarsMissing)
		return
	}
	var engines []string
	if a.duckVersion != "" {
		engines = append(engines, "DuckDB "+a.duckVersion)
	} else {
		engines = append(engines, "DuckDB NOT MEASURED ("+a.duckMissing+")")
	}
	if a.polarsVersion != "" {
		engines = append(engines, "nodejs-polars "+a.polarsVersion)
	} else {
		engines = append(engines, "Polars NOT MEASURED ("+a.polarsMissing+")")
	}
	fmt.Fprintf(w, "   queries on hydros (%s): hive = simulation/hydros/**/*.parquet with hive partitioning, compacted = compacted/hydros/*.parquet;\n", strings.Join(engines, ", "))
	fmt.Fprintf(w, "   agg = sum, mean and count per stage_id over every scenario; filter = every column WHERE scenario_id = %d (%s rows).\n", a.filterScenario, commas(int64(a.rowsPerScenario)))
	fmt.Fprintf(w, "   Median ms of %d rounds (range), each query in a fresh node process, timed inside it; both forms gave the same answers.\n", a.queryRounds)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "query\thive ms\tcompacted ms\thive / compacted\t")
	for _, q := range a.queries {
		hl, hh := q.hive.span()
		cl, ch := q.comp.span()
		fmt.Fprintf(tw, "%s %s\t%.1f (%.1f-%.1f)\t%.1f (%.1f-%.1f)\t%.2f\t\n", q.engine, q.query,
			q.hive.median()*1e3, hl*1e3, hh*1e3, q.comp.median()*1e3, cl*1e3, ch*1e3, q.ratio())
	}
	tw.Flush()
}

// doc adds the section's figures to the JSON document (the ratios are
// added with the targets).
func (a *analystResult) doc(m map[string]any, ranges map[string][2]float64) {
	m["analyst_case"] = a.caseName
	m["analyst_scenarios"] = a.counts[1]
	m["analyst_scenarios_small"] = a.counts[0]
	m["partition_files"] = a.files
	m["partition_bytes"] = a.partBytes
	m["compacted_bytes"] = a.compactedBytes
	m["compact_rounds"] = a.rounds
	for _, t := range []*timing{a.cp, a.compact, a.reencode} {
		if t == nil {
			continue
		}
		m[t.key+"_mbps"] = a.mbps(t)
		m[t.key+"_s"] = t.median()
		lo, hi := t.span()
		ranges[t.key+"_mbps"] = [2]float64{float64(a.partBytes) / 1e6 / hi, float64(a.partBytes) / 1e6 / lo}
	}
	if a.reencode != nil {
		m["compact_reencode_flag"] = "--" + a.reencodeFlag
		m["compact_reencode_rss_mb"] = float64(a.reencodeRSSKiB) / 1024
		m["compact_reencode_cp_ratio"] = a.cp.median() / a.reencode.median()
	} else {
		m["compact_reencode_missing"] = a.reencodeNote
	}
	m["compact_rss_small_mb"] = a.rssMB(0)
	m["compact_rss_large_mb"] = a.rssMB(1)
	m["compact_small_s"] = a.compactSmallTook
	m["query_rounds"] = a.queryRounds
	m["filter_scenario"] = a.filterScenario
	m["rows_per_scenario"] = a.rowsPerScenario
	for _, q := range a.queries {
		for _, t := range []*timing{q.hive, q.comp} {
			m[t.key+"_ms"] = t.median() * 1e3
			lo, hi := t.span()
			ranges[t.key+"_ms"] = [2]float64{lo * 1e3, hi * 1e3}
		}
	}
	if a.duckVersion != "" {
		m["duckdb_version"] = a.duckVersion
	}
	if a.duckMissing != "" {
		m["analyst_duckdb_missing"] = a.duckMissing
	}
	if a.polarsVersion != "" {
		m["polars_version"] = a.polarsVersion
	}
	if a.polarsMissing != "" {
		m["polars_missing"] = a.polarsMissing
	}
}
