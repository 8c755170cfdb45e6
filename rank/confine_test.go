package rank_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// TestWriterNeverWritesThroughALink: a symbolic link planted inside OUT
// where the layout has a directory (here a table's directory, pointing to
// a directory outside OUT) makes the commit fail with an error naming the
// link; nothing is written into the link's target. OUT's own simulation/
// may be a link to another disk (TestWriterThroughLinkedSimulation).
func TestWriterNeverWritesThroughALink(t *testing.T) {
	root := t.TempDir()
	out, outside := filepath.Join(root, "out"), filepath.Join(root, "outside")
	if err := os.MkdirAll(filepath.Join(out, layout.SimDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	c := tinyCase(t)
	ctx := context.Background()
	entity := c.Entities()[0]
	if err := os.Symlink(outside, filepath.Join(out, layout.SimDir, entity)); err != nil {
		t.Fatal(err)
	}
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 1})
	if err != nil {
		t.Fatal(err)
	}
	werr := w.WriteScenario(ctx, gen(t, c, 0))
	if werr == nil {
		werr = w.Flush(ctx)
	}
	cerr := w.Close()
	var link *vfs.SymlinkError
	if !errors.As(werr, &link) && !errors.As(cerr, &link) {
		t.Fatalf("write: %v; close: %v; want a *vfs.SymlinkError", werr, cerr)
	}
	if link.Path != filepath.Join(out, layout.SimDir, entity) {
		t.Errorf("the error names %s, want the link", link.Path)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("the writer wrote %d entries through the link", len(entries))
	}
}

// TestWriterThroughLinkedSimulation: OUT/simulation may be a link to
// another disk: the writer commits through it.
func TestWriterThroughLinkedSimulation(t *testing.T) {
	root := t.TempDir()
	out, disk := filepath.Join(root, "out"), filepath.Join(root, "disk")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(disk, filepath.Join(out, layout.SimDir)); err != nil {
		t.Fatal(err)
	}
	c := tinyCase(t)
	ctx := context.Background()
	w, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteScenario(ctx, gen(t, c, 0)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Entities() {
		if _, err := os.Stat(filepath.Join(disk, e, layout.Partition(0, 0), layout.DataFileName)); err != nil {
			t.Fatal(err)
		}
	}
}
