package policy

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/hydroshard/hydroshard/policy/internal/fb"
)

// stageKind is which root type a stage buffer holds.
type stageKind int

const (
	kindCuts stageKind = iota
	kindBasis
	kindStates
)

func (k stageKind) String() string { return [...]string{"StageCuts", "StageBasis", "StageStates"}[k] }

// readAs reads buf with the reader of kind.
func readAs(k stageKind, buf []byte) (any, error) {
	switch k {
	case kindCuts:
		return ReadStageCuts(buf)
	case kindBasis:
		return ReadStageBasis(buf)
	default:
		return ReadStageStates(buf)
	}
}

// referenced tracks the end of the bytes a well-formed buffer refers to.
type referenced struct{ end int }

func (r *referenced) cover(pos, n int) { r.end = max(r.end, pos+n) }

// table covers a table's object bytes and its vtable.
func (r *referenced) table(tab flatbuffers.Table) {
	vt := int(tab.Pos) - int(flatbuffers.GetSOffsetT(tab.Bytes[tab.Pos:]))
	r.cover(vt, int(flatbuffers.GetVOffsetT(tab.Bytes[vt:])))
	r.cover(int(tab.Pos), int(flatbuffers.GetVOffsetT(tab.Bytes[vt+2:])))
}

// vector covers the vector in field id (length prefix and elements).
func (r *referenced) vector(tab flatbuffers.Table, id, elemSize int) {
	o := flatbuffers.UOffsetT(tab.Offset(flatbuffers.VOffsetT(4 + 2*id)))
	if o == 0 {
		return
	}
	r.cover(int(tab.Vector(o))-4, 4+tab.VectorLen(o)*elemSize)
}

// referencedEnd returns the end of the last byte buf (a buffer of kind
// that verifies) refers to: the root offset, every table and vtable,
// every vector. It walks the buffer with the flatc-generated accessors,
// not with the verifier under test.
func referencedEnd(k stageKind, buf []byte) int {
	r := &referenced{}
	r.cover(0, 4)
	switch k {
	case kindCuts:
		root := fb.GetRootAsStageCuts(buf, 0)
		r.table(root.Table())
		r.vector(root.Table(), scCuts, 4)
		r.vector(root.Table(), scActiveCutIndices, 4)
		var c fb.Cut
		for i := 0; i < root.CutsLength(); i++ {
			root.Cuts(&c, i)
			r.table(c.Table())
			r.vector(c.Table(), cutCoefficients, 8)
			r.vector(c.Table(), cutStateAtGeneration, 8)
		}
	case kindBasis:
		root := fb.GetRootAsStageBasis(buf, 0)
		r.table(root.Table())
		r.vector(root.Table(), sbColumnStatus, 1)
		r.vector(root.Table(), sbRowStatus, 1)
	case kindStates:
		root := fb.GetRootAsStageStates(buf, 0)
		r.table(root.Table())
		r.vector(root.Table(), ssData, 8)
	}
	return r.end
}

// trailingPadding is how many bytes the Go builder leaves after the last
// byte it refers to, from how it lays a buffer out: it fills back to
// front, so the first object serialised ends the buffer, and aligns each
// vector's length prefix to 4 bytes by padding after the vector's data.
// The first object is, for StageCuts, the last cut's state_at_generation
// or coefficients (doubles) or, with no cuts, the empty active index
// vector; for StageStates, data (doubles): no padding. For StageBasis it
// is row_status, one byte per row: padded to a multiple of 4.
func trailingPadding(k stageKind, buf []byte) int {
	if k == kindBasis {
		return (4 - fb.GetRootAsStageBasis(buf, 0).RowStatusLength()%4) % 4
	}
	return 0
}

// checkTruncations asserts, for every proper prefix of seed (a buffer of
// kind the encoder wrote), that the reader refuses it as ErrCorrupt if the
// cut removed any byte the buffer refers to, and otherwise (only trailing
// alignment padding was cut) reads it exactly as the whole buffer. The
// padding is accounted for independently (trailingPadding) and must be
// zeros: a truncation that verifies is either explained or a failure.
func checkTruncations(t *testing.T, name string, k stageKind, seed []byte) {
	t.Helper()
	full, err := readAs(k, seed)
	if err != nil {
		t.Fatalf("%s (%s, %d bytes): the whole buffer does not verify: %v", name, k, len(seed), err)
	}
	end := referencedEnd(k, seed)
	if pad := trailingPadding(k, seed); end != len(seed)-pad {
		t.Fatalf("%s (%s): the buffer refers to bytes up to %d of %d; the builder's layout explains %d trailing bytes of padding, not %d",
			name, k, end, len(seed), pad, len(seed)-end)
	}
	if tail := seed[end:]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Fatalf("%s (%s): trailing padding %x is not zeros", name, k, tail)
	}
	verified := 0
	for n := 0; n < len(seed); n++ {
		v, err := readAs(k, seed[:n])
		switch {
		case n < end && err == nil:
			t.Errorf("%s (%s): the prefix of %d/%d bytes verifies, but the buffer refers to bytes up to %d", name, k, n, len(seed), end)
		case n < end && !errors.Is(err, ErrCorrupt):
			t.Errorf("%s (%s): the prefix of %d/%d bytes: error %v, want ErrCorrupt", name, k, n, len(seed), err)
		case n >= end && err != nil:
			t.Errorf("%s (%s): the prefix of %d/%d bytes only lacks trailing padding, yet: %v", name, k, n, len(seed), err)
		case n >= end:
			verified++
			if !reflect.DeepEqual(v, full) {
				t.Errorf("%s (%s): the prefix of %d/%d bytes (only padding cut) reads as\n%+v\nnot as the whole buffer:\n%+v", name, k, n, len(seed), v, full)
			}
		}
	}
	if verified != len(seed)-end {
		t.Errorf("%s (%s): %d prefixes verified, want the %d that only cut padding", name, k, verified, len(seed)-end)
	}
}
