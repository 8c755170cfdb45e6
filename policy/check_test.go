package policy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/hydroshard/hydroshard/vfs"
)

func entryOf(b []byte) FileEntry {
	return FileEntry{Bytes: int64(len(b)), XXH64: fmt.Sprintf("%016x", xxhash.Sum64(b))}
}

// pseudoStage is n bytes that compress into several zstd blocks.
func pseudoStage(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(16))
	}
	return b
}

func packBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// TestCheckStageFile: each form of a listed stage file is judged on its
// own, by size or (full) by its bytes, a .zst decompressed.
func TestCheckStageFile(t *testing.T) {
	small := []byte("a stage file under 256 bytes: its zstd frame records no content size")
	big := pseudoStage(300 << 10) // several blocks, content size recorded
	flip := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 0x40; return c }
	cut := func(b []byte) []byte { return b[:len(b)-7] }
	type form struct {
		bin, zst []byte // nil: absent
	}
	for _, content := range []struct {
		name string
		b    []byte
	}{{"small", small}, {"big", big}} {
		b, z := content.b, packBytes(t, content.b)
		for _, c := range []struct {
			name      string
			f         form
			full      bool
			want      []string // per form found, "" ok, else the sentinel's name
			wantForms []string
		}{
			{"plain", form{bin: b}, true, []string{""}, []string{"cuts/stage_003.bin"}},
			{"packed", form{zst: z}, true, []string{""}, []string{"cuts/stage_003.bin.zst"}},
			{"both", form{bin: b, zst: z}, true, []string{"", ""}, []string{"cuts/stage_003.bin", "cuts/stage_003.bin.zst"}},
			{"packed size only", form{zst: z}, false, []string{""}, []string{"cuts/stage_003.bin.zst"}},
			{"plain flipped", form{bin: flip(b)}, true, []string{"checksum"}, []string{"cuts/stage_003.bin"}},
			{"plain flipped size only", form{bin: flip(b)}, false, []string{""}, []string{"cuts/stage_003.bin"}},
			{"plain truncated size only", form{bin: cut(b)}, false, []string{"size"}, []string{"cuts/stage_003.bin"}},
			{"packed flipped", form{zst: flip(z)}, true, []string{"checksum"}, []string{"cuts/stage_003.bin.zst"}},
			{"packed truncated", form{zst: cut(z)}, true, []string{"size"}, []string{"cuts/stage_003.bin.zst"}},
			{"packed truncated size only", form{zst: cut(z)}, false, []string{"size"}, []string{"cuts/stage_003.bin.zst"}},
			{"packed extended size only", form{zst: append(bytes.Clone(z), 0, 0, 0, 0)}, false, []string{"size"}, []string{"cuts/stage_003.bin.zst"}},
			{"good plain, bad packed", form{bin: b, zst: flip(z)}, true, []string{"", "checksum"}, []string{"cuts/stage_003.bin", "cuts/stage_003.bin.zst"}},
			{"packed of other bytes", form{zst: packBytes(t, flip(b))}, true, []string{"checksum"}, []string{"cuts/stage_003.bin.zst"}},
			{"neither", form{}, true, nil, nil},
		} {
			t.Run(content.name+"/"+c.name, func(t *testing.T) {
				dir := t.TempDir()
				p := filepath.Join(dir, "cuts", "stage_003.bin")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if c.f.bin != nil {
					if err := os.WriteFile(p, c.f.bin, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if c.f.zst != nil {
					if err := os.WriteFile(p+PackedExt, c.f.zst, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				forms, err := CheckStageFile(vfs.OS(), dir, "cuts/stage_003.bin", entryOf(b), c.full)
				if err != nil {
					t.Fatal(err)
				}
				if len(forms) != len(c.wantForms) {
					t.Fatalf("forms %+v, want %v", forms, c.wantForms)
				}
				for i, f := range forms {
					if f.File != c.wantForms[i] {
						t.Errorf("form %d is %s, want %s", i, f.File, c.wantForms[i])
					}
					var got string
					switch {
					case f.Err == nil:
					case errors.Is(f.Err, ErrSize):
						got = "size"
					case errors.Is(f.Err, ErrChecksum):
						got = "checksum"
					default:
						got = f.Err.Error()
					}
					if got != c.want[i] {
						t.Errorf("%s: %v, want %q", f.File, f.Err, c.want[i])
					}
				}
			})
		}
	}
	// metadata.json's keys and entries are untrusted.
	for _, bad := range []struct {
		rel string
		e   FileEntry
	}{
		{"../etc/stage_000.bin", entryOf(small)},
		{"cuts/../../stage_000.bin", entryOf(small)},
		{"other/stage_000.bin", entryOf(small)},
		{"cuts/stage_0.bin", entryOf(small)},
		{"cuts/stage_000.bin", FileEntry{Bytes: 1, XXH64: "zz"}},
		{"cuts/stage_000.bin", FileEntry{Bytes: 1 << 40, XXH64: "0000000000000000"}},
	} {
		if _, err := CheckStageFile(vfs.OS(), t.TempDir(), bad.rel, bad.e, true); !errors.Is(err, ErrMetadata) {
			t.Errorf("CheckStageFile(%q, %+v) = %v, want ErrMetadata", bad.rel, bad.e, err)
		}
	}
}

// TestPackedDecodeIsBounded: a .zst that decompresses to far more than
// metadata.json lists (a frame without a content size, or one declaring
// a huge one) is refused without allocating more than the listed size
// (plus the decoder's fixed state), by CheckStageFile and by Unpack.
func TestPackedDecodeIsBounded(t *testing.T) {
	const listed = 64 << 10
	const bomb = 256 << 20 // what the frame really holds
	var noFCS bytes.Buffer // a streaming frame: no content size in its header
	enc, err := zstd.NewWriter(&noFCS, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range bomb / len(zeros) {
		if _, err := enc.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if h := (zstd.Header{}); h.Decode(noFCS.Bytes()) != nil || h.HasFCS {
		t.Fatal("the streaming frame records its content size: the test needs one that does not")
	}
	withFCS := packBytes(t, make([]byte, bomb))
	e := entryOf(make([]byte, listed))
	for _, c := range []struct {
		name string
		z    []byte
	}{{"no content size", noFCS.Bytes()}, {"declared content size", withFCS}} {
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
				alloc := allocated(func() {
					forms, err = CheckStageFile(vfs.OS(), dir, "cuts/stage_000.bin", e, full)
				})
				if err != nil || len(forms) != 1 || !errors.Is(forms[0].Err, ErrSize) {
					t.Fatalf("CheckStageFile = %+v, %v; want one form failing with ErrSize", forms, err)
				}
				if alloc > 16<<20 {
					t.Fatalf("checking a .zst listed at %d bytes allocated %d bytes", listed, alloc)
				}
			})
		}
		t.Run(c.name+"/unpack", func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "cuts", "stage_000.bin.zst")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, c.z, 0o644); err != nil {
				t.Fatal(err)
			}
			md := fmt.Sprintf(`{"files":{"cuts/stage_000.bin":{"bytes":%d,"xxh64":%q}}}`, e.Bytes, e.XXH64)
			if err := os.WriteFile(filepath.Join(dir, "metadata.json"), []byte(md), 0o644); err != nil {
				t.Fatal(err)
			}
			alloc := allocated(func() { err = Unpack(vfs.OS(), dir) })
			if !errors.Is(err, ErrSize) {
				t.Fatalf("Unpack = %v, want ErrSize", err)
			}
			if alloc > 16<<20 {
				t.Fatalf("unpacking a .zst listed at %d bytes allocated %d bytes", listed, alloc)
			}
		})
	}
}

// allocated is the number of bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
