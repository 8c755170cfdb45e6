package policy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/policy/internal/fb"
)

// activeIndicesAt returns the position in buf of the first element of the
// root StageCuts' active_cut_indices and its length, found through the
// flatc-generated accessors (not through the verifier under test).
func activeIndicesAt(t *testing.T, buf []byte) (pos, n int) {
	t.Helper()
	root := fb.GetRootAsStageCuts(buf, 0)
	tab := root.Table()
	o := tab.Offset(flatbuffers.VOffsetT(4 + 2*scActiveCutIndices))
	if o == 0 {
		t.Fatal("active_cut_indices is not on the wire")
	}
	return int(tab.Vector(flatbuffers.UOffsetT(o))), root.ActiveCutIndicesLength()
}

// patchActive returns a copy of buf, an encoded StageCuts, with its
// active_cut_indices replaced by idx (of the same length: the vector is
// rewritten in place, every offset stays valid).
func patchActive(t *testing.T, buf []byte, idx []uint32) []byte {
	t.Helper()
	buf = bytes.Clone(buf)
	pos, n := activeIndicesAt(t, buf)
	if n != len(idx) {
		t.Fatalf("the encoded file has %d active indices, the patch %d", n, len(idx))
	}
	for k, x := range idx {
		binary.LittleEndian.PutUint32(buf[pos+4*k:], x)
	}
	if got := fb.GetRootAsStageCuts(buf, 0); got.ActiveCutIndicesLength() != n || got.ActiveCutIndices(n-1) != idx[n-1] {
		t.Fatal("patch did not land in active_cut_indices")
	}
	return buf
}

// craftStageCuts builds, with the flatbuffers builder directly (no
// encoder: it derives the indices from is_active and would never write
// these), a StageCuts of stage with nCuts cuts of dimension 2 whose
// active_cut_indices are idx.
func craftStageCuts(stage uint32, nCuts int, idx []uint32) []byte {
	b := flatbuffers.NewBuilder(0)
	offs := make([]flatbuffers.UOffsetT, nCuts)
	for i := nCuts - 1; i >= 0; i-- {
		coef := CreateFloat64Vector(b, []float64{float64(i), -1})
		fb.CutStart(b)
		fb.CutAddCutId(b, uint64(100+i))
		fb.CutAddSlotIndex(b, uint32(i))
		fb.CutAddCoefficients(b, coef)
		fb.CutAddIsActive(b, slices.Contains(idx, uint32(i)))
		offs[i] = fb.CutEnd(b)
	}
	active := CreateUint32Vector(b, idx)
	cuts := b.CreateVectorOfTables(offs)
	fb.StageCutsStart(b)
	fb.StageCutsAddCuts(b, cuts)
	fb.StageCutsAddActiveCutIndices(b, active)
	fb.StageCutsAddStageId(b, stage)
	fb.StageCutsAddStateDimension(b, 2)
	fb.StageCutsAddCapacity(b, uint32(nCuts))
	fb.StageCutsAddPopulatedCount(b, uint32(nCuts))
	b.Finish(fb.StageCutsEnd(b))
	return b.FinishedBytes()
}

// badActive is an active_cut_indices vector the reader must refuse, and
// the position of the first offending element.
type badActive struct {
	name string
	idx  []uint32
	at   int
}

// checkRefused asserts that ReadStageCuts refuses buf as ErrCorrupt with
// an error naming the stage, the offending position and its value.
func checkRefused(t *testing.T, buf []byte, stage uint32, bad badActive) {
	t.Helper()
	v, err := ReadStageCuts(buf)
	if err == nil {
		t.Fatalf("%s %v: accepted (active_cut_indices read back as %v); want ErrCorrupt", bad.name, bad.idx, v.ActiveCutIndices)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s %v: error %v does not wrap ErrCorrupt", bad.name, bad.idx, err)
	}
	want := fmt.Sprintf("stage %d: active_cut_indices[%d] = %d ", stage, bad.at, bad.idx[bad.at])
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s %v: error %q does not name the stage, position and value (%q)", bad.name, bad.idx, err, want)
	}
}

// TestReadStageCutsRefusesBadActiveIndices: active_cut_indices must be
// strictly ascending and in range (docs/policy-wire.md); a file whose
// indices repeat, go backwards or point past the cuts is refused, naming
// the stage and the first offending position. The files are crafted two
// ways: the encoder's output patched in place, and a StageCuts built with
// the flatbuffers builder directly.
func TestReadStageCutsRefusesBadActiveIndices(t *testing.T) {
	const stage = 7
	t.Run("patched", func(t *testing.T) {
		s := genStage(rand.New(rand.NewPCG(31, 32)), stage, 6, 3, true)
		for i := range s.Cuts {
			s.Cuts[i].IsActive = true
		}
		good, err := NewWriter(0).EncodeStageCuts(s)
		if err != nil {
			t.Fatal(err)
		}
		good = bytes.Clone(good)
		// The unpatched file verifies, and so does a patch that keeps the
		// indices ascending: a refusal below is about the indices.
		if v, err := ReadStageCuts(good); err != nil || !slices.Equal(v.ActiveCutIndices, []uint32{0, 1, 2, 3, 4, 5}) {
			t.Fatalf("encoder output: %v, active %v", err, v)
		}
		if v, err := ReadStageCuts(patchActive(t, good, []uint32{0, 1, 2, 3, 4, 5})); err != nil || v.StageID != stage {
			t.Fatalf("identity patch refused: %v", err)
		}
		for _, bad := range []badActive{
			{"repeated", []uint32{0, 1, 2, 2, 4, 5}, 3},
			{"repeated first", []uint32{0, 0, 2, 3, 4, 5}, 1},
			{"repeated last", []uint32{0, 1, 2, 3, 5, 5}, 5},
			{"all the same", []uint32{3, 3, 3, 3, 3, 3}, 1},
			{"swapped pair", []uint32{0, 2, 1, 3, 4, 5}, 2},
			{"descending", []uint32{5, 4, 3, 2, 1, 0}, 1},
			{"unsorted at the end", []uint32{0, 1, 2, 3, 5, 4}, 5},
			{"out of range", []uint32{0, 1, 2, 3, 4, 6}, 5},
			{"far out of range", []uint32{0, 1, 2, 3, 4, 0xffffffff}, 5},
		} {
			t.Run(bad.name, func(t *testing.T) {
				checkRefused(t, patchActive(t, good, bad.idx), stage, bad)
			})
		}
	})
	t.Run("built", func(t *testing.T) {
		// Control: the crafting itself makes files the reader accepts.
		for _, ok := range [][]uint32{{}, {0}, {3}, {0, 2, 3}, {0, 1, 2, 3}} {
			v, err := ReadStageCuts(craftStageCuts(stage, 4, ok))
			if err != nil || !slices.Equal(v.ActiveCutIndices, ok) || len(v.Cuts) != 4 {
				t.Fatalf("crafted valid indices %v: %v", ok, err)
			}
		}
		for _, bad := range []badActive{
			{"repeated pair", []uint32{1, 1}, 1},
			{"repeated non-adjacent", []uint32{0, 2, 3, 2}, 3},
			{"unsorted", []uint32{2, 0}, 1},
			{"unsorted later", []uint32{0, 1, 3, 2}, 3},
			{"out of range", []uint32{0, 4}, 1},
			{"out of range first", []uint32{9}, 0},
		} {
			t.Run(bad.name, func(t *testing.T) {
				checkRefused(t, craftStageCuts(stage, 4, bad.idx), stage, bad)
			})
		}
	})
}

// TestOpenRefusesBadActiveIndices: a policy directory whose stage file
// (with a correct size and xxh64 in metadata.json: the damage is the
// producer's, not the disk's) has repeated active indices does not open;
// the error names the file, the stage and the position.
func TestOpenRefusesBadActiveIndices(t *testing.T) {
	for _, bad := range []struct {
		name string
		edit func(idx []uint32)
		at   int
	}{
		{"repeated", func(idx []uint32) { idx[2] = idx[1] }, 2},
		{"unsorted", func(idx []uint32) { idx[1], idx[2] = idx[2], idx[1] }, 2},
	} {
		t.Run(bad.name, func(t *testing.T) {
			dir := writePolicyDir(t, 3, 5, true)
			if _, err := Open(dir, Expect{StateDimension: 5, NumStages: 3}); err != nil {
				t.Fatalf("the unpatched directory: %v", err)
			}
			rel := "cuts/" + layout.StageFileName(2)
			path := filepath.Join(dir, filepath.FromSlash(rel))
			buf, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			v, err := ReadStageCuts(buf)
			if err != nil || v.StageID != 2 || len(v.ActiveCutIndices) < 3 {
				t.Fatalf("%s: %v (need stage 2 with at least 3 active cuts)", rel, err)
			}
			idx := slices.Clone(v.ActiveCutIndices)
			bad.edit(idx)
			patched := patchActive(t, buf, idx)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			info, err := writeStageFile(path, patched)
			if err != nil {
				t.Fatal(err)
			}
			editMetadata(t, dir, func(m map[string]any) {
				m["files"].(map[string]any)[rel] = FileEntry{Bytes: info.Bytes, XXH64: fmt.Sprintf("%016x", info.XXH64)}
			})
			_, err = Open(dir, Expect{StateDimension: 5, NumStages: 3})
			want := fmt.Sprintf("%s: %s: stage 2: active_cut_indices[%d] = %d ", rel, ErrCorrupt, bad.at, idx[bad.at])
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open: %v\nwant an ErrCorrupt containing %q", err, want)
			}
		})
	}
}
