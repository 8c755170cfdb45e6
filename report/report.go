// Package report describes a study's output directory (OUT) in one
// self-contained HTML file: the run's facts and status, the training's
// convergence, the distribution of the simulated costs, the ranks' time
// breakdown and the simulation's progress per rank and attempt.
//
// Why a package of its own: the report reads everything the other
// packages write (the merged study through package reader, the journals
// through merge.Analyze and merge.Status, committed partition files
// directly while a study is partial or running), and none of them should
// depend on HTML. Only cmd/merge-shards imports it.
//
// Everything read from OUT is untrusted: every text goes through
// html/template (or html.EscapeString inside the SVG), every file read is
// bounded, and a missing or damaged file becomes a note in the report,
// never an error of Build. The page needs nothing but the file itself: CSS
// and SVG are inline, there is no script, no web font and no link to fetch.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/cespare/xxhash/v2"
	"gonum.org/v1/gonum/stat"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/reader"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// Defaults of Options.
const (
	// DefaultMaxCostValues bounds the per-stage costs kept for quantiles
	// (scenarios x stages float64s, 80 MB at the bound). Beyond it each
	// stage keeps a uniform random sample (the means stay exact).
	DefaultMaxCostValues = 10_000_000
	// DefaultMaxFileBytes bounds one Parquet or JSON file read by the
	// report itself (the reader has its own bounds).
	DefaultMaxFileBytes = 256 << 20
	// DefaultMaxNotes bounds the notes kept: a study with a million
	// damaged files gets a count, not a million lines.
	DefaultMaxNotes = 50
	// DefaultMaxTimingIterations is how many iterations (the latest) the
	// stacked bars show; the imbalance chart shows every iteration.
	DefaultMaxTimingIterations = 40
)

// Status values of Report.Status.
const (
	StatusComplete     = "complete"      // every scenario committed (and merged)
	StatusPartial      = "partial"       // scenarios missing
	StatusRunning      = "running"       // writers hold live leases
	StatusTrainingOnly = "training only" // training outputs, no simulation
	StatusCorrupt      = "corrupt"       // the merge would refuse the input
	StatusEmpty        = "empty"         // nothing hydroshard wrote
)

// Options tune Build. The zero value is usable.
type Options struct {
	// Merge is passed to merge.Analyze and merge.Status (lease grace,
	// file system). Its FS, when set, is also the file system every other
	// read goes through.
	Merge merge.Options
	// Now is the clock of the "generated" line (default time.Now); tests
	// fix it so that two reports of one study are the same bytes.
	Now func() time.Time
	// MaxCostValues: see DefaultMaxCostValues.
	MaxCostValues int
	// MaxFileBytes: see DefaultMaxFileBytes.
	MaxFileBytes int64
	// MaxTimingIterations: see DefaultMaxTimingIterations.
	MaxTimingIterations int
	// Seed seeds the sampling beyond MaxCostValues, so that a report is
	// reproducible.
	Seed uint64
}

// Report is what Build found; WriteHTML renders it. The fields are the
// numbers the page shows, so that a caller (or a test) can check them
// without parsing HTML.
type Report struct {
	Dir       string
	Generated time.Time
	// Status is one of the Status constants; Banner is the line shown
	// prominently at the top for anything but a complete study
	// ("PARTIAL: 812 of 1,000 scenarios").
	Status string
	Banner string

	CaseName  string
	CaseHash  string
	WorldSize int
	Hosts     []string
	// Scenarios is the run's scenario count, Committed how many are
	// committed.
	Scenarios int
	Committed int
	// Merged: simulation/_manifest.json exists and the reader opened it.
	Merged         bool
	DatasetXXH64   string
	TrainingStatus string
	// ConvergenceXXH64 is the training manifest's checksum of
	// convergence.parquet.
	ConvergenceXXH64 string
	// PolicyXXH64 is the XXH64 of policy/metadata.json, which lists every
	// stage file's size and XXH64: one value naming the checkpoint.
	PolicyXXH64     string
	PolicyIteration int
	PolicyStages    int

	Convergence *Convergence
	Costs       *Costs
	Timing      *Timing
	Progress    *Progress

	// Notes are the files that could not be read and other caveats, each
	// one line.
	Notes []string
	// NotesDropped counts the notes beyond DefaultMaxNotes.
	NotesDropped int

	// Analysis and StatusReport are merge.Analyze's and merge.Status's
	// reports (nil when they failed: a note says why).
	Analysis     *merge.Report
	StatusReport *merge.StatusReport
}

// Convergence is training/convergence.parquet, one entry per iteration.
type Convergence struct {
	Iteration      []int
	LowerBound     []float64
	UpperBoundMean []float64
	// UpperLo and UpperHi are the 95% confidence band of the upper bound:
	// mean -/+ 1.96 std / sqrt(forward passes).
	UpperLo, UpperHi []float64
	GapPercent       []float64 // NaN where the table holds null
	CutsActive       []float64
	// Source says which file and how it was read.
	Source string
	// Reason is why there is no data (Iteration empty).
	Reason string
}

// Costs is the simulated discounted cost (immediate_cost x
// discount_factor, as summary.json) per stage and per scenario.
type Costs struct {
	// Stages are the stage ids, ascending; the slices beside it are per
	// stage, across scenarios.
	Stages []int
	Mean   []float64
	P5     []float64
	P50    []float64
	P95    []float64
	// Scenarios is how many scenarios were read; Total the statistics of
	// their total cost.
	Scenarios int
	Total     Stats
	// HistEdges (bins+1) and HistCounts are the histogram of the total
	// cost per scenario.
	HistEdges  []float64
	HistCounts []int
	// Sampled: more than MaxCostValues values; quantiles and histogram
	// come from a uniform sample of SampleSize scenarios (means are
	// exact).
	Sampled    bool
	SampleSize int
	Source     string
	Reason     string
}

// Stats are streaming statistics of one variable.
type Stats struct {
	N        int
	Mean     float64
	Std      float64
	Min, Max float64
}

// Timing is training/timing/mpi_ranks.parquet.
type Timing struct {
	// Iterations shown by the stacked bars (the latest ones), ranks, and
	// per [iteration][rank] the four phases in ms (NaN: no row).
	Iterations []int
	Ranks      []int
	Forward    [][]float64
	Backward   [][]float64
	Comm       [][]float64
	Idle       [][]float64
	// ImbalanceIter and Imbalance: for every iteration, the largest rank's
	// busy time (forward + backward + communication) over the ranks' mean.
	ImbalanceIter []int
	Imbalance     []float64
	// TotalIterations is how many iterations the table has (the bars show
	// the latest MaxTimingIterations).
	TotalIterations int
	Source          string
	Reason          string
}

// Progress is the simulation's progress from the journals.
type Progress struct {
	Ranks []merge.RankStatus
	// Reruns lists the writers of attempt 2 and later, and the ranks whose
	// scenarios other writers committed.
	Reruns []string
	Reason string
}

// Build reads the study in out. It fails only when out cannot be read at
// all; everything else (a missing table, a damaged file, a refusing
// reader) becomes a note and a section that says why it is empty.
func Build(ctx context.Context, out string, opts Options) (*Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxCostValues <= 0 {
		opts.MaxCostValues = DefaultMaxCostValues
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxTimingIterations <= 0 {
		opts.MaxTimingIterations = DefaultMaxTimingIterations
	}
	inner := opts.Merge.FS
	if inner == nil {
		inner = vfs.OS()
	}
	if _, err := inner.Stat(out); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	// Beneath: a link planted inside OUT is never followed (only OUT and
	// its simulation/, training/, policy/ may be links, as for the merge).
	fsys, err := vfs.Beneath(inner, out, layout.LinkDirs[:]...)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	b := &builder{ctx: ctx, out: out, opts: opts, fs: fsys, r: &Report{Dir: out, Generated: opts.Now().UTC()}}
	b.collect()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b.r, nil
}

// builder carries what the sections share while Build runs.
type builder struct {
	ctx   context.Context
	out   string
	opts  Options
	fs    vfs.FS
	r     *Report
	study *reader.Study
	sim   *manifest.SimManifest
	train *manifest.TrainingManifest
}

func (b *builder) note(format string, args ...any) {
	if len(b.r.Notes) >= DefaultMaxNotes {
		b.r.NotesDropped++
		return
	}
	b.r.Notes = append(b.r.Notes, fmt.Sprintf(format, args...))
}

func (b *builder) collect() {
	mo := b.opts.Merge // Analyze and Status apply their own Beneath
	if a, err := merge.Analyze(b.ctx, b.out, mo); err != nil {
		b.note("merge analysis failed (journals not read): %v", err)
	} else {
		b.r.Analysis = a
	}
	if s, err := merge.Status(b.ctx, b.out, mo); err != nil {
		b.note("status failed (progress not read): %v", err)
	} else {
		b.r.StatusReport = s
	}
	b.openStudy()
	b.readTrainingManifest()
	b.facts()
	b.convergence()
	b.costs()
	b.timing()
	b.progress()
	b.status()
}

// openStudy opens the merged study with the reader; without one (not
// merged, or the reader refuses it) the report falls back to the journals
// and the committed files.
func (b *builder) openStudy() {
	rel := path.Join(layout.SimDir, layout.ManifestName)
	exists, err := vfs.Exists(b.fs, layout.Join(b.out, rel))
	if err != nil {
		b.note("%s: %v", rel, err)
		return
	}
	if !exists {
		return
	}
	st, err := reader.OpenWith(b.out, reader.Options{FS: b.fs})
	if err != nil {
		b.note("the merged study could not be opened (%v): reading the committed files instead", err)
		raw, rerr := vfs.ReadFile(b.fs, layout.Join(b.out, rel), b.opts.MaxFileBytes)
		if rerr == nil {
			if m, merr := manifest.ReadSimManifest(rel, raw); merr == nil {
				b.sim = m
			}
		}
		return
	}
	b.study = st
	b.sim = st.Manifest()
	b.r.Merged = true
}

func (b *builder) readTrainingManifest() {
	rel := path.Join(layout.TrainingDir, layout.ManifestName)
	raw, err := vfs.ReadFile(b.fs, layout.Join(b.out, rel), b.opts.MaxFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		b.note("%s: %v", rel, err)
		return
	}
	tm, err := manifest.ReadTrainingManifest(rel, raw)
	if err != nil {
		b.note("%s: %v", rel, err)
		return
	}
	b.train = tm
}

// facts fills the header: case, ranks, hosts, counts, checksums.
func (b *builder) facts() {
	r := b.r
	if a := r.Analysis; a != nil {
		r.CaseName, r.CaseHash = a.CaseName, a.CaseHash
		r.Scenarios, r.Committed = a.Scenarios, a.Committed
		if a.Training != nil {
			r.WorldSize = a.Training.WorldSize
		}
	}
	if m := b.sim; m != nil {
		if r.CaseName == "" {
			r.CaseName, r.CaseHash = m.CaseName, m.CaseHash
		}
		if r.Scenarios == 0 {
			r.Scenarios, r.Committed = m.Scenarios.Total, m.Scenarios.Completed
		}
		r.WorldSize = max(r.WorldSize, m.Ranks.WorldSize)
		r.Hosts = append(r.Hosts, m.Ranks.Hosts...)
		r.DatasetXXH64 = m.DatasetXXH64
	}
	if t := b.train; t != nil {
		if r.CaseName == "" {
			r.CaseName, r.CaseHash = t.CaseName, t.CaseHash
		}
		r.TrainingStatus = t.Status
		r.ConvergenceXXH64 = t.Files[strings.TrimPrefix(layout.ConvergenceFile, layout.TrainingDir+"/")]
		r.WorldSize = max(r.WorldSize, t.Distribution.WorldSize)
	}
	if s := r.StatusReport; s != nil {
		for _, rk := range s.Ranks {
			r.WorldSize = max(r.WorldSize, rk.World)
			for _, w := range rk.Writers {
				if w.Host != "" {
					r.Hosts = append(r.Hosts, w.Host)
				}
			}
		}
		if r.Scenarios == 0 {
			r.Scenarios, r.Committed = s.Totals.Scenarios, s.Totals.Committed
		}
	}
	slices.Sort(r.Hosts)
	r.Hosts = slices.Compact(r.Hosts)
	b.policy()
}

// policy reads policy/metadata.json: its checksum names the checkpoint
// (it lists every stage file's size and XXH64).
func (b *builder) policy() {
	raw, err := vfs.ReadFile(b.fs, layout.Join(b.out, layout.PolicyMetadataFile), b.opts.MaxFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		b.note("%s: %v", layout.PolicyMetadataFile, err)
		return
	}
	b.r.PolicyXXH64 = manifest.FormatXXH64(xxhash.Sum64(raw))
	var meta struct {
		Iterations int  `json:"completed_iterations"`
		Stages     *int `json:"num_stages"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		b.note("%s: %v", layout.PolicyMetadataFile, err)
		return
	}
	b.r.PolicyIteration = meta.Iterations
	if meta.Stages != nil {
		b.r.PolicyStages = *meta.Stages
	}
}

// status decides the study's status and the banner.
func (b *builder) status() {
	r := b.r
	a := r.Analysis
	hasTraining := b.train != nil || (r.Convergence != nil && len(r.Convergence.Iteration) > 0) ||
		(a != nil && a.Training != nil) || (r.StatusReport != nil && r.StatusReport.Training != nil)
	hasSim := b.sim != nil || r.Scenarios > 0
	switch {
	case a != nil && a.Outcome == merge.Running:
		r.Status = StatusRunning
		r.Banner = fmt.Sprintf("RUNNING: %s live writer%s; %s of %s scenarios committed so far",
			fmtInt(len(a.Live)), plural(len(a.Live)), fmtInt(r.Committed), fmtInt(r.Scenarios))
	case a != nil && a.Outcome == merge.Corrupt:
		r.Status = StatusCorrupt
		r.Banner = fmt.Sprintf("CORRUPT: the merge would refuse this input (%s problem%s); %s of %s scenarios committed",
			fmtInt(len(a.Problems)), plural(len(a.Problems)), fmtInt(r.Committed), fmtInt(r.Scenarios))
	case !hasSim && hasTraining:
		r.Status = StatusTrainingOnly
		r.Banner = "TRAINING ONLY: no simulation outputs"
	case !hasSim:
		r.Status = StatusEmpty
		r.Banner = "EMPTY: no hydroshard outputs in this directory"
	case r.Committed < r.Scenarios || (a != nil && a.Outcome == merge.Partial) || (b.sim != nil && b.sim.Status != manifest.StatusComplete):
		r.Status = StatusPartial
		r.Banner = fmt.Sprintf("PARTIAL: %s of %s scenarios", fmtInt(r.Committed), fmtInt(r.Scenarios))
	default:
		r.Status = StatusComplete
		if !r.Merged {
			r.Banner = "COMPLETE, NOT MERGED: every scenario is committed; run merge-shards to write the manifests"
		}
	}
}

// convergence reads training/convergence.parquet: through the reader for
// a merged study, directly (checked against the training manifest's
// XXH64) otherwise.
func (b *builder) convergence() {
	c := &Convergence{}
	b.r.Convergence = c
	var rows shard.ConvergenceRows
	src, err := b.readTraining(shard.Convergence, layout.ConvergenceFile, &rows)
	if err != nil {
		c.Reason = err.Error()
		return
	}
	c.Source = src
	n := len(rows.Iteration)
	if n == 0 {
		c.Reason = "no training outputs: " + layout.ConvergenceFile + " has no rows"
		return
	}
	for i := range n {
		c.Iteration = append(c.Iteration, int(rows.Iteration[i]))
		c.LowerBound = append(c.LowerBound, rows.LowerBound[i])
		c.UpperBoundMean = append(c.UpperBoundMean, rows.UpperBoundMean[i])
		half := 1.96 * rows.UpperBoundStd[i] / math.Sqrt(float64(max(rows.ForwardPasses[i], 1)))
		c.UpperLo = append(c.UpperLo, rows.UpperBoundMean[i]-half)
		c.UpperHi = append(c.UpperHi, rows.UpperBoundMean[i]+half)
		g := math.NaN()
		if rows.GapPercent.Values != nil && (rows.GapPercent.Valid == nil || rows.GapPercent.Valid[i]) {
			g = rows.GapPercent.Values[i]
		}
		c.GapPercent = append(c.GapPercent, g)
		c.CutsActive = append(c.CutsActive, float64(rows.CutsActive[i]))
	}
}

// readTraining decodes a training table into dst and says where it came
// from; the error is the reason shown in the section.
func (b *builder) readTraining(t *shard.Table, rel string, dst any) (string, error) {
	if b.study != nil {
		rec, err := b.study.ReadTraining(b.ctx, t)
		if err == nil {
			defer rec.Release()
			if err := reader.Decode(rec, dst); err != nil {
				b.note("%s: %v", rel, err)
				return "", fmt.Errorf("%s could not be decoded: %w", rel, err)
			}
			return rel + " (merged study, read by package reader)", nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, reader.ErrNotFound) {
			b.note("%s: %v", rel, err)
			return "", fmt.Errorf("%s could not be read: %w", rel, err)
		}
	}
	if b.train == nil {
		return "", fmt.Errorf("no training outputs: this study has no %s (no merged training: training/_manifest.json is absent)", rel)
	}
	want, listed := b.train.Files[strings.TrimPrefix(rel, layout.TrainingDir+"/")]
	if !listed {
		return "", fmt.Errorf("no training outputs: %s is not listed in training/_manifest.json", rel)
	}
	raw, err := vfs.ReadFile(b.fs, layout.Join(b.out, rel), b.opts.MaxFileBytes)
	if err != nil {
		b.note("%s: %v", rel, err)
		return "", fmt.Errorf("%s could not be read: %w", rel, err)
	}
	if got := manifest.FormatXXH64(xxhash.Sum64(raw)); got != want {
		b.note("%s: xxh64 %s, training/_manifest.json says %s", rel, got, want)
		return "", fmt.Errorf("%s is damaged: xxh64 %s, training/_manifest.json says %s", rel, got, want)
	}
	if err := decodeParquet(b.ctx, raw, t, dst); err != nil {
		b.note("%s: %v", rel, err)
		return "", fmt.Errorf("%s could not be decoded: %w", rel, err)
	}
	return rel + " (checked against training/_manifest.json)", nil
}

// decodeParquet decodes a whole Parquet file of table t into dst (a rows
// struct), refusing another schema: what the reader does for a merged
// study, for the files of a study the reader does not open.
func decodeParquet(ctx context.Context, raw []byte, t *shard.Table, dst any) error {
	pf, err := file.NewParquetReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("not a Parquet file: %w", err)
	}
	defer pf.Close()
	alloc := memory.DefaultAllocator
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, alloc)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	defer tbl.Release()
	want := t.Schema()
	if tbl.NumCols() != int64(want.NumFields()) {
		return fmt.Errorf("%d columns, the table %s has %d", tbl.NumCols(), t.Name, want.NumFields())
	}
	cols := make([]arrow.Array, tbl.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		f := tbl.Schema().Field(i)
		if w := want.Field(i); f.Name != w.Name || !arrow.TypeEqual(f.Type, w.Type) {
			return fmt.Errorf("column %d is %s %s, the table %s has %s %s", i, f.Name, f.Type, t.Name, w.Name, w.Type)
		}
		chunks := tbl.Column(i).Data().Chunks()
		switch len(chunks) {
		case 0:
			cols[i] = array.MakeArrayOfNull(alloc, want.Field(i).Type, 0)
		case 1:
			cols[i] = chunks[0]
			cols[i].Retain()
		default:
			if cols[i], err = array.Concatenate(chunks, alloc); err != nil {
				return fmt.Errorf("parquet: %w", err)
			}
		}
	}
	rec := array.NewRecordBatch(want, cols, tbl.NumRows())
	defer rec.Release()
	if err := reader.Decode(rec, dst); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// timing reads training/timing/mpi_ranks.parquet.
func (b *builder) timing() {
	tm := &Timing{}
	b.r.Timing = tm
	var rows shard.TimingMPIRanksRows
	src, err := b.readTraining(shard.TimingMPIRanks, layout.TimingMPIRanksFile, &rows)
	if err != nil {
		tm.Reason = err.Error()
		return
	}
	tm.Source = src
	if len(rows.Iteration) == 0 {
		tm.Reason = "no timing rows: " + layout.TimingMPIRanksFile + " is empty"
		return
	}
	iters := map[int]bool{}
	ranks := map[int]bool{}
	for i := range rows.Iteration {
		iters[int(rows.Iteration[i])] = true
		ranks[int(rows.Rank[i])] = true
	}
	all := sortedKeys(iters)
	tm.Ranks = sortedKeys(ranks)
	tm.TotalIterations = len(all)
	shown := all
	if len(shown) > b.opts.MaxTimingIterations {
		shown = shown[len(shown)-b.opts.MaxTimingIterations:]
	}
	tm.Iterations = shown
	itIdx := map[int]int{}
	for i, it := range shown {
		itIdx[it] = i
	}
	rkIdx := map[int]int{}
	for i, rk := range tm.Ranks {
		rkIdx[rk] = i
	}
	grid := func() [][]float64 {
		g := make([][]float64, len(shown))
		for i := range g {
			g[i] = make([]float64, len(tm.Ranks))
			for j := range g[i] {
				g[i][j] = math.NaN()
			}
		}
		return g
	}
	tm.Forward, tm.Backward, tm.Comm, tm.Idle = grid(), grid(), grid(), grid()
	busyMax := map[int]float64{}
	busySum := map[int]float64{}
	busyN := map[int]int{}
	for i := range rows.Iteration {
		it := int(rows.Iteration[i])
		busy := float64(rows.ForwardTimeMs[i] + rows.BackwardTimeMs[i] + rows.CommunicationTimeMs[i])
		busyMax[it] = math.Max(busyMax[it], busy)
		busySum[it] += busy
		busyN[it]++
		ii, ok := itIdx[it]
		if !ok {
			continue
		}
		j := rkIdx[int(rows.Rank[i])]
		tm.Forward[ii][j] = float64(rows.ForwardTimeMs[i])
		tm.Backward[ii][j] = float64(rows.BackwardTimeMs[i])
		tm.Comm[ii][j] = float64(rows.CommunicationTimeMs[i])
		tm.Idle[ii][j] = float64(rows.IdleTimeMs[i])
	}
	for _, it := range all {
		mean := busySum[it] / float64(busyN[it])
		v := math.NaN()
		if mean > 0 {
			v = busyMax[it] / mean
		}
		tm.ImbalanceIter = append(tm.ImbalanceIter, it)
		tm.Imbalance = append(tm.Imbalance, v)
	}
}

func sortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// progress summarises the journals per rank and attempt.
func (b *builder) progress() {
	p := &Progress{}
	b.r.Progress = p
	s := b.r.StatusReport
	if s == nil {
		p.Reason = "no progress: the journals could not be read (see the notes)"
		return
	}
	if s.Journals == 0 {
		p.Reason = "no progress: this directory has no journals (_shards/journal is empty or absent)"
		return
	}
	p.Ranks = s.Ranks
	for _, rk := range s.Ranks {
		// A requeue is attempt 1 and later (SLURM_RESTART_COUNT); a rerun
		// job starts again at attempt 0 under another job id: either way a
		// rank has more than one writer of a phase.
		phases := map[string]int{}
		for _, w := range rk.Writers {
			phases[w.Phase]++
		}
		for _, w := range rk.Writers {
			if w.Attempt > 0 || phases[w.Phase] > 1 {
				job := ""
				if w.JobID != "" {
					job = ", job " + w.JobID
				}
				p.Reruns = append(p.Reruns, fmt.Sprintf("rank %d, %s writer, attempt %d%s: %s, %s committed", rk.Rank, w.Phase, w.Attempt, job, w.State, fmtInt(w.Committed)))
			}
		}
		if rk.Owned >= 0 && rk.CommittedAny > rk.Committed {
			p.Reruns = append(p.Reruns, fmt.Sprintf("rank %d: %s of its scenarios committed by other writers (a shared rerun)", rk.Rank, fmtInt(rk.CommittedAny-rk.Committed)))
		}
	}
}

// costAcc accumulates the costs of scenarios one at a time: exact
// streaming means and totals, and per stage a bounded uniform sample of
// the values (reservoir sampling: every scenario kept with the same
// probability), so memory stays at MaxCostValues floats whatever the
// scenario count.
type costAcc struct {
	capPer int // values kept per stage
	rng    *rand.Rand
	stages map[int]*stageAcc
	totals reservoir
	tot    welford
	n      int
}

type stageAcc struct {
	w   welford
	res reservoir
}

type welford struct {
	n             int
	mean, m2      float64
	min, max      float64
	sawNonFinites bool
}

func (w *welford) add(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		w.sawNonFinites = true
		return
	}
	w.n++
	if w.n == 1 {
		w.min, w.max = x, x
	}
	w.min, w.max = math.Min(w.min, x), math.Max(w.max, x)
	d := x - w.mean
	w.mean += d / float64(w.n)
	w.m2 += d * (x - w.mean)
}

func (w *welford) stats() Stats {
	s := Stats{N: w.n, Mean: w.mean, Min: w.min, Max: w.max}
	if w.n > 1 {
		s.Std = math.Sqrt(w.m2 / float64(w.n-1))
	}
	return s
}

type reservoir struct {
	cap  int
	seen int
	vals []float64
}

func (r *reservoir) add(x float64, rng *rand.Rand) {
	r.seen++
	if len(r.vals) < r.cap {
		r.vals = append(r.vals, x)
		return
	}
	if j := rng.IntN(r.seen); j < r.cap {
		r.vals[j] = x
	}
}

// add takes one scenario's costs rows: discounted cost per stage (summed
// over its blocks) and in total.
func (a *costAcc) add(rows *shard.CostsRows) {
	per := map[int]float64{}
	total := 0.0
	for i := range rows.StageID {
		v := rows.ImmediateCost[i] * rows.DiscountFactor[i]
		per[int(rows.StageID[i])] += v
		total += v
	}
	for st, v := range per {
		s := a.stages[st]
		if s == nil {
			s = &stageAcc{res: reservoir{cap: a.capPer}}
			a.stages[st] = s
		}
		s.w.add(v)
		s.res.add(v, a.rng)
	}
	a.tot.add(total)
	a.totals.add(total, a.rng)
	a.n++
}

// costs reads the costs table of every committed scenario.
func (b *builder) costs() {
	c := &Costs{}
	b.r.Costs = c
	var scen []int
	var read func(s int, dst *shard.CostsRows) error
	switch {
	case b.study != nil:
		for _, f := range b.study.Files("costs") {
			scen = append(scen, f.Scenario)
		}
		c.Source = "simulation/costs of the merged study (package reader)"
		if b.study.Compacted() {
			c.Source = "compacted/costs of the merged study (merge-shards compact; package reader)"
		}
		read = func(s int, dst *shard.CostsRows) error { return b.study.ReadRows(b.ctx, "costs", s, dst) }
	default:
		var pad int
		var err error
		scen, pad, err = b.committedPartitions()
		if err != nil {
			c.Reason = err.Error()
			return
		}
		c.Source = "committed partition files under simulation/costs (no merged study: not verified by a merge)"
		read = func(s int, dst *shard.CostsRows) error {
			rel := layout.DataFile("costs", pad, s)
			raw, err := vfs.ReadFile(b.fs, layout.Join(b.out, rel), b.opts.MaxFileBytes)
			if err != nil {
				return err
			}
			return decodeParquet(b.ctx, raw, shard.Costs, dst)
		}
	}
	if len(scen) == 0 {
		if c.Reason == "" {
			c.Reason = "no simulation outputs: no scenario has a committed simulation/costs file"
		}
		return
	}
	// capPer is set from the first scenario read: the bound is on
	// scenarios x stages values.
	acc := &costAcc{rng: rand.New(rand.NewPCG(b.opts.Seed, 0x5eed)), stages: map[int]*stageAcc{}}
	failed := 0
	for _, s := range scen {
		if b.ctx.Err() != nil {
			return
		}
		var rows shard.CostsRows
		if err := read(s, &rows); err != nil {
			failed++
			b.note("scenario %d: simulation/costs could not be read: %v", s, err)
			continue
		}
		if acc.n == 0 {
			// The values bound is scenarios x stages: give each stage its
			// share.
			stages := map[int32]bool{}
			for _, st := range rows.StageID {
				stages[st] = true
			}
			acc.capPer = max(1, b.opts.MaxCostValues/max(1, len(stages)))
			acc.totals.cap = acc.capPer
		}
		acc.add(&rows)
	}
	if failed > 0 {
		b.note("%s of %s scenarios' costs could not be read and are left out of the cost statistics", fmtInt(failed), fmtInt(len(scen)))
	}
	if acc.n == 0 {
		c.Reason = "no simulation costs could be read (see the notes)"
		return
	}
	c.Scenarios = acc.n
	c.Total = acc.tot.stats()
	c.Sampled = acc.totals.seen > len(acc.totals.vals)
	c.SampleSize = len(acc.totals.vals)
	stageIDs := make([]int, 0, len(acc.stages))
	for st := range acc.stages {
		stageIDs = append(stageIDs, st)
	}
	sort.Ints(stageIDs)
	for _, st := range stageIDs {
		s := acc.stages[st]
		vals := s.res.vals
		sort.Float64s(vals)
		c.Stages = append(c.Stages, st)
		c.Mean = append(c.Mean, s.w.stats().Mean)
		c.P5 = append(c.P5, stat.Quantile(0.05, stat.Empirical, vals, nil))
		c.P50 = append(c.P50, stat.Quantile(0.50, stat.Empirical, vals, nil))
		c.P95 = append(c.P95, stat.Quantile(0.95, stat.Empirical, vals, nil))
		if s.res.seen > len(vals) {
			c.Sampled = true
		}
	}
	c.HistEdges, c.HistCounts = histogram(acc.totals.vals, c.Total.Min, c.Total.Max)
}

// histogram bins vals between lo and hi (Sturges' rule, 5 to 40 bins).
func histogram(vals []float64, lo, hi float64) ([]float64, []int) {
	n := len(vals)
	if n == 0 {
		return nil, nil
	}
	bins := int(math.Ceil(math.Log2(float64(n)))) + 1
	bins = min(max(bins, 5), 40)
	if !(hi > lo) {
		d := math.Max(math.Abs(lo)*0.01, 0.5)
		lo, hi = lo-d, hi+d
	}
	edges := make([]float64, bins+1)
	for i := range edges {
		edges[i] = lo + (hi-lo)*float64(i)/float64(bins)
	}
	counts := make([]int, bins)
	for _, v := range vals {
		i := int((v - lo) / (hi - lo) * float64(bins))
		counts[min(max(i, 0), bins-1)]++
	}
	return edges, counts
}

// committedPartitions lists the scenarios with a committed costs file of
// an unmerged study, and the padding of their names. The tree holds only
// committed files (temp files live under _shards/tmp), except scenarios a
// merge revoked or would quarantine: those the analysis lists as missing
// are left out.
func (b *builder) committedPartitions() ([]int, int, error) {
	dir := layout.Join(b.out, path.Join(layout.SimDir, "costs"))
	ents, err := b.fs.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, errors.New("no simulation outputs: this study has no simulation/costs directory")
	}
	if err != nil {
		b.note("simulation/costs: %v", err)
		return nil, 0, fmt.Errorf("simulation/costs could not be listed: %w", err)
	}
	pad := 0
	if b.sim != nil {
		pad = b.sim.Layout.ScenarioPad
	} else {
		// The padding of the run: a name with a leading zero and more than
		// one digit is padded to its width.
		for _, e := range ents {
			d, ok := strings.CutPrefix(e.Name(), "scenario_id=")
			if ok && len(d) > 1 && d[0] == '0' {
				pad = len(d)
				break
			}
		}
	}
	missing := map[int]bool{}
	if a := b.r.Analysis; a != nil {
		for _, m := range a.Missing {
			missing[m] = true
		}
	}
	var out []int
	bad := 0
	for _, e := range ents {
		s, err := layout.ParsePartition(e.Name(), pad)
		if err != nil || !e.IsDir() {
			bad++
			continue
		}
		if !missing[s] {
			out = append(out, s)
		}
	}
	if bad > 0 {
		b.note("simulation/costs: %s entries that are not partition directories were skipped", fmtInt(bad))
	}
	sort.Ints(out)
	return out, pad, nil
}

// fmtInt writes n with thousands separators (1,000).
func fmtInt(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var sb strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			sb.WriteByte(',')
		}
		sb.WriteRune(c)
	}
	if neg {
		return "-" + sb.String()
	}
	return sb.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
