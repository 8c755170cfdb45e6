package shard_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// BenchmarkHydrosWriterVsRawZstd writes production-scale hydros scenarios
// (28,800 rows) through the real durable write path (encode, hash, fsync)
// and, interleaved in the same run, zstd-3-compresses the same column bytes
// with one long-lived klauspost encoder in 1 MiB pages (the limit for
// zstd-3). It reports both throughputs in MB/s of uncompressed column bytes
// and their ratio; the ratio is the figure to compare across machines.
// encode_in_memory/raw is the same encoding into memory, without the file,
// hashing and fsync, to show what the durable write costs.
func BenchmarkHydrosWriterVsRawZstd(b *testing.B) {
	c := synth.Production()
	var scenarios []*shard.Scenario
	for s := range 4 {
		sc, err := synth.Generate(c, 1, s)
		if err != nil {
			b.Fatal(err)
		}
		scenarios = append(scenarios, sc)
	}
	enc := shard.NewEncoder()
	var cols [][][]byte
	var inBytes int64
	for _, sc := range scenarios {
		rec, err := enc.Record(shard.TableRows{Table: shard.Hydros, Rows: sc.Hydros}, c)
		if err != nil {
			b.Fatal(err)
		}
		cb := shard.ColumnBytes(rec)
		rec.Release()
		cols = append(cols, cb)
		for _, x := range cb {
			inBytes += int64(len(x))
		}
	}
	perScenario := float64(inBytes) / float64(len(scenarios))
	raw, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(shard.ZstdLevel)), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	dir := b.TempDir()
	var dst []byte
	var tWriter, tRaw, tEncode time.Duration
	var mem bytes.Buffer
	var outBytes int64
	runtime.GC()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(scenarios)
		p := filepath.Join(dir, "f.tmp")
		t0 := time.Now()
		tr := shard.TableRows{Table: shard.Hydros, Rows: scenarios[k].Hydros}
		info, err := vfs.WriteNewSync(vfs.OS(), p, func(w io.Writer) error { _, err := enc.Encode(w, tr, c); return err })
		tWriter += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		outBytes += info.Bytes
		os.Remove(p)
		t0 = time.Now()
		for _, col := range cols[k] {
			for off := 0; off < len(col); off += 1 << 20 {
				dst = raw.EncodeAll(col[off:min(off+1<<20, len(col))], dst[:0])
			}
		}
		tRaw += time.Since(t0)
		mem.Reset()
		t0 = time.Now()
		if _, err := enc.Encode(&mem, shard.TableRows{Table: shard.Hydros, Rows: scenarios[k].Hydros}, c); err != nil {
			b.Fatal(err)
		}
		tEncode += time.Since(t0)
	}
	mb := perScenario * float64(b.N) / 1e6
	b.ReportMetric(mb/tWriter.Seconds(), "writer_MB/s")
	b.ReportMetric(mb/tRaw.Seconds(), "raw_zstd_MB/s")
	b.ReportMetric(tRaw.Seconds()/tWriter.Seconds(), "writer/raw")
	b.ReportMetric(tRaw.Seconds()/tEncode.Seconds(), "encode_in_memory/raw")
	b.ReportMetric(float64(outBytes)/float64(b.N), "file_bytes")
	b.ReportMetric(perScenario, "input_bytes")
}
