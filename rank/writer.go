// Package rank is what a solver rank embeds: who the rank is, which
// scenarios it owns, and the writers that commit its results without
// coordinating with any other rank: Writer for simulation scenarios,
// TrainingWriter for training iterations and policy checkpoints.
//
// The commit protocol (docs/format.md has every step and why):
//
//  1. each table is encoded into a new temp file under _shards/tmp and
//     fsynced; then _shards/tmp itself is fsynced, so the names survive;
//  2. ONE commit record listing every file (path, temp, rows, bytes,
//     XXH64) is appended to the writer's own journal and fsynced: the
//     commit point;
//  3. each temp file is renamed into simulation/<entity>/scenario_id=N/
//     data.parquet, never replacing a file, and the directories are
//     fsynced.
//
// Invariants: a crash before the commit point leaves only temp garbage;
// after it, the merge finishes the renames (package journal). A scenario
// is committed once: a resumed rank reads every journal at Open and skips
// what any attempt committed. Committed data is never overwritten. All
// file I/O goes through Options.FS (package vfs).
package rank

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// Options tune a Writer.
type Options struct {
	// Scenarios is the run's expected scenario count (ids 0..Scenarios-1).
	// Every rank of a run must pass the same value.
	Scenarios int
	// ScenarioPad zero-pads partition directory names (0: scenario_id=7,
	// the default; 4: Cobre's scenario_id=0007).
	ScenarioPad int
	// Ownership is the rule that shares the scenarios among the ranks
	// (default Contiguous). Writer.Owned and Writer.Remaining apply it:
	// the writer is the one place a solver gives it. It is recorded in the
	// journal for the report; the merge never relies on it.
	Ownership Ownership
	// RerunFile, when set, is a rerun list (one scenario id per line, as
	// merge-shards --rerun-list writes it; launchers pass it to the ranks
	// of a rerun job as --scenarios-from FILE): this rank then owns its
	// share of the listed ids instead of its share of 0..Scenarios-1 (see
	// MyScenarios). Open reads it first: a bad file is a *RerunListError
	// naming the file and line, and nothing is written.
	RerunFile string
	// Workers is how many goroutines encode tables: the tables of one
	// scenario and of consecutive scenarios at once (default: GOMAXPROCS,
	// at most 4).
	Workers int
	// Queue is how many accepted scenarios may wait for their commit
	// (default DefaultQueue, 64). WriteScenario blocks while it is full:
	// that is the backpressure when encoding falls behind, and the bound
	// on the memory the writer holds.
	Queue int
	// Solver names the program that produced the results (recorded as
	// metadata.json "solver"); default "unknown".
	Solver string
	// Threads is the number of solver threads per rank, when known
	// (metadata.json distribution.threads_per_rank).
	Threads int
	// Now is the clock for journal timestamps (default time.Now).
	Now func() time.Time
	// FS is the file system the writer uses (default vfs.OS()); tests
	// pass a fault-injecting or crash-simulating one.
	FS vfs.FS
	// LeaseInterval is how often the writer renews its lease, which tells
	// a merge that this writer is alive (default lease.DefaultInterval,
	// 5 s; see package lease).
	LeaseInterval time.Duration
}

// ErrCommitted is returned (in a *ScenarioError) by WriteScenario for a
// scenario that an earlier attempt (or this writer) already committed;
// nothing more is written. It also matches ErrQueued: either way the
// scenario must not be handed over again.
var ErrCommitted = errors.New("rank: scenario already committed")

// ErrQueued is returned (in a *ScenarioError) by WriteScenario for a
// scenario this writer has already accepted and not committed yet (queued
// or being written); nothing more is queued. errors.Is(err, ErrCommitted)
// is true for it too, so code that skips ErrCommitted skips both.
var ErrQueued error = queuedError{}

type queuedError struct{}

func (queuedError) Error() string {
	return "rank: scenario already queued or being written by this writer (not committed yet)"
}
func (queuedError) Is(target error) bool { return target == ErrCommitted }

// ScenarioError wraps an error with the scenario it concerns.
type ScenarioError struct {
	Scenario int
	Err      error
}

func (e *ScenarioError) Error() string { return fmt.Sprintf("scenario %d: %v", e.Scenario, e.Err) }
func (e *ScenarioError) Unwrap() error { return e.Err }

// CaseMismatchError reports an existing journal written for another case,
// scenario count or layout: mixing them would corrupt the output.
type CaseMismatchError struct {
	Journal    string
	What       string
	Have, Want string
}

func (e *CaseMismatchError) Error() string {
	return fmt.Sprintf("journal %s was written with %s %s, this run has %s (use another output directory)", e.Journal, e.What, e.Have, e.Want)
}

// Writer commits scenarios for one rank.
//
// Concurrency: all methods are safe for concurrent use; a solver's
// simulation workers may call WriteScenario at the same time. WriteScenario
// validates a scenario and puts it on a bounded queue (Options.Queue,
// default 64); Options.Workers goroutines encode the queued scenarios'
// tables in parallel, and the scenarios are committed one at a time in the
// order they were accepted. When the queue is full, WriteScenario blocks
// until a scenario is committed (or its ctx ends). The writer keeps each
// accepted scenario's slices until the scenario is committed: the caller
// must not modify them before Flush or Close returns.
//
// Errors: bad input found by WriteScenario is returned at once and leaves
// the writer usable. An error found in the background is never lost: it is
// returned by the next WriteScenario (which then does not accept its
// scenario), by Flush and by Close. An I/O error breaks the writer: every
// later call returns it, scenarios still queued are discarded (their temp
// files removed, never committed), and Close records the failure in the
// journal when it still can. A bad-input error found only while encoding
// (a row whose stage and block are not in the case's grid: a
// *shard.BadRowError) is reported once and the writer goes on. After
// Close, every WriteScenario, Flush and Close returns an error matching
// ErrClosed.
type Writer struct {
	out    string
	fsys   vfs.FS
	dirs   *vfs.Dirs // directories made durable by this writer
	id     Identity
	cas    *manifest.Case
	opts   Options
	layout manifest.Layout
	name   string // writer id, also the journal's base name

	entities map[string]bool
	owned    []int // this rank's scenarios (Owned)

	writerState
	journal   *journal.Writer
	lease     *lease.Lease
	committed map[int]bool // by any attempt, including this one
	mine      int
	sig       *signalState
	pipe      pipeline
	broken    atomic.Bool // w.err is set: background work stops
	abandon   atomic.Bool // CloseContext's ctx ended: drop what has not started
	// testHookEncode, when set (by tests, before the first WriteScenario),
	// runs on a worker before each table is encoded.
	testHookEncode func(scenario int)
}

// checkOpen validates what every writer's Open gets: a live context, a
// usable identity and a valid case.
func checkOpen(ctx context.Context, fn string, id Identity, c *manifest.Case) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("rank: %s: nil case", fn)
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("rank: case %s: %w", c.Name, err)
	}
	return nil
}

// Open prepares outDir for this rank: it reads Options.RerunFile when set,
// creates the directories, reads the journals already there (a requeued
// job resumes: see Committed) and starts this writer's journal with an
// open record.
//
// It refuses: journals of another case, scenario count or scenario
// padding (*CaseMismatchError: use another output directory); a running
// rank of the same job and attempt with another world size
// (*WorldMismatchError: the launch is wrong); a bad rerun list
// (*RerunListError).
func Open(ctx context.Context, outDir string, id Identity, c *manifest.Case, opts Options) (*Writer, error) {
	if err := checkOpen(ctx, "Open", id, c); err != nil {
		return nil, err
	}
	if opts.Scenarios < 1 || opts.Scenarios > manifest.MaxScenarios {
		return nil, fmt.Errorf("rank: Options.Scenarios = %d, want the run's scenario count (1..%d)", opts.Scenarios, manifest.MaxScenarios)
	}
	if opts.ScenarioPad < 0 || opts.ScenarioPad > 12 {
		return nil, fmt.Errorf("rank: Options.ScenarioPad = %d, want 0..12", opts.ScenarioPad)
	}
	if opts.Ownership != Contiguous && opts.Ownership != RoundRobin {
		return nil, fmt.Errorf("rank: Options.Ownership = %v, want rank.Contiguous or rank.RoundRobin", opts.Ownership)
	}
	owned, err := MyScenarios(opts.Scenarios, id, opts.Ownership, opts.RerunFile)
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = min(runtime.GOMAXPROCS(0), 4)
	}
	if opts.Queue < 0 {
		return nil, fmt.Errorf("rank: Options.Queue = %d, want >= 1 (0: the default %d)", opts.Queue, DefaultQueue)
	}
	if opts.Queue == 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Solver == "" {
		opts.Solver = "unknown"
	}
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	fsys, err := confine(opts.FS, outDir)
	if err != nil {
		return nil, err
	}
	opts.FS = fsys
	w := &Writer{
		out:       outDir,
		fsys:      opts.FS,
		dirs:      vfs.NewDirs(opts.FS, outDir),
		id:        id,
		cas:       c,
		opts:      opts,
		layout:    manifest.Layout{ScenarioPad: opts.ScenarioPad, Ownership: opts.Ownership.String()},
		entities:  map[string]bool{},
		owned:     owned,
		committed: map[int]bool{},
		sig:       newSignalState(),
	}
	for _, e := range c.Entities() {
		w.entities[e] = true
	}
	for _, d := range []string{layout.JournalDir, layout.TempDir, layout.SimDir} {
		if err := w.dirs.Ensure(layout.Join(outDir, d)); err != nil {
			return nil, fmt.Errorf("rank: preparing %s: %w", outDir, err)
		}
	}
	world := newWorldCheck(id)
	if err := w.resume(world); err != nil {
		return nil, err
	}
	if err := world.verdict(ctx, w.fsys, outDir); err != nil {
		return nil, err
	}
	if err := w.startJournal(); err != nil {
		return nil, err
	}
	// Ranks of one launch start together: look again at the journals
	// created since resume read them.
	if err := world.recheck(ctx, w.fsys, outDir, w.name); err != nil {
		_, _ = endJournal(w.journal, w.lease, &manifest.CloseInfo{Status: manifest.StatusFailed, Reason: err.Error()})
		return nil, err
	}
	w.startPipeline()
	return w, nil
}

// resume reads every existing journal: it collects committed scenarios and
// refuses journals of another case or layout.
// A scenario whose every commit a merge has revoked (its files were lost
// or damaged after the commit: merge-shards --requeue-lost) is not
// committed: this writer writes it again.
func (w *Writer) resume(world *worldCheck) error {
	commits := map[manifest.CommitRef]int{} // -> scenario
	revoked := map[manifest.CommitRef]bool{}
	err := scanJournals(w.fsys, w.out, w.cas, func(p string, o *manifest.OpenInfo, r *manifest.Record) error {
		if r.Open != nil {
			world.note(p, o)
		}
		switch {
		case r.Revoke != nil && o.Phase == manifest.PhaseMerge:
			for _, c := range r.Revoke.Commits {
				revoked[c] = true
			}
		case r.Open != nil:
			if o.Phase != manifest.PhaseSimulation {
				return nil // a training or merge journal: only the case must agree
			}
			if o.Scenarios != w.opts.Scenarios {
				return &CaseMismatchError{Journal: p, What: "scenario count", Have: fmt.Sprint(o.Scenarios), Want: fmt.Sprint(w.opts.Scenarios)}
			}
			if o.Layout.ScenarioPad != w.layout.ScenarioPad {
				return &CaseMismatchError{Journal: p, What: "scenario padding", Have: fmt.Sprint(o.Layout.ScenarioPad), Want: fmt.Sprint(w.layout.ScenarioPad)}
			}
		case r.Commit != nil:
			commits[manifest.CommitRef{Writer: o.Writer, Seq: r.Seq}] = r.Commit.Scenario
		}
		return nil
	})
	for c, s := range commits {
		if !revoked[c] {
			w.committed[s] = true
		}
	}
	return err
}

func (w *Writer) startJournal() error {
	name, err := writerName(w.id, "")
	if err != nil {
		return err
	}
	open := openInfo(name, w.id, w.cas, w.opts.Solver, w.opts.Threads)
	open.Scenarios = w.opts.Scenarios
	open.Layout = w.layout
	j, l, err := startJournal(w.dirs, w.out, name, w.id.Rank, w.opts.Now, w.opts.LeaseInterval, open)
	if err != nil {
		return err
	}
	w.name, w.journal, w.lease = name, j, l
	return nil
}

// CommittedHere returns how many scenarios this writer has committed so
// far (not counting earlier attempts). After Close it is final.
func (w *Writer) CommittedHere() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mine
}

// Identity returns the writer's rank identity.
func (w *Writer) Identity() Identity { return w.id }

// JournalPath returns the path of this writer's journal.
func (w *Writer) JournalPath() string { return w.journal.Path() }

// Committed returns, ascending, the scenarios committed so far by any
// attempt of any rank in this output directory, as read at Open plus this
// writer's own commits. A resumed rank skips them.
func (w *Writer) Committed() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int, 0, len(w.committed))
	for s := range w.committed {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

// IsCommitted reports whether scenario s is already committed.
func (w *Writer) IsCommitted(s int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.committed[s]
}

// Owned returns, ascending, the scenarios this rank is to write: its share
// (by Options.Ownership) of 0..Options.Scenarios-1, or of the ids of
// Options.RerunFile when that is set (see MyScenarios). Committed ones
// included: Remaining leaves them out.
func (w *Writer) Owned() []int { return slices.Clone(w.owned) }

// Remaining returns, ascending, the scenarios of Owned that are not
// committed yet (by any attempt, as read at Open, or by this writer): what
// this rank still has to write. A requeued rank gets only what its earlier
// attempts did not commit. A scenario queued and not committed yet is
// still in it.
func (w *Writer) Remaining() []int { return w.uncommitted(w.owned) }

// Pending returns the scenarios of owned that are not committed yet.
//
// Deprecated: use Remaining, which takes this rank's scenarios from the
// writer's own Options (Ownership, RerunFile) instead of a second copy of
// the rule: w.Pending(rank.Contiguous.Owned(n, id)) is w.Remaining() with
// Options.Ownership Contiguous (the default). Pending stays for one
// release.
func (w *Writer) Pending(owned []int) []int { return w.uncommitted(owned) }

func (w *Writer) uncommitted(owned []int) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for _, s := range owned {
		if !w.committed[s] {
			out = append(out, s)
		}
	}
	return out
}

// WriteScenario hands one scenario to the writer, which commits it in the
// background: every table is encoded into a temp file under _shards/tmp and
// fsynced; one commit record is appended to the journal and fsynced (the
// commit point); then each file is renamed into
// simulation/<entity>/scenario_id=N/data.parquet and its directory fsynced.
// A crash before the commit point leaves only temp garbage; after it, the
// merge finishes the renames.
//
// It returns once the scenario is checked and queued (nil), blocking while
// the queue is full; Flush or Close wait for the commits. Bad input (an id
// out of range, a scenario committed already: ErrCommitted, or queued
// already: ErrQueued, a table the case does not have or a nil table the
// case requires (costs always), mismatched column lengths, and values the
// case rules out: an entity id it does not have, a repeated (stage, block,
// entity) key, NaN or an infinity: a *shard.ValueError naming table,
// column and row) is a *ScenarioError returned at once; the writer stays
// usable. An error of an earlier scenario is
// returned instead of accepting s (see Writer). s's slices must not be
// modified until Flush or Close returns. After Close it returns an error
// matching ErrClosed.
func (w *Writer) WriteScenario(ctx context.Context, s *shard.Scenario) error {
	if err := w.enter(ctx, "WriteScenario"); err != nil {
		return err
	}
	if err := w.takeUnreported(); err != nil {
		w.mu.Unlock()
		return err
	}
	tables, cost, err := w.check(s)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	w.pipe.inflight[s.ID] = true
	w.mu.Unlock()

	// Backpressure: wait for a slot without holding the lock.
	select {
	case w.pipe.slots <- struct{}{}:
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.pipe.inflight, s.ID)
		w.mu.Unlock()
		return ctx.Err()
	}
	j := &job{s: s, tables: tables, cost: cost, files: make([]manifest.FileRecord, len(tables)), errs: make([]error, len(tables))}
	j.pending.Add(len(tables))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.closed {
		delete(w.pipe.inflight, s.ID)
		<-w.pipe.slots
		if w.closed {
			return errClosed("WriteScenario")
		}
		return w.err
	}
	w.pipe.accepted++
	w.pipe.queue <- j // never blocks: the slot reserved room
	return nil
}

// check validates s against the run and the case. Callers hold w.mu.
func (w *Writer) check(s *shard.Scenario) ([]shard.TableRows, manifest.CostSummary, error) {
	var cost manifest.CostSummary
	if s == nil {
		return nil, cost, errors.New("rank: WriteScenario: nil scenario")
	}
	if s.ID < 0 || s.ID >= w.opts.Scenarios {
		return nil, cost, &ScenarioError{Scenario: s.ID, Err: fmt.Errorf("id out of range: the run has scenarios 0..%d", w.opts.Scenarios-1)}
	}
	if w.committed[s.ID] {
		return nil, cost, &ScenarioError{Scenario: s.ID, Err: ErrCommitted}
	}
	if w.pipe.inflight[s.ID] {
		return nil, cost, &ScenarioError{Scenario: s.ID, Err: ErrQueued}
	}
	tables, err := w.checkTables(s)
	if err != nil {
		return nil, cost, &ScenarioError{Scenario: s.ID, Err: err}
	}
	for _, t := range tables {
		if err := shard.CheckRows(t); err != nil {
			return nil, cost, &ScenarioError{Scenario: s.ID, Err: err}
		}
	}
	// The values against the case: entity ids, repeated keys, NaN/±Inf
	// (a *shard.ValueError). A row off the case's (stage, block) grid is
	// the encoder's to refuse (a *shard.BadRowError, reported later).
	if err := shard.CheckValues(w.cas, tables...); err != nil {
		return nil, cost, &ScenarioError{Scenario: s.ID, Err: err}
	}
	cost, err = costSummary(s.Costs, w.cas.Stages)
	if err != nil {
		return nil, cost, &ScenarioError{Scenario: s.ID, Err: err}
	}
	return tables, cost, nil
}

// checkTables pairs the scenario's tables with the case: the costs table
// and the table of every entity type of the case must be present, no
// other.
func (w *Writer) checkTables(s *shard.Scenario) ([]shard.TableRows, error) {
	tables := s.Tables()
	have := map[string]bool{}
	for _, t := range tables {
		if !w.entities[t.Table.Entity] {
			return nil, fmt.Errorf("has %s %s table but case %s has no %s: leave it nil", article(t.Table.Entity), t.Table.Entity, w.cas.Name, t.Table.Entity)
		}
		have[t.Table.Entity] = true
	}
	for _, e := range w.cas.Entities() {
		if have[e] {
			continue
		}
		if e == shard.Costs.Entity {
			return nil, errors.New("has no costs table: the costs table is required in every scenario (shard.Scenario.Costs is nil)")
		}
		return nil, fmt.Errorf("has no %s table but case %s has %s: the table of every entity type of the case is required", e, w.cas.Name, e)
	}
	return tables, nil
}

// article is the indefinite article of an entity table's name.
func article(entity string) string {
	if entity != "" && strings.ContainsRune("aeiou", rune(entity[0])) {
		return "an"
	}
	return "a"
}

// costSummary computes the discounted cost of each stage and their total.
func costSummary(c *shard.CostsRows, stages int) (manifest.CostSummary, error) {
	out := manifest.CostSummary{Stages: make([]float64, stages)}
	if len(c.DiscountFactor) != len(c.StageID) || len(c.ImmediateCost) != len(c.StageID) {
		return out, errors.New("costs: stage_id, immediate_cost and discount_factor differ in length")
	}
	for i, st := range c.StageID {
		if st < 0 || int(st) >= stages {
			return out, fmt.Errorf("costs row %d: stage %d, the case has stages 0..%d", i, st, stages-1)
		}
		v := c.DiscountFactor[i] * c.ImmediateCost[i]
		out.Stages[st] += v
		out.Total += v
	}
	return out, nil
}

// HandleSignals returns a context that is cancelled when the process gets
// SIGTERM or SIGINT (SLURM's --signal, scancel, Ctrl-C). The scenarios
// being encoded finish and commit; queued scenarios not started yet are
// dropped (not committed: a requeued job redoes them), so that shutdown
// takes at most about Options.Workers scenarios' encoding time. The caller
// should stop when the context is done and call Close, which then records
// the journal as interrupted. Call the returned stop function to restore default handling.
func (w *Writer) HandleSignals(parent context.Context) (context.Context, func()) {
	return w.sig.handle(parent)
}

// Interrupted reports whether HandleSignals saw a signal (or Interrupt was
// called).
func (w *Writer) Interrupted() bool { return w.sig.interrupted() }

// Interrupt makes the writer act as if its HandleSignals had seen SIGTERM,
// for a caller that handles the signals itself (hydroshard.Rank covers
// several writers with one handler): queued scenarios not started are
// dropped, and Close records the journal as interrupted. Calling it again
// changes nothing.
func (w *Writer) Interrupt() { w.sig.mark() }

// Close ends the journal with a close record: "clean", "interrupted" when a
// signal arrived, or "failed" after an error (which Close returns). It
// first waits until every accepted scenario is committed (or discarded,
// after an error or a signal); CloseContext bounds that wait.
//
// The first Close (of any kind: Close, CloseContext, CloseInterrupted)
// returns the writer's outcome; every later call of any of them, and of
// WriteScenario or Flush, returns an error matching ErrClosed.
func (w *Writer) Close() error {
	return w.close(context.Background(), "Close", manifest.StatusClean, "")
}

// CloseContext is Close with a bound on the wait for the queue. When ctx
// ends first, every scenario not yet fully encoded is dropped (not
// committed: a requeue or rerun writes it); the writer waits only for the
// tables being encoded at that moment (one per worker) and for the
// commits already under way, records the journal as interrupted, and
// returns an error wrapping ctx.Err() that says how many scenarios were
// dropped. When nothing had to be dropped it is Close. The journal is
// closed in every case: ctx bounds the wait, not the close.
//
// Give it a context for the shutdown (a deadline), not the one that
// stopped the work: after SIGTERM the context of HandleSignals is done
// already, and CloseContext with it would drop at once the scenarios that
// Close would finish (Close after a signal finishes the scenarios being
// encoded and drops only those not started).
func (w *Writer) CloseContext(ctx context.Context) error {
	return w.close(ctx, "CloseContext", manifest.StatusClean, "")
}

// CloseInterrupted ends the journal as interrupted, for callers that stop
// early for reasons of their own. It waits for the queue as Close does.
func (w *Writer) CloseInterrupted(reason string) error {
	return w.close(context.Background(), "CloseInterrupted", manifest.StatusInterrupted, reason)
}

func (w *Writer) close(ctx context.Context, op, status, reason string) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed(op)
	}
	w.closed = true
	close(w.pipe.queue)
	w.mu.Unlock()
	// Wait until every accepted scenario is committed or discarded; a
	// queue already written is never abandoned, whatever ctx says.
	var gaveUp error
	select {
	case <-w.pipe.drained:
	default:
		select {
		case <-w.pipe.drained:
		case <-ctx.Done():
			gaveUp = ctx.Err()
			w.abandon.Store(true)
			<-w.pipe.drained
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	var dropErr error
	if gaveUp != nil && w.pipe.dropped > 0 {
		dropErr = fmt.Errorf("rank: %s: %w before the queue was written: %d accepted scenarios dropped, not committed (a requeue or rerun writes them)", op, gaveUp, w.pipe.dropped)
	}
	switch {
	case status == manifest.StatusClean && w.Interrupted():
		status, reason = manifest.StatusInterrupted, "signal"
	case status == manifest.StatusClean && dropErr != nil:
		status, reason = manifest.StatusInterrupted, dropErr.Error()
	}
	if w.err != nil {
		status, reason = manifest.StatusFailed, w.err.Error()
	}
	unreported := w.takeUnreported()
	aerr, cerr := endJournal(w.journal, w.lease, &manifest.CloseInfo{Status: status, Committed: w.mine, Reason: reason})
	if w.err != nil {
		return w.err
	}
	if aerr != nil {
		w.err = aerr
		return aerr
	}
	return errors.Join(dropErr, cerr, unreported)
}
