package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// dataset is everything one scale's contestants consume, prepared before
// any timing so that generation, conversion and copying never land inside a
// measurement, and so that every contestant sees exactly the same data.
type dataset struct {
	scale string
	cas   *manifest.Case
	scen  []*shard.Scenario
	// hydrosCols holds the hydros column buffers of each scenario (values
	// and validity bitmaps, derived columns included): what the writer
	// compresses, and so what raw zstd compresses.
	hydrosCols [][][]byte
	// hydrosIn is the input bytes of each scenario's hydros table: the one
	// figure every hydros contestant's MB/s is computed from.
	hydrosIn []int64
	// fullIn is the input bytes of all ten tables of each scenario, for the
	// rank path.
	fullIn []int64
	rows   int // hydros rows per scenario
	// pgInputs are the hydros columns, one file per scenario, that the
	// parquet-go contestant (a child process) loads, and pgSums their
	// checksums, which it must report back (writeColumns).
	pgInputs []string
	pgSums   []uint64
	// parquetFiles are the hydros files this project's writer produced, one
	// per scenario: DuckDB loads them, so it gets the very same values.
	parquetFiles []string
}

func sum(xs []int64) int64 {
	var t int64
	for _, x := range xs {
		t += x
	}
	return t
}

// inputBytes is the length of shard.ColumnBytes without the copies.
func inputBytes(rec arrow.RecordBatch) int64 {
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

// prepare generates n scenarios of c (seed 1, ids 0..n-1) and derives every
// contestant's input from them. dir receives the writer's hydros files for
// DuckDB and the hydros columns for parquet-go.
func prepare(scale string, c *manifest.Case, n int, dir string) (*dataset, error) {
	d := &dataset{scale: scale, cas: c}
	enc := shard.NewEncoder()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scratch for %s inputs: %w", scale, err)
	}
	for i := range n {
		sc, err := synth.Generate(c, 1, i)
		if err != nil {
			return nil, fmt.Errorf("generating %s scenario %d: %w", scale, i, err)
		}
		d.scen = append(d.scen, sc)
		var full int64
		for _, tr := range sc.Tables() {
			rec, err := enc.Record(tr, c)
			if err != nil {
				return nil, fmt.Errorf("%s scenario %d: %w", scale, i, err)
			}
			full += inputBytes(rec)
			if tr.Table == shard.Hydros {
				cols := shard.ColumnBytes(rec)
				var in int64
				for _, b := range cols {
					in += int64(len(b))
				}
				pg := filepath.Join(dir, fmt.Sprintf("%s-hydros-s%d.cols", scale, i))
				sum, err := writeColumns(pg, rec)
				if err != nil {
					rec.Release()
					return nil, fmt.Errorf("%s scenario %d: parquet-go's input: %w", scale, i, err)
				}
				d.hydrosCols = append(d.hydrosCols, cols)
				d.hydrosIn = append(d.hydrosIn, in)
				d.pgInputs = append(d.pgInputs, pg)
				d.pgSums = append(d.pgSums, sum)
				d.rows = int(rec.NumRows())
			}
			rec.Release()
		}
		if len(d.hydrosIn) != i+1 {
			return nil, fmt.Errorf("%s scenario %d has no hydros table", scale, i)
		}
		d.fullIn = append(d.fullIn, full)

		// DuckDB's input: this writer's file of the scenario, written once.
		final := filepath.Join(dir, fmt.Sprintf("%s-hydros-s%d.parquet", scale, i))
		tr := shard.TableRows{Table: shard.Hydros, Rows: sc.Hydros}
		if _, err := vfs.WriteNewSync(vfs.OS(), final, func(w io.Writer) error { _, err := enc.Encode(w, tr, c); return err }); err != nil {
			return nil, fmt.Errorf("writing DuckDB's input: %w", err)
		}
		d.parquetFiles = append(d.parquetFiles, final)
	}
	return d, nil
}
