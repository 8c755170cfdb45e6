package policy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"

	"github.com/hydroshard/hydroshard/policy/internal/fb"
	"github.com/hydroshard/hydroshard/vfs"
)

// patchU32 overwrites the uint32 scalar field id of buf's root table
// (which must be present on the wire: a non-default value).
func patchU32(t *testing.T, buf []byte, id int, v uint32) []byte {
	t.Helper()
	buf = bytes.Clone(buf)
	ver := newVerifier(buf)
	root, err := ver.root()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ver.field(root, id, 4, "patched")
	if err != nil || p == 0 {
		t.Fatalf("field %d not on the wire (%v)", id, err)
	}
	binary.LittleEndian.PutUint32(buf[p:], v)
	return buf
}

// TestReadStageCutsLimits: a StageCuts header claiming a count beyond a
// documented limit, or more cuts than its bytes can hold, is refused with
// an error naming the field, the value and the limit, before the cut
// views are allocated.
func TestReadStageCutsLimits(t *testing.T) {
	w := NewWriter(0)
	good, err := w.EncodeStageCuts(genStage(rand.New(rand.NewPCG(5, 6)), 4, 6, 3, true))
	if err != nil {
		t.Fatal(err)
	}
	good = bytes.Clone(good)
	if _, err := ReadStageCuts(good); err != nil {
		t.Fatal(err)
	}
	if len(good) > 2048 {
		t.Fatalf("the seed stage is %d bytes, want a small one", len(good))
	}
	for _, c := range []struct {
		name  string
		id    int
		v     uint32
		limit string // "" : refused as more than the bytes hold
		want  string
	}{
		{"a billion cuts", scPopulatedCount, 1_000_000_000, "policy.MaxCutsPerStage", "StageCuts.populated_count 1000000000 exceeds the limit of 16777216"},
		{"cuts at uint32 max", scPopulatedCount, 1<<32 - 1, "policy.MaxCutsPerStage", "StageCuts.populated_count 4294967295"},
		{"state dimension", scStateDimension, MaxStateDimension + 1, "policy.MaxStateDimension", "StageCuts.state_dimension 1048577 exceeds the limit of 1048576"},
		{"capacity", scCapacity, 4_000_000_000, "policy.MaxCutsPerStage", "StageCuts.capacity 4000000000"},
		{"warm start count", scWarmStartCount, MaxCutsPerStage + 1, "policy.MaxCutsPerStage", "StageCuts.warm_start_count 16777217"},
		// Under the limits, but not in a file of this size.
		{"a million cuts in a small file", scPopulatedCount, 1_000_000, "", "populated_count 1000000 cuts of state_dimension 3 need at least 32000000 bytes, the buffer holds"},
		{"a big dimension in a small file", scStateDimension, MaxStateDimension, "", "populated_count 6 cuts of state_dimension 1048576 need at least"},
	} {
		t.Run(c.name, func(t *testing.T) {
			buf := patchU32(t, good, c.id, c.v)
			var v *StageCutsView
			alloc := allocated(func() { v, err = ReadStageCuts(buf) })
			if err == nil {
				t.Fatalf("accepted: %+v", v)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrCorrupt saying %q", err, c.want)
			}
			var le *LimitError
			if c.limit != "" {
				if !errors.Is(err, ErrLimit) || !errors.As(err, &le) || le.Const != c.limit || !strings.Contains(err.Error(), c.limit) {
					t.Fatalf("err = %v, want a *LimitError naming %s", err, c.limit)
				}
			} else if errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v: the bytes check is not a limit", err)
			}
			if alloc > 64<<10 { // a CutView is 88 bytes: far below even a thousand of them
				t.Fatalf("refusing the header allocated %d bytes", alloc)
			}
		})
	}
	// At the limits themselves (no cuts), the encoder writes and the
	// reader reads.
	edge := &StageCuts{StageID: 2, StateDimension: MaxStateDimension, Capacity: MaxCutsPerStage, WarmStartCount: MaxCutsPerStage}
	buf, err := w.EncodeStageCuts(edge)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ReadStageCuts(buf); err != nil || v.Capacity != MaxCutsPerStage || v.StateDimension != MaxStateDimension {
		t.Fatalf("a stage at the limits: %+v, %v", v, err)
	}
}

// sharedCutTable builds a StageCuts whose cuts vector holds n offsets to
// one and the same Cut table (legal FlatBuffers, which no writer emits): n
// cuts in about 4n bytes.
func sharedCutTable(n int) []byte {
	b := flatbuffers.NewBuilder(4*n + 256)
	fb.CutStart(b)
	fb.CutAddCutId(b, 7)
	cut := fb.CutEnd(b)
	b.StartVector(4, n, 4)
	for range n {
		b.PrependUOffsetT(cut)
	}
	cuts := b.EndVector(n)
	fb.StageCutsStart(b)
	fb.StageCutsAddCuts(b, cuts)
	fb.StageCutsAddStageId(b, 1)
	fb.StageCutsAddPopulatedCount(b, uint32(n))
	b.Finish(fb.StageCutsEnd(b))
	return b.FinishedBytes()
}

// TestReadStageCutsLimitSharedTables: many cuts sharing one table (n cuts in
// 4n bytes) would cost 88 bytes of CutView each; the bytes check refuses
// them before the views are allocated. A handful still reads.
func TestReadStageCutsLimitSharedTables(t *testing.T) {
	if v, err := ReadStageCuts(sharedCutTable(3)); err != nil || len(v.Cuts) != 3 || v.Cuts[2].CutID != 7 {
		t.Fatalf("3 cuts sharing a table: %+v, %v", v, err)
	}
	buf := sharedCutTable(1 << 20)
	var err error
	alloc := allocated(func() { _, err = ReadStageCuts(buf) })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "need at least") {
		t.Fatalf("a million cuts in %d bytes: %v", len(buf), err)
	}
	if alloc > 64<<10 { // the views would take 88 MiB
		t.Fatalf("refusing them allocated %d bytes", alloc)
	}
}

// TestReadStageCutsLimitActiveIndices: active_cut_indices longer than
// cuts is refused before it is copied.
func TestReadStageCutsLimitActiveIndices(t *testing.T) {
	b := flatbuffers.NewBuilder(0)
	active := CreateUint32Vector(b, make([]uint32, 1<<20))
	fb.CutStart(b)
	fb.CutAddCutId(b, 7)
	cut := b.CreateVectorOfTables([]flatbuffers.UOffsetT{fb.CutEnd(b)})
	fb.StageCutsStart(b)
	fb.StageCutsAddCuts(b, cut)
	fb.StageCutsAddActiveCutIndices(b, active)
	fb.StageCutsAddPopulatedCount(b, 1)
	b.Finish(fb.StageCutsEnd(b))
	buf := b.FinishedBytes()
	var err error
	alloc := allocated(func() { _, err = ReadStageCuts(buf) })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "1048576 active_cut_indices for 1 cuts") {
		t.Fatalf("a million active indices for one cut: %v", err)
	}
	if alloc > 64<<10 { // the copy would take 4 MiB
		t.Fatalf("refusing them allocated %d bytes", alloc)
	}
}

// TestReadStageStatesLimits: the same for StageStates.
func TestReadStageStatesLimits(t *testing.T) {
	w := NewWriter(0)
	good, err := w.EncodeStageStates(&StageStates{StageID: 3, StateDimension: 4, Data: make([]float64, 8)})
	if err != nil {
		t.Fatal(err)
	}
	good = bytes.Clone(good)
	if _, err := ReadStageStates(good); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		id    int
		v     uint32
		limit string
		want  string
	}{
		{"a billion states", ssCount, 1_000_000_000, "policy.MaxStatesPerStage", "StageStates.count 1000000000 exceeds the limit of 16777216"},
		{"state dimension", ssStateDimension, 1<<32 - 1, "policy.MaxStateDimension", "StageStates.state_dimension 4294967295 exceeds the limit of 1048576"},
		{"states without data", ssStateDimension, 0, "", "count 2 with state_dimension 0"},
		{"more states than values", ssCount, 1000, "", "count 1000 x state_dimension 4 != 8 values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadStageStates(patchU32(t, good, c.id, c.v))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrCorrupt saying %q", err, c.want)
			}
			var le *LimitError
			if c.limit != "" && (!errors.As(err, &le) || le.Const != c.limit) {
				t.Fatalf("err = %v, want a *LimitError naming %s", err, c.limit)
			}
		})
	}
}

// TestEncodeRefusesBeyondLimits: what the reader refuses, the encoder does
// not write.
func TestEncodeRefusesBeyondLimits(t *testing.T) {
	w := NewWriter(0)
	for _, s := range []*StageCuts{
		{StateDimension: MaxStateDimension + 1},
		{Capacity: MaxCutsPerStage + 1},
		{WarmStartCount: MaxCutsPerStage + 1},
	} {
		if _, err := w.EncodeStageCuts(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("EncodeStageCuts(%+v) = %v, want ErrInvalid", s, err)
		}
	}
	if _, err := w.EncodeStageStates(&StageStates{StateDimension: MaxStateDimension + 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("EncodeStageStates beyond MaxStateDimension = %v, want ErrInvalid", err)
	}
	if _, err := w.EncodeStageStates(&StageStates{StateDimension: 1, Data: make([]float64, MaxStatesPerStage+1)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("EncodeStageStates beyond MaxStatesPerStage = %v, want ErrInvalid", err)
	}
}

// rleBomb is one zstd frame without a content size whose blocks are RLE
// blocks of 128 KiB zeros: total bytes of content in 4 bytes per block.
// window is the window it declares (a power of two, 1 KiB..2 GiB).
func rleBomb(total int64, window uint64) []byte {
	wlog := byte(0)
	for uint64(1)<<(wlog+10) < window {
		wlog++
	}
	z := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, wlog << 3}
	const blk = 128 << 10
	n := total / blk
	for i := range n {
		h := uint32(1<<1) | uint32(blk)<<3
		if i == n-1 {
			h |= 1
		}
		z = append(z, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return z
}

// unpackOne writes a policy directory holding only cuts/stage_000.bin.zst
// = z, listed in metadata.json as e, and unpacks it.
func unpackOne(t *testing.T, z []byte, e FileEntry) (dir string, err error, alloc uint64) {
	t.Helper()
	dir = t.TempDir()
	p := filepath.Join(dir, "cuts", "stage_000.bin.zst")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, z, 0o644); err != nil {
		t.Fatal(err)
	}
	md := fmt.Sprintf(`{"files":{"cuts/stage_000.bin":{"bytes":%d,"xxh64":%q}}}`, e.Bytes, e.XXH64)
	if err := os.WriteFile(filepath.Join(dir, "metadata.json"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	alloc = allocated(func() { err = Unpack(vfs.OS(), dir) })
	return dir, err, alloc
}

// onlyZst fails unless dir's cuts/ holds exactly the .zst, byte for byte z
// (no .bin, no temp file).
func onlyZst(t *testing.T, dir string, z []byte) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "cuts"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "stage_000.bin.zst" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("cuts/ holds %v, want only stage_000.bin.zst", names)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "cuts", "stage_000.bin.zst")); err != nil || !bytes.Equal(got, z) {
		t.Fatalf("the .zst changed (%v)", err)
	}
}

// TestArchiveUnpackStreamsBounded: Unpack decompresses a .zst by streaming into
// its temp file, so a bomb costs neither the listed size in memory nor
// more than the listed size (+1) on disk; a frame asking for a window
// larger than the file can need, or declaring another content size, is
// refused before decompressing; a .zst larger than the listed bytes can
// compress to is refused as a size mismatch (exit 2), not an I/O error.
// Each refusal leaves the .zst and no temp file.
func TestArchiveUnpackStreamsBounded(t *testing.T) {
	const listed = 64 << 20 // a big stage file: decoding it whole would allocate it
	e := entryOf(make([]byte, listed))
	t.Run("bomb beyond the listed size", func(t *testing.T) {
		z := rleBomb(2<<30, 128<<10)
		dir, err, alloc := unpackOne(t, z, e)
		if !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), fmt.Sprintf("more than the %d bytes metadata.json lists (stopped at %d bytes", listed, listed+1)) {
			t.Fatalf("Unpack = %v, want ErrSize stopping at listed+1", err)
		}
		var ae *ArchiveError
		if !errors.As(err, &ae) || ae.File != "cuts/stage_000.bin.zst" {
			t.Fatalf("Unpack = %v, want an *ArchiveError naming cuts/stage_000.bin.zst", err)
		}
		if alloc > 16<<20 {
			t.Fatalf("unpacking allocated %d bytes for a stage file listed at %d", alloc, listed)
		}
		onlyZst(t, dir, z)
	})
	t.Run("right size, wrong bytes", func(t *testing.T) {
		z := rleBomb(listed, 128<<10) // zeros, listed as zeros plus one changed byte
		b := make([]byte, listed)
		b[listed/2] = 1
		dir, err, alloc := unpackOne(t, z, entryOf(b))
		if !errors.Is(err, ErrChecksum) || errors.Is(err, ErrSize) || !strings.Contains(err.Error(), "decompresses to xxh64") {
			t.Fatalf("Unpack = %v, want ErrChecksum", err)
		}
		if alloc > 16<<20 {
			t.Fatalf("unpacking allocated %d bytes for a stage file listed at %d", alloc, listed)
		}
		onlyZst(t, dir, z)
	})
	t.Run("huge window", func(t *testing.T) {
		small := entryOf(make([]byte, 61_000))
		z := rleBomb(1<<30, 1<<29)
		dir, err, alloc := unpackOne(t, z, small)
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "asks for a 536870912-byte window") {
			t.Fatalf("Unpack = %v, want the window refused", err)
		}
		if alloc > 4<<20 { // the window would take 512 MiB; the temp file's write buffer is 1 MiB
			t.Fatalf("refusing the window allocated %d bytes", alloc)
		}
		onlyZst(t, dir, z)
	})
	t.Run("declared content size", func(t *testing.T) {
		small := entryOf(make([]byte, 61_000))
		enc, _ := zstd.NewWriter(nil)
		z := enc.EncodeAll(make([]byte, 100_000), nil)
		enc.Close()
		dir, err, _ := unpackOne(t, z, small)
		if !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), "declares 100000 bytes of content, metadata.json lists 61000 (refused before decompressing)") {
			t.Fatalf("Unpack = %v, want the declared size refused", err)
		}
		onlyZst(t, dir, z)
	})
	t.Run("larger than the listed bytes compress to", func(t *testing.T) {
		small := entryOf(make([]byte, 1000))
		z := rleBomb(64<<30, 128<<10) // 2 MiB of RLE blocks
		dir, err, _ := unpackOne(t, z, small)
		if !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes, more than the 1000 listed bytes compress to", len(z))) {
			t.Fatalf("Unpack = %v, want ErrSize", err)
		}
		onlyZst(t, dir, z)
	})
}

// TestArchiveCheckStageFileStreams: the merge's check of a packed stage file is
// bounded the same way, whatever the listed size.
func TestArchiveCheckStageFileStreams(t *testing.T) {
	const listed = 64 << 20
	e := entryOf(make([]byte, listed))
	for _, c := range []struct {
		name string
		z    []byte
		want error
	}{
		{"bomb", rleBomb(2<<30, 128<<10), ErrSize},
		{"exact zeros", rleBomb(listed, 128<<10), nil},
		{"huge window", rleBomb(listed, 1<<29), ErrChecksum},
	} {
		for _, full := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/full=%v", c.name, full), func(t *testing.T) {
				dir := t.TempDir()
				p := filepath.Join(dir, "cuts", "stage_000.bin.zst")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, c.z, 0o644); err != nil {
					t.Fatal(err)
				}
				var forms []StageCheck
				var err error
				alloc := allocated(func() { forms, err = CheckStageFile(vfs.OS(), dir, "cuts/stage_000.bin", e, full) })
				if err != nil || len(forms) != 1 {
					t.Fatalf("CheckStageFile = %+v, %v", forms, err)
				}
				got := forms[0].Err
				if (c.want == nil) != (got == nil) || (c.want != nil && !errors.Is(got, c.want)) {
					t.Fatalf("verdict %v, want %v", got, c.want)
				}
				if alloc > 16<<20 {
					t.Fatalf("checking allocated %d bytes for a stage file listed at %d", alloc, listed)
				}
			})
		}
	}
}

// TestOpenLimitStateDimension: metadata.json's state_dimension is held to
// the same limit as the stage files'.
func TestOpenLimitStateDimension(t *testing.T) {
	for _, d := range []int{-1, MaxStateDimension + 1, 1 << 40} {
		dir := writePolicyDir(t, 3, 5, true)
		editMetadata(t, dir, func(m map[string]any) { m["state_dimension"] = d })
		_, err := Open(dir, Expect{})
		if !errors.Is(err, ErrMetadata) || !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), fmt.Sprintf("state_dimension %d, want 0..%d (policy.MaxStateDimension)", d, MaxStateDimension)) {
			t.Errorf("state_dimension %d: Open = %v, want ErrMetadata and ErrLimit", d, err)
		}
	}
}
