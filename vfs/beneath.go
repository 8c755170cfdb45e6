package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// EscapeError is the error of an operation of a Beneath file system on a
// path that is neither its root nor lexically below it: "../" climbing out
// of the root, an absolute path elsewhere, or a sibling that merely shares
// a prefix ("/out2" is not under "/out"). Such a path is a bug or an
// attack (a path read from an untrusted journal); either way the operation
// is refused before anything is touched.
type EscapeError struct {
	Op   string // the refused operation: "create", "open", "rename", ...
	Path string // the path as the caller gave it
	Root string // the root the file system is confined to
}

// Error names the operation, the path and the root it is not under.
func (e *EscapeError) Error() string {
	return fmt.Sprintf("vfs: %s %s: outside %s", e.Op, e.Path, e.Root)
}

// SymlinkError is the error of an operation of a Beneath file system whose
// path meets a symbolic link where the layout has none: a directory on the
// way down (other than a top-level directory Beneath was told to follow),
// or the final name of an operation that would follow or move the link.
// Whoever can write into the output tree can plant such a link, and
// following it would make the operation act on the link's target, which
// can be anywhere the process may write.
type SymlinkError struct {
	Op   string // the refused operation: "create", "open", "rename", ...
	Name string // the path the operation was given
	Path string // the symbolic link met: Name itself, or a directory above it
}

// Error names the operation, its path and the link met.
func (e *SymlinkError) Error() string {
	if e.Path == filepath.Clean(e.Name) {
		return fmt.Sprintf("vfs: %s %s: %s is a symbolic link, not a file or directory of the layout", e.Op, e.Name, e.Path)
	}
	return fmt.Sprintf("vfs: %s %s: %s is a symbolic link, not a directory of the layout", e.Op, e.Name, e.Path)
}

// Beneath returns an FS that does what inner does, but only below root and
// never through a symbolic link planted inside root.
//
// Why: the merge works on an output directory that other processes (rank
// writers, other users of a shared cluster disk) write into, and it reads
// paths from their journals, which are therefore untrusted. It runs with
// the rights of whoever starts it. A symbolic link planted at a partition
// directory (OUT/simulation/hydros -> /home/alice) would make a publish
// rename, a mkdir or a create land in the link's target, and a path with
// "../" in a journal would make it act outside OUT altogether. Beneath
// refuses both:
//
//   - Every path argument must be root itself or lexically below it, after
//     filepath.Clean, compared component by component. Otherwise the
//     operation fails with an *EscapeError and touches nothing. A relative
//     path and an absolute root (or the other way round) are compared in
//     absolute form, from the process's working directory.
//   - root itself may be a symbolic link (OUT on another disk), and so may
//     each direct child of root named in follow (typically "simulation",
//     "training", "policy", which clusters often link to other disks):
//     these are followed and behave exactly as the directories they point
//     to. They are looked at when used, not when Beneath is called, so they
//     may be created (or linked) later.
//   - Any other symbolic link below root is refused with a *SymlinkError:
//     a link at a directory on the way down always; a link at the final
//     name for Create, Mkdir, Open, ReadDir, Stat, SyncDir, and for both
//     names of Rename and RenameNoReplace (a link is never followed, and
//     never moved into place). Remove of a final link removes the link
//     (unlink does not follow it), so a stray link can be cleaned up; Lstat
//     of a final link describes the link, so a caller can see it. A
//     follow-listed child that is itself the final name behaves as the
//     directory it points to for Stat, Open, ReadDir and SyncDir, and is
//     refused by Rename; Create and Mkdir of it fail with fs.ErrExist, as
//     for a real directory; Remove and Lstat act on the link.
//
// Other errors are those of inner (*fs.PathError, *os.LinkError, matching
// fs.ErrNotExist, fs.ErrExist, ... through errors.Is), so callers keep
// their checks. Paths handed to inner are cleaned.
//
// How, and how safe: when inner is the operating-system file system and
// the kernel has openat2 (Linux 5.6 and later), every operation opens the
// directory it acts in with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS relative
// to root and then acts relative to that directory descriptor (openat,
// mkdirat, renameat2, unlinkat, ...). The kernel refuses links and escapes
// during the resolution itself, so a link swapped in concurrently cannot
// redirect the operation: this path is race-free for creates, mkdirs,
// removes, renames, opens and directory syncs. (Rename's check that its
// final names are not links is a separate step, but renameat never
// follows a final name, so a link swapped in there at worst is moved or
// replaced as an entry; nothing is written through it.)
//
// For any other inner FS (Mem, an Injector, OS() wrapped for fault
// injection) and on kernels without openat2, Beneath checks first and acts
// second: it Lstats each component from root down, then hands the cleaned
// path to inner. That leaves a window between the check and the act in
// which a concurrent writer could swap a checked directory for a link; it
// stops planted links and "../" paths, not an attacker racing each
// operation. The walk's Lstats are operations of inner (an Injector counts
// them as OpStat).
//
// Beneath fails if root is empty or a follow name is not a single path
// component. Neither root nor the follow-listed children need to exist
// yet.
func Beneath(inner FS, root string, follow ...string) (FS, error) {
	b, err := newBeneath(inner, root, follow)
	if err != nil {
		return nil, err
	}
	if _, ok := inner.(osFS); ok {
		if at := beneathAtFS(b); at != nil {
			return at, nil
		}
	}
	return b, nil
}

// newBeneath returns the check-then-act Beneath, whatever inner is.
func newBeneath(inner FS, root string, follow []string) (*beneath, error) {
	if root == "" {
		return nil, errors.New("vfs: Beneath: empty root")
	}
	b := &beneath{inner: inner, root: filepath.Clean(root), follow: map[string]bool{}}
	for _, name := range follow {
		if name == "" || name == "." || name == ".." || strings.ContainsRune(name, filepath.Separator) || name != filepath.Clean(name) {
			return nil, fmt.Errorf("vfs: Beneath: follow name %q is not a single path component", name)
		}
		b.follow[name] = true
	}
	return b, nil
}

// beneath is the check-then-act implementation of Beneath, for any inner
// FS.
type beneath struct {
	inner  FS
	root   string          // cleaned
	follow map[string]bool // children of root that may be symbolic links

	// noRenameat2 makes the openat2 implementation behave as on a file
	// system without RENAME_NOREPLACE (tests only).
	noRenameat2 bool
}

// target is one path argument of an operation, checked to be root or
// below it.
type target struct {
	op    string   // the operation, for errors
	name  string   // the path as the caller gave it
	path  string   // cleaned (absolute when root and name differed in form)
	base  string   // root, in the form of path
	comps []string // the components of path below root; none for root
}

// at returns the path of the first k components below root.
func (t *target) at(k int) string { return filepath.Join(t.base, filepath.Join(t.comps[:k]...)) }

// final is the path to name in a SymlinkError about the final component.
func (t *target) final() string { return filepath.Clean(t.name) }

// target checks that name is root or below it.
func (b *beneath) target(op, name string) (*target, error) {
	t := &target{op: op, name: name, path: filepath.Clean(name), base: b.root}
	if filepath.IsAbs(t.path) != filepath.IsAbs(t.base) {
		p, err1 := filepath.Abs(t.path)
		r, err2 := filepath.Abs(t.base)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("vfs: %s %s: %w", op, name, err)
		}
		t.path, t.base = p, r
	}
	rel, err := filepath.Rel(t.base, t.path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, &EscapeError{Op: op, Path: name, Root: b.root}
	}
	if rel != "." {
		t.comps = strings.Split(rel, string(filepath.Separator))
	}
	return t, nil
}

// top reports whether t names a follow-listed child of root itself.
func (b *beneath) top(t *target) bool { return len(t.comps) == 1 && b.follow[t.comps[0]] }

// finalRule says what a symbolic link at the final component means for an
// operation.
type finalRule int

const (
	finalAllowed finalRule = iota // Remove, Lstat: act on the link itself
	finalFollow                   // Open, ReadDir, Stat, SyncDir: refused unless follow-listed
	finalCreate                   // Create, Mkdir: refused unless follow-listed (then it exists)
	finalNever                    // Rename: refused even when follow-listed
)

// check is the check half of check-then-act: it Lstats each directory
// between root and name, then name itself, refusing a symbolic link where
// rule and the follow list do not allow one. It returns the cleaned path
// to act on. A component that does not exist (or sits below a
// non-directory) ends the walk: the operation itself then reports it as
// inner would.
func (b *beneath) check(op, name string, rule finalRule) (string, error) {
	t, err := b.target(op, name)
	if err != nil {
		return "", err
	}
	n := len(t.comps)
	if n == 0 {
		return t.path, nil // root, which may be a link, is the caller's choice
	}
	for k := 1; k < n; k++ {
		dir := t.at(k)
		fi, err := b.inner.Lstat(dir)
		if err != nil {
			if gone(err) {
				return t.path, nil
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if k == 1 && b.follow[t.comps[0]] {
				continue
			}
			return "", &SymlinkError{Op: op, Name: name, Path: dir}
		}
		if !fi.IsDir() {
			return t.path, nil
		}
	}
	if rule == finalAllowed {
		return t.path, nil
	}
	fi, err := b.inner.Lstat(t.path)
	if err != nil {
		if gone(err) {
			return t.path, nil
		}
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink != 0 && (rule == finalNever || !b.top(t)) {
		return "", &SymlinkError{Op: op, Name: name, Path: t.final()}
	}
	return t.path, nil
}

// gone reports whether err says a path does not resolve to anything: the
// operation that follows the check will report the same.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func (b *beneath) Create(name string) (File, error) {
	p, err := b.check("create", name, finalCreate)
	if err != nil {
		return nil, err
	}
	return b.inner.Create(p)
}

func (b *beneath) Open(name string) (File, error) {
	p, err := b.check("open", name, finalFollow)
	if err != nil {
		return nil, err
	}
	return b.inner.Open(p)
}

func (b *beneath) Remove(name string) error {
	p, err := b.check("remove", name, finalAllowed)
	if err != nil {
		return err
	}
	return b.inner.Remove(p)
}

func (b *beneath) Rename(oldname, newname string) error {
	po, pn, err := b.checkRename(oldname, newname)
	if err != nil {
		return err
	}
	return b.inner.Rename(po, pn)
}

func (b *beneath) RenameNoReplace(oldname, newname string) error {
	po, pn, err := b.checkRename(oldname, newname)
	if err != nil {
		return err
	}
	return b.inner.RenameNoReplace(po, pn)
}

// checkRename checks both names of a rename: neither may be a link.
func (b *beneath) checkRename(oldname, newname string) (string, string, error) {
	po, err := b.check("rename", oldname, finalNever)
	if err != nil {
		return "", "", err
	}
	pn, err := b.check("rename", newname, finalNever)
	if err != nil {
		return "", "", err
	}
	return po, pn, nil
}

func (b *beneath) Mkdir(name string) error {
	p, err := b.check("mkdir", name, finalCreate)
	if err != nil {
		return err
	}
	return b.inner.Mkdir(p)
}

func (b *beneath) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := b.check("readdir", name, finalFollow)
	if err != nil {
		return nil, err
	}
	return b.inner.ReadDir(p)
}

func (b *beneath) Stat(name string) (fs.FileInfo, error) {
	p, err := b.check("stat", name, finalFollow)
	if err != nil {
		return nil, err
	}
	return b.inner.Stat(p)
}

func (b *beneath) Lstat(name string) (fs.FileInfo, error) {
	p, err := b.check("lstat", name, finalAllowed)
	if err != nil {
		return nil, err
	}
	return b.inner.Lstat(p)
}

func (b *beneath) SyncDir(name string) error {
	p, err := b.check("syncdir", name, finalFollow)
	if err != nil {
		return err
	}
	return b.inner.SyncDir(p)
}
