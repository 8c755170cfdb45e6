package merge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
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

// tree is what a walk of one top-level directory of OUT found.
type tree struct {
	// files maps each regular file (relative to OUT, slash-separated) to
	// its size.
	files map[string]int64
	// odd lists, sorted, what the layout never has there: a symbolic link
	// (a partition directory or data file replaced by a link would make a
	// publish write into the link's target) or a special file.
	odd []oddEntry
}

// oddEntry is a symbolic link or special file found by a walk.
type oddEntry struct {
	rel  string
	mode fs.FileMode
}

// linkProblem is the detail of a ProblemLayout about a symbolic link.
const linkProblem = "a symbolic link where the layout has a directory or file: the merge never writes, renames or removes through a link inside OUT (only OUT itself and its simulation/, training/ and policy/ directories may be links); replace it with what it points to, or remove it"

// linkIn returns the *vfs.SymlinkError among args (errors, possibly
// wrapped), or nil.
func linkIn(args []any) *vfs.SymlinkError {
	for _, a := range args {
		var link *vfs.SymlinkError
		if err, ok := a.(error); ok && errors.As(err, &link) {
			return link
		}
	}
	return nil
}

// addLinkProblem adds the ProblemLayout of a symbolic link at rel, unless
// ps has it already.
func addLinkProblem(ps []Problem, rel string) []Problem {
	for _, p := range ps {
		if p.Kind == ProblemLayout && p.Path == rel {
			return ps
		}
	}
	return append(ps, Problem{Kind: ProblemLayout, Path: rel, Detail: linkProblem})
}

// problem describes e for the report.
func (e oddEntry) problem() string {
	if e.mode&fs.ModeSymlink != 0 {
		return linkProblem
	}
	return fmt.Sprintf("a special file (%s) where the layout has a directory or file: remove it", e.mode.Type())
}

// walkTree lists every file under OUT/top without following links (top
// itself may be a link: layout.LinkDirs). A missing top is an empty tree.
func walkTree(fsys vfs.FS, out, top string) (*tree, error) {
	t := &tree{files: map[string]int64{}}
	// top itself is read with ReadDir, which follows it when it is a
	// symbolic link to another disk (documented, common on clusters);
	// nothing below it is followed.
	dir := layout.Join(out, top)
	entries, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	visit := func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			t.odd = append(t.odd, oddEntry{rel, d.Type()})
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		t.files[rel] = info.Size()
		return nil
	}
	for _, e := range entries {
		if err := vfs.WalkDir(fsys, filepath.Join(dir, e.Name()), visit); err != nil {
			return nil, fmt.Errorf("listing %s: %w", dir, err)
		}
	}
	return t, nil
}

// walkData lists every data file under simulation/ with its size (the
// merge's own outputs there are not data files): one directory walk
// serves the size verification and the search for unclaimed files.
func walkData(fsys vfs.FS, out string) (*tree, error) {
	t, err := walkTree(fsys, out, layout.SimDir)
	if err != nil {
		return nil, err
	}
	for rel := range t.files {
		if path.Dir(rel) == layout.SimDir && rootFiles[path.Base(rel)] {
			delete(t.files, rel)
		}
	}
	return t, nil
}

// walkTrainingStrays lists the .parquet files under training/ that the
// merge does not write (a table glob over training/ would read them), and
// what is odd there.
func walkTrainingStrays(fsys vfs.FS, out string) (strays []string, odd []oddEntry, err error) {
	t, err := walkTree(fsys, out, layout.TrainingDir)
	if err != nil {
		return nil, nil, err
	}
	for _, rel := range sortedKeys(t.files) {
		if strings.HasSuffix(rel, ".parquet") && !layout.IsTrainingOutput(rel) {
			strays = append(strays, rel)
		}
	}
	return strays, t.odd, nil
}

// relOf returns p (a path under OUT) relative to OUT, slash-separated;
// p itself when it is not under OUT.
func (s *state) relOf(p string) string {
	rel, err := filepath.Rel(s.out, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.ToSlash(rel)
}

// confine makes opts.FS refuse any path outside out and any symbolic link
// inside it but OUT's own and those of layout.LinkDirs: whatever a journal
// or a directory listing says, the merge never acts outside OUT or
// through a link planted in it (a link met is a ProblemLayout).
func confine(opts *Options, out string) error {
	fsys, err := vfs.Beneath(opts.FS, out, layout.LinkDirs[:]...)
	if err != nil {
		return err
	}
	opts.FS = fsys
	return nil
}

// underAny reports whether rel or one of its parent directories is in set.
func underAny(rel string, set map[string]bool) bool {
	for ; rel != "." && rel != "/"; rel = path.Dir(rel) {
		if set[rel] {
			return true
		}
	}
	return false
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
	data, err := walkData(s.fsys, s.out)
	if err != nil {
		return err
	}
	onDisk := data.files
	s.onDisk = onDisk
	strays, odd, err := walkTrainingStrays(s.fsys, s.out)
	if err != nil {
		return err
	}
	behindLink := map[string]bool{}
	for _, e := range append(data.odd, odd...) {
		if e.mode&fs.ModeSymlink != 0 {
			s.report.Problems = addLinkProblem(s.report.Problems, e.rel)
		} else {
			s.problem(ProblemLayout, e.rel, nil, "%s", e.problem())
		}
		behindLink[e.rel] = true
	}
	// A study compacted with --replace: its partition files may be gone,
	// their rows in compacted/ (checked here instead).
	cover, err := readCompactCover(s.fsys, s.out)
	var damage *CompactDamageError
	switch {
	case errors.As(err, &damage):
		s.problem(ProblemIndex, damage.Path, nil, "%s", damage.Detail)
		return nil
	case err != nil:
		return err
	case cover != nil:
		problems, err := checkCompacted(ctx, s.fsys, s.out, cover.manifest, s.opts.Verify == VerifyFull)
		if err != nil {
			return err
		}
		s.report.Problems = append(s.report.Problems, problems...)
		s.replaced = map[string]bool{}
	}
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
			case cover.covers(f):
				// Removed by compact --replace once its rows were
				// verified in compacted/ (checked above).
				s.replaced[f.Path] = true
				continue
			case underAny(f.Path, behindLink):
				// Behind a link the merge does not follow: the layout
				// problem names it; "lost" would mislead.
				continue
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
	s.report.Unclaimed = append(s.report.Unclaimed, strays...)
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
