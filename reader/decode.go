package reader

import (
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/hydroshard/hydroshard/shard"
)

// Decode copies the columns of rec into dst, a pointer to a struct whose
// fields carry `col` tags: the shard.*Rows structs (shard.HydrosRows,
// shard.ConvergenceRows, ...). Every tagged field must find its column in
// rec with a matching type; columns without a field (derived columns,
// ScenarioColumn) are ignored. Fields get fresh slices (nothing aliases
// rec's buffers), in the writer's conventions: a NullInt32 or NullFloat64
// without nulls has a nil Valid, one whose rows are all null has nil
// Values and Valid; otherwise Values holds zero on null rows. A non-null
// field refuses a column with nulls.
func Decode(rec arrow.RecordBatch, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("reader: Decode into %T: want a non-nil pointer to a rows struct", dst)
	}
	v = v.Elem()
	st := v.Type()
	tagged := 0
	for i := range st.NumField() {
		name, ok := st.Field(i).Tag.Lookup("col")
		if !ok {
			continue
		}
		tagged++
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return fmt.Errorf("reader: Decode into %s: no column %q", st, name)
		}
		if err := decodeColumn(v.Field(i), rec.Column(idx[0])); err != nil {
			return fmt.Errorf("reader: Decode into %s, column %q: %w", st, name, err)
		}
	}
	if tagged == 0 {
		return fmt.Errorf("reader: Decode into %T: no field has a col tag", dst)
	}
	return nil
}

var (
	nullInt32Type   = reflect.TypeFor[shard.NullInt32]()
	nullFloat64Type = reflect.TypeFor[shard.NullFloat64]()
)

func decodeColumn(f reflect.Value, a arrow.Array) error {
	n := a.Len()
	nonNull := func() error {
		if a.NullN() > 0 {
			return fmt.Errorf("%d null rows, and the field %s cannot hold a null", a.NullN(), f.Type())
		}
		return nil
	}
	switch f.Type() {
	case nullInt32Type:
		col, ok := a.(*array.Int32)
		if !ok {
			return typeErr(f, a)
		}
		values, valid := nullable(col, n, col.Int32Values())
		f.Set(reflect.ValueOf(shard.NullInt32{Values: values, Valid: valid}))
		return nil
	case nullFloat64Type:
		col, ok := a.(*array.Float64)
		if !ok {
			return typeErr(f, a)
		}
		values, valid := nullable(col, n, col.Float64Values())
		f.Set(reflect.ValueOf(shard.NullFloat64{Values: values, Valid: valid}))
		return nil
	}
	if f.Kind() != reflect.Slice {
		return fmt.Errorf("field type %s is not a column type", f.Type())
	}
	if err := nonNull(); err != nil {
		return err
	}
	var out any
	switch col := a.(type) {
	case *array.Int8:
		out = clone(col.Int8Values())
	case *array.Int32:
		out = clone(col.Int32Values())
	case *array.Int64:
		out = clone(col.Int64Values())
	case *array.Float64:
		out = clone(col.Float64Values())
	case *array.Boolean:
		b := make([]bool, n)
		for i := range b {
			b[i] = col.Value(i)
		}
		out = b
	default:
		return typeErr(f, a)
	}
	ov := reflect.ValueOf(out)
	if ov.Type() != f.Type() {
		return typeErr(f, a)
	}
	f.Set(ov)
	return nil
}

func typeErr(f reflect.Value, a arrow.Array) error {
	return fmt.Errorf("an Arrow %s column does not decode into %s", a.DataType(), f.Type())
}

func clone[T any](s []T) []T { return append(make([]T, 0, len(s)), s...) }

// nullable decodes a column with nulls in the writer's conventions.
func nullable[T any](a arrow.Array, n int, raw []T) (values []T, valid []bool) {
	switch {
	case a.NullN() == 0:
		return clone(raw), nil
	case a.NullN() == n:
		return nil, nil
	}
	values = make([]T, n)
	valid = make([]bool, n)
	for i := range n {
		if a.IsValid(i) {
			values[i] = raw[i]
			valid[i] = true
		}
	}
	return values, valid
}

// newRows points target (a **XRows) at a new XRows and returns it.
func newRows(target any) any {
	p := reflect.ValueOf(target).Elem() // *XRows
	p.Set(reflect.New(p.Type().Elem()))
	return p.Interface()
}
