package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error about a buffer that does not hold a
// well-formed table of the expected type.
var ErrCorrupt = errors.New("policy: corrupt buffer")

// verifier checks FlatBuffers structure against the buffer bounds before
// any access, like the reference C++/Rust verifiers: root offset, vtable
// position and size, each field's position and size, vector length *
// element size, nested tables (with a table budget against offset loops
// and fan-out). All arithmetic is done in int64 so that no crafted value
// can wrap around.
type verifier struct {
	buf    []byte
	tables int // remaining table budget
}

// maxTables is the table budget of one buffer: the root and at most
// MaxCutsPerStage cuts.
const maxTables = MaxCutsPerStage + 1

// vtable-resolved table.
type table struct {
	pos    int64 // table start
	vt     int64 // vtable start
	vtSize int64
}

func newVerifier(buf []byte) *verifier {
	return &verifier{buf: buf, tables: maxTables}
}

func (v *verifier) errf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func (v *verifier) in(pos, size int64) bool {
	return pos >= 0 && size >= 0 && pos <= int64(len(v.buf)) && size <= int64(len(v.buf))-pos
}

func (v *verifier) u16(pos int64) uint16 { return binary.LittleEndian.Uint16(v.buf[pos:]) }
func (v *verifier) u32(pos int64) uint32 { return binary.LittleEndian.Uint32(v.buf[pos:]) }

// root verifies the root offset and the root table.
func (v *verifier) root() (table, error) {
	if len(v.buf) < 8 {
		return table{}, v.errf("buffer of %d bytes is too short", len(v.buf))
	}
	if int64(len(v.buf)) > maxBuffer {
		return table{}, v.errf("buffer of %d bytes exceeds 2 GiB", len(v.buf))
	}
	return v.table(int64(v.u32(0)), "root")
}

// table verifies the table at pos and its vtable.
func (v *verifier) table(pos int64, what string) (table, error) {
	if v.tables--; v.tables < 0 {
		return table{}, v.errf("too many tables")
	}
	if pos%4 != 0 || !v.in(pos, 4) {
		return table{}, v.errf("%s table at %d out of bounds or misaligned (buffer %d bytes)", what, pos, len(v.buf))
	}
	vt := pos - int64(int32(v.u32(pos)))
	if vt%2 != 0 || !v.in(vt, 4) {
		return table{}, v.errf("%s vtable at %d out of bounds or misaligned", what, vt)
	}
	vtSize := int64(v.u16(vt))
	objSize := int64(v.u16(vt + 2))
	if vtSize < 4 || vtSize%2 != 0 || !v.in(vt, vtSize) {
		return table{}, v.errf("%s vtable size %d at %d invalid", what, vtSize, vt)
	}
	if objSize < 4 || !v.in(pos, objSize) {
		return table{}, v.errf("%s table size %d at %d out of bounds", what, objSize, pos)
	}
	return table{pos: pos, vt: vt, vtSize: vtSize}, nil
}

// field returns the absolute position of field id (0 when absent) after
// checking that size bytes there are within the buffer and aligned.
func (v *verifier) field(t table, id int, size int64, what string) (int64, error) {
	vo := 4 + 2*int64(id)
	if vo+2 > t.vtSize {
		return 0, nil
	}
	fo := int64(v.u16(t.vt + vo))
	if fo == 0 {
		return 0, nil
	}
	p := t.pos + fo
	if !v.in(p, size) || p%size != 0 {
		return 0, v.errf("field %s at %d out of bounds or misaligned", what, p)
	}
	return p, nil
}

// offsetField follows the uoffset stored in field id; 0 when absent.
func (v *verifier) offsetField(t table, id int, what string) (int64, error) {
	p, err := v.field(t, id, 4, what)
	if err != nil || p == 0 {
		return 0, err
	}
	return v.follow(p, what)
}

// follow returns the target of the uoffset at p.
func (v *verifier) follow(p int64, what string) (int64, error) {
	o := int64(v.u32(p))
	if o == 0 || o > int64(int32(^uint32(0)>>1)) {
		return 0, v.errf("%s: offset %d at %d invalid", what, o, p)
	}
	target := p + o
	if !v.in(target, 4) {
		return 0, v.errf("%s: offset at %d points to %d, outside the %d-byte buffer", what, p, target, len(v.buf))
	}
	return target, nil
}

// vector verifies the vector in field id with elements of elemSize bytes
// and returns the position of its first element and its length. present
// is false when the field is absent.
func (v *verifier) vector(t table, id int, elemSize int64, what string) (data int64, n int, present bool, err error) {
	vp, err := v.offsetField(t, id, what)
	if err != nil || vp == 0 {
		return 0, 0, false, err
	}
	if vp%4 != 0 {
		return 0, 0, false, v.errf("%s vector at %d misaligned", what, vp)
	}
	l := int64(v.u32(vp))
	if l > (int64(len(v.buf))-vp-4)/elemSize || !v.in(vp+4, l*elemSize) {
		return 0, 0, false, v.errf("%s vector at %d: %d elements of %d bytes exceed the %d-byte buffer",
			what, vp, l, elemSize, len(v.buf))
	}
	return vp + 4, int(l), true, nil
}

// u32Field reads an optional uint32 scalar (default 0).
func (v *verifier) u32Field(t table, id int, what string) (uint32, error) {
	p, err := v.field(t, id, 4, what)
	if err != nil || p == 0 {
		return 0, err
	}
	return v.u32(p), nil
}

func (v *verifier) u64Field(t table, id int, what string) (uint64, error) {
	p, err := v.field(t, id, 8, what)
	if err != nil || p == 0 {
		return 0, err
	}
	return binary.LittleEndian.Uint64(v.buf[p:]), nil
}

func (v *verifier) boolField(t table, id int, what string) (bool, error) {
	p, err := v.field(t, id, 1, what)
	if err != nil || p == 0 {
		return false, err
	}
	return v.buf[p] != 0, nil
}
