package main

// The journal merge's scaling (issue 17, item 2): merge.Run over
// synthetic, protocol-exact runs (internal/scalegen: 256 journals, the
// tiny case's ten tables, files already in place) of growing size, a
// first merge and a re-merge of each. What is timed is the merge alone:
// read and validate every journal, one walk of simulation/ that size-checks
// every committed file and finds every unclaimed one, write the index and
// the manifests. Peak heap is sampled in process.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hydroshard/hydroshard/internal/scalegen"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
)

// The merge scaling section's shape: partition files per size (scenarios
// x the tiny case's 10 tables), written by mergeScaleJournals ranks.
var (
	mergeScaleFull  = []int{100_000, 300_000, 1_000_000}
	mergeScaleQuick = []int{20_000, 60_000}
)

const mergeScaleJournals = 256

// Targets of the merge scaling section (issue 17): time per file flat
// within 1.5x from the smallest size to the largest, a million files
// merged within a minute on the project's 2-core machine, peak heap within
// 1 GiB.
const (
	mergePerFileBound = 1.5
	merge1MBound      = 60.0 // seconds
	mergeHeapBound    = 1024 // MiB
)

// mergeScalePoint is one size's figures.
type mergeScalePoint struct {
	files     int
	journals  int
	bytes     int64         // of the data files
	generate  time.Duration // the generator, not timed as part of anything
	first     mergeTiming   // a run never merged
	remerge   mergeTiming   // the same run again: nothing to rewrite
	generated string        // label of the size: 100k, 1m
}

// mergeTiming is one merge's wall time, CPU time (user+system of the
// whole process: the merge runs alone meanwhile) and peak heap.
type mergeTiming struct {
	wall     time.Duration
	cpu      time.Duration
	peakHeap uint64 // bytes: highest /memory/classes/heap/objects:bytes sampled every 2 ms
	baseHeap uint64 // the same, after a GC, before the merge
	written  int    // outputs the merge (re)wrote
}

// mergeScaleResult is the section's result.
type mergeScaleResult struct {
	points []*mergeScalePoint
	// fs is where the trees were: "disk" (the default) or "tmpfs" (the
	// caller's choice; set by it, printed and in the JSON).
	fs string
}

// mergeSizeLabel names a file count in JSON keys: 20000 -> 20k, 1000000 -> 1m.
func mergeSizeLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "m"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// mergeScaleShape is the section's sizes (partition files) and journal
// count: the quick ones (20k and 60k files: seconds, for CI) or the full
// ones (100k, 300k, 1M: several minutes, most of it generating and
// removing the trees; about 8 GB of scratch space at 1M, one tree at a
// time).
func mergeScaleShape(quick bool) (sizes []int, journals int) {
	if quick {
		return mergeScaleQuick, mergeScaleJournals
	}
	return mergeScaleFull, mergeScaleJournals
}

// measureMergeScale measures a first merge and a re-merge at each size,
// generating each tree under scratch just before and removing it just
// after. root is the repository (for the tiny case).
func measureMergeScale(ctx context.Context, sizes []int, journals int, root, scratch string, progress io.Writer) (*mergeScaleResult, error) {
	c, err := manifest.LoadCase(filepath.Join(root, "testdata", "cases", "tiny"))
	if err != nil {
		return nil, err
	}
	res := &mergeScaleResult{}
	for _, n := range sizes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := mergeScaleOne(ctx, c, n, journals, scratch, progress)
		if err != nil {
			return nil, err
		}
		res.points = append(res.points, p)
	}
	return res, nil
}

func mergeScaleOne(ctx context.Context, c *manifest.Case, files, journals int, scratch string, progress io.Writer) (*mergeScalePoint, error) {
	out, err := os.MkdirTemp(scratch, "mergescale-")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "shardbench: merge scaling: generating %s files (%d journals)\n", commas(int64(files)), journals)
	t0 := time.Now()
	run, err := scalegen.Generate(out, c, journals, files)
	if err != nil {
		os.RemoveAll(out)
		return nil, err
	}
	defer func() {
		t0 := time.Now()
		if err := run.Remove(); err != nil {
			fmt.Fprintf(progress, "shardbench: merge scaling: removing %s: %v\n", out, err)
		}
		fmt.Fprintf(progress, "shardbench: merge scaling: removed the %s-file tree in %.1fs\n", commas(int64(files)), time.Since(t0).Seconds())
	}()
	p := &mergeScalePoint{files: files, journals: journals, bytes: run.Bytes, generate: time.Since(t0), generated: mergeSizeLabel(files)}
	// The generator's dirty pages are flushed before the merge, so that
	// it is not measured against their writeback (a real merge runs long
	// after the ranks wrote). The page cache stays warm, as it is right
	// after a run.
	syscall.Sync()
	for i, t := range []*mergeTiming{&p.first, &p.remerge} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if *t, err = timeMerge(ctx, run); err != nil {
			return nil, err
		}
		if i == 1 && t.written > 0 {
			return nil, fmt.Errorf("merge scaling: the re-merge of %d files rewrote %d outputs (a merge is idempotent)", files, t.written)
		}
		fmt.Fprintf(progress, "shardbench: merge scaling: %s files, %s %.2fs (%.1f us/file, cpu %.2fs), peak heap %.0f MiB\n",
			commas(int64(files)), [...]string{"first merge", "re-merge"}[i], t.wall.Seconds(), t.usPerFile(files), t.cpu.Seconds(), mergeMiB(t.peakHeap))
	}
	return p, nil
}

// timeMerge runs one merge of run in process, with size verification,
// and checks that it found the run complete and clean.
func timeMerge(ctx context.Context, run *scalegen.Run) (mergeTiming, error) {
	var t mergeTiming
	runtime.GC()
	t.baseHeap = scalegen.HeapNow()
	h := scalegen.StartHeapSampler(2 * time.Millisecond)
	cpu0 := mergeProcessCPU()
	t0 := time.Now()
	rep, err := merge.Run(ctx, run.Out, merge.Options{Verify: merge.VerifySize})
	t.wall = time.Since(t0)
	t.cpu = mergeProcessCPU() - cpu0
	t.peakHeap = h.Stop()
	if err != nil {
		return t, fmt.Errorf("merge scaling: %w", err)
	}
	if rep.Outcome != merge.Complete || rep.Files != run.Partitions || rep.Bytes != run.Bytes || rep.Journals != run.Journals ||
		len(rep.Problems)+len(rep.Unclaimed)+len(rep.Conflicts)+rep.RolledForward+rep.TempRemoved > 0 {
		return t, fmt.Errorf("merge scaling: the merge of a clean %d-file run did not find it complete and clean:\n%s", run.Partitions, rep.Human())
	}
	t.written = len(rep.Written)
	return t, nil
}

// mergeProcessCPU is the process's user and system CPU time so far.
func mergeProcessCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mergeMiB(b uint64) float64 { return float64(b) / (1 << 20) }

func (t mergeTiming) usPerFile(files int) float64 { return t.wall.Seconds() * 1e6 / float64(files) }

// targets are the section's goals: the per-file time of the first merge
// at the largest size over that at the smallest, the largest size's wall
// time when it is a million files (or more), and its peak heap.
func (r *mergeScaleResult) targets() []target {
	if r == nil || len(r.points) == 0 {
		return nil
	}
	lo, hi := r.points[0], r.points[len(r.points)-1]
	var ts []target
	if len(r.points) > 1 {
		ts = append(ts, target{name: fmt.Sprintf("merge us/file %s / %s", hi.generated, lo.generated), key: "merge_per_file_ratio",
			value: hi.first.usPerFile(hi.files) / lo.first.usPerFile(lo.files), bound: mergePerFileBound})
	}
	if hi.files >= 1_000_000 {
		ts = append(ts, target{name: fmt.Sprintf("merge %s files (s)", hi.generated), key: "merge_" + hi.generated + "_s",
			value: hi.first.wall.Seconds(), bound: merge1MBound})
	}
	ts = append(ts, target{name: fmt.Sprintf("merge %s peak heap (MiB)", hi.generated), key: "merge_heap_mb_" + hi.generated,
		value: mergeMiB(max(hi.first.peakHeap, hi.remerge.peakHeap)), bound: mergeHeapBound})
	return ts
}

// doc adds the section's figures to the JSON document, per size label L:
// merge_L_s, remerge_L_s, merge_us_per_file_L, remerge_us_per_file_L,
// merge_cpu_L_s, remerge_cpu_L_s, merge_heap_mb_L (the higher peak of the
// two merges), merge_gen_L_s; and merge_per_file_ratio (largest over
// smallest size, first merges).
func (r *mergeScaleResult) doc(m map[string]any) {
	var sizes []int
	for _, p := range r.points {
		l := p.generated
		sizes = append(sizes, p.files)
		m["merge_"+l+"_s"] = p.first.wall.Seconds()
		m["remerge_"+l+"_s"] = p.remerge.wall.Seconds()
		m["merge_us_per_file_"+l] = p.first.usPerFile(p.files)
		m["remerge_us_per_file_"+l] = p.remerge.usPerFile(p.files)
		m["merge_cpu_"+l+"_s"] = p.first.cpu.Seconds()
		m["remerge_cpu_"+l+"_s"] = p.remerge.cpu.Seconds()
		m["merge_heap_mb_"+l] = mergeMiB(max(p.first.peakHeap, p.remerge.peakHeap))
		m["merge_base_heap_mb_"+l] = mergeMiB(max(p.first.baseHeap, p.remerge.baseHeap))
		m["merge_gen_"+l+"_s"] = p.generate.Seconds()
	}
	m["merge_scale_files"] = sizes
	m["merge_scale_fs"] = r.fsName()
	m["merge_scale_journals"] = mergeScaleJournals
	if len(r.points) > 0 {
		m["merge_scale_journals"] = r.points[0].journals
	}
	for _, t := range r.targets() {
		if t.key == "merge_per_file_ratio" {
			m[t.key] = t.value
		}
	}
}

// print writes the section's table.
func (r *mergeScaleResult) print(w io.Writer) {
	j := mergeScaleJournals
	if len(r.points) > 0 {
		j = r.points[0].journals
	}
	fmt.Fprintf(w, "\n== journal merge scaling: merge.Run in process, --verify size, %d journals, the tiny case's 10 tables, files in place on %s (warm cache)\n", j, r.fsName())
	fmt.Fprintln(w, "   first: a run never merged (writes the index and manifests); re-merge: the same run again (rewrites nothing)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "files\tfirst s\tus/file\tcpu s\tre-merge s\tus/file\tcpu s\tpeak heap MiB\tgenerated in s\t")
	for _, p := range r.points {
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%.2f\t%.2f\t%.1f\t%.2f\t%.0f\t%.1f\t\n", commas(int64(p.files)),
			p.first.wall.Seconds(), p.first.usPerFile(p.files), p.first.cpu.Seconds(),
			p.remerge.wall.Seconds(), p.remerge.usPerFile(p.files), p.remerge.cpu.Seconds(),
			mergeMiB(max(p.first.peakHeap, p.remerge.peakHeap)), p.generate.Seconds())
	}
	tw.Flush()
}

func (r *mergeScaleResult) fsName() string {
	if r.fs == "" {
		return "disk"
	}
	return r.fs
}
