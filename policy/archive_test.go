package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/hydroshard/hydroshard/vfs"
)

// archiveDir writes a policy-shaped directory whose metadata.json lists
// the stage files (Pack/Unpack check bytes, not structure).
func archiveDir(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	content := map[string][]byte{
		"cuts/stage_000.bin":  []byte("cuts zero, cuts zero, cuts zero"),
		"cuts/stage_001.bin":  []byte("cuts one"),
		"basis/stage_000.bin": []byte{0, 1, 2, 3},
	}
	files := map[string]FileEntry{}
	for rel, b := range content {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files[rel] = FileEntry{Bytes: int64(len(b)), XXH64: fmt.Sprintf("%016x", xxhash.Sum64(b))}
	}
	md, _ := json.Marshal(map[string]any{"files": files})
	if err := os.WriteFile(filepath.Join(dir, "metadata.json"), md, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, content
}

func TestPackResumesAndRefusesBadInput(t *testing.T) {
	dir, content := archiveDir(t)
	if err := Pack(vfs.OS(), dir); err != nil {
		t.Fatal(err)
	}
	// An unpack interrupted after the rename: both files present.
	bin := filepath.Join(dir, "cuts", "stage_001.bin")
	if err := os.WriteFile(bin, content["cuts/stage_001.bin"], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Unpack(vfs.OS(), dir); err != nil {
		t.Fatal(err)
	}
	for rel, want := range content {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		got, err := os.ReadFile(p)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: %q, %v", rel, got, err)
		}
		if _, err := os.Stat(p + PackedExt); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s%s left after unpack", rel, PackedExt)
		}
	}
	// A .bin that differs from metadata.json is not packed and stays.
	if err := os.WriteFile(bin, []byte("cuts 1ne"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Pack(vfs.OS(), dir)
	var ae *ArchiveError
	if !errors.As(err, &ae) || ae.File != "cuts/stage_001.bin" || !errors.Is(err, ErrChecksum) {
		t.Fatalf("Pack = %v, want *ArchiveError for cuts/stage_001.bin wrapping ErrChecksum", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin + PackedExt); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a .zst was written for a file that fails its checksum")
	}
}
