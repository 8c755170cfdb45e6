package merge

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// TestCompactThroughput measures compaction against a plain copy of the
// same bytes, side by side: `cp -r` of the partition tree, Compact with
// the pages copied, and Compact decoding and re-encoding every file (both
// verify against the partition files, as always). It runs only when
// HYDROSHARD_COMPACT_BENCH names a scenario count:
//
//	HYDROSHARD_COMPACT_BENCH=200 go test ./merge -run TestCompactThroughput -v
//
// HYDROSHARD_COMPACT_BENCH_CASE picks the case (production, the default;
// xl; or a directory of testdata/cases) and HYDROSHARD_COMPACT_BENCH_ROUNDS
// the rounds (3; the median is reported); HYDROSHARD_COMPACT_BENCH_DIR, a
// new directory, keeps the study and its last compaction.
func TestCompactThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HYDROSHARD_COMPACT_BENCH"))
	if n <= 0 {
		t.Skip("set HYDROSHARD_COMPACT_BENCH=<scenarios> to measure")
	}
	rounds := 3
	if r, _ := strconv.Atoi(os.Getenv("HYDROSHARD_COMPACT_BENCH_ROUNDS")); r > 0 {
		rounds = r
	}
	name := os.Getenv("HYDROSHARD_COMPACT_BENCH_CASE")
	if name == "" {
		name = "production"
	}
	c, ok := synth.Builtin(name)
	if !ok {
		var err error
		if c, err = manifest.LoadCase(filepath.Join("../testdata/cases", name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	out := t.TempDir()
	if keep := os.Getenv("HYDROSHARD_COMPACT_BENCH_DIR"); keep != "" {
		out = keep // kept, to read the compacted files with other tools
	}
	start := time.Now()
	benchStudy(t, out, c, n)
	src, files := treeSize(t, filepath.Join(out, "simulation"))
	t.Logf("%s case, %d scenarios: %d partition files, %.1f MB, written and merged in %v", name, n, files, float64(src)/1e6, time.Since(start).Round(time.Millisecond))

	type result struct {
		secs, cpu []float64
		heap      uint64
	}
	results := map[string]*result{}
	order := []string{"cp -r", "page copy", "re-encode"}
	if os.Getenv("HYDROSHARD_COMPACT_BENCH_ONLY") == "page" { // for profiling
		order = order[:2]
	}
	for _, k := range order {
		results[k] = &result{}
	}
	for r := 0; r < rounds; r++ {
		for _, k := range order {
			dst := filepath.Join(t.TempDir(), "copy")
			_ = os.RemoveAll(filepath.Join(out, layout.CompactDir))
			runtime.GC()
			stop := peakHeap()
			t0 := time.Now()
			cpu0 := cpuTime()
			var cpu float64
			switch k {
			case "cp -r":
				cmd := exec.Command("cp", "-r", filepath.Join(out, "simulation"), dst)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("cp: %v %s", err, b)
				}
				cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
			default:
				compactReEncode = k == "re-encode"
				_, err := Compact(ctx, out, CompactOptions{})
				compactReEncode = false
				if err != nil {
					t.Fatal(err)
				}
				cpu = cpuTime() - cpu0
			}
			d := time.Since(t0).Seconds()
			results[k].cpu = append(results[k].cpu, cpu)
			heap := stop()
			results[k].secs = append(results[k].secs, d)
			results[k].heap = max(results[k].heap, heap)
			_ = os.RemoveAll(dst)
		}
	}
	med := func(x []float64) float64 { x = slices.Clone(x); sort.Float64s(x); return x[len(x)/2] }
	cp := med(results["cp -r"].secs)
	compacted, _ := treeSize(t, filepath.Join(out, layout.CompactDir))
	t.Logf("compacted tree: %.1f MB (%.2f of the partition bytes)", float64(compacted)/1e6, float64(compacted)/float64(src))
	cpuCP := med(results["cp -r"].cpu)
	t.Logf("GOMAXPROCS %d; median of %d rounds; MB of partition bytes; CPU: user+system of this process (cp: of the child)", runtime.GOMAXPROCS(0), rounds)
	t.Logf("%-10s %8s %8s %7s | %8s %9s %7s | %10s", "", "wall s", "MB/s", "vs cp", "CPU s", "MB/CPU-s", "vs cp", "peak heap")
	for _, k := range order {
		s, c := med(results[k].secs), med(results[k].cpu)
		t.Logf("%-10s %8.3f %8.1f %7.3f | %8.3f %9.1f %7.3f | %7.1f MB", k, s, float64(src)/1e6/s, cp/s, c, float64(src)/1e6/c, cpuCP/c, float64(results[k].heap)/1e6)
	}
}

// peakHeap samples the Go heap in use (runtime/metrics, which does not
// stop the world) until the returned function is called, which returns
// the largest sample.
func peakHeap() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64() + sample[1].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// benchStudy writes a complete study of n scenarios of c with two ranks
// and merges it, as compactStudy does for the tiny case.
func benchStudy(t *testing.T, out string, c *manifest.Case, n int) {
	t.Helper()
	ctx := context.Background()
	for r := range 2 {
		id, err := rank.Explicit(r, 2)
		if err != nil {
			t.Fatal(err)
		}
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: n})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rank.Contiguous.Owned(n, id) {
			sc, err := synth.Generate(c, 3, s)
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
	rep, err := Run(ctx, out, Options{Verify: VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != Complete {
		t.Fatalf("merge: %s", rep.Human())
	}
}

// treeSize is the bytes and number of the regular files under dir.
func treeSize(t *testing.T, dir string) (int64, int) {
	t.Helper()
	var size int64
	var n int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		size += st.Size()
		n++
		return nil
	})
	if err != nil {
		t.Fatal(fmt.Errorf("sizing %s: %w", dir, err))
	}
	return size, n
}

// cpuTime is this process's user and system CPU seconds so far.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
