package report_test

// The report on real studies written by the rank writers (synthetic
// solver, tiny case) and merged by package merge: complete, partial
// (merged and not), running, training only and empty. Each test checks
// the banner, that every chart the study has data for is drawn (paths and
// rects with numeric coordinates), that each section without data says
// why, and that the numbers shown are the numbers written.

import (
	"bytes"
	"context"
	"html"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/report"
)

const (
	seed       = 11
	iterations = 4
	passes     = 2
	world      = 2
	scenarios  = 8
)

// hostileName is the case name of every study: if it reaches the page
// unescaped, the page runs a script.
const hostileName = `tiny<script>alert("x")</script>&amp;`

type studyOpts struct {
	train bool  // run training (both ranks) with a checkpoint at the last iteration
	sim   bool  // run the simulation
	skip  []int // scenarios the simulation leaves out
	merge bool  // merge afterwards
}

// writeStudy writes a study into out and returns the total discounted
// cost of every scenario written (by scenario) and the case.
func writeStudy(t *testing.T, out string, o studyOpts) (map[int]float64, *manifest.Case) {
	t.Helper()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	c.Name = hostileName
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	totals := map[int]float64{}
	for r := range world {
		id, err := rank.Explicit(r, world)
		if err != nil {
			t.Fatal(err)
		}
		if o.train {
			cfg := manifest.TrainingConfig{Seed: seed, MaxIterations: iterations, ForwardPasses: passes, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
			tw, err := rank.OpenTraining(ctx, out, id, c, rank.TrainingOptions{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			for it := 1; it <= iterations; it++ {
				if err := tw.WriteIteration(ctx, synth.TrainingIteration(c, seed, it, passes, r, world, 1)); err != nil {
					t.Fatal(err)
				}
			}
			cuts := synth.CheckpointCutsCap(c, seed, iterations, iterations, passes, r, world, false)
			var meta *manifest.PolicyMeta
			if r == 0 {
				meta = synth.CheckpointMeta(c, seed, iterations, iterations, passes, 0)
			}
			if err := tw.WriteCheckpoint(ctx, iterations, cuts, nil, nil, meta); err != nil {
				t.Fatal(err)
			}
			if err := tw.CloseTerminated(rank.TerminationIterationLimit); err != nil {
				t.Fatal(err)
			}
		}
		if o.sim {
			w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: scenarios, Ownership: rank.Contiguous})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range w.Remaining() {
				if slices.Contains(o.skip, s) {
					continue
				}
				sc, err := synth.Generate(c, seed, s)
				if err != nil {
					t.Fatal(err)
				}
				totals[s], _ = synth.Cost(sc)
				if err := w.WriteScenario(ctx, sc); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if o.merge {
		if _, err := merge.Run(ctx, out, merge.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	return totals, c
}

var fixedNow = func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }

// build runs Build and WriteHTML.
func build(t *testing.T, out string) (*report.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := report.Build(ctx, out, report.Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	return r, buf.String()
}

var (
	svgRe    = regexp.MustCompile(`(?s)<svg [^>]*data-chart="([a-z-]+)"[^>]*>(.*?)</svg>`)
	num      = `-?[0-9]+(?:\.[0-9]+)?`
	pathRe   = regexp.MustCompile(`<path class="(?:series|band)" d="M(` + num + `) (` + num + `)(?: L` + num + ` ` + num + `)+(?: Z)?"`)
	rectRe   = regexp.MustCompile(`<rect class="bar[^"]*"[^>]* x="(` + num + `)" y="(` + num + `)" width="(` + num + `)" height="(` + num + `)"`)
	bannerRe = regexp.MustCompile(`<div class="banner [^"]*" id="status-banner" data-status="([^"]*)">([^<]*)</div>`)
	nodataRe = regexp.MustCompile(`<p class="nodata" data-nodata="([a-z]+)">([^<]*)</p>`)
)

// charts returns, per chart name, how many drawn elements it has: paths
// with at least two numeric points, and bars of positive size.
func charts(page string) map[string]int {
	out := map[string]int{}
	for _, m := range svgRe.FindAllStringSubmatch(page, -1) {
		n := len(pathRe.FindAllString(m[2], -1))
		for _, r := range rectRe.FindAllStringSubmatch(m[2], -1) {
			w, _ := strconv.ParseFloat(r[3], 64)
			h, _ := strconv.ParseFloat(r[4], 64)
			if w > 0 && h > 0 {
				n++
			}
		}
		out[m[1]] += n
	}
	return out
}

func banner(t *testing.T, page string) (status, text string) {
	t.Helper()
	m := bannerRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no status banner in the page:\n%.2000s", page)
	}
	return m[1], m[2]
}

func nodata(page string) map[string]string {
	out := map[string]string{}
	for _, m := range nodataRe.FindAllStringSubmatch(page, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// dataValue returns the exact value of a statistic shown in the page.
func dataValue(t *testing.T, page, key string) float64 {
	t.Helper()
	m := regexp.MustCompile(`data-stat="` + key + `" data-value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in the page", key)
	}
	v, err := strconv.ParseFloat(html.UnescapeString(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mean(m map[int]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s / float64(len(m))
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// checkEscaped: the hostile case name is shown, escaped, and never raw.
func checkEscaped(t *testing.T, page string) {
	t.Helper()
	if strings.Contains(page, "<script") {
		t.Errorf("the page contains a raw <script")
	}
	if !strings.Contains(page, "tiny&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;amp;") {
		t.Errorf("the case name is not shown escaped")
	}
}

func wantCharts(t *testing.T, page string, names ...string) {
	t.Helper()
	got := charts(page)
	for _, n := range names {
		if got[n] == 0 {
			t.Errorf("chart %q has no drawn element (charts: %v)", n, got)
		}
	}
	for n := range got {
		if !slices.Contains(names, n) {
			t.Errorf("unexpected chart %q", n)
		}
	}
}

func TestReportComplete(t *testing.T) {
	out := t.TempDir()
	totals, c := writeStudy(t, out, studyOpts{train: true, sim: true, merge: true})
	r, page := build(t, out)
	if st, text := banner(t, page); st != report.StatusComplete || !strings.Contains(text, "COMPLETE: 8 of 8") {
		t.Errorf("banner %q %q", st, text)
	}
	wantCharts(t, page, "convergence", "gap", "cuts", "stage-costs", "total-cost-histogram", "rank-timing", "imbalance", "progress")
	if nd := nodata(page); len(nd) != 0 {
		t.Errorf("sections without data in a complete study: %v", nd)
	}
	checkEscaped(t, page)
	if !r.Merged || r.DatasetXXH64 == "" || r.PolicyXXH64 == "" || r.PolicyIteration != iterations || r.ConvergenceXXH64 == "" {
		t.Errorf("facts: merged %v dataset %q policy %q it %d conv %q", r.Merged, r.DatasetXXH64, r.PolicyXXH64, r.PolicyIteration, r.ConvergenceXXH64)
	}
	for _, s := range []string{r.DatasetXXH64, r.PolicyXXH64, r.ConvergenceXXH64} {
		if !strings.Contains(page, s) {
			t.Errorf("checksum %s not in the page", s)
		}
	}
	// The numbers are those written: the mean total cost, and the
	// per-stage means, against the synthetic solver's own figures.
	if got, want := dataValue(t, page, "total-mean"), mean(totals); !near(got, want) {
		t.Errorf("mean total cost %v, the written rows give %v", got, want)
	}
	if got := dataValue(t, page, "total-n"); got != scenarios {
		t.Errorf("scenarios %v", got)
	}
	if len(r.Costs.Stages) != c.Stages {
		t.Errorf("stages %v, the case has %d", r.Costs.Stages, c.Stages)
	}
	for i, st := range r.Costs.Stages {
		want := 0.0
		for s := range scenarios {
			sc, _ := synth.Generate(c, seed, s)
			_, per := synth.Cost(sc)
			want += per[i]
			if sc.Costs.StageID[i] != int32(st) {
				t.Fatalf("stage order")
			}
		}
		want /= scenarios
		if !near(r.Costs.Mean[i], want) {
			t.Errorf("stage %d: mean %v, want %v", st, r.Costs.Mean[i], want)
		}
		if !(r.Costs.P5[i] <= r.Costs.P50[i] && r.Costs.P50[i] <= r.Costs.P95[i]) {
			t.Errorf("stage %d: quantiles out of order", st)
		}
	}
	// The summary the merge wrote agrees (an independent computation).
	raw, err := os.ReadFile(filepath.Join(out, layout.SimDir, layout.SummaryName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"mean"`) {
		t.Fatalf("summary.json: %s", raw)
	}
	// Convergence: the lower bounds are the root rank's rows.
	for it := 1; it <= iterations; it++ {
		info := synth.TrainingIteration(c, seed, it, passes, 0, world, 1)
		if got := r.Convergence.LowerBound[it-1]; info.Convergence == nil || got != info.Convergence.LowerBound {
			t.Errorf("iteration %d: lower bound %v, written %+v", it, got, info.Convergence)
		}
	}
	if len(r.Timing.Ranks) != world || len(r.Timing.Iterations) != iterations {
		t.Errorf("timing: ranks %v iterations %v", r.Timing.Ranks, r.Timing.Iterations)
	}
	// Deterministic: two reports of one study are the same bytes.
	if _, again := build(t, out); again != page {
		t.Errorf("two reports of one study differ")
	}
}

func TestReportPartialMerged(t *testing.T) {
	out := t.TempDir()
	totals, _ := writeStudy(t, out, studyOpts{train: true, sim: true, skip: []int{1, 6}, merge: true})
	r, page := build(t, out)
	if st, text := banner(t, page); st != report.StatusPartial || text != "PARTIAL: 6 of 8 scenarios" {
		t.Errorf("banner %q %q", st, text)
	}
	wantCharts(t, page, "convergence", "gap", "cuts", "stage-costs", "total-cost-histogram", "rank-timing", "imbalance", "progress")
	if got, want := dataValue(t, page, "total-mean"), mean(totals); !near(got, want) {
		t.Errorf("mean total cost %v, want %v", got, want)
	}
	if r.Costs.Scenarios != 6 || !r.Merged {
		t.Errorf("costs of %d scenarios, merged %v", r.Costs.Scenarios, r.Merged)
	}
	checkEscaped(t, page)
}

// A study compacted with --replace (its partition files gone): the costs
// come from the compacted files, the same numbers, and the page says so.
func TestReportCompacted(t *testing.T) {
	out := t.TempDir()
	totals, _ := writeStudy(t, out, studyOpts{train: true, sim: true, merge: true})
	if _, err := merge.Compact(context.Background(), out, merge.CompactOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	r, page := build(t, out)
	if st, _ := banner(t, page); st != report.StatusComplete {
		t.Errorf("banner %q", st)
	}
	wantCharts(t, page, "convergence", "gap", "cuts", "stage-costs", "total-cost-histogram", "rank-timing", "imbalance", "progress")
	if got, want := dataValue(t, page, "total-mean"), mean(totals); !near(got, want) || r.Costs.Scenarios != scenarios {
		t.Errorf("mean total cost %v of %d scenarios, want %v of %d", got, r.Costs.Scenarios, want, scenarios)
	}
	if !strings.Contains(r.Costs.Source, "compacted/costs") {
		t.Errorf("costs source %q does not say compacted", r.Costs.Source)
	}
}

// An unmerged partial study: no manifests at all; the costs come from the
// committed partition files, a damaged one becomes a note.
func TestReportPartialUnmerged(t *testing.T) {
	out := t.TempDir()
	totals, _ := writeStudy(t, out, studyOpts{sim: true, skip: []int{3}})
	// Damage scenario 5's costs: the report must say so and go on.
	bad := filepath.Join(out, filepath.FromSlash(layout.DataFile("costs", 0, 5)))
	if err := os.WriteFile(bad, []byte("PAR1 not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	delete(totals, 5)
	r, page := build(t, out)
	// The damaged file is a size problem for the merge: the study is
	// corrupt, and still reported.
	if st, text := banner(t, page); st != report.StatusCorrupt || text != "CORRUPT: the merge would refuse this input (1 problem); 7 of 8 scenarios committed" {
		t.Errorf("banner %q %q", st, text)
	}
	if r.Merged {
		t.Errorf("merged")
	}
	wantCharts(t, page, "stage-costs", "total-cost-histogram", "progress")
	nd := nodata(page)
	if !strings.Contains(nd["convergence"], "no training outputs") || !strings.Contains(nd["timing"], "no training outputs") {
		t.Errorf("no-data reasons: %v", nd)
	}
	if got, want := dataValue(t, page, "total-mean"), mean(totals); !near(got, want) {
		t.Errorf("mean total cost %v, want %v (of %d scenarios)", got, want, len(totals))
	}
	if !strings.Contains(page, "scenario 5: simulation/costs could not be read") {
		t.Errorf("the damaged file is not named in the notes: %v", r.Notes)
	}
	checkEscaped(t, page)
}

// A skipped scenario without damage: the banner is the partial count.
func TestReportPartialUnmergedBanner(t *testing.T) {
	out := t.TempDir()
	writeStudy(t, out, studyOpts{sim: true, skip: []int{3, 4, 7}})
	_, page := build(t, out)
	if st, text := banner(t, page); st != report.StatusPartial || text != "PARTIAL: 5 of 8 scenarios" {
		t.Errorf("banner %q %q", st, text)
	}
}

func TestReportTrainingOnly(t *testing.T) {
	out := t.TempDir()
	writeStudy(t, out, studyOpts{train: true, merge: true})
	r, page := build(t, out)
	if st, text := banner(t, page); st != report.StatusTrainingOnly || !strings.HasPrefix(text, "TRAINING ONLY") {
		t.Errorf("banner %q %q", st, text)
	}
	wantCharts(t, page, "convergence", "gap", "cuts", "rank-timing", "imbalance")
	nd := nodata(page)
	if !strings.HasPrefix(nd["costs"], "no simulation outputs") {
		t.Errorf("costs section: %q", nd["costs"])
	}
	if len(r.Convergence.Iteration) != iterations {
		t.Errorf("iterations %v", r.Convergence.Iteration)
	}
	checkEscaped(t, page)
}

func TestReportEmpty(t *testing.T) {
	out := t.TempDir()
	_, page := build(t, out)
	if st, _ := banner(t, page); st != report.StatusEmpty {
		t.Errorf("status %q", st)
	}
	wantCharts(t, page)
	nd := nodata(page)
	for _, s := range []string{"convergence", "costs", "timing", "progress"} {
		if nd[s] == "" {
			t.Errorf("section %s has no reason for having no data (%v)", s, nd)
		}
	}
}

// A writer still open holds a live lease: the report says RUNNING.
func TestReportRunning(t *testing.T) {
	out := t.TempDir()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := rank.Explicit(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: scenarios})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := map[int]float64{}
	for s := range 3 {
		sc, err := synth.Generate(c, seed, s)
		if err != nil {
			t.Fatal(err)
		}
		want[s], _ = synth.Cost(sc)
		if err := w.WriteScenario(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, page := build(t, out)
	st, text := banner(t, page)
	if st != report.StatusRunning || !strings.HasPrefix(text, "RUNNING: 1 live writer;") || !strings.Contains(text, "3 of 8 scenarios") {
		t.Errorf("banner %q %q", st, text)
	}
	if got := dataValue(t, page, "total-mean"); !near(got, mean(want)) {
		t.Errorf("mean total cost %v, want %v", got, mean(want))
	}
}

// The sampling bound: with room for fewer values than scenarios x stages,
// the quantiles come from a sample and the page says so; the mean stays
// exact.
func TestReportSampled(t *testing.T) {
	out := t.TempDir()
	totals, _ := writeStudy(t, out, studyOpts{sim: true, merge: true})
	r, err := report.Build(context.Background(), out, report.Options{Now: fixedNow, MaxCostValues: 6})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Costs.Sampled || r.Costs.SampleSize != 2 {
		t.Errorf("sampled %v, sample of %d", r.Costs.Sampled, r.Costs.SampleSize)
	}
	if !near(r.Costs.Total.Mean, mean(totals)) {
		t.Errorf("mean %v, want %v", r.Costs.Total.Mean, mean(totals))
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "uniform sample of 2 scenarios") {
		t.Errorf("the page does not say the quantiles are sampled")
	}
}

// A requeued rank (attempt 1 after attempt 0) is listed as a rerun.
func TestReportRerun(t *testing.T) {
	out := t.TempDir()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for attempt := range 2 {
		id, err := rank.Explicit(0, 1)
		if err != nil {
			t.Fatal(err)
		}
		id.Attempt = attempt
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: 4})
		if err != nil {
			t.Fatal(err)
		}
		todo := w.Remaining()
		if attempt == 0 {
			todo = todo[:2]
		}
		for _, s := range todo {
			sc, err := synth.Generate(c, seed, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteScenario(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, page := build(t, out)
	if len(r.Progress.Reruns) == 0 || !strings.Contains(page, "rank 0, simulation writer, attempt 1: closed, 2 committed") {
		t.Errorf("reruns %q", r.Progress.Reruns)
	}
	if st, _ := banner(t, page); st != report.StatusComplete {
		t.Errorf("status %q", st)
	}
}
