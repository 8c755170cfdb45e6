package shard

import (
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/hydroshard/hydroshard/manifest"
)

// CreatedBy is written into every Parquet footer, in the form other
// writers use ("parquet-cpp-arrow version 17.0.0"), so a reader can tell
// which release wrote a file. It holds the release (manifest.Version) and
// nothing that changes per build or with the clock, so the same input
// gives the same bytes on any rank count and any machine.
const CreatedBy = "hydroshard version " + manifest.Version

// MaxRowGroupRows caps the rows of one Parquet row group.
const MaxRowGroupRows = 100_000

// ZstdLevel is the zstd level of every data file.
const ZstdLevel = 3

// encOptions are the Parquet settings that trade speed against size;
// defaultEncOptions is what every file uses (tests measure the others).
type encOptions struct {
	pageSize int64
	stats    bool
	// split says which float64 columns may be written BYTE_STREAM_SPLIT
	// (nil: none); a file's mostly-zero columns stay PLAIN when sparse is
	// set (see floatLayout).
	split  func(Column) bool
	sparse bool
	dict   func(Column) bool
	batch  int64 // values per internal write batch; 0: arrow-go's default
}

var defaultEncOptions = encOptions{
	// 256 KiB pages: a production hydros column (28,800 x 8 B) is one page,
	// compressed as one zstd frame, 2.7% smaller than 64 KiB pages (which
	// were chosen when every page buffer was a fresh, zeroed allocation).
	pageSize: 256 << 10,
	stats:    true,
	// Every dense float column is split, including the Plain-marked ones
	// that PLAIN would make 6-20% smaller: zstd's search for their
	// recurring 8-byte values costs a third of the encoding speed. All
	// split: encoding in memory 1.14 of raw zstd instead of 0.86, files
	// +2.9% (HYDROSHARD_EXPLORE variants plainrecur vs new). The output
	// layer's CPU is taken from the solver's LP solves; the bytes only
	// from disk. Mostly-zero columns stay PLAIN (split, they are 1.3-2.1x
	// larger, and no faster).
	split:  func(Column) bool { return true },
	sparse: true,
	// No dictionary encoding, not even on the id/code columns docs/format.md
	// names: under zstd their runs of equal values compress as well plain
	// (+0.2% bytes on production hydros) and skipping the dictionary
	// encoder makes the encoding ~10-13% faster (HYDROSHARD_EXPLORE,
	// variants new vs nodict). Readers lose nothing: the statistics stay.
	dict: func(Column) bool { return false },
}

// newWriterProps returns the properties of a file of t whose columns i with
// bit i of split set are written BYTE_STREAM_SPLIT.
func newWriterProps(o encOptions, t *Table, split uint64) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(ZstdLevel),
		parquet.WithStats(o.stats),
		parquet.WithMaxRowGroupLength(MaxRowGroupRows),
		parquet.WithCreatedBy(CreatedBy),
		parquet.WithDictionaryDefault(false),
		parquet.WithDataPageVersion(parquet.DataPageV2),
		parquet.WithAllocator(pageAllocator),
		parquet.WithDataPageSize(o.pageSize),
	}
	if o.batch > 0 {
		opts = append(opts, parquet.WithBatchSize(o.batch))
	}
	for i, c := range t.Columns {
		if o.dict(c) {
			opts = append(opts, parquet.WithDictionaryFor(c.Name, true))
		} else if i < 64 && split&(1<<i) != 0 {
			opts = append(opts, parquet.WithEncodingFor(c.Name, parquet.Encodings.ByteStreamSplit))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// propsCache holds the writer properties of every (table, layout) seen:
// building them per file would cost more than the layout choice saves.
type propsCache struct {
	o encOptions
	m sync.Map // propsKey -> *parquet.WriterProperties
}

type propsKey struct {
	t      *Table
	split  uint64
	single bool
}

func (pc *propsCache) get(t *Table, split uint64) *parquet.WriterProperties {
	return pc.getFor(t, split, false)
}

// getFor is get; with single set, the properties write each column in
// one batch (see singleBatch).
func (pc *propsCache) getFor(t *Table, split uint64, single bool) *parquet.WriterProperties {
	k := propsKey{t, split, single}
	if p, ok := pc.m.Load(k); ok {
		return p.(*parquet.WriterProperties)
	}
	o := pc.o
	if single {
		o.batch = o.pageSize / 8
	}
	p, _ := pc.m.LoadOrStore(k, newWriterProps(o, t, split))
	return p.(*parquet.WriterProperties)
}

// singleBatch reports whether a file of n rows may have each column
// written in one batch instead of arrow-go's batches of 1024 values: when
// no column of n values (at most 8 bytes each) can fill a page, every
// column is one page either way, and the bytes are the same. One batch
// reserves each column's page buffer once instead of growing it batch by
// batch.
func singleBatch(o encOptions, n int64) bool {
	return o.batch == 0 && n*8 < o.pageSize
}

// floatLayout returns the float64 columns of rec to write
// BYTE_STREAM_SPLIT (bit i for column i): those o.split allows, unless at
// least 1/8 of their values are zero. zstd turns a run of zeros in PLAIN
// into one match, while split streams interleave them with the other
// values' bytes: production spillage (92% zeros) and evaporation (31%)
// are 1.3-1.6x larger split. The choice depends only on the values, so
// the same input still gives the same bytes.
func floatLayout(o encOptions, t *Table, rec arrow.RecordBatch) uint64 {
	if o.split == nil {
		return 0
	}
	var split uint64
	for i, c := range t.Columns {
		if i >= 64 || c.Type.ID() != arrow.FLOAT64 || o.dict(c) || !o.split(c) {
			continue
		}
		if o.sparse && mostlyZero(rec.Column(i).(*array.Float64).Float64Values()) {
			continue
		}
		split |= 1 << i
	}
	return split
}

// mostlyZero reports whether at least 1/8 of a sample of vals (every
// fourth value: a quarter of the cost of a full pass, the same verdict on
// production data) are zero.
func mostlyZero(vals []float64) bool {
	zeros, n := 0, 0
	for i := 0; i < len(vals); i += 4 {
		if vals[i] == 0 {
			zeros++
		}
		n++
	}
	return n > 0 && zeros*8 >= n
}

var (
	pageAllocator = newPoolAllocator()
	defaultProps  = &propsCache{o: defaultEncOptions}
	arrowProps    = pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
)

// binding maps one struct field to one column.
type binding struct {
	col   int
	field int
}

var (
	bindMu   sync.Mutex
	bindings = map[bindKey][]binding{}
)

type bindKey struct {
	table *Table
	typ   reflect.Type
}

// bind returns, for the rows struct type of t, which field feeds which
// column. It is computed once per type.
func bind(t *Table, typ reflect.Type) ([]binding, error) {
	bindMu.Lock()
	defer bindMu.Unlock()
	key := bindKey{t, typ}
	if b, ok := bindings[key]; ok {
		return b, nil
	}
	var out []binding
	for i := 0; i < typ.NumField(); i++ {
		name := typ.Field(i).Tag.Get("col")
		if name == "" {
			continue
		}
		idx := -1
		for j, c := range t.Columns {
			if c.Name == name {
				idx = j
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("shard: %s has no column %q (field %s.%s)", t.Name, name, typ.Name(), typ.Field(i).Name)
		}
		if want := goType(t.Columns[idx]); typ.Field(i).Type != want {
			return nil, fmt.Errorf("shard: %s.%s: field %s.%s is %s, want %s", t.Name, name, typ.Name(), typ.Field(i).Name, typ.Field(i).Type, want)
		}
		out = append(out, binding{col: idx, field: i})
	}
	bindings[key] = out
	return out, nil
}

// goType is the Go type a rows struct must use for column c.
func goType(c Column) reflect.Type {
	switch c.Type.ID() {
	case arrow.FLOAT64:
		if c.Nullable {
			return reflect.TypeFor[NullFloat64]()
		}
		return reflect.TypeFor[[]float64]()
	case arrow.INT32:
		if c.Nullable {
			return reflect.TypeFor[NullInt32]()
		}
		return reflect.TypeFor[[]int32]()
	case arrow.INT64:
		return reflect.TypeFor[[]int64]()
	case arrow.INT8:
		return reflect.TypeFor[[]int8]()
	case arrow.BOOL:
		return reflect.TypeFor[[]bool]()
	}
	return nil
}

// Encoder turns one table's rows into a Parquet stream. It keeps scratch
// buffers for derived columns and bitmaps across calls, so one Encoder per
// worker goroutine serves every scenario without new allocations of that
// kind. An Encoder is not safe for concurrent use.
type Encoder struct {
	f64s    [][]float64
	bytes   [][]byte
	nf, nb  int
	hours   []float64
	columns []arrow.Array
	levels  levels      // definition levels of nullable columns
	props   *propsCache // nil: defaultProps (tests set others)
}

// NewEncoder returns an Encoder.
func NewEncoder() *Encoder { return &Encoder{} }

func (e *Encoder) floats(n int) []float64 {
	if e.nf == len(e.f64s) {
		e.f64s = append(e.f64s, nil)
	}
	s := e.f64s[e.nf]
	if cap(s) < n {
		s = make([]float64, n)
	}
	s = s[:n]
	e.f64s[e.nf] = s
	e.nf++
	return s
}

func (e *Encoder) scratch(n int) []byte {
	if e.nb == len(e.bytes) {
		e.bytes = append(e.bytes, nil)
	}
	s := e.bytes[e.nb]
	if cap(s) < n {
		s = make([]byte, n)
	}
	s = s[:n]
	clear(s)
	e.bytes[e.nb] = s
	e.nb++
	return s
}

// ColumnError reports a supplied column that does not fit its table.
type ColumnError struct {
	Table, Column string
	What          string
}

func (e *ColumnError) Error() string {
	return fmt.Sprintf("%s.%s: %s", e.Table, e.Column, e.What)
}

// Encode writes tr as one Parquet file to w and returns the row count.
// Derived columns are computed from the supplied ones and p.
func (e *Encoder) Encode(w io.Writer, tr TableRows, p Params) (int64, error) {
	return e.encode(w, tr, p, true)
}

// encode is Encode; with direct false every file goes through
// pqarrow.FileWriter (tests compare the two).
func (e *Encoder) encode(w io.Writer, tr TableRows, p Params, direct bool) (int64, error) {
	rec, err := e.Record(tr, p)
	if err != nil {
		return 0, err
	}
	defer rec.Release()
	// writerOnly hides any Close method: pqarrow closes a sink that has one,
	// and the caller owns w.
	pc := defaultProps
	if e.props != nil {
		pc = e.props
	}
	split := floatLayout(pc.o, tr.Table, rec)
	props := pc.get(tr.Table, split)
	if direct && rec.NumRows() <= MaxRowGroupRows {
		// One row group of flat columns: the bytes pqarrow.FileWriter
		// writes below, without deriving the file's schema and metadata
		// anew, and in one batch per column when that changes nothing
		// (reuse.go).
		if tmpl, err := tr.Table.template(props); err == nil {
			props = pc.getFor(tr.Table, split, singleBatch(pc.o, rec.NumRows()))
			if err := writeFlat(writerOnly{w}, tr.Table, tmpl, rec, props, &e.levels); err != nil {
				return 0, fmt.Errorf("%s: encoding: %w", tr.Table.Name, err)
			}
			return rec.NumRows(), nil
		}
	}
	fw, err := pqarrow.NewFileWriter(tr.Table.Schema(), writerOnly{w}, props, arrowProps)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", tr.Table.Name, err)
	}
	if err := fw.Write(rec); err != nil {
		_ = fw.Close()
		return 0, fmt.Errorf("%s: encoding: %w", tr.Table.Name, err)
	}
	if err := fw.Close(); err != nil {
		return 0, fmt.Errorf("%s: encoding: %w", tr.Table.Name, err)
	}
	return rec.NumRows(), nil
}

type writerOnly struct{ io.Writer }

// Record builds an Arrow record over tr's slices (no copy of supplied
// columns) plus freshly computed derived columns. The record is valid until
// the next call on e and while the caller's slices are unchanged.
func (e *Encoder) Record(tr TableRows, p Params) (arrow.RecordBatch, error) {
	t := tr.Table
	src, n, err := sources(tr)
	if err != nil {
		return nil, err
	}
	e.nf, e.nb = 0, 0
	floats := map[string][]float64{}
	var stage []int32
	var block NullInt32
	var lineIDs []int32
	for i, c := range t.Columns {
		if c.Derived {
			continue
		}
		switch x := src[i].Interface().(type) {
		case []float64:
			floats[c.Name] = x
		case []int32:
			switch c.Name {
			case "stage_id":
				stage = x
			case "line_id":
				lineIDs = x
			}
		case NullInt32:
			if c.Name == "block_id" {
				block = x
			}
		}
	}
	var h []float64
	blockHours := func() error {
		if cap(e.hours) < n {
			e.hours = make([]float64, n)
		}
		h = e.hours[:n]
		return hours(h, t, stage, block, p)
	}
	// hours also checks every row's (stage, block) against the case:
	// for a simulation table it runs even when no column needs the hours
	// (costs, inflow_lags, violations/generic), so that no row off the
	// case's grid is written.
	if t.Entity != "" && stage != nil {
		if err := blockHours(); err != nil {
			return nil, err
		}
	}
	for i, c := range t.Columns {
		if !c.Derived {
			continue
		}
		if h == nil && (c.derive.op == opEnergy || c.derive.op == opVolume) {
			if err := blockHours(); err != nil {
				return nil, err
			}
		}
		dst := e.floats(n)
		if err := c.derive.compute(dst, t, func(name string) []float64 { return floats[name] }, h, lineIDs, p); err != nil {
			return nil, err
		}
		floats[c.Name] = dst
		_ = i
	}

	e.columns = e.columns[:0]
	for i, c := range t.Columns {
		var arr arrow.Array
		if c.Derived {
			arr = wrapFixed(c.Type, n, nil, 0, arrow.Float64Traits.CastToBytes(floats[c.Name]))
		} else {
			arr, err = e.wrap(t, c, src[i].Interface(), n)
			if err != nil {
				return nil, err
			}
		}
		e.columns = append(e.columns, arr)
	}
	rec := array.NewRecordBatch(t.Schema(), e.columns, int64(n))
	for _, a := range e.columns {
		a.Release()
	}
	return rec, nil
}

// CheckRows checks what can be checked of tr without the case: a field
// for every supplied column, and every column as long as the first.
// CheckValues checks the values against the case; the encoder checks the
// rest (nulls in a non-nullable column, a (stage, block) the case does
// not have) while encoding.
func CheckRows(tr TableRows) error {
	_, _, err := sources(tr)
	return err
}

// sources binds tr's struct fields to the table's supplied columns
// (indexed like t.Columns; derived columns are invalid Values) and checks
// their lengths; n is the row count.
func sources(tr TableRows) (src []reflect.Value, n int, err error) {
	t := tr.Table
	v := reflect.ValueOf(tr.Rows)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, 0, fmt.Errorf("shard: %s: rows must be a non-nil pointer to a rows struct", t.Name)
	}
	v = v.Elem()
	binds, err := bind(t, v.Type())
	if err != nil {
		return nil, 0, err
	}
	src = make([]reflect.Value, len(t.Columns))
	for _, b := range binds {
		src[b.col] = v.Field(b.field)
	}
	for i, c := range t.Columns {
		if !c.Derived && !src[i].IsValid() {
			return nil, 0, &ColumnError{Table: t.Name, Column: c.Name, What: "no field supplies this column"}
		}
	}
	// Row count: the first column (stage_id or iteration) is never nullable.
	n = src[0].Len()
	for i, c := range t.Columns {
		if c.Derived {
			continue
		}
		if err := checkLen(t, c, src[i], n); err != nil {
			return nil, 0, err
		}
	}
	return src, n, nil
}

func checkLen(t *Table, c Column, v reflect.Value, n int) error {
	bad := func(what string, got int) error {
		return &ColumnError{Table: t.Name, Column: c.Name, What: fmt.Sprintf("%s has %d rows, want %d (the length of %s)", what, got, n, t.Columns[0].Name)}
	}
	if v.Kind() == reflect.Slice {
		if v.Len() == 0 && n > 0 {
			// Left nil: say so, rather than "has 0 rows".
			return &ColumnError{Table: t.Name, Column: c.Name, What: fmt.Sprintf("column is missing (its field is empty), want %d rows (the length of %s)", n, t.Columns[0].Name)}
		}
		if v.Len() != n {
			return bad("column", v.Len())
		}
		return nil
	}
	// A Null* struct: Values and Valid may each be nil (all null, all valid).
	for _, f := range []struct {
		name string
		v    reflect.Value
	}{{"values", v.FieldByName("Values")}, {"validity", v.FieldByName("Valid")}} {
		if !f.v.IsNil() && f.v.Len() != n {
			return bad(f.name, f.v.Len())
		}
	}
	return nil
}

func wrapFixed(t arrow.DataType, n int, validity []byte, nulls int, values []byte) arrow.Array {
	var vb *memory.Buffer
	if validity != nil {
		vb = memory.NewBufferBytes(validity)
	}
	data := array.NewData(t, n, []*memory.Buffer{vb, memory.NewBufferBytes(values)}, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// validity packs valid into a bitmap; with Values nil every row is null.
func (e *Encoder) validity(valid []bool, allNull bool, n int) ([]byte, int) {
	if allNull {
		return e.scratch(int(bitutil.BytesForBits(int64(n)))), n
	}
	if valid == nil {
		return nil, 0
	}
	bm := e.scratch(int(bitutil.BytesForBits(int64(n))))
	nulls := 0
	for i, ok := range valid {
		if ok {
			bitutil.SetBit(bm, i)
		} else {
			nulls++
		}
	}
	return bm, nulls
}

func (e *Encoder) wrap(t *Table, c Column, v any, n int) (arrow.Array, error) {
	notNull := func(nulls int) error {
		if nulls > 0 && !c.Nullable {
			return &ColumnError{Table: t.Name, Column: c.Name, What: "column is not nullable but has nulls"}
		}
		return nil
	}
	switch x := v.(type) {
	case []float64:
		return wrapFixed(c.Type, n, nil, 0, arrow.Float64Traits.CastToBytes(x)), nil
	case []int32:
		return wrapFixed(c.Type, n, nil, 0, arrow.Int32Traits.CastToBytes(x)), nil
	case []int64:
		return wrapFixed(c.Type, n, nil, 0, arrow.Int64Traits.CastToBytes(x)), nil
	case []int8:
		return wrapFixed(c.Type, n, nil, 0, arrow.Int8Traits.CastToBytes(x)), nil
	case []bool:
		bits := e.scratch(int(bitutil.BytesForBits(int64(n))))
		for i, b := range x {
			if b {
				bitutil.SetBit(bits, i)
			}
		}
		return wrapFixed(c.Type, n, nil, 0, bits), nil
	case NullInt32:
		bm, nulls := e.validity(x.Valid, x.Values == nil, n)
		if err := notNull(nulls); err != nil {
			return nil, err
		}
		vals := x.Values
		if vals == nil {
			vals = make([]int32, n)
		}
		return wrapFixed(c.Type, n, bm, nulls, arrow.Int32Traits.CastToBytes(vals)), nil
	case NullFloat64:
		bm, nulls := e.validity(x.Valid, x.Values == nil, n)
		if err := notNull(nulls); err != nil {
			return nil, err
		}
		vals := x.Values
		if vals == nil {
			vals = e.floats(n)
			clear(vals)
		}
		return wrapFixed(c.Type, n, bm, nulls, arrow.Float64Traits.CastToBytes(vals)), nil
	}
	return nil, &ColumnError{Table: t.Name, Column: c.Name, What: fmt.Sprintf("unsupported Go type %T", v)}
}

// ColumnBytes returns copies of the record's column buffers (validity
// bitmaps and values): the bytes the writer compresses, which is what a
// fair raw-compression baseline compresses too. They are copies because
// a Record's derived columns live in the Encoder's scratch, which the next
// call overwrites.
func ColumnBytes(rec arrow.RecordBatch) [][]byte {
	var out [][]byte
	for _, col := range rec.Columns() {
		for _, buf := range col.Data().Buffers() {
			if buf != nil && buf.Len() > 0 {
				out = append(out, append([]byte(nil), buf.Bytes()...))
			}
		}
	}
	return out
}
