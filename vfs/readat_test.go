package vfs_test

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

// TestOpenReaderAt: the files of OS, Mem and an Injector read at any
// offset, without moving each other, and report their size; an OpRead
// rule fails ReadAt as it fails Read.
func TestOpenReaderAt(t *testing.T) {
	const body = "0123456789abcdef"
	dir := t.TempDir()
	m := vfs.NewMem()
	if err := m.WriteFile("/m/f", []byte(body)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fsys vfs.FS
		path string
	}{
		{"os", vfs.OS(), filepath.Join(dir, "f")},
		{"mem", m, "/m/f"},
		{"inject", vfs.Inject(m), "/m/f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "os" {
				if _, err := vfs.WriteNewSync(tc.fsys, tc.path, func(w io.Writer) error { _, err := io.WriteString(w, body); return err }); err != nil {
					t.Fatal(err)
				}
			}
			ra, size, c, err := vfs.OpenReaderAt(tc.fsys, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if size != int64(len(body)) {
				t.Errorf("size %d, want %d", size, len(body))
			}
			b := make([]byte, 4)
			for _, off := range []int64{10, 0, 12} {
				if n, err := ra.ReadAt(b, off); n != 4 || err != nil && err != io.EOF || string(b) != body[off:off+4] {
					t.Errorf("ReadAt(%d) = %d %v %q", off, n, err, b[:n])
				}
			}
			if n, err := ra.ReadAt(b, 14); n != 2 || err != io.EOF {
				t.Errorf("ReadAt past the end = %d %v, want 2 io.EOF", n, err)
			}
			sr := io.NewSectionReader(ra, 0, size)
			if all, err := io.ReadAll(sr); err != nil || string(all) != body {
				t.Errorf("section read %q %v", all, err)
			}
		})
	}
	in := vfs.Inject(m, vfs.Rule{Op: vfs.OpRead, Path: "/m/f"})
	ra, _, c, err := vfs.OpenReaderAt(in, "/m/f")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := ra.ReadAt(make([]byte, 1), 0); err == nil {
		t.Errorf("an OpRead rule did not fail ReadAt")
	}
}
