package shard

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// fileTemplate is what every file of one table shares and
// pqarrow.NewFileWriter would otherwise derive from the Arrow schema for
// each file: the Parquet schema and the footer's key-value metadata,
// ARROW:schema included (the IPC-serialized, base64-encoded Arrow schema
// that pqarrow.WithStoreSchema stores). A production scenario writes ten
// files, seven of them small, and for those this derivation is a
// noticeable share of the encoding (issue 17).
type fileTemplate struct {
	root *schema.GroupNode // read only: every file's writer shares it
	meta metadata.KeyValueMetadata
}

var templates sync.Map // *Table -> *fileTemplate

// template returns t's fileTemplate, derived once, or an error when t is
// not made of flat primitive columns only (writeFlat's domain). The
// Parquet schema of such columns depends on the writer properties only
// through settings every file shares (format version, root name and
// repetition), not on the per-column encodings that tell props apart.
func (t *Table) template(props *parquet.WriterProperties) (*fileTemplate, error) {
	if v, ok := templates.Load(t); ok {
		return v.(*fileTemplate), nil
	}
	sc := t.Schema()
	// pqarrow renames list elements in the Arrow schema it stores (and
	// writes nested columns' levels): flat tables have neither.
	if err := flatSchema(sc); err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	pqschema, err := pqarrow.ToParquet(sc, props, arrowProps)
	if err != nil {
		return nil, err
	}
	// As pqarrow.NewFileWriter builds it: the Arrow schema's own metadata,
	// then ARROW:schema.
	md := sc.Metadata()
	meta := make(metadata.KeyValueMetadata, 0, md.Len()+1)
	for i := 0; i < md.Len(); i++ {
		meta.Append(md.Keys()[i], md.Values()[i])
	}
	meta.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(sc, memory.DefaultAllocator)))
	v, _ := templates.LoadOrStore(t, &fileTemplate{root: pqschema.Root(), meta: meta})
	return v.(*fileTemplate), nil
}

// flatSchema reports an error unless every field of sc is a primitive
// (fixed-width) column: what writeFlat handles.
func flatSchema(sc *arrow.Schema) error {
	for _, f := range sc.Fields() {
		if _, ok := f.Type.(arrow.FixedWidthDataType); !ok {
			return fmt.Errorf("column %s is %s, not a flat primitive column", f.Name, f.Type)
		}
	}
	return nil
}

// writeFlat writes rec (at most MaxRowGroupRows rows, of t's schema) as
// one Parquet file with one row group: the bytes pqarrow.FileWriter's
// Write and Close produce, but from t's fileTemplate instead of a schema
// derived anew, and with each column's definition levels computed
// directly (what pqarrow's level builder computes for a flat column)
// instead of through its general nested-path machinery.
func writeFlat(w io.Writer, t *Table, tmpl *fileTemplate, rec arrow.RecordBatch, props *parquet.WriterProperties, lv *levels) error {
	// The writer may append to the metadata it is given: each file gets
	// its own copy of the (two-entry) slice.
	meta := append(metadata.KeyValueMetadata(nil), tmpl.meta...)
	pw, err := file.NewParquetWriterWithError(w, tmpl.root, file.WithWriterProps(props), file.WithWriteMetadata(meta))
	if err != nil {
		return err
	}
	if err := writeRowGroup(pw, t, rec, lv); err != nil {
		_ = pw.Close()
		return err
	}
	return pw.Close()
}

func writeRowGroup(pw *file.Writer, t *Table, rec arrow.RecordBatch, lv *levels) error {
	rgw, err := pw.AppendRowGroupChecked()
	if err != nil {
		return err
	}
	ctx := pqarrow.NewArrowWriteContext(context.TODO(), &arrowProps)
	n := int(rec.NumRows())
	for i, c := range t.Columns {
		cw, err := rgw.NextColumn()
		if err != nil {
			return err
		}
		if n == 0 {
			continue // pqarrow writes nothing into a column of no rows
		}
		arr := rec.Column(i)
		// pqarrow's levels for a flat column: none for a required one;
		// for a nullable one, 1 per present value and 0 per null, and the
		// leaf counts as nullable only when it has a null.
		var def []int16
		leafNullable := false
		if c.Nullable {
			def = lv.def(n)
			switch nulls := arr.NullN(); {
			case nulls == 0:
				fill(def, 1)
			case nulls == n:
				fill(def, 0)
				leafNullable = true
			default:
				bm, off := arr.NullBitmapBytes(), arr.Data().Offset()
				for j := range def {
					def[j] = int16(bm[(off+j)>>3] >> ((off + j) & 7) & 1)
				}
				leafNullable = true
			}
		}
		if err := pqarrow.WriteArrowToColumn(ctx, cw, arr, def, nil, leafNullable); err != nil {
			return err
		}
	}
	return rgw.Close()
}

func fill(s []int16, v int16) {
	for i := range s {
		s[i] = v
	}
}

// levels is an Encoder's scratch for definition levels.
type levels struct{ buf []int16 }

func (l *levels) def(n int) []int16 {
	if cap(l.buf) < n {
		l.buf = make([]int16, n)
	}
	return l.buf[:n]
}
