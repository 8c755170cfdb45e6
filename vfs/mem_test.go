package vfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

// state describes a Mem's current tree (directories with a trailing
// slash, files with their contents), for comparisons.
func state(t *testing.T, m *vfs.Mem) string {
	t.Helper()
	m = m.Clone() // a crashed Mem refuses reads; its clone does not
	var b strings.Builder
	err := vfs.WalkDir(m, "/", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			fmt.Fprintf(&b, "%s/ ", p)
			return nil
		}
		data, err := m.ReadFile(p)
		fmt.Fprintf(&b, "%s=%q ", p, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fullState is the current state and the state a power cut leaves.
func fullState(t *testing.T, m *vfs.Mem) string {
	return state(t, m) + "| " + state(t, m.CrashClone(vfs.CrashOptions{}))
}

func crashed(m *vfs.Mem) *vfs.Mem { return m.CrashClone(vfs.CrashOptions{}) }

func TestMemFileDurability(t *testing.T) {
	m := durableMem(t)
	f, err := m.Create("/out/f")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "abc")
	m.SyncDir("/out")
	if b, err := crashed(m).ReadFile("/out/f"); err != nil || len(b) != 0 {
		t.Errorf("unsynced data: after a crash %q, %v; want an empty file", b, err)
	}
	f.Sync()
	io.WriteString(f, "def")
	f.Close()
	if b, _ := crashed(m).ReadFile("/out/f"); string(b) != "abc" {
		t.Errorf("after a crash %q, want the synced %q", b, "abc")
	}
	if b, _ := m.ReadFile("/out/f"); string(b) != "abcdef" {
		t.Errorf("live %q", b)
	}
	// A file removed but not synced away comes back with its durable data.
	m.Remove("/out/f")
	if b, err := crashed(m).ReadFile("/out/f"); err != nil || string(b) != "abc" {
		t.Errorf("unsynced removal: after a crash %q, %v", b, err)
	}
	m.SyncDir("/out")
	if _, err := crashed(m).Stat("/out/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("synced removal undone by a crash: %v", err)
	}
	// A new directory needs its parent synced; its entries need itself.
	m.Mkdir("/out/d")
	m.WriteFile("/out/d/keep", nil) // WriteFile makes the entries on its way durable
	m.Mkdir("/out/d2")
	m.Mkdir("/out/d2/sub")
	m.SyncDir("/out/d2")
	if _, err := crashed(m).Stat("/out/d2"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory with an unsynced entry survived: %v", err)
	}
	m.SyncDir("/out")
	if got, want := crashed(m).Paths(), []string{"/out/d/keep"}; !slices.Equal(got, want) {
		t.Errorf("files after a crash %v, want %v", got, want)
	}
	if _, err := crashed(m).Stat("/out/d2/sub"); err != nil {
		t.Error(err)
	}
}

// TestMemRename: a rename is durable only after the target directory is
// synced; with only the target synced the source entry comes back too.
func TestMemRename(t *testing.T) {
	m := durableMem(t)
	m.WriteFile("/out/a/f", []byte("data"))
	m.WriteFile("/out/b/keep", nil)
	if err := m.RenameNoReplace("/out/a/f", "/out/b/g"); err != nil {
		t.Fatal(err)
	}
	check := func(what string, want ...string) {
		t.Helper()
		c := crashed(m)
		if got := c.Paths(); !slices.Equal(got, want) {
			t.Errorf("%s: after a crash %v, want %v", what, got, want)
		}
		for _, p := range c.Paths() {
			if b, _ := c.ReadFile(p); p != "/out/b/keep" && string(b) != "data" {
				t.Errorf("%s: %s = %q", what, p, b)
			}
		}
	}
	check("nothing synced", "/out/a/f", "/out/b/keep")
	m.SyncDir("/out/b")
	check("target synced", "/out/a/f", "/out/b/g", "/out/b/keep")
	m.SyncDir("/out/a")
	check("both synced", "/out/b/g", "/out/b/keep")
	// Rename within one directory, synced once.
	m.Rename("/out/b/g", "/out/b/h")
	check("same directory, unsynced", "/out/b/g", "/out/b/keep")
	m.SyncDir("/out/b")
	check("same directory, synced", "/out/b/h", "/out/b/keep")
}

// TestMemCrashAfter: operation k+1 fails with ErrCrashed and changes
// nothing, and so does everything after it, reads and open files included.
func TestMemCrashAfter(t *testing.T) {
	type step struct {
		name string
		run  func(m *vfs.Mem, f, r *vfs.File) error
	}
	mut := []step{
		{"create", func(m *vfs.Mem, f, r *vfs.File) (err error) { *f, err = m.Create("/out/n"); return }},
		{"write", func(m *vfs.Mem, f, r *vfs.File) error { _, err := io.WriteString(*f, "12"); return err }},
		{"sync", func(m *vfs.Mem, f, r *vfs.File) error { return (*f).Sync() }},
		{"write", func(m *vfs.Mem, f, r *vfs.File) error { _, err := io.WriteString(*f, "34"); return err }},
		{"mkdir", func(m *vfs.Mem, f, r *vfs.File) error { return m.Mkdir("/out/d") }},
		{"sync-dir", func(m *vfs.Mem, f, r *vfs.File) error { return m.SyncDir("/out") }},
		{"rename-noreplace", func(m *vfs.Mem, f, r *vfs.File) error { return m.RenameNoReplace("/out/n", "/out/d/n") }},
		{"rename", func(m *vfs.Mem, f, r *vfs.File) error { return m.Rename("/out/d/n", "/out/old") }},
		{"remove", func(m *vfs.Mem, f, r *vfs.File) error { return m.Remove("/out/d") }},
		{"sync-dir", func(m *vfs.Mem, f, r *vfs.File) error { return m.SyncDir("/out") }},
	}
	// Every kind of operation, none of which may work after the crash.
	all := []step{
		{"write", func(m *vfs.Mem, f, r *vfs.File) error { _, err := io.WriteString(*f, "5"); return err }},
		{"sync", func(m *vfs.Mem, f, r *vfs.File) error { return (*f).Sync() }},
		{"open", func(m *vfs.Mem, f, r *vfs.File) error { _, err := m.Open("/out/old"); return err }},
		{"stat", func(m *vfs.Mem, f, r *vfs.File) error { _, err := m.Stat("/out"); return err }},
		{"lstat", func(m *vfs.Mem, f, r *vfs.File) error { _, err := m.Lstat("/out"); return err }},
		{"read-dir", func(m *vfs.Mem, f, r *vfs.File) error { _, err := m.ReadDir("/out"); return err }},
		{"read", func(m *vfs.Mem, f, r *vfs.File) error { _, err := (*r).Read(make([]byte, 1)); return err }},
		{"file stat", func(m *vfs.Mem, f, r *vfs.File) error { _, err := (*r).Stat(); return err }},
		{"close", func(m *vfs.Mem, f, r *vfs.File) error { return (*r).Close() }},
		{"create", func(m *vfs.Mem, f, r *vfs.File) error { _, err := m.Create("/out/z"); return err }},
		{"mkdir", func(m *vfs.Mem, f, r *vfs.File) error { return m.Mkdir("/out/z") }},
		{"remove", func(m *vfs.Mem, f, r *vfs.File) error { return m.Remove("/out/old") }},
		{"sync-dir", func(m *vfs.Mem, f, r *vfs.File) error { return m.SyncDir("/out") }},
	}
	for k := 0; k <= len(mut); k++ {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			m := durableMem(t)
			m.WriteFile("/out/old", []byte("old"))
			r, err := m.Open("/out/old")
			if err != nil {
				t.Fatal(err)
			}
			var f vfs.File
			base := m.Ops()
			m.CrashAfter(base + k)
			for i, s := range mut[:k] {
				if err := s.run(m, &f, &r); err != nil {
					t.Fatalf("operation %d (%s) before the crash: %v", i+1, s.name, err)
				}
			}
			if m.Crashed() || m.Ops() != base+k {
				t.Fatalf("Crashed = %v, Ops = %d after %d operations", m.Crashed(), m.Ops()-base, k)
			}
			before := fullState(t, m)
			for _, s := range append(mut[k:], all...) {
				if s.name == "write" && f == nil || s.name == "sync" && f == nil {
					continue
				}
				if err := s.run(m, &f, &r); !errors.Is(err, vfs.ErrCrashed) {
					t.Errorf("%s after the crash: %v, want ErrCrashed", s.name, err)
				}
			}
			if k < len(mut) && !m.Crashed() {
				t.Error("Crashed is false after a refused operation")
			}
			if after := fullState(t, m); after != before {
				t.Errorf("the refused operations changed the state:\n%s\n%s", before, after)
			}
			if m.Ops() != base+k {
				t.Errorf("Ops = %d, want %d", m.Ops(), base+k)
			}
			// The restarted process works.
			c := m.Clone()
			if c.Crashed() {
				t.Error("Clone is crashed")
			}
			if err := c.Mkdir("/out/restarted"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestMemOps counts the mutating operations.
func TestMemOps(t *testing.T) {
	m := vfs.NewMem()
	steps := []struct {
		name string
		n    int
		run  func() error
	}{
		{"mkdir", 1, func() error { return m.Mkdir("/d") }},
		{"create, 2 writes, sync, close", 4, func() error {
			f, _ := m.Create("/d/f")
			f.Write([]byte("a"))
			f.Write(nil)
			f.Sync()
			return f.Close()
		}},
		{"reads", 0, func() error {
			f, _ := m.Open("/d/f")
			io.ReadAll(f)
			f.Stat()
			m.Stat("/d")
			m.Lstat("/d")
			m.ReadDir("/d")
			return f.Close()
		}},
		{"test conveniences", 0, func() error { m.WriteFile("/w", nil); _, err := m.ReadFile("/w"); return err }},
		{"rename", 1, func() error { return m.Rename("/d/f", "/d/g") }},
		{"rename-noreplace", 1, func() error { return m.RenameNoReplace("/d/g", "/d/f") }},
		{"sync-dir", 1, func() error { return m.SyncDir("/d") }},
		{"failed remove counts", 1, func() error { m.Remove("/missing"); return nil }},
		{"remove", 1, func() error { return m.Remove("/d/f") }},
	}
	for _, s := range steps {
		before := m.Ops()
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := m.Ops() - before; got != s.n {
			t.Errorf("%s: %d operations, want %d", s.name, got, s.n)
		}
	}
	if m.Clone().Ops() != 0 {
		t.Error("a Clone starts with operations counted")
	}
}

// TestMemClone: a clone has the same current and durable state, pending
// changes included, and is independent of the original.
func TestMemClone(t *testing.T) {
	m := durableMem(t)
	m.WriteFile("/out/a/f", []byte("f"))
	f, _ := m.Create("/out/a/new")
	io.WriteString(f, "synced")
	f.Sync()
	io.WriteString(f, "+unsynced")
	m.Rename("/out/a/f", "/out/g")
	m.SyncDir("/out")
	c := m.Clone()
	if a, b := fullState(t, m), fullState(t, c); a != b {
		t.Fatalf("clone differs:\n%s\n%s", a, b)
	}
	for seed := range uint64(50) {
		r1, r2 := rand.New(rand.NewPCG(seed, 1)), rand.New(rand.NewPCG(seed, 1))
		if a, b := state(t, m.CrashClone(vfs.CrashOptions{Rand: r1})), state(t, c.CrashClone(vfs.CrashOptions{Rand: r2})); a != b {
			t.Fatalf("seed %d: random crash of the clone differs:\n%s\n%s", seed, a, b)
		}
	}
	before := fullState(t, m)
	c.Remove("/out/g")
	c.SyncDir("/out")
	c.WriteFile("/out/a/new", []byte("changed"))
	if after := fullState(t, m); after != before {
		t.Errorf("changing the clone changed the original:\n%s\n%s", before, after)
	}
}

// TestCrashCloneRenameAtomic: in every random crash state a renamed file is
// under its old name or its new one, never neither, and whole.
func TestCrashCloneRenameAtomic(t *testing.T) {
	m := durableMem(t)
	m.WriteFile("/out/a/f", []byte("data"))
	m.WriteFile("/out/b/keep", nil)
	// Noise around the rename, in both directories, none of it synced.
	m.WriteFile("/out/a/x", nil)
	m.Remove("/out/a/x")
	vfs.WriteNewSync(m, "/out/b/y", writeString("y"))
	m.RenameNoReplace("/out/a/f", "/out/b/g")
	vfs.WriteNewSync(m, "/out/a/z", writeString("z"))
	m.Remove("/out/b/keep")
	seen := map[string]int{}
	for seed := range uint64(300) {
		c := m.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 2))})
		var where []string
		for _, p := range []string{"/out/a/f", "/out/b/g"} {
			if b, err := c.ReadFile(p); err == nil {
				where = append(where, p)
				if string(b) != "data" {
					t.Errorf("seed %d: %s = %q", seed, p, b)
				}
			}
		}
		if len(where) != 1 {
			t.Fatalf("seed %d: the renamed file is at %v; files: %v", seed, where, c.Paths())
		}
		seen[where[0]]++
		// What the clone holds is durable: crashing it again changes nothing.
		if a, b := state(t, c), state(t, crashed(c)); a != b {
			t.Fatalf("seed %d: the crash clone is not all durable:\n%s\n%s", seed, a, b)
		}
	}
	if len(seen) != 2 {
		t.Errorf("outcomes over 300 seeds: %v; want both names", seen)
	}
}

// TestCrashCloneSharedInode: with only the target directory synced the
// file has both names after a crash, and random crashes give both names or
// only the new one, never only the old one.
func TestCrashCloneSharedInode(t *testing.T) {
	m := durableMem(t)
	m.WriteFile("/out/a/f", []byte("data"))
	m.Mkdir("/out/b")
	m.SyncDir("/out")
	m.Rename("/out/a/f", "/out/b/g")
	m.SyncDir("/out/b")
	if got, want := crashed(m).Paths(), []string{"/out/a/f", "/out/b/g"}; !slices.Equal(got, want) {
		t.Errorf("after a crash %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for seed := range uint64(100) {
		seen[strings.Join(m.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 3))}).Paths(), " ")] = true
	}
	if want := map[string]bool{"/out/a/f /out/b/g": true, "/out/b/g": true}; !mapsEqual(seen, want) {
		t.Errorf("random crashes gave %v, want %v", seen, want)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// TestCrashCloneTails: a random crash keeps a prefix of the unsynced tail
// of each file, of every length from none to all, and never less than the
// synced part.
func TestCrashCloneTails(t *testing.T) {
	m := durableMem(t)
	f, _ := m.Create("/out/f")
	io.WriteString(f, "abc")
	f.Sync()
	io.WriteString(f, "defgh")
	m.SyncDir("/out")
	lengths := map[int]int{}
	for seed := range uint64(300) {
		b, err := m.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 4))}).ReadFile("/out/f")
		if err != nil || !strings.HasPrefix("abcdefgh", string(b)) || len(b) < 3 {
			t.Fatalf("seed %d: %q, %v", seed, b, err)
		}
		lengths[len(b)]++
	}
	for n := 3; n <= 8; n++ {
		if lengths[n] == 0 {
			t.Errorf("no crash kept %d bytes: %v", n, lengths)
		}
	}
	// The same seed gives the same state.
	a := state(t, m.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(7, 7))}))
	if b := state(t, m.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(7, 7))})); a != b {
		t.Errorf("same seed, different states:\n%s\n%s", a, b)
	}
}

// TestMemPaths: relative and unclean paths are taken from "/".
func TestMemPaths(t *testing.T) {
	m := vfs.NewMem()
	if err := m.Mkdir("a"); err != nil {
		t.Fatal(err)
	}
	create(t, m, "a/../a/./f", "x")
	if b, err := m.ReadFile("/a/f"); err != nil || string(b) != "x" {
		t.Errorf("/a/f = %q, %v", b, err)
	}
	if st, err := m.Stat("/"); err != nil || !st.IsDir() {
		t.Errorf("Stat(/) = %v, %v", st, err)
	}
	if err := m.Remove("/"); err == nil {
		t.Error("removed /")
	}
	m.WriteFile("/b/c/d", nil)
	if got, want := m.Paths(), []string{"/a/f", "/b/c/d"}; !slices.Equal(got, want) {
		t.Errorf("Paths = %v, want %v", got, want)
	}
	if err := m.WriteFile("/a/f/x", nil); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("WriteFile under a file = %v", err)
	}
}

// TestMemConcurrent exercises a Mem from many goroutines (run with -race).
func TestMemConcurrent(t *testing.T) {
	m := durableMem(t)
	d := vfs.NewDirs(m, "/out")
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := commit(d, fmt.Sprintf("/out/tmp/%d.tmp", i), fmt.Sprintf("/out/p%d/%d", i%3, i), "x"); err != nil {
				t.Error(err)
			}
			m.Clone()
			m.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(uint64(i), 0))})
		}()
	}
	wg.Wait()
	if n := len(crashed(m).Paths()); n != 32 {
		t.Errorf("%d files survive a crash, want 32", n)
	}
}
