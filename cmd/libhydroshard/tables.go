package main

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/hydroshard/hydroshard/shard"
)

// maxRows bounds a table's row count as the C caller gives it: the Go API
// takes slices, whose length is an int; a larger count is a caller's bug
// (an uninitialised variable), not a table.
const maxRows = math.MaxInt32

// slot says where one table's rows struct goes in a shard.Scenario. The
// table set is read from shard.Scenario.Tables, so a table added to the
// registry is reachable from C without a list kept here.
type slot struct {
	table  *shard.Table
	field  int            // index of the *XxxRows field in shard.Scenario
	rows   reflect.Type   // XxxRows
	fields map[string]int // column name -> index of its field in XxxRows
}

var slots = sync.OnceValue(func() map[string]slot {
	var full shard.Scenario
	sv := reflect.ValueOf(&full).Elem()
	byType := map[reflect.Type]int{}
	for i := 0; i < sv.NumField(); i++ {
		if f := sv.Field(i); f.Kind() == reflect.Pointer {
			f.Set(reflect.New(f.Type().Elem()))
			byType[f.Type()] = i
		}
	}
	out := map[string]slot{}
	for _, tr := range full.Tables() {
		typ := reflect.TypeOf(tr.Rows).Elem()
		fields := map[string]int{}
		for i := 0; i < typ.NumField(); i++ {
			if n := typ.Field(i).Tag.Get("col"); n != "" {
				fields[n] = i
			}
		}
		out[tr.Table.Entity] = slot{table: tr.Table, field: byType[reflect.PointerTo(typ)], rows: typ, fields: fields}
	}
	return out
})

// tableFor finds a simulation table by its entity name ("hydros").
func tableFor(entity string) (slot, error) {
	s, ok := slots()[entity]
	if !ok {
		names := make([]string, 0, len(slots()))
		for n := range slots() {
			names = append(names, n)
		}
		slices.Sort(names)
		return slot{}, fmt.Errorf("unknown table %q: the simulation tables are %s", entity, strings.Join(names, ", "))
	}
	return s, nil
}

// colErr is the Go API's error for a column that does not fit its table,
// so C callers read the same words as Go callers.
func colErr(t *shard.Table, col, format string, args ...any) error {
	return &shard.ColumnError{Table: t.Name, Column: col, What: fmt.Sprintf(format, args...)}
}

// given is one column a caller supplies, found in its table.
type given struct {
	col   shard.Column
	field int // index in the rows struct
}

// resolve checks a caller's column names against the table: each a
// column of it, not derived, not twice. It returns the columns in the
// caller's order; missing checks that none is left out.
func resolve(s slot, names []string) ([]given, error) {
	t := s.table
	out := make([]given, 0, len(names))
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("%s: column %d of the list is empty", t.Name, i+1)
		}
		c, ok := t.Column(n)
		if !ok {
			return nil, colErr(t, n, "no such column (docs/tables.md lists %s's columns)", t.Name)
		}
		if c.Derived {
			return nil, colErr(t, n, "is derived: the writer computes it, give the columns it comes from")
		}
		if seen[n] {
			return nil, colErr(t, n, "given twice")
		}
		seen[n] = true
		out = append(out, given{col: c, field: s.fields[n]})
	}
	return out, nil
}

// missing refuses a table whose given columns leave out one that is not
// nullable (a nullable one left out is all null).
func missing(s slot, cols []given) error {
	seen := map[string]bool{}
	for _, g := range cols {
		seen[g.col.Name] = true
	}
	for _, c := range s.table.Columns {
		if !c.Derived && !c.Nullable && !seen[c.Name] {
			return colErr(s.table, c.Name, "missing: the column is not nullable, give it")
		}
	}
	return nil
}

// cType names the C type a column's values must have.
func cType(c shard.Column) string {
	switch c.Type.ID() {
	case arrow.FLOAT64:
		return "double"
	case arrow.INT32:
		return "int32_t"
	case arrow.INT8:
		return "int8_t"
	case arrow.INT64:
		return "int64_t"
	case arrow.BOOL:
		return "uint8_t (0 or 1)"
	}
	return c.Type.String()
}

// pool keeps the copies of committed scenarios' columns for the next
// scenarios: a solver writes tables of the same lengths every scenario, so
// after the first few every copy reuses a buffer instead of allocating
// (the allocations, and the collections they cause, cost more than the
// copy).
type pool[T any] struct{ free map[int][][]T }

func (p *pool[T]) get(n int) []T {
	if l := p.free[n]; len(l) > 0 {
		s := l[len(l)-1]
		p.free[n] = l[:len(l)-1]
		return s
	}
	return make([]T, n)
}

func (p *pool[T]) put(s []T) {
	if p.free == nil {
		p.free = map[int][][]T{}
	}
	p.free[len(s)] = append(p.free[len(s)], s)
}

// buffers are a handle's pools, one per element type.
type buffers struct {
	f64  pool[float64]
	i32  pool[int32]
	i8   pool[int8]
	i64  pool[int64]
	bool pool[bool]
}

// copies says how plainTable takes the caller's arrays: borrowed (in
// place), or copied into buffers from bufs, each copy's return to its pool
// added to back (run once the writer is done with the scenario).
type copies struct {
	borrow bool
	bufs   *buffers
	back   *[]func()
}

// cSlice views n values of type T at p, or copies them into a buffer of
// pl.
func cSlice[T any](p unsafe.Pointer, n int, cp copies, pl *pool[T]) []T {
	s := unsafe.Slice((*T)(p), n)
	if cp.borrow {
		return s
	}
	dst := pl.get(n)
	copy(dst, s)
	*cp.back = append(*cp.back, func() { pl.put(dst) })
	return dst
}

// boolBytes views n bytes at p as bools: each must be 0 or 1 (any other
// byte is not a Go bool). what names the array in the error.
func boolBytes(p unsafe.Pointer, n int, cp copies, bad func(row int, b byte) error) ([]bool, error) {
	raw := unsafe.Slice((*byte)(p), n)
	for i, b := range raw {
		if b > 1 {
			return nil, bad(i, b)
		}
	}
	// Every byte is 0 or 1: a Go bool.
	return cSlice(p, n, cp, &cp.bufs.bool), nil
}

// plainTable builds a table's rows struct from C arrays: data[i] holds rows
// values of column cols[i], valid[i] (when valid is not nil and valid[i]
// is not nil) its validity byte-map.
func plainTable(s slot, rows int64, names []string, data, valid []unsafe.Pointer, cp copies) (reflect.Value, error) {
	t := s.table
	if rows < 0 || rows > maxRows {
		return reflect.Value{}, fmt.Errorf("%s: %d rows: want 0..%d", t.Name, rows, int64(maxRows))
	}
	cols, err := resolve(s, names)
	if err != nil {
		return reflect.Value{}, err
	}
	if err := missing(s, cols); err != nil {
		return reflect.Value{}, err
	}
	if len(data) != len(cols) {
		return reflect.Value{}, fmt.Errorf("%s: %d columns named, %d data pointers", t.Name, len(cols), len(data))
	}
	n := int(rows)
	rv := reflect.New(s.rows)
	for i, g := range cols {
		p := data[i]
		if p == nil && n > 0 {
			return reflect.Value{}, colErr(t, g.col.Name, "data pointer is NULL for %d rows", n)
		}
		var vp unsafe.Pointer
		if valid != nil {
			vp = valid[i]
		}
		if vp != nil && !g.col.Nullable {
			return reflect.Value{}, colErr(t, g.col.Name, "is not nullable: its validity pointer must be NULL")
		}
		var vb []bool
		if vp != nil && n > 0 {
			if vb, err = boolBytes(vp, n, cp, func(row int, b byte) error {
				return colErr(t, g.col.Name, "validity byte of row %d is %d: want 0 (null) or 1", row, b)
			}); err != nil {
				return reflect.Value{}, err
			}
		}
		var v any
		switch g.col.Type.ID() {
		case arrow.FLOAT64:
			vals := cSlice(p, n, cp, &cp.bufs.f64)
			if g.col.Nullable {
				v = shard.NullFloat64{Values: vals, Valid: vb}
			} else {
				v = vals
			}
		case arrow.INT32:
			vals := cSlice(p, n, cp, &cp.bufs.i32)
			if g.col.Nullable {
				v = shard.NullInt32{Values: vals, Valid: vb}
			} else {
				v = vals
			}
		case arrow.INT8:
			v = cSlice(p, n, cp, &cp.bufs.i8)
		case arrow.INT64:
			v = cSlice(p, n, cp, &cp.bufs.i64)
		case arrow.BOOL:
			b, err := boolBytes(p, n, cp, func(row int, b byte) error {
				return colErr(t, g.col.Name, "row %d is %d: a boolean column takes 0 or 1", row, b)
			})
			if err != nil {
				return reflect.Value{}, err
			}
			v = b
		default:
			return reflect.Value{}, colErr(t, g.col.Name, "type %s is not supported by the C API", g.col.Type)
		}
		if n == 0 {
			v = reflect.Zero(reflect.TypeOf(v)).Interface()
			if g.col.Nullable {
				// Zero rows: an empty, not a nil (all-null), column.
				switch g.col.Type.ID() {
				case arrow.FLOAT64:
					v = shard.NullFloat64{Values: []float64{}}
				case arrow.INT32:
					v = shard.NullInt32{Values: []int32{}}
				}
			}
		}
		rv.Elem().Field(g.field).Set(reflect.ValueOf(v))
	}
	return rv, nil
}

// arrowFormat is the C Data Interface format string of a column's type.
func arrowFormat(c shard.Column) string {
	switch c.Type.ID() {
	case arrow.FLOAT64:
		return "g"
	case arrow.INT32:
		return "i"
	case arrow.INT8:
		return "c"
	case arrow.INT64:
		return "l"
	case arrow.BOOL:
		return "b"
	}
	return "?"
}

// arrowTable builds a table's rows struct from an imported record batch,
// using the Arrow buffers in place. Validity bitmaps become []bool (the
// writer's input type), the one copy.
func arrowTable(s slot, rec arrow.RecordBatch) (reflect.Value, error) {
	t := s.table
	sc := rec.Schema()
	names := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		names[i] = f.Name
	}
	cols, err := resolve(s, names)
	if err != nil {
		return reflect.Value{}, err
	}
	if rec.NumRows() > maxRows {
		return reflect.Value{}, fmt.Errorf("%s: %d rows: want 0..%d", t.Name, rec.NumRows(), int64(maxRows))
	}
	for i, g := range cols {
		if dt := rec.Column(i).DataType(); !arrow.TypeEqual(dt, g.col.Type) {
			return reflect.Value{}, colErr(t, g.col.Name, "is %s (format %q): want %s (format %q, %s)", dt, formatOf(dt), g.col.Type, arrowFormat(g.col), cType(g.col))
		}
	}
	if err := missing(s, cols); err != nil {
		return reflect.Value{}, err
	}
	rv := reflect.New(s.rows)
	for i, g := range cols {
		col := rec.Column(i)
		if col.NullN() > 0 && !g.col.Nullable {
			return reflect.Value{}, colErr(t, g.col.Name, "has %d nulls: the column is not nullable", col.NullN())
		}
		var vb []bool
		if col.NullN() > 0 {
			vb = make([]bool, col.Len())
			for r := range vb {
				vb[r] = col.IsValid(r)
			}
		}
		var v any
		switch a := col.(type) {
		case *array.Float64:
			if g.col.Nullable {
				v = shard.NullFloat64{Values: nonNil(a.Float64Values()), Valid: vb}
			} else {
				v = a.Float64Values()
			}
		case *array.Int32:
			if g.col.Nullable {
				v = shard.NullInt32{Values: nonNil(a.Int32Values()), Valid: vb}
			} else {
				v = a.Int32Values()
			}
		case *array.Int8:
			v = a.Int8Values()
		case *array.Int64:
			v = a.Int64Values()
		case *array.Boolean:
			b := make([]bool, a.Len())
			for r := range b {
				b[r] = a.Value(r)
			}
			v = b
		default:
			return reflect.Value{}, colErr(t, g.col.Name, "type %s is not supported by the C API", col.DataType())
		}
		rv.Elem().Field(g.field).Set(reflect.ValueOf(v))
	}
	return rv, nil
}

// nonNil keeps a zero-row nullable column empty rather than nil (nil
// Values means every row is null).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// formatOf is the C Data Interface format of the simple types, for errors.
func formatOf(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.FLOAT64:
		return "g"
	case arrow.FLOAT32:
		return "f"
	case arrow.INT32:
		return "i"
	case arrow.INT8:
		return "c"
	case arrow.INT16:
		return "s"
	case arrow.INT64:
		return "l"
	case arrow.BOOL:
		return "b"
	case arrow.UINT32:
		return "I"
	}
	return dt.String()
}

// splitColumns splits a comma-separated column list, trimming spaces.
func splitColumns(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

var errNoTables = errors.New("no table was given for it (hydroshard_table or hydroshard_table_arrow first)")
