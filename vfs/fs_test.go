package vfs_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

// fsUnderTest is an FS and an empty directory of it to work in.
type fsUnderTest struct {
	name string
	fsys vfs.FS
	dir  string
}

// allFS returns the real file system, the in-memory one and an Injector
// without rules over each: the behaviour tests below must hold for all of
// them, which is what makes Mem a faithful stand-in for the OS.
func allFS(t *testing.T) []fsUnderTest {
	t.Helper()
	m := vfs.NewMem()
	if err := m.Mkdir("/work"); err != nil {
		t.Fatal(err)
	}
	m2 := vfs.NewMem()
	if err := m2.Mkdir("/work"); err != nil {
		t.Fatal(err)
	}
	return []fsUnderTest{
		{"os", vfs.OS(), t.TempDir()},
		{"mem", m, "/work"},
		{"inject-os", vfs.Inject(vfs.OS()), t.TempDir()},
		{"inject-mem", vfs.Inject(m2), "/work"},
	}
}

// create writes a new file through the FS under test.
func create(t *testing.T, fsys vfs.FS, name, data string) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// read returns a file's contents through the FS under test.
func read(t *testing.T, fsys vfs.FS, name string) string {
	t.Helper()
	b, err := vfs.ReadFile(fsys, name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFSErrors checks that every implementation reports the errors the
// operating system does, so errors.Is works the same on all of them.
func TestFSErrors(t *testing.T) {
	for _, u := range allFS(t) {
		t.Run(u.name, func(t *testing.T) {
			fsys, d := u.fsys, u.dir
			j := func(p ...string) string { return filepath.Join(append([]string{d}, p...)...) }
			create(t, fsys, j("f"), "file")
			if err := fsys.Mkdir(j("sub")); err != nil {
				t.Fatal(err)
			}
			create(t, fsys, j("sub", "g"), "g")
			if err := fsys.Mkdir(j("empty")); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what string
				err  error
				want error
			}{
				{"create existing", ignore(fsys.Create(j("f"))), fs.ErrExist},
				{"create under missing dir", ignore(fsys.Create(j("nodir", "x"))), fs.ErrNotExist},
				{"create under a file", ignore(fsys.Create(j("f", "x"))), syscall.ENOTDIR},
				{"open missing", ignore(fsys.Open(j("missing"))), fs.ErrNotExist},
				{"mkdir existing", fsys.Mkdir(j("sub")), fs.ErrExist},
				{"mkdir under missing dir", fsys.Mkdir(j("nodir", "x")), fs.ErrNotExist},
				{"remove missing", fsys.Remove(j("missing")), fs.ErrNotExist},
				{"remove non-empty dir", fsys.Remove(j("sub")), syscall.ENOTEMPTY},
				{"rename missing", fsys.Rename(j("missing"), j("x")), fs.ErrNotExist},
				{"rename file over dir", fsys.Rename(j("f"), j("empty")), fs.ErrExist}, // os.Rename's own check
				{"rename dir over file", fsys.Rename(j("empty"), j("f")), syscall.ENOTDIR},
				{"rename dir over dir", fsys.Rename(j("empty"), j("sub")), fs.ErrExist},
				{"rename dir into itself", fsys.Rename(j("sub"), j("sub", "in")), syscall.EINVAL},
				{"no-replace over file", fsys.RenameNoReplace(j("sub", "g"), j("f")), fs.ErrExist},
				{"no-replace missing", fsys.RenameNoReplace(j("missing"), j("x")), fs.ErrNotExist},
				{"readdir missing", ignore(fsys.ReadDir(j("missing"))), fs.ErrNotExist},
				{"readdir of a file", ignore(fsys.ReadDir(j("f"))), syscall.ENOTDIR},
				{"stat missing", ignore(fsys.Stat(j("missing"))), fs.ErrNotExist},
				{"lstat under a file", ignore(fsys.Lstat(j("f", "x"))), syscall.ENOTDIR},
				{"sync-dir missing", fsys.SyncDir(j("missing")), fs.ErrNotExist},
				{"sync-dir of a file", fsys.SyncDir(j("f")), syscall.ENOTDIR},
			} {
				if !errors.Is(c.err, c.want) {
					t.Errorf("%s: got %v, want an error matching %v", c.what, c.err, c.want)
				}
			}
			// None of the failures changed anything.
			if got := read(t, fsys, j("f")); got != "file" {
				t.Errorf("f = %q after the failures", got)
			}
			if got := read(t, fsys, j("sub", "g")); got != "g" {
				t.Errorf("sub/g = %q after the failures", got)
			}
			if got := names(t, fsys, d); !slices.Equal(got, []string{"empty", "f", "sub"}) {
				t.Errorf("entries after the failures: %v", got)
			}
		})
	}
}

func ignore[T any](_ T, err error) error { return err }

func names(t *testing.T, fsys vfs.FS, dir string) []string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestFSBasics covers the successful paths every implementation shares.
func TestFSBasics(t *testing.T) {
	for _, u := range allFS(t) {
		t.Run(u.name, func(t *testing.T) {
			fsys, d := u.fsys, u.dir
			j := func(p ...string) string { return filepath.Join(append([]string{d}, p...)...) }
			for _, n := range []string{"b", "a", "c.parquet", "B", "_x"} {
				create(t, fsys, j(n), n)
			}
			if err := fsys.Mkdir(j("m")); err != nil {
				t.Fatal(err)
			}
			if got, want := names(t, fsys, d), []string{"B", "_x", "a", "b", "c.parquet", "m"}; !slices.Equal(got, want) {
				t.Errorf("ReadDir = %v, want %v (sorted)", got, want)
			}
			ents, _ := fsys.ReadDir(d)
			for _, e := range ents {
				if e.IsDir() != (e.Name() == "m") {
					t.Errorf("%s: IsDir = %v", e.Name(), e.IsDir())
				}
			}
			st, err := fsys.Stat(j("c.parquet"))
			if err != nil || st.Size() != 9 || st.IsDir() || st.Name() != "c.parquet" || st.ModTime().IsZero() {
				t.Errorf("Stat = %v, %v", st, err)
			}
			if st, err := fsys.Lstat(j("m")); err != nil || !st.IsDir() {
				t.Errorf("Lstat(dir) = %v, %v", st, err)
			}
			// Rename replaces; no-replace moves to a free name.
			if err := fsys.Rename(j("a"), j("b")); err != nil {
				t.Fatal(err)
			}
			if got := read(t, fsys, j("b")); got != "a" {
				t.Errorf("b = %q after rename a over b", got)
			}
			if err := fsys.RenameNoReplace(j("b"), j("m", "b")); err != nil {
				t.Fatal(err)
			}
			if got := read(t, fsys, j("m", "b")); got != "a" {
				t.Errorf("m/b = %q", got)
			}
			if ok, err := vfs.Exists(fsys, j("b")); ok || err != nil {
				t.Errorf("b still exists after RenameNoReplace: %v %v", ok, err)
			}
			if err := fsys.SyncDir(j("m")); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Remove(j("m", "b")); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Remove(j("m")); err != nil {
				t.Fatal(err)
			}
			// Files: write-only from Create, read-only from Open.
			f, err := fsys.Create(j("w"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Read(make([]byte, 1)); err == nil {
				t.Error("Read of a file from Create succeeded")
			}
			io.WriteString(f, "hello")
			if st, err := f.Stat(); err != nil || st.Size() != 5 {
				t.Errorf("File.Stat = %v, %v", st, err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("second Close = %v, want fs.ErrClosed", err)
			}
			r, err := fsys.Open(j("w"))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Write([]byte("x")); err == nil {
				t.Error("Write of a file from Open succeeded")
			}
			if b, err := io.ReadAll(r); err != nil || string(b) != "hello" {
				t.Errorf("ReadAll = %q, %v", b, err)
			}
		})
	}
}

// TestOSRenameNoReplace: an existing target is refused and both files stay
// as they were, through renameat2 and through the link fallback.
func TestOSRenameNoReplace(t *testing.T) {
	for _, c := range []struct {
		name   string
		rename func(o, n string) error
	}{
		{"renameat2", vfs.OS().RenameNoReplace},
		{"link fallback", vfs.RenameByLink},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			src, dst := filepath.Join(d, "src"), filepath.Join(d, "dst")
			os.WriteFile(src, []byte("new"), 0o644)
			os.WriteFile(dst, []byte("committed"), 0o644)
			err := c.rename(src, dst)
			if !errors.Is(err, fs.ErrExist) {
				t.Fatalf("rename onto an existing file: %v, want fs.ErrExist", err)
			}
			for p, want := range map[string]string{src: "new", dst: "committed"} {
				if b, err := os.ReadFile(p); err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", p, b, err, want)
				}
			}
			free := filepath.Join(d, "free")
			if err := c.rename(src, free); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(free); string(b) != "new" {
				t.Errorf("free = %q", b)
			}
			if _, err := os.Lstat(src); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("source still there: %v", err)
			}
		})
	}
}

// TestOSSyncDir: a directory syncs; a file path is refused with ENOTDIR
// and the error names it, a missing one is fs.ErrNotExist.
func TestOSSyncDir(t *testing.T) {
	d := t.TempDir()
	f := filepath.Join(d, "file")
	os.WriteFile(f, nil, 0o644)
	if err := vfs.OS().SyncDir(d); err != nil {
		t.Fatal(err)
	}
	err := vfs.OS().SyncDir(f)
	if !errors.Is(err, syscall.ENOTDIR) || !containsAll(err.Error(), "syncing directory", f) {
		t.Errorf("SyncDir(file) = %v", err)
	}
	if err := vfs.OS().SyncDir(filepath.Join(d, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir(missing) = %v", err)
	}
}

// TestOSCreateMode: files are 0644 and directories 0755 (before umask).
func TestOSCreateMode(t *testing.T) {
	d := t.TempDir()
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	create(t, vfs.OS(), filepath.Join(d, "f"), "")
	vfs.OS().Mkdir(filepath.Join(d, "m"))
	if st, _ := os.Stat(filepath.Join(d, "f")); st.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v", st.Mode())
	}
	if st, _ := os.Stat(filepath.Join(d, "m")); st.Mode().Perm() != 0o755 {
		t.Errorf("dir mode %v", st.Mode())
	}
}
