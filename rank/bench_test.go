package rank_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/hydroshard/hydroshard/internal/rankpath"
	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// benchInput is production scenarios and their input bytes, counted as
// cmd/shardbench counts them (data.go): the lengths of every buffer of
// the Arrow record each table is encoded from, derived columns included.
type benchInput struct {
	cas      *manifest.Case
	scen     []*shard.Scenario
	hydrosIn int64 // all scenarios' hydros tables
	fullIn   int64 // all scenarios' ten tables
}

func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, col := range rec.Columns() {
		for _, buf := range col.Data().Buffers() {
			if buf != nil {
				n += int64(buf.Len())
			}
		}
	}
	return n
}

func newBenchInput(tb testing.TB, c *manifest.Case, n int) *benchInput {
	tb.Helper()
	in := &benchInput{cas: c}
	enc := shard.NewEncoder()
	for i := range n {
		sc, err := synth.Generate(c, 1, i)
		if err != nil {
			tb.Fatal(err)
		}
		in.scen = append(in.scen, sc)
		for _, tr := range sc.Tables() {
			rec, err := enc.Record(tr, c)
			if err != nil {
				tb.Fatal(err)
			}
			b := recordBytes(rec)
			rec.Release()
			in.fullIn += b
			if tr.Table == shard.Hydros {
				in.hydrosIn += b
			}
		}
	}
	return in
}

// slowSyncFS is an FS whose every fsync (of a file or a directory) takes
// at least delay: with the output on tmpfs, a disk of fixed fsync latency
// on which fsyncs in flight together cost one latency, for comparing
// code that orders its fsyncs differently on a machine whose disk is busy
// with other work.
type slowSyncFS struct {
	vfs.FS
	delay time.Duration
}

type slowSyncFile struct {
	vfs.File
	delay time.Duration
}

func (f slowSyncFile) Sync() error { time.Sleep(f.delay); return f.File.Sync() }

func (s slowSyncFS) Create(name string) (vfs.File, error) {
	f, err := s.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f, s.delay}, nil
}

func (s slowSyncFS) SyncDir(name string) error { time.Sleep(s.delay); return s.FS.SyncDir(name) }

// benchFS is the file system of the benchmarks: the operating system's,
// or with HYDROSHARD_BENCH_FSYNC set (a duration, such as 5ms) a
// slowSyncFS over it (then put HYDROSHARD_BENCH_DIR on tmpfs).
func benchFS() vfs.FS {
	if d, err := time.ParseDuration(os.Getenv("HYDROSHARD_BENCH_FSYNC")); err == nil && d > 0 {
		return slowSyncFS{vfs.OS(), d}
	}
	return vfs.OS()
}

// benchDir is the benchmarks' scratch directory: b.TempDir(), or a fresh
// directory under HYDROSHARD_BENCH_DIR (/dev/shm for tmpfs).
func benchDir(b *testing.B) string {
	root := os.Getenv("HYDROSHARD_BENCH_DIR")
	if root == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(root, "rankbench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// singleTable is shardbench's writer_1w: each scenario's hydros table (the
// largest) encoded, hashed, written and fsynced in line, one goroutine,
// one long-lived Encoder. With overlap the fsync runs on a syncer
// goroutine while the next file is encoded (writer_1w_overlap).
func singleTable(in *benchInput, enc *shard.Encoder, dir string, overlap bool) (time.Duration, error) {
	sub, err := os.MkdirTemp(dir, "single")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(sub)
	syncs := make(chan *vfs.Pending, 2)
	var syncErr error
	synced := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(synced)
		for pf := range syncs {
			if err := pf.Sync(); err != nil && syncErr == nil {
				syncErr = err
			}
		}
	}()
	for i, sc := range in.scen {
		tr := shard.TableRows{Table: shard.Hydros, Rows: sc.Hydros}
		_, pf, err := vfs.WriteNew(benchFS(), filepath.Join(sub, fmt.Sprintf("s%d.tmp", i)), func(w io.Writer) error {
			_, err := enc.Encode(w, tr, in.cas)
			return err
		})
		if err == nil {
			if overlap {
				syncs <- pf
			} else {
				err = pf.Sync()
			}
		}
		if err != nil {
			close(syncs)
			<-synced
			return 0, err
		}
	}
	close(syncs)
	<-synced
	return time.Since(t0), syncErr
}

// rankPath is shardbench's writer_full_<workers>w (internal/rankpath.Write)
// in a fresh output directory.
func rankPath(in *benchInput, dir string, workers, callers int) (time.Duration, error) {
	out, err := os.MkdirTemp(dir, "rank")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(out)
	return rankpath.Write(context.Background(), out, in.cas, in.scen, workers, callers, "bench", benchFS())
}

// cpuTime is the process's CPU time so far, user and system: while the
// machine is busy with other work, the contestants compete for CPU, and
// their CPU per MB is what decides.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkRankPathVsSingleTable measures, side by side in one run, the
// single-table writer on the production case's largest table (hydros) and
// the whole rank path (all ten tables, Workers 1 and 2, 2 callers, until
// committed), as cmd/shardbench does, in MB/s of uncompressed input. Each
// b.N iteration is one round: every contestant writes the same 6
// production scenarios once, in a random order. It reports the medians
// over the rounds and the ratios of the medians; full_1w/single_1w is
// issue 17's figure (target >= 0.9).
//
//	go test ./rank -run XXX -bench RankPathVsSingleTable -benchtime 7x
//
// -v logs every round's MB/s and CPU per MB. On a machine whose disk is
// busy with other work, HYDROSHARD_BENCH_FSYNC=5ms
// HYDROSHARD_BENCH_DIR=/dev/shm runs both on tmpfs with a fixed fsync
// latency (slowSyncFS). HYDROSHARD_BENCH_XL=1 uses the XL case.
func BenchmarkRankPathVsSingleTable(b *testing.B) {
	c := synth.Production()
	if os.Getenv("HYDROSHARD_BENCH_XL") != "" {
		c = synth.XL()
	}
	in := newBenchInput(b, c, 6)
	dir := benchDir(b)
	enc := shard.NewEncoder()
	type contestant struct {
		name string
		in   int64
		run  func() (time.Duration, error)
		mbps []float64
		cpu  []float64 // process CPU seconds (user+system) per MB of input
	}
	cs := []*contestant{
		{name: "single_1w", in: in.hydrosIn, run: func() (time.Duration, error) { return singleTable(in, enc, dir, false) }},
		{name: "single_1w_overlap", in: in.hydrosIn, run: func() (time.Duration, error) { return singleTable(in, enc, dir, true) }},
		{name: "full_1w", in: in.fullIn, run: func() (time.Duration, error) { return rankPath(in, dir, 1, 2) }},
		{name: "full_2w", in: in.fullIn, run: func() (time.Duration, error) { return rankPath(in, dir, 2, 2) }},
	}
	// Warm-up: every contestant once, unmeasured.
	for _, ct := range cs {
		if _, err := ct.run(); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		order := rng.Perm(len(cs))
		for _, k := range order {
			ct := cs[k]
			c0 := cpuTime()
			d, err := ct.run()
			if err != nil {
				b.Fatalf("%s: %v", ct.name, err)
			}
			ct.cpu = append(ct.cpu, (cpuTime()-c0).Seconds()*1e3/(float64(ct.in)/1e6))
			ct.mbps = append(ct.mbps, float64(ct.in)/1e6/d.Seconds())
		}
	}
	b.StopTimer()
	med := map[string]float64{}
	for _, ct := range cs {
		med[ct.name] = median(ct.mbps)
		b.ReportMetric(med[ct.name], ct.name+"_MB/s")
		b.ReportMetric(median(ct.cpu), ct.name+"_cpu_ms/MB")
	}
	b.ReportMetric(med["full_1w"]/med["single_1w"], "full_1w/single_1w")
	b.ReportMetric(med["full_1w"]/med["single_1w_overlap"], "full_1w/single_1w_overlap")
	b.ReportMetric(med["full_2w"]/med["single_1w"], "full_2w/single_1w")
	// Per-round ratios (the two samples of a round were taken close
	// together): their median is steadier than the ratio of medians.
	var r []float64
	for i := range cs[0].mbps {
		r = append(r, cs[2].mbps[i]/cs[0].mbps[i])
	}
	b.ReportMetric(median(r), "full_1w/single_1w_paired")
	if testing.Verbose() {
		for _, ct := range cs {
			b.Logf("%-18s %v", ct.name, ct.mbps)
			b.Logf("%-18s cpu_ms/MB %v", ct.name, ct.cpu)
		}
	}
}

// BenchmarkRankPath is the rank path alone (Workers 1, 2 callers, 6
// production scenarios per iteration, until committed), for profiles:
//
//	go test ./rank -run XXX -bench 'RankPath$' -cpuprofile cpu.out
func BenchmarkRankPath(b *testing.B) {
	in := newBenchInput(b, synth.Production(), 6)
	dir := benchDir(b)
	b.SetBytes(in.fullIn)
	b.ResetTimer()
	for range b.N {
		if _, err := rankPath(in, dir, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
}
