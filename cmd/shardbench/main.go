// Command shardbench measures this project's Parquet writer against the
// limit (raw zstd level 3 over the same column bytes) and against other
// writers of the same data (parquet-go, DuckDB), plus the real rank path
// (and the share of it the writer's value checks take) and a rank's peak
// memory, then what the study's analysts get (the compaction of a
// production-like study against cp -r, its peak memory, and DuckDB's and
// Polars' queries on the partition tree and on the compacted files), and
// checks the results against the project's targets.
//
// Every figure is MB/s of uncompressed input (the column bytes of the
// hydros table, computed once, the same for every contestant), the median
// of several rounds that run every contestant once each (interleaved, so
// machine noise hits them all alike), with the range. Compare ratios from
// one run, never absolute MB/s across runs or machines.
//
//	go run ./cmd/shardbench [--quick] [--json FILE] [--reps N] [--workers W] [--out DIR] [--sections LIST]
//
// The parquet-go contestant is a module of its own (cmd/shardbench/parquetgo,
// so that this module does not require parquet-go), built at start with the
// go command and run as a long-lived child that times its own writes.
//
// A MISS against a target is a measurement, not a failure: the exit status
// is 1 only when something could not run, or when the analysts' queries
// gave different answers on the partition tree and on the compacted files.
// DuckDB (node and @duckdb/node-api) and Polars (nodejs-polars), installed
// by scripts/install-test-tools.sh, are optional, except with CI=true,
// where their absence fails the run.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
)

const modulePath = "github.com/hydroshard/hydroshard"

func main() {
	if os.Getenv(capiGoChildEnv) == "1" {
		os.Exit(capiGoChild(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the run's shape. The fields below the flags are not flags:
// tests shrink them to stay short; --quick and full runs set them.
type config struct {
	quick    bool
	jsonPath string
	reps     int
	workers  int
	out      string

	warmup    int    // discarded rounds before the measured ones
	scenarios int    // scenarios per scale and round (a multiple of workers)
	rssCase   string // case of the RSS children
	rssCounts [2]int
	rssQuick  bool // the RSS children write to tmpfs when there is one

	sections      map[string]bool // of allSections: what runs (--sections)
	studyCase     string          // the analyst section's study
	studyCounts   [2]int          // its scenarios: small (peak RSS only) and large
	compactRounds int             // cp -r vs compaction rounds (no warm-up)
	smallRounds   int             // compactions of the small study (its peak RSS only)
	queryRounds   int             // rounds of the analysts' queries
	mergeSizes    []int           // the merge scaling section's partition files per size
	mergeJournals int
}

// allSections are the parts of a run, in the order they run: the writer
// contestants (both scales), the ranks' peak RSS, the analysts' side.
var allSections = []string{"writer", "rss", "analyst", "merge", "policy", "capi"}

// knobs are the test's overrides of config (unexported: not a user option).
type knobs struct {
	tiny bool // one round, the tiny case for RSS with 20 and 200 scenarios, and for the analyst study with 4 and 20
}

func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, stdout, stderr, knobs{})
}

func runWith(args []string, stdout, stderr io.Writer, k knobs) int {
	cfg, code := parseFlags(args, stderr)
	if code >= 0 {
		return code
	}
	if k.tiny {
		cfg.reps, cfg.warmup = 1, 0
		cfg.scenarios = cfg.workers
		cfg.rssCase, cfg.rssCounts = "tiny", [2]int{20, 200}
		cfg.studyCase, cfg.studyCounts = "tiny", [2]int{4, 20}
		cfg.compactRounds, cfg.smallRounds, cfg.queryRounds = 1, 1, 1
		cfg.mergeSizes, cfg.mergeJournals = []int{2000, 6000}, 16
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "shardbench: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, int) {
	fs := flag.NewFlagSet("shardbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.BoolVar(&c.quick, "quick", false, "a short CI-sized run (fewer scenarios and rounds; RSS on the demo case)")
	fs.StringVar(&c.jsonPath, "json", "", "write the medians, ratios and targets to FILE as JSON")
	fs.IntVar(&c.reps, "reps", 0, "measured rounds (default 3 with --quick, 7 otherwise)")
	fs.IntVar(&c.workers, "workers", 2, "W: writer workers, rank Workers and DuckDB threads of the parallel contestants (>= 2)")
	fs.StringVar(&c.out, "out", "", "scratch directory (default: the system temp dir); the run's files are removed at the end")
	sections := fs.String("sections", strings.Join(allSections, ","), "comma-separated parts to run: writer (the writer contestants), rss (a rank's peak RSS), analyst (compaction vs cp, its peak RSS, DuckDB and Polars queries), merge (the journal merge at 100k, 300k and 1M partition files, 20k and 60k with --quick: time per file, peak heap), policy (the policy merge at production size vs cp -r, its peak RSS at 30/60 stages, policy.Open vs os.ReadFile; about 27 GB of disk), capi (the C API's write path, plain arrays and Arrow, vs the Go API's, on the production case)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: shardbench [--quick] [--json FILE] [--reps N] [--workers W] [--out DIR] [--sections LIST]\n\n"+
			"Measures the Parquet writer against raw zstd, parquet-go and DuckDB on the same data (production and XL\n"+
			"scale), the rank path with 1 and W workers and the share of it its value checks take, a rank's\n"+
			"peak RSS for 200 vs 2,000 scenarios, and what the analysts get: merge-shards compact of a 2,000-scenario\n"+
			"production study against cp -r of its partition tree, the compaction's peak RSS at 200 and 2,000\n"+
			"scenarios, and DuckDB's and Polars' queries on the partition tree against the compacted files.\n"+
			"Exit status 0 even when a target is missed; 1 when something could not run or a query gave different\n"+
			"answers on the partition tree and on the compacted files; 2 on bad usage.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, 0
		}
		return c, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shardbench: unexpected argument %q\n", fs.Arg(0))
		return c, 2
	}
	if c.workers < 2 {
		fmt.Fprintf(stderr, "shardbench: --workers %d: want at least 2 (W workers are compared with 1)\n", c.workers)
		return c, 2
	}
	if c.reps < 0 {
		fmt.Fprintf(stderr, "shardbench: --reps %d: want at least 1\n", c.reps)
		return c, 2
	}
	c.sections = map[string]bool{}
	for _, sec := range strings.Split(*sections, ",") {
		if sec = strings.TrimSpace(sec); sec == "" {
			continue
		}
		if !slices.Contains(allSections, sec) {
			fmt.Fprintf(stderr, "shardbench: --sections: unknown section %q (want some of %s)\n", sec, strings.Join(allSections, ","))
			return c, 2
		}
		c.sections[sec] = true
	}
	if len(c.sections) == 0 {
		fmt.Fprintf(stderr, "shardbench: --sections %q: want at least one of %s\n", *sections, strings.Join(allSections, ","))
		return c, 2
	}
	c.mergeSizes, c.mergeJournals = mergeScaleShape(c.quick)
	c.warmup = 1
	c.rssCounts = [2]int{200, 2000}
	c.studyCase, c.studyCounts, c.compactRounds, c.smallRounds, c.queryRounds = "production", [2]int{200, 2000}, 3, 3, 5
	base := 6
	if c.quick {
		// The study is small (its generation is most of the section's
		// time); what --quick checks is that every step runs and agrees.
		c.studyCounts, c.smallRounds, c.queryRounds = [2]int{20, 60}, 1, 3
		// No warm-up round: the median of three absorbs a slow first round,
		// and the time is better spent staying well inside CI's minute.
		base, c.warmup = 2, 0
		c.rssCase, c.rssQuick = "demo", true
		if c.reps == 0 {
			c.reps = 3
		}
	} else {
		c.rssCase = "production"
		if c.reps == 0 {
			c.reps = 7
		}
	}
	c.scenarios = (base + c.workers - 1) / c.workers * c.workers
	return c, -1
}

// moduleRoot finds the repository (for the DuckDB script and to build
// cmd/simrank): the nearest directory above the working directory whose
// go.mod declares this module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" && fields[1] == modulePath {
					f.Close()
					return dir, nil
				}
			}
			f.Close()
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run shardbench inside the %s repository (no go.mod of that module above the working directory)", modulePath)
		}
		dir = parent
	}
}

// timeouts of the child processes: generous, they only stop a hung child.
func (c config) rssTimeout(n int) time.Duration {
	if c.rssQuick {
		return 3 * time.Minute
	}
	return 10*time.Minute + time.Duration(n)*time.Second
}

func bench(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	start := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if cfg.out != "" {
		if err := os.MkdirAll(cfg.out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	scratch, err := os.MkdirTemp(cfg.out, "shardbench-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)

	rp := &report{cfg: cfg}
	stderr = &stampWriter{w: stderr, t0: start}
	tools := findDuckTools()
	if !cfg.sections["writer"] {
		tools = duckTools{missing: "not run (--sections)"}
	} else if tools.missing != "" {
		rp.duckMissing = tools.missing
		if os.Getenv("CI") == "true" {
			return fmt.Errorf("DuckDB contestant: %s\nCI=true: a missing tool is a failure; install it with scripts/install-test-tools.sh (npm install %s into $HYDROSHARD_NODE_DIR)", tools.missing, duckPackage)
		}
		fmt.Fprintf(stderr, "\n!!! DuckDB WILL NOT BE MEASURED: %s\n!!! its keys are left out of the JSON; install it with scripts/install-test-tools.sh (with CI=true this is a failure)\n\n", tools.missing)
	}

	// The compiler runs while the data is generated (neither is timed) and
	// must be done before the first timed round; waiting for it on every
	// return keeps it from writing into a scratch directory being removed.
	fmt.Fprintln(stderr, "shardbench: building cmd/simrank, cmd/merge-shards, rsswrap and the parquet-go contestant")
	var bins builtTools
	var buildErr error
	built := make(chan struct{})
	go func() {
		defer close(built)
		bins, buildErr = buildTools(ctx, root, filepath.Join(scratch, "bin"))
	}()
	defer func() { <-built }()
	life := 2 * time.Hour // of the contestants' child processes
	if cfg.quick {
		life = 10 * time.Minute
	}
	var atools analystTools
	if cfg.sections["analyst"] {
		atools = findAnalystTools()
		if err := atools.check(stderr); err != nil {
			return err
		}
	}
	if err := writerSection(ctx, cfg, rp, tools, root, scratch, life, built, &bins, &buildErr, stderr); err != nil {
		return err
	}
	<-built
	if buildErr != nil {
		return buildErr
	}

	if cfg.sections["rss"] {
		rss, err := measureRSS(ctx, cfg, bins.wrap, bins.simrank, scratch, stderr)
		if err != nil {
			return err
		}
		rp.rss = rss
	}
	if cfg.sections["analyst"] {
		a, err := measureAnalyst(ctx, cfg, bins, atools, root, scratch, stderr)
		if err != nil {
			return err
		}
		rp.analyst = a
	}
	if cfg.sections["merge"] {
		dir, fsName, cleanup := rssDir(cfg.quick, scratch) // tmpfs for --quick: seconds, not minutes
		ms, err := measureMergeScale(ctx, cfg.mergeSizes, cfg.mergeJournals, root, dir, stderr)
		cleanup()
		if err != nil {
			return err
		}
		ms.fs = fsName
		rp.mergeScale = ms
	}
	if cfg.sections["policy"] {
		pr, err := runPolicySection(ctx, cfg, bins, scratch, stderr)
		if err != nil {
			return err
		}
		rp.policy = pr
	}
	if cfg.sections["capi"] {
		cr, err := runCAPISection(ctx, cfg, root, scratch, stderr)
		if err != nil {
			return err
		}
		rp.capi = cr
	}
	rp.elapsed = time.Since(start)
	rp.print(stdout)
	if cfg.jsonPath != "" {
		if err := rp.writeJSON(cfg.jsonPath); err != nil {
			return err
		}
	}
	return nil
}

// writerSection runs the writer contestants at both scales (the section
// "writer"), once the tools are built.
func writerSection(ctx context.Context, cfg config, rp *report, tools duckTools, root, scratch string, life time.Duration,
	built <-chan struct{}, bins *builtTools, buildErr *error, stderr io.Writer) error {
	if !cfg.sections["writer"] {
		return nil
	}

	// DuckDB processes by thread count: 1 and W.
	var dks map[int]*duck
	closeDucks := func() error {
		var errs []error
		for _, dk := range dks {
			errs = append(errs, dk.close())
		}
		dks = nil
		return errors.Join(errs...)
	}
	defer closeDucks()
	if tools.missing == "" {
		dks = map[int]*duck{}
		for _, th := range []int{1, cfg.workers} {
			dk, err := startDuck(ctx, tools, root, scratch, life, 5*time.Minute)
			if err != nil {
				return err
			}
			dks[th] = dk
		}
	}

	var data []*dataset
	for _, sc := range []struct {
		name string
		cas  *manifest.Case
	}{{"production", synth.Production()}, {"xl", synth.XL()}} {
		fmt.Fprintf(stderr, "shardbench: %s: generating %d scenarios\n", sc.name, cfg.scenarios)
		d, err := prepare(sc.name, sc.cas, cfg.scenarios, filepath.Join(scratch, "inputs"))
		if err != nil {
			return err
		}
		data = append(data, d)
	}
	<-built
	if *buildErr != nil {
		return *buildErr
	}
	pg, err := startParquetGo(ctx, bins.parquetGo, scratch, life, 5*time.Minute)
	if err != nil {
		return err
	}
	closePG := func() error {
		if pg == nil {
			return nil
		}
		err := pg.close()
		pg = nil
		return err
	}
	defer closePG()
	rp.parquetGoVersion = pg.version
	for i := range data {
		prefix := ""
		if i > 0 {
			prefix = data[i].scale + "_"
		}
		s, err := measureScale(ctx, cfg, data[i], prefix, pg, dks, scratch, stderr)
		if err != nil {
			return err
		}
		rp.scales = append(rp.scales, s)
		data[i] = nil
		runtime.GC() // drop the scale's data before the next one
	}
	if dk := dks[1]; dk != nil {
		rp.duckVersion = dk.version
	}
	return errors.Join(closeDucks(), closePG())
}

// measureScale runs one scale's interleaved rounds.
func measureScale(ctx context.Context, cfg config, d *dataset, prefix string, pg *parquetGo, dks map[int]*duck, scratch string, progress io.Writer) (*scaleResult, error) {
	name := d.scale
	dir := filepath.Join(scratch, "runs")
	w := cfg.workers
	raw, err := rawZstdContestant(d)
	if err != nil {
		return nil, err
	}
	if err := pg.load(d); err != nil {
		return nil, err
	}
	cs := []contestant{
		{key: "writer_1w", label: "this writer, 1 worker (encode+hash+fsync in line)", run: writerContestant(d, dir, 1, false)},
		{key: "writer_1w_overlap", label: "this writer, 1 worker, fsync overlapped (as rank.Writer)", run: writerContestant(d, dir, 1, true)},
		{key: fmt.Sprintf("writer_%dw", w), label: fmt.Sprintf("this writer, %d workers, fsync overlapped (as rank.Writer)", w), run: writerContestant(d, dir, w, true)},
		{key: "raw_zstd", label: "raw klauspost zstd-3, 1 MiB chunks (the limit)", run: raw},
		{key: "parquet_go", label: "parquet-go GenericWriter, zstd-3, fsync", run: parquetGoContestant(pg, d, dir)},
	}
	for _, th := range []int{1, w} {
		dk := dks[th]
		if dk == nil {
			continue
		}
		if err := dk.load(d.parquetFiles); err != nil {
			return nil, err
		}
		label := fmt.Sprintf("DuckDB COPY, %d threads (no fsync)", th)
		if th == 1 {
			label = "DuckDB COPY, 1 thread (no fsync)"
		}
		cs = append(cs, contestant{key: fmt.Sprintf("duckdb_%dt", th), label: label, run: duckContestant(dk, d, dir, th)})
	}
	cs = append(cs,
		contestant{key: "writer_full_1w", label: fmt.Sprintf("rank, Workers 1, %d callers, all tables", w), run: rankContestant(d, dir, 1, w)},
		contestant{key: fmt.Sprintf("writer_full_%dw", w), label: fmt.Sprintf("rank, Workers %d, %d callers, all tables", w, w), run: rankContestant(d, dir, w, w)},
		contestant{key: "value_checks", label: "rank's value checks alone (shard.CheckValues), 1 goroutine, all tables", run: valueCheckContestant(d)},
	)
	res, err := runRounds(ctx, cs, cfg.warmup, cfg.reps, progress, name)
	if err != nil {
		return nil, err
	}
	return &scaleResult{scale: name, prefix: prefix, rows: d.rows, scenarios: len(d.scen),
		inHydros: sum(d.hydrosIn) / int64(len(d.scen)), inFull: sum(d.fullIn) / int64(len(d.scen)), results: res}, nil
}

// measureRSS runs the two simrank children after all timings (they would
// disturb them). A full run runs them one after the other on disk; a quick
// run runs them at once on tmpfs (peak RSS is a per-process figure, and
// the shorter child hides inside the longer one's time).
func measureRSS(ctx context.Context, cfg config, wrap, simrank, scratch string, progress io.Writer) (*rssResult, error) {
	dir, fs, cleanup := rssDir(cfg.rssQuick, scratch)
	defer cleanup()
	r := &rssResult{caseName: cfg.rssCase, fs: fs, counts: cfg.rssCounts}
	errs := make([]error, len(cfg.rssCounts))
	one := func(i int) {
		n := cfg.rssCounts[i]
		fmt.Fprintf(progress, "shardbench: peak RSS: simrank --case %s --scenarios %d (output on %s)\n", cfg.rssCase, n, fs)
		r.kib[i], r.took[i], errs[i] = peakRSS(ctx, wrap, simrank, cfg.rssCase, n, dir, cfg.rssTimeout(n))
	}
	if cfg.rssQuick {
		var wg sync.WaitGroup
		for i := range cfg.rssCounts {
			wg.Go(func() { one(i) })
		}
		wg.Wait()
	} else {
		for i := range cfg.rssCounts {
			if one(i); errs[i] != nil {
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// stampWriter prefixes each progress line with the time since the start,
// so a slow phase shows where a run's time goes.
// It is safe for concurrent use (the quick run's RSS children report
// from two goroutines).
type stampWriter struct {
	mu sync.Mutex
	w  io.Writer
	t0 time.Time
}

func (s *stampWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintf(s.w, "[%6.1fs] %s", time.Since(s.t0).Seconds(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}
