// Package rank is what a solver rank embeds: who the rank is, which
// scenarios it owns, and the Writer that commits each scenario's tables as
// Parquet files with a write-ahead journal, without coordinating with any
// other rank.
package rank

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hydroshard/hydroshard/internal/faults"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// Version is the hydroshard version recorded in journals and metadata.
const Version = "0.1.0"

// Directories under the output directory.
const (
	ShardsDir  = "_shards"
	JournalDir = "_shards/journal"
	TempDir    = "_shards/tmp"
	SimDir     = "simulation"
)

// JournalSuffix ends every journal file name.
const JournalSuffix = ".jsonl"

// Options tune a Writer.
type Options struct {
	// Scenarios is the run's expected scenario count (ids 0..Scenarios-1).
	// Every rank of a run must pass the same value.
	Scenarios int
	// ScenarioPad zero-pads partition directory names (0: scenario_id=7,
	// the default; 4: Cobre's scenario_id=0007).
	ScenarioPad int
	// Ownership is recorded in the journal for the report; the merge never
	// relies on it.
	Ownership Ownership
	// Workers is how many of a scenario's tables are encoded at once
	// (default: GOMAXPROCS, at most 4).
	Workers int
	// Solver names the program that produced the results (recorded as
	// metadata.json "solver"); default "unknown".
	Solver string
	// Threads is the number of solver threads per rank, when known
	// (metadata.json distribution.threads_per_rank).
	Threads int
	// Now is the clock for journal timestamps (default time.Now).
	Now func() time.Time
}

// ErrCommitted is returned by WriteScenario for a scenario that an earlier
// attempt (or this writer) already committed; nothing is written.
var ErrCommitted = errors.New("scenario already committed")

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

// Writer commits scenarios for one rank. Its methods are safe for
// concurrent use; scenarios are committed one at a time, each one's tables
// encoded on Options.Workers goroutines. After any error the Writer is
// broken: every later call returns that error, and Close records the
// failure in the journal when it still can.
type Writer struct {
	out    string
	id     Identity
	cas    *manifest.Case
	opts   Options
	layout manifest.Layout
	name   string // writer id, also the journal's base name

	entities map[string]bool
	encoders chan *shard.Encoder

	writerState
	journal   *journalFile
	committed map[int]bool // by any attempt, including this one
	mine      int
	sig       *signalState
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

// Open prepares outDir for this rank: it creates the directories, reads
// the journals already there (a requeued job resumes: see Committed) and
// starts this writer's journal with an open record.
func Open(ctx context.Context, outDir string, id Identity, c *manifest.Case, opts Options) (*Writer, error) {
	if err := checkOpen(ctx, "Open", id, c); err != nil {
		return nil, err
	}
	if opts.Scenarios < 1 {
		return nil, fmt.Errorf("rank: Options.Scenarios = %d, want the run's scenario count (>= 1)", opts.Scenarios)
	}
	if opts.ScenarioPad < 0 || opts.ScenarioPad > 12 {
		return nil, fmt.Errorf("rank: Options.ScenarioPad = %d, want 0..12", opts.ScenarioPad)
	}
	if opts.Workers <= 0 {
		opts.Workers = min(runtime.GOMAXPROCS(0), 4)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Solver == "" {
		opts.Solver = "unknown"
	}
	w := &Writer{
		out:       outDir,
		id:        id,
		cas:       c,
		opts:      opts,
		layout:    manifest.Layout{ScenarioPad: opts.ScenarioPad, Ownership: opts.Ownership.String()},
		entities:  map[string]bool{},
		encoders:  make(chan *shard.Encoder, opts.Workers),
		committed: map[int]bool{},
		sig:       newSignalState(),
	}
	for _, e := range c.Entities() {
		w.entities[e] = true
	}
	for i := 0; i < opts.Workers; i++ {
		w.encoders <- shard.NewEncoder()
	}
	for _, d := range []string{JournalDir, TempDir, SimDir} {
		if err := shard.MkdirAllSync(filepath.Join(outDir, d)); err != nil {
			return nil, fmt.Errorf("rank: preparing %s: %w", outDir, err)
		}
	}
	if err := w.resume(); err != nil {
		return nil, err
	}
	if err := w.startJournal(); err != nil {
		return nil, err
	}
	return w, nil
}

// resume reads every existing journal: it collects committed scenarios and
// refuses journals of another case or layout.
func (w *Writer) resume() error {
	return scanJournals(w.out, w.cas, func(p string, o *manifest.OpenInfo, r *manifest.Record) error {
		switch {
		case r.Open != nil:
			if o.Phase != manifest.PhaseSimulation {
				return nil // a training journal: only the case must agree
			}
			if o.Scenarios != w.opts.Scenarios {
				return &CaseMismatchError{Journal: p, What: "scenario count", Have: fmt.Sprint(o.Scenarios), Want: fmt.Sprint(w.opts.Scenarios)}
			}
			if o.Layout.ScenarioPad != w.layout.ScenarioPad {
				return &CaseMismatchError{Journal: p, What: "scenario padding", Have: fmt.Sprint(o.Layout.ScenarioPad), Want: fmt.Sprint(w.layout.ScenarioPad)}
			}
		case r.Commit != nil:
			w.committed[r.Commit.Scenario] = true
		}
		return nil
	})
}

func (w *Writer) startJournal() error {
	name, err := writerName(w.id, "")
	if err != nil {
		return err
	}
	open := openInfo(name, w.id, w.cas, w.opts.Solver, w.opts.Threads)
	open.Scenarios = w.opts.Scenarios
	open.Layout = w.layout
	j, err := createJournal(w.out, name, w.opts.Now, open)
	if err != nil {
		return err
	}
	w.name, w.journal = name, j
	return nil
}

// append writes one record and fsyncs the journal. Callers hold w.mu.
func (w *Writer) append(r *manifest.Record) error { return w.journal.append(r) }

// Identity returns the writer's rank identity.
func (w *Writer) Identity() Identity { return w.id }

// JournalPath returns the path of this writer's journal.
func (w *Writer) JournalPath() string { return filepath.Join(w.out, JournalDir, w.name+JournalSuffix) }

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

// Pending returns the scenarios of owned that are not committed yet.
func (w *Writer) Pending(owned []int) []int {
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

// WriteScenario commits one scenario: every table is encoded into a temp
// file under _shards/tmp and fsynced; one commit record is appended to the
// journal and fsynced (the commit point); then each file is renamed into
// simulation/<entity>/scenario_id=N/data.parquet and its directory fsynced.
// A crash before the commit point leaves only temp garbage; after it, the
// merge finishes the renames. The caller's slices are read, never kept.
func (w *Writer) WriteScenario(ctx context.Context, s *shard.Scenario) error {
	if err := w.enter(ctx, "WriteScenario"); err != nil {
		return err
	}
	defer w.mu.Unlock()
	if s == nil {
		return errors.New("rank: WriteScenario: nil scenario")
	}
	if s.ID < 0 || s.ID >= w.opts.Scenarios {
		return &ScenarioError{Scenario: s.ID, Err: fmt.Errorf("id out of range: the run has scenarios 0..%d", w.opts.Scenarios-1)}
	}
	if w.committed[s.ID] {
		return &ScenarioError{Scenario: s.ID, Err: ErrCommitted}
	}
	tables, err := w.checkTables(s)
	if err != nil {
		return &ScenarioError{Scenario: s.ID, Err: err}
	}
	cost, err := costSummary(s.Costs, w.cas.Stages)
	if err != nil {
		return &ScenarioError{Scenario: s.ID, Err: err}
	}
	files, err := w.encode(s.ID, tables)
	if err != nil {
		// Bad input leaves the writer usable; I/O trouble does not.
		var ce *shard.ColumnError
		var be *shard.BadRowError
		if errors.As(err, &ce) || errors.As(err, &be) {
			return &ScenarioError{Scenario: s.ID, Err: err}
		}
		w.err = &ScenarioError{Scenario: s.ID, Err: err}
		return w.err
	}
	rec := &manifest.Record{Type: manifest.RecordCommit, Commit: &manifest.CommitInfo{Scenario: s.ID, Files: files, Cost: cost}}
	if err := w.append(rec); err != nil {
		// The line may be half written: the journal can take no more.
		w.err = &ScenarioError{Scenario: s.ID, Err: err}
		return w.err
	}
	w.committed[s.ID] = true
	w.mine++
	if err := w.publish(files); err != nil {
		w.err = &ScenarioError{Scenario: s.ID, Err: fmt.Errorf("committed, but %w (the merge will finish it)", err)}
		return w.err
	}
	return nil
}

// checkTables pairs the scenario's tables with the case: every entity type
// of the case must be present, no other.
func (w *Writer) checkTables(s *shard.Scenario) ([]shard.TableRows, error) {
	tables := s.Tables()
	have := map[string]bool{}
	for _, t := range tables {
		if !w.entities[t.Table.Entity] {
			return nil, fmt.Errorf("has a %s table but case %s has no such entities", t.Table.Entity, w.cas.Name)
		}
		have[t.Table.Entity] = true
	}
	for _, e := range w.cas.Entities() {
		if !have[e] {
			return nil, fmt.Errorf("has no %s table but case %s has such entities", e, w.cas.Name)
		}
	}
	return tables, nil
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

func (w *Writer) tempName(scenario int, entity string) string {
	return path.Join(TempDir, fmt.Sprintf("%s.s%d.%s%s", w.name, scenario, strings.ReplaceAll(entity, "/", "-"), shard.TempSuffix))
}

// FinalPath returns the committed path of an entity table of a scenario,
// relative to the output directory.
func FinalPath(layout manifest.Layout, entity string, scenario int) string {
	return path.Join(SimDir, entity, layout.PartitionDir(scenario), "data.parquet")
}

// encode writes every table to its temp file on the worker pool.
func (w *Writer) encode(scenario int, tables []shard.TableRows) ([]manifest.FileRecord, error) {
	files := make([]manifest.FileRecord, len(tables))
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		enc := <-w.encoders
		wg.Add(1)
		go func() {
			defer func() { w.encoders <- enc; wg.Done() }()
			tmp := w.tempName(scenario, t.Table.Entity)
			info, err := enc.WriteTemp(filepath.Join(w.out, tmp), t, w.cas)
			if err != nil {
				errs[i] = err
				return
			}
			files[i] = manifest.FileRecord{
				Entity: t.Table.Entity,
				Temp:   tmp,
				Path:   FinalPath(w.layout, t.Table.Entity, scenario),
				Rows:   info.Rows,
				Bytes:  info.Bytes,
				XXH64:  manifest.FormatXXH64(info.XXH64),
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, f := range files {
			if f.Temp != "" {
				_ = os.Remove(filepath.Join(w.out, f.Temp))
			}
		}
		return nil, err
	}
	return files, nil
}

// publish renames committed temp files into place. A final file that
// already exists is left alone when it has the same bytes (a duplicate
// attempt) and reported otherwise; it is never overwritten.
func (w *Writer) publish(files []manifest.FileRecord) error {
	return PublishFiles(w.out, files)
}

// PublishFiles moves the temp files of one commit to their final paths and
// fsyncs the directories. It is idempotent, so the merge uses it to roll a
// commit forward: files already in place with the committed checksum are
// fine; an existing final file with other bytes is a *ConflictError and
// is never replaced.
func PublishFiles(out string, files []manifest.FileRecord) error {
	for _, f := range files {
		final := filepath.Join(out, f.Path)
		tmp := filepath.Join(out, f.Temp)
		if err := shard.MkdirAllSync(filepath.Dir(final)); err != nil {
			return err
		}
		if err := faults.Hit(faults.Rename); err != nil {
			return fmt.Errorf("renaming %s: %w", tmp, err)
		}
		err := shard.Publish(tmp, final)
		if errors.Is(err, shard.ErrExists) {
			info, herr := shard.HashFile(final)
			if herr != nil {
				return herr
			}
			if manifest.FormatXXH64(info.XXH64) != f.XXH64 || info.Bytes != f.Bytes {
				return &ConflictError{Path: f.Path, Want: f.XXH64, Have: manifest.FormatXXH64(info.XXH64)}
			}
			// Same bytes are already in place: the temp copy is redundant.
			if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return rerr
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := faults.Hit(faults.DirSync); err != nil {
			return fmt.Errorf("fsync %s: %w", filepath.Dir(final), err)
		}
		if err := shard.SyncDir(filepath.Dir(final)); err != nil {
			return err
		}
	}
	return nil
}

// ConflictError reports a final file whose bytes differ from a commit's.
type ConflictError struct {
	Path       string
	Want, Have string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s exists with xxh64 %s, the commit says %s (not overwritten)", e.Path, e.Have, e.Want)
}

// HandleSignals returns a context that is cancelled when the process gets
// SIGTERM or SIGINT (SLURM's --signal, scancel, Ctrl-C). The scenario in
// progress finishes; the caller should stop starting new ones when the
// context is done and call Close, which then records the journal as
// interrupted. Call the returned stop function to restore default handling.
func (w *Writer) HandleSignals(parent context.Context) (context.Context, func()) {
	return w.sig.handle(parent)
}

// Interrupted reports whether HandleSignals saw a signal.
func (w *Writer) Interrupted() bool { return w.sig.interrupted() }

// Close ends the journal with a close record: "clean", "interrupted" when a
// signal arrived, or "failed" after an error (which Close returns).
func (w *Writer) Close() error {
	return w.close(manifest.StatusClean, "")
}

// CloseInterrupted ends the journal as interrupted, for callers that stop
// early for reasons of their own.
func (w *Writer) CloseInterrupted(reason string) error {
	return w.close(manifest.StatusInterrupted, reason)
}

func (w *Writer) close(status, reason string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if status == manifest.StatusClean && w.Interrupted() {
		status, reason = manifest.StatusInterrupted, "signal"
	}
	if w.err != nil {
		status, reason = manifest.StatusFailed, w.err.Error()
	}
	aerr, cerr := w.journal.close(&manifest.CloseInfo{Status: status, Committed: w.mine, Reason: reason})
	if w.err != nil {
		return w.err
	}
	if aerr != nil {
		w.err = aerr
		return aerr
	}
	return cerr
}
