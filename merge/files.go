package merge

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"slices"
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

// walkFiles visits every file under OUT/top without following links (top
// itself may be a link: layout.LinkDirs), listing the directories on up to
// workers goroutines: at a million partitions the walk is a million
// directory listings, system calls that one goroutine makes one after the
// other. fn is called, concurrently, for every regular file with its path
// relative to OUT (slash-separated; the bytes are fn's only during the
// call) and its entry, whose Info is an lstat: fn asks for it only when it
// needs the size. What the layout never has there, a symbolic link (a
// partition directory or data file replaced by a link would make a
// publish write into the link's target) or a special file, is returned in
// the walk's order (by path, component by component). A missing top is
// an empty tree. An error (of a listing, or of fn) ends the walk; of
// several, the one of the first path is returned, so that the outcome
// does not depend on the goroutines' timing.
func walkFiles(ctx context.Context, fsys vfs.FS, out, top string, workers int, fn func(rel []byte, d fs.DirEntry) error) ([]oddEntry, error) {
	// top itself is read with ReadDir, which follows it when it is a
	// symbolic link to another disk (documented, common on clusters);
	// nothing below it is followed: a link's entry is never listed.
	root := layout.Join(out, top)
	entries, err := fsys.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	w := &walker{ctx: ctx, fsys: fsys, out: out, fn: fn}
	w.wake = sync.NewCond(&w.mu)
	w.push(walkTask{top, entries})
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(w.work)
	}
	wg.Wait()
	if w.err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, w.err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(w.odd, func(a, b oddEntry) int { return cmpPath(a.rel, b.rel) })
	return w.odd, nil
}

// walkChunk is the most entries of one directory a walk task holds:
// a directory with more (an entity's partitions) is shared out among the
// goroutines in tasks of this many.
const walkChunk = 256

// walkTask is entries of the directory dir (relative to OUT) to visit.
type walkTask struct {
	dir  string
	ents []fs.DirEntry
}

// walker is the state of one walkFiles.
type walker struct {
	ctx  context.Context
	fsys vfs.FS
	out  string
	fn   func(rel []byte, d fs.DirEntry) error

	mu     sync.Mutex
	wake   *sync.Cond
	tasks  []walkTask // a stack: the newest listing first, so that few are held at once
	active int        // goroutines visiting a task
	odd    []oddEntry
	err    error // of the first path that failed
	errRel string
	failed atomic.Bool
}

// push adds the entries of a listing as tasks of at most walkChunk,
// the first entries on top.
func (w *walker) push(t walkTask) {
	w.mu.Lock()
	for end := len(t.ents); end > 0; end -= walkChunk {
		w.tasks = append(w.tasks, walkTask{t.dir, t.ents[max(0, end-walkChunk):end]})
	}
	w.mu.Unlock()
	w.wake.Broadcast()
}

func (w *walker) fail(rel string, err error) {
	w.mu.Lock()
	if w.err == nil || cmpPath(rel, w.errRel) < 0 {
		w.err, w.errRel = err, rel
	}
	w.mu.Unlock()
	w.failed.Store(true)
}

func (w *walker) stopped() bool { return w.failed.Load() || w.ctx.Err() != nil }

// work takes tasks until none is left and no goroutine is visiting one
// (which could add more).
func (w *walker) work() {
	var buf []byte
	w.mu.Lock()
	for {
		for len(w.tasks) == 0 && w.active > 0 {
			w.wake.Wait()
		}
		if len(w.tasks) == 0 || w.stopped() {
			w.mu.Unlock()
			w.wake.Broadcast()
			return
		}
		t := w.tasks[len(w.tasks)-1]
		w.tasks[len(w.tasks)-1] = walkTask{}
		w.tasks = w.tasks[:len(w.tasks)-1]
		w.active++
		w.mu.Unlock()
		buf = w.visit(t, buf)
		w.mu.Lock()
		w.active--
		if w.active == 0 && len(w.tasks) == 0 {
			w.wake.Broadcast()
		}
	}
}

// visit visits t's entries: files by fn, directories listed and visited
// in turn, here when small (a partition directory), shared out as tasks
// when large. buf is scratch space, returned for reuse.
func (w *walker) visit(t walkTask, buf []byte) []byte {
	for i, e := range t.ents {
		if w.stopped() {
			return buf
		}
		buf = append(append(append(buf[:0], t.dir...), '/'), e.Name()...)
		switch typ := e.Type(); {
		case typ.IsDir():
			rel := string(buf)
			ents, err := w.fsys.ReadDir(layout.Join(w.out, rel))
			if err != nil {
				w.fail(rel, err)
				return buf
			}
			if len(ents) <= walkChunk {
				buf = w.visit(walkTask{rel, ents}, buf)
				continue
			}
			// A large directory: the rest of this one waits below its
			// tasks, so that the goroutines share its entries before
			// another large directory is listed.
			if rest := t.ents[i+1:]; len(rest) > 0 {
				w.push(walkTask{t.dir, rest})
			}
			w.push(walkTask{rel, ents})
			return buf
		case !typ.IsRegular():
			w.mu.Lock()
			w.odd = append(w.odd, oddEntry{string(buf), typ})
			w.mu.Unlock()
		default:
			if err := w.fn(buf, e); err != nil {
				w.fail(string(buf), err)
				return buf
			}
		}
	}
	return buf
}

// cmpPath orders slash-separated paths as a walk visits them: component
// by component, a directory's files before the names that sort after the
// directory's own ("a/b" before "a.x").
func cmpPath(a, b string) int {
	for i := range min(len(a), len(b)) {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		return cmp.Compare(ca, cb)
	}
	return cmp.Compare(len(a), len(b))
}

// tree is what a walk of one top-level directory of OUT found.
type tree struct {
	// files maps each regular file (relative to OUT, slash-separated) to
	// its size.
	files map[string]int64
	// odd lists, in the walk's order, what the layout never has there: a
	// symbolic link (a partition directory or data file replaced by a link
	// would make a publish write into the link's target) or a special
	// file.
	odd []oddEntry
}

// walkTree lists every file under OUT/top with its size (walkFiles, on
// GOMAXPROCS goroutines).
func walkTree(fsys vfs.FS, out, top string) (*tree, error) {
	t := &tree{files: map[string]int64{}}
	var mu sync.Mutex
	odd, err := walkFiles(context.Background(), fsys, out, top, runtime.GOMAXPROCS(0), func(rel []byte, d fs.DirEntry) error {
		info, err := d.Info()
		if err != nil {
			return err
		}
		mu.Lock()
		t.files[string(rel)] = info.Size()
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.odd = odd
	return t, nil
}

// walkData lists every data file under simulation/ with its size (the
// merge's own outputs there are not data files).
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
	return trainingStrays(context.Background(), fsys, out, runtime.GOMAXPROCS(0))
}

// trainingStrays is walkTrainingStrays on workers goroutines.
func trainingStrays(ctx context.Context, fsys vfs.FS, out string, workers int) (strays []string, odd []oddEntry, err error) {
	var mu sync.Mutex
	odd, err = walkFiles(ctx, fsys, out, layout.TrainingDir, workers, func(rel []byte, _ fs.DirEntry) error {
		if bytes.HasSuffix(rel, []byte(".parquet")) && !layout.IsTrainingOutput(string(rel)) {
			mu.Lock()
			strays = append(strays, string(rel))
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(strays)
	return strays, odd, nil
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

// diskEntry is what the walk found at the path of a committed file.
type diskEntry struct {
	size  int64
	found bool
	live  bool // claimed by a live writer's commit: not checked
}

// checkFiles decides, for every file of every chosen commit, whether it is
// in place and intact, must be rolled forward from its temp file, or is
// lost or damaged. One walk of simulation/ finds the committed files (and
// their sizes: an lstat each, by the walk) and every other data file
// (unclaimed: no stat).
func (s *state) checkFiles(ctx context.Context) error {
	scenarios := sortedKeys(s.chosen)
	// Every path a chosen commit claims, before the walk: the walk looks
	// each file it meets up here, instead of keeping a map of everything
	// on disk.
	n := 0
	for _, sc := range scenarios {
		n += len(s.chosen[sc].files)
	}
	entries := make([]diskEntry, n)
	claimed := make(map[string]*diskEntry, n)
	n = 0
	for _, sc := range scenarios {
		c := s.chosen[sc]
		for i := range c.files {
			if _, dup := claimed[c.files[i].Path]; dup {
				continue
			}
			e := &entries[n]
			n++
			e.live = c.j.live
			claimed[c.files[i].Path] = e
		}
	}
	var (
		mu        sync.Mutex
		unclaimed []string
	)
	simPrefix := layout.SimDir + "/"
	// The walk's goroutines mostly wait in system calls (for the disk, on
	// a cold cache): more of them than cores keep requests in flight.
	odd, err := walkFiles(ctx, s.fsys, s.out, layout.SimDir, 4*s.opts.Workers, func(rel []byte, d fs.DirEntry) error {
		e, ok := claimed[string(rel)]
		switch {
		case ok && e.live:
			// The writer publishes its own commits; its files are in flux.
		case ok:
			info, err := d.Info()
			if err != nil {
				return err
			}
			e.size, e.found = info.Size(), true
		case bytes.IndexByte(rel[len(simPrefix):], '/') < 0 && rootFiles[string(rel[len(simPrefix):])]:
			// The merge's own outputs are not data files.
		default:
			mu.Lock()
			unclaimed = append(unclaimed, string(rel))
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	strays, todd, err := trainingStrays(ctx, s.fsys, s.out, 4*s.opts.Workers)
	if err != nil {
		return err
	}
	behindLink := map[string]bool{}
	for _, e := range append(odd, todd...) {
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
	var jobs []*hashJob
	type pending struct {
		fs   *fileState
		temp *hashJob // the temp copy, always verified before it is published
		fin  *hashJob // the final copy, when it must be told apart from a loser's
	}
	var checks []pending
	states := make([]fileState, 0, n)
	s.files = make([]*fileState, 0, n)
	for _, sc := range scenarios {
		c := s.chosen[sc]
		if c.j.live {
			continue // the writer publishes its own commits
		}
		for i := range c.files {
			f := &c.files[i]
			states = append(states, fileState{rec: f, scenario: sc})
			fst := &states[len(states)-1]
			s.files = append(s.files, fst)
			d := claimed[f.Path]
			size, exists := d.size, d.found
			p := pending{fs: fst}
			switch {
			case exists && s.conflicted[conflictKey{sc, f.Entity}]:
				// Whose bytes are in place: the winner's, or a loser's?
				p.fin = &hashJob{rel: f.Path, want: *f}
				jobs = append(jobs, p.fin)
				if _, err := s.fsys.Lstat(layout.Join(s.out, f.Temp)); err == nil {
					p.temp = &hashJob{rel: f.Temp, want: *f}
					jobs = append(jobs, p.temp)
				}
			case exists:
				if size != f.Bytes {
					s.problem(ProblemSize, f.Path, intp(sc), "%d bytes, the commit in %s says %d (truncated or altered after commit)", size, c.j.rel, f.Bytes)
					continue
				}
				if s.opts.Verify == VerifyFull {
					p.fin = &hashJob{rel: f.Path, want: *f}
					jobs = append(jobs, p.fin)
				}
			case cover.covers(*f):
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
				p.temp = &hashJob{rel: f.Temp, want: *f}
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
		finOK := p.fin == nil || matches(p.fin.got, *f)
		tempOK := p.temp != nil && matches(p.temp.got, *f)
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
	slices.Sort(unclaimed)
	s.report.Unclaimed = append(s.report.Unclaimed, unclaimed...)
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
