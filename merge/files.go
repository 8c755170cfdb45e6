package merge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// rootFiles are the merge's own outputs directly under simulation/; every
// other file under simulation/ is a data file.
var rootFiles = map[string]bool{
	layout.ManifestName: true, layout.IndexName: true, layout.MetadataName: true, layout.SummaryName: true, layout.SuccessName: true,
}

// walkData lists every data file under simulation/ with its size: one
// directory walk serves both the size verification and the search for
// unclaimed files.
func walkData(fsys vfs.FS, out string) (map[string]int64, error) {
	sizes := map[string]int64{}
	// "simulation/." so that a simulation/ that is a symbolic link to
	// another disk (documented, common on clusters) is walked; nothing
	// below it is followed.
	root := layout.Join(out, layout.SimDir) + string(filepath.Separator) + "."
	err := vfs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		if path.Dir(rel) == layout.SimDir && rootFiles[path.Base(rel)] {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sizes[rel] = info.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	return sizes, nil
}

// hashJob is one file whose XXH64 must be computed.
type hashJob struct {
	rel  string
	want manifest.FileRecord
	got  vfs.Written
	err  error
}

// progressLine returns a progress callback that rewrites one line on w,
// or nil (no progress) when w is nil.
func progressLine(w io.Writer) func(done, total int, bytes int64) {
	if w == nil {
		return nil
	}
	start := time.Now()
	return func(done, total int, n int64) {
		fmt.Fprintf(w, "\rverifying %d/%d files, %s, %.0f MB/s   ", done, total, humanBytes(n), float64(n)/1e6/max(time.Since(start).Seconds(), 1e-3))
		if done == total {
			fmt.Fprintln(w)
		}
	}
}

// hashAll computes the XXH64 of every job on workers, reporting progress.
func hashAll(ctx context.Context, fsys vfs.FS, out string, jobs []*hashJob, workers int, progress func(done, total int, bytes int64)) error {
	if len(jobs) == 0 {
		return ctx.Err()
	}
	var done, bytes atomic.Int64
	stop := make(chan struct{})
	// The progress goroutine is joined before returning: left running, its
	// final report raced with the caller's next use of the writer (and
	// could print after the merge's own report, or be lost at exit).
	var reporter sync.WaitGroup
	if progress != nil {
		reporter.Add(1)
		go func() {
			defer reporter.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					progress(int(done.Load()), len(jobs), bytes.Load())
					return
				case <-t.C:
					progress(int(done.Load()), len(jobs), bytes.Load())
				}
			}
		}()
	}
	forEach(ctx, len(jobs), workers, func(i int) {
		j := jobs[i]
		j.got, j.err = vfs.HashFile(fsys, layout.Join(out, j.rel))
		bytes.Add(j.got.Bytes)
		done.Add(1)
	})
	close(stop)
	reporter.Wait()
	return ctx.Err()
}

func matches(info vfs.Written, rec manifest.FileRecord) bool {
	return info.Bytes == rec.Bytes && manifest.FormatXXH64(info.XXH64) == rec.XXH64
}

// checkFiles decides, for every file of every chosen commit, whether it is
// in place and intact, must be rolled forward from its temp file, or is
// lost or damaged.
func (s *state) checkFiles(ctx context.Context) error {
	onDisk, err := walkData(s.fsys, s.out)
	if err != nil {
		return err
	}
	s.onDisk = onDisk
	claimed := map[string]bool{}
	var jobs []*hashJob
	type pending struct {
		fs   *fileState
		temp *hashJob // the temp copy, always verified before it is published
		fin  *hashJob // the final copy, when it must be told apart from a loser's
	}
	var checks []pending
	for _, sc := range sortedKeys(s.chosen) {
		c := s.chosen[sc]
		if c.j.live {
			// The writer publishes its own commits; its files are in flux.
			for _, f := range c.files {
				claimed[f.Path] = true
			}
			continue
		}
		for _, f := range c.files {
			fst := &fileState{rec: f, scenario: sc}
			s.files = append(s.files, fst)
			claimed[f.Path] = true
			size, exists := onDisk[f.Path]
			p := pending{fs: fst}
			switch {
			case exists && s.conflicted[conflictKey{sc, f.Entity}]:
				// Whose bytes are in place: the winner's, or a loser's?
				p.fin = &hashJob{rel: f.Path, want: f}
				jobs = append(jobs, p.fin)
				if _, err := s.fsys.Lstat(layout.Join(s.out, f.Temp)); err == nil {
					p.temp = &hashJob{rel: f.Temp, want: f}
					jobs = append(jobs, p.temp)
				}
			case exists:
				if size != f.Bytes {
					s.problem(ProblemSize, f.Path, intp(sc), "%d bytes, the commit in %s says %d (truncated or altered after commit)", size, c.j.rel, f.Bytes)
					continue
				}
				if s.opts.Verify == VerifyFull {
					p.fin = &hashJob{rel: f.Path, want: f}
					jobs = append(jobs, p.fin)
				}
			default:
				if _, err := s.fsys.Lstat(layout.Join(s.out, f.Temp)); err != nil {
					s.problem(ProblemLost, f.Path, intp(sc), "missing, and its temp file %s is gone too (committed in %s)", f.Temp, c.j.rel)
					continue
				}
				fst.fromTemp = true
				p.temp = &hashJob{rel: f.Temp, want: f}
				jobs = append(jobs, p.temp)
			}
			checks = append(checks, p)
		}
	}
	if err := hashAll(ctx, s.fsys, s.out, jobs, s.opts.Workers, progressLine(s.opts.Progress)); err != nil {
		return err
	}
	for _, p := range checks {
		f, sc := p.fs.rec, p.fs.scenario
		switch {
		case p.fin != nil && p.fin.err != nil:
			return fmt.Errorf("verifying %s: %w", f.Path, p.fin.err)
		case p.temp != nil && p.temp.err != nil:
			return fmt.Errorf("verifying %s: %w", f.Temp, p.temp.err)
		}
		finOK := p.fin == nil || matches(p.fin.got, f)
		tempOK := p.temp != nil && matches(p.temp.got, f)
		switch {
		case p.fs.fromTemp && !tempOK:
			s.problem(ProblemChecksum, f.Temp, intp(sc), "temp file of an interrupted commit does not match its commit (%d bytes xxh64 %016x, want %d bytes %s)", p.temp.got.Bytes, p.temp.got.XXH64, f.Bytes, f.XXH64)
		case p.fs.fromTemp:
		case finOK:
		case p.temp != nil && tempOK && s.loserOf(sc, f.Entity, p.fin.got) != "":
			// A losing commit's bytes are in place; the winner's wait in
			// tmp. Move the loser aside, then publish the winner.
			p.fs.fromTemp = true
			p.fs.displace = layout.Superseded(s.loserOf(sc, f.Entity, p.fin.got), f.Path)
		default:
			s.problem(ProblemChecksum, f.Path, intp(sc), "xxh64 %016x (%d bytes), the commit says %s (%d bytes): altered after commit", p.fin.got.XXH64, p.fin.got.Bytes, f.XXH64, f.Bytes)
		}
	}
	// Files of losing commits: a loser's copy in place is moved aside by
	// the winner (above); a loser's temp copy is preserved too.
	for _, sc := range sortedKeys(s.byScenario) {
		win := s.chosen[sc]
		for _, c := range s.byScenario[sc] {
			if c == win || win == nil || sameFiles(c.files, win.files) {
				continue
			}
			for _, f := range c.files {
				if _, err := s.fsys.Lstat(layout.Join(s.out, f.Temp)); err == nil {
					s.aside = append(s.aside, moveAside{from: f.Temp, to: layout.Superseded(c.writer(), f.Path)})
				}
			}
		}
	}
	for _, p := range sortedKeys(onDisk) {
		if !claimed[p] {
			s.report.Unclaimed = append(s.report.Unclaimed, p)
		}
	}
	return nil
}

// loserOf returns the writer of the losing commit whose copy of the
// scenario's entity file info matches, or "".
func (s *state) loserOf(sc int, entity string, info vfs.Written) string {
	for _, c := range s.byScenario[sc] {
		for _, f := range c.files {
			if f.Entity == entity && matches(info, f) && c != s.chosen[sc] {
				return c.writer()
			}
		}
	}
	return ""
}

// scanTemps lists temp files that are not needed: writes that never
// committed, and identical copies of files already in place.
func (s *state) scanTemps() error {
	keep := map[string]bool{}
	for _, f := range s.files {
		if f.fromTemp {
			keep[f.rec.Temp] = true
		}
	}
	for _, a := range s.aside {
		keep[a.from] = true
	}
	entries, err := s.fsys.ReadDir(layout.Join(s.out, layout.TempDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing temp files: %w", err)
	}
	for _, e := range entries {
		rel := path.Join(layout.TempDir, e.Name())
		if !keep[rel] && !e.IsDir() && layout.IsTempName(e.Name()) && !s.liveWriter(e.Name()) {
			s.garbage = append(s.garbage, rel)
		}
	}
	return nil
}

// forEach calls fn(i) for i in 0..n-1 on up to workers goroutines (at
// least one), each taking the next index until none is left or ctx ends,
// and returns when all have stopped.
func forEach(ctx context.Context, n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
