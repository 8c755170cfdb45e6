package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"math"
	"os"
	"reflect"
	"strings"
)

// The input file format, written by shardbench (cmd/shardbench/parquetgo.go,
// writeColumns) once per scenario, before any timing: the hydros table's
// Arrow columns, as they are, little-endian.
//
//	file   = magic "SBCOLS01", rows uint64, columns uint32, column * columns
//	column = name length uint16, name, type uint8 (1 int8, 2 int32, 3 float64),
//	         nullable uint8 (0 or 1),
//	         validity ceil(rows/8) bytes, only when nullable: bit i%8 of byte
//	         i/8 (least significant first) is set when row i is not null,
//	         values rows * width bytes (whatever bytes for a null row)
//
// Nothing follows the last column.
const colsMagic = "SBCOLS01"

// Column types of the format.
const (
	typeInt8    = 1
	typeInt32   = 2
	typeFloat64 = 3
)

var typeWidth = map[byte]int{typeInt8: 1, typeInt32: 4, typeFloat64: 8}

// column is one decoded column; valid is nil when the column is not nullable.
type column struct {
	name     string
	typ      byte
	nullable bool
	valid    []byte
	data     []byte
}

func (c *column) isValid(i int) bool { return c.valid == nil || c.valid[i/8]&(1<<(i%8)) != 0 }

func readColumns(path string) (rows int, cols []column, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, err
	}
	rows, cols, err = decodeColumns(b)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, cols, nil
}

var errShort = errors.New("truncated")

func decodeColumns(b []byte) (int, []column, error) {
	if len(b) < len(colsMagic)+12 || string(b[:len(colsMagic)]) != colsMagic {
		return 0, nil, fmt.Errorf("not a %s file", colsMagic)
	}
	b = b[len(colsMagic):]
	n64, ncols := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint32(b[8:])
	b = b[12:]
	if n64 > 1<<31 {
		return 0, nil, fmt.Errorf("%d rows", n64)
	}
	n := int(n64)
	take := func(k int) ([]byte, error) {
		if k > len(b) {
			return nil, errShort
		}
		p := b[:k]
		b = b[k:]
		return p, nil
	}
	var cols []column
	for range ncols {
		h, err := take(2)
		if err != nil {
			return 0, nil, err
		}
		name, err := take(int(binary.LittleEndian.Uint16(h)))
		if err != nil {
			return 0, nil, err
		}
		tn, err := take(2)
		if err != nil {
			return 0, nil, err
		}
		c := column{name: string(name), typ: tn[0], nullable: tn[1] == 1}
		width, ok := typeWidth[c.typ]
		if !ok || tn[1] > 1 {
			return 0, nil, fmt.Errorf("column %q: type %d, nullable %d", c.name, tn[0], tn[1])
		}
		if c.nullable {
			if c.valid, err = take((n + 7) / 8); err != nil {
				return 0, nil, err
			}
		}
		if c.data, err = take(n * width); err != nil {
			return 0, nil, err
		}
		cols = append(cols, c)
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("%d bytes after the last column", len(b))
	}
	return n, cols, nil
}

// toRows converts the columns into rows. It runs before any timing, so it
// favours checks over speed: the columns must be hydroRow's fields, in
// order, by name, type and nullability, so a schema change fails loudly
// instead of comparing different tables. Nullable values point into one
// backing array per column, so the heap holds a few large objects instead
// of one small object per value.
func toRows(n int, cols []column) ([]hydroRow, error) {
	typ := reflect.TypeFor[hydroRow]()
	if typ.NumField() != len(cols) {
		return nil, fmt.Errorf("hydroRow has %d fields, the input has %d columns", typ.NumField(), len(cols))
	}
	rows := make([]hydroRow, n)
	rv := reflect.ValueOf(rows)
	for f := range typ.NumField() {
		sf, c := typ.Field(f), &cols[f]
		name := strings.Split(sf.Tag.Get("parquet"), ",")[0]
		if c.name != name {
			return nil, fmt.Errorf("column %d is %s, hydroRow field %s is %s", f, c.name, sf.Name, name)
		}
		if ptr := sf.Type.Kind() == reflect.Pointer; ptr != c.nullable {
			return nil, fmt.Errorf("column %s: nullable %v, hydroRow field %s is %s", name, c.nullable, sf.Name, sf.Type)
		}
		kind := sf.Type.Kind()
		if c.nullable {
			kind = sf.Type.Elem().Kind()
		}
		want := map[byte]reflect.Kind{typeInt8: reflect.Int8, typeInt32: reflect.Int32, typeFloat64: reflect.Float64}[c.typ]
		if kind != want {
			return nil, fmt.Errorf("column %s: field %s is %s, want %s", name, sf.Name, sf.Type, want)
		}
		switch c.typ {
		case typeInt8:
			vals := make([]int8, n)
			for i := range vals {
				vals[i] = int8(c.data[i])
			}
			setColumn(rv, f, c, vals)
		case typeInt32:
			vals := make([]int32, n)
			for i := range vals {
				vals[i] = int32(binary.LittleEndian.Uint32(c.data[4*i:]))
			}
			setColumn(rv, f, c, vals)
		case typeFloat64:
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(c.data[8*i:]))
			}
			setColumn(rv, f, c, vals)
		}
	}
	return rows, nil
}

// setColumn sets field f of every row to vals[i], or, for a nullable
// column, to &vals[i] for the rows that are not null (nil otherwise).
func setColumn[T int8 | int32 | float64](rows reflect.Value, f int, c *column, vals []T) {
	for i := range vals {
		field := rows.Index(i).Field(f)
		switch {
		case !c.nullable:
			field.Set(reflect.ValueOf(vals[i]))
		case c.isValid(i):
			field.Set(reflect.ValueOf(&vals[i]))
		}
	}
}

// crcTable is the checksum of the rows (and shardbench's of the columns it
// wrote): CRC-64/ECMA of, for each column in order and each row in order,
// the byte 0 for a null, else the byte 1 and the value as 8 bytes
// little-endian (integers sign-extended to int64, float64 by its bits).
var crcTable = crc64.MakeTable(crc64.ECMA)

// rowsSum is that checksum computed from the rows, the values parquet-go
// writes: shardbench compares it with the one it computed from its Arrow
// record, so the contestant provably writes the same data.
func rowsSum(rows []hydroRow) uint64 {
	rv := reflect.ValueOf(rows)
	typ := reflect.TypeFor[hydroRow]()
	var sum uint64
	buf := make([]byte, 0, 9*len(rows))
	for f := range typ.NumField() {
		buf = buf[:0]
		for i := range rows {
			v := rv.Index(i).Field(f)
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					buf = append(buf, 0)
					continue
				}
				v = v.Elem()
			}
			var x uint64
			switch v.Kind() {
			case reflect.Float64:
				x = math.Float64bits(v.Float())
			default:
				x = uint64(v.Int())
			}
			buf = binary.LittleEndian.AppendUint64(append(buf, 1), x)
		}
		sum = crc64.Update(sum, crcTable, buf)
	}
	return sum
}
