package vfs

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

// Recorder is an FS that passes every operation to another FS and logs
// it, in the order the operations took effect, so that a test can assert
// the order of operations a protocol promises.
//
// Why a log of operations, when the crash tests already kill the writer
// after every operation: the commit protocol is an order of operations
// (a temp file fsynced, its directory fsynced, then the commit record
// appended and fsynced, then the rename, then the rename's directory
// fsynced), and a kill cannot see a missing fsync. The kernel keeps what
// a killed process wrote, so a kill test stays green when an fsync is
// deleted or a record is appended too early; only a power cut at exactly
// the wrong moment, on exactly the file system that reorders the writes,
// would show it. The log makes the order itself the thing tested: a
// checker can replay it, know at every step what a power cut would keep,
// and fail on the first step that vouches for something not yet durable.
// (package internal/ordertest is that checker.)
//
// What is logged: every FS method (Create, Open, Remove, Rename,
// RenameNoReplace, Mkdir, ReadDir, Stat, Lstat, SyncDir) and every method
// of the files it returns (Read, Write, Sync, Close, Stat), each with its
// path, its error, and for file methods the file's handle number, so that
// two descriptors of one path are told apart. Write and Read log the byte
// count; a Write to a file whose path ends in ".jsonl" (a journal) also
// keeps a copy of the bytes, so that a checker can tell which record an
// append wrote. Data of other files is not kept: a study writes far more
// of it than a test wants to hold.
//
// The Recorder holds its lock while the inner operation runs: operations
// are therefore serialised, and the log's order is the order in which they
// took effect on the inner FS, also when the caller runs them on many
// goroutines (the rank writer's workers, syncer and committer do). That
// costs concurrency, which a test does not need; production code never
// uses a Recorder. A Recorder is safe for concurrent use.
type Recorder struct {
	inner FS

	mu      sync.Mutex
	ops     []RecordedOp
	handles int // handle numbers handed out so far
}

// RecordedOp is one logged operation.
type RecordedOp struct {
	// Index is the operation's position in the log since the Recorder
	// was made or last Reset, from 0.
	Index int
	// Op is the kind of operation, as Inject names them: OpStat covers
	// FS.Stat, FS.Lstat and File.Stat (Lstat sets Lstat). The zero Op is
	// a mark (see Mark).
	Op Op
	// Path is the path the operation was given; for a file method, the
	// path the file was created or opened with. For a rename it is the old
	// name.
	Path string
	// New is a rename's new name.
	New string
	// Handle numbers the file a Create or Open returned (from 1, never
	// reused) and is set on that Create or Open and on every method of the
	// file; 0 for the FS methods that return no file.
	Handle int
	// N is the byte count of a Write or Read.
	N int
	// Data is a copy of the bytes a Write wrote, kept only for paths ending
	// in ".jsonl"; nil otherwise.
	Data []byte
	// Lstat marks an OpStat that was FS.Lstat.
	Lstat bool
	// Err is the error the operation returned. An operation that failed
	// may have changed nothing, or (a short write) part of what it was
	// asked.
	Err error
	// Mark is the label of a mark (Op 0).
	Mark string
}

// IsMark reports whether o is a mark, not an operation.
func (o RecordedOp) IsMark() bool { return o.Op == 0 }

// String reads like "12 rename-noreplace /out/_shards/tmp/a.tmp -> /out/x (#3)".
func (o RecordedOp) String() string {
	if o.IsMark() {
		return fmt.Sprintf("%d mark %q", o.Index, o.Mark)
	}
	var b strings.Builder
	name := o.Op.String()
	if o.Lstat {
		name = "lstat"
	}
	fmt.Fprintf(&b, "%d %s %s", o.Index, name, o.Path)
	if o.New != "" {
		fmt.Fprintf(&b, " -> %s", o.New)
	}
	if o.Handle != 0 {
		fmt.Fprintf(&b, " (#%d)", o.Handle)
	}
	if o.Op == OpWrite || o.Op == OpRead {
		fmt.Fprintf(&b, " %d bytes", o.N)
	}
	if o.Err != nil {
		fmt.Fprintf(&b, ": %v", o.Err)
	}
	return b.String()
}

// Record returns a Recorder that logs every operation on inner.
func Record(inner FS) *Recorder { return &Recorder{inner: inner} }

// Ops returns a copy of the log so far.
func (r *Recorder) Ops() []RecordedOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Len returns the number of entries logged so far (operations and marks).
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Reset empties the log. Files opened before keep their handle numbers,
// and their later operations are logged.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = nil
}

// Mark logs a label between operations: a test marks the moment a call
// returned ("Flush returned", "merge returned"), so that a checker can
// assert what must be durable by then.
func (r *Recorder) Mark(label string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log(RecordedOp{Mark: label})
}

// log appends o, numbering it; r.mu is held.
func (r *Recorder) log(o RecordedOp) {
	o.Index = len(r.ops)
	r.ops = append(r.ops, o)
}

// Create implements FS.
func (r *Recorder) Create(name string) (File, error) { return r.open(OpCreate, name, r.inner.Create) }

// Open implements FS.
func (r *Recorder) Open(name string) (File, error) { return r.open(OpOpen, name, r.inner.Open) }

// open logs a Create or Open and numbers the handle it returns.
func (r *Recorder) open(op Op, name string, do func(string) (File, error)) (File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := do(name)
	o := RecordedOp{Op: op, Path: name, Err: err}
	if err != nil {
		r.log(o)
		return nil, err
	}
	r.handles++
	o.Handle = r.handles
	r.log(o)
	return &recFile{r: r, f: f, name: name, handle: o.Handle}, nil
}

// Remove implements FS.
func (r *Recorder) Remove(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.inner.Remove(name)
	r.log(RecordedOp{Op: OpRemove, Path: name, Err: err})
	return err
}

// Rename implements FS.
func (r *Recorder) Rename(oldname, newname string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.inner.Rename(oldname, newname)
	r.log(RecordedOp{Op: OpRename, Path: oldname, New: newname, Err: err})
	return err
}

// RenameNoReplace implements FS.
func (r *Recorder) RenameNoReplace(oldname, newname string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.inner.RenameNoReplace(oldname, newname)
	r.log(RecordedOp{Op: OpRenameNoReplace, Path: oldname, New: newname, Err: err})
	return err
}

// Mkdir implements FS.
func (r *Recorder) Mkdir(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.inner.Mkdir(name)
	r.log(RecordedOp{Op: OpMkdir, Path: name, Err: err})
	return err
}

// ReadDir implements FS.
func (r *Recorder) ReadDir(name string) ([]fs.DirEntry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ents, err := r.inner.ReadDir(name)
	r.log(RecordedOp{Op: OpReadDir, Path: name, Err: err})
	return ents, err
}

// Stat implements FS.
func (r *Recorder) Stat(name string) (fs.FileInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fi, err := r.inner.Stat(name)
	r.log(RecordedOp{Op: OpStat, Path: name, Err: err})
	return fi, err
}

// Lstat implements FS.
func (r *Recorder) Lstat(name string) (fs.FileInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fi, err := r.inner.Lstat(name)
	r.log(RecordedOp{Op: OpStat, Path: name, Lstat: true, Err: err})
	return fi, err
}

// SyncDir implements FS.
func (r *Recorder) SyncDir(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.inner.SyncDir(name)
	r.log(RecordedOp{Op: OpSyncDir, Path: name, Err: err})
	return err
}

// recFile is a File of a Recorder.
type recFile struct {
	r      *Recorder
	f      File
	name   string
	handle int
}

func (f *recFile) op(op Op, n int, err error) RecordedOp {
	return RecordedOp{Op: op, Path: f.name, Handle: f.handle, N: n, Err: err}
}

func (f *recFile) Read(p []byte) (int, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	n, err := f.f.Read(p)
	f.r.log(f.op(OpRead, n, err))
	return n, err
}

func (f *recFile) Write(p []byte) (int, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	n, err := f.f.Write(p)
	o := f.op(OpWrite, n, err)
	if strings.HasSuffix(f.name, ".jsonl") {
		o.Data = slices.Clone(p[:max(0, min(n, len(p)))])
	}
	f.r.log(o)
	return n, err
}

func (f *recFile) Sync() error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	err := f.f.Sync()
	f.r.log(f.op(OpSync, 0, err))
	return err
}

func (f *recFile) Close() error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	err := f.f.Close()
	f.r.log(f.op(OpClose, 0, err))
	return err
}

func (f *recFile) Stat() (fs.FileInfo, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	fi, err := f.f.Stat()
	f.r.log(f.op(OpStat, 0, err))
	return fi, err
}
