package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
)

// TestSymlinkedSimulation: OUT/simulation may be a symbolic link to
// another disk (common on clusters). Ranks write through it, and the
// merge and verify give the same results as without the link (before,
// the merge walked the link itself, found no data and called every
// committed file lost).
func TestSymlinkedSimulation(t *testing.T) {
	t.Parallel()
	const job = "7401"
	args := []string{"--scenarios", "3", "--seed", "3", "--quiet"}
	refIndex := referenceIndex(t, 2, job, args...)

	out, disk := t.TempDir(), t.TempDir()
	if err := os.Symlink(disk, filepath.Join(out, layout.SimDir)); err != nil {
		t.Fatal(err)
	}
	runRanks(t, 2, job, append([]string{"--out", out}, args...)...)
	wantExit(t, mergeShards(t, out), 0)
	if got := readFile(t, simPath(out, layout.IndexName)); !bytes.Equal(got, refIndex) {
		t.Fatal("the integrity index through the link differs from one without it")
	}
	mustExist(t, filepath.Join(disk, layout.IndexName))
	wantExit(t, mergeShards(t, "verify", "--full", out), 0)
	before := snapshot(t, disk)
	r := mergeJSON(t, 0, out)
	if w, ok := r["written"]; ok && w != nil {
		t.Fatalf("a second merge wrote %v", w)
	}
	sameSnapshot(t, "a second merge through the link", before, snapshot(t, disk))
}
