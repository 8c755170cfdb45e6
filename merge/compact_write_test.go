package merge

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestCompactVerificationCatchesBadWrite: a value altered between the
// partition file and the compacted file (compactTamper, as a bug in the
// copy would) is caught by the verification, and nothing is published.
func TestCompactVerificationCatchesBadWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(entity string, scenario int, rec arrow.RecordBatch) arrow.RecordBatch
		want   string
	}{
		{"value", func(entity string, scenario int, rec arrow.RecordBatch) arrow.RecordBatch {
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
		}, "differs from its partition file"},
		{"scenario_id", func(entity string, scenario int, rec arrow.RecordBatch) arrow.RecordBatch {
			if entity != "costs" || scenario != 2 {
				return nil
			}
			return replaceColumn(t, rec, 0, 1)
		}, "scenario"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := compactStudy(t, 3)
			compactTamper = tc.tamper
			defer func() { compactTamper = nil }()
			_, err := Compact(context.Background(), out, CompactOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was published") {
				t.Errorf("err = %v, want a verification failure (%q)", err, tc.want)
			}
			noCompaction(t, out)
		})
	}
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
