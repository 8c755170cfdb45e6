package merge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// Writing and verifying a compacted file (see compact.go for the protocol).

// compactWriterProps are the Parquet settings of a compacted file: the
// shard package's where it exports them (zstd level, row group cap,
// created-by), its documented choices otherwise (statistics on, data page
// v2, 256 KiB pages, no dictionary, BYTE_STREAM_SPLIT floats).
func compactWriterProps(schema *arrow.Schema, rgRows int64) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(shard.ZstdLevel),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(rgRows),
		parquet.WithCreatedBy(shard.CreatedBy),
		parquet.WithDictionaryDefault(false),
		parquet.WithDataPageVersion(parquet.DataPageV2),
		parquet.WithDataPageSize(256 << 10),
	}
	for _, f := range schema.Fields() {
		if f.Type.ID() == arrow.FLOAT64 {
			opts = append(opts, parquet.WithEncodingFor(f.Name, parquet.Encodings.ByteStreamSplit))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// compactSchema is a partition file's schema with scenario_id (Int32, not
// null) first.
func compactSchema(src *arrow.Schema) *arrow.Schema {
	fields := append([]arrow.Field{{Name: "scenario_id", Type: arrow.PrimitiveTypes.Int32}}, src.Fields()...)
	// The partition's key-value metadata, less the stored Arrow schema
	// (the writer stores the new one).
	var keys, vals []string
	md := src.Metadata()
	for i, k := range md.Keys() {
		if !strings.HasPrefix(k, "ARROW:") {
			keys, vals = append(keys, k), append(vals, md.Values()[i])
		}
	}
	if len(keys) == 0 {
		return arrow.NewSchema(fields, nil)
	}
	m := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fields, &m)
}

// openParquet opens a Parquet file held in memory (a partition file).
func openParquet(data []byte) (*file.Reader, *pqarrow.FileReader, error) {
	return openParquetAt(bytes.NewReader(data), false)
}

// openParquetAt opens a Parquet file read at offsets (its footer first,
// then a row group's column chunks as they are decoded), decoding columns
// in parallel when parallel is set.
func openParquetAt(r parquet.ReaderAtSeeker, parallel bool) (*file.Reader, *pqarrow.FileReader, error) {
	pf, err := file.NewParquetReader(r)
	if err != nil {
		return nil, nil, err
	}
	// Batches of at most a row group: the reader allocates (and the Go
	// runtime zeroes) a whole batch of every column, which for a small
	// partition file would be mostly unused.
	batch := int64(1)
	for g := 0; g < pf.NumRowGroups(); g++ {
		batch = max(batch, pf.MetaData().RowGroup(g).NumRows())
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: min(batch, 64<<10), Parallel: parallel}, memory.DefaultAllocator)
	if err != nil {
		_ = pf.Close()
		return nil, nil, err
	}
	return pf, fr, nil
}

// readSource reads one partition file, checked against the index.
func readSource(fsys vfs.FS, out string, s source) ([]byte, error) {
	data, err := vfs.ReadFile(fsys, layout.Join(out, s.rel), s.bytes)
	var tooLarge *vfs.TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("larger than the %d bytes simulation/_files.csv says: run merge-shards verify", s.bytes)}
	}
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != s.bytes {
		return nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("%d bytes, simulation/_files.csv says %d: run merge-shards verify", len(data), s.bytes)}
	}
	if got := manifest.FormatXXH64(xxhash.Sum64(data)); got != s.xxh64 {
		return nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("xxh64 %s, simulation/_files.csv says %s: the file was altered after the merge; run merge-shards verify --full", got, s.xxh64)}
	}
	return data, nil
}

// openSource reads one partition file (readSource), opens it as Parquet
// and checks it: its compacted schema must equal want, the one the other
// files of its table gave (nil for the first), and its row count the
// index's. It returns the file's bytes, its readers and its compacted
// schema; the caller closes pf.
func openSource(fsys vfs.FS, out string, s source, want *arrow.Schema) (data []byte, pf *file.Reader, fr *pqarrow.FileReader, schema *arrow.Schema, err error) {
	if data, err = readSource(fsys, out, s); err != nil {
		return nil, nil, nil, nil, err
	}
	if pf, fr, err = openParquet(data); err != nil {
		return nil, nil, nil, nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("not a readable Parquet file: %v", err)}
	}
	src, err := fr.Schema()
	if err != nil {
		_ = pf.Close()
		return nil, nil, nil, nil, &CompactDamageError{Path: s.rel, Detail: err.Error()}
	}
	if schema = compactSchema(src); want != nil && !schema.Equal(want) {
		_ = pf.Close()
		return nil, nil, nil, nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("schema %s differs from the other %s files' %s", src, s.entity, want)}
	}
	if pf.NumRows() != s.rows {
		_ = pf.Close()
		return nil, nil, nil, nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("%d rows, simulation/_files.csv says %d", pf.NumRows(), s.rows)}
	}
	return data, pf, fr, schema, nil
}

// compactReEncode, set by tests only, forces CompactOptions.ReEncode.
var compactReEncode bool

// writePart writes p's temp file (durably): every scenario's partition
// file in order, with scenario_id, row groups cut at scenario boundaries.
// It copies the partition files' pages (writePageCopy, pagecopy.go) and
// falls back to decoding and re-encoding them (writeReEncode) when one
// does not qualify.
func writePart(ctx context.Context, fsys vfs.FS, out string, p *compactPart, opts CompactOptions) error {
	temp := p.temp
	if !opts.ReEncode && !compactReEncode {
		w, err := vfs.WriteNewSync(fsys, layout.Join(out, temp), func(w io.Writer) error {
			return writePageCopy(ctx, fsys, out, p, opts, w)
		})
		var no *noPageCopyError
		if !errors.As(err, &no) {
			if err != nil {
				p.temp = "" // WriteNewSync removed it
				return err
			}
			p.written = w
			return nil
		}
		// WriteNewSync removed the partial file: write it again, the slow
		// way, from the start.
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "re-encoding %s: %v\n", p.final, no)
		}
		clear(p.want)
	}
	return writeReEncode(ctx, fsys, out, p, opts)
}

// writeReEncode writes p's temp file by decoding every partition file and
// encoding its rows again: slower than copying pages, but it makes no
// assumption about how the partition files were encoded.
func writeReEncode(ctx context.Context, fsys vfs.FS, out string, p *compactPart, opts CompactOptions) error {
	var schema *arrow.Schema
	var fw *pqarrow.FileWriter
	var rgRows int64
	scratch := make([]byte, 0, 64<<10)
	w, err := vfs.WriteNewSync(fsys, layout.Join(out, p.temp), func(w io.Writer) error {
		for _, s := range p.sources {
			if err := ctx.Err(); err != nil {
				return err
			}
			_, pf, fr, src, err := openSource(fsys, out, s, schema)
			if err != nil {
				return err
			}
			if schema == nil {
				schema = src
				props := compactWriterProps(schema, opts.RowGroupRows)
				fw, err = pqarrow.NewFileWriter(schema, writerOnly{w}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
				if err != nil {
					_ = pf.Close()
					return err
				}
			}
			// A new row group when this scenario would overflow the current
			// one: row groups end at scenario boundaries (unless one
			// scenario alone is larger: the writer splits it).
			if rgRows > 0 && rgRows+s.rows > opts.RowGroupRows {
				if err := fw.NewBufferedRowGroupChecked(); err != nil {
					_ = pf.Close()
					return err
				}
				rgRows = 0
			}
			sums, err := copyScenario(ctx, fr, fw, schema, s, &scratch)
			_ = pf.Close()
			if err != nil {
				return err
			}
			p.want[s.scenario] = sums
			rgRows += s.rows
			if rgRows > opts.RowGroupRows {
				rgRows %= opts.RowGroupRows
			}
		}
		if fw == nil {
			return errors.New("no partition files")
		}
		return fw.Close()
	})
	if err != nil {
		p.temp = "" // WriteNewSync removed it
		return err
	}
	p.written = w
	return nil
}

// copyScenario appends one partition file's rows, with scenario_id, to fw
// (none when fw is nil) and returns their rows and per-column hashes.
func copyScenario(ctx context.Context, fr *pqarrow.FileReader, fw *pqarrow.FileWriter, schema *arrow.Schema, s source, scratch *[]byte) (*scenarioSums, error) {
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return nil, &CompactDamageError{Path: s.rel, Detail: err.Error()}
	}
	defer rr.Release()
	ncol := schema.NumFields() - 1
	digests := make([]*xxhash.Digest, ncol)
	for i := range digests {
		digests[i] = xxhash.New()
	}
	sums := &scenarioSums{cols: make([]uint64, ncol)}
	for rr.Next() {
		rec := rr.RecordBatch()
		n := int(rec.NumRows())
		if fw != nil {
			if err := writeScenarioRecord(fw, schema, s, rec); err != nil {
				return nil, err
			}
		}
		for j := 0; j < ncol; j++ {
			*scratch = hashValues(digests[j], rec.Column(j), 0, n, *scratch)
		}
		sums.rows += int64(n)
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("decoding: %v", err)}
	}
	if sums.rows != s.rows {
		return nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("decoded %d rows, simulation/_files.csv says %d", sums.rows, s.rows)}
	}
	for j, d := range digests {
		sums.cols[j] = d.Sum64()
	}
	return sums, nil
}

// writeScenarioRecord writes rec, a batch of s's rows, to fw with
// scenario_id first.
func writeScenarioRecord(fw *pqarrow.FileWriter, schema *arrow.Schema, s source, rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	b := array.NewInt32Builder(memory.DefaultAllocator)
	b.Reserve(n)
	for i := 0; i < n; i++ {
		b.UnsafeAppend(int32(s.scenario))
	}
	sid := b.NewArray()
	b.Release()
	cols := append([]arrow.Array{sid}, rec.Columns()...)
	out := array.NewRecordBatch(schema, cols, int64(n))
	if compactTamper.record != nil {
		if r := compactTamper.record(s.entity, s.scenario, out); r != nil {
			out.Release()
			out = r
		}
	}
	err := fw.WriteBuffered(out)
	out.Release()
	sid.Release()
	return err
}

// compactTamper, set by tests only, alters what goes into a compacted
// file: a bug in the copy, which the verification must catch.
var compactTamper compactTampers

// compactTampers are compactTamper's hooks (nil: none).
type compactTampers struct {
	// record may return a replacement for a record on its way to a
	// re-encoded file (nil: unchanged).
	record func(entity string, scenario int, rec arrow.RecordBatch) arrow.RecordBatch
	// chunk may return replacement bytes for a partition file's column
	// chunk (col counts scenario_id) on its way to a page-copied file.
	chunk func(entity string, scenario, col int, chunk []byte) []byte
	// ids may change the scenario_id values of a page-copied row group.
	ids func(entity string, rg int, ids []int32)
	// stats may change the scenario_id statistics of a page-copied row
	// group.
	stats func(entity string, rg int, st *metadata.EncodedStatistics)
}

// hashValues feeds rows [from, to) of a to d in a canonical form (a null
// flag, then the value's little-endian bytes) and returns the scratch
// buffer for reuse. The fixed-width types take a loop of their own (this
// runs over every value twice: partition and compacted side); any other
// type goes through its text form.
func hashValues(d *xxhash.Digest, a arrow.Array, from, to int, b []byte) []byte {
	b = b[:0]
	nulls := a.NullN() > 0
	switch c := a.(type) {
	case *array.Float64:
		v := c.Float64Values()
		for i := from; i < to; i++ {
			if nulls && c.IsNull(i) {
				b = append(b, 0)
			} else {
				b = binary.LittleEndian.AppendUint64(append(b, 1), math.Float64bits(v[i]))
			}
			if len(b) >= 32<<10 {
				_, _ = d.Write(b)
				b = b[:0]
			}
		}
	case *array.Int32:
		v := c.Int32Values()
		for i := from; i < to; i++ {
			if nulls && c.IsNull(i) {
				b = append(b, 0)
			} else {
				b = binary.LittleEndian.AppendUint32(append(b, 1), uint32(v[i]))
			}
			if len(b) >= 32<<10 {
				_, _ = d.Write(b)
				b = b[:0]
			}
		}
	case *array.Int64:
		v := c.Int64Values()
		for i := from; i < to; i++ {
			if nulls && c.IsNull(i) {
				b = append(b, 0)
			} else {
				b = binary.LittleEndian.AppendUint64(append(b, 1), uint64(v[i]))
			}
			if len(b) >= 32<<10 {
				_, _ = d.Write(b)
				b = b[:0]
			}
		}
	default:
		for i := from; i < to; i++ {
			if a.IsNull(i) {
				b = append(b, 0)
			} else {
				b = append(b, 1)
				switch c := a.(type) {
				case *array.Int8:
					b = append(b, byte(c.Value(i)))
				case *array.Boolean:
					if c.Value(i) {
						b = append(b, 1)
					} else {
						b = append(b, 0)
					}
				default:
					v := a.ValueStr(i)
					b = binary.AppendUvarint(b, uint64(len(v)))
					b = append(b, v...)
				}
			}
			if len(b) >= 32<<10 {
				_, _ = d.Write(b)
				b = b[:0]
			}
		}
	}
	_, _ = d.Write(b)
	return b[:0]
}

// hashColumns feeds rows [from, to) of rec's columns first.. to
// digests (one a column), in parallel when there is enough to hash (the
// verification hashes every value of the compacted file), with one
// scratch buffer a goroutine.
func hashColumns(digests []*xxhash.Digest, rec arrow.RecordBatch, first, from, to int, scratch [][]byte) {
	workers := min(len(scratch), len(digests))
	if workers <= 1 || (to-from)*len(digests) < 1<<15 {
		for k, d := range digests {
			scratch[0] = hashValues(d, rec.Column(first+k), from, to, scratch[0])
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(digests); k += workers {
				scratch[w] = hashValues(digests[k], rec.Column(first+k), from, to, scratch[w])
			}
		}()
	}
	wg.Wait()
}

// verifyPart reads the compacted file at name back and compares it with
// what was written (size and XXH64) and with the partition files (rows per
// scenario, every column's hash per scenario, scenario_id in order and in
// each row group's statistics).
func verifyPart(ctx context.Context, fsys vfs.FS, out string, p *compactPart, name string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("verifying %s (staged as %s) against the partition files: %s; nothing was published", p.final, name, fmt.Sprintf(format, a...))
	}
	// Streamed: the whole file is hashed, then decoded a row group at a
	// time through a ReaderAt; it is never held in memory.
	got, err := vfs.HashFile(fsys, name)
	if err != nil {
		return bad("%v", err)
	}
	if got != p.written {
		return bad("read back %d bytes xxh64 %016x, wrote %d bytes xxh64 %016x", got.Bytes, got.XXH64, p.written.Bytes, p.written.XXH64)
	}
	ra, size, closer, err := vfs.OpenReaderAt(fsys, name)
	if err != nil {
		return bad("%v", err)
	}
	defer closer.Close()
	if size != p.written.Bytes {
		return bad("%d bytes when reopened, wrote %d", size, p.written.Bytes)
	}
	pf, fr, err := openParquetAt(io.NewSectionReader(ra, 0, size), true)
	if err != nil {
		return bad("%v", err)
	}
	defer pf.Close()
	p.rgs = nil
	var (
		cur     = -1
		digests []*xxhash.Digest
		rows    int64
		seen    int
		scratch = make([][]byte, runtime.GOMAXPROCS(0))
	)
	finish := func() error {
		if cur < 0 {
			return nil
		}
		want := p.want[cur]
		if want == nil {
			return bad("scenario %d is not in this file's partitions", cur)
		}
		if rows != want.rows {
			return bad("scenario %d has %d rows, its partition file %d", cur, rows, want.rows)
		}
		for j, d := range digests {
			if got := d.Sum64(); got != want.cols[j] {
				return bad("scenario %d column %q differs from its partition file's (value hash %016x, want %016x)", cur, fr.Manifest.Fields[j+1].Field.Name, got, want.cols[j])
			}
		}
		seen++
		return nil
	}
	for g := 0; g < pf.NumRowGroups(); g++ {
		rr, err := fr.GetRecordReader(ctx, nil, []int{g})
		if err != nil {
			return bad("%v", err)
		}
		rg := CompactRowGroup{FirstScenario: -1}
		for rr.Next() {
			rec := rr.RecordBatch()
			sid, ok := rec.Column(0).(*array.Int32)
			if !ok || sid.NullN() != 0 {
				rr.Release()
				return bad("column 0 is not a scenario_id Int32 without nulls")
			}
			n := sid.Len()
			for i := 0; i < n; {
				s := int(sid.Value(i))
				j := i + 1
				for j < n && int(sid.Value(j)) == s {
					j++
				}
				if s != cur {
					if s < cur {
						rr.Release()
						return bad("scenario_id %d after %d: rows out of order", s, cur)
					}
					if err := finish(); err != nil {
						rr.Release()
						return err
					}
					cur, rows = s, 0
					digests = make([]*xxhash.Digest, rec.NumCols()-1)
					for k := range digests {
						digests[k] = xxhash.New()
					}
				}
				if rg.FirstScenario < 0 {
					rg.FirstScenario = s
				}
				rg.LastScenario = s
				hashColumns(digests, rec, 1, i, j, scratch)
				rows += int64(j - i)
				i = j
			}
			rg.Rows += int64(n)
		}
		err = rr.Err()
		rr.Release()
		if err != nil && !errors.Is(err, io.EOF) {
			return bad("%v", err)
		}
		if rg.Rows == 0 || rg.Rows != pf.MetaData().RowGroup(g).NumRows() {
			return bad("row group %d: read %d rows, its metadata says %d", g, rg.Rows, pf.MetaData().RowGroup(g).NumRows())
		}
		// Its scenario_id statistics must span exactly what it holds, so
		// a filter on scenario_id can skip it.
		if err := checkScenarioStats(pf, g, rg); err != nil {
			return bad("%v", err)
		}
		p.rgs = append(p.rgs, rg)
	}
	if err := finish(); err != nil {
		return err
	}
	// A scenario whose partition file has no rows has none here either.
	nonEmpty := 0
	for _, s := range p.sources {
		if p.want[s.scenario].rows > 0 {
			nonEmpty++
		}
	}
	if seen != nonEmpty {
		return bad("%d scenarios with rows, want %d", seen, nonEmpty)
	}
	return nil
}

// checkScenarioStats checks that row group g's scenario_id statistics are
// there and span exactly its scenarios, so a filter can skip it.
func checkScenarioStats(pf *file.Reader, g int, want CompactRowGroup) error {
	cc, err := pf.MetaData().RowGroup(g).ColumnChunk(0)
	if err != nil {
		return err
	}
	st, err := cc.Statistics()
	if err != nil {
		return err
	}
	is, ok := st.(*metadata.Int32Statistics)
	if !ok || !is.HasMinMax() {
		return fmt.Errorf("row group %d has no scenario_id statistics", g)
	}
	if int(is.Min()) != want.FirstScenario || int(is.Max()) != want.LastScenario {
		return fmt.Errorf("row group %d: scenario_id statistics %d-%d, want %d-%d", g, is.Min(), is.Max(), want.FirstScenario, want.LastScenario)
	}
	return nil
}

// record is p's entry of the compaction manifest.
func (p *compactPart) record() CompactFile {
	f := CompactFile{
		Path:          p.final,
		Entity:        p.entity,
		FirstScenario: p.sources[0].scenario,
		LastScenario:  p.sources[len(p.sources)-1].scenario,
		Scenarios:     len(p.sources),
		Bytes:         p.written.Bytes,
		XXH64:         manifest.FormatXXH64(p.written.XXH64),
		RowGroups:     p.rgs,
	}
	h := xxhash.New()
	var b []byte
	for _, s := range p.sources {
		f.Rows += s.rows
		f.SourceBytes += s.bytes
		sums := p.want[s.scenario]
		b = binary.LittleEndian.AppendUint64(b[:0], uint64(s.scenario))
		b = binary.LittleEndian.AppendUint64(b, uint64(sums.rows))
		for _, c := range sums.cols {
			b = binary.LittleEndian.AppendUint64(b, c)
		}
		_, _ = h.Write(b)
	}
	f.ContentXXH64 = manifest.FormatXXH64(h.Sum64())
	return f
}

// writerOnly hides any Close method of the sink: pqarrow closes a sink
// that has one, and vfs.WriteNew owns the file.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }
