package vfs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

// workload is a rank writer's file traffic in miniature: temp files
// created, written, synced and published, and a journal appended and
// synced, three rounds. It returns the first error.
func workload(fsys vfs.FS, dir string) error {
	d := vfs.NewDirs(fsys, dir)
	for _, sub := range []string{"_shards/tmp", "_shards/journal"} {
		if err := d.Ensure(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	j, err := fsys.Create(filepath.Join(dir, "_shards/journal/rank-0.jsonl"))
	if err != nil {
		return err
	}
	defer j.Close()
	for i := range 3 {
		tmp := filepath.Join(dir, "_shards/tmp", fmt.Sprintf("t%d.tmp", i))
		if _, err := vfs.WriteNewSync(fsys, tmp, writeString(strings.Repeat("p", 1000))); err != nil {
			return err
		}
		if err := d.Publish(tmp, filepath.Join(dir, "simulation/costs", fmt.Sprintf("scenario_id=%d", i), "data.parquet")); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(j, "{\"commit\":%d}\n", i); err != nil {
			return err
		}
		if err := j.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// TestInjectParallel runs the workload on two Injectors per fault, in
// parallel, over both the real and the in-memory file system: each fault
// hits exactly the operation its op, path and Nth choose, counts are per
// Injector, and a short write leaves half the bytes.
func TestInjectParallel(t *testing.T) {
	for _, c := range []struct {
		name    string
		rule    vfs.Rule
		hits    int    // matches of the rule in a full workload
		wantMsg string // in the error
	}{
		{"ENOSPC on the second temp write", vfs.Rule{Op: vfs.OpWrite, Path: "_shards/tmp/*", Nth: 2, Err: syscall.ENOSPC},
			3, "injected fault: write %s/_shards/tmp/t1.tmp: no space left on device"},
		{"EIO on the third journal sync", vfs.Rule{Op: vfs.OpSync, Path: "*.jsonl", Nth: 3, Err: syscall.EIO},
			3, "injected fault: sync %s/_shards/journal/rank-0.jsonl: input/output error"},
		{"EROFS on the first partition sync", vfs.Rule{Op: vfs.OpSyncDir, Path: "simulation/*/*", Nth: 1, Err: syscall.EROFS},
			3, "injected fault: sync-dir %s/simulation/costs/scenario_id=0: read-only file system"},
		{"short journal write", vfs.Rule{Op: vfs.OpWrite, Path: "journal/*.jsonl", Nth: 2, Short: true, Err: syscall.ENOSPC},
			3, "injected fault: write %s/_shards/journal/rank-0.jsonl: no space left on device"},
		{"no match", vfs.Rule{Op: vfs.OpRename, Path: "*"}, 0, ""},
	} {
		for _, base := range []string{"os", "mem"} {
			for inst := range 2 {
				t.Run(fmt.Sprintf("%s/%s/%d", c.name, base, inst), func(t *testing.T) {
					t.Parallel()
					var fsys vfs.FS = vfs.OS()
					dir := t.TempDir()
					if base == "mem" {
						fsys, dir = vfs.NewMem(), "/out"
					}
					in := vfs.Inject(fsys, c.rule)
					err := workload(in, dir)
					if c.wantMsg == "" {
						if err != nil || in.Fired(0) || in.Hits(0) != c.hits {
							t.Fatalf("err %v, fired %v, hits %d", err, in.Fired(0), in.Hits(0))
						}
						return
					}
					if want := fmt.Sprintf(c.wantMsg, dir); err == nil || !strings.Contains(err.Error(), want) {
						t.Fatalf("workload error %v, want it to contain %q", err, want)
					}
					if !errors.Is(err, c.rule.Err) || !errors.Is(err, vfs.ErrInjected) {
						t.Errorf("%v matches neither %v nor ErrInjected", err, c.rule.Err)
					}
					if !in.Fired(0) || in.Hits(0) != c.rule.Nth {
						t.Errorf("fired %v after %d hits, want the hit %d", in.Fired(0), in.Hits(0), c.rule.Nth)
					}
					if c.rule.Short {
						// One full record, then half of the second.
						b, _ := vfs.ReadFile(fsys, filepath.Join(dir, "_shards/journal/rank-0.jsonl"), 1000)
						if want := "{\"commit\":0}\n" + "{\"commit\":1}\n"[:6]; string(b) != want {
							t.Errorf("journal after a short write = %q, want %q", b, want)
						}
					}
				})
			}
		}
	}
}

// TestInjectNth: Nth 0 fails every match, Nth n only the n-th; hits count
// every match, and the first of several firing rules gives the error.
func TestInjectNth(t *testing.T) {
	m := vfs.NewMem()
	m.WriteFile("/d/f", nil)
	in := vfs.Inject(m,
		vfs.Rule{Op: vfs.OpStat, Path: "f", Nth: 2, Err: syscall.EIO},
		vfs.Rule{Op: vfs.OpStat, Path: "d/*", Err: syscall.EACCES},
		vfs.Rule{Op: vfs.OpStat, Path: "/d", Nth: 1},
	)
	var got []string
	for range 3 {
		_, err := in.Stat("/d/f")
		got = append(got, fmt.Sprintf("[%v %v]", errors.Is(err, syscall.EIO), errors.Is(err, syscall.EACCES)))
	}
	if want := "[false true] [true false] [false true]"; strings.Join(got, " ") != want {
		t.Errorf("errors %v, want %v", got, want)
	}
	if _, err := in.Lstat("/d"); !errors.Is(err, vfs.ErrInjected) || err.Error() != "injected fault: stat /d" {
		t.Errorf("Lstat(/d) = %v", err)
	}
	if _, err := in.Stat("/d"); err != nil {
		t.Errorf("second Stat(/d) = %v", err)
	}
	for r, want := range []int{3, 3, 2} {
		if in.Hits(r) != want || !in.Fired(r) {
			t.Errorf("rule %d: %d hits (fired %v), want %d", r, in.Hits(r), in.Fired(r), want)
		}
	}
}

// TestInjectPaths: which operation paths a pattern matches, and that a
// rename is matched by its target.
func TestInjectPaths(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		match         bool
	}{
		{"", "/x/y", true},
		{"*", "/x/y", true},
		{"*", "/", true},
		{"_shards/tmp/*", "/x/out/_shards/tmp/a.tmp", true},
		{"_shards/tmp/*", "out/_shards/tmp/a.tmp", true},
		{"_shards/tmp/*", "/x/out/_shards/tmp", false},
		{"_shards/tmp/*", "/x/out/_shards/tmp/sub/a.tmp", false},
		{"*.jsonl", "/o/_shards/journal/rank-3.jsonl", true},
		{"*.jsonl", "/o/_shards/journal/rank-3.jsonl.tmp", false},
		{"simulation/*/*", "/o/simulation/costs/scenario_id=1", true},
		{"simulation/*/*", "/o/simulation/costs", false},
		{"out", "/x/out", true},
		{"out", "/x/out/y", false},
		{"/x/out", "/x/out", true},
		{"x/out", "/x/out/", true},
		{"ut", "/x/out", false},
		{"t?.tmp", "/a/t1.tmp", true},
	} {
		in := vfs.Inject(vfs.NewMem(), vfs.Rule{Op: vfs.OpMkdir, Path: c.pattern})
		in.Mkdir(c.path)
		if in.Fired(0) != c.match {
			t.Errorf("%q on %s: matched %v, want %v", c.pattern, c.path, in.Fired(0), c.match)
		}
	}
	m := vfs.NewMem()
	m.WriteFile("/a/src", nil)
	in := vfs.Inject(m, vfs.Rule{Op: vfs.OpRename, Path: "src"}, vfs.Rule{Op: vfs.OpRenameNoReplace, Path: "dst"})
	if err := in.Rename("/a/src", "/a/dst"); err != nil {
		t.Errorf("rename matched by its source: %v", err)
	}
	if err := in.RenameNoReplace("/a/dst", "/a/dst2"); err != nil {
		t.Errorf("rename-noreplace matched by its source: %v", err)
	}
	err := in.Rename("/a/dst2", "/a/src")
	var ie *vfs.InjectedError
	if !errors.As(err, &ie) || ie.Op != vfs.OpRename || ie.Path != "/a/src" {
		t.Errorf("rename to src = %v", err)
	}
}

// TestInjectFileOps: Create, Open, Read, Close, Mkdir, Remove, ReadDir
// fail when chosen; a failed Close still closes the file.
func TestInjectFileOps(t *testing.T) {
	m := vfs.NewMem()
	m.WriteFile("/d/r", []byte("r"))
	in := vfs.Inject(m,
		vfs.Rule{Op: vfs.OpCreate, Path: "c"},
		vfs.Rule{Op: vfs.OpOpen, Path: "o"},
		vfs.Rule{Op: vfs.OpRead, Path: "r"},
		vfs.Rule{Op: vfs.OpClose, Path: "r"},
		vfs.Rule{Op: vfs.OpMkdir, Path: "m"},
		vfs.Rule{Op: vfs.OpRemove, Path: "r"},
		vfs.Rule{Op: vfs.OpReadDir, Path: "d"},
	)
	_, errCreate := in.Create("/d/c")
	_, errOpen := in.Open("/d/o")
	f, err := in.Open("/d/r")
	if err != nil {
		t.Fatal(err)
	}
	_, errRead := f.Read(make([]byte, 1))
	errClose := f.Close()
	_, errReadDir := in.ReadDir("/d")
	for i, err := range []error{errCreate, errOpen, errRead, errClose, in.Mkdir("/m"), in.Remove("/d/r"), errReadDir} {
		if !errors.Is(err, vfs.ErrInjected) || !in.Fired(i) {
			t.Errorf("rule %d: %v", i, err)
		}
	}
	if _, err := f.Stat(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("file still open after a failed Close: %v", err)
	}
	if ok, _ := vfs.Exists(m, "/d/c"); ok {
		t.Error("a failed Create created the file")
	}
	if ok, _ := vfs.Exists(m, "/d/r"); !ok {
		t.Error("a failed Remove removed the file")
	}
}

// TestOpNames: String and ParseOp agree, and the names are stable (fault
// specs in scripts use them).
func TestOpNames(t *testing.T) {
	want := []string{"create", "open", "write", "sync", "close", "remove", "rename", "rename-noreplace",
		"mkdir", "read-dir", "stat", "sync-dir", "read"}
	ops := []vfs.Op{vfs.OpCreate, vfs.OpOpen, vfs.OpWrite, vfs.OpSync, vfs.OpClose, vfs.OpRemove, vfs.OpRename,
		vfs.OpRenameNoReplace, vfs.OpMkdir, vfs.OpReadDir, vfs.OpStat, vfs.OpSyncDir, vfs.OpRead}
	for i, op := range ops {
		if op.String() != want[i] {
			t.Errorf("%d.String() = %q, want %q", int(op), op, want[i])
		}
		if got, err := vfs.ParseOp(want[i]); got != op || err != nil {
			t.Errorf("ParseOp(%q) = %v, %v", want[i], got, err)
		}
	}
	for _, bad := range []string{"", "Op(0)", "syncdir", "SYNC"} {
		if _, err := vfs.ParseOp(bad); err == nil {
			t.Errorf("ParseOp(%q) succeeded", bad)
		}
	}
	if s := vfs.Op(0).String(); s != "Op(0)" {
		t.Errorf("Op(0) = %q", s)
	}
}

// TestInjectInvalidRule: a rule that cannot be right panics at Inject.
func TestInjectInvalidRule(t *testing.T) {
	for _, r := range []vfs.Rule{{}, {Op: 99}, {Op: vfs.OpSync, Path: "["}, {Op: vfs.OpSync, Nth: -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Inject(%+v) did not panic", r)
				}
			}()
			vfs.Inject(vfs.NewMem(), r)
		}()
	}
}

// TestInjectKill runs a child process whose second journal sync kills it:
// the first record is on disk, the kill is a SIGKILL, nothing after it ran.
func TestInjectKill(t *testing.T) {
	if dir := os.Getenv("VFS_TEST_KILL_DIR"); dir != "" {
		in := vfs.Inject(vfs.OS(), vfs.Rule{Op: vfs.OpSync, Path: "*.jsonl", Nth: 2, Kill: true})
		err := workload(in, dir)
		os.WriteFile(filepath.Join(dir, "survived"), []byte(fmt.Sprint(err)), 0o644)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestInjectKill$")
	cmd.Env = append(os.Environ(), "VFS_TEST_KILL_DIR="+dir)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL", err)
	}
	if ok, _ := vfs.Exists(vfs.OS(), filepath.Join(dir, "survived")); ok {
		t.Error("the child ran on after the kill")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "_shards/journal/rank-0.jsonl"))
	if string(b) != "{\"commit\":0}\n{\"commit\":1}\n" {
		t.Errorf("journal = %q", b)
	}
}
