package vfs

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Written describes a file as written or read in full: its size and the
// XXH64 of its bytes, which is what journals record and the merge
// verifies.
type Written struct {
	Bytes int64
	XXH64 uint64
}

// writeBufSize is the buffer between an encoder and the file: large enough
// that a Parquet encoder's many small writes become few system calls.
const writeBufSize = 1 << 20

// bufPool recycles the 1 MiB write buffers: a rank writes many files, and
// a fresh megabyte per file would be garbage-collector churn.
var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}

// readBufPool recycles HashFile's read buffers: the merge hashes every
// file of a study.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// hashingWriter counts and hashes bytes on their way to the file, so the
// checksum costs no second read.
type hashingWriter struct {
	w io.Writer
	h hash.Hash64
	n int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// WriteNew creates name, which must not exist, and streams write's output
// into it through a buffer, counting and hashing the bytes on the way. It
// returns the file still open and not yet synced: the caller must Sync or
// Abort it, which lets a writer overlap one file's fsync with the encoding
// of the next. On any error (or a panic in write) the partial file is
// closed and removed, and the returned *Pending is nil.
func WriteNew(fsys FS, name string, write func(io.Writer) error) (Written, *Pending, error) {
	f, err := fsys.Create(name)
	if err != nil {
		return Written{}, nil, err // Create's error names the file
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = fsys.Remove(name)
		}
	}()
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(f)
	defer func() { bw.Reset(nil); bufPool.Put(bw) }()
	hw := &hashingWriter{w: bw, h: xxhash.New()}
	if err := write(hw); err != nil {
		return Written{}, nil, fmt.Errorf("writing %s: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		return Written{}, nil, fmt.Errorf("writing %s: %w", name, err)
	}
	ok = true
	return Written{Bytes: hw.n, XXH64: hw.h.Sum64()}, &Pending{fsys: fsys, f: f, name: name}, nil
}

// WriteNewSync is WriteNew followed by Pending.Sync: on success name holds
// exactly what write produced and its bytes are durable. Its directory
// entry is not: publish it with Dirs.Publish or Dirs.Replace, or sync its
// directory.
func WriteNewSync(fsys FS, name string, write func(io.Writer) error) (Written, error) {
	w, p, err := WriteNew(fsys, name, write)
	if err != nil {
		return Written{}, err
	}
	if err := p.Sync(); err != nil {
		return Written{}, err
	}
	return w, nil
}

// Pending is a file written in full but not yet durable.
//
// Its descriptor stays open from WriteNew until Sync or Abort on purpose:
// when the kernel fails to write dirty pages back, Linux reports the error
// once, to the descriptors open at the time, and then marks the pages
// clean. A file closed after writing and reopened to be fsynced can
// therefore see a successful fsync of data that never reached the disk.
type Pending struct {
	fsys FS
	f    File // nil once Sync or Abort has run
	name string
}

// Sync fsyncs and closes the file. On any error it also removes the file:
// its bytes are not known to be on disk, so it must not be published.
// After Sync (successful or not) Abort does nothing, so `defer p.Abort()`
// is a safe guard; a second Sync is an error.
func (p *Pending) Sync() error {
	if p == nil || p.f == nil {
		return errors.New("vfs: Pending.Sync after Sync or Abort")
	}
	f := p.f
	p.f = nil
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = p.fsys.Remove(p.name)
		return fmt.Errorf("syncing %s: %w", p.name, err)
	}
	if err := f.Close(); err != nil {
		_ = p.fsys.Remove(p.name)
		return fmt.Errorf("closing %s: %w", p.name, err)
	}
	return nil
}

// Abort closes and removes the file. It does nothing on a nil *Pending or
// after Sync, so it can be deferred right after WriteNew.
func (p *Pending) Abort() {
	if p == nil || p.f == nil {
		return
	}
	_ = p.f.Close()
	_ = p.fsys.Remove(p.name)
	p.f = nil
}

// TooLargeError is ReadFile's refusal of a file larger than its limit.
type TooLargeError struct {
	Name string
	// Size is the file's size as far as it is known: its Stat size, or,
	// when the file grew past the limit while being read, limit+1 (a lower
	// bound).
	Size  int64
	Limit int64
}

// Error names the file, its size and the limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("reading %s: %d bytes is more than the limit of %d bytes", e.Name, e.Size, e.Limit)
}

// ReadFile reads the whole of name, refusing with a *TooLargeError a file
// larger than limit bytes. Anything read from disk is untrusted (a journal
// or manifest may be corrupt or hostile), so it never allocates more than
// limit+1 bytes, whatever Stat says and however much the file holds.
func ReadFile(fsys FS, name string, limit int64) ([]byte, error) {
	if limit < 0 {
		return nil, fmt.Errorf("reading %s: negative limit %d", name, limit)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hint := int64(512) // Stat may say 0 for special files: grow from a small buffer
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if st.Size() > limit {
		return nil, &TooLargeError{Name: name, Size: st.Size(), Limit: limit}
	} else if st.Size() > 0 {
		hint = st.Size()
	}
	// One byte more than we accept, to see EOF (or the file having grown)
	// without a second allocation in the common case.
	buf := make([]byte, 0, min(hint, limit)+1)
	r := io.LimitReader(f, limit+1)
	for {
		if len(buf) == cap(buf) {
			// Double, but never past limit+1: a full buffer of limit+1
			// bytes has already been refused below.
			nb := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, &TooLargeError{Name: name, Size: int64(len(buf)), Limit: limit}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
}

// HashFile streams name and returns its size and XXH64, as the merge and
// the verifier check a file against its journal record.
func HashFile(fsys FS, name string) (Written, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return Written{}, err
	}
	defer f.Close()
	h := xxhash.New()
	buf := readBufPool.Get().(*[]byte)
	defer readBufPool.Put(buf)
	// struct{io.Reader} hides any WriterTo of the file, so the copy goes
	// through our buffer and the file's plain Read.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, *buf)
	if err != nil {
		return Written{}, fmt.Errorf("reading %s: %w", name, err)
	}
	return Written{Bytes: n, XXH64: h.Sum64()}, nil
}

// Exists reports whether name exists, without following a final symbolic
// link (a dangling link exists). An error other than "does not exist" (a
// permission problem, an I/O error) is returned, never taken for absence.
func Exists(fsys FS, name string) (bool, error) {
	_, err := fsys.Lstat(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// WalkDir walks the tree rooted at root like filepath.WalkDir: fn is called
// for root and every file and directory below it, in lexical order;
// returning fs.SkipDir skips a directory (or the rest of a file's
// directory), fs.SkipAll ends the walk. It uses only fsys.Lstat and
// fsys.ReadDir and never follows a symbolic link, not even at root, so a
// link cannot lead the walk out of the tree or into a cycle.
func WalkDir(fsys FS, root string, fn fs.WalkDirFunc) error {
	info, err := fsys.Lstat(root)
	if err != nil {
		err = fn(root, nil, err)
	} else {
		err = walkDir(fsys, root, fs.FileInfoToDirEntry(info), fn)
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

// walkDir is filepath.WalkDir's recursion over an FS; the error checks
// compare with == as the standard library does, because the WalkDirFunc
// contract is to return the sentinels themselves.
func walkDir(fsys FS, name string, d fs.DirEntry, fn fs.WalkDirFunc) error {
	if err := fn(name, d, nil); err != nil || !d.IsDir() {
		if err == fs.SkipDir && d.IsDir() {
			err = nil // the directory is skipped
		}
		return err
	}
	entries, err := fsys.ReadDir(name)
	if err != nil {
		// A second call for the same directory reports the error.
		if err = fn(name, d, err); err != nil {
			if err == fs.SkipDir && d.IsDir() {
				err = nil
			}
			return err
		}
	}
	// FS promises sorted entries; an implementation that forgets must not
	// make the walk order depend on it.
	if !slices.IsSortedFunc(entries, byName) {
		entries = slices.SortedFunc(slices.Values(entries), byName)
	}
	for _, e := range entries {
		if err := walkDir(fsys, filepath.Join(name, e.Name()), e, fn); err != nil {
			if err == fs.SkipDir {
				break // the rest of this directory
			}
			return err
		}
	}
	return nil
}

func byName(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) }

// SyncFile fsyncs an existing file: for a reader that is about to vouch
// for bytes some other process (perhaps one that died) wrote.
func SyncFile(fsys FS, name string) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	return nil
}
