package merge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

// apply carries out what analyze decided: preserve losing copies, roll
// commits forward, remove garbage, write the outputs. Every step is
// idempotent, so a merge killed half way is simply run again.
func (s *state) apply(ctx context.Context, opts Options) error {
	// Everything below acts on what the journals say: make what was read
	// durable first.
	var rels []string
	for _, j := range s.allJournals() {
		rels = append(rels, j.rel)
	}
	if err := journal.MakeDurable(s.fsys, s.out, rels); err != nil {
		return err
	}
	// Directories whose entries change are fsynced once each, after all
	// the moves, not once per file: thousands of conflicting files would
	// otherwise cost thousands of fsyncs of the same few directories.
	dirty := map[string]bool{}
	for _, f := range s.files {
		if f.displace == "" {
			continue
		}
		if err := s.move(f.rec.Path, f.displace, dirty); err != nil {
			return err
		}
	}
	for _, a := range s.aside {
		if err := s.move(a.from, a.to, dirty); err != nil {
			return err
		}
	}
	if err := s.syncDirs(dirty); err != nil {
		return err
	}
	for _, f := range s.files {
		if !f.fromTemp {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := journal.Publish(s.dirs, s.out, []manifest.FileRecord{*f.rec}); err != nil {
			return fmt.Errorf("rolling forward scenario %d: %w", f.scenario, err)
		}
	}
	if err := s.resyncTails(); err != nil {
		return err
	}
	for _, g := range s.garbage {
		if err := s.fsys.Remove(layout.Join(s.out, g)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing temp file: %w", err)
		}
		s.report.TempRemoved++
	}
	if err := s.quarantine(); err != nil {
		return err
	}
	if opts.GC {
		if err := s.removeQuarantined(); err != nil {
			return fmt.Errorf("--gc: %w", err)
		}
	}
	if err := s.writeOutputs(); err != nil {
		return err
	}
	// Roll-forward, garbage removal and the staged outputs all took names
	// out of _shards/tmp: one fsync makes those removals durable, so that
	// a power cut does not bring temp files back for the next merge to
	// find (and remove) again.
	if _, err := s.fsys.Stat(layout.Join(s.out, layout.TempDir)); err == nil {
		return s.dirs.SyncDir(layout.Join(s.out, layout.TempDir))
	}
	return nil
}

// resyncTails makes durable the directory entries of the files of every
// journal whose last record is a commit (see journalState.tail) and that
// this merge vouches for: files it found in place, not rolled forward.
func (s *state) resyncTails() error {
	for _, j := range s.allJournals() {
		tail := j.tail
		if len(s.replaced) > 0 {
			// Resync would recreate the directories --replace removed.
			tail = slices.DeleteFunc(slices.Clone(tail), func(f manifest.FileRecord) bool { return s.replaced[f.Path] })
		}
		if len(tail) == 0 {
			continue
		}
		if err := journal.Resync(s.dirs, s.out, tail); err != nil {
			return fmt.Errorf("syncing the last commit of %s: %w", j.rel, err)
		}
	}
	return nil
}

// move renames a file within the output directory, creating the target's
// directories and never replacing an existing file. The two directories
// are added to dirty for the caller to fsync.
func (s *state) move(from, to string, dirty map[string]bool) error {
	dst := layout.Join(s.out, to)
	if err := s.dirs.Ensure(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := s.fsys.RenameNoReplace(layout.Join(s.out, from), dst); err != nil {
		return fmt.Errorf("preserving %s: %w", from, err)
	}
	dirty[filepath.Dir(dst)] = true
	dirty[filepath.Dir(layout.Join(s.out, from))] = true
	return nil
}

func (s *state) syncDirs(dirty map[string]bool) error {
	dirs := make([]string, 0, len(dirty))
	for d := range dirty {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := s.dirs.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}
