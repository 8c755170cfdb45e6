package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// page is what the template renders: the Report plus the charts, built
// before rendering so that the template only places them.
type page struct {
	*Report
	Title          string
	Facts          [][2]string
	ConvCharts     []template.HTML
	ConvTable      [][]string
	CostCharts     []template.HTML
	CostTotal      []costStat
	TimingCharts   []template.HTML
	ProgressChart  template.HTML
	ProgressRows   [][]string
	WriterRows     [][]string
	TimingNote     string
	SampleNote     string
	AnalysisLines  []string
	BannerClass    string
	GeneratedStamp string
}

// costStat is one statistic of the total cost, with its exact value in a
// data attribute (the displayed one is rounded).
type costStat struct {
	Name, Key, Shown, Exact string
}

// WriteHTML writes the report as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	p := &page{Report: r, GeneratedStamp: r.Generated.Format(time.RFC3339)}
	p.Title = "hydroshard report"
	if r.CaseName != "" {
		p.Title += ": " + r.CaseName
	}
	p.BannerClass = "banner-" + strings.ReplaceAll(r.Status, " ", "-")
	p.facts()
	p.convergence()
	p.costs()
	p.timing()
	p.progress()
	if err := pageTmpl.Execute(w, p); err != nil {
		return fmt.Errorf("report: writing HTML: %w", err)
	}
	return nil
}

func (p *page) facts() {
	r := p.Report
	add := func(k, v string) {
		if v != "" {
			p.Facts = append(p.Facts, [2]string{k, v})
		}
	}
	add("status", r.Status)
	add("directory", r.Dir)
	add("case", r.CaseName)
	add("case hash", r.CaseHash)
	if r.WorldSize > 0 {
		add("ranks (world size)", fmtInt(r.WorldSize))
	}
	if len(r.Hosts) > 0 {
		h := r.Hosts
		more := ""
		if len(h) > 20 {
			more = fmt.Sprintf(" and %d more", len(h)-20)
			h = h[:20]
		}
		add("hosts", strings.Join(h, ", ")+more)
	} else {
		add("hosts", "unknown")
	}
	if r.Scenarios > 0 {
		add("scenarios", fmt.Sprintf("%s of %s committed", fmtInt(r.Committed), fmtInt(r.Scenarios)))
	}
	if a := r.Analysis; a != nil && len(a.Missing) > 0 {
		m := a.Missing
		more := ""
		if n := r.Scenarios - r.Committed; n > 20 || len(m) > 20 {
			more = fmt.Sprintf(" ... (%s missing in all)", fmtInt(max(n, len(m))))
			m = m[:min(20, len(m))]
		}
		ids := make([]string, len(m))
		for i, s := range m {
			ids[i] = strconv.Itoa(s)
		}
		add("missing scenarios", strings.Join(ids, ", ")+more)
	}
	if r.Merged {
		add("simulation merged", "yes (simulation/_manifest.json)")
	} else {
		add("simulation merged", "no")
	}
	add("dataset_xxh64", r.DatasetXXH64)
	add("training", r.TrainingStatus)
	add("convergence.parquet xxh64", r.ConvergenceXXH64)
	if r.PolicyXXH64 != "" {
		add("policy checkpoint", fmt.Sprintf("iteration %d, %d stages; policy/metadata.json xxh64 %s", r.PolicyIteration, r.PolicyStages, r.PolicyXXH64))
	}
	add("generated", p.GeneratedStamp)
	if a := r.Analysis; a != nil {
		p.AnalysisLines = strings.Split(strings.TrimRight(a.Human(), "\n"), "\n")
		if len(p.AnalysisLines) > 60 {
			n := len(p.AnalysisLines) - 60
			p.AnalysisLines = append(p.AnalysisLines[:60], fmt.Sprintf("... %d more lines (merge-shards report OUT prints them all)", n))
		}
	}
}

func floats(xs []int) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

func (p *page) convergence() {
	c := p.Convergence
	if c == nil || len(c.Iteration) == 0 {
		return
	}
	x := floats(c.Iteration)
	p.ConvCharts = append(p.ConvCharts,
		lineChart{ID: "convergence", Title: "Bounds per iteration", XLabel: "iteration", YLabel: "cost", IntX: true,
			Bands: []bandSeries{{Name: "upper bound 95% CI", Color: palette[1], X: x, Lo: c.UpperLo, Hi: c.UpperHi}},
			Lines: []lineSeries{
				{Name: "lower bound", Color: palette[0], X: x, Y: c.LowerBound},
				{Name: "upper bound (mean)", Color: palette[1], X: x, Y: c.UpperBoundMean, Dash: true},
			}}.svg(),
		lineChart{ID: "gap", Title: "Optimality gap", XLabel: "iteration", YLabel: "gap (%)", IntX: true,
			Lines: []lineSeries{{Name: "gap %", Color: palette[5], X: x, Y: c.GapPercent}}}.svg(),
		lineChart{ID: "cuts", Title: "Active cuts", XLabel: "iteration", YLabel: "cuts", IntX: true,
			Lines: []lineSeries{{Name: "cuts active", Color: palette[2], X: x, Y: c.CutsActive}}}.svg(),
	)
	n := len(c.Iteration)
	// The table lists the last iterations: the chart has them all.
	for i := max(0, n-10); i < n; i++ {
		p.ConvTable = append(p.ConvTable, []string{strconv.Itoa(c.Iteration[i]), fmtNum(c.LowerBound[i]), fmtNum(c.UpperBoundMean[i]),
			fmtNum(c.UpperLo[i]) + " to " + fmtNum(c.UpperHi[i]), fmtNum(c.GapPercent[i]), fmtNum(c.CutsActive[i])})
	}
}

func exact(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (p *page) costs() {
	c := p.Costs
	if c == nil || c.Scenarios == 0 {
		return
	}
	x := floats(c.Stages)
	p.CostCharts = append(p.CostCharts, lineChart{ID: "stage-costs", Title: "Discounted cost per stage across scenarios", XLabel: "stage", YLabel: "cost", IntX: true,
		Bands: []bandSeries{{Name: "p5-p95", Color: palette[0], X: x, Lo: c.P5, Hi: c.P95}},
		Lines: []lineSeries{
			{Name: "mean", Color: palette[0], X: x, Y: c.Mean},
			{Name: "p50", Color: palette[5], X: x, Y: c.P50, Dash: true},
		}}.svg())
	if len(c.HistCounts) > 0 {
		p.CostCharts = append(p.CostCharts, histogramChart("total-cost-histogram", "Total discounted cost per scenario", "total cost", c.HistEdges, c.HistCounts))
	}
	t := c.Total
	p.CostTotal = []costStat{
		{"scenarios", "total-n", fmtInt(t.N), strconv.Itoa(t.N)},
		{"mean", "total-mean", fmtNum(t.Mean), exact(t.Mean)},
		{"std", "total-std", fmtNum(t.Std), exact(t.Std)},
		{"min", "total-min", fmtNum(t.Min), exact(t.Min)},
		{"max", "total-max", fmtNum(t.Max), exact(t.Max)},
	}
	if c.Sampled {
		p.SampleNote = fmt.Sprintf("More values than the bound: quantiles and the histogram come from a uniform sample of %s scenarios; means, std, min and max are exact.", fmtInt(c.SampleSize))
	}
}

func (p *page) timing() {
	t := p.Timing
	if t == nil || len(t.Iterations) == 0 {
		return
	}
	groups := make([]string, len(t.Iterations))
	vals := make([][][]float64, len(t.Iterations))
	for i, it := range t.Iterations {
		groups[i] = strconv.Itoa(it)
		vals[i] = make([][]float64, len(t.Ranks))
		for j := range t.Ranks {
			vals[i][j] = []float64{t.Forward[i][j], t.Backward[i][j], t.Comm[i][j], t.Idle[i][j]}
		}
	}
	p.TimingCharts = append(p.TimingCharts,
		stackedBars{ID: "rank-timing", Title: "Time per rank and iteration (one bar per rank, ranks in order)", XLabel: "iteration", YLabel: "ms",
			Groups: groups, Segments: []string{"forward", "backward", "communication", "idle"}, Values: vals}.svg(),
		lineChart{ID: "imbalance", Title: "Load imbalance: busiest rank / mean (forward+backward+communication)", XLabel: "iteration", YLabel: "max / mean", IntX: true,
			Lines: []lineSeries{{Name: "max/mean", Color: palette[3], X: floats(t.ImbalanceIter), Y: t.Imbalance}}}.svg(),
	)
	if t.TotalIterations > len(t.Iterations) {
		p.TimingNote = fmt.Sprintf("The bars show the latest %d of %d iterations; the imbalance chart shows all.", len(t.Iterations), t.TotalIterations)
	}
}

func (p *page) progress() {
	g := p.Progress
	if g == nil || len(g.Ranks) == 0 {
		return
	}
	var names []string
	var owned, committed []float64
	for _, rk := range g.Ranks {
		names = append(names, "rank "+strconv.Itoa(rk.Rank))
		owned = append(owned, math.Max(float64(rk.Owned), 0))
		committed = append(committed, float64(rk.CommittedAny))
		own := "unknown"
		if rk.Owned >= 0 {
			own = fmtInt(rk.Owned)
		}
		eta := ""
		if rk.ETASeconds != nil {
			eta = (time.Duration(*rk.ETASeconds) * time.Second).String()
		}
		p.ProgressRows = append(p.ProgressRows, []string{strconv.Itoa(rk.Rank), rk.State, own, fmtInt(rk.Committed), fmtInt(rk.CommittedAny), strconv.Itoa(len(rk.Writers)), eta})
		for _, w := range rk.Writers {
			p.WriterRows = append(p.WriterRows, []string{strconv.Itoa(rk.Rank), w.Phase, strconv.Itoa(w.Attempt), w.Host, w.State,
				strings.TrimSpace(w.CloseStatus + " " + w.Termination), fmtInt(w.Committed), strconv.Itoa(w.Iteration), w.Problem})
		}
	}
	if len(p.WriterRows) > 500 {
		p.WriterRows = append(p.WriterRows[:500], []string{"...", fmt.Sprintf("%d more writers", len(p.WriterRows)-500)})
	}
	if slices.ContainsFunc(owned, func(v float64) bool { return v > 0 }) || slices.ContainsFunc(committed, func(v float64) bool { return v > 0 }) {
		p.ProgressChart = progressChart("progress", "Simulation scenarios per rank", names, owned, committed)
	}
}

// The page: CSS inline, no script, system fonts only.
var pageTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:960px;padding:16px 24px;color:#1b1f24;background:#fff;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
.banner{font-weight:700;font-size:1.15em;padding:10px 14px;border-radius:6px;margin:10px 0;border:2px solid}
.banner-partial,.banner-running{background:#fff4d6;border-color:#d4a72c;color:#6b4a00}
.banner-corrupt{background:#ffe3e3;border-color:#cf222e;color:#82071e}
.banner-training-only,.banner-empty,.banner-complete{background:#e8f0fe;border-color:#54aeff;color:#0a3069}
table{border-collapse:collapse;margin:6px 0;font-size:.9em}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.facts th{width:13em}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.9em;word-break:break-all}
.nodata{color:#57606a;font-style:italic;background:#f6f8fa;padding:8px 12px;border-left:4px solid #8c959f}
.note{color:#57606a;font-size:.9em}
svg.chart{max-width:100%;height:auto;display:block;margin:8px 0 16px}
svg .grid{stroke:#eaeef2;stroke-width:1}
svg .axis,svg .tickmark{stroke:#57606a;stroke-width:1}
svg .tick{font-size:11px;fill:#424a53}
svg .alabel{font-size:12px;fill:#24292f}
svg .ctitle{font-size:13px;font-weight:600;fill:#24292f}
svg .legend{font-size:11px;fill:#24292f}
pre{background:#f6f8fa;padding:8px;white-space:pre-wrap;word-break:break-all;font-size:.8em}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{if .Banner}}<div class="banner {{.BannerClass}}" id="status-banner" data-status="{{.Status}}">{{.Banner}}</div>{{else}}<div class="banner banner-complete" id="status-banner" data-status="{{.Status}}">COMPLETE: {{.Committed}} of {{.Scenarios}} scenarios, merged and verified</div>{{end}}
<table class="facts">
{{range .Facts}}<tr><th>{{index . 0}}</th><td class="mono">{{index . 1}}</td></tr>
{{end}}</table>
{{if .Notes}}<h2 id="notes">Notes</h2>
<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}{{if .NotesDropped}}<li>{{.NotesDropped}} more notes not shown</li>{{end}}</ul>{{end}}

<h2 id="convergence">Convergence</h2>
{{if .ConvCharts}}<p class="note">From {{.Convergence.Source}}. The band is the upper bound's 95% confidence interval: mean &plusmn; 1.96 &middot; std / &radic;(forward passes).</p>
{{range .ConvCharts}}{{.}}
{{end}}<table><tr><th>iteration</th><th>lower bound</th><th>upper bound (mean)</th><th>95% CI</th><th>gap %</th><th>cuts active</th></tr>
{{range .ConvTable}}<tr>{{range .}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</table>
{{else}}<p class="nodata" data-nodata="convergence">{{if .Convergence}}{{.Convergence.Reason}}{{else}}no training outputs{{end}}</p>{{end}}

<h2 id="costs">Simulated costs</h2>
{{if .CostCharts}}<p class="note">Discounted cost (immediate_cost &times; discount_factor, summed over the blocks of a stage) of {{.Costs.Scenarios}} scenarios, from {{.Costs.Source}}.</p>
<table class="total-cost"><tr>{{range .CostTotal}}<th>{{.Name}}</th>{{end}}</tr><tr>{{range .CostTotal}}<td class="num" data-stat="{{.Key}}" data-value="{{.Exact}}">{{.Shown}}</td>{{end}}</tr></table>
{{if .SampleNote}}<p class="note">{{.SampleNote}}</p>{{end}}
{{range .CostCharts}}{{.}}
{{end}}{{else}}<p class="nodata" data-nodata="costs">{{if .Costs}}{{.Costs.Reason}}{{else}}no simulation outputs{{end}}</p>{{end}}

<h2 id="timing">Time per rank</h2>
{{if .TimingCharts}}<p class="note">From {{.Timing.Source}}.{{if .TimingNote}} {{.TimingNote}}{{end}}</p>
{{range .TimingCharts}}{{.}}
{{end}}{{else}}<p class="nodata" data-nodata="timing">{{if .Timing}}{{.Timing.Reason}}{{else}}no timing outputs{{end}}</p>{{end}}

<h2 id="progress">Progress per rank and attempt</h2>
{{if .ProgressRows}}{{if .ProgressChart}}{{.ProgressChart}}{{else}}<p class="note" data-nodata-chart="progress">No simulation writer yet: no scenarios to chart.</p>{{end}}
<table><tr><th>rank</th><th>state</th><th>owned</th><th>committed (own writers)</th><th>committed (any writer)</th><th>writers</th><th>ETA</th></tr>
{{range .ProgressRows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<h3>Writers</h3>
<table><tr><th>rank</th><th>phase</th><th>attempt</th><th>host</th><th>state</th><th>close</th><th>committed</th><th>iteration</th><th>problem</th></tr>
{{range .WriterRows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{if .Progress.Reruns}}<h3>Reruns</h3><ul>{{range .Progress.Reruns}}<li>{{.}}</li>{{end}}</ul>{{else}}<p class="note">No reruns: every writer is a first attempt.</p>{{end}}
{{else}}<p class="nodata" data-nodata="progress">{{if .Progress}}{{.Progress.Reason}}{{else}}no journals{{end}}</p>{{end}}
{{if .AnalysisLines}}<h2 id="analysis">What a merge would find</h2>
<pre>{{range .AnalysisLines}}{{.}}
{{end}}</pre>{{end}}
<p class="note">Generated by hydroshard merge-shards report at {{.GeneratedStamp}}. This file is self-contained: no script, nothing fetched.</p>
</body>
</html>
`))
