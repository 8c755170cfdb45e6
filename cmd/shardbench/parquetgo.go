package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/hydroshard/hydroshard/shard"
)

// parquetGoDir is the parquet-go contestant, relative to the module root:
// a module of its own (its own go.mod), so that this module does not
// require parquet-go. shardbench builds it and runs it as a long-lived
// child, as it runs DuckDB: the child times its writes itself. Its doc
// has the protocol, its cols.go the input format (written by
// writeColumns below).
const parquetGoDir = "cmd/shardbench/parquetgo"

// buildParquetGo builds the contestant into dir. GOWORK=off: the module
// is not in any workspace, and needs none.
func buildParquetGo(ctx context.Context, goBin, root, dir string) (string, error) {
	bin := filepath.Join(dir, "parquetgo")
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, goBin, "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, parquetGoDir)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", parquetGoDir, err, out)
	}
	return bin, nil
}

// parquetGo is the running contestant.
type parquetGo struct {
	*child
	version string // parquet-go's
}

// startParquetGo starts the contestant and checks that it runs on the
// same Go and the same klauspost/compress (the zstd encoder) as this
// process, i.e. as the writer: otherwise the comparison would not be fair.
func startParquetGo(ctx context.Context, bin, dir string, life, timeout time.Duration) (*parquetGo, error) {
	c, err := startChild(ctx, "parquet-go", "parquetgo", dir, life, timeout, bin)
	if err != nil {
		return nil, err
	}
	var info struct {
		Go        string `json:"go"`
		ParquetGo string `json:"parquet_go"`
		Compress  string `json:"compress"`
	}
	if err := c.request(map[string]any{"cmd": "info"}, &info); err != nil {
		return nil, failClose(err, c)
	}
	if info.Go != runtime.Version() {
		return nil, failClose(fmt.Errorf("parquet-go: the contestant was built with %s, shardbench runs on %s", info.Go, runtime.Version()), c)
	}
	const compress = "github.com/klauspost/compress"
	if mine := moduleVersion(compress); mine != "" && info.Compress != mine {
		return nil, failClose(fmt.Errorf("parquet-go: the contestant links %s %s, the writer %s: run (cd %s && go get %s@%s && go mod tidy)",
			compress, info.Compress, mine, parquetGoDir, compress, mine), c)
	}
	return &parquetGo{child: c, version: info.ParquetGo}, nil
}

// failClose ends c after err, which it returns.
func failClose(err error, c *child) error {
	if cerr := c.close(); cerr != nil {
		return fmt.Errorf("%w (and %v)", err, cerr)
	}
	return err
}

// moduleVersion is the version of a module linked into this binary, ""
// when the binary has no build information.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}

// load hands the child the scale's inputs, with the writer's zstd level
// and row-group cap, and checks that it holds exactly the rows and values
// the other contestants get (its checksums against writeColumns').
func (p *parquetGo) load(d *dataset) error {
	var resp struct {
		Rows []int    `json:"rows"`
		Sums []string `json:"sums"`
	}
	req := map[string]any{"cmd": "load", "zstd_level": shard.ZstdLevel, "max_rows_per_row_group": shard.MaxRowGroupRows, "inputs": d.pgInputs}
	if err := p.request(req, &resp); err != nil {
		return err
	}
	if len(resp.Rows) != len(d.pgInputs) || len(resp.Sums) != len(d.pgInputs) {
		return fmt.Errorf("parquet-go: loaded %d inputs (%d sums), want %d", len(resp.Rows), len(resp.Sums), len(d.pgInputs))
	}
	for i := range d.pgInputs {
		if want := fmt.Sprintf("%016x", d.pgSums[i]); resp.Rows[i] != d.rows || resp.Sums[i] != want {
			return fmt.Errorf("parquet-go: %s: %d rows, checksum %s; want %d rows, %s", d.pgInputs[i], resp.Rows[i], resp.Sums[i], d.rows, want)
		}
	}
	return nil
}

// parquetGoContestant writes each scenario's hydros rows with one
// long-lived GenericWriter (Reset per file: parquet-go's cheapest way to
// write many files), zstd level 3, no dictionary (parquet-go only builds
// dictionaries for fields tagged "dict"), at most 100k rows per row group,
// then fsyncs, as the writer does. The time is measured inside the child,
// from opening the first file to the last fsync. The child gets the GC
// headroom this process has (runRounds has just collected): the Go
// contestants in here run next to the benchmark's data, hundreds of MB,
// so their garbage seldom triggers a collection, and neither does the
// child's (as when parquet-go ran in here).
func parquetGoContestant(p *parquetGo, d *dataset, dir string) func(context.Context, int) (sample, error) {
	return func(ctx context.Context, round int) (sample, error) {
		sub, err := roundDir(dir, "parquet-go", round)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(sub)
		paths := make([]string, len(d.pgInputs))
		for i := range paths {
			paths[i] = filepath.Join(sub, fmt.Sprintf("s%d.parquet", i))
		}
		var resp struct {
			Sec   float64 `json:"sec"`
			Bytes int64   `json:"bytes"`
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		headroom := max(int64(ms.NextGC)-int64(ms.HeapAlloc), 0)
		if err := p.request(map[string]any{"cmd": "write", "paths": paths, "gc_headroom": headroom}, &resp); err != nil {
			return sample{}, err
		}
		if resp.Sec <= 0 {
			return sample{}, fmt.Errorf("parquet-go: writing took %v s", resp.Sec)
		}
		return sample{sec: resp.Sec, in: sum(d.hydrosIn), out: resp.Bytes, scen: len(paths)}, ctx.Err()
	}
}

// colsMagic and the column types are the parquet-go contestant's input
// format (cmd/shardbench/parquetgo/cols.go has its definition).
const colsMagic = "SBCOLS01"

const (
	colInt8    = 1
	colInt32   = 2
	colFloat64 = 3
)

var colsCRC = crc64.MakeTable(crc64.ECMA)

// writeColumns writes rec's columns to path in that format, before any
// timing, and returns their checksum (defined in cols.go too): CRC-64/ECMA
// of, column by column and row by row, 0 for a null, else 1 and the value
// as 8 bytes little-endian (integers sign-extended, float64 by its bits).
func writeColumns(path string, rec arrow.RecordBatch) (sum uint64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	n := int(rec.NumRows())
	sch := rec.Schema()
	var b []byte
	b = append(b, colsMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(sch.NumFields()))
	var crc []byte
	for c, col := range rec.Columns() {
		af := sch.Field(c)
		var typ byte
		switch col.(type) {
		case *array.Int8:
			typ = colInt8
		case *array.Int32:
			typ = colInt32
		case *array.Float64:
			typ = colFloat64
		default:
			return 0, fmt.Errorf("column %s: Arrow type %s has no conversion", af.Name, col.DataType())
		}
		nullable := byte(0)
		if af.Nullable {
			nullable = 1
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(af.Name)))
		b = append(append(b, af.Name...), typ, nullable)
		null := func(i int) bool { return af.Nullable && !col.IsValid(i) }
		if af.Nullable {
			valid := make([]byte, (n+7)/8)
			for i := range n {
				if !null(i) {
					valid[i/8] |= 1 << (i % 8)
				}
			}
			b = append(b, valid...)
		}
		crc = crc[:0]
		put := func(i int, x uint64) {
			if null(i) {
				crc = append(crc, 0)
			} else {
				crc = binary.LittleEndian.AppendUint64(append(crc, 1), x)
			}
		}
		switch a := col.(type) {
		case *array.Int8:
			for i, v := range a.Int8Values() {
				b = append(b, byte(v))
				put(i, uint64(int64(v)))
			}
		case *array.Int32:
			for i, v := range a.Int32Values() {
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
				put(i, uint64(int64(v)))
			}
		case *array.Float64:
			for i, v := range a.Float64Values() {
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
				put(i, math.Float64bits(v))
			}
		}
		sum = crc64.Update(sum, colsCRC, crc)
		if _, err := w.Write(b); err != nil {
			return 0, err
		}
		b = b[:0]
	}
	if _, err := w.Write(b); err != nil {
		return 0, err
	}
	return sum, w.Flush()
}
