package shard

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// FileInfo is what a durable write reports about the file it made. It is
// what the journal's commit record carries and what the merge verifies.
type FileInfo struct {
	Rows  int64
	Bytes int64
	XXH64 uint64
}

// TempSuffix ends every temp file name. It must never be ".parquet":
// DuckDB's **/*.parquet glob would pick a temp file up.
const TempSuffix = ".tmp"

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

var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<20) }}

// WriteDurable creates path (which must not exist), streams write's output
// into it while counting and hashing, fsyncs and closes it. On any error
// the partial file is removed. The returned FileInfo has Rows zero; the
// caller fills it in.
func WriteDurable(path string, write func(io.Writer) error) (FileInfo, error) {
	info, pf, err := WriteUnsynced(path, write)
	if err != nil {
		return info, err
	}
	return info, pf.Sync()
}

// PendingFile is a file written in full but not yet durable. Its
// descriptor stays open until Sync or Abort: a write-back error is only
// reported to descriptors that were open when it happened, so the file is
// never reopened to be fsynced.
type PendingFile struct {
	f    *os.File
	path string
}

// Sync fsyncs and closes the file; on error it removes the file.
func (p *PendingFile) Sync() (err error) {
	defer func() {
		if err != nil {
			_ = p.f.Close()
			_ = os.Remove(p.path)
		}
	}()
	if err = p.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", p.path, err)
	}
	if err = p.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", p.path, err)
	}
	return nil
}

// Abort closes and removes the file.
func (p *PendingFile) Abort() {
	_ = p.f.Close()
	_ = os.Remove(p.path)
}

// WriteUnsynced is WriteDurable without the fsync: the caller must Sync
// (or Abort) the returned file. It lets a writer overlap one file's fsync
// with the encoding of the next.
func WriteUnsynced(path string, write func(io.Writer) error) (info FileInfo, pf *PendingFile, err error) {
	if strings.HasSuffix(path, ".parquet") {
		return info, nil, fmt.Errorf("shard: temp path %s must not end in .parquet", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return info, nil, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(f)
	defer func() { bw.Reset(nil); bufPool.Put(bw) }()
	hw := &hashingWriter{w: bw, h: xxhash.New()}
	if err = write(hw); err != nil {
		return info, nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return info, nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return FileInfo{Bytes: hw.n, XXH64: hw.h.Sum64()}, &PendingFile{f: f, path: path}, nil
}

// WriteTemp encodes tr into a new temp file at path with e and makes it
// durable.
func (e *Encoder) WriteTemp(path string, tr TableRows, p Params) (FileInfo, error) {
	info, pf, err := e.WriteTempUnsynced(path, tr, p)
	if err != nil {
		return info, err
	}
	return info, pf.Sync()
}

// WriteTempUnsynced encodes tr into a new temp file at path with e; the
// caller must Sync (or Abort) the returned file.
func (e *Encoder) WriteTempUnsynced(path string, tr TableRows, p Params) (FileInfo, *PendingFile, error) {
	var rows int64
	info, pf, err := WriteUnsynced(path, func(w io.Writer) error {
		var err error
		rows, err = e.Encode(w, tr, p)
		return err
	})
	info.Rows = rows
	return info, pf, err
}

// SyncDir fsyncs a directory so that entries created or renamed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// MkdirAllSync creates dir and any missing parents, fsyncing each parent
// whose entries changed, so a new partition directory survives a crash.
func MkdirAllSync(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return SyncDir(parent)
}

// HashFile streams a file and returns its size and XXH64, as the merge and
// the verifier do.
func HashFile(path string) (FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileInfo{}, err
	}
	defer f.Close()
	h := xxhash.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return FileInfo{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return FileInfo{Bytes: n, XXH64: h.Sum64()}, nil
}

// ErrExists is returned by Publish when the final path already holds a
// file: committed data is never overwritten.
var ErrExists = errors.New("final path already exists")

// Publish moves a durable temp file to its final path without ever
// replacing an existing file (renameat2 RENAME_NOREPLACE; a hard link plus
// unlink where the filesystem lacks it). The caller fsyncs the directory.
func Publish(tmp, final string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if err = os.Link(tmp, final); err == nil {
			err = os.Remove(tmp)
		}
	}
	if errors.Is(err, os.ErrExist) || errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("publishing %s: %w", final, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("publishing %s as %s: %w", tmp, final, err)
	}
	return nil
}
