package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/vfs"
)

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestWriteNewHash: the size and XXH64 counted on the way out equal those
// of the bytes on disk, whatever the write pattern (empty, tiny writes,
// writes larger than the 1 MiB buffer, a buffer boundary crossed).
func TestWriteNewHash(t *testing.T) {
	data := randomBytes(3<<20+17, 1)
	for _, c := range []struct {
		name   string
		size   int
		chunks []int // write sizes, repeated until size bytes are written
	}{
		{"empty", 0, []int{0}},
		{"one byte", 1, []int{1}},
		{"small writes", 100_000, []int{1, 7, 4096}},
		{"across the buffer", 1<<20 + 1, []int{1<<20 - 1, 2}},
		{"larger than the buffer", len(data), []int{3 << 20, 17}},
	} {
		for _, u := range allFS(t) {
			t.Run(c.name+"/"+u.name, func(t *testing.T) {
				want := data[:c.size]
				name := filepath.Join(u.dir, "t.tmp")
				w, err := vfs.WriteNewSync(u.fsys, name, func(w io.Writer) error {
					for off, i := 0, 0; off < len(want) || i == 0; i++ {
						n := min(c.chunks[i%len(c.chunks)], len(want)-off)
						if _, err := w.Write(want[off : off+n]); err != nil {
							return err
						}
						off += n
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if w.Bytes != int64(len(want)) || w.XXH64 != xxhash.Sum64(want) {
					t.Errorf("Written = %+v, want {%d %x}", w, len(want), xxhash.Sum64(want))
				}
				got, err := vfs.ReadFile(u.fsys, name, 4<<20)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("file holds %d bytes (%v), want the %d written", len(got), err, len(want))
				}
				if h, err := vfs.HashFile(u.fsys, name); err != nil || h != w {
					t.Errorf("HashFile = %+v, %v; want %+v", h, err, w)
				}
			})
		}
	}
}

// TestWriteNewFailures: whatever fails, the partial file is gone, the
// error names it, and a file that was there before is left alone.
func TestWriteNewFailures(t *testing.T) {
	// Large enough to reach the file before the final flush, written in
	// pieces so that the buffer reaches it more than once.
	payload := randomBytes(3<<20, 2)
	writeAll := func(w io.Writer) error {
		for off := 0; off < len(payload); off += 256 << 10 {
			if _, err := w.Write(payload[off : off+256<<10]); err != nil {
				return err
			}
		}
		return nil
	}
	errEncode := errors.New("encoder failed")
	for _, c := range []struct {
		name  string
		rules []vfs.Rule
		write func(io.Writer) error
		want  error
	}{
		{"write callback error", nil, func(w io.Writer) error { w.Write(payload[:10]); return errEncode }, errEncode},
		{"short write", []vfs.Rule{{Op: vfs.OpWrite, Path: "*.tmp", Short: true, Err: syscall.ENOSPC}}, writeAll, syscall.ENOSPC},
		{"second write fails", []vfs.Rule{{Op: vfs.OpWrite, Nth: 2, Err: syscall.EIO}}, writeAll, syscall.EIO},
		{"final flush fails", []vfs.Rule{{Op: vfs.OpWrite, Err: syscall.EIO}}, func(w io.Writer) error { _, err := w.Write(payload[:10]); return err }, syscall.EIO},
	} {
		for _, base := range allFS(t)[:2] {
			t.Run(c.name+"/"+base.name, func(t *testing.T) {
				fsys := vfs.Inject(base.fsys, c.rules...)
				name := filepath.Join(base.dir, "part.tmp")
				w, p, err := vfs.WriteNew(fsys, name, c.write)
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "writing "+name) {
					t.Errorf("WriteNew error = %v, want %v naming the file", err, c.want)
				}
				if p != nil || w != (vfs.Written{}) {
					t.Errorf("WriteNew returned %+v, %v with an error", w, p)
				}
				if ok, _ := vfs.Exists(base.fsys, name); ok {
					t.Error("partial file left behind")
				}
				p.Abort() // a nil Pending is safe to abort
			})
		}
	}
	t.Run("panic in write", func(t *testing.T) {
		m := vfs.NewMem()
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
			if got := m.Paths(); len(got) != 0 {
				t.Errorf("files after a panicking write: %v", got)
			}
		}()
		vfs.WriteNew(m, "/p.tmp", func(w io.Writer) error { w.Write([]byte("x")); panic("boom") })
	})
	t.Run("existing file", func(t *testing.T) {
		for _, u := range allFS(t)[:2] {
			name := filepath.Join(u.dir, "keep")
			create(t, u.fsys, name, "committed")
			_, err := vfs.WriteNewSync(u.fsys, name, writeAll)
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("%s: WriteNewSync over an existing file: %v", u.name, err)
			}
			if got := read(t, u.fsys, name); got != "committed" {
				t.Errorf("%s: existing file became %q", u.name, got)
			}
		}
	})
}

// TestPendingSync: a failed fsync removes the file (its bytes are not known
// to be on disk); a failed close after a good fsync does too; Abort after a
// successful Sync keeps the file.
func TestPendingSync(t *testing.T) {
	for _, c := range []struct {
		name string
		rule vfs.Rule
		want error // nil: Sync succeeds
	}{
		{"ok", vfs.Rule{Op: vfs.OpSync, Path: "other/*"}, nil},
		{"fsync EIO", vfs.Rule{Op: vfs.OpSync, Path: "*.tmp", Err: syscall.EIO}, syscall.EIO},
		{"close fails", vfs.Rule{Op: vfs.OpClose, Path: "*.tmp"}, vfs.ErrInjected},
	} {
		for _, base := range allFS(t)[:2] {
			t.Run(c.name+"/"+base.name, func(t *testing.T) {
				in := vfs.Inject(base.fsys, c.rule)
				name := filepath.Join(base.dir, "p.tmp")
				w, p, err := vfs.WriteNew(in, name, func(w io.Writer) error { _, err := io.WriteString(w, "data"); return err })
				if err != nil || w.Bytes != 4 {
					t.Fatal(w, err)
				}
				defer p.Abort() // must not remove a synced file
				err = p.Sync()
				if !errors.Is(err, c.want) {
					t.Fatalf("Sync = %v, want %v", err, c.want)
				}
				exists, _ := vfs.Exists(base.fsys, name)
				if exists != (c.want == nil) {
					t.Errorf("file exists = %v after Sync returned %v", exists, err)
				}
				if c.want != nil && !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name the file", err)
				}
				p.Abort()
				if exists2, _ := vfs.Exists(base.fsys, name); exists2 != exists {
					t.Error("Abort after Sync changed the file")
				}
				if err := p.Sync(); err == nil {
					t.Error("second Sync succeeded")
				}
			})
		}
	}
	t.Run("abort", func(t *testing.T) {
		m := vfs.NewMem()
		_, p, err := vfs.WriteNew(m, "/a.tmp", func(w io.Writer) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		p.Abort()
		if got := m.Paths(); len(got) != 0 {
			t.Errorf("files after Abort: %v", got)
		}
	})
	t.Run("data durable only after Sync", func(t *testing.T) {
		m := vfs.NewMem()
		_, p, _ := vfs.WriteNew(m, "/d.tmp", func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err })
		m.SyncDir("/")
		if b, _ := m.CrashClone(vfs.CrashOptions{}).ReadFile("/d.tmp"); len(b) != 0 {
			t.Errorf("unsynced WriteNew data survived a crash: %q", b)
		}
		p.Sync()
		if b, _ := m.CrashClone(vfs.CrashOptions{}).ReadFile("/d.tmp"); string(b) != "x" {
			t.Errorf("synced data lost: %q", b)
		}
	})
}

// lyingFS reports every file as empty, as /proc files and some network
// file systems do: ReadFile must not trust the size.
type lyingFS struct{ vfs.FS }

func (l lyingFS) Open(name string) (vfs.File, error) {
	f, err := l.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return lyingFile{f}, nil
}

type lyingFile struct{ vfs.File }

func (f lyingFile) Stat() (fs.FileInfo, error) { return zeroInfo{}, nil }

type zeroInfo struct{ fs.FileInfo }

func (zeroInfo) Size() int64 { return 0 }

// TestReadFileLimit: up to the limit is read, one byte more is refused
// with a *TooLargeError naming file, size and limit, and the buffer never
// exceeds limit+1 bytes even when Stat lies.
func TestReadFileLimit(t *testing.T) {
	m := vfs.NewMem()
	for _, c := range []struct {
		size, limit int64
		lying       bool
		ok          bool
	}{
		{0, 0, false, true},
		{1, 0, false, false},
		{10, 10, false, true},
		{11, 10, false, false},
		{10, 1 << 40, false, true}, // a huge limit allocates by size, not limit
		{5000, 5000, true, true},
		{5001, 5000, true, false},
		{100_000, 4999, true, false},
		{3, 1, true, false},
	} {
		t.Run(fmt.Sprintf("size=%d,limit=%d,lying=%v", c.size, c.limit, c.lying), func(t *testing.T) {
			name := fmt.Sprintf("/f%d", c.size)
			data := randomBytes(int(c.size), uint64(c.size))
			m.WriteFile(name, data)
			var fsys vfs.FS = m
			if c.lying {
				fsys = lyingFS{m}
			}
			b, err := vfs.ReadFile(fsys, name, c.limit)
			if c.ok {
				if err != nil || !bytes.Equal(b, data) {
					t.Fatalf("ReadFile = %d bytes, %v", len(b), err)
				}
				if int64(cap(b)) > c.limit+1 {
					t.Errorf("buffer of %d bytes for a limit of %d", cap(b), c.limit)
				}
				return
			}
			var tl *vfs.TooLargeError
			if !errors.As(err, &tl) || b != nil {
				t.Fatalf("ReadFile = %d bytes, %v; want a *TooLargeError", len(b), err)
			}
			wantSize := c.size
			if c.lying {
				wantSize = c.limit + 1 // all that may be read to find out
			}
			if tl.Name != name || tl.Size != wantSize || tl.Limit != c.limit {
				t.Errorf("TooLargeError = %+v, want {%s %d %d}", *tl, name, wantSize, c.limit)
			}
			if !containsAll(err.Error(), name, fmt.Sprint(wantSize), fmt.Sprint(c.limit)) {
				t.Errorf("message %q lacks name, size or limit", err)
			}
		})
	}
	if _, err := vfs.ReadFile(m, "/missing", 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v", err)
	}
	if _, err := vfs.ReadFile(m, "/f0", -1); err == nil {
		t.Error("negative limit accepted")
	}
}

// TestReadFileAllocations: a file refused by its Stat size costs no
// buffer: far less is allocated than the file holds.
func TestReadFileAllocations(t *testing.T) {
	name := filepath.Join(t.TempDir(), "big")
	os.WriteFile(name, make([]byte, 16<<20), 0o644)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := vfs.ReadFile(vfs.OS(), name, 1000)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("accepted")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("%d bytes allocated to refuse a 16 MiB file", n)
	}
}

// TestReadFileReadError: an error while reading is returned, naming the
// file.
func TestReadFileReadError(t *testing.T) {
	m := vfs.NewMem()
	m.WriteFile("/j.jsonl", []byte("abc"))
	in := vfs.Inject(m, vfs.Rule{Op: vfs.OpRead, Path: "*.jsonl", Err: syscall.EIO})
	if _, err := vfs.ReadFile(in, "/j.jsonl", 10); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "/j.jsonl") {
		t.Errorf("ReadFile = %v", err)
	}
	if _, err := vfs.HashFile(in, "/j.jsonl"); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "/j.jsonl") {
		t.Errorf("HashFile = %v", err)
	}
}

// TestWalkDir: the same visits, in the same order, as filepath.WalkDir,
// with SkipDir on a directory, SkipDir on a file (rest of its directory),
// SkipAll, a symbolic link to a directory not followed, and a walk of Mem.
func TestWalkDir(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"b/2", "b/1", "a", "c/x/deep", "c/y", "d/1", "d/2", "d/3", "e"} {
		full := filepath.Join(d, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(p), 0o644)
	}
	os.MkdirAll(filepath.Join(d, "empty"), 0o755)
	if err := os.Symlink(filepath.Join(d, "c"), filepath.Join(d, "link")); err != nil {
		t.Fatal(err)
	}
	m := vfs.NewMem()
	filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(d, p)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
		case e.IsDir():
			m.Mkdir(filepath.Join("/t", rel))
		default:
			m.WriteFile(filepath.Join("/t", rel), nil)
		}
		return nil
	})
	for _, c := range []struct {
		name string
		fn   func(rel string, e fs.DirEntry) error
	}{
		{"all", func(string, fs.DirEntry) error { return nil }},
		{"skip dir", func(rel string, e fs.DirEntry) error {
			if rel == "c" {
				return fs.SkipDir
			}
			return nil
		}},
		{"skip rest of dir from a file", func(rel string, e fs.DirEntry) error {
			if rel == filepath.Join("d", "2") {
				return fs.SkipDir
			}
			return nil
		}},
		{"skip all", func(rel string, e fs.DirEntry) error {
			if rel == filepath.Join("c", "x") {
				return fs.SkipAll
			}
			return nil
		}},
		{"skip root", func(rel string, e fs.DirEntry) error {
			if rel == "." {
				return fs.SkipDir
			}
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			walk := func(root string, w func(string, fs.WalkDirFunc) error) ([]string, error) {
				var seen []string
				err := w(root, func(p string, e fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					rel, _ := filepath.Rel(root, p)
					seen = append(seen, fmt.Sprintf("%s:%v", rel, e.Type()))
					return c.fn(rel, e)
				})
				return seen, err
			}
			want, werr := walk(d, filepath.WalkDir)
			got, err := walk(d, func(r string, fn fs.WalkDirFunc) error { return vfs.WalkDir(vfs.OS(), r, fn) })
			if err != nil || werr != nil || !slices.Equal(got, want) {
				t.Errorf("vfs.WalkDir(OS) = %v, %v\nfilepath.WalkDir = %v, %v", got, err, want, werr)
			}
			if slices.Contains(got, "link/x:d---------") || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "link/") }) {
				t.Errorf("walk followed the symbolic link: %v", got)
			}
			var wantMem []string
			for _, s := range want {
				if !strings.HasPrefix(s, "link:") {
					wantMem = append(wantMem, s)
				}
			}
			gotMem, err := walk("/t", func(r string, fn fs.WalkDirFunc) error { return vfs.WalkDir(m, r, fn) })
			if err != nil || !slices.Equal(gotMem, wantMem) {
				t.Errorf("vfs.WalkDir(Mem) = %v, %v\nwant %v", gotMem, err, wantMem)
			}
		})
	}
	t.Run("symbolic link root", func(t *testing.T) {
		var seen []string
		link := filepath.Join(d, "link")
		err := vfs.WalkDir(vfs.OS(), link, func(p string, e fs.DirEntry, err error) error {
			seen = append(seen, fmt.Sprintf("%s:%v", p, e.Type()))
			return err
		})
		if want := []string{link + ":L---------"}; err != nil || !slices.Equal(seen, want) {
			t.Errorf("walk of a link = %v, %v; want %v", seen, err, want)
		}
	})
	t.Run("errors", func(t *testing.T) {
		var calls []string
		err := vfs.WalkDir(m, "/missing", func(p string, e fs.DirEntry, err error) error {
			calls = append(calls, p)
			return err
		})
		if !errors.Is(err, fs.ErrNotExist) || !slices.Equal(calls, []string{"/missing"}) {
			t.Errorf("walk of a missing root: %v, calls %v", err, calls)
		}
		in := vfs.Inject(m, vfs.Rule{Op: vfs.OpReadDir, Path: "b", Err: syscall.EACCES})
		calls = nil
		err = vfs.WalkDir(in, "/t", func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				calls = append(calls, "error at "+p)
				return fs.SkipDir // skip the unreadable directory, go on
			}
			return nil
		})
		if err != nil || !slices.Equal(calls, []string{"error at /t/b"}) {
			t.Errorf("walk with an unreadable directory: %v, %v", err, calls)
		}
	})
}

// TestExists: present, missing, and an error that is not "missing".
func TestExists(t *testing.T) {
	m := vfs.NewMem()
	m.WriteFile("/a/f", nil)
	for _, c := range []struct {
		fsys vfs.FS
		name string
		ok   bool
		err  error
	}{
		{m, "/a/f", true, nil},
		{m, "/a", true, nil},
		{m, "/a/g", false, nil},
		{m, "/b/g", false, nil},
		{m, "/a/f/x", false, syscall.ENOTDIR},
		{vfs.Inject(m, vfs.Rule{Op: vfs.OpStat, Err: syscall.EACCES}), "/a/f", false, syscall.EACCES},
	} {
		ok, err := vfs.Exists(c.fsys, c.name)
		if ok != c.ok || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("Exists(%s) = %v, %v; want %v, %v", c.name, ok, err, c.ok, c.err)
		}
	}
}
