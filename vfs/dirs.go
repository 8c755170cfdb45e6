package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
)

// Dirs keeps the directories under one root durable: it creates them,
// syncs the parent of each, and syncs the directory of every entry it
// publishes, replaces or removes. It remembers which directories it has
// already made durable, so each costs its parent's fsync once per Dirs
// (once per process, when a process uses one Dirs per output root). A Dirs
// is safe for concurrent use.
type Dirs struct {
	fsys FS
	root string

	mu   sync.Mutex
	seen map[string]bool // directories (cleaned paths) known durable
}

// NewDirs returns a Dirs for the tree at root on fsys. Nothing is touched
// until the first call.
func NewDirs(fsys FS, root string) *Dirs {
	return &Dirs{fsys: fsys, root: filepath.Clean(root), seen: map[string]bool{}}
}

// FS returns the file system d works on.
func (d *Dirs) FS() FS { return d.fsys }

func (d *Dirs) known(dir string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[dir]
}

func (d *Dirs) remember(dir string) {
	d.mu.Lock()
	d.seen[dir] = true
	d.mu.Unlock()
}

// forget drops dir and everything under it, after dir was removed: a
// later Ensure must create it again. Ensure remembers every component from
// root down, so nothing under dir is remembered unless dir is.
func (d *Dirs) forget(dir string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.seen[dir] {
		return
	}
	prefix := dir + string(filepath.Separator)
	for k := range d.seen {
		if k == dir || strings.HasPrefix(k, prefix) {
			delete(d.seen, k)
		}
	}
}

// Ensure makes dir, which must be root or below it, and the entries of
// every directory between root and dir durable.
//
// A component that already exists still has its parent synced (once per
// Dirs): finding a directory does not prove its entry is on disk, because
// an earlier process may have created it and died before syncing the
// parent, and a power cut would then take it, and every file published
// into it since, away. A missing component is created (a concurrent
// creator's fs.ErrExist is fine) and its parent synced. The I/O runs
// outside d's lock, so concurrent Ensures of different directories do not
// wait for each other; racing Ensures of one directory both sync, which is
// harmless.
//
// If root itself is missing it is created with any missing ancestors, each
// created one's parent synced; the entry of a root that exists belongs to
// whoever made it.
func (d *Dirs) Ensure(dir string) error {
	dir = filepath.Clean(dir)
	if d.known(dir) {
		return nil
	}
	rel, err := filepath.Rel(d.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("vfs: directory %s is not under %s", dir, d.root)
	}
	if !d.known(d.root) {
		if err := d.ensureRoot(); err != nil {
			return err
		}
		d.remember(d.root)
	}
	if rel == "." {
		return nil
	}
	cur := d.root
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, elem)
		if d.known(cur) {
			continue
		}
		if err := d.makeDurable(parent, cur); err != nil {
			return err
		}
		d.remember(cur)
	}
	return nil
}

// makeDurable makes dir exist as a directory and syncs parent so that its
// entry is on disk, whether or not dir existed before.
func (d *Dirs) makeDurable(parent, dir string) error {
	if err := d.mkdirOrDir(dir); err != nil {
		return err
	}
	return d.fsys.SyncDir(parent)
}

// mkdirOrDir makes sure dir is a directory: it creates it when missing and
// checks that what exists is a directory. Stat follows a symbolic link,
// as MkdirAll does, so a partition directory linked elsewhere is accepted.
func (d *Dirs) mkdirOrDir(dir string) error {
	st, err := d.fsys.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		err = d.fsys.Mkdir(dir)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		// A concurrent creator won the race: check what it made.
		st, err = d.fsys.Stat(dir)
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("vfs: %s exists and is not a directory", dir)
	}
	return nil
}

// ensureRoot creates root and its missing ancestors, syncing each created
// one's parent. An existing root is only checked to be a directory.
func (d *Dirs) ensureRoot() error {
	var missing []string // root first, then its missing ancestors upwards
	for p := d.root; ; p = filepath.Dir(p) {
		st, err := d.fsys.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("vfs: %s exists and is not a directory", p)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break // the top of the tree is missing: Mkdir below reports it
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := d.makeDurable(filepath.Dir(missing[i]), missing[i]); err != nil {
			return err
		}
	}
	return nil
}

// Publish moves tmp, a durable file, to final without ever replacing an
// existing file, and makes the move durable: it ensures final's directory,
// renames with FS.RenameNoReplace and syncs final's directory. When final
// exists the error matches fs.ErrExist and nothing has changed.
//
// tmp's directory is not synced: if a crash brings tmp's entry back next
// to final (both names of one file), the temp entry is garbage that the
// merge removes.
func (d *Dirs) Publish(tmp, final string) error {
	dir := filepath.Dir(final)
	if err := d.Ensure(dir); err != nil {
		return fmt.Errorf("publishing %s: %w", final, err)
	}
	if err := d.fsys.RenameNoReplace(tmp, final); err != nil {
		return fmt.Errorf("publishing %s: %w", final, err)
	}
	if err := d.fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("publishing %s: %w", final, err)
	}
	return nil
}

// Replace renames tmp over final, replacing it, and makes the rename
// durable: the last step of "write a temp file, fsync it, rename it over".
// The caller wrote tmp with WriteNewSync (or synced it otherwise): a
// rename of unsynced data can leave final empty after a crash.
func (d *Dirs) Replace(tmp, final string) error {
	dir := filepath.Dir(final)
	if err := d.Ensure(dir); err != nil {
		return fmt.Errorf("replacing %s: %w", final, err)
	}
	if err := d.fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("replacing %s: %w", final, err)
	}
	if err := d.fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("replacing %s: %w", final, err)
	}
	return nil
}

// Remove removes a file or an empty directory and syncs its parent. A
// missing name is not an error, and its parent is still synced: an earlier
// process may have removed it and died before the sync. If the parent is
// missing too there is nothing to sync.
func (d *Dirs) Remove(name string) error {
	name = filepath.Clean(name)
	rerr := d.fsys.Remove(name)
	if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return rerr
	}
	d.forget(name)
	if err := d.fsys.SyncDir(filepath.Dir(name)); err != nil {
		if rerr != nil && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

// SyncDir syncs directory dir, for callers that remove many entries of one
// directory with FS.Remove and sync it once.
func (d *Dirs) SyncDir(dir string) error { return d.fsys.SyncDir(dir) }
