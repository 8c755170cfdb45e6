package merge

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// quarantine moves every data file under simulation/ that no commit
// claims, and every .parquet under training/ that the merge does not
// write (a stray copy, a file left by another tool), out of the dataset
// to _shards/unclaimed/<path>: after a merge, every .parquet a table glob
// reads is one the merge vouches for, and nothing is deleted. Directories
// the moves leave empty are removed, up to simulation/ or training/.
func (s *state) quarantine() error {
	if len(s.report.Unclaimed) == 0 {
		return nil
	}
	dirty := map[string]bool{}
	for _, u := range s.report.Unclaimed {
		to := layout.Unclaimed(u)
		for n := 1; ; n++ {
			_, err := s.fsys.Lstat(layout.Join(s.out, to))
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return err
			}
			if n > 1000 {
				return fmt.Errorf("quarantining %s: %s and 1000 numbered copies exist", u, layout.Unclaimed(u))
			}
			to = fmt.Sprintf("%s.%d", layout.Unclaimed(u), n)
		}
		if err := s.move(u, to, dirty); err != nil {
			return fmt.Errorf("quarantining %s: %w", u, err)
		}
		top, _, _ := strings.Cut(u, "/") // simulation/ or training/: kept
		for dir := path.Dir(u); dir != top && layout.Under(dir, top); dir = path.Dir(dir) {
			if s.fsys.Remove(layout.Join(s.out, dir)) != nil {
				break // not empty (or gone): its parents are not either
			}
			delete(dirty, layout.Join(s.out, dir))
			dirty[layout.Join(s.out, path.Dir(dir))] = true
		}
	}
	return s.syncDirs(dirty)
}

// removeQuarantined deletes everything under _shards/unclaimed/ (--gc).
func (s *state) removeQuarantined() error {
	root := layout.Join(s.out, layout.UnclaimedDir)
	var files, dirs []string
	err := vfs.WalkDir(s.fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := s.fsys.Remove(f); err != nil {
			return err
		}
		s.report.GCRemoved++
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // children before parents
	for _, d := range dirs {
		if err := s.fsys.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(dirs) > 0 {
		return s.dirs.SyncDir(filepath.Dir(root))
	}
	return nil
}
