package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hydroshard/hydroshard/internal/rankpath"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// sample is one contestant's run of one round: every contestant processes
// all of the scale's scenarios once per round, so in is the same for all
// hydros contestants and MB/s are comparable.
type sample struct {
	sec  float64
	in   int64 // uncompressed input bytes (column bytes)
	out  int64 // bytes on disk (compressed bytes for raw zstd)
	scen int   // scenarios written: out/scen is the bytes per scenario
}

func (s sample) mbps() float64 { return float64(s.in) / 1e6 / s.sec }

// contestant is one line of the report. run is called once per round; it
// removes what it wrote before returning, outside its timing, so the disk
// holds at most one round of one contestant.
type contestant struct {
	key   string // JSON key stem: writer_1w, duckdb_2t, ...
	label string
	run   func(ctx context.Context, round int) (sample, error)
}

func roundDir(dir, name string, round int) (string, error) {
	sub := filepath.Join(dir, fmt.Sprintf("%s-r%d", name, round))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return sub, nil
}

// writerContestant is the project's durable hydros write (encode, streaming
// hash, write, fsync). With workers > 1, each worker has its own
// long-lived Encoder (as rank's pool does) and writes every workers-th
// scenario, so the workers write independent files concurrently;
// throughput is total input / wall time. With overlap, each file's fsync
// runs on one syncer goroutine while the workers encode the next file, as
// rank.Writer does (the round's time ends when every file is durable);
// without it, the worker fsyncs each file itself (vfs.WriteNew then Sync), exactly
// what BenchmarkHydrosWriterVsRawZstd times. With one worker the encoding
// runs in the calling goroutine.
func writerContestant(d *dataset, dir string, workers int, overlap bool) func(context.Context, int) (sample, error) {
	encs := make([]*shard.Encoder, workers)
	for i := range encs {
		encs[i] = shard.NewEncoder()
	}
	name := fmt.Sprintf("writer-%dw", workers)
	if overlap {
		name += "-overlap"
	}
	return func(ctx context.Context, round int) (sample, error) {
		sub, err := roundDir(dir, name, round)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(sub)
		outs := make([]int64, workers)
		errs := make([]error, workers+1) // the last one is the syncer's
		syncs := make(chan *vfs.Pending, 2*workers)
		synced := make(chan struct{})
		work := func(w int) {
			for i := w; i < len(d.scen); i += workers {
				if errs[w] = ctx.Err(); errs[w] != nil {
					return
				}
				p := filepath.Join(sub, fmt.Sprintf("s%d%s", i, layout.TempSuffix))
				tr := shard.TableRows{Table: shard.Hydros, Rows: d.scen[i].Hydros}
				// Exactly the rank writer's path: vfs.WriteNew streams the
				// encoding through the XXH64, then the fsync runs in line
				// or, overlapped, on the syncer.
				encode := func(out io.Writer) error { _, err := encs[w].Encode(out, tr, d.cas); return err }
				info, pf, err := vfs.WriteNew(vfs.OS(), p, encode)
				if err == nil {
					if overlap {
						syncs <- pf
					} else {
						err = pf.Sync()
					}
				}
				if err != nil {
					errs[w] = fmt.Errorf("%s: %w", name, err)
					return
				}
				outs[w] += info.Bytes
			}
		}
		t0 := time.Now()
		go func() {
			defer close(synced)
			for pf := range syncs {
				if err := pf.Sync(); err != nil && errs[workers] == nil {
					errs[workers] = fmt.Errorf("%s: %w", name, err)
				}
			}
		}()
		if workers == 1 {
			work(0)
		} else {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() { work(w) })
			}
			wg.Wait()
		}
		close(syncs)
		<-synced
		sec := time.Since(t0).Seconds()
		if err := errors.Join(errs...); err != nil {
			return sample{}, err
		}
		return sample{sec: sec, in: sum(d.hydrosIn), out: sum(outs), scen: len(d.scen)}, nil
	}
}

// rawZstdContestant compresses the same column bytes with one long-lived
// klauspost encoder at level 3 in 1 MiB chunks, in one goroutine: no
// Parquet, no file. No single-goroutine zstd-3 writer can beat it, so
// writer_1w / raw_zstd is how close the writer gets to the limit.
func rawZstdContestant(d *dataset) (func(context.Context, int) (sample, error), error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(shard.ZstdLevel)),
		zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("raw zstd encoder: %w", err)
	}
	var dst []byte
	return func(ctx context.Context, round int) (sample, error) {
		var out int64
		t0 := time.Now()
		for _, cols := range d.hydrosCols {
			for _, col := range cols {
				for off := 0; off < len(col); off += 1 << 20 {
					dst = enc.EncodeAll(col[off:min(off+1<<20, len(col))], dst[:0])
					out += int64(len(dst))
				}
			}
		}
		return sample{sec: time.Since(t0).Seconds(), in: sum(d.hydrosIn), out: out, scen: len(d.hydrosCols)}, ctx.Err()
	}, nil
}

// rankContestant is the real rank path (internal/rankpath.Write): a fresh
// output directory per round, Options.Workers = workers, every scenario
// (all ten tables) from callers goroutines, timed until every scenario is
// committed.
func rankContestant(d *dataset, dir string, workers, callers int) func(context.Context, int) (sample, error) {
	name := fmt.Sprintf("rank-%dw", workers)
	return func(ctx context.Context, round int) (sample, error) {
		out := filepath.Join(dir, fmt.Sprintf("%s-r%d", name, round))
		defer os.RemoveAll(out)
		took, err := rankpath.Write(ctx, out, d.cas, d.scen, workers, callers, "shardbench", nil)
		if err != nil {
			return sample{}, fmt.Errorf("%s: %w", name, err)
		}
		sec := took.Seconds()
		bytes, err := parquetBytes(filepath.Join(out, layout.SimDir))
		if err != nil {
			return sample{}, fmt.Errorf("%s: %w", name, err)
		}
		return sample{sec: sec, in: sum(d.fullIn), out: bytes, scen: len(d.scen)}, nil
	}
}

// valueCheckContestant times, alone, the value checks that the rank
// path runs on every scenario in the caller's goroutine before accepting
// it (shard.CheckValues, as rank.Writer's WriteScenario calls it: entity
// ids, repeated keys, NaN/Inf, all ten tables): one goroutine, every
// scenario of the round once, like the other contestants. Against the
// rank contestants, whose time includes these checks, it is the share of
// the rank path they cost (report: value_check_overhead).
func valueCheckContestant(d *dataset) func(context.Context, int) (sample, error) {
	return func(ctx context.Context, round int) (sample, error) {
		t0 := time.Now()
		for _, sc := range d.scen {
			if err := shard.CheckValues(d.cas, sc.Tables()...); err != nil {
				return sample{}, fmt.Errorf("value checks: scenario %d: %w", sc.ID, err)
			}
		}
		return sample{sec: time.Since(t0).Seconds(), in: sum(d.fullIn), scen: len(d.scen)}, ctx.Err()
	}
}

// parquetBytes sums the sizes of the .parquet files under dir.
func parquetBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return err
		}
		st, err := e.Info()
		if err != nil {
			return err
		}
		n += st.Size()
		return nil
	})
	return n, err
}
