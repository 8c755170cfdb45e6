package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/vfs"
)

// mergedPolicy trains 2 ranks (4 iterations, checkpoints every 2), merges
// them and returns the merged policy directory.
func mergedPolicy(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	runRanks(t, 2, "71", "--out", out, "--scenarios", "2", "--iterations", "4", "--forward-passes", "4", "--checkpoint-every", "2")
	wantExit(t, mergeShards(t, out), 0)
	return filepath.Join(out, "policy")
}

// stageFiles lists the files under a policy directory's stage dirs.
func stageFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"cuts", "basis", "states"} {
		m, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, f := range m {
			out = append(out, sub+"/"+filepath.Base(f))
		}
	}
	return out
}

// TestPolicyPackUnpack: pack replaces every stage file by a .zst that
// policy.Open refuses with a clear error; unpack restores byte-identical
// files that policy.Open accepts.
func TestPolicyPackUnpack(t *testing.T) {
	t.Parallel()
	c := tinyCaseT(t)
	dir := mergedPolicy(t)
	expect := policy.Expect{StateDimension: c.StateDimension(), NumStages: c.Stages}
	before := snapshotHashes(t, dir)
	meta, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}

	wantExit(t, mergeShards(t, "policy", "pack", dir), 0)
	files := stageFiles(t, dir)
	if len(files) != len(before) {
		t.Fatalf("after pack: %v, want one .zst per %v", files, before)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".bin.zst") {
			t.Fatalf("after pack %s is left", f)
		}
	}
	_, err = policy.Open(dir, expect)
	if !errors.Is(err, policy.ErrPacked) || !strings.Contains(err.Error(), "merge-shards policy unpack") {
		t.Fatalf("packed directory: policy.Open = %v, want ErrPacked telling to unpack", err)
	}
	// Packing again changes nothing.
	wantExit(t, mergeShards(t, "policy", "pack", dir), 0)

	wantExit(t, mergeShards(t, "policy", "unpack", dir), 0)
	if after := snapshotHashes(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("unpack did not restore the files:\n%v\n%v", before, after)
	}
	if n := len(stageFiles(t, dir)); n != len(before) {
		t.Fatalf("after unpack: %v", stageFiles(t, dir))
	}
	if m, _ := os.ReadFile(filepath.Join(dir, "metadata.json")); string(m) != string(meta) {
		t.Fatal("metadata.json changed")
	}
	if _, err := policy.Open(dir, expect); err != nil {
		t.Fatalf("policy.Open after unpack: %v", err)
	}
	// Library API, same round trip.
	if err := policy.Pack(vfs.OS(), dir); err != nil {
		t.Fatal(err)
	}
	if err := policy.Unpack(vfs.OS(), dir); err != nil {
		t.Fatal(err)
	}
	if after := snapshotHashes(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("Pack/Unpack did not restore the files")
	}
}

// TestPolicyUnpackCorrupt: a .zst with a flipped byte makes unpack exit 2
// naming it, and the .zst stays (nothing lost).
func TestPolicyUnpackCorrupt(t *testing.T) {
	t.Parallel()
	dir := mergedPolicy(t)
	wantExit(t, mergeShards(t, "policy", "pack", dir), 0)
	victim := filepath.Join(dir, "cuts", "stage_001.bin.zst")
	buf, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)/2] ^= 0x40
	if err := os.WriteFile(victim, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	r := mergeShards(t, "policy", "unpack", dir)
	wantExit(t, r, 2)
	if !strings.Contains(r.stderr, "cuts/stage_001.bin.zst") {
		t.Fatalf("unpack does not name the damaged file:\n%s", r)
	}
	got, err := os.ReadFile(victim)
	if err != nil || string(got) != string(buf) {
		t.Fatalf("damaged .zst not left in place: %v", err)
	}
	mustNotExist(t, filepath.Join(dir, "cuts", "stage_001.bin"))
	// The library reports a typed error naming the file.
	err = policy.Unpack(vfs.OS(), dir)
	var ae *policy.ArchiveError
	if !errors.As(err, &ae) || ae.File != "cuts/stage_001.bin.zst" || !errors.Is(err, policy.ErrChecksum) {
		t.Fatalf("Unpack = %v, want *ArchiveError for cuts/stage_001.bin.zst wrapping ErrChecksum", err)
	}
}

// TestPolicyUsage: bad policy invocations exit 1.
func TestPolicyUsage(t *testing.T) {
	t.Parallel()
	wantExit(t, mergeShards(t, "policy"), 1)
	wantExit(t, mergeShards(t, "policy", "zip", t.TempDir()), 1)
	wantExit(t, mergeShards(t, "policy", "pack"), 1)
	wantExit(t, mergeShards(t, "policy", "unpack", t.TempDir()), 1) // no metadata.json
}
