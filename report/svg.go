package report

// Inline SVG charts: line charts with bands, stacked and plain bar charts.
// Hand-written rather than a plotting library's output so that the page
// stays small, needs no script or font, and every element carries the
// classes the tests (and a reader of the DOM) look for: each chart is an
// <svg data-chart="NAME">, its drawn data are <path class="series">,
// <path class="band"> and <rect class="bar"> with numeric coordinates.

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Chart geometry, in SVG user units (the page scales the SVG to its width).
const (
	chartW    = 900
	chartH    = 320
	marginL   = 86
	marginR   = 20
	marginT   = 34
	marginB   = 52
	plotW     = chartW - marginL - marginR
	plotH     = chartH - marginT - marginB
	maxMarker = 60 // draw point markers on series up to this many points
)

// palette: distinguishable for common colour-vision deficiencies (Okabe-Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

type lineSeries struct {
	Name  string
	Color string
	X, Y  []float64
	Dash  bool
}

type bandSeries struct {
	Name   string
	Color  string
	X      []float64
	Lo, Hi []float64
}

type lineChart struct {
	ID, Title, XLabel, YLabel string
	Lines                     []lineSeries
	Bands                     []bandSeries
	// IntX: the x axis counts (iterations, stages): integer ticks.
	IntX bool
}

// scale maps a data interval onto a pixel interval.
type scale struct{ d0, d1, p0, p1 float64 }

func (s scale) at(v float64) float64 {
	if s.d1 == s.d0 {
		return (s.p0 + s.p1) / 2
	}
	return s.p0 + (v-s.d0)/(s.d1-s.d0)*(s.p1-s.p0)
}

// niceTicks returns the domain widened to round steps and the ticks in it.
func niceTicks(lo, hi float64, n int, integer bool) (float64, float64, []float64) {
	if math.IsInf(lo, 0) || math.IsNaN(lo) || math.IsInf(hi, 0) || math.IsNaN(hi) {
		lo, hi = 0, 1
	}
	if !(hi > lo) {
		d := math.Max(math.Abs(lo)*0.05, 1)
		if integer {
			d = 1
		}
		lo, hi = lo-d, hi+d
	}
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if span/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	if integer && step < 1 {
		step = 1
	}
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	var ticks []float64
	for i := 0; ; i++ {
		v := lo + float64(i)*step
		if v > hi+step*1e-9 || i > 100 {
			break
		}
		ticks = append(ticks, v)
	}
	return lo, hi, ticks
}

// fmtNum formats a tick or a value compactly (4 significant digits, with
// k/M/G/T for large magnitudes).
func fmtNum(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	a := math.Abs(v)
	for _, u := range []struct {
		f float64
		s string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= u.f {
			return strconv.FormatFloat(v/u.f, 'g', 4, 64) + u.s
		}
	}
	if a != 0 && a < 1e-3 {
		return strconv.FormatFloat(v, 'e', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// svgOpen writes the opening tag, the title and the axes' frame.
func svgOpen(sb *strings.Builder, id, title string) {
	fmt.Fprintf(sb, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		html.EscapeString(id), chartW, chartH, chartW, chartH, html.EscapeString(title))
	fmt.Fprintf(sb, `<title>%s</title>`, html.EscapeString(title))
	fmt.Fprintf(sb, `<text class="ctitle" x="%d" y="18">%s</text>`, marginL, html.EscapeString(title))
}

// axes draws both axes with their ticks, grid lines and labels.
func axes(sb *strings.Builder, xs, ys scale, xt, yt []float64, xlabel, ylabel string, xfmt func(float64) string) {
	for _, t := range yt {
		y := ys.at(t)
		fmt.Fprintf(sb, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, marginL, f2(y), marginL+plotW, f2(y))
		fmt.Fprintf(sb, `<text class="tick" x="%d" y="%s" text-anchor="end">%s</text>`, marginL-6, f2(y+4), html.EscapeString(fmtNum(t)))
	}
	for _, t := range xt {
		x := xs.at(t)
		fmt.Fprintf(sb, `<line class="tickmark" x1="%s" y1="%d" x2="%s" y2="%d"/>`, f2(x), marginT+plotH, f2(x), marginT+plotH+5)
		fmt.Fprintf(sb, `<text class="tick" x="%s" y="%d" text-anchor="middle">%s</text>`, f2(x), marginT+plotH+18, html.EscapeString(xfmt(t)))
	}
	fmt.Fprintf(sb, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, marginL, marginT+plotH, marginL+plotW, marginT+plotH)
	fmt.Fprintf(sb, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, marginL, marginT, marginL, marginT+plotH)
	fmt.Fprintf(sb, `<text class="alabel" x="%d" y="%d" text-anchor="middle">%s</text>`, marginL+plotW/2, chartH-8, html.EscapeString(xlabel))
	fmt.Fprintf(sb, `<text class="alabel" transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`, marginT+plotH/2, html.EscapeString(ylabel))
}

type legendItem struct {
	name, color     string
	band, dash, box bool
}

// legend draws the items in a row at the top right.
func legend(sb *strings.Builder, items []legendItem) {
	x := float64(chartW - marginR)
	// right-aligned: lay out from the right, about 7 units per character
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		w := float64(len(it.name))*6.6 + 30
		x -= w
		c := html.EscapeString(it.color)
		switch {
		case it.box:
			fmt.Fprintf(sb, `<rect class="legend-key" x="%s" y="9" width="18" height="10" fill="%s"/>`, f2(x), c)
		case it.band:
			fmt.Fprintf(sb, `<rect class="legend-key" x="%s" y="9" width="18" height="10" fill="%s" fill-opacity="0.25"/>`, f2(x), c)
		default:
			dash := ""
			if it.dash {
				dash = ` stroke-dasharray="4 3"`
			}
			fmt.Fprintf(sb, `<line class="legend-key" x1="%s" y1="14" x2="%s" y2="14" stroke="%s" stroke-width="2.5"%s/>`, f2(x), f2(x+18), c, dash)
		}
		fmt.Fprintf(sb, `<text class="legend" x="%s" y="18">%s</text>`, f2(x+22), html.EscapeString(it.name))
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// svg renders the chart.
func (c lineChart) svg() template.HTML {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	see := func(x, y float64) {
		if finite(x) && finite(y) {
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	for _, l := range c.Lines {
		for i := range l.X {
			see(l.X[i], l.Y[i])
		}
	}
	for _, b := range c.Bands {
		for i := range b.X {
			see(b.X[i], b.Lo[i])
			see(b.X[i], b.Hi[i])
		}
	}
	x0, x1, xt := niceTicks(xmin, xmax, 10, c.IntX)
	if c.IntX && finite(xmin) {
		x0, x1 = xmin, xmax // iterations start where the data does
		if x1 == x0 {
			x0, x1 = x0-1, x1+1
		}
		xt = xt[:0]
		_, _, all := niceTicks(x0, x1, 10, true)
		for _, t := range all {
			if t >= x0 && t <= x1 {
				xt = append(xt, t)
			}
		}
	}
	y0, y1, yt := niceTicks(ymin, ymax, 6, false)
	xs := scale{x0, x1, marginL, marginL + plotW}
	ys := scale{y0, y1, marginT + plotH, marginT}
	var sb strings.Builder
	svgOpen(&sb, c.ID, c.Title)
	xfmt := fmtNum
	if c.IntX {
		xfmt = func(v float64) string { return strconv.Itoa(int(math.Round(v))) }
	}
	axes(&sb, xs, ys, xt, yt, c.XLabel, c.YLabel, xfmt)
	var items []legendItem
	for _, b := range c.Bands {
		var up, down []string
		for i := range b.X {
			if finite(b.X[i]) && finite(b.Lo[i]) && finite(b.Hi[i]) {
				up = append(up, f2(xs.at(b.X[i]))+" "+f2(ys.at(b.Hi[i])))
				down = append(down, f2(xs.at(b.X[i]))+" "+f2(ys.at(b.Lo[i])))
			}
		}
		if len(up) == 0 {
			continue
		}
		for i, j := 0, len(down)-1; i < j; i, j = i+1, j-1 {
			down[i], down[j] = down[j], down[i]
		}
		fmt.Fprintf(&sb, `<path class="band" d="M%s L%s Z" fill="%s" fill-opacity="0.22" stroke="none"/>`,
			strings.Join(up, " L"), strings.Join(down, " L"), html.EscapeString(b.Color))
		items = append(items, legendItem{name: b.Name, color: b.Color, band: true})
	}
	for _, l := range c.Lines {
		var d strings.Builder
		pen := false
		var pts [][2]float64
		for i := range l.X {
			if !finite(l.X[i]) || !finite(l.Y[i]) {
				pen = false // a gap (a null gap_percent) breaks the line
				continue
			}
			x, y := xs.at(l.X[i]), ys.at(l.Y[i])
			if pen {
				d.WriteString(" L")
			} else {
				d.WriteString(" M")
			}
			d.WriteString(f2(x) + " " + f2(y))
			pen = true
			pts = append(pts, [2]float64{x, y})
		}
		if len(pts) == 0 {
			continue
		}
		dash := ""
		if l.Dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&sb, `<path class="series" d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.TrimSpace(d.String()), html.EscapeString(l.Color), dash)
		if len(pts) <= maxMarker {
			for _, p := range pts {
				fmt.Fprintf(&sb, `<circle class="marker" cx="%s" cy="%s" r="2.5" fill="%s"/>`, f2(p[0]), f2(p[1]), html.EscapeString(l.Color))
			}
		}
		items = append(items, legendItem{name: l.Name, color: l.Color, dash: l.Dash})
	}
	legend(&sb, items)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // built here; every text from disk is escaped above
}

// stackedBars is one bar per (group, member): groups are iterations,
// members ranks, segments the phases.
type stackedBars struct {
	ID, Title, XLabel, YLabel string
	Groups                    []string      // one label per group
	Segments                  []string      // segment names (legend)
	Values                    [][][]float64 // [group][member][segment]; NaN: no bar
}

func (c stackedBars) svg() template.HTML {
	ymax := 0.0
	members := 0
	for _, g := range c.Values {
		members = max(members, len(g))
		for _, m := range g {
			s := 0.0
			for _, v := range m {
				if finite(v) {
					s += v
				}
			}
			ymax = math.Max(ymax, s)
		}
	}
	y0, y1, yt := niceTicks(0, ymax, 6, false)
	ys := scale{y0, y1, marginT + plotH, marginT}
	var sb strings.Builder
	svgOpen(&sb, c.ID, c.Title)
	slot := float64(plotW) / float64(max(1, len(c.Groups)))
	bw := slot / float64(members+1)
	every := max(1, int(math.Ceil(float64(len(c.Groups))/20)))
	var xt []float64
	var labels []string
	for gi := range c.Groups {
		if gi%every == 0 {
			xt = append(xt, float64(gi))
			labels = append(labels, c.Groups[gi])
		}
	}
	xs := scale{-0.5, float64(len(c.Groups)) - 0.5, marginL, marginL + plotW}
	axes(&sb, xs, ys, xt, yt, c.XLabel, c.YLabel, func(v float64) string {
		for i, t := range xt {
			if t == v {
				return labels[i]
			}
		}
		return ""
	})
	for gi, g := range c.Values {
		for mi, m := range g {
			x := float64(marginL) + slot*float64(gi) + bw*(float64(mi)+0.5) + bw*0.06
			base := 0.0
			for si, v := range m {
				if !finite(v) || v <= 0 {
					continue
				}
				yTop, yBot := ys.at(base+v), ys.at(base)
				fmt.Fprintf(&sb, `<rect class="bar" data-seg="%d" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s, member %d: %s</title></rect>`,
					si, f2(x), f2(yTop), f2(math.Max(bw*0.88, 0.5)), f2(math.Max(yBot-yTop, 0.3)), palette[si%len(palette)],
					html.EscapeString(c.Groups[gi]), html.EscapeString(c.Segments[si]), mi, html.EscapeString(fmtNum(v)))
				base += v
			}
		}
	}
	var items []legendItem
	for si, s := range c.Segments {
		items = append(items, legendItem{name: s, color: palette[si%len(palette)], box: true})
	}
	legend(&sb, items)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // built here; text escaped
}

// histogramChart draws counts over the bins edges.
func histogramChart(id, title, xlabel string, edges []float64, counts []int) template.HTML {
	maxc := 0
	for _, c := range counts {
		maxc = max(maxc, c)
	}
	x0, x1, xt := niceTicks(edges[0], edges[len(edges)-1], 8, false)
	y0, y1, yt := niceTicks(0, float64(maxc), 5, true)
	xs := scale{x0, x1, marginL, marginL + plotW}
	ys := scale{y0, y1, marginT + plotH, marginT}
	var sb strings.Builder
	svgOpen(&sb, id, title)
	axes(&sb, xs, ys, xt, yt, xlabel, "scenarios", fmtNum)
	for i, c := range counts {
		if c == 0 {
			continue
		}
		xa, xb := xs.at(edges[i]), xs.at(edges[i+1])
		fmt.Fprintf(&sb, `<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s" stroke="#fff" stroke-width="0.5"><title>%s to %s: %d</title></rect>`,
			f2(xa), f2(ys.at(float64(c))), f2(math.Max(xb-xa, 0.5)), f2(ys.at(0)-ys.at(float64(c))), palette[0],
			html.EscapeString(fmtNum(edges[i])), html.EscapeString(fmtNum(edges[i+1])), c)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // built here; text escaped
}

// progressChart draws, per rank, owned scenarios (light) and committed
// ones (dark) as horizontal bars.
func progressChart(id, title string, ranks []string, owned, committed []float64) template.HTML {
	maxv := 1.0
	for i := range owned {
		maxv = math.Max(maxv, math.Max(owned[i], committed[i]))
	}
	h := max(chartH, marginT+marginB+18*len(ranks))
	x0, x1, xt := niceTicks(0, maxv, 8, true)
	ph := float64(h - marginT - marginB)
	xs := scale{x0, x1, marginL, marginL + plotW}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		html.EscapeString(id), chartW, h, chartW, h, html.EscapeString(title))
	fmt.Fprintf(&sb, `<title>%s</title><text class="ctitle" x="%d" y="18">%s</text>`, html.EscapeString(title), marginL, html.EscapeString(title))
	row := ph / float64(max(1, len(ranks)))
	for _, t := range xt {
		x := xs.at(t)
		fmt.Fprintf(&sb, `<line class="grid" x1="%s" y1="%d" x2="%s" y2="%s"/>`, f2(x), marginT, f2(x), f2(float64(marginT)+ph))
		fmt.Fprintf(&sb, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`, f2(x), f2(float64(marginT)+ph+18), html.EscapeString(fmtNum(t)))
	}
	for i, r := range ranks {
		y := float64(marginT) + row*float64(i)
		bh := math.Max(row*0.7, 1)
		fmt.Fprintf(&sb, `<text class="tick" x="%d" y="%s" text-anchor="end">%s</text>`, marginL-6, f2(y+bh/2+4), html.EscapeString(r))
		if owned[i] > 0 {
			fmt.Fprintf(&sb, `<rect class="bar owned" x="%d" y="%s" width="%s" height="%s" fill="#cfd8e3"><title>%s: owns %s</title></rect>`,
				marginL, f2(y), f2(xs.at(owned[i])-marginL), f2(bh), html.EscapeString(r), html.EscapeString(fmtNum(owned[i])))
		}
		if committed[i] > 0 {
			fmt.Fprintf(&sb, `<rect class="bar committed" x="%d" y="%s" width="%s" height="%s" fill="%s"><title>%s: committed %s</title></rect>`,
				marginL, f2(y+bh*0.2), f2(xs.at(committed[i])-marginL), f2(bh*0.6), palette[2], html.EscapeString(r), html.EscapeString(fmtNum(committed[i])))
		}
	}
	fmt.Fprintf(&sb, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%s"/>`, marginL, marginT, marginL, f2(float64(marginT)+ph))
	fmt.Fprintf(&sb, `<text class="alabel" x="%d" y="%d" text-anchor="middle">scenarios</text>`, marginL+plotW/2, h-8)
	sb.WriteString(`<rect class="legend-key" x="560" y="9" width="18" height="10" fill="#cfd8e3"/><text class="legend" x="582" y="18">owned</text>`)
	fmt.Fprintf(&sb, `<rect class="legend-key" x="650" y="9" width="18" height="10" fill="%s"/><text class="legend" x="672" y="18">committed (any attempt)</text>`, palette[2])
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // built here; text escaped
}
