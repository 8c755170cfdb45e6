package merge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// journalState is what the merge keeps of one journal file.
type journalState struct {
	rel   string // path relative to the output directory
	open  *manifest.OpenInfo
	close *manifest.CloseInfo
	first string // time of the first record
	last  string // time of the last record
	// iterations are a training journal's durable iteration records: a few
	// small rows per iteration, kept whole.
	iterations []iterRec
	// checkpoints are a training journal's policy checkpoint records.
	checkpoints []ckptRec
	// size is the journal file's size when the merge began to read it.
	size int64
	// live: the journal has no close record and its writer's lease is
	// live: its files, temps and commits are its own, in flux.
	live bool
	// tail is the files of the journal's last record when it is a commit
	// or a checkpoint (or those followed only by a "failed" close): the
	// writer may have died, or failed, between a rename and the fsync of
	// the directory, so the merge makes those entries durable itself.
	tail []manifest.FileRecord
}

// commit is one durable commit record.
type commit struct {
	j        *journalState
	scenario int
	time     string
	seq      int64
	files    []manifest.FileRecord
	cost     manifest.CostSummary
}

func (c *commit) writer() string { return c.j.open.Writer }

// later orders commits: commit time, then writer id, then sequence, so
// that "latest attempt wins" is deterministic.
func (c *commit) later(o *commit) bool {
	if d := cmpTime(c.time, o.time); d != 0 {
		return d > 0
	}
	if c.writer() != o.writer() {
		return c.writer() > o.writer()
	}
	return c.seq > o.seq
}

// cmpTime compares two journal record times as instants: -1, 0 or +1.
// Journal times are RFC 3339 with the trailing zeros of the fraction
// trimmed, so their string order is not their time order: "12:00:05Z"
// sorts after "12:00:05.1Z", and ".5Z" after ".51Z". Comparing the strings
// made an earlier commit win a conflict as "the latest" (and skewed the
// run's started_at/completed_at). A time that does not parse falls back
// to string order, which still gives a deterministic answer.
func cmpTime(a, b string) int {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return ta.Compare(tb)
}

// fileState is what the merge found, and will do, for one chosen file.
type fileState struct {
	rec      *manifest.FileRecord // in its commit's files
	scenario int
	fromTemp bool   // publish from its temp file (the rename never happened)
	displace string // a losing commit's bytes sit at the final path: move them here first
}

// moveAside preserves a file of a losing commit under _shards/superseded:
// committed data is never deleted, even when another commit wins.
type moveAside struct{ from, to string }

type state struct {
	// applying is set by Run, whose merge applies what the analysis
	// finds (Analyze only reports it): the analysis may then stage the
	// policy's stage files as it checks them (stageAtAnalysis).
	applying   bool
	out        string
	fsys       vfs.FS
	dirs       *vfs.Dirs // directories made durable by this merge
	opts       Options
	report     *Report
	journals   []*journalState    // simulation journals
	other      []*journalState    // journals of other phases (training): only their case is checked here
	ref        *manifest.OpenInfo // the simulation's open record; nil before any rank simulated
	caseRef    *manifest.OpenInfo // the open record that names the run's case (ref, or a training journal's)
	byScenario map[int][]*commit
	chosen     map[int]*commit
	files      []*fileState
	aside      []moveAside
	garbage    []string // temp files to delete (relative paths)
	// skipped: journals read but not used (damaged, or no durable open
	// record yet).
	skipped map[string]bool
	// live is the writer ids with live leases and no close record.
	live map[string]bool
	// conflicted marks the (scenario, entity) pairs committed with
	// different bytes, so per-file lookups stay O(1) however many there are.
	conflicted map[conflictKey]bool
	// replaced: committed partition files that compact --replace removed
	// (their rows are in compacted/): neither lost nor to be resynced.
	replaced map[string]bool
	training *training   // nil when the run has no training journals
	policy   *policyPlan // nil when no complete checkpoint is to be assembled
}

type conflictKey struct {
	scenario int
	entity   string
}

// problem records a problem of the input. One whose cause (an error among
// args) is a symbolic link planted inside OUT is a ProblemLayout naming
// the link, once however many files lie behind it.
func (s *state) problem(kind ProblemKind, p string, scenario *int, format string, args ...any) {
	if link := linkIn(args); link != nil {
		s.report.Problems = addLinkProblem(s.report.Problems, s.relOf(link.Path))
		return
	}
	s.report.Problems = append(s.report.Problems, Problem{Kind: kind, Path: p, Scenario: scenario, Detail: fmt.Sprintf(format, args...)})
}

func intp(i int) *int { return &i }

func analyze(ctx context.Context, out string, opts Options, applying bool) (*state, error) {
	s := &state{applying: applying, skipped: map[string]bool{}, out: out, fsys: opts.FS, dirs: vfs.NewDirs(opts.FS, out), opts: opts, report: &Report{Dir: out, Verified: opts.Verify}, byScenario: map[int][]*commit{}, chosen: map[int]*commit{}, conflicted: map[conflictKey]bool{}}
	if err := s.analyzeSteps(ctx); err != nil {
		// A link where the layout has a directory or file, met while
		// reading (opts.FS is confined: confine), is a problem of the
		// input, not of the environment.
		link := linkIn([]any{err})
		if link == nil {
			return nil, err
		}
		s.report.Problems = addLinkProblem(s.report.Problems, s.relOf(link.Path))
	}
	s.conclude()
	return s, nil
}

func (s *state) analyzeSteps(ctx context.Context) error {
	if err := s.readJournals(ctx); err != nil {
		return err
	}
	if err := s.judgeLeases(ctx); err != nil {
		return err
	}
	if len(s.report.Problems) == 0 {
		s.choose()
		if err := s.checkFiles(ctx); err != nil {
			return err
		}
		if err := s.scanTemps(); err != nil {
			return err
		}
		s.analyzeTraining()
		// A live training writer may be publishing a checkpoint: the
		// policy is assembled once it is done.
		if !s.liveTraining() {
			s.analyzePolicy()
		} else if s.report.Training != nil {
			s.report.Training.Status = TrainingRunning
		}
	}
	return nil
}

// readJournals streams every journal and keeps one small record per
// journal and per commit.
func (s *state) readJournals(ctx context.Context) error {
	rels, err := journal.List(s.fsys, s.out)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", s.out, ErrNoJournals)
	}
	if err != nil {
		return fmt.Errorf("reading journals: %w", err)
	}
	// The journals are read and validated on the workers, each into its
	// own result; the results are then taken in the journals' order, as
	// one reading them in turn would.
	reads := make([]journalRead, len(rels))
	forEach(ctx, len(rels), s.opts.Workers, func(i int) { reads[i] = s.readJournal(rels[i]) })
	if err := ctx.Err(); err != nil {
		return err
	}
	var commits []*commit
	revoked := map[manifest.CommitRef]bool{} // by merge-shards --requeue-lost
	for i := range reads {
		rd := reads[i]
		reads[i] = journalRead{} // held by rd until the next journal
		j, mine, torn, err := rd.j, rd.mine, rd.torn, rd.err
		for _, c := range rd.revoked {
			revoked[c] = true
		}
		if err != nil {
			var je *journal.Error
			if errors.As(err, &je) {
				s.problem(ProblemJournal, j.rel, nil, "line %d: %v", je.Line, je.Err)
				s.skipped[j.rel] = true
				continue
			}
			var re *recordError
			if errors.As(err, &re) {
				s.problem(ProblemJournal, j.rel, nil, "line %d: %v", re.line, re.err)
				s.skipped[j.rel] = true
				continue
			}
			return fmt.Errorf("reading journal %s: %w", j.rel, err)
		}
		if torn {
			s.report.TornTails = append(s.report.TornTails, j.rel)
		}
		if j.open == nil {
			// Created, then killed before its open record was durable:
			// nothing in it can have been committed.
			s.skipped[j.rel] = true
			continue
		}
		if j.open.Phase != manifest.PhaseSimulation {
			s.other = append(s.other, j)
			continue
		}
		s.journals = append(s.journals, j)
		commits = append(commits, mine...)
	}
	s.report.Journals = len(s.journals) + len(s.other)
	if s.report.Journals == 0 && len(s.report.Problems) == 0 {
		return fmt.Errorf("%s: %w", s.out, ErrNoJournals)
	}
	s.checkConsistency()
	// The case of the run: the simulation's, or the first training
	// journal's when the ranks never got to simulate (killed in training).
	s.caseRef = s.ref
	for _, j := range s.other {
		if s.caseRef == nil {
			s.caseRef = j.open
			s.report.CaseName, s.report.CaseHash = j.open.CaseName, j.open.CaseHash
		}
		if j.open.CaseHash != s.caseRef.CaseHash {
			s.problem(ProblemInconsistent, j.rel, nil, "%s journal written for case %q (hash %s), the run is for case hash %s: a journal from another case or run", j.open.Phase, j.open.CaseName, j.open.CaseHash, s.caseRef.CaseHash)
		}
	}
	for _, c := range commits {
		if revoked[manifest.CommitRef{Writer: c.writer(), Seq: c.seq}] {
			s.report.RevokedCommits++
			continue // its files were lost or damaged: the scenario is to be rewritten
		}
		s.byScenario[c.scenario] = append(s.byScenario[c.scenario], c)
	}
	return nil
}

// journalRead is what reading one journal gave.
type journalRead struct {
	j       *journalState
	mine    []*commit
	revoked []manifest.CommitRef // by the records read, even when a later line fails
	torn    bool
	err     error
}

// readJournal streams one journal, keeping one small record per journal
// and per commit. It touches nothing of s but the file system: the
// journals are read concurrently.
func (s *state) readJournal(rel string) (rd journalRead) {
	j := &journalState{rel: rel}
	rd.j = j
	// Its size before the read: judgeLeases compares it again.
	if st, err := s.fsys.Stat(layout.Join(s.out, rel)); err == nil {
		j.size = st.Size()
	}
	var pack filePacker
	rd.torn, rd.err = journal.ReadFile(s.fsys, layout.Join(s.out, rel), func(r *manifest.Record) error {
		if j.first == "" {
			j.first = r.Time
		}
		j.last = r.Time
		if r.Close == nil || r.Close.Status != manifest.StatusFailed {
			// Any later record, or a close that is not a failure,
			// proves the writer finished publishing its last commit
			// or checkpoint: it publishes each before it appends the
			// next record.
			j.tail = nil
		}
		if err := checkRecord(j, r); err != nil {
			return &recordError{line: int(r.Seq) + 1, err: err}
		}
		switch {
		case r.Open != nil:
			j.open = r.Open
		case r.Commit != nil:
			files := pack.files(r.Commit.Files)
			rd.mine = append(rd.mine, &commit{j: j, scenario: r.Commit.Scenario, time: r.Time, seq: r.Seq, files: files, cost: r.Commit.Cost})
			j.tail = files
		case r.Iteration != nil:
			j.iterations = append(j.iterations, iterRec{time: r.Time, writer: j.open.Writer, seq: r.Seq, info: r.Iteration})
		case r.Checkpoint != nil:
			j.checkpoints = append(j.checkpoints, ckptRec{rel: j.rel, time: r.Time, seq: r.Seq, info: r.Checkpoint})
			j.tail = nil
			for _, f := range r.Checkpoint.Files {
				j.tail = append(j.tail, manifest.FileRecord{Entity: f.Kind, Path: f.Path, Temp: f.Temp, Bytes: f.Bytes, XXH64: f.XXH64})
			}
		case r.Revoke != nil:
			rd.revoked = append(rd.revoked, r.Revoke.Commits...)
		case r.Close != nil:
			j.close = r.Close
		}
		return nil
	})
	return rd
}

// filePacker keeps the file records of a journal's commits compactly: a
// million committed files are a million records the merge holds from the
// journals to the outputs. As decoded, each commit's records sit in a
// slice grown by appending (up to twice the room they need) and each of
// their strings is an allocation of its own; packed, the records of many
// commits share one slice, the strings of one commit one allocation, and
// the entity names (a case's few tables) are shared by all.
type filePacker struct {
	slab     []manifest.FileRecord
	entities map[string]string
}

// packSlab is how many records one allocation of the packer holds.
const packSlab = 1024

// files returns a packed copy of fs, equal to it field by field.
func (p *filePacker) files(fs []manifest.FileRecord) []manifest.FileRecord {
	if len(fs) == 0 {
		return fs
	}
	if cap(p.slab)-len(p.slab) < len(fs) {
		p.slab = make([]manifest.FileRecord, 0, max(packSlab, len(fs)))
	}
	n := 0
	for _, f := range fs {
		n += len(f.Temp) + len(f.Path) + len(f.XXH64)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fs {
		b.WriteString(f.Temp)
		b.WriteString(f.Path)
		b.WriteString(f.XXH64)
	}
	all := b.String()
	if p.entities == nil {
		p.entities = map[string]string{}
	}
	start := len(p.slab)
	for _, f := range fs {
		e, ok := p.entities[f.Entity]
		if !ok {
			e = f.Entity
			p.entities[e] = e
		}
		g := manifest.FileRecord{Entity: e, Rows: f.Rows, Bytes: f.Bytes}
		g.Temp, all = all[:len(f.Temp)], all[len(f.Temp):]
		g.Path, all = all[:len(f.Path)], all[len(f.Path):]
		g.XXH64, all = all[:len(f.XXH64)], all[len(f.XXH64):]
		p.slab = append(p.slab, g)
	}
	return p.slab[start:len(p.slab):len(p.slab)]
}

// checkConsistency finds the run most journals describe (case, scenario
// count, layout) and reports every journal that differs, by name.
func (s *state) checkConsistency() {
	type key struct {
		hash      string
		scenarios int
		pad       int
	}
	keyOf := func(o *manifest.OpenInfo) key { return key{o.CaseHash, o.Scenarios, o.Layout.ScenarioPad} }
	count := map[key]int{}
	for _, j := range s.journals {
		count[keyOf(j.open)]++
	}
	var best key
	bestN := -1
	for _, j := range s.journals { // directory order breaks ties deterministically
		if k := keyOf(j.open); count[k] > bestN {
			best, bestN = k, count[k]
		}
	}
	// Without a majority (one journal against one, say) neither side is
	// "the run": blaming only the journals that differ from the one that
	// happens to sort first named the wrong journal half of the time, and
	// never the foreign one. Name every journal of the tied runs instead.
	tied := 0
	for _, n := range count {
		if n == bestN {
			tied++
		}
	}
	for _, j := range s.journals {
		o := j.open
		switch {
		case tied > 1 && count[keyOf(o)] == bestN:
			s.problem(ProblemInconsistent, j.rel, nil, "written for case %q (hash %s), %d scenarios, scenario padding %d; the journals describe %d different runs and none has a majority: remove the journals of the other run(s)", o.CaseName, o.CaseHash, o.Scenarios, o.Layout.ScenarioPad, len(count))
		case o.CaseHash != best.hash:
			s.problem(ProblemInconsistent, j.rel, nil, "written for case %q (hash %s), but %d other journal(s) are for case hash %s: a journal from another case or run", o.CaseName, o.CaseHash, bestN, best.hash)
		case o.Scenarios != best.scenarios:
			s.problem(ProblemInconsistent, j.rel, nil, "expects %d scenarios, %d other journal(s) expect %d", o.Scenarios, bestN, best.scenarios)
		case o.Layout.ScenarioPad != best.pad:
			s.problem(ProblemInconsistent, j.rel, nil, "uses scenario padding %d, %d other journal(s) use %d", o.Layout.ScenarioPad, bestN, best.pad)
		case s.ref == nil:
			s.ref = o
		}
	}
	if s.ref != nil {
		s.report.CaseName, s.report.CaseHash, s.report.Scenarios = s.ref.CaseName, s.ref.CaseHash, s.ref.Scenarios
	}
}

// choose picks the winning commit of each scenario (the latest), counts
// identical re-commits as duplicates and different ones as conflicts.
func (s *state) choose() {
	for _, sc := range sortedKeys(s.byScenario) {
		cs := s.byScenario[sc]
		if sc < 0 || sc >= s.ref.Scenarios {
			s.problem(ProblemJournal, cs[0].j.rel, intp(sc), "commit of a scenario outside the run's 0..%d", s.ref.Scenarios-1)
			continue
		}
		win := cs[0]
		for _, c := range cs[1:] {
			if c.later(win) {
				win = c
			}
		}
		s.chosen[sc] = win
		for _, c := range cs {
			if c == win {
				continue
			}
			if sameFiles(c.files, win.files) {
				s.report.Duplicates++
				continue
			}
			for _, e := range conflictingEntities(c.files, win.files) {
				s.report.Conflicts = append(s.report.Conflicts, manifest.Conflict{Scenario: sc, Entity: e, Winner: win.writer(), Loser: c.writer()})
				s.conflicted[conflictKey{sc, e}] = true
				if s.opts.Strict {
					s.problem(ProblemConflict, entityPath(e, win.files, c.files), intp(sc), "%s committed with different bytes by %s and %s (--strict)", e, c.writer(), win.writer())
				}
			}
		}
	}
}

// entityPath is the path of entity's file in the first of lists that has
// one: a conflict names the file in conflict, not the scenario's first.
func entityPath(entity string, lists ...[]manifest.FileRecord) string {
	for _, files := range lists {
		for _, f := range files {
			if f.Entity == entity {
				return f.Path
			}
		}
	}
	return ""
}

func fileKey(f manifest.FileRecord) string { return fmt.Sprintf("%s %d %s", f.Path, f.Bytes, f.XXH64) }

func sameFiles(a, b []manifest.FileRecord) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, f := range a {
		m[fileKey(f)] = true
	}
	for _, f := range b {
		if !m[fileKey(f)] {
			return false
		}
	}
	return true
}

func conflictingEntities(loser, win []manifest.FileRecord) []string {
	w := map[string]manifest.FileRecord{}
	for _, f := range win {
		w[f.Entity] = f
	}
	var out []string
	for _, f := range loser {
		if g, ok := w[f.Entity]; !ok || fileKey(g) != fileKey(f) {
			out = append(out, f.Entity)
		}
	}
	return out
}

// MaxListedMissing bounds the missing scenario ids a report, its JSON,
// --rerun-list and simulation/_manifest.json list: the lowest ones. A
// journal may claim up to MaxScenarios scenarios while committing a
// handful, and the merge's memory (and the size of what it writes) must
// follow what is on disk, not what a record claims: listing ten million
// ids took gigabytes and a manifest too large to read back. The count of
// missing scenarios is always exact: Scenarios - Committed.
const MaxListedMissing = 1 << 20

// conclude fills the report's counts and outcome.
func (s *state) conclude() {
	r := s.report
	r.Outcome = Complete
	r.Missing = []int{}
	if s.ref != nil {
		r.Committed = len(s.chosen)
		r.Missing = s.missing(MaxListedMissing)
		if r.Committed < s.ref.Scenarios {
			r.Outcome = Partial
		}
	}
	if s.ref == nil && s.caseRef != nil {
		// Training journals only: the simulation has not started.
		r.Outcome = Partial
	}
	if r.Training != nil && r.Training.Status == TrainingPartial {
		r.Outcome = Partial
	}
	for _, f := range s.files {
		r.Files++
		r.Bytes += f.rec.Bytes
		if f.fromTemp {
			r.RolledForward++
		}
	}
	if len(r.Live) > 0 {
		r.Outcome = Running
	}
	if len(r.Problems) > 0 {
		r.Outcome = Corrupt
	}
	r.Status = r.Outcome.String()
}

// missing returns the lowest scenario ids of the run (0..Scenarios-1)
// without a chosen commit, at most limit of them. It walks the gaps
// between the chosen scenarios (every one in range: choose refuses the
// others), so its time and memory follow the commits and the limit, never
// the scenario count a journal claims.
func (s *state) missing(limit int) []int {
	out := make([]int, 0, min(s.ref.Scenarios-len(s.chosen), limit))
	next := 0 // the lowest id not yet known to be committed or listed
	for _, sc := range append(sortedKeys(s.chosen), s.ref.Scenarios) {
		for ; next < sc; next++ {
			if len(out) == limit {
				return out
			}
			out = append(out, next)
		}
		next = sc + 1
	}
	return out
}

// judgeLeases marks the writers that are live: a lease renewed within the
// grace by the file system's clock (package lease), and no close record.
// It runs after the journals are read: a writer creates its lease before
// its journal, so every journal read belongs to a writer whose lease the
// judgement sees, unless it has closed since. A live lease whose journal
// was not read (a writer that started during the read) counts too. The
// merge leaves everything of a live writer alone.
func (s *state) judgeLeases(ctx context.Context) error {
	now, _, err := lease.Now(ctx, s.fsys, s.out)
	if err != nil {
		return err
	}
	states, err := lease.Judge(s.fsys, s.out, now, s.opts.Lease)
	if err != nil {
		return err
	}
	closed := map[string]bool{}
	for _, j := range s.allJournals() {
		if j.close != nil {
			closed[j.open.Writer] = true
			continue
		}
		if st, ok := states[j.open.Writer]; ok && st.Live {
			j.live = true
		}
	}
	s.live = map[string]bool{}
	for _, w := range sortedKeys(states) {
		if st := states[w]; st.Live && !closed[w] {
			s.live[w] = true
			s.report.Live = append(s.report.Live, st)
		}
	}
	// A writer may have appended, published and closed (releasing its
	// lease) between the read of its journal and this judgement: its lease
	// is gone, yet what the merge read is stale (files it publishes would
	// look unclaimed, its temps unclaimed). Likewise a writer that started
	// and ended meanwhile. A journal that grew, or a journal that appeared,
	// since the read counts as live: the next merge reads it whole.
	read := map[string]bool{}
	for _, j := range s.allJournals() {
		read[j.rel] = true
		if j.close != nil || j.live {
			continue
		}
		if st, err := s.fsys.Stat(layout.Join(s.out, j.rel)); err == nil && st.Size() != j.size {
			s.changedMeanwhile(j.open.Writer, j.open.Rank)
			j.live = true
		}
	}
	rels, err := journal.List(s.fsys, s.out)
	if err != nil {
		return err
	}
	for _, rel := range rels {
		if !read[rel] && !s.skipped[rel] {
			w := strings.TrimSuffix(path.Base(rel), layout.JournalSuffix)
			id, _ := layout.ParseWriterID(w)
			s.changedMeanwhile(w, id.Rank)
		}
	}
	return nil
}

// changedMeanwhile records a writer whose journal changed while the merge
// read the journals: it counts as live for this merge.
func (s *state) changedMeanwhile(writer string, rank int) {
	if s.live[writer] {
		return
	}
	s.live[writer] = true
	s.report.Live = append(s.report.Live, lease.State{Info: lease.Info{Writer: writer, Rank: rank}, Live: true})
}

// liveTraining reports whether a training writer is live.
func (s *state) liveTraining() bool {
	for w := range s.live {
		if id, err := layout.ParseWriterID(w); err == nil && id.Tag == layout.TrainingTag {
			return true
		}
	}
	return false
}

// liveWriter reports whether a temp file's name belongs to a live writer
// (temp names begin with the writer id).
func (s *state) liveWriter(name string) bool {
	w, _, ok := strings.Cut(name, layout.TempSuffix)
	for ok && w != "" {
		if s.live[w] {
			return true
		}
		i := strings.LastIndexByte(w, '.')
		if i < 0 {
			break
		}
		w = w[:i]
	}
	return false
}

// recordError is a well-framed journal record whose content the merge
// refuses (checkRecord), with its line.
type recordError struct {
	line int
	err  error
}

func (e *recordError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

// checkRecord validates a record against its journal before the merge
// uses anything it names.
func checkRecord(j *journalState, r *manifest.Record) error {
	switch {
	case r.Open != nil:
		return checkOpen(j.rel, r.Open)
	case r.Commit != nil:
		if j.open.Phase != manifest.PhaseSimulation {
			return fmt.Errorf("a commit record in a %s journal", j.open.Phase)
		}
		return checkCommit(j.open, r.Commit)
	case r.Checkpoint != nil:
		if j.open.Phase != manifest.PhaseTraining {
			return errors.New("a checkpoint record outside a training journal")
		}
		return checkCheckpoint(j.open, r.Checkpoint)
	case r.Iteration != nil:
		if j.open.Phase != manifest.PhaseTraining {
			return errors.New("an iteration record outside a training journal")
		}
		return checkIteration(r.Iteration)
	case r.Revoke != nil:
		if j.open.Phase != manifest.PhaseMerge {
			return errors.New("a revoke record outside a merge's journal")
		}
		if r.Revoke.Scenario < 0 || r.Revoke.Scenario >= j.open.Scenarios {
			return fmt.Errorf("revocation of scenario %d, the run has scenarios 0..%d", r.Revoke.Scenario, j.open.Scenarios-1)
		}
	}
	return nil
}

// allJournals returns the simulation journals, then the others.
func (s *state) allJournals() []*journalState {
	return append(append(make([]*journalState, 0, len(s.journals)+len(s.other)), s.journals...), s.other...)
}
