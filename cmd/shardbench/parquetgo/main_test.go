package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc64"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// testColumns is a table with hydroRow's columns: every third value of a
// nullable column is null, values vary per row and column.
func testColumns(n int) []column {
	typ := reflect.TypeFor[hydroRow]()
	var cols []column
	for f := range typ.NumField() {
		sf := typ.Field(f)
		c := column{name: strings.Split(sf.Tag.Get("parquet"), ",")[0], nullable: sf.Type.Kind() == reflect.Pointer}
		k := sf.Type.Kind()
		if c.nullable {
			k = sf.Type.Elem().Kind()
			c.valid = make([]byte, (n+7)/8)
		}
		for i := range n {
			if c.nullable && (i+f)%3 != 0 {
				c.valid[i/8] |= 1 << (i % 8)
			}
			switch k {
			case reflect.Int8:
				c.typ = typeInt8
				c.data = append(c.data, byte(int8(i%7-3)))
			case reflect.Int32:
				c.typ = typeInt32
				c.data = binary.LittleEndian.AppendUint32(c.data, uint32(int32(i*f-50)))
			case reflect.Float64:
				c.typ = typeFloat64
				c.data = binary.LittleEndian.AppendUint64(c.data, math.Float64bits(float64(i)*1.25-float64(f)))
			}
		}
		cols = append(cols, c)
	}
	return cols
}

// encodeColumns is the format's writer (shardbench has the real one).
func encodeColumns(n int, cols []column) []byte {
	b := append([]byte(colsMagic), make([]byte, 12)...)
	binary.LittleEndian.PutUint64(b[8:], uint64(n))
	binary.LittleEndian.PutUint32(b[16:], uint32(len(cols)))
	for _, c := range cols {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(c.name)))
		b = append(b, c.name...)
		nullable := byte(0)
		if c.nullable {
			nullable = 1
		}
		b = append(b, c.typ, nullable)
		b = append(b, c.valid...)
		b = append(b, c.data...)
	}
	return b
}

// columnsSum is the checksum's definition computed from the columns, a
// second implementation against rowsSum's.
func columnsSum(n int, cols []column) uint64 {
	var sum uint64
	for _, c := range cols {
		var buf []byte
		for i := range n {
			if !c.isValid(i) {
				buf = append(buf, 0)
				continue
			}
			var x uint64
			switch c.typ {
			case typeInt8:
				x = uint64(int64(int8(c.data[i])))
			case typeInt32:
				x = uint64(int64(int32(binary.LittleEndian.Uint32(c.data[4*i:]))))
			case typeFloat64:
				x = binary.LittleEndian.Uint64(c.data[8*i:])
			}
			buf = binary.LittleEndian.AppendUint64(append(buf, 1), x)
		}
		sum = crc64.Update(sum, crc64.MakeTable(crc64.ECMA), buf)
	}
	return sum
}

func writeInput(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadWriteReadBack loads two inputs, writes them and reads the files
// back: same rows, zstd, the row-group cap, no dictionary.
func TestLoadWriteReadBack(t *testing.T) {
	dir := t.TempDir()
	var inputs []string
	var want []uint64
	for i, n := range []int{250, 17} {
		cols := testColumns(n)
		inputs = append(inputs, writeInput(t, dir, fmt.Sprintf("in%d.cols", i), encodeColumns(n, cols)))
		want = append(want, columnsSum(n, cols))
	}
	var st state
	rows, sums, err := st.load(inputs, 3, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, []int{250, 17}) {
		t.Errorf("rows %v, want [250 17]", rows)
	}
	for i := range want {
		if s := fmt.Sprintf("%016x", want[i]); sums[i] != s {
			t.Errorf("input %d: sum %s, want %s (from the columns)", i, sums[i], s)
		}
	}
	if r := st.rows[0][3]; r.BlockID == nil || *r.BlockID != 3*1-50 || r.EvaporationM3s != nil || r.StageID != -50 || r.StorageBindingCode != 0 {
		t.Errorf("row 3: %+v; want block_id -47, evaporation_m3s null, stage_id -50, storage_binding_code 0", r)
	}
	for round := range 2 { // the writer is reused across rounds
		sub := filepath.Join(dir, fmt.Sprintf("r%d", round))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		paths := []string{filepath.Join(sub, "s0.parquet"), filepath.Join(sub, "s1.parquet")}
		sec, n, err := st.write(paths, int64(round)<<26) // without and with headroom
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		for i, p := range paths {
			got, err := parquet.ReadFile[hydroRow](p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, st.rows[i]) {
				t.Errorf("round %d, %s: the rows read back differ from the rows written", round, p)
			}
			fi, _ := os.Stat(p)
			size += fi.Size()
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			pf, err := parquet.OpenFile(f, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			md := pf.Metadata()
			if wantRG := (len(st.rows[i]) + 99) / 100; len(md.RowGroups) != wantRG {
				t.Errorf("%s: %d row groups, want %d (100 rows each at most)", p, len(md.RowGroups), wantRG)
			}
			for _, rg := range md.RowGroups {
				for _, cc := range rg.Columns {
					if cc.MetaData.Codec != format.Zstd || cc.MetaData.DictionaryPageOffset != 0 {
						t.Fatalf("%s: column %v: codec %v, dictionary page at %d; want zstd, none", p, cc.MetaData.PathInSchema, cc.MetaData.Codec, cc.MetaData.DictionaryPageOffset)
					}
				}
			}
			f.Close()
		}
		if sec <= 0 || n != size {
			t.Errorf("round %d: %v s, %d bytes; want > 0 and %d", round, sec, n, size)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	const n = 5
	good := encodeColumns(n, testColumns(n))
	mod := func(f func(cols []column) []column) []byte { return encodeColumns(n, f(testColumns(n))) }
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"renamed", mod(func(c []column) []column { c[3].name = "turbined"; return c }), "column 3 is turbined"},
		{"not nullable", mod(func(c []column) []column { c[1].nullable, c[1].valid = false, nil; return c }), "column block_id: nullable false"},
		{"int8 as int32", mod(func(c []column) []column { c[18].typ, c[18].data = typeInt32, make([]byte, 4*n); return c }), "want int32"},
		{"a column less", mod(func(c []column) []column { return c[:len(c)-1] }), "the input has 30 columns"},
		{"bad magic", append([]byte("SBCOLS02"), good[8:]...), "not a SBCOLS01 file"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"trailing bytes", append(good, 0), "1 bytes after the last column"},
	} {
		p := writeInput(t, dir, "in.cols", tc.in)
		var st state
		if _, _, err := st.load([]string{p}, 3, 100); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestServe drives the protocol as shardbench does.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	in := writeInput(t, dir, "in.cols", encodeColumns(40, testColumns(40)))
	out := filepath.Join(dir, "out.parquet")
	var reqs bytes.Buffer
	for _, r := range []any{
		map[string]any{"cmd": "info"},
		map[string]any{"cmd": "write", "paths": []string{out}},
		map[string]any{"cmd": "load", "zstd_level": 3, "max_rows_per_row_group": 100000, "inputs": []string{in}},
		map[string]any{"cmd": "write", "paths": []string{out, out}},
		map[string]any{"cmd": "write", "paths": []string{out}, "gc_headroom": 1 << 28},
		map[string]any{"cmd": "write", "paths": []string{out}}, // exists
		map[string]any{"cmd": "nope"},
	} {
		b, _ := json.Marshal(r)
		reqs.Write(append(b, '\n'))
	}
	var replies bytes.Buffer
	if err := serve(&reqs, &replies); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(replies.String(), "\n"), "\n")
	wants := []string{`"ok":true`, `write before load`, `"rows":[40]`, `2 paths for 1 loaded inputs`, `"bytes":`, `file exists`, `unknown command \"nope\"`}
	if len(lines) != len(wants) {
		t.Fatalf("%d replies, want %d:\n%s", len(lines), len(wants), replies.String())
	}
	for i, w := range wants {
		if !strings.Contains(lines[i], w) {
			t.Errorf("reply %d: %s, want %s", i, lines[i], w)
		}
	}
	var info struct {
		OK        bool   `json:"ok"`
		Go        string `json:"go"`
		ParquetGo string `json:"parquet_go"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &info); err != nil || !info.OK || !strings.HasPrefix(info.Go, "go") {
		t.Errorf("info reply %s: %v", lines[0], err)
	}
	t.Logf("info: %s", lines[0])
}
