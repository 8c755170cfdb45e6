package merge

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/cespare/xxhash/v2"
	"github.com/hydroshard/hydroshard/layout"
)

// TestCompactVerificationCatchesBadWrite: a value altered between the
// partition file and the compacted file (compactTamper, as a bug in the
// copy would), a wrong scenario_id, or wrong scenario_id statistics are
// caught by the verification, and nothing is published; in both ways of
// writing (pages copied, and decoded and re-encoded).
func TestCompactVerificationCatchesBadWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reEncode bool
		tamper   func(t *testing.T) compactTampers
		want     string
	}{
		// Pages copied: scenario 1's chunk of a float column replaced by
		// scenario 0's (valid pages, other values: a wrong byte range).
		{"page copy/value", false, func(t *testing.T) compactTampers {
			first := map[int][]byte{}
			swapped := false
			return compactTampers{chunk: func(entity string, scenario, col int, chunk []byte) []byte {
				if entity != "hydros" || swapped {
					return chunk
				}
				switch scenario {
				case 0:
					first[col] = slices.Clone(chunk)
				case 1:
					if f := first[col]; f != nil && !bytes.Equal(f, chunk) {
						swapped = true
						return f
					}
				}
				return chunk
			}}
		}, "differs from its partition file"},
		// scenario 2's rows labelled 1.
		{"page copy/scenario_id", false, func(t *testing.T) compactTampers {
			return compactTampers{ids: func(entity string, rg int, ids []int32) {
				if entity != "costs" {
					return
				}
				for i, id := range ids {
					if id == 2 {
						ids[i] = 1
					}
				}
			}}
		}, "scenario 1 has"},
		// A row group's scenario_id maximum one below what it holds.
		{"page copy/statistics", false, func(t *testing.T) compactTampers {
			return compactTampers{stats: func(entity string, rg int, st *metadata.EncodedStatistics) {
				if entity == "costs" && rg == 0 {
					st.SetMax(binary.LittleEndian.AppendUint32(nil, binary.LittleEndian.Uint32(st.Max)-1))
				}
			}}
		}, "scenario_id statistics"},
		{"re-encode/value", true, func(t *testing.T) compactTampers {
			return compactTampers{record: func(entity string, scenario int, rec arrow.RecordBatch) arrow.RecordBatch {
				if entity != "hydros" || scenario != 1 {
					return nil
				}
				for j, f := range rec.Schema().Fields() {
					if j > 0 && f.Type.ID() == arrow.FLOAT64 {
						return replaceColumn(t, rec, int64(j), 0)
					}
				}
				t.Fatal("hydros has no float64 column")
				return nil
			}}
		}, "differs from its partition file"},
		{"re-encode/scenario_id", true, func(t *testing.T) compactTampers {
			return compactTampers{record: func(entity string, scenario int, rec arrow.RecordBatch) arrow.RecordBatch {
				if entity != "costs" || scenario != 2 {
					return nil
				}
				return replaceColumn(t, rec, 0, 1)
			}}
		}, "scenario"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := compactStudy(t, 3)
			compactTamper = tc.tamper(t)
			compactReEncode = tc.reEncode
			defer func() { compactTamper, compactReEncode = compactTampers{}, false }()
			var progress strings.Builder
			_, err := Compact(context.Background(), out, CompactOptions{Progress: &progress})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was published") {
				t.Errorf("err = %v, want a verification failure (%q)", err, tc.want)
			}
			if strings.Contains(progress.String(), "re-encoding") {
				t.Errorf("fell back to re-encoding:\n%s", progress.String())
			}
			noCompaction(t, out)
		})
	}
}

// TestCompactPageCopy: the pages copied as they are and the rows decoded
// and encoded again give the same rows; a partition file whose row group
// is larger than a compacted one (which page copy cannot split) makes the
// file fall back to re-encoding, and says so.
func TestCompactPageCopy(t *testing.T) {
	const n = 5
	study, c := compactStudy(t, n)
	ctx := context.Background()
	run := func(name string, reEncode bool, opts CompactOptions) (string, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), name)
		if err := os.CopyFS(out, os.DirFS(study)); err != nil {
			t.Fatal(err)
		}
		compactReEncode = reEncode
		defer func() { compactReEncode = false }()
		var progress strings.Builder
		opts.Progress = &progress
		if _, err := Compact(ctx, out, opts); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out, progress.String()
	}
	// Two scenarios a row group: hydros has 12 rows a scenario.
	copied, pc := run("copied", false, CompactOptions{RowGroupRows: 24})
	again, _ := run("again", false, CompactOptions{RowGroupRows: 24})
	encoded, _ := run("encoded", true, CompactOptions{RowGroupRows: 24})
	fallback, fb := run("fallback", false, CompactOptions{RowGroupRows: 5})
	if strings.Contains(pc, "re-encoding") {
		t.Errorf("page copy fell back:\n%s", pc)
	}
	if !strings.Contains(fb, "re-encoding compacted/hydros/part-00000.parquet") || !strings.Contains(fb, "more than a compacted row group's 5") {
		t.Errorf("a 12-row partition row group with 5-row compacted row groups did not fall back:\n%s", fb)
	}
	if a, b := treeBytes(t, filepath.Join(copied, layout.CompactDir)), treeBytes(t, filepath.Join(again, layout.CompactDir)); len(a) == 0 || !mapsEqual(withoutManifest(a), withoutManifest(b)) {
		t.Errorf("two page copies of one study differ")
	}
	for _, e := range c.Entities() {
		name := layout.CompactPart(e, 0)
		_, want := parquetRows(t, filepath.Join(encoded, name), "")
		for _, out := range []string{copied, fallback} {
			sch, got := parquetRows(t, filepath.Join(out, name), "")
			if sch.Field(0).Name != "scenario_id" || !slices.Equal(got, want) {
				t.Errorf("%s: %s differs from the re-encoded file (%d rows, want %d)", filepath.Base(out), name, len(got), len(want))
			}
		}
		cm := readCompactManifest(t, copied)
		for _, f := range cm.Files {
			if f.Entity == e {
				checkRowGroupStats(t, filepath.Join(copied, f.Path), f)
			}
		}
	}
}

func withoutManifest(m map[string]string) map[string]string {
	delete(m, path.Base(layout.CompactManifestFile))
	return m
}

// replaceColumn returns rec with the first value of column j changed
// (a float64 column gets +1, an int32 column the value v).
func replaceColumn(t *testing.T, rec arrow.RecordBatch, j int64, v int32) arrow.RecordBatch {
	t.Helper()
	cols := slices.Clone(rec.Columns())
	switch a := cols[j].(type) {
	case *array.Float64:
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		for i := 0; i < a.Len(); i++ {
			x := a.Value(i)
			if i == 0 {
				x++
			}
			b.Append(x)
		}
		cols[j] = b.NewArray()
	case *array.Int32:
		b := array.NewInt32Builder(memory.DefaultAllocator)
		for i := 0; i < a.Len(); i++ {
			x := a.Value(i)
			if i == 0 {
				x = v
			}
			b.Append(x)
		}
		cols[j] = b.NewArray()
	default:
		t.Fatalf("column %d is %T", j, a)
	}
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
}

// TestHashValuesCanonical: hashValues' per-type loops hash exactly the
// canonical form (a null flag, then the little-endian value) that the
// manifests' content_xxh64 is made of, with and without nulls, on sliced
// arrays too.
func TestHashValuesCanonical(t *testing.T) {
	ref := func(a arrow.Array, from, to int) uint64 {
		d := xxhash.New()
		var b []byte
		for i := from; i < to; i++ {
			if a.IsNull(i) {
				b = append(b, 0)
				continue
			}
			b = append(b, 1)
			switch c := a.(type) {
			case *array.Int8:
				b = append(b, byte(c.Value(i)))
			case *array.Int32:
				b = binary.LittleEndian.AppendUint32(b, uint32(c.Value(i)))
			case *array.Int64:
				b = binary.LittleEndian.AppendUint64(b, uint64(c.Value(i)))
			case *array.Float64:
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Value(i)))
			case *array.Boolean:
				b = append(b, map[bool]byte{false: 0, true: 1}[c.Value(i)])
			default:
				v := a.ValueStr(i)
				b = binary.AppendUvarint(b, uint64(len(v)))
				b = append(b, v...)
			}
		}
		_, _ = d.Write(b)
		return d.Sum64()
	}
	const n = 10000 // more than hashValues' 32 KiB flushes
	mem := memory.DefaultAllocator
	build := func(withNulls bool) []arrow.Array {
		valid := make([]bool, n)
		for i := range valid {
			valid[i] = !withNulls || i%7 != 3
		}
		f, i32, i64, i8, bo, st := array.NewFloat64Builder(mem), array.NewInt32Builder(mem), array.NewInt64Builder(mem), array.NewInt8Builder(mem), array.NewBooleanBuilder(mem), array.NewStringBuilder(mem)
		for i := range n {
			f.Append(float64(i) * 1.5)
			i32.Append(int32(i * 3))
			i64.Append(int64(i) << 33)
			i8.Append(int8(i))
			bo.Append(i%3 == 0)
			st.Append(fmt.Sprint("v", i))
		}
		var out []arrow.Array
		for _, b := range []array.Builder{f, i32, i64, i8, bo, st} {
			a := b.NewArray()
			if withNulls {
				// Rebuild with the validity mask.
				nb := array.NewBuilder(mem, a.DataType())
				for i := range n {
					if valid[i] {
						if err := nb.AppendValueFromString(a.ValueStr(i)); err != nil {
							t.Fatal(err)
						}
					} else {
						nb.AppendNull()
					}
				}
				a = nb.NewArray()
			}
			out = append(out, a, array.NewSlice(a, 17, n-5))
		}
		return out
	}
	for _, nulls := range []bool{false, true} {
		for _, a := range build(nulls) {
			for _, r := range [][2]int{{0, a.Len()}, {3, a.Len() - 2}, {5, 5}} {
				d := xxhash.New()
				hashValues(d, a, r[0], r[1], nil)
				if got, want := d.Sum64(), ref(a, r[0], r[1]); got != want {
					t.Errorf("%s (nulls %v, offset %d) rows %v: %016x, want %016x", a.DataType(), nulls, a.Data().Offset(), r, got, want)
				}
			}
		}
	}
}

// TestHashColumnsParallel: hashing a record's columns in parallel gives
// each column the digest a sequential pass gives.
func TestHashColumnsParallel(t *testing.T) {
	const n, ncol = 50000, 7
	mem := memory.DefaultAllocator
	var fields []arrow.Field
	var cols []arrow.Array
	for k := range ncol {
		b := array.NewFloat64Builder(mem)
		for i := range n {
			if (i+k)%11 == 0 {
				b.AppendNull()
			} else {
				b.Append(float64(i*(k+1)) / 3)
			}
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprint("c", k), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		cols = append(cols, b.NewArray())
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, n)
	digests := func() []*xxhash.Digest {
		d := make([]*xxhash.Digest, ncol-1)
		for k := range d {
			d[k] = xxhash.New()
		}
		return d
	}
	par, seq := digests(), digests()
	hashColumns(par, rec, 1, 100, n-100, make([][]byte, 4))
	hashColumns(seq, rec, 1, 100, n-100, make([][]byte, 1))
	for k := range par {
		want := xxhash.New()
		hashValues(want, rec.Column(k+1), 100, n-100, nil)
		if par[k].Sum64() != want.Sum64() || seq[k].Sum64() != want.Sum64() {
			t.Errorf("column %d: parallel %016x, sequential %016x, want %016x", k+1, par[k].Sum64(), seq[k].Sum64(), want.Sum64())
		}
	}
}
