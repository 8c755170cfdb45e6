package rank

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// Termination reasons a training journal's close record carries
// (manifest.CloseInfo.Termination). A solver may record others.
const (
	TerminationConverged      = "converged"
	TerminationIterationLimit = "iteration_limit"
	TerminationSignal         = "signal"
)

// TrainingOptions tune a TrainingWriter.
type TrainingOptions struct {
	// Config is the training configuration. The root rank (rank 0) must
	// give it (ForwardPasses >= 1): the merge takes training/metadata.json
	// "configuration" from it. Other ranks may give it too; a non-zero
	// Config is recorded in the open record of any rank.
	Config manifest.TrainingConfig
	// Solver names the program (default "unknown"); Threads is the number
	// of solver threads per rank, when known.
	Solver  string
	Threads int
	// Now is the clock for journal timestamps (default time.Now).
	Now func() time.Time
	// FS is the file system the writer uses (default vfs.OS()).
	FS vfs.FS
	// LeaseInterval is how often the writer renews its lease (default
	// lease.DefaultInterval; see Options.LeaseInterval).
	LeaseInterval time.Duration
}

// ErrIterationOrder is wrapped by an *IterationError for an iteration that
// is not the next one of its rank: already durable, or after a gap.
var ErrIterationOrder = errors.New("rank: iteration out of order")

// IterationError wraps an error with the rank and iteration it concerns.
type IterationError struct {
	Rank      int
	Iteration int
	Err       error
}

func (e *IterationError) Error() string {
	return fmt.Sprintf("rank %d iteration %d: %v", e.Rank, e.Iteration, e.Err)
}
func (e *IterationError) Unwrap() error { return e.Err }

// TrainingWriter journals one rank's training history: one "iteration"
// record per completed iteration, appended and fsynced (the iteration is
// durable when WriteIteration returns nil). It uses the same journal
// discipline as Writer, in a journal file of its own whose open record has
// Phase manifest.PhaseTraining and Scenarios = Config.ForwardPasses (0 when
// not given).
//
// Resume: OpenTraining reads every journal in the output directory and
// finds the last iteration this rank made durable in any earlier training
// attempt (LastIteration); the writer accepts only the iteration after it,
// so a requeued rank continues where it stopped and never records an
// iteration twice. A crash loses at most the iteration in progress.
//
// Methods are safe for concurrent use. After an I/O error the writer is
// broken: every later call returns that error and Close records the
// failure when the journal can still take it. Invalid rows are refused
// with an error and leave the writer usable. After Close, every
// WriteIteration, WriteCheckpoint and Close returns an error matching
// ErrClosed.
type TrainingWriter struct {
	out  string
	fsys vfs.FS
	dirs *vfs.Dirs
	id   Identity
	cas  *manifest.Case
	opts TrainingOptions
	name string

	writerState
	journal *journal.Writer
	lease   *lease.Lease
	last    int // last durable iteration of this rank, any attempt
	resumed int // last at Open
	mine    int
	sig     *signalState
	ckpt    checkpointState
}

// OpenTraining prepares out for this rank's training journal: it creates
// the directories, reads the journals already there and starts a new
// training journal with an open record.
//
// Existing journals are checked: a journal of another case (any phase) is a
// *CaseMismatchError, and so is a training journal written with another
// world size, or with another seed or forward-pass count when both record
// a configuration (a resumed training must be the same training; the
// iteration limit may change). The world size is refused even when this
// rank's own iterations are all there: a new rank count would restart the
// iterations, so an unfinished training resumes only with its own world
// size. A finished one need not be opened at all: ask TrainingDone first
// (a rerun of simulation scenarios on another rank count must, or it
// fails here). This rank's earlier iterations must run
// 1..LastIteration without a gap (a gap means a journal was removed), and
// LastIteration must not exceed Config.MaxIterations when that is set. A
// running rank of the same job and attempt with another world size is a
// *WorldMismatchError, as in Open.
func OpenTraining(ctx context.Context, out string, id Identity, c *manifest.Case, opts TrainingOptions) (*TrainingWriter, error) {
	if err := checkOpen(ctx, "OpenTraining", id, c); err != nil {
		return nil, err
	}
	if err := checkTrainingConfig(opts.Config, id.Rank); err != nil {
		return nil, err
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
	fsys, err := confine(opts.FS, out)
	if err != nil {
		return nil, err
	}
	opts.FS = fsys
	w := &TrainingWriter{out: out, fsys: opts.FS, dirs: vfs.NewDirs(opts.FS, out), id: id, cas: c, opts: opts, sig: newSignalState()}
	if err := w.dirs.Ensure(layout.Join(out, layout.JournalDir)); err != nil {
		return nil, fmt.Errorf("rank: preparing %s: %w", out, err)
	}
	world := newWorldCheck(id)
	if err := w.resume(world); err != nil {
		return nil, err
	}
	if err := world.verdict(ctx, w.fsys, out); err != nil {
		return nil, err
	}
	name, err := writerName(id, layout.TrainingTag)
	if err != nil {
		return nil, err
	}
	open := openInfo(name, id, c, opts.Solver, opts.Threads)
	open.Phase = manifest.PhaseTraining
	open.Scenarios = opts.Config.ForwardPasses
	if opts.Config != (manifest.TrainingConfig{}) {
		cfg := opts.Config
		open.Training = &cfg
	}
	j, l, err := startJournal(w.dirs, out, name, id.Rank, opts.Now, opts.LeaseInterval, open)
	if err != nil {
		return nil, err
	}
	if err := world.recheck(ctx, w.fsys, out, name); err != nil {
		_, _ = endJournal(j, l, &manifest.CloseInfo{Status: manifest.StatusFailed, Reason: err.Error()})
		return nil, err
	}
	w.name, w.journal, w.lease = name, j, l
	return w, nil
}

func checkTrainingConfig(cfg manifest.TrainingConfig, rank int) error {
	switch {
	case cfg.MaxIterations < 0:
		return fmt.Errorf("rank: TrainingOptions.Config.MaxIterations = %d, want >= 0 (0: no limit)", cfg.MaxIterations)
	case cfg.ForwardPasses < 0:
		return fmt.Errorf("rank: TrainingOptions.Config.ForwardPasses = %d, want >= 1", cfg.ForwardPasses)
	case rank == 0 && cfg.ForwardPasses < 1:
		return errors.New("rank: TrainingOptions.Config: the root rank must give the training configuration (ForwardPasses >= 1)")
	case !(cfg.GapTolerance >= 0) || math.IsInf(cfg.GapTolerance, 0):
		return fmt.Errorf("rank: TrainingOptions.Config.GapTolerance = %v, want a finite value >= 0", cfg.GapTolerance)
	}
	return nil
}

// resume reads the existing journals: the case must agree (all phases);
// training journals must agree on world size and configuration; this
// rank's durable iterations give LastIteration.
func (w *TrainingWriter) resume(world *worldCheck) error {
	seen := map[int]string{} // this rank's durable iterations -> a journal holding it
	cfg := w.opts.Config
	err := scanJournals(w.fsys, w.out, w.cas, func(p string, o *manifest.OpenInfo, r *manifest.Record) error {
		if r.Open != nil {
			world.note(p, o)
		}
		if o.Phase != manifest.PhaseTraining {
			return nil
		}
		switch {
		case r.Open != nil:
			if o.World != w.id.World {
				return &CaseMismatchError{Journal: p, What: "training world size", Have: fmt.Sprint(o.World), Want: fmt.Sprint(w.id.World)}
			}
			if t := o.Training; t != nil && cfg.ForwardPasses > 0 && t.ForwardPasses > 0 {
				if t.ForwardPasses != cfg.ForwardPasses {
					return &CaseMismatchError{Journal: p, What: "training forward passes", Have: fmt.Sprint(t.ForwardPasses), Want: fmt.Sprint(cfg.ForwardPasses)}
				}
				if t.Seed != cfg.Seed {
					return &CaseMismatchError{Journal: p, What: "training seed", Have: fmt.Sprint(t.Seed), Want: fmt.Sprint(cfg.Seed)}
				}
			}
		case r.Iteration != nil && o.Rank == w.id.Rank:
			it := r.Iteration.Iteration
			if it < 1 {
				return fmt.Errorf("rank %d: iteration %d recorded, want >= 1", o.Rank, it)
			}
			seen[it] = p
			w.last = max(w.last, it)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for it := 1; it <= w.last; it++ {
		if _, ok := seen[it]; !ok {
			return fmt.Errorf("rank: rank %d: the training journals hold iteration %d (in %s) but not iteration %d: a journal was removed or damaged; resuming would leave a gap", w.id.Rank, w.last, seen[w.last], it)
		}
	}
	if m := cfg.MaxIterations; m > 0 && w.last > m {
		return fmt.Errorf("rank: rank %d already recorded iteration %d (in %s), beyond this run's max_iterations %d", w.id.Rank, w.last, seen[w.last], m)
	}
	w.resumed = w.last
	return nil
}

// Identity returns the writer's rank identity.
func (w *TrainingWriter) Identity() Identity { return w.id }

// JournalPath returns the path of this writer's journal.
func (w *TrainingWriter) JournalPath() string { return w.journal.Path() }

// LastIteration returns the last iteration this rank made durable, in an
// earlier attempt or through this writer; 0 if none. The next
// WriteIteration must be LastIteration()+1.
func (w *TrainingWriter) LastIteration() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// ResumedFrom returns LastIteration as it was at OpenTraining: the
// iterations earlier attempts of this rank made durable.
func (w *TrainingWriter) ResumedFrom() int { return w.resumed }

// Written returns how many iterations this writer made durable.
func (w *TrainingWriter) Written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mine
}

// WriteIteration appends one completed iteration's record and fsyncs it:
// when it returns nil the iteration is durable. info.Iteration must be
// LastIteration()+1 (and at most Config.MaxIterations when that is set).
// Rows are checked: the root rank (rank 0) must include the convergence
// row and other ranks must not; Timing holds this rank's rank-level row
// (WorkerID nil) and then one row per worker, WorkerID 0, 1, ...; MPIRank
// is this rank's row; every row's iteration and rank are this iteration's
// and this rank's. The caller's rows are read, never kept.
func (w *TrainingWriter) WriteIteration(ctx context.Context, info manifest.IterationInfo) error {
	if err := w.enter(ctx, "WriteIteration"); err != nil {
		return err
	}
	defer w.mu.Unlock()
	ierr := func(err error) error { return &IterationError{Rank: w.id.Rank, Iteration: info.Iteration, Err: err} }
	if info.Iteration != w.last+1 {
		how := "after a gap"
		if info.Iteration <= w.last {
			how = "already durable"
		}
		return ierr(fmt.Errorf("%w (%s): this rank's last durable iteration is %d, the next must be %d", ErrIterationOrder, how, w.last, w.last+1))
	}
	if m := w.opts.Config.MaxIterations; m > 0 && info.Iteration > m {
		return ierr(fmt.Errorf("beyond max_iterations %d", m))
	}
	if err := checkIteration(&info, w.id.Rank); err != nil {
		return ierr(err)
	}
	if err := appendRecord(w.journal, w.lease, &manifest.Record{Type: manifest.RecordIteration, Iteration: &info}); err != nil {
		w.err = ierr(err)
		return w.err
	}
	w.last = info.Iteration
	w.mine++
	return nil
}

// checkIteration applies the row rules of WriteIteration.
func checkIteration(info *manifest.IterationInfo, rank int) error {
	it := info.Iteration
	if it < 1 || it > math.MaxInt32 {
		return fmt.Errorf("iteration number %d out of range 1..%d", it, math.MaxInt32)
	}
	if rank == 0 && info.Convergence == nil {
		return errors.New("the root rank (rank 0) must record the convergence row")
	}
	if rank != 0 && info.Convergence != nil {
		return errors.New("only the root rank (rank 0) records the convergence row")
	}
	if cv := info.Convergence; cv != nil {
		if int(cv.Iteration) != it {
			return fmt.Errorf("convergence row has iteration %d", cv.Iteration)
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"lower_bound", cv.LowerBound}, {"upper_bound_mean", cv.UpperBoundMean}, {"upper_bound_std", cv.UpperBoundStd}} {
			if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
				return fmt.Errorf("convergence row: %s is %v, want a finite value", f.name, f.v)
			}
		}
		if cv.UpperBoundStd < 0 {
			return fmt.Errorf("convergence row: upper_bound_std %v < 0", cv.UpperBoundStd)
		}
		if g := cv.GapPercent; g != nil && (math.IsNaN(*g) || math.IsInf(*g, 0)) {
			return fmt.Errorf("convergence row: gap_percent is %v, want a finite value or null", *g)
		}
		if err := nonNegative("convergence row", []named{{"cuts_added", int64(cv.CutsAdded)}, {"cuts_removed", int64(cv.CutsRemoved)},
			{"cuts_active", cv.CutsActive}, {"time_forward_ms", cv.TimeForwardMs}, {"time_backward_ms", cv.TimeBackwardMs},
			{"time_total_ms", cv.TimeTotalMs}, {"forward_passes", int64(cv.ForwardPasses)}, {"lp_solves", cv.LPSolves}}); err != nil {
			return err
		}
	}
	if len(info.Timing) == 0 {
		return errors.New("no timing rows: want the rank-level row (worker_id null), then one per worker")
	}
	for k, t := range info.Timing {
		where := fmt.Sprintf("timing row %d", k)
		if int(t.Iteration) != it {
			return fmt.Errorf("%s has iteration %d", where, t.Iteration)
		}
		if t.Rank == nil || int(*t.Rank) != rank {
			return fmt.Errorf("%s has rank %s, want %d", where, fmtPtr(t.Rank), rank)
		}
		switch {
		case k == 0 && t.WorkerID != nil:
			return fmt.Errorf("%s has worker_id %d, want null (the first row is the rank-level row)", where, *t.WorkerID)
		case k > 0 && (t.WorkerID == nil || int(*t.WorkerID) != k-1):
			return fmt.Errorf("%s has worker_id %s, want %d (worker rows follow the rank row in order 0, 1, ...)", where, fmtPtr(t.WorkerID), k-1)
		}
		if err := nonNegative(where, []named{{"forward_wall_ms", t.ForwardWallMs}, {"backward_wall_ms", t.BackwardWallMs},
			{"cut_selection_ms", t.CutSelectionMs}, {"mpi_allreduce_ms", t.MPIAllreduceMs}, {"cut_sync_ms", t.CutSyncMs},
			{"lower_bound_ms", t.LowerBoundMs}, {"state_exchange_ms", t.StateExchangeMs}, {"cut_batch_build_ms", t.CutBatchBuildMs},
			{"bwd_setup_ms", t.BwdSetupMs}, {"bwd_load_imbalance_ms", t.BwdLoadImbalanceMs}, {"bwd_scheduling_overhead_ms", t.BwdSchedulingOverheadMs},
			{"fwd_setup_ms", t.FwdSetupMs}, {"fwd_load_imbalance_ms", t.FwdLoadImbalanceMs}, {"fwd_scheduling_overhead_ms", t.FwdSchedulingOverheadMs},
			{"overhead_ms", t.OverheadMs}}); err != nil {
			return err
		}
	}
	m := info.MPIRank
	if m == nil {
		return errors.New("no mpi_rank row: every rank records its row of training/timing/mpi_ranks")
	}
	if int(m.Iteration) != it || int(m.Rank) != rank {
		return fmt.Errorf("mpi_rank row has iteration %d rank %d, want iteration %d rank %d", m.Iteration, m.Rank, it, rank)
	}
	return nonNegative("mpi_rank row", []named{{"forward_time_ms", m.ForwardTimeMs}, {"backward_time_ms", m.BackwardTimeMs},
		{"communication_time_ms", m.CommunicationTimeMs}, {"idle_time_ms", m.IdleTimeMs}, {"lp_solves", m.LPSolves},
		{"scenarios_processed", int64(m.ScenariosProcessed)}})
}

type named struct {
	name string
	v    int64
}

func nonNegative(where string, vs []named) error {
	for _, n := range vs {
		if n.v < 0 {
			return fmt.Errorf("%s: %s is %d, want >= 0", where, n.name, n.v)
		}
	}
	return nil
}

func fmtPtr(p *int32) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// HandleSignals returns a context that is cancelled when the process gets
// SIGTERM or SIGINT. The caller should finish or abandon the iteration in
// progress, stop starting new ones, and call Close, which then records the
// journal as interrupted with termination "signal". Call the returned stop
// function to restore default handling.
func (w *TrainingWriter) HandleSignals(parent context.Context) (context.Context, func()) {
	return w.sig.handle(parent)
}

// Interrupted reports whether HandleSignals saw a signal (or Interrupt was
// called).
func (w *TrainingWriter) Interrupted() bool { return w.sig.interrupted() }

// Interrupt makes the writer act as if its HandleSignals had seen SIGTERM,
// for a caller that handles the signals itself (hydroshard.Rank): Close
// then records the journal as interrupted, termination "signal". Calling
// it again changes nothing.
func (w *TrainingWriter) Interrupt() { w.sig.mark() }

// Close ends the journal: status "clean", or "interrupted" with
// termination "signal" when HandleSignals saw a signal, or "failed" after
// an I/O error (which Close returns). Committed is the number of
// iterations this writer made durable. The first Close (of any kind)
// returns the writer's outcome; every later one, and every
// WriteIteration or WriteCheckpoint, returns an error matching ErrClosed.
func (w *TrainingWriter) Close() error {
	return w.close("Close", manifest.StatusClean, "", "")
}

// CloseTerminated ends the journal of a training that stopped on its own
// terms, recording why: TerminationConverged, TerminationIterationLimit,
// or a reason of the solver's. The status is "clean" even if a signal
// arrived meanwhile (training was over), "failed" after an I/O error.
func (w *TrainingWriter) CloseTerminated(termination string) error {
	if termination == "" {
		return errors.New("rank: CloseTerminated: empty termination reason")
	}
	return w.close("CloseTerminated", manifest.StatusClean, "", termination)
}

// CloseInterrupted ends the journal as interrupted, for callers that stop
// early for reasons of their own; the termination recorded is "signal" if
// a signal arrived, else "interrupted".
func (w *TrainingWriter) CloseInterrupted(reason string) error {
	return w.close("CloseInterrupted", manifest.StatusInterrupted, reason, "")
}

func (w *TrainingWriter) close(op, status, reason, termination string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed(op)
	}
	w.closed = true
	switch {
	case termination != "":
	case w.Interrupted():
		status, termination = manifest.StatusInterrupted, TerminationSignal
		if reason == "" {
			reason = "signal"
		}
	case status == manifest.StatusInterrupted:
		termination = "interrupted"
	}
	if w.err != nil {
		status, reason = manifest.StatusFailed, w.err.Error()
	}
	aerr, cerr := endJournal(w.journal, w.lease, &manifest.CloseInfo{Status: status, Committed: w.mine, Reason: reason, Termination: termination})
	if w.err != nil {
		return w.err
	}
	if aerr != nil {
		w.err = aerr
		return aerr
	}
	return cerr
}

// TrainingState is what the training journals of an output directory
// record, as TrainingDone reads them.
type TrainingState struct {
	// Done: the recorded training is finished and a later run of the same
	// study should not open it again (see TrainingDone).
	Done bool
	// World is the world size of the recorded training (the largest any
	// training journal names); 0 when no training journal exists.
	World int
	// Iterations the root rank recorded, gap-free from 1.
	Iterations int
	// Termination of the root's latest training journal ("" while it is
	// open or when it has none).
	Termination string
	// Reason says why the training is not done ("" when Done).
	Reason string
}

// TrainingDone reads the training journals in out, as OpenTraining's
// resume does, and reports whether the training they record is finished:
// a rank of a later run of the same study (a requeued job, or a rerun of
// missing simulation scenarios on any number of ranks) should then skip
// training rather than call OpenTraining. The rank's own identity plays
// no part: a finished training needs no rank of any world size.
//
// The training is done when all of these hold:
//
//   - every rank 0..World-1 recorded every iteration up to the last one
//     any rank recorded (nothing missing, as the merge counts it);
//   - the root's latest training journal (rank 0, by open time) is closed
//     with status clean, and says training is over: termination
//     "converged" or another reason of the solver's, or, with termination
//     "iteration_limit" or none, the root recorded at least the iteration
//     limit (opts.Config.MaxIterations when set, else the recorded one), so
//     a run that raises the limit continues the training instead;
//   - every rank recorded the latest checkpoint any rank recorded (a rank
//     killed between its last iteration and its checkpoint still owes it).
//
// Otherwise the training is not done and must be resumed with
// OpenTraining, which refuses a different world size (a new rank count
// would restart the iterations); State.World and State.Reason say which
// world and why. A journal of another case, or a recorded training with
// another seed or forward-pass count than opts.Config (when both are
// given), is a *CaseMismatchError, as in OpenTraining. TrainingDone only
// reads: nothing is created, and ranks still training are simply not done.
func TrainingDone(ctx context.Context, out string, c *manifest.Case, opts TrainingOptions) (TrainingState, error) {
	var st TrainingState
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if c == nil {
		return st, errors.New("rank: TrainingDone: nil case")
	}
	if err := checkTrainingConfig(opts.Config, -1); err != nil {
		return st, err
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = vfs.OS()
	}
	type journalOf struct {
		path   string
		open   *manifest.OpenInfo
		opened time.Time
		close  *manifest.CloseInfo
	}
	var (
		js      []*journalOf
		cur     *journalOf
		iters   = map[[2]int]bool{} // (rank, iteration) recorded
		horizon int
		ckpts   = map[[2]int]bool{} // (rank, checkpoint iteration) recorded
		lastCk  int
		limit   int // the root's recorded max_iterations
	)
	if _, err := fsys.Stat(layout.Join(out, layout.JournalDir)); errors.Is(err, fs.ErrNotExist) {
		st.Reason = "no training journal" // a first run: nothing written yet
		return st, nil
	}
	cfg := opts.Config
	err := scanJournals(fsys, out, c, func(p string, o *manifest.OpenInfo, r *manifest.Record) error {
		if o == nil || o.Phase != manifest.PhaseTraining {
			return nil
		}
		switch {
		case r.Open != nil:
			opened, _ := time.Parse(time.RFC3339Nano, r.Time)
			cur = &journalOf{path: p, open: o, opened: opened}
			js = append(js, cur)
			st.World = max(st.World, o.World)
			if t := o.Training; t != nil && cfg.ForwardPasses > 0 && t.ForwardPasses > 0 {
				if t.ForwardPasses != cfg.ForwardPasses {
					return &CaseMismatchError{Journal: p, What: "training forward passes", Have: fmt.Sprint(t.ForwardPasses), Want: fmt.Sprint(cfg.ForwardPasses)}
				}
				if t.Seed != cfg.Seed {
					return &CaseMismatchError{Journal: p, What: "training seed", Have: fmt.Sprint(t.Seed), Want: fmt.Sprint(cfg.Seed)}
				}
			}
		case r.Iteration != nil:
			iters[[2]int{o.Rank, r.Iteration.Iteration}] = true
			horizon = max(horizon, r.Iteration.Iteration)
		case r.Checkpoint != nil:
			ckpts[[2]int{o.Rank, r.Checkpoint.Iteration}] = true
			lastCk = max(lastCk, r.Checkpoint.Iteration)
		case r.Close != nil && cur != nil && cur.path == p:
			cur.close = r.Close
		}
		return nil
	})
	if err != nil {
		return TrainingState{}, err
	}
	if len(js) == 0 {
		st.Reason = "no training journal"
		return st, nil
	}
	var root *journalOf
	for _, j := range js {
		if j.open.Rank != 0 {
			continue
		}
		if root == nil || j.opened.After(root.opened) {
			root = j // the latest, as the merge chooses it
		}
	}
	for iters[[2]int{0, st.Iterations + 1}] {
		st.Iterations++
	}
	if root != nil {
		if root.close != nil {
			st.Termination = root.close.Termination
		}
		if t := root.open.Training; t != nil {
			limit = t.MaxIterations
		}
	}
	if cfg.MaxIterations > 0 {
		limit = cfg.MaxIterations
	}
	ranks := map[int]bool{}
	for _, j := range js {
		ranks[j.open.Rank] = true
	}
	for r := range st.World {
		if !ranks[r] {
			st.Reason = fmt.Sprintf("rank %d of %d has no training journal", r, st.World)
			return st, nil
		}
		for it := 1; it <= horizon; it++ {
			if !iters[[2]int{r, it}] {
				st.Reason = fmt.Sprintf("rank %d of %d lacks iteration %d (iterations recorded up to %d)", r, st.World, it, horizon)
				return st, nil
			}
		}
	}
	switch {
	case root == nil:
		st.Reason = "the root rank (rank 0) has no training journal"
		return st, nil
	case root.close == nil:
		st.Reason = fmt.Sprintf("the root's latest training journal %s is not closed (running, or killed)", root.path)
		return st, nil
	case root.close.Status != manifest.StatusClean:
		st.Reason = fmt.Sprintf("the root's latest training journal %s closed %s", root.path, root.close.Status)
		return st, nil
	}
	switch term := st.Termination; {
	case term == TerminationConverged:
	case term != "" && term != TerminationIterationLimit:
		// The solver stopped for a reason of its own.
	case limit > 0 && st.Iterations < limit:
		st.Reason = fmt.Sprintf("the root recorded %d iterations of max_iterations %d", st.Iterations, limit)
		return st, nil
	case limit == 0 && term == "":
		st.Reason = "the root closed its training without a termination reason and no iteration limit is set"
		return st, nil
	}
	for r := range st.World {
		if lastCk > 0 && !ckpts[[2]int{r, lastCk}] {
			st.Reason = fmt.Sprintf("rank %d of %d lacks the checkpoint of iteration %d", r, st.World, lastCk)
			return st, nil
		}
	}
	st.Done = true
	return st, nil
}
