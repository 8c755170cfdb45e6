package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// List returns the journal files under out, as paths relative to out, in
// name order. A missing journal directory is an error matching
// fs.ErrNotExist: the directory is no hydroshard output (yet).
func List(fsys vfs.FS, out string) ([]string, error) {
	entries, err := fsys.ReadDir(layout.Join(out, layout.JournalDir))
	if err != nil {
		return nil, err
	}
	var rels []string
	for _, e := range entries {
		if e.IsDir() || !layout.IsJournalName(e.Name()) {
			continue
		}
		rels = append(rels, path.Join(layout.JournalDir, e.Name()))
	}
	return rels, nil
}

// ConflictError reports a final file whose bytes differ from a commit's.
type ConflictError struct {
	Path       string
	Want, Have string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s exists with xxh64 %s, the commit says %s (not overwritten)", e.Path, e.Have, e.Want)
}

// Publish moves the temp files of one commit to their final paths and
// makes the moves durable. It is idempotent, so the merge uses it to roll
// a commit forward: a final file already in place with the committed
// bytes is fine (its temp copy is removed, and its directory is fsynced
// again: the process that renamed it may have died before its own fsync);
// an existing final file with other bytes is a *ConflictError and is never
// replaced. Publishing is race-free between a rank and a merge: whichever
// renames a file first, the other finds it in place, checks its bytes and
// counts it as published.
func Publish(dirs *vfs.Dirs, out string, files []manifest.FileRecord) error {
	fsys := dirs.FS()
	for _, f := range files {
		final := layout.Join(out, f.Path)
		tmp := layout.Join(out, f.Temp)
		err := dirs.Publish(tmp, final)
		if err == nil {
			continue
		}
		// The final name is taken, or the temp is gone (renamed by
		// another publisher): either way the final file decides.
		if !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		info, herr := vfs.HashFile(fsys, final)
		if errors.Is(herr, fs.ErrNotExist) {
			return err // neither name holds the file
		}
		if herr != nil {
			return herr
		}
		if manifest.FormatXXH64(info.XXH64) != f.XXH64 || info.Bytes != f.Bytes {
			return &ConflictError{Path: f.Path, Want: f.XXH64, Have: manifest.FormatXXH64(info.XXH64)}
		}
		// Same bytes are already in place: the temp copy is redundant,
		// but it is removed only once the final name is durable. Another
		// writer's fsync of the shared _shards/tmp could make the removal
		// durable before the final name otherwise, and a power cut would
		// then leave the file under neither name.
		if err := Resync(dirs, out, []manifest.FileRecord{f}); err != nil {
			return err
		}
		if rerr := fsys.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return rerr
		}
	}
	return nil
}

// Resync makes durable the directory entries of files found already in
// place: each final directory (and its parents) is fsynced. The merge
// calls it for the last commit of a journal that no later record follows,
// whose writer may have died between a rename and its directory fsync.
func Resync(dirs *vfs.Dirs, out string, files []manifest.FileRecord) error {
	seen := map[string]bool{}
	for _, f := range files {
		seen[path.Dir(f.Path)] = true
	}
	ds := make([]string, 0, len(seen))
	for d := range seen {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		dir := layout.Join(out, d)
		if err := dirs.Ensure(dir); err != nil {
			return err
		}
		if err := dirs.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// MakeDurable fsyncs the journal files rels (relative to out) and the
// journal directory. The merge calls it before it acts on what it read: a
// writer that died between an append and its fsync leaves a record the
// merge can read but a power cut could still take, and the merge must
// never vouch for a commit that may vanish.
func MakeDurable(fsys vfs.FS, out string, rels []string) error {
	for _, rel := range rels {
		if err := vfs.SyncFile(fsys, layout.Join(out, rel)); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	return fsys.SyncDir(layout.Join(out, layout.JournalDir))
}
