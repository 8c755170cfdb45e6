package merge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// apply carries out what analyze decided: preserve losing copies, roll
// commits forward, remove garbage, write the outputs. Every step is
// idempotent, so a merge killed half way is simply run again.
func (s *state) apply(ctx context.Context, opts Options) error {
	// Directories whose entries change are fsynced once each, after all
	// the moves, not once per file: thousands of conflicting files would
	// otherwise cost thousands of fsyncs of the same few directories.
	dirty := map[string]bool{}
	for _, f := range s.files {
		if f.displace == "" {
			continue
		}
		if err := move(s.out, f.rec.Path, f.displace, dirty); err != nil {
			return err
		}
	}
	for _, a := range s.aside {
		if err := move(s.out, a.from, a.to, dirty); err != nil {
			return err
		}
	}
	if err := syncDirs(dirty); err != nil {
		return err
	}
	for _, f := range s.files {
		if !f.fromTemp {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := rank.PublishFiles(s.out, []manifest.FileRecord{f.rec}); err != nil {
			return fmt.Errorf("rolling forward scenario %d: %w", f.scenario, err)
		}
	}
	for _, g := range s.garbage {
		if err := os.Remove(filepath.Join(s.out, g)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing temp file: %w", err)
		}
		s.report.TempRemoved++
	}
	if opts.GC {
		for _, u := range s.report.Unclaimed {
			if err := os.Remove(filepath.Join(s.out, u)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("--gc: %w", err)
			}
			s.report.GCRemoved++
		}
	}
	if len(s.garbage) > 0 {
		if err := shard.SyncDir(filepath.Join(s.out, rank.TempDir)); err != nil {
			return err
		}
	}
	return s.writeOutputs()
}

// move renames a file within the output directory, creating the target's
// directories and never replacing an existing file. The two directories
// are added to dirty for the caller to fsync.
func move(out, from, to string, dirty map[string]bool) error {
	dst := filepath.Join(out, to)
	if err := shard.MkdirAllSync(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := shard.Publish(filepath.Join(out, from), dst); err != nil {
		return fmt.Errorf("preserving %s: %w", from, err)
	}
	dirty[filepath.Dir(dst)] = true
	dirty[filepath.Dir(filepath.Join(out, from))] = true
	return nil
}

func syncDirs(dirty map[string]bool) error {
	dirs := make([]string, 0, len(dirty))
	for d := range dirty {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := shard.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}
