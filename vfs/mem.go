package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is the error of every operation of a Mem after the simulated
// crash that Mem.CrashAfter arranged: the process is dead, nothing it
// tries changes anything.
var ErrCrashed = errors.New("vfs: simulated crash")

// Mem is an in-memory FS that knows what a crash would keep. Every file
// and directory is an inode with a current state (what the running
// process sees) and a durable state (what survives a power cut): File.Sync
// makes a file's bytes durable, FS.SyncDir makes one directory's entries
// durable, and nothing else does.
//
// Entry changes that are not yet durable are also kept in a log of
// pending operations, in order, each with a sequence number (both halves
// of a rename share one, since a rename is atomic), so that CrashClone can
// also produce the states a crash may leave when the disk wrote some of
// them anyway.
//
// Paths are cleaned with filepath.Clean and relative paths are taken from
// "/". There are no symbolic links. Errors are *fs.PathError and
// *os.LinkError values wrapping the errno the operating system would
// give, so errors.Is(err, fs.ErrExist) and the like work. A Mem is safe
// for concurrent use.
type Mem struct {
	mu      sync.Mutex
	root    *inode
	ops     int         // mutating operations so far
	limit   int         // CrashAfter's k; -1: no crash arranged
	crashed bool        // an operation has been refused
	seq     uint64      // last sequence number handed out
	pending []pendingOp // entry changes not yet made durable, in order
}

// inode is a file or a directory.
type inode struct {
	dir     bool
	data    []byte            // file: current bytes
	durable []byte            // file: bytes that survive a crash
	ents    map[string]*inode // directory: current entries
	dents   map[string]*inode // directory: durable entries
	mtime   time.Time
}

// pendingOp is one entry change of directory dir not yet made durable:
// name now refers to node, or, with node nil, was removed.
type pendingOp struct {
	seq  uint64
	dir  *inode
	name string
	node *inode
}

func newDir() *inode {
	return &inode{dir: true, ents: map[string]*inode{}, dents: map[string]*inode{}, mtime: time.Now()}
}

// NewMem returns an empty Mem: just the root directory "/", durable.
func NewMem() *Mem { return &Mem{root: newDir(), limit: -1} }

// Ops returns the number of mutating operations so far: Create, each
// File.Write, File.Sync, Remove, Rename, RenameNoReplace, Mkdir and
// SyncDir. Reads and Close do not count, nor do the test conveniences
// WriteFile and ReadFile. A Clone starts again from zero.
func (m *Mem) Ops() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ops
}

// CrashAfter simulates the process dying right after its k-th mutating
// operation (counted as Ops counts, from the Mem's start, so k below the
// current count means "now"): operation k+1, and every later operation of
// any kind, reads and calls on already open files included, fails with
// ErrCrashed and changes nothing. Clone or CrashClone then give the state
// a restarted process (or rebooted machine) finds.
func (m *Mem) CrashAfter(k int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.limit = max(k, 0)
}

// Crashed reports whether an operation has been refused because of
// CrashAfter. It stays false when the workload ended before reaching
// operation k+1, which is how a loop over k knows it has tried every
// crash point.
func (m *Mem) Crashed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// dead reports whether the process is dead, marking it crashed; m.mu is
// held.
func (m *Mem) dead() bool {
	if m.crashed || m.limit >= 0 && m.ops >= m.limit {
		m.crashed = true
		return true
	}
	return false
}

// mutate admits one mutating operation, counting it; m.mu is held.
func (m *Mem) mutate() bool {
	if m.dead() {
		return false
	}
	m.ops++
	return true
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// clean turns name into the absolute, cleaned path Mem works with.
func clean(name string) string {
	if !filepath.IsAbs(name) {
		name = "/" + name
	}
	return filepath.Clean(name)
}

// lookup finds the inode at the cleaned path p in the current tree.
func (m *Mem) lookup(p string) (*inode, error) {
	n := m.root
	if p == "/" {
		return n, nil
	}
	for _, elem := range strings.Split(p[1:], "/") {
		if !n.dir {
			return nil, syscall.ENOTDIR
		}
		c := n.ents[elem]
		if c == nil {
			return nil, syscall.ENOENT
		}
		n = c
	}
	return n, nil
}

// parent finds the directory that holds cleaned path p, and p's last
// element.
func (m *Mem) parent(p string) (*inode, string, error) {
	if p == "/" {
		return nil, "", syscall.EBUSY // the root has no entry to change
	}
	dir, base := filepath.Split(p)
	d, err := m.lookup(filepath.Clean(dir))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", syscall.ENOTDIR
	}
	return d, base, nil
}

// setEntry changes an entry of d and logs the change under seq.
func (m *Mem) setEntry(seq uint64, d *inode, name string, n *inode) {
	if n == nil {
		delete(d.ents, name)
	} else {
		d.ents[name] = n
	}
	d.mtime = time.Now()
	m.pending = append(m.pending, pendingOp{seq: seq, dir: d, name: name, node: n})
}

func (m *Mem) nextSeq() uint64 { m.seq++; return m.seq }

// Create implements FS.
func (m *Mem) Create(name string) (File, error) {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mutate() {
		return nil, pathErr("open", name, ErrCrashed)
	}
	d, base, err := m.parent(p)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if d.ents[base] != nil {
		return nil, pathErr("open", name, syscall.EEXIST)
	}
	n := &inode{mtime: time.Now()}
	m.setEntry(m.nextSeq(), d, base, n)
	return &memFile{m: m, n: n, name: name, write: true}, nil
}

// Open implements FS. A directory can be opened: Read fails with EISDIR,
// Stat works and Sync syncs the directory, as on Linux.
func (m *Mem) Open(name string) (File, error) {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead() {
		return nil, pathErr("open", name, ErrCrashed)
	}
	n, err := m.lookup(p)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return &memFile{m: m, n: n, name: name}, nil
}

// Remove implements FS.
func (m *Mem) Remove(name string) error {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mutate() {
		return pathErr("remove", name, ErrCrashed)
	}
	d, base, err := m.parent(p)
	if err != nil {
		return pathErr("remove", name, err)
	}
	n := d.ents[base]
	if n == nil {
		return pathErr("remove", name, syscall.ENOENT)
	}
	if n.dir && len(n.ents) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	m.setEntry(m.nextSeq(), d, base, nil)
	return nil
}

// Rename implements FS.
func (m *Mem) Rename(oldname, newname string) error { return m.rename(oldname, newname, true) }

// RenameNoReplace implements FS.
func (m *Mem) RenameNoReplace(oldname, newname string) error {
	return m.rename(oldname, newname, false)
}

// rename follows os.Rename on Linux: a file may replace a file, nothing
// replaces a directory (EEXIST), a directory does not replace a file
// (ENOTDIR) and cannot move into itself (EINVAL).
func (m *Mem) rename(oldname, newname string, replace bool) error {
	op, po, pn := "rename", clean(oldname), clean(newname)
	lerr := func(err error) error { return &os.LinkError{Op: op, Old: oldname, New: newname, Err: err} }
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mutate() {
		return lerr(ErrCrashed)
	}
	od, obase, err := m.parent(po)
	if err != nil {
		return lerr(err)
	}
	n := od.ents[obase]
	if n == nil {
		return lerr(syscall.ENOENT)
	}
	nd, nbase, err := m.parent(pn)
	if err != nil {
		return lerr(err)
	}
	if n.dir && (pn == po || strings.HasPrefix(pn, po+"/")) {
		if pn == po {
			return nil
		}
		return lerr(syscall.EINVAL)
	}
	if t := nd.ents[nbase]; t != nil {
		switch {
		case !replace:
			return lerr(syscall.EEXIST)
		case t == n:
			return nil // two names of one inode: rename(2) does nothing
		case t.dir:
			// os.Rename refuses to replace any directory, before
			// rename(2) could say EISDIR or ENOTEMPTY.
			return lerr(syscall.EEXIST)
		case n.dir:
			return lerr(syscall.ENOTDIR)
		}
	}
	seq := m.nextSeq() // one number for both halves: a rename is atomic
	m.setEntry(seq, od, obase, nil)
	m.setEntry(seq, nd, nbase, n)
	return nil
}

// Mkdir implements FS.
func (m *Mem) Mkdir(name string) error {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mutate() {
		return pathErr("mkdir", name, ErrCrashed)
	}
	d, base, err := m.parent(p)
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	if d.ents[base] != nil {
		return pathErr("mkdir", name, syscall.EEXIST)
	}
	m.setEntry(m.nextSeq(), d, base, newDir())
	return nil
}

// ReadDir implements FS.
func (m *Mem) ReadDir(name string) ([]fs.DirEntry, error) {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead() {
		return nil, pathErr("open", name, ErrCrashed)
	}
	d, err := m.lookup(p)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if !d.dir {
		return nil, pathErr("readdirent", name, syscall.ENOTDIR)
	}
	names := slices.Sorted(maps.Keys(d.ents))
	out := make([]fs.DirEntry, len(names))
	for i, nm := range names {
		out[i] = fs.FileInfoToDirEntry(d.ents[nm].info(nm))
	}
	return out, nil
}

// Stat implements FS.
func (m *Mem) Stat(name string) (fs.FileInfo, error) { return m.stat("stat", name) }

// Lstat implements FS; Mem has no symbolic links, so it is Stat.
func (m *Mem) Lstat(name string) (fs.FileInfo, error) { return m.stat("lstat", name) }

func (m *Mem) stat(op, name string) (fs.FileInfo, error) {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead() {
		return nil, pathErr(op, name, ErrCrashed)
	}
	n, err := m.lookup(p)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return n.info(filepath.Base(p)), nil
}

// SyncDir implements FS: it makes the entries of this one directory
// durable, not those of its parent or its subdirectories.
func (m *Mem) SyncDir(name string) error {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mutate() {
		return pathErr("fsync", name, ErrCrashed)
	}
	d, err := m.lookup(p)
	if err != nil {
		return pathErr("open", name, err)
	}
	if !d.dir {
		return pathErr("open", name, syscall.ENOTDIR)
	}
	m.syncDir(d)
	return nil
}

// syncDir makes d's entries durable and drops d's pending changes, which
// the durable state now includes; m.mu is held.
func (m *Mem) syncDir(d *inode) {
	d.dents = maps.Clone(d.ents)
	m.pending = slices.DeleteFunc(m.pending, func(o pendingOp) bool { return o.dir == d })
}

// info describes n under the name base.
func (n *inode) info(base string) fs.FileInfo {
	fi := &memInfo{name: base, size: int64(len(n.data)), mode: 0o644, mtime: n.mtime}
	if n.dir {
		fi.size, fi.mode = 0, fs.ModeDir|0o755
	}
	return fi
}

// memInfo is a snapshot of an inode's metadata.
type memInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (fi *memInfo) Name() string       { return fi.name }
func (fi *memInfo) Size() int64        { return fi.size }
func (fi *memInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *memInfo) ModTime() time.Time { return fi.mtime }
func (fi *memInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *memInfo) Sys() any           { return nil }

// memFile is an open file of a Mem: written by appending (Create's files
// are written sequentially from empty) or read from an offset.
type memFile struct {
	m      *Mem
	n      *inode
	name   string
	write  bool
	off    int
	closed bool
}

func (f *memFile) Read(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	switch {
	case f.m.dead():
		return 0, pathErr("read", f.name, ErrCrashed)
	case f.closed:
		return 0, pathErr("read", f.name, fs.ErrClosed)
	case f.write:
		return 0, pathErr("read", f.name, syscall.EBADF)
	case f.n.dir:
		return 0, pathErr("read", f.name, syscall.EISDIR)
	}
	if f.off >= len(f.n.data) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	k := copy(p, f.n.data[f.off:])
	f.off += k
	return k, nil
}

// ReadAt reads from off without moving the offset Read uses, as pread(2).
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	switch {
	case f.m.dead():
		return 0, pathErr("read", f.name, ErrCrashed)
	case f.closed:
		return 0, pathErr("read", f.name, fs.ErrClosed)
	case f.write:
		return 0, pathErr("read", f.name, syscall.EBADF)
	case f.n.dir:
		return 0, pathErr("read", f.name, syscall.EISDIR)
	case off < 0:
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	switch {
	case !f.m.mutate():
		return 0, pathErr("write", f.name, ErrCrashed)
	case f.closed:
		return 0, pathErr("write", f.name, fs.ErrClosed)
	case !f.write:
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	f.n.data = append(f.n.data, p...)
	f.n.mtime = time.Now()
	return len(p), nil
}

// Sync makes the file's current bytes durable; on a directory it syncs
// the directory's entries, as fsync(2) on a directory does.
func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	switch {
	case !f.m.mutate():
		return pathErr("sync", f.name, ErrCrashed)
	case f.closed:
		return pathErr("sync", f.name, fs.ErrClosed)
	case f.n.dir:
		f.m.syncDir(f.n)
	default:
		f.n.durable = slices.Clone(f.n.data)
	}
	return nil
}

func (f *memFile) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	switch {
	case f.m.dead():
		return pathErr("close", f.name, ErrCrashed)
	case f.closed:
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	switch {
	case f.m.dead():
		return nil, pathErr("stat", f.name, ErrCrashed)
	case f.closed:
		return nil, pathErr("stat", f.name, fs.ErrClosed)
	}
	return f.n.info(filepath.Base(clean(f.name))), nil
}

// WriteFile is a test convenience: it sets name's contents to data,
// creating the file (and any missing parent directories) or replacing
// what a file holds, and makes the data and every entry on the way
// durable, as if a setup step had done it all and synced. It is not a
// counted operation and works after a crash: it is the test's hand, not
// the process's.
func (m *Mem) WriteFile(name string, data []byte) error {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.root
	elems := strings.Split(p[1:], "/")
	for i, elem := range elems {
		c := d.ents[elem]
		if i == len(elems)-1 {
			if c == nil {
				c = &inode{}
			} else if c.dir {
				return pathErr("open", name, syscall.EISDIR)
			}
			c.data, c.durable, c.mtime = slices.Clone(data), slices.Clone(data), time.Now()
		} else if c == nil {
			c = newDir()
		} else if !c.dir {
			return pathErr("open", name, syscall.ENOTDIR)
		}
		d.ents[elem], d.dents[elem] = c, c
		// A pending change of this entry would fight the durable state
		// just set up.
		m.pending = slices.DeleteFunc(m.pending, func(o pendingOp) bool { return o.dir == d && o.name == elem })
		d = c
	}
	return nil
}

// ReadFile is a test convenience: it returns a copy of name's current
// contents. It is not a counted operation and works after a crash.
func (m *Mem) ReadFile(name string) ([]byte, error) {
	p := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(p)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if n.dir {
		return nil, pathErr("read", name, syscall.EISDIR)
	}
	return slices.Clone(n.data), nil
}

// Paths lists the path of every file in the current tree, sorted, for test
// diagnostics. Directories are not listed.
func (m *Mem) Paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	var walk func(string, *inode)
	walk = func(p string, d *inode) {
		for name, n := range d.ents {
			if n.dir {
				walk(p+name+"/", n)
			} else {
				out = append(out, p+name)
			}
		}
	}
	walk("/", m.root)
	slices.Sort(out)
	return out
}

// Clone returns a new, live Mem in the state a restarted process finds
// after this one died while the machine kept running: the same current
// and the same durable state, pending changes included (the page cache
// survives; what was not synced is still not synced). Open files are not
// carried over, and the clone's Ops count starts from zero.
func (m *Mem) Clone() *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	copies := map[*inode]*inode{}
	var cp func(*inode) *inode
	cp = func(n *inode) *inode {
		if c := copies[n]; c != nil {
			return c
		}
		c := &inode{dir: n.dir, data: slices.Clone(n.data), durable: slices.Clone(n.durable), mtime: n.mtime}
		copies[n] = c // before the children: keep shared inodes shared
		if n.dir {
			c.ents = make(map[string]*inode, len(n.ents))
			c.dents = make(map[string]*inode, len(n.dents))
			for name, e := range n.ents {
				c.ents[name] = cp(e)
			}
			for name, e := range n.dents {
				c.dents[name] = cp(e)
			}
		}
		return c
	}
	out := &Mem{root: cp(m.root), limit: -1, seq: m.seq}
	out.pending = make([]pendingOp, len(m.pending))
	for i, o := range m.pending {
		o.dir = cp(o.dir)
		if o.node != nil {
			o.node = cp(o.node)
		}
		out.pending[i] = o
	}
	return out
}

// CrashOptions says which of the states a power cut may leave CrashClone
// builds.
type CrashOptions struct {
	// Rand, when set, picks a random one of the possible states instead of
	// the durable state alone (see CrashClone). A seeded source makes the
	// choice reproducible.
	Rand *rand.Rand
}

// CrashClone returns a new, live Mem holding what a power cut leaves: the
// durable state. Each directory reachable from "/" through durable entries
// has its durable entries, each file its durable bytes; an inode durable
// under two names (a rename whose target directory was synced and whose
// source directory was not) is one inode with two names.
//
// With opts.Rand set, the disk is taken to have written some unsynced
// changes anyway: a random subset of the pending entry changes is applied
// on top, in order, each sequence number kept or dropped as one with
// probability 1/2 (a rename is never half done), and each file whose
// current bytes extend its durable bytes keeps a random-length prefix of
// the unsynced tail (a file whose current bytes do not extend them keeps
// one or the other at random).
//
// In the clone everything present is durable: it is what is on disk after
// the reboot.
func (m *Mem) CrashClone(opts CrashOptions) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := opts.Rand
	// The entries each directory has after the crash: durable ones, plus
	// the kept pending changes.
	after := map[*inode]map[string]*inode{}
	if r != nil {
		keep := map[uint64]bool{}
		for _, o := range m.pending {
			k, ok := keep[o.seq]
			if !ok {
				k = r.IntN(2) == 0
				keep[o.seq] = k
			}
			if !k {
				continue
			}
			ents := after[o.dir]
			if ents == nil {
				ents = maps.Clone(o.dir.dents)
				after[o.dir] = ents
			}
			if o.node == nil {
				delete(ents, o.name)
			} else {
				ents[o.name] = o.node
			}
		}
	}
	copies := map[*inode]*inode{}
	onPath := map[*inode]bool{} // directories being copied: a kept subset of moves can make a cycle
	var cp func(*inode) *inode
	cp = func(n *inode) *inode {
		if c := copies[n]; c != nil {
			return c
		}
		c := &inode{dir: n.dir, mtime: n.mtime}
		copies[n] = c
		if !n.dir {
			c.data = survivingData(n, r)
			c.durable = c.data
			return c
		}
		onPath[n] = true
		defer delete(onPath, n)
		ents := after[n]
		if ents == nil {
			ents = n.dents
		}
		c.ents = make(map[string]*inode, len(ents))
		for _, name := range slices.Sorted(maps.Keys(ents)) { // sorted: the same seed gives the same state
			if e := ents[name]; !onPath[e] {
				c.ents[name] = cp(e)
			}
		}
		c.dents = maps.Clone(c.ents)
		return c
	}
	return &Mem{root: cp(m.root), limit: -1, seq: m.seq}
}

// survivingData is what a crash leaves of file n's bytes.
func survivingData(n *inode, r *rand.Rand) []byte {
	if r == nil {
		return slices.Clone(n.durable)
	}
	if !bytes.HasPrefix(n.data, n.durable) {
		if r.IntN(2) == 0 {
			return slices.Clone(n.data)
		}
		return slices.Clone(n.durable)
	}
	return slices.Clone(n.data[:len(n.durable)+r.IntN(len(n.data)-len(n.durable)+1)])
}
