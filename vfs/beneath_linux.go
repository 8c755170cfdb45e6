//go:build linux

package vfs

import (
	"cmp"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// resolveFlags make openat2 refuse, during the resolution itself, any
// symbolic link and any path leaving the directory it starts from.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS

var (
	openat2Once sync.Once
	openat2OK   bool
)

// openat2Works reports whether the kernel has openat2 with the resolve
// flags Beneath needs (Linux 5.6). ENOSYS (an older kernel), EPERM (a
// seccomp filter that does not know the call) and EINVAL or E2BIG (flags
// it does not know) mean no.
func openat2Works() bool {
	openat2Once.Do(func() {
		fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS,
		})
		if err == nil {
			unix.Close(fd)
		}
		switch err {
		case unix.ENOSYS, unix.EPERM, unix.EINVAL, unix.E2BIG:
		default:
			openat2OK = true
		}
	})
	return openat2OK
}

// beneathAtFS returns the openat2 implementation of Beneath over the
// operating-system file system, or nil when the kernel lacks openat2.
func beneathAtFS(b *beneath) FS {
	if !openat2Works() {
		return nil
	}
	return &beneathAt{beneath: b}
}

// beneathAt is Beneath over the operating-system file system, race-free:
// each operation opens the directory it acts in with openat2 relative to
// root and acts relative to that descriptor. Operations on root itself,
// which involve root's parent, are those of the embedded check-then-act
// beneath (there is nothing below root to check), as are renames with
// root as one name.
type beneathAt struct{ *beneath }

// retry runs a system call again while it is interrupted, as package os
// does.
func retry(call func() error) error {
	for {
		if err := call(); err != unix.EINTR {
			return err
		}
	}
}

// openat2 opens path below dirfd, refusing links and escapes.
func openat2(dirfd int, path string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(dirfd, path, &how)
		// EAGAIN: a concurrent rename or mount made the kernel give up
		// a lookup it could not prove safe; trying again is the remedy.
		if err == unix.EINTR || err == unix.EAGAIN && tries < 100 {
			continue
		}
		return fd, err
	}
}

// start opens the directory t's components are resolved from: root
// (following root's own links: OUT may be one), or, with followFirst and
// a follow-listed first component, that child followed. skip is the
// number of components the descriptor already stands for.
func (b *beneathAt) start(t *target, followFirst bool) (fd, skip int, err error) {
	err = retry(func() (err error) {
		fd, err = unix.Open(t.base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil || !followFirst || len(t.comps) == 0 || !b.follow[t.comps[0]] {
		return fd, 0, err
	}
	root := fd
	defer unix.Close(root)
	err = retry(func() (err error) {
		fd, err = unix.Openat(root, t.comps[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, 1, err
}

// resolveErr is the error of resolving t's components from skip on below
// dirfd: ELOOP is a symbolic link (found again to name it), EXDEV an
// escape; other errors are wrapped by wrap, as package os would.
func (b *beneathAt) resolveErr(t *target, err error, dirfd, skip int, wrap func(error) error) error {
	switch err {
	case unix.ELOOP:
		for k := skip + 1; k <= len(t.comps); k++ {
			var st unix.Stat_t
			if unix.Fstatat(dirfd, filepath.Join(t.comps[skip:k]...), &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				break
			}
			if isLinkStat(&st) {
				p := t.at(k)
				if k == len(t.comps) {
					p = t.final()
				}
				return &SymlinkError{Op: t.op, Name: t.name, Path: p}
			}
		}
		// The link is gone again: a concurrent change; name the path.
		return &SymlinkError{Op: t.op, Name: t.name, Path: t.final()}
	case unix.EXDEV:
		return &EscapeError{Op: t.op, Path: t.name, Root: b.root}
	}
	return wrap(err)
}

func isLinkStat(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFLNK }

// dir opens (O_PATH) the directory of t's first k components.
func (b *beneathAt) dir(t *target, k int, wrap func(error) error) (int, error) {
	fd, skip, err := b.start(t, k > 0)
	if err != nil {
		return -1, wrap(err)
	}
	if k <= skip {
		return fd, nil
	}
	defer unix.Close(fd)
	dfd, err := openat2(fd, filepath.Join(t.comps[skip:k]...), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, b.resolveErr(t, err, fd, skip, wrap)
	}
	return dfd, nil
}

// parent opens the directory t's final component is an entry of, and
// returns that component. t is below root.
func (b *beneathAt) parent(t *target, wrap func(error) error) (int, string, error) {
	n := len(t.comps)
	fd, err := b.dir(t, n-1, wrap)
	return fd, t.comps[n-1], err
}

// open opens t itself, following a follow-listed first component but no
// other link.
func (b *beneathAt) open(t *target, flags int, wrap func(error) error) (int, error) {
	fd, skip, err := b.start(t, true)
	if err != nil {
		return -1, wrap(err)
	}
	defer unix.Close(fd)
	rest := "."
	if skip < len(t.comps) {
		rest = filepath.Join(t.comps[skip:]...)
	}
	nfd, err := openat2(fd, rest, flags)
	if err != nil {
		return -1, b.resolveErr(t, err, fd, skip, wrap)
	}
	return nfd, nil
}

// pathErr returns the wrapper that makes an errno a *fs.PathError of op
// on name, as package os reports it.
func pathErrOf(op, name string) func(error) error {
	return func(err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }
}

// linkAt reports whether base, an entry of dirfd, is a symbolic link.
func linkAt(dirfd int, base string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && isLinkStat(&st)
}

// fileInfo describes the file fd refers to (O_PATH or not) as package os
// does, so that os.SameFile works on the result, and closes fd.
func fileInfo(fd int, path string, wrap func(error) error) (fs.FileInfo, error) {
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok {
			err = pe.Err
		}
		return nil, wrap(err)
	}
	return fi, nil
}

// Create creates the file with O_CREAT|O_EXCL|O_NOFOLLOW in the directory
// openat2 resolved: an existing link is EEXIST, never followed.
func (b *beneathAt) Create(name string) (File, error) {
	t, err := b.target("create", name)
	if err != nil {
		return nil, err
	}
	if len(t.comps) == 0 {
		return b.inner.Create(t.path)
	}
	wrap := pathErrOf("open", name)
	dfd, base, err := b.parent(t, wrap)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var fd int
	err = retry(func() (err error) {
		fd, err = unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		return err
	})
	if err != nil {
		if err == unix.EEXIST && !b.top(t) && linkAt(dfd, base) {
			return nil, &SymlinkError{Op: t.op, Name: name, Path: t.final()}
		}
		return nil, wrap(err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func (b *beneathAt) Open(name string) (File, error) {
	t, err := b.target("open", name)
	if err != nil {
		return nil, err
	}
	if len(t.comps) == 0 {
		return b.inner.Open(t.path)
	}
	fd, err := b.open(t, unix.O_RDONLY, pathErrOf("open", name))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Remove unlinks, and removes a directory when unlink cannot, as
// os.Remove does. A final symbolic link is removed, not followed.
func (b *beneathAt) Remove(name string) error {
	t, err := b.target("remove", name)
	if err != nil {
		return err
	}
	if len(t.comps) == 0 {
		return b.inner.Remove(t.path)
	}
	wrap := pathErrOf("remove", name)
	dfd, base, err := b.parent(t, wrap)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	e := retry(func() error { return unix.Unlinkat(dfd, base, 0) })
	if e == nil {
		return nil
	}
	e1 := retry(func() error { return unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR) })
	if e1 == nil {
		return nil
	}
	// As os.Remove: rmdir of a non-directory says ENOTDIR, and then
	// unlink's error is the real one.
	if e1 != unix.ENOTDIR {
		e = e1
	}
	return wrap(e)
}

func (b *beneathAt) Rename(oldname, newname string) error {
	return b.rename(oldname, newname, false)
}

func (b *beneathAt) RenameNoReplace(oldname, newname string) error {
	return b.rename(oldname, newname, true)
}

// rename renames between the two directories openat2 resolved. Neither
// final name may be a symbolic link; renameat itself never follows one,
// so a link swapped in after that check is at worst moved or replaced as
// an entry, never written through.
func (b *beneathAt) rename(oldname, newname string, noReplace bool) error {
	ot, err := b.target("rename", oldname)
	if err != nil {
		return err
	}
	nt, err := b.target("rename", newname)
	if err != nil {
		return err
	}
	if len(ot.comps) == 0 || len(nt.comps) == 0 {
		if noReplace {
			return b.beneath.RenameNoReplace(oldname, newname)
		}
		return b.beneath.Rename(oldname, newname)
	}
	wrap := func(err error) error { return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err} }
	ofd, obase, err := b.parent(ot, wrap)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	nfd, nbase, err := b.parent(nt, wrap)
	if err != nil {
		return err
	}
	defer unix.Close(nfd)

	var ost, nst unix.Stat_t
	if err := unix.Fstatat(ofd, obase, &ost, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrap(err)
	}
	if isLinkStat(&ost) {
		return &SymlinkError{Op: ot.op, Name: oldname, Path: ot.final()}
	}
	nerr := unix.Fstatat(nfd, nbase, &nst, unix.AT_SYMLINK_NOFOLLOW)
	if nerr == nil && isLinkStat(&nst) {
		return &SymlinkError{Op: nt.op, Name: newname, Path: nt.final()}
	}

	if !noReplace {
		// As os.Rename: an existing directory is never replaced, unless
		// both names are one directory under different names.
		if nerr == nil && nst.Mode&unix.S_IFMT == unix.S_IFDIR &&
			(ot.path == nt.path || ost.Dev != nst.Dev || ost.Ino != nst.Ino) {
			return wrap(unix.EEXIST)
		}
		if err := retry(func() error { return unix.Renameat(ofd, obase, nfd, nbase) }); err != nil {
			return wrap(err)
		}
		return nil
	}

	err = unix.EINVAL
	if !b.noRenameat2 {
		err = retry(func() error { return unix.Renameat2(ofd, obase, nfd, nbase, unix.RENAME_NOREPLACE) })
	}
	if err == nil {
		return nil
	}
	if err != unix.EINVAL && err != unix.ENOSYS {
		return wrap(err) // EEXIST matches fs.ErrExist
	}
	// As osFS.RenameNoReplace on a file system without RENAME_NOREPLACE:
	// link refuses an existing target, then the source name is dropped.
	// linkat without AT_SYMLINK_FOLLOW does not follow the source.
	if err := retry(func() error { return unix.Linkat(ofd, obase, nfd, nbase, 0) }); err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	if err := retry(func() error { return unix.Unlinkat(ofd, obase, 0) }); err != nil {
		return fmt.Errorf("rename %s %s: linked, but removing the source: %w",
			oldname, newname, &fs.PathError{Op: "remove", Path: oldname, Err: err})
	}
	return nil
}

// Mkdir makes the directory with mkdirat in the directory openat2
// resolved; mkdirat never follows its final name.
func (b *beneathAt) Mkdir(name string) error {
	t, err := b.target("mkdir", name)
	if err != nil {
		return err
	}
	if len(t.comps) == 0 {
		return b.inner.Mkdir(t.path)
	}
	wrap := pathErrOf("mkdir", name)
	dfd, base, err := b.parent(t, wrap)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	err = retry(func() error { return unix.Mkdirat(dfd, base, 0o755) })
	if err != nil {
		if err == unix.EEXIST && !b.top(t) && linkAt(dfd, base) {
			return &SymlinkError{Op: t.op, Name: name, Path: t.final()}
		}
		return wrap(err)
	}
	return nil
}

// ReadDir lists the directory openat2 opened, sorted by name as
// os.ReadDir does. (An entry's Info, as os gives it, is an Lstat by path
// made when it is asked for.)
func (b *beneathAt) ReadDir(name string) ([]fs.DirEntry, error) {
	t, err := b.target("readdir", name)
	if err != nil {
		return nil, err
	}
	if len(t.comps) == 0 {
		return b.inner.ReadDir(t.path)
	}
	fd, err := b.open(t, unix.O_RDONLY|unix.O_DIRECTORY, pathErrOf("open", name))
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	ents, err := f.ReadDir(-1)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return cmp.Compare(a.Name(), b.Name()) })
	return ents, err
}

func (b *beneathAt) Stat(name string) (fs.FileInfo, error) {
	t, err := b.target("stat", name)
	if err != nil {
		return nil, err
	}
	if len(t.comps) == 0 {
		return b.inner.Stat(t.path)
	}
	wrap := pathErrOf("stat", name)
	fd, err := b.open(t, unix.O_PATH, wrap)
	if err != nil {
		return nil, err
	}
	return fileInfo(fd, t.path, wrap)
}

// Lstat opens the final name with O_PATH|O_NOFOLLOW, which gives a
// descriptor of a link itself, and describes it.
func (b *beneathAt) Lstat(name string) (fs.FileInfo, error) {
	t, err := b.target("lstat", name)
	if err != nil {
		return nil, err
	}
	if len(t.comps) == 0 {
		return b.inner.Lstat(t.path)
	}
	wrap := pathErrOf("lstat", name)
	dfd, base, err := b.parent(t, wrap)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := openat2(dfd, base, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, b.resolveErr(t, err, dfd, len(t.comps)-1, wrap)
	}
	return fileInfo(fd, t.path, wrap)
}

// SyncDir opens the directory with openat2 and O_DIRECTORY and fsyncs it.
func (b *beneathAt) SyncDir(name string) error {
	t, err := b.target("syncdir", name)
	if err != nil {
		return err
	}
	if len(t.comps) == 0 {
		return b.inner.SyncDir(t.path)
	}
	fd, err := b.open(t, unix.O_RDONLY|unix.O_DIRECTORY, pathErrOf("open", name))
	if err != nil {
		if _, ok := err.(*fs.PathError); ok {
			return fmt.Errorf("syncing directory %s: %w", name, err)
		}
		return err // a *SymlinkError or *EscapeError says it all
	}
	err = retry(func() error { return unix.Fsync(fd) })
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", name, &fs.PathError{Op: "sync", Path: name, Err: err})
	}
	return nil
}

// usesOpenat2 reports whether fsys is the openat2 implementation of
// Beneath (for tests).
func usesOpenat2(fsys FS) bool {
	_, ok := fsys.(*beneathAt)
	return ok
}
