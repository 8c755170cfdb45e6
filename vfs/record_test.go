package vfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

var _ vfs.FS = (*vfs.Recorder)(nil)

// brief is what a test compares of a logged operation: its String
// without the index.
func brief(o vfs.RecordedOp) string {
	_, rest, _ := strings.Cut(o.String(), " ")
	return rest
}

// TestRecordLogsEveryOperation runs each operation of FS and File through
// a Recorder over a Mem and checks the entries it logs, in order, with
// paths, handles, byte counts and errors.
func TestRecordLogsEveryOperation(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, fsys vfs.FS)
		want []string
	}{
		{
			name: "create write sync close",
			run: func(t *testing.T, fsys vfs.FS) {
				f := must(fsys.Create("/d/a.tmp"))(t)
				must(f.Write([]byte("hello")))(t)
				noErr(t, f.Sync())
				noErr(t, f.Close())
			},
			want: []string{"create /d/a.tmp (#1)", "write /d/a.tmp (#1) 5 bytes", "sync /d/a.tmp (#1)", "close /d/a.tmp (#1)"},
		},
		{
			name: "directory operations",
			run: func(t *testing.T, fsys vfs.FS) {
				noErr(t, fsys.Mkdir("/d/sub"))
				noErr(t, fsys.SyncDir("/d"))
				must(fsys.ReadDir("/d"))(t)
				must(fsys.Stat("/d/sub"))(t)
				must(fsys.Lstat("/d/sub"))(t)
				noErr(t, fsys.Remove("/d/sub"))
			},
			want: []string{"mkdir /d/sub", "sync-dir /d", "read-dir /d", "stat /d/sub", "lstat /d/sub", "remove /d/sub"},
		},
		{
			name: "renames",
			run: func(t *testing.T, fsys vfs.FS) {
				f := must(fsys.Create("/d/a"))(t)
				noErr(t, f.Close())
				noErr(t, fsys.RenameNoReplace("/d/a", "/d/b"))
				noErr(t, fsys.Rename("/d/b", "/d/c"))
			},
			want: []string{"create /d/a (#1)", "close /d/a (#1)", "rename-noreplace /d/a -> /d/b", "rename /d/b -> /d/c"},
		},
		{
			name: "open read stat: each file its own handle",
			run: func(t *testing.T, fsys vfs.FS) {
				w := must(fsys.Create("/d/x"))(t)
				must(w.Write([]byte("abc")))(t)
				r := must(fsys.Open("/d/x"))(t)
				must(io.ReadAll(r))(t)
				must(r.Stat())(t)
				noErr(t, r.Close())
				noErr(t, w.Close())
			},
			want: []string{"create /d/x (#1)", "write /d/x (#1) 3 bytes", "open /d/x (#2)", "read /d/x (#2) 3 bytes", "read /d/x (#2) 0 bytes: EOF", "stat /d/x (#2)", "close /d/x (#2)", "close /d/x (#1)"},
		},
		{
			name: "errors are logged",
			run: func(t *testing.T, fsys vfs.FS) {
				if _, err := fsys.Create("/d/missing/a"); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("create under a missing directory: %v", err)
				}
				f := must(fsys.Create("/d/a"))(t)
				noErr(t, f.Close())
				if err := fsys.RenameNoReplace("/d/a", "/d/a2"); err != nil {
					t.Fatal(err)
				}
				g := must(fsys.Create("/d/a"))(t)
				noErr(t, g.Close())
				if err := fsys.RenameNoReplace("/d/a", "/d/a2"); !errors.Is(err, fs.ErrExist) {
					t.Fatalf("no-replace rename onto a file: %v", err)
				}
			},
			want: []string{
				"create /d/missing/a: open /d/missing/a: no such file or directory",
				"create /d/a (#1)", "close /d/a (#1)", "rename-noreplace /d/a -> /d/a2",
				"create /d/a (#2)", "close /d/a (#2)",
				"rename-noreplace /d/a -> /d/a2: rename /d/a /d/a2: file exists",
			},
		},
		{
			name: "marks",
			run: func(t *testing.T, fsys vfs.FS) {
				noErr(t, fsys.SyncDir("/d"))
				fsys.(*vfs.Recorder).Mark("returned")
			},
			want: []string{"sync-dir /d", `mark "returned"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := vfs.NewMem()
			if err := m.Mkdir("/d"); err != nil {
				t.Fatal(err)
			}
			r := vfs.Record(m)
			tc.run(t, r)
			var got []string
			for i, o := range r.Ops() {
				if o.Index != i {
					t.Errorf("entry %d has index %d", i, o.Index)
				}
				got = append(got, brief(o))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("log:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestRecordKeepsJournalBytes: a write to a .jsonl file keeps the bytes
// written (what a checker parses the record from), any other write only
// its count; a copy, not the caller's buffer.
func TestRecordKeepsJournalBytes(t *testing.T) {
	tests := []struct {
		path string
		keep bool
	}{
		{"/d/_shards/journal/w.jsonl", true},
		{"/d/_shards/tmp/w.s0.hydros.tmp", false},
		{"/d/simulation/_manifest.json", false},
		{"/d/x.jsonl.tmp", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			m := vfs.NewMem()
			noErr(t, m.WriteFile("/d/_shards/journal/.keep", nil))
			noErr(t, m.WriteFile("/d/_shards/tmp/.keep", nil))
			noErr(t, m.WriteFile("/d/simulation/.keep", nil))
			r := vfs.Record(m)
			f := must(r.Create(tc.path))(t)
			buf := []byte(`{"record":{"type":"commit"}}` + "\n")
			must(f.Write(buf))(t)
			buf[0] = 'X' // the log holds a copy
			ops := r.Ops()
			w := ops[len(ops)-1]
			if w.Op != vfs.OpWrite || w.N != len(buf) {
				t.Fatalf("last entry %v, want a write of %d bytes", w, len(buf))
			}
			if got := w.Data != nil; got != tc.keep {
				t.Fatalf("bytes kept: %v, want %v", got, tc.keep)
			}
			if tc.keep && string(w.Data) != `{"record":{"type":"commit"}}`+"\n" {
				t.Fatalf("kept %q", w.Data)
			}
		})
	}
}

// TestRecordInjectedShortWrite: a recorder over an Injector logs what
// reached the file of a short write, and the error.
func TestRecordInjectedShortWrite(t *testing.T) {
	m := vfs.NewMem()
	noErr(t, m.Mkdir("/d"))
	r := vfs.Record(vfs.Inject(m, vfs.Rule{Op: vfs.OpWrite, Path: "*.jsonl", Short: true}))
	f := must(r.Create("/d/j.jsonl"))(t)
	if _, err := f.Write([]byte("abcdef")); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("write: %v", err)
	}
	ops := r.Ops()
	w := ops[len(ops)-1]
	if w.N != 3 || string(w.Data) != "abc" || !errors.Is(w.Err, vfs.ErrInjected) {
		t.Fatalf("logged %v with data %q", w, w.Data)
	}
}

func TestRecordReset(t *testing.T) {
	m := vfs.NewMem()
	noErr(t, m.Mkdir("/d"))
	r := vfs.Record(m)
	f := must(r.Create("/d/a"))(t)
	r.Reset()
	if n := r.Len(); n != 0 {
		t.Fatalf("%d entries after Reset", n)
	}
	noErr(t, f.Close())
	g := must(r.Create("/d/b"))(t)
	noErr(t, g.Close())
	var got []string
	for _, o := range r.Ops() {
		got = append(got, o.String())
	}
	// Indexes start again from 0; handle numbers are never reused.
	want := "0 close /d/a (#1)|1 create /d/b (#2)|2 close /d/b (#2)"
	if strings.Join(got, "|") != want {
		t.Fatalf("after Reset: %s, want %s", strings.Join(got, "|"), want)
	}
}

// TestRecordConcurrent: operations from many goroutines are all logged,
// each goroutine's in its own order, with distinct handles.
func TestRecordConcurrent(t *testing.T) {
	m := vfs.NewMem()
	noErr(t, m.Mkdir("/d"))
	r := vfs.Record(m)
	const n, writes = 8, 20
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			f, err := r.Create(fmt.Sprintf("/d/%d", g))
			if err != nil {
				t.Error(err)
				return
			}
			for range writes {
				if _, err := f.Write([]byte("x")); err != nil {
					t.Error(err)
				}
			}
			if err := f.Sync(); err != nil {
				t.Error(err)
			}
			if err := f.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ops := r.Ops()
	if len(ops) != n*(writes+3) {
		t.Fatalf("%d entries, want %d", len(ops), n*(writes+3))
	}
	handles := map[string]int{}
	state := map[int]string{} // handle -> last op
	for _, o := range ops {
		switch o.Op {
		case vfs.OpCreate:
			if _, dup := handles[o.Path]; dup || state[o.Handle] != "" {
				t.Fatalf("second create or reused handle: %v", o)
			}
			handles[o.Path] = o.Handle
		case vfs.OpWrite:
			if s := state[o.Handle]; s != "create" && s != "write" {
				t.Fatalf("%v after %s", o, s)
			}
		case vfs.OpSync:
			if state[o.Handle] != "write" {
				t.Fatalf("%v after %s", o, state[o.Handle])
			}
		case vfs.OpClose:
			if state[o.Handle] != "sync" {
				t.Fatalf("%v after %s", o, state[o.Handle])
			}
		}
		if handles[o.Path] != o.Handle {
			t.Fatalf("%v: handle of %s is %d", o, o.Path, handles[o.Path])
		}
		state[o.Handle] = o.Op.String()
	}
}

// must returns a helper that fails t on err and otherwise returns v.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
