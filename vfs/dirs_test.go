package vfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

// syncLog is an FS that records the directories synced through it.
type syncLog struct {
	vfs.FS
	mu    sync.Mutex
	syncs []string
}

func (s *syncLog) SyncDir(name string) error {
	s.mu.Lock()
	s.syncs = append(s.syncs, name)
	s.mu.Unlock()
	return s.FS.SyncDir(name)
}

// durableMem returns a Mem holding the directory /out, durable.
func durableMem(t *testing.T) *vfs.Mem {
	t.Helper()
	m := vfs.NewMem()
	if err := m.Mkdir("/out"); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

// commit is the rank writer's protocol in miniature: a temp file written
// and synced, then published into a partition directory.
func commit(d *vfs.Dirs, tmp, final, data string) error {
	if err := d.Ensure(filepath.Dir(tmp)); err != nil {
		return err
	}
	if _, err := vfs.WriteNewSync(d.FS(), tmp, writeString(data)); err != nil {
		return err
	}
	return d.Publish(tmp, final)
}

const (
	tmpPath   = "/out/_shards/tmp/a.tmp"
	finalPath = "/out/simulation/costs/scenario_id=0/data.parquet"
)

// TestPublishDurable: after Publish returns, a power cut keeps the file,
// its bytes and every directory on its path, even if the root was missing.
func TestPublishDurable(t *testing.T) {
	for _, root := range []string{"/out", "/deep/er/out"} {
		t.Run(root, func(t *testing.T) {
			m := vfs.NewMem()
			d := vfs.NewDirs(m, root)
			tmp := strings.Replace(tmpPath, "/out", root, 1)
			final := strings.Replace(finalPath, "/out", root, 1)
			if err := commit(d, tmp, final, "rows"); err != nil {
				t.Fatal(err)
			}
			c := m.CrashClone(vfs.CrashOptions{})
			if b, err := c.ReadFile(final); err != nil || string(b) != "rows" {
				t.Fatalf("after a crash %s = %q, %v; files: %v", final, b, err, c.Paths())
			}
			if b, _ := m.ReadFile(final); string(b) != "rows" {
				t.Errorf("live file = %q", b)
			}
		})
	}
}

// TestPublishEveryCrashPoint crashes the commit after each of its
// operations in turn: once Publish has returned the file survives a power
// cut whole, and at no point does the final name hold partial data, in the
// durable state or in any of the random states a crash may leave.
func TestPublishEveryCrashPoint(t *testing.T) {
	data := strings.Repeat("x", 3<<20) // more than one buffer: several writes
	for k := 0; ; k++ {
		m := durableMem(t)
		m.CrashAfter(m.Ops() + k)
		err := commit(vfs.NewDirs(m, "/out"), tmpPath, finalPath, data)
		if err == nil && m.Crashed() {
			t.Fatalf("k=%d: commit succeeded on a crashed Mem", k)
		}
		if err != nil && !errors.Is(err, vfs.ErrCrashed) {
			t.Fatalf("k=%d: %v", k, err)
		}
		for seed := range uint64(20) {
			opts := vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, uint64(k)))}
			if seed == 0 {
				opts.Rand = nil
			}
			b, rerr := m.CrashClone(opts).ReadFile(finalPath)
			if rerr == nil && string(b) != data {
				t.Fatalf("k=%d seed=%d: the final file holds %d of %d bytes", k, seed, len(b), len(data))
			}
			if err == nil && seed == 0 && rerr != nil {
				t.Fatalf("k=%d: published file lost in a crash: %v", k, rerr)
			}
		}
		if !m.Crashed() {
			if k < 10 {
				t.Fatalf("the commit took only %d operations", k)
			}
			break
		}
	}
}

// TestEnsureExistingDirFromDeadProcess is the bug the old MkdirAllSync had:
// a directory created by an earlier process that died before syncing the
// parent exists, so MkdirAllSync returned early, and a power cut took the
// directory and the file published into it.
func TestEnsureExistingDirFromDeadProcess(t *testing.T) {
	m := durableMem(t)
	// The earlier process: Mkdir without syncing /out, then death.
	for _, p := range []string{"/out/simulation", "/out/simulation/costs"} {
		if err := m.Mkdir(p); err != nil {
			t.Fatal(err)
		}
	}
	restarted := m.Clone() // the machine kept running: unsynced state too
	if _, err := restarted.Stat("/out/simulation/costs"); err != nil {
		t.Fatal("the directory should still be there for the new process:", err)
	}
	if err := commit(vfs.NewDirs(restarted, "/out"), tmpPath, finalPath, "rows"); err != nil {
		t.Fatal(err)
	}
	c := restarted.CrashClone(vfs.CrashOptions{})
	if b, err := c.ReadFile(finalPath); err != nil || string(b) != "rows" {
		t.Fatalf("published file lost in a crash (%v): Ensure did not sync the parent of an existing directory; files left: %v", err, c.Paths())
	}
}

// TestSyncedDataUnsyncedEntry is the other bug: fsyncing a file does not
// make its name durable. Without a sync of its directory the file is gone
// after a power cut.
func TestSyncedDataUnsyncedEntry(t *testing.T) {
	m := durableMem(t)
	if _, err := vfs.WriteNewSync(m, "/out/f", writeString("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CrashClone(vfs.CrashOptions{}).Stat("/out/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file with synced data but unsynced entry survived a crash: %v", err)
	}
	if err := vfs.NewDirs(m, "/out").SyncDir("/out"); err != nil {
		t.Fatal(err)
	}
	if b, err := m.CrashClone(vfs.CrashOptions{}).ReadFile("/out/f"); err != nil || string(b) != "data" {
		t.Fatalf("after the directory sync: %q, %v", b, err)
	}
}

// TestEnsureSyncs: which directories Ensure syncs, and that a Dirs syncs
// each parent once.
func TestEnsureSyncs(t *testing.T) {
	m := vfs.NewMem()
	m.Mkdir("/out") // not synced: the root's own entry is not Ensure's business
	m.Mkdir("/out/a")
	log := &syncLog{FS: m}
	d := vfs.NewDirs(log, "/out/")
	for _, dir := range []string{"/out/a/b/c", "/out/a/b/c", "/out/a/b", "/out", "/out/a/x"} {
		if err := d.Ensure(dir); err != nil {
			t.Fatal(err)
		}
	}
	// /out for a (existing) and for x's parent a is synced once, b's parent
	// a, c's parent b.
	want := []string{"/out", "/out/a", "/out/a/b", "/out/a"}
	if !slices.Equal(log.syncs, want) {
		t.Errorf("synced %v, want %v", log.syncs, want)
	}
	c := m.CrashClone(vfs.CrashOptions{})
	if _, err := c.Stat("/out"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the existing root's entry was synced: %v", err)
	}
	// A second Dirs does not trust the first one's work.
	log.syncs = nil
	if err := vfs.NewDirs(log, "/out").Ensure("/out/a/b"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/out", "/out/a"}; !slices.Equal(log.syncs, want) {
		t.Errorf("a new Dirs synced %v, want %v", log.syncs, want)
	}
}

// TestEnsureErrors: outside the root, a file on the way, a failing sync.
func TestEnsureErrors(t *testing.T) {
	m := durableMem(t)
	m.WriteFile("/out/file", nil)
	m.WriteFile("/top", nil)
	for _, c := range []struct {
		root, dir string
		want      string
	}{
		{"/out", "/elsewhere", "not under /out"},
		{"/out", "/outside", "not under /out"},
		{"/out", "/out/../x", "not under /out"},
		{"/out", "relative", "not under /out"},
		{"/out", "/out/file/x", "/out/file exists and is not a directory"},
		{"/out", "/out/file", "/out/file exists and is not a directory"},
		{"/top/out", "/top/out/x", "stat /top/out: not a directory"},
	} {
		err := vfs.NewDirs(m, c.root).Ensure(c.dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Ensure(%s) under %s = %v, want %q", c.dir, c.root, err, c.want)
		}
	}
	in := vfs.Inject(m, vfs.Rule{Op: vfs.OpSyncDir, Path: "out"})
	d := vfs.NewDirs(in, "/out")
	if err := d.Ensure("/out/new"); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Ensure with a failing sync = %v", err)
	}
	// Not remembered as durable: the next Ensure tries again.
	if err := d.Ensure("/out/new"); !errors.Is(err, vfs.ErrInjected) || in.Hits(0) != 2 {
		t.Errorf("second Ensure = %v after %d syncs", err, in.Hits(0))
	}
}

// TestPublishExisting: committed data is never replaced, and a refused
// Publish changes nothing.
func TestPublishExisting(t *testing.T) {
	for _, u := range allFS(t)[:2] {
		t.Run(u.name, func(t *testing.T) {
			d := vfs.NewDirs(u.fsys, u.dir)
			tmp, final := filepath.Join(u.dir, "t.tmp"), filepath.Join(u.dir, "p", "data.parquet")
			if err := commit(d, tmp, final, "first"); err != nil {
				t.Fatal(err)
			}
			if _, err := vfs.WriteNewSync(u.fsys, tmp, writeString("second")); err != nil {
				t.Fatal(err)
			}
			err := d.Publish(tmp, final)
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "publishing "+final) {
				t.Fatalf("Publish over a committed file = %v", err)
			}
			if got := read(t, u.fsys, final); got != "first" {
				t.Errorf("final = %q", got)
			}
			if got := read(t, u.fsys, tmp); got != "second" {
				t.Errorf("tmp = %q", got)
			}
		})
	}
}

// TestReplace: the temp file replaces the final one and the replacement is
// durable; the old contents never come back.
func TestReplace(t *testing.T) {
	m := durableMem(t)
	m.WriteFile("/out/policy/metadata.json", []byte("old"))
	d := vfs.NewDirs(m, "/out")
	if _, err := vfs.WriteNewSync(m, "/out/policy/metadata.json.tmp", writeString("new")); err != nil {
		t.Fatal(err)
	}
	if err := d.Replace("/out/policy/metadata.json.tmp", "/out/policy/metadata.json"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*vfs.Mem{m, m.CrashClone(vfs.CrashOptions{})} {
		if b, err := c.ReadFile("/out/policy/metadata.json"); err != nil || string(b) != "new" {
			t.Errorf("metadata.json = %q, %v", b, err)
		}
		if ok, _ := vfs.Exists(c, "/out/policy/metadata.json.tmp"); ok {
			t.Error("temp file still there")
		}
	}
	if err := d.Replace("/out/missing.tmp", "/out/x"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "replacing /out/x") {
		t.Errorf("Replace of a missing temp file = %v", err)
	}
}

// TestRemove: the removal is durable, a missing name is fine (its parent
// is still synced), a missing parent too, and a removed directory is
// created again by the next Ensure.
func TestRemove(t *testing.T) {
	m := durableMem(t)
	m.WriteFile("/out/p/f", []byte("x"))
	log := &syncLog{FS: m}
	d := vfs.NewDirs(log, "/out")
	if err := d.Ensure("/out/p/q"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("/out/p"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("Remove of a non-empty directory = %v", err)
	}
	for _, name := range []string{"/out/p/f", "/out/p/f", "/out/nodir/f", "/out/p/q", "/out/p"} {
		if err := d.Remove(name); err != nil {
			t.Errorf("Remove(%s) = %v", name, err)
		}
	}
	if c := m.CrashClone(vfs.CrashOptions{}); len(c.Paths()) != 0 {
		t.Errorf("after a crash: %v", c.Paths())
	}
	log.syncs = nil
	if err := d.Ensure("/out/p/q"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stat("/out/p/q"); err != nil {
		t.Fatalf("Ensure after Remove: %v (synced %v)", err, log.syncs)
	}
}

// TestDirsConcurrent publishes from many goroutines into overlapping new
// directories of the real file system (run with -race).
func TestDirsConcurrent(t *testing.T) {
	root := t.TempDir()
	d := vfs.NewDirs(vfs.OS(), filepath.Join(root, "out"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmp := filepath.Join(root, "out", "_shards", "tmp", fmt.Sprintf("%d.tmp", i))
			final := filepath.Join(root, "out", "sim", fmt.Sprintf("t%d", i%4), fmt.Sprintf("scenario_id=%d", i%8), fmt.Sprintf("part-%d.parquet", i))
			errs <- commit(d, tmp, final, fmt.Sprint(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	n := 0
	vfs.WalkDir(vfs.OS(), root, func(p string, e fs.DirEntry, err error) error {
		if strings.HasSuffix(p, ".parquet") {
			n++
		}
		return err
	})
	if n != 64 {
		t.Errorf("%d files published, want 64", n)
	}
}
