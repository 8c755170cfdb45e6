package merge

// Page copy: the fast way to write a compacted file.
//
// The partition files are written with zstd, data page v2, no dictionary,
// statistics on and no page index (shard/encode.go). Every page of such a
// file carries its own header (encoding, value and null counts, sizes), so
// a compacted row group's column chunk can be the concatenation of the
// partition files' column chunk bytes, copied as they are, without
// decompressing or re-encoding a value. Only three things are made:
//
//   - the scenario_id chunk of each row group, encoded by arrow-go in a
//     one-column file in memory (zstd turns its runs of one value into a
//     few bytes) whose chunk bytes are copied in the same way;
//   - each chunk's statistics, the merge of the partition chunks' ones
//     (min/max, null counts), and its encodings (a float column is PLAIN
//     in one partition file and BYTE_STREAM_SPLIT in another: the
//     encoding is per page, the chunk lists them all);
//   - the footer, built with arrow-go's metadata builders, with the
//     schema and key-value metadata (ARROW:schema) that pqarrow writes for
//     the compacted schema.
//
// A partition file that does not qualify (a dictionary page, a page index
// or bloom filter, another codec, a column without statistics, a row group
// larger than the compacted row group cap, a Parquet schema other than the
// compacted one's) makes the whole compacted file fall back to decoding and
// re-encoding (writeReEncode): it is slower but makes no assumption about
// the pages. Either way the file is verified against the decoded partition
// files (verifyPart) before it is published, and both ways are
// deterministic: the same partition files and options give the same bytes.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/hydroshard/hydroshard/vfs"
)

// parquetMagic begins and ends every Parquet file.
const parquetMagic = "PAR1"

// noPageCopyError says why a partition file's pages cannot be copied as
// they are: writePart then re-encodes the compacted file.
type noPageCopyError struct {
	path   string
	reason string
}

func (e *noPageCopyError) Error() string {
	return fmt.Sprintf("%s: pages not copied as they are: %s", e.path, e.reason)
}

// pcTemplate is what a page-copied file takes from arrow-go for the
// compacted schema: the Parquet schema and the key-value metadata pqarrow
// writes for it (ARROW:schema included), read from an empty file written
// in memory.
type pcTemplate struct {
	arrow  *arrow.Schema
	schema *schema.Schema
	kv     metadata.KeyValueMetadata
	props  *parquet.WriterProperties
	// sid* write the scenario_id chunks.
	sidSchema *arrow.Schema
	sidProps  *parquet.WriterProperties
}

func newPCTemplate(sch *arrow.Schema, rgRows int64) (*pcTemplate, error) {
	props := compactWriterProps(sch, rgRows)
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(sch, &buf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, err
	}
	if err := fw.Close(); err != nil {
		return nil, err
	}
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	md := pf.MetaData()
	sid := arrow.NewSchema([]arrow.Field{sch.Field(0)}, nil)
	return &pcTemplate{
		arrow:     sch,
		schema:    md.Schema,
		kv:        md.KeyValueMetadata(),
		props:     props,
		sidSchema: sid,
		sidProps: parquet.NewWriterProperties(
			parquet.WithCompression(props.CompressionFor("scenario_id")),
			parquet.WithCompressionLevel(props.CompressionLevelFor("scenario_id")),
			parquet.WithStats(true),
			parquet.WithMaxRowGroupLength(1<<62),
			parquet.WithCreatedBy(props.CreatedBy()),
			parquet.WithDictionaryDefault(false),
			parquet.WithDataPageVersion(parquet.DataPageV2),
			parquet.WithDataPageSize(1<<20),
		),
	}, nil
}

// pcSource is a partition file read whole (they are small), checked
// against the index, with its footer.
type pcSource struct {
	s    source
	data []byte
	md   *metadata.FileMetaData
}

// pcUnit is one row group of a partition file: the unit a compacted row
// group is made of.
type pcUnit struct {
	src  *pcSource
	g    int
	rows int64
}

// pcChunk is a compacted column chunk as its footer entry describes it.
type pcChunk struct {
	offset, csize, usize, values int64
	stats                        metadata.EncodedStatistics
	encodings                    []parquet.Encoding
	pages                        map[parquet.Encoding]int32 // data pages per encoding
}

type pcRowGroup struct {
	rows int64
	cols []pcChunk
}

// qualifyPageCopy returns why src's pages cannot be copied into a file of
// t's schema ("" when they can).
func qualifyPageCopy(src *pcSource, t *pcTemplate, rgRows int64) string {
	md := src.md
	if md.FileDecryptor != nil || md.IsSetEncryptionAlgorithm() {
		return "encrypted"
	}
	if n := md.Schema.NumColumns(); n+1 != t.schema.NumColumns() {
		return fmt.Sprintf("%d columns, the compacted schema %d", n, t.schema.NumColumns())
	}
	for j := 0; j < md.Schema.NumColumns(); j++ {
		a, b := md.Schema.Column(j), t.schema.Column(j+1)
		if a.Path() != b.Path() || a.PhysicalType() != b.PhysicalType() || a.TypeLength() != b.TypeLength() ||
			a.MaxDefinitionLevel() != b.MaxDefinitionLevel() || a.MaxRepetitionLevel() != b.MaxRepetitionLevel() ||
			a.ConvertedType() != b.ConvertedType() || !a.LogicalType().Equals(b.LogicalType()) {
			return fmt.Sprintf("column %s differs from the compacted schema's", a.Path())
		}
	}
	end := int64(len(src.data)) - 8 // the footer length and magic
	for g := 0; g < md.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		if rg.NumRows() > rgRows {
			return fmt.Sprintf("row group %d has %d rows, more than a compacted row group's %d", g, rg.NumRows(), rgRows)
		}
		for j := 0; j < rg.NumColumns(); j++ {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				return err.Error()
			}
			col := t.schema.Column(j + 1)
			thr := md.RowGroups[g].Columns[j]
			switch {
			case cc.FilePath() != "":
				return "a column chunk in another file"
			case cc.Compression() != t.props.CompressionFor(col.Path()):
				return fmt.Sprintf("column %s is %s, not %s", col.Path(), cc.Compression(), t.props.CompressionFor(col.Path()))
			case cc.HasDictionaryPage():
				return fmt.Sprintf("column %s has a dictionary page", col.Path())
			case cc.HasIndexPage() || thr.IsSetColumnIndexOffset() || thr.IsSetOffsetIndexOffset():
				return fmt.Sprintf("column %s has a page index", col.Path())
			case cc.BloomFilterOffset() > 0 || thr.MetaData.IsSetBloomFilterOffset():
				return fmt.Sprintf("column %s has a bloom filter", col.Path())
			case cc.DataPageOffset() < int64(len(parquetMagic)) || cc.TotalCompressedSize() <= 0 || cc.DataPageOffset()+cc.TotalCompressedSize() > end:
				return fmt.Sprintf("column %s chunk at %d+%d is outside the data", col.Path(), cc.DataPageOffset(), cc.TotalCompressedSize())
			}
			for _, e := range cc.Encodings() {
				if e == parquet.Encodings.PlainDict || e == parquet.Encodings.RLEDict {
					return fmt.Sprintf("column %s is dictionary-encoded", col.Path())
				}
			}
			for _, es := range thr.MetaData.EncodingStats {
				if pt := int32(es.PageType); pt != pageTypeDataPage && pt != pageTypeDataPageV2 {
					return fmt.Sprintf("column %s has pages of type %d", col.Path(), pt)
				}
			}
			if len(thr.MetaData.EncodingStats) == 0 {
				return fmt.Sprintf("column %s lists no page encodings", col.Path())
			}
			st, err := cc.Statistics()
			if err != nil || st == nil || !st.HasNullCount() || (!st.HasMinMax() && st.NullCount() != cc.NumValues()) {
				return fmt.Sprintf("column %s has no statistics", col.Path())
			}
		}
	}
	return ""
}

// Page types of parquet.thrift (format.PageType, an internal package).
const (
	pageTypeDataPage   = 0
	pageTypeDataPageV2 = 3
)

// countingWriter counts the bytes written, so chunk offsets are known.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writePageCopy writes p's file to w by copying the partition files'
// pages (see the top of this file). It returns a *noPageCopyError, having
// written part of the file, when a partition file does not qualify.
func writePageCopy(ctx context.Context, fsys vfs.FS, out string, p *compactPart, opts CompactOptions, w io.Writer) error {
	cw := &countingWriter{w: w}
	if _, err := io.WriteString(cw, parquetMagic); err != nil {
		return err
	}
	var (
		t         *pcTemplate
		group     []pcUnit
		groupRows int64
		rgs       []pcRowGroup
	)
	// The partition files are decoded and hashed (the verification's
	// "want" side) by up to GOMAXPROCS goroutines while their pages are
	// copied; every one has ended when this function returns.
	var (
		hashing sync.WaitGroup
		slots   = make(chan []byte, max(1, runtime.GOMAXPROCS(0)))
		mu      sync.Mutex
		hashErr error
	)
	for range cap(slots) {
		slots <- make([]byte, 0, 64<<10)
	}
	defer hashing.Wait()
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return hashErr
	}
	flush := func() error {
		if groupRows > 0 {
			rg, err := writePCRowGroup(cw, t, p.entity, len(rgs), group, groupRows)
			if err != nil {
				return err
			}
			rgs = append(rgs, rg)
		}
		clear(group) // drop the partition files' bytes
		group, groupRows = group[:0], 0
		return nil
	}
	for _, s := range p.sources {
		if err := ctx.Err(); err != nil {
			return err
		}
		var want *arrow.Schema
		if t != nil {
			want = t.arrow
		}
		data, pf, fr, src, err := openSource(fsys, out, s, want)
		if err != nil {
			return err
		}
		if t == nil {
			if t, err = newPCTemplate(src, opts.RowGroupRows); err != nil {
				_ = pf.Close()
				return err
			}
		}
		ps := &pcSource{s: s, data: data, md: pf.MetaData()}
		if why := qualifyPageCopy(ps, t, opts.RowGroupRows); why != "" {
			_ = pf.Close()
			return &noPageCopyError{path: s.rel, reason: why}
		}
		// The values the verification compares the compacted file with,
		// decoded from the partition file.
		scratch := <-slots
		hashing.Add(1)
		go func() {
			defer hashing.Done()
			sums, err := copyScenario(ctx, fr, nil, t.arrow, s, &scratch)
			_ = pf.Close()
			slots <- scratch
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if hashErr == nil {
					hashErr = err
				}
				return
			}
			p.want[s.scenario] = sums
		}()
		if err := failed(); err != nil {
			return err
		}
		// Row groups end at scenario boundaries, unless one scenario
		// alone is larger than a row group: then at its partition file's
		// row group boundaries.
		if groupRows > 0 && groupRows+s.rows > opts.RowGroupRows {
			if err := flush(); err != nil {
				return err
			}
		}
		for g := 0; g < ps.md.NumRowGroups(); g++ {
			n := ps.md.RowGroup(g).NumRows()
			if n == 0 {
				continue
			}
			if groupRows > 0 && groupRows+n > opts.RowGroupRows {
				if err := flush(); err != nil {
					return err
				}
			}
			group = append(group, pcUnit{src: ps, g: g, rows: n})
			groupRows += n
		}
	}
	if t == nil {
		return fmt.Errorf("no partition files")
	}
	if err := flush(); err != nil {
		return err
	}
	hashing.Wait()
	if err := failed(); err != nil {
		return err
	}
	return writePCFooter(cw, t, p.entity, rgs)
}

// writePCRowGroup writes one compacted row group: the scenario_id chunk,
// then each column's chunks of every unit, in order.
func writePCRowGroup(cw *countingWriter, t *pcTemplate, entity string, ordinal int, units []pcUnit, rows int64) (pcRowGroup, error) {
	rg := pcRowGroup{rows: rows, cols: make([]pcChunk, t.schema.NumColumns())}
	ids := make([]int32, 0, rows)
	for _, u := range units {
		for range u.rows {
			ids = append(ids, int32(u.src.s.scenario))
		}
	}
	if compactTamper.ids != nil {
		compactTamper.ids(entity, ordinal, ids)
	}
	sid, err := scenarioIDChunk(t, ids)
	if err != nil {
		return rg, err
	}
	if compactTamper.stats != nil {
		compactTamper.stats(entity, ordinal, &sid.stats)
	}
	sid.offset += cw.n
	if _, err := cw.Write(sid.data); err != nil {
		return rg, err
	}
	rg.cols[0] = sid.pcChunk
	for j := 1; j < len(rg.cols); j++ {
		descr := t.schema.Column(j)
		st := metadata.NewStatistics(descr, memory.DefaultAllocator)
		c := pcChunk{offset: cw.n, pages: map[parquet.Encoding]int32{}}
		for _, u := range units {
			cc, err := u.src.md.RowGroup(u.g).ColumnChunk(j - 1)
			if err != nil {
				return rg, err
			}
			off, size := cc.DataPageOffset(), cc.TotalCompressedSize()
			chunk := u.src.data[off : off+size]
			if compactTamper.chunk != nil {
				chunk = compactTamper.chunk(entity, u.src.s.scenario, j, chunk)
			}
			if _, err := cw.Write(chunk); err != nil {
				return rg, err
			}
			c.csize += int64(len(chunk))
			c.usize += cc.TotalUncompressedSize()
			c.values += cc.NumValues()
			for _, e := range cc.Encodings() {
				if !slices.Contains(c.encodings, e) {
					c.encodings = append(c.encodings, e)
				}
			}
			for _, es := range u.src.md.RowGroups[u.g].Columns[j-1].MetaData.EncodingStats {
				c.pages[parquet.Encoding(es.Encoding)] += es.Count
			}
			cs, err := cc.Statistics()
			if err != nil {
				return rg, err
			}
			st.Merge(cs)
		}
		slices.Sort(c.encodings)
		if c.stats, err = st.Encode(); err != nil {
			return rg, err
		}
		c.stats.Signed = descr.SortOrder() == schema.SortSIGNED
		rg.cols[j] = c
	}
	return rg, nil
}

// sidChunk is an encoded scenario_id chunk.
type sidChunk struct {
	pcChunk
	data []byte
}

// scenarioIDChunk encodes ids as a scenario_id column chunk (offset
// relative to its first byte): arrow-go writes a one-column file in
// memory, whose chunk bytes and footer entry are taken.
func scenarioIDChunk(t *pcTemplate, ids []int32) (sidChunk, error) {
	var out sidChunk
	b := array.NewInt32Builder(memory.DefaultAllocator)
	b.AppendValues(ids, nil)
	a := b.NewArray()
	b.Release()
	defer a.Release()
	rec := array.NewRecordBatch(t.sidSchema, []arrow.Array{a}, int64(len(ids)))
	defer rec.Release()
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(t.sidSchema, &buf, t.sidProps, pqarrow.DefaultWriterProps())
	if err != nil {
		return out, err
	}
	if err := fw.Write(rec); err != nil {
		return out, err
	}
	if err := fw.Close(); err != nil {
		return out, err
	}
	data := buf.Bytes()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return out, err
	}
	defer pf.Close()
	md := pf.MetaData()
	if md.NumRowGroups() != 1 {
		return out, fmt.Errorf("scenario_id chunk: %d row groups", md.NumRowGroups())
	}
	cc, err := md.RowGroup(0).ColumnChunk(0)
	if err != nil {
		return out, err
	}
	if cc.HasDictionaryPage() {
		return out, fmt.Errorf("scenario_id chunk has a dictionary page")
	}
	st, err := cc.Statistics()
	if err != nil {
		return out, err
	}
	out.stats, err = st.Encode()
	if err != nil {
		return out, err
	}
	out.stats.Signed = true
	off, size := cc.DataPageOffset(), cc.TotalCompressedSize()
	out.data = data[off : off+size]
	out.csize, out.usize, out.values = size, cc.TotalUncompressedSize(), cc.NumValues()
	out.encodings = slices.Sorted(slices.Values(cc.Encodings()))
	out.pages = map[parquet.Encoding]int32{}
	for _, es := range md.RowGroups[0].Columns[0].MetaData.EncodingStats {
		out.pages[parquet.Encoding(es.Encoding)] += es.Count
	}
	return out, nil
}

// writePCFooter writes the footer of a page-copied file: its metadata,
// length and the closing magic.
func writePCFooter(cw *countingWriter, t *pcTemplate, entity string, rgs []pcRowGroup) error {
	fmb := metadata.NewFileMetadataBuilder(t.schema, t.props, slices.Clone(t.kv))
	for i, rg := range rgs {
		rgb := fmb.AppendRowGroup()
		rgb.SetNumRows(int(rg.rows))
		for _, c := range rg.cols {
			ccb := rgb.NextColumnChunk()
			if c.stats.IsSet() {
				ccb.SetStats(c.stats)
			}
			err := ccb.Finish(metadata.ChunkMetaInfo{
				NumValues:        c.values,
				IndexPageOffset:  -1,
				DataPageOffset:   c.offset,
				CompressedSize:   c.csize,
				UncompressedSize: c.usize,
			}, false, false, metadata.EncodingStats{DataEncodingStats: c.pages})
			if err != nil {
				return err
			}
			// Finish lists the encoding the properties name and the page
			// encodings in map order: list what the pages use, in order,
			// so that the footer is deterministic.
			md := ccb.Contents().MetaData
			setEncodings(&md.Encodings, c.encodings)
			es := md.EncodingStats
			sort.Slice(es, func(a, b int) bool {
				if es[a].PageType != es[b].PageType {
					return es[a].PageType < es[b].PageType
				}
				return es[a].Encoding < es[b].Encoding
			})
		}
		if err := rgb.Finish(0, int16(i)); err != nil {
			return err
		}
	}
	md, err := fmb.Finish()
	if err != nil {
		return err
	}
	start := cw.n
	if _, err := md.WriteTo(cw, nil); err != nil {
		return err
	}
	var tail [8]byte
	n := cw.n - start
	if n > 1<<31-1 {
		return fmt.Errorf("%s: footer of %d bytes", entity, n)
	}
	tail[0], tail[1], tail[2], tail[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	copy(tail[4:], parquetMagic)
	_, err = cw.Write(tail[:])
	return err
}

// setEncodings sets a footer's encoding list (of arrow-go's internal
// thrift type) to encs.
func setEncodings[E ~int64](dst *[]E, encs []parquet.Encoding) {
	s := (*dst)[:0]
	for _, e := range encs {
		s = append(s, E(e))
	}
	*dst = s
}
