package shard_test

import (
	"bytes"
	"reflect"
	"sync"
	"testing"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// rowsVariant returns a copy of the rows struct rows points to, with f
// applied to each field (a slice, NullInt32 or NullFloat64) by name.
func rowsVariant(rows any, f func(name string, v reflect.Value)) any {
	src := reflect.ValueOf(rows).Elem()
	dst := reflect.New(src.Type())
	dst.Elem().Set(src)
	for i := 0; i < src.NumField(); i++ {
		if src.Type().Field(i).Tag.Get("col") == "" {
			continue
		}
		f(src.Type().Field(i).Tag.Get("col"), dst.Elem().Field(i))
	}
	return dst.Interface()
}

// head keeps the first k rows of every column.
func head(k int) func(string, reflect.Value) {
	return func(_ string, v reflect.Value) {
		if v.Kind() == reflect.Slice {
			v.Set(v.Slice(0, min(k, v.Len())))
			return
		}
		for _, sub := range []string{"Values", "Valid"} {
			if s := v.FieldByName(sub); !s.IsNil() {
				s.Set(s.Slice(0, min(k, s.Len())))
			}
		}
	}
}

// nulls makes every nullable float column all null (allNull) or null in
// every third row, the first row included.
func nulls(allNull bool) func(string, reflect.Value) {
	return func(_ string, v reflect.Value) {
		if v.Type() != reflect.TypeFor[shard.NullFloat64]() {
			return
		}
		vals := v.FieldByName("Values")
		if allNull {
			vals.Set(reflect.Zero(vals.Type()))
			v.FieldByName("Valid").Set(reflect.Zero(v.FieldByName("Valid").Type()))
			return
		}
		valid := make([]bool, vals.Len())
		for i := range valid {
			valid[i] = i%3 != 0
		}
		v.FieldByName("Valid").Set(reflect.ValueOf(valid))
	}
}

type rowsVariantFunc struct {
	name string
	f    func(string, reflect.Value)
}

// sameBytes encodes every table of sc with each variant of its rows,
// through Encode and through pqarrow.FileWriter, and reports files that
// differ.
func sameBytes(t *testing.T, c *manifest.Case, sc *shard.Scenario, variants []rowsVariantFunc) {
	t.Helper()
	direct, ref := shard.NewEncoder(), shard.NewEncoder()
	for _, tr := range sc.Tables() {
		for _, v := range variants {
			tr := tr
			if v.f != nil {
				tr = shard.TableRows{Table: tr.Table, Rows: rowsVariant(tr.Rows, v.f)}
			}
			var a, b bytes.Buffer
			na, errA := direct.Encode(&a, tr, c)
			nb, errB := ref.EncodeViaFileWriter(&b, tr, c)
			if errA != nil || errB != nil || na != nb {
				t.Fatalf("scenario %d %s %s: Encode %d rows, %v; FileWriter %d rows, %v", sc.ID, tr.Table.Name, v.name, na, errA, nb, errB)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("scenario %d %s %s (%d rows): Encode wrote %d bytes, FileWriter %d, not the same bytes", sc.ID, tr.Table.Name, v.name, na, a.Len(), b.Len())
			}
		}
	}
}

// TestDirectWriterMatchesFileWriter: Encode writes a file of one row
// group without pqarrow.FileWriter, and a file whose columns cannot fill
// a page in one batch (reuse.go, singleBatch); every file must still be
// the bytes pqarrow.FileWriter writes with arrow-go's default batches:
// production tables, their first rows (down to none), nullable columns
// with some or every value null, and XL's (multi-page columns, around
// the one-batch limit of 32,768 rows).
func TestDirectWriterMatchesFileWriter(t *testing.T) {
	c := synth.Production()
	for s := range 2 {
		sc, err := synth.Generate(c, 1, s)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, c, sc, []rowsVariantFunc{
			{"full", nil},
			{"rows0", head(0)},
			{"rows1", head(1)},
			{"rows1000", head(1000)},
			{"allnull", nulls(true)},
			{"somenull", nulls(false)},
		})
	}
	if testing.Short() {
		return
	}
	xl := synth.XL()
	sc, err := synth.Generate(xl, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, xl, sc, []rowsVariantFunc{
		{"full", nil},
		{"rows32767", head(32767)},
		{"rows32768", head(32768)},
		{"somenull", nulls(false)},
	})
}

// TestDirectWriterConcurrent: encoders on several goroutines share each
// table's template and properties (run with -race).
func TestDirectWriterConcurrent(t *testing.T) {
	c := synth.Production()
	sc, err := synth.Generate(c, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	tables := sc.Tables()
	want := make([][]byte, len(tables))
	ref := shard.NewEncoder()
	for i, tr := range tables {
		var b bytes.Buffer
		if _, err := ref.EncodeViaFileWriter(&b, tr, c); err != nil {
			t.Fatal(err)
		}
		want[i] = b.Bytes()
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			enc := shard.NewEncoder()
			for k := range len(tables) {
				i := (k + g) % len(tables)
				var b bytes.Buffer
				if _, err := enc.Encode(&b, tables[i], c); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(b.Bytes(), want[i]) {
					t.Errorf("goroutine %d: %s: not the bytes pqarrow.FileWriter writes", g, tables[i].Table.Name)
				}
			}
		})
	}
	wg.Wait()
}
