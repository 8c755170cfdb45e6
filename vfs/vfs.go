// Package vfs is the one door through which hydroshard touches the file
// system: every create, write, sync, rename, remove, mkdir, directory sync,
// read and walk of the rank writer, the merge and the policy codec goes
// through an FS. Production code uses OS(); tests swap in an error-injecting
// wrapper (Inject) or a crash-simulating in-memory file system (NewMem),
// which is how the suite proves that every fsync the commit protocol needs
// is there.
//
// Durability rules this package owns, so that no caller can forget them:
//
//   - A file's bytes are durable after File.Sync returns nil.
//   - A directory entry (a new file, a rename's target, a removal) is
//     durable only after the directory itself is synced (FS.SyncDir).
//   - Dirs.Publish (no-replace rename into place), Dirs.Replace (temp,
//     fsync, rename over), Dirs.Remove and Dirs.Ensure (mkdir -p) sync the
//     directories whose entries they change before they return.
//
// Paths are operating-system paths (filepath), absolute or relative to the
// process's working directory.
package vfs

import (
	"io"
	"io/fs"
)

// File is an open file of an FS. Files opened for writing are written
// sequentially; files opened for reading are read sequentially.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	// Sync makes the file's bytes durable (fsync).
	Sync() error
	// Stat describes the open file.
	Stat() (fs.FileInfo, error)
}

// FS is the set of file-system operations hydroshard uses. Implementations
// must be safe for concurrent use.
type FS interface {
	// Create creates name, which must not exist (O_CREATE|O_EXCL): an
	// existing name is an error matching fs.ErrExist. The file is open for
	// writing only.
	Create(name string) (File, error)
	// Open opens name for reading.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Rename renames oldname to newname, replacing newname when it exists.
	Rename(oldname, newname string) error
	// RenameNoReplace renames oldname to newname and fails with an error
	// matching fs.ErrExist when newname exists: committed data is never
	// overwritten by accident.
	RenameNoReplace(oldname, newname string) error
	// Mkdir creates one directory; an existing name is an error matching
	// fs.ErrExist.
	Mkdir(name string) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat describes name, following symbolic links.
	Stat(name string) (fs.FileInfo, error)
	// Lstat describes name without following a final symbolic link.
	Lstat(name string) (fs.FileInfo, error)
	// SyncDir makes the entries of directory name durable.
	SyncDir(name string) error
}
