package layout

import (
	"errors"
	"testing"
)

func TestCompactPart(t *testing.T) {
	for _, tc := range []struct {
		entity string
		n      int
		want   string
	}{
		{"hydros", 0, "compacted/hydros/part-00000.parquet"},
		{"violations/generic", 12, "compacted/violations/generic/part-00012.parquet"},
		{"costs", MaxCompactParts, "compacted/costs/part-99999.parquet"},
	} {
		got := CompactPart(tc.entity, tc.n)
		if got != tc.want {
			t.Errorf("CompactPart(%q, %d) = %q, want %q", tc.entity, tc.n, got, tc.want)
		}
		entity, n, err := ParseCompactPart(got)
		if err != nil || entity != tc.entity || n != tc.n {
			t.Errorf("ParseCompactPart(%q) = %q, %d, %v", got, entity, n, err)
		}
	}
	for _, bad := range []string{
		"",
		"compacted/hydros/part-0.parquet",
		"compacted/hydros/part-000000.parquet",
		"compacted/hydros/part-0000a.parquet",
		"compacted/hydros/part-00000.parquet.tmp",
		"compacted/../hydros/part-00000.parquet",
		"compacted/a/b/c/part-00000.parquet",
		"compacted/part-00000.parquet",
		"simulation/hydros/part-00000.parquet",
		"/compacted/hydros/part-00000.parquet",
		"compacted/hy dros/part-00000.parquet",
		"compacted/hydros/_manifest.json",
	} {
		if _, _, err := ParseCompactPart(bad); !errors.Is(err, ErrName) {
			t.Errorf("ParseCompactPart(%q): err = %v, want ErrName", bad, err)
		}
	}
	if got := CompactTemp(7, 2, CompactPart("violations/generic", 3)); got != "_shards/tmp/compact.7.2.violations-generic-part-00003.parquet.tmp" || CheckTemp(got) != nil {
		t.Errorf("CompactTemp = %q (CheckTemp: %v)", got, CheckTemp(got))
	}
}

func FuzzParseCompactPart(f *testing.F) {
	f.Add("compacted/hydros/part-00000.parquet")
	f.Add("compacted/violations/generic/part-00001.parquet")
	f.Fuzz(func(t *testing.T, rel string) {
		entity, n, err := ParseCompactPart(rel)
		if err != nil {
			return
		}
		if got := CompactPart(entity, n); got != rel {
			t.Fatalf("ParseCompactPart(%q) = %q, %d; CompactPart gives %q", rel, entity, n, got)
		}
	})
}
