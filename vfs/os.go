package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// OS returns the real file system, backed by package os. In a build with
// the faultinject tag it is wrapped by the Injector that the
// HYDROSHARD_FAULT environment variable describes (see faultenv.go); in a
// release build it is the plain operating-system file system.
func OS() FS { return faultWrap(osFS{}) }

// osFS is the operating-system file system. It has no state: every method
// is one system call (or two, for the no-replace rename fallback).
type osFS struct{}

// Create opens name with O_EXCL so that a file left by a crashed writer, or
// a second writer racing for the same name, is an error instead of being
// silently truncated and interleaved.
func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err // not f: a nil *os.File in a File is not a nil File
	}
	return f, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) Mkdir(name string) error              { return os.Mkdir(name, 0o755) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) {
	return os.ReadDir(name) // already sorted by name
}
func (osFS) Stat(name string) (fs.FileInfo, error)  { return os.Stat(name) }
func (osFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }

// RenameNoReplace uses renameat2(RENAME_NOREPLACE), which checks and
// renames atomically. File systems (and kernels) that lack the flag answer
// EINVAL or ENOSYS; there a hard link (which also refuses an existing
// target) followed by removing the source gives the same guarantee, at the
// price of a moment in which the file has both names.
func (osFS) RenameNoReplace(oldname, newname string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldname, unix.AT_FDCWD, newname, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		// A *os.LinkError like os.Rename's; EEXIST matches fs.ErrExist.
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return renameByLink(oldname, newname)
}

// renameByLink is the no-replace rename where renameat2 is missing: link
// refuses an existing target as RENAME_NOREPLACE does.
func renameByLink(oldname, newname string) error {
	if err := os.Link(oldname, newname); err != nil {
		return err // *os.LinkError; EEXIST when newname exists
	}
	if err := os.Remove(oldname); err != nil {
		// newname is in place; only the old name could not be dropped.
		return fmt.Errorf("rename %s %s: linked, but removing the source: %w", oldname, newname, err)
	}
	return nil
}

// SyncDir opens the directory with O_DIRECTORY, so that a path naming a
// regular file is refused (ENOTDIR) instead of fsyncing the file and
// leaving the caller believing a directory entry is durable.
func (osFS) SyncDir(name string) error {
	d, err := os.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", name, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", name, err)
	}
	return nil
}
