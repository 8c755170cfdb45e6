package main

// Environment failures while the merge writes its outputs: disk full, a
// read-only filesystem, permission denied. They need root (mount, setuid):
// skipped loudly without it, a failure when CI=true.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
)

// needPrivilege stops a test that cannot get a capability it needs.
func needPrivilege(t *testing.T, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s needs root (mount, setuid): %v", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("!!! SKIPPED, NOT TESTED: " + msg + " (run as root; with CI=true this is a failure)")
}

func requireRoot(t *testing.T, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		needPrivilege(t, what, errors.New("not running as root"))
	}
}

// openTempDir returns a new directory that every user may traverse (a
// non-root child must reach it).
func openTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mountTmpfs mounts a tmpfs of the given size and unmounts it at cleanup.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireRoot(t, "mounting a tmpfs")
	mnt := filepath.Join(openTempDir(t), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", mnt).CombinedOutput(); err != nil {
		needPrivilege(t, "mounting a tmpfs", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

func remount(t *testing.T, mnt, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, mnt).CombinedOutput(); err != nil {
		needPrivilege(t, "remounting "+mode, fmt.Errorf("%v: %s", err, out))
	}
}

// partialThenRest leaves out with a partial merge of scenarios 0..3 of 8
// (its manifest on disk), then commits scenarios 4..7: the next merge has
// new outputs to write.
func partialThenRest(t *testing.T, out string) {
	t.Helper()
	list := filepath.Join(t.TempDir(), "first.txt")
	writeIDs(t, list, 0, 1, 2, 3)
	runSimrank(t, nil, "--out", out, "--scenarios", "8", "--rank", "0", "--world", "1", "--scenarios-from", list)
	wantExit(t, mergeShards(t, out), 3)
	runSimrank(t, nil, "--out", out, "--scenarios", "8", "--rank", "0", "--world", "1")
}

// fill writes p until the filesystem is full.
func fill(t *testing.T, p string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// Top up the last partial chunk page by page.
	for {
		if _, err := f.Write(chunk[:4096]); err != nil {
			break
		}
	}
}

// checkUntouched asserts that a failed merge left the previous state: the
// same manifest bytes, the same data, no _SUCCESS, no lock, no temp file.
func checkUntouched(t *testing.T, out string, before map[string]string, manifestBefore []byte, allow ...string) {
	t.Helper()
	if b, _ := os.ReadFile(simPath(out, layout.ManifestName)); !bytes.Equal(b, manifestBefore) {
		t.Fatalf("the previous manifest changed")
	}
	mustNotExist(t, simPath(out, layout.SuccessName))
	mustNotExist(t, filepath.Join(out, layout.LockFile))
	sameSnapshot(t, "a failed merge", before, snapshot(t, out), allow...)
}

func TestDiskFullWhileWritingManifest(t *testing.T) {
	t.Parallel()
	out := mountTmpfs(t, "4m")
	partialThenRest(t, out)
	manifestBefore, _ := os.ReadFile(simPath(out, layout.ManifestName))
	// One page stays free: the merge lock fits, the new 80-row index
	// (about 8 KiB) does not.
	reserve := filepath.Join(out, "reserve")
	if err := os.WriteFile(reserve, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(out, "filler")
	fill(t, filler)
	if err := os.Remove(reserve); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)
	r := mergeShards(t, out)
	wantExit(t, r, 1)
	for _, want := range []string{"no space left on device", filepath.Join(out, layout.SimDir)} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r)
		}
	}
	checkUntouched(t, out, before, manifestBefore)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wantExit(t, mergeShards(t, out), 0)
	mustExist(t, simPath(out, layout.SuccessName))
	checkSummary(t, out)
}

func TestReadOnlyOutput(t *testing.T) {
	t.Parallel()
	out := mountTmpfs(t, "4m")
	partialThenRest(t, out)
	manifestBefore, _ := os.ReadFile(simPath(out, layout.ManifestName))
	before := snapshot(t, out)
	remount(t, out, "ro")
	t.Cleanup(func() { exec.Command("mount", "-o", "remount,rw", out).Run() })
	r := mergeShards(t, out)
	wantExit(t, r, 1)
	for _, want := range []string{"read-only file system", out} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r)
		}
	}
	checkUntouched(t, out, before, manifestBefore)
	// Read-only inspection still works there.
	wantExit(t, mergeShards(t, "report", out), 0)
	remount(t, out, "rw")
	wantExit(t, mergeShards(t, out), 0)
	mustExist(t, simPath(out, layout.SuccessName))
}

func TestPermissionDeniedWhileWritingManifest(t *testing.T) {
	t.Parallel()
	requireRoot(t, "running a merge as another user")
	out := filepath.Join(openTempDir(t), "out")
	partialThenRest(t, out)
	// The merging user owns _shards (lock, journals, temp) but may not
	// write simulation/, which root owns with mode 0755.
	const nobody = 65534
	err := filepath.WalkDir(filepath.Join(out, layout.ShardsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	})
	if err != nil {
		t.Fatal(err)
	}
	manifestBefore, _ := os.ReadFile(simPath(out, layout.ManifestName))
	before := snapshot(t, out)
	r := mergeShardsAs(t, &syscall.Credential{Uid: nobody, Gid: nobody}, out)
	wantExit(t, r, 1)
	for _, want := range []string{"permission denied", simPath(out, layout.IndexName)} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r)
		}
	}
	checkUntouched(t, out, before, manifestBefore)
	wantExit(t, mergeShards(t, out), 0)
	mustExist(t, simPath(out, layout.SuccessName))
}

// TestDiskFullAtEveryStep leaves 0, 1, 2, ... pages free before a merge,
// so that it runs out of space at each of its writes in turn (the lock,
// then the outputs; each replaced output frees its old pages): every
// failure must leave the previous state exactly as it was, not one file
// rewritten, until there is room enough and the merge completes.
func TestDiskFullAtEveryStep(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "4m")
	prepared := t.TempDir()
	partialThenRest(t, prepared)
	var failures []string
	for pages := 0; ; pages++ {
		if pages > 16 {
			t.Fatalf("still failing with %d pages free: %v", pages, failures)
		}
		entries, _ := os.ReadDir(mnt)
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(mnt, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(mnt, "out")
		copyTreeTo(t, prepared, out)
		manifestBefore, _ := os.ReadFile(simPath(out, layout.ManifestName))
		reserve := filepath.Join(mnt, "reserve")
		if err := os.WriteFile(reserve, make([]byte, pages*4096), 0o644); err != nil {
			t.Fatal(err)
		}
		fill(t, filepath.Join(mnt, "filler"))
		if err := os.Remove(reserve); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, out)
		r := mergeShards(t, out)
		if r.code == 0 {
			t.Logf("%d pages free: complete; earlier failures: %v", pages, failures)
			joined := strings.Join(failures, "\n")
			for _, step := range []string{layout.LockFile, layout.IndexName} {
				if !strings.Contains(joined, step) {
					t.Fatalf("no failure while writing %s was exercised: %v", step, failures)
				}
			}
			break
		}
		wantExit(t, r, 1)
		if !strings.Contains(r.stderr, "no space left on device") {
			t.Fatalf("%d pages free: %s", pages, r)
		}
		failures = append(failures, strings.TrimSpace(r.stderr))
		checkUntouched(t, out, before, manifestBefore)
	}
}

// copyTreeTo copies a directory of regular files to to.
func copyTreeTo(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
