package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// scaleResult is one scale's measured rounds.
type scaleResult struct {
	scale     string // production, xl
	prefix    string // JSON key prefix: "" for production (the main figures), "xl_"
	rows      int    // hydros rows per scenario
	scenarios int    // scenarios per round
	inHydros  int64  // hydros input bytes per scenario
	inFull    int64  // all tables' input bytes per scenario
	results   []*result
}

func (s *scaleResult) get(key string) *result {
	for _, r := range s.results {
		if r.key == key {
			return r
		}
	}
	return nil
}

// rssResult is the memory measurement of real ranks.
type rssResult struct {
	caseName string
	fs       string // where the children wrote: disk or tmpfs
	counts   [2]int
	kib      [2]int64
	took     [2]time.Duration
}

func (r *rssResult) mb(i int) float64 { return float64(r.kib[i]) / 1024 }

// report is everything the run prints and writes.
type report struct {
	cfg         config
	scales      []*scaleResult
	rss         *rssResult
	analyst     *analystResult
	mergeScale  *mergeScaleResult
	policy      *policyScaleResult
	capi        *capiResult
	duckVersion string
	duckMissing string
	// parquetGoVersion is parquet-go's version in the contestant's module
	parquetGoVersion string
	elapsed          time.Duration
}

// target is one goal of the writer, checked as a ratio of two figures
// measured in the same run (absolute MB/s drift between runs on noisy
// machines; ratios of interleaved measurements do not).
type target struct {
	name    string  // as printed
	key     string  // JSON key, before the scale prefix
	value   float64 // ratio of the medians
	lo, hi  float64 // range of the per-round ratios; 0 when not per round
	bound   float64
	atLeast bool
}

func (t target) pass() bool {
	if t.atLeast {
		return t.value >= t.bound
	}
	return t.value <= t.bound
}

func (t target) cond() string {
	if t.atLeast {
		return ">= " + strconv.FormatFloat(t.bound, 'g', -1, 64)
	}
	return "<= " + strconv.FormatFloat(t.bound, 'g', -1, 64)
}

// speedTarget compares the medians of two contestants; the per-round range
// pairs the two samples of each round.
func speedTarget(s *scaleResult, name, key, num, den string, bound float64) (target, bool) {
	a, b := s.get(num), s.get(den)
	if a == nil || b == nil {
		return target{}, false
	}
	t := target{name: name, key: key, value: a.median() / b.median(), bound: bound, atLeast: true}
	for i := range a.mbps {
		r := a.mbps[i] / b.mbps[i]
		if i == 0 || r < t.lo {
			t.lo = r
		}
		if i == 0 || r > t.hi {
			t.hi = r
		}
	}
	return t, true
}

// costTarget is the time of contestant part over that of whole, which
// process the same input (a share of whole's time when whole includes
// part); the per-round range pairs the samples of each round.
func costTarget(s *scaleResult, name, key, part, whole string, bound float64) (target, bool) {
	a, b := s.get(part), s.get(whole)
	if a == nil || b == nil {
		return target{}, false
	}
	t := target{name: name, key: key, value: b.median() / a.median(), bound: bound}
	for i := range a.mbps {
		r := b.mbps[i] / a.mbps[i]
		if i == 0 || r < t.lo {
			t.lo = r
		}
		if i == 0 || r > t.hi {
			t.hi = r
		}
	}
	return t, true
}

func (rp *report) targets(s *scaleResult) []target {
	w := rp.cfg.workers
	var ts []target
	add := func(t target, ok bool) {
		if ok {
			ts = append(ts, t)
		}
	}
	add(speedTarget(s, "writer_1w / raw_zstd", "ratio_writer_1w_raw_zstd", "writer_1w", "raw_zstd", 0.75))
	add(speedTarget(s, "writer_1w_overlap / raw_zstd", "ratio_writer_1w_overlap_raw_zstd", "writer_1w_overlap", "raw_zstd", 0.75))
	add(speedTarget(s, "writer_1w / parquet_go", "ratio_writer_1w_parquet_go", "writer_1w", "parquet_go", 1.3))
	add(speedTarget(s, "writer_1w / duckdb_1t", "ratio_writer_1w_duckdb_1t", "writer_1w", "duckdb_1t", 1.3))
	// Against the 1-worker figure (the definition), and against one
	// worker in the same mode (fsync overlapped), which already keeps part
	// of the second core busy with write-back and fsync.
	add(speedTarget(s, fmt.Sprintf("writer_%dw / writer_1w", w), "ratio_writer_2w_writer_1w", fmt.Sprintf("writer_%dw", w), "writer_1w", 1.6))
	add(speedTarget(s, fmt.Sprintf("writer_%dw / writer_1w_overlap", w), "ratio_writer_2w_writer_1w_overlap", fmt.Sprintf("writer_%dw", w), "writer_1w_overlap", 1.6))
	// The value checks run in the caller's goroutine on every scenario:
	// their time over the rank path's, all ten tables, with W workers (the
	// faster path, so the larger share) and with one.
	add(costTarget(s, fmt.Sprintf("value_checks / writer_full_%dw (time)", w), "value_check_overhead", "value_checks", fmt.Sprintf("writer_full_%dw", w), 0.05))
	add(costTarget(s, "value_checks / writer_full_1w (time)", "value_check_overhead_1w", "value_checks", "writer_full_1w", 0.05))
	if a, b := s.get("writer_1w"), s.get("duckdb_1t"); a != nil && b != nil {
		ts = append(ts, target{name: "bytes_writer / bytes_duckdb", key: "ratio_bytes_writer_duckdb", value: float64(a.bytes) / float64(b.bytes), bound: 1})
	}
	return ts
}

func (rp *report) rssTarget() (target, bool) {
	if rp.rss == nil {
		return target{}, false
	}
	return target{name: fmt.Sprintf("rss_%d / rss_%d", rp.rss.counts[1], rp.rss.counts[0]), key: "ratio_rss_2000_200",
		value: float64(rp.rss.kib[1]) / float64(rp.rss.kib[0]), bound: 1.1}, true
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func passWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// sectionList is the sections that ran, in their order.
func (rp *report) sectionList() []string {
	return slices.DeleteFunc(slices.Clone(allSections), func(s string) bool { return !rp.cfg.sections[s] })
}

// print writes the human-readable report.
func (rp *report) print(w io.Writer) {
	fmt.Fprintf(w, "shardbench: %s, GOMAXPROCS %d, %d workers, %d measured rounds (+%d warm-up), interleaved; quick=%v; sections %s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), rp.cfg.workers, rp.cfg.reps, rp.cfg.warmup, rp.cfg.quick, strings.Join(rp.sectionList(), ","))
	if rp.parquetGoVersion != "" {
		fmt.Fprintf(w, "parquet-go %s (module %s, run as a child process)\n", rp.parquetGoVersion, parquetGoDir)
	}
	if rp.duckVersion != "" {
		fmt.Fprintf(w, "DuckDB %s (@duckdb/node-api); DuckDB does not fsync its files, the Go contestants do: this favours DuckDB.\n", rp.duckVersion)
	} else if rp.cfg.sections["writer"] {
		fmt.Fprintf(w, "DuckDB: NOT MEASURED (%s)\n", rp.duckMissing)
	}
	for _, s := range rp.scales {
		fmt.Fprintf(w, "\n== %s: hydros %s rows, %.2f MB of column bytes per scenario file; %d scenarios (files) per round\n",
			s.scale, commas(int64(s.rows)), float64(s.inHydros)/1e6, s.scenarios)
		fmt.Fprintf(w, "   MB/s of uncompressed input; the full rank rows count all ten tables (%.2f MB per scenario)\n", float64(s.inFull)/1e6)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "contestant\tmedian MB/s\trange (min-max)\tbytes/scenario\t")
		for _, r := range s.results {
			lo, hi := r.span()
			b := "-" // writes nothing (the value checks)
			if r.bytes > 0 {
				b = commas(r.bytes)
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f-%.1f\t%s\t\n", r.label, r.median(), lo, hi, b)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\n== targets (ratios of the medians; per-round: the ratio within each round)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scale\tratio\tvalue\tper-round\ttarget\t")
	for _, s := range rp.scales {
		for _, t := range rp.targets(s) {
			pr := "-"
			if t.hi > 0 {
				pr = fmt.Sprintf("%.2f-%.2f", t.lo, t.hi)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\t%s\t%s\n", s.scale, t.name, t.value, pr, t.cond(), passWord(t.pass()))
		}
	}
	if t, ok := rp.rssTarget(); ok {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t-\t%s\t%s\n", rp.rss.caseName, t.name, t.value, t.cond(), passWord(t.pass()))
	}
	for _, t := range rp.analystTargets() {
		pr := "-"
		if t.hi > 0 {
			pr = fmt.Sprintf("%.2f-%.2f", t.lo, t.hi)
		}
		fmt.Fprintf(tw, "analyst\t%s\t%.3f\t%s\t%s\t%s\n", t.name, t.value, pr, t.cond(), passWord(t.pass()))
	}
	if rp.mergeScale != nil {
		for _, t := range rp.mergeScale.targets() {
			fmt.Fprintf(tw, "merge\t%s\t%.3f\t-\t%s\t%s\n", t.name, t.value, t.cond(), passWord(t.pass()))
		}
	}
	tw.Flush()
	if rp.rss != nil {
		fmt.Fprintf(w, "\npeak RSS of a rank (simrank, case %s, output on %s): %d scenarios %.1f MB (%.1fs), %d scenarios %.1f MB (%.1fs)\n",
			rp.rss.caseName, rp.rss.fs, rp.rss.counts[0], rp.rss.mb(0), rp.rss.took[0].Seconds(), rp.rss.counts[1], rp.rss.mb(1), rp.rss.took[1].Seconds())
	}
	if rp.analyst != nil {
		rp.analyst.print(w)
	}
	if rp.mergeScale != nil {
		rp.mergeScale.print(w)
	}
	if rp.policy != nil {
		rp.policy.print(w)
	}
	if rp.capi != nil {
		rp.capi.print(w)
	}
	fmt.Fprintf(w, "\ntotal %.1fs. A MISS is a finding, not a failure: the exit status is 0.\n", rp.elapsed.Seconds())
}

// doc builds the JSON document: medians under flat keys (production
// unprefixed, XL under xl_), ranges and targets alongside.
func (rp *report) doc() map[string]any {
	w := rp.cfg.workers
	m := map[string]any{
		"quick":      rp.cfg.quick,
		"workers":    w,
		"reps":       rp.cfg.reps,
		"go_version": runtime.Version(),
		"gomaxprocs": runtime.GOMAXPROCS(0),
		"note":       "MB/s of uncompressed input (column bytes); DuckDB does not fsync its files, the Go contestants do",
	}
	if rp.parquetGoVersion != "" {
		m["parquet_go_version"] = rp.parquetGoVersion
	}
	if rp.duckVersion != "" {
		m["duckdb_version"] = rp.duckVersion
	} else if rp.cfg.sections["writer"] {
		m["duckdb_missing"] = rp.duckMissing
	}
	ranges := map[string][2]float64{}
	var targets []map[string]any
	addTarget := func(scale, prefix string, t target) {
		m[prefix+t.key] = t.value
		targets = append(targets, map[string]any{"scale": scale, "name": t.name, "key": prefix + t.key,
			"value": t.value, "target": t.cond(), "pass": t.pass()})
	}
	for _, s := range rp.scales {
		p := s.prefix
		m[p+"scale"] = s.scale
		m[p+"rows"] = s.rows
		m[p+"scenarios_per_round"] = s.scenarios
		m[p+"input_bytes"] = s.inHydros
		m[p+"input_bytes_full"] = s.inFull
		for _, r := range s.results {
			m[p+r.key+"_mbps"] = r.median()
			lo, hi := r.span()
			ranges[p+r.key+"_mbps"] = [2]float64{lo, hi}
		}
		if w != 2 {
			if r := s.get(fmt.Sprintf("writer_%dw", w)); r != nil {
				m[p+"writer_2w_mbps"] = r.median() // the brief's name for "W workers"
			}
		}
		for key, from := range map[string]string{"bytes_writer": "writer_1w", "bytes_duckdb": "duckdb_1t",
			"bytes_parquet_go": "parquet_go", "bytes_raw_zstd": "raw_zstd", "bytes_writer_full": "writer_full_1w"} {
			if r := s.get(from); r != nil {
				m[p+key] = r.bytes
			}
		}
		for _, t := range rp.targets(s) {
			addTarget(s.scale, p, t)
		}
	}
	if rp.rss != nil {
		m["rss_case"] = rp.rss.caseName
		m["rss_out_fs"] = rp.rss.fs
		m["rss_scenarios"] = rp.rss.counts
		m["rss_200_mb"] = rp.rss.mb(0)
		m["rss_2000_mb"] = rp.rss.mb(1)
		if t, ok := rp.rssTarget(); ok {
			addTarget(rp.rss.caseName, "", t)
		}
	}
	if a := rp.analyst; a != nil {
		a.doc(m, ranges)
		for _, t := range rp.analystTargets() {
			addTarget("analyst", "", t)
		}
	}
	if ms := rp.mergeScale; ms != nil {
		ms.doc(m)
		for _, t := range ms.targets() {
			addTarget("merge", "", t)
		}
	}
	if p := rp.policy; p != nil {
		p.addJSON(m)
		targets = append(targets, p.targetDocs()...)
	}
	if c := rp.capi; c != nil {
		c.addJSON(m)
		targets = append(targets, c.targetDocs()...)
	}
	m["sections"] = rp.sectionList()
	m["ranges"] = ranges
	m["targets"] = targets
	m["elapsed_s"] = rp.elapsed.Seconds()
	return m
}

func (rp *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rp.doc(), "", "  ")
	if err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
