package hydroshard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// RankOptions is the one set of options of a rank: who it is, the case,
// and what its simulation and training writers share. OpenRank takes
// them once; Rank.Simulation and Rank.Training open their writers with
// them (SimulationOptions and TrainingOptions say exactly how).
type RankOptions struct {
	// Identity is this rank's identity. Nil: it is detected from the
	// launcher's environment (rank.DetectIdentity: OpenMPI, PMI, PMIx,
	// then SLURM variables), read through Env.
	Identity *rank.Identity
	// Env is the environment DetectIdentity reads (default os.LookupEnv);
	// ignored when Identity is given.
	Env func(string) (string, bool)

	// Case is the study case, filled from the solver's input. When nil,
	// CasePath is loaded with LoadCase: a case.json file, a directory
	// holding one, or the name of an example case (tiny, demo). Exactly
	// one of the two must be given.
	Case     *manifest.Case
	CasePath string

	// The simulation writer's options (rank.Options): the run's scenario
	// count, partition padding, ownership rule, rerun list, encoding
	// workers and queue. Scenarios is required by Simulation only.
	Scenarios   int
	ScenarioPad int
	Ownership   rank.Ownership
	RerunFile   string
	Workers     int
	Queue       int

	// Training is the training configuration (rank.TrainingOptions.Config).
	// The root rank (rank 0) must give it (ForwardPasses >= 1) to open a
	// training writer; the other ranks may.
	Training manifest.TrainingConfig

	// Shared by both writers (see rank.Options): the solver's name and
	// threads per rank (recorded in the journals and metadata.json), the
	// clock of journal timestamps, the file system, the lease renewal
	// interval.
	Solver        string
	Threads       int
	Now           func() time.Time
	FS            vfs.FS
	LeaseInterval time.Duration
}

// SimulationOptions returns the rank.Options that Rank.Simulation opens
// the simulation writer with.
func (o RankOptions) SimulationOptions() rank.Options {
	return rank.Options{
		Scenarios:     o.Scenarios,
		ScenarioPad:   o.ScenarioPad,
		Ownership:     o.Ownership,
		RerunFile:     o.RerunFile,
		Workers:       o.Workers,
		Queue:         o.Queue,
		Solver:        o.Solver,
		Threads:       o.Threads,
		Now:           o.Now,
		FS:            o.FS,
		LeaseInterval: o.LeaseInterval,
	}
}

// TrainingOptions returns the rank.TrainingOptions that Rank.Training
// opens the training writer with (and Rank.TrainingDone reads with).
func (o RankOptions) TrainingOptions() rank.TrainingOptions {
	return rank.TrainingOptions{
		Config:        o.Training,
		Solver:        o.Solver,
		Threads:       o.Threads,
		Now:           o.Now,
		FS:            o.FS,
		LeaseInterval: o.LeaseInterval,
	}
}

// Rank is one solver rank's door to the output layer: its identity, its
// case, and its writers, opened on first use with one set of options:
// Simulation (rank.Writer: scenarios), Training (rank.TrainingWriter:
// iterations and policy checkpoints). HandleSignals covers every writer,
// open or opened later; Close closes whatever was opened.
//
// Rank is thin: the writers it returns are the rank package's, used
// directly (WriteScenario, Remaining, WriteIteration, WriteCheckpoint,
// CloseTerminated, ...), with the rank package's guarantees. A solver may
// keep using rank.Open and rank.OpenTraining instead; nothing differs on
// disk.
//
// Concurrency: every method is safe for concurrent use. The writers are
// goroutine-safe themselves (see rank.Writer).
type Rank struct {
	out   string
	id    rank.Identity
	cas   *manifest.Case
	opts  RankOptions
	owned []int

	mu        sync.Mutex
	signalled bool // a HandleSignals handler saw SIGTERM or SIGINT: every writer is interrupted
	closed    bool
	sim       *rank.Writer
	train     *rank.TrainingWriter
}

// OpenRank prepares this process's rank of a study writing to out: it
// takes opts.Identity or detects it from the launcher's environment
// (a *rank.IdentityError when there is none or it is malformed: there is
// no silent rank 0), takes opts.Case or loads opts.CasePath (LoadCase),
// validates the case, and, when opts.Scenarios is set, works out this
// rank's scenarios (Owned; a bad opts.RerunFile is a *rank.RerunListError
// here, before any work). It touches nothing on disk: the first
// Simulation or Training creates the directories and its journal.
func OpenRank(ctx context.Context, out string, opts RankOptions) (*Rank, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if out == "" {
		return nil, errors.New("hydroshard: OpenRank: no output directory")
	}
	var id rank.Identity
	if opts.Identity != nil {
		id = *opts.Identity
		if err := id.Validate(); err != nil {
			return nil, err
		}
	} else {
		env := opts.Env
		if env == nil {
			env = os.LookupEnv
		}
		var err error
		if id, err = rank.DetectIdentity(env); err != nil {
			return nil, err
		}
	}
	c := opts.Case
	switch {
	case c != nil && opts.CasePath != "":
		return nil, fmt.Errorf("hydroshard: OpenRank: RankOptions.Case and CasePath (%q) both given: give one", opts.CasePath)
	case c == nil && opts.CasePath == "":
		return nil, errors.New("hydroshard: OpenRank: no case: set RankOptions.Case or CasePath")
	case c == nil:
		var err error
		if c, err = LoadCase(opts.CasePath); err != nil {
			return nil, err
		}
	default:
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("hydroshard: case %s: %w", c.Name, err)
		}
	}
	r := &Rank{out: out, id: id, cas: c, opts: opts}
	if opts.Scenarios != 0 {
		owned, err := rank.MyScenarios(opts.Scenarios, id, opts.Ownership, opts.RerunFile)
		if err != nil {
			return nil, err
		}
		r.owned = owned
	}
	return r, nil
}

// ErrNoCase is LoadCase's error for a name that is neither a path nor an
// example case (a command reports it as a usage error).
var ErrNoCase = errors.New("no such file or directory, and not an example case (tiny, demo)")

// LoadCase loads a case: name is a case.json file or a directory holding
// one (manifest.LoadCase) when such a path exists, else the name of an
// example case embedded in this module (Cases: tiny, demo), so that a
// binary finds those from any directory.
func LoadCase(name string) (*manifest.Case, error) {
	if _, err := os.Stat(name); err == nil {
		return manifest.LoadCase(name)
	}
	f, err := Cases.Open(path.Join("testdata/cases", name, "case.json"))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
		return nil, fmt.Errorf("case %q: %w", name, ErrNoCase)
	}
	if err != nil {
		return nil, fmt.Errorf("example case %s: %w", name, err)
	}
	defer f.Close()
	c, err := manifest.DecodeCase(f)
	if err != nil {
		return nil, fmt.Errorf("example case %s: %w", name, err)
	}
	return c, nil
}

// Out returns the output directory.
func (r *Rank) Out() string { return r.out }

// Identity returns this rank's identity.
func (r *Rank) Identity() rank.Identity { return r.id }

// Case returns the case the writers record. It is shared: do not modify it.
func (r *Rank) Case() *manifest.Case { return r.cas }

// Options returns the options OpenRank was given.
func (r *Rank) Options() RankOptions { return r.opts }

// Owned returns, ascending, the scenarios this rank is to write (its share
// of 0..Scenarios-1, or of the rerun list's ids: rank.MyScenarios), as
// OpenRank worked them out; nil when RankOptions.Scenarios is 0. The
// simulation writer's Remaining leaves out those committed already.
func (r *Rank) Owned() []int { return append([]int(nil), r.owned...) }

// Simulation returns the rank's simulation writer, opening it on the
// first call (rank.Open with SimulationOptions; it reads the journals
// already in out, so a requeued rank resumes) and returning the same
// writer on later calls. A failed open keeps nothing: a later call tries
// again. After Close it returns an error matching rank.ErrClosed.
func (r *Rank) Simulation(ctx context.Context) (*rank.Writer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("hydroshard: Rank.Simulation after Close: %w", rank.ErrClosed)
	}
	if r.sim != nil {
		return r.sim, nil
	}
	w, err := rank.Open(ctx, r.out, r.id, r.cas, r.opts.SimulationOptions())
	if err != nil {
		return nil, err
	}
	r.sim = w
	if r.signalled {
		w.Interrupt() // opened after the signal
	}
	return w, nil
}

// Training returns the rank's training writer, opening it on the first
// call (rank.OpenTraining with TrainingOptions: it finds the iterations
// this rank made durable before, LastIteration) and returning the same
// writer on later calls, closed or not. Its WriteCheckpoint writes the
// rank's policy checkpoint fragments. Close it with CloseTerminated to
// record why training stopped; Rank.Close closes it otherwise. A finished
// training should not be opened again: ask TrainingDone first. After Close
// it returns an error matching rank.ErrClosed.
func (r *Rank) Training(ctx context.Context) (*rank.TrainingWriter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("hydroshard: Rank.Training after Close: %w", rank.ErrClosed)
	}
	if r.train != nil {
		return r.train, nil
	}
	w, err := rank.OpenTraining(ctx, r.out, r.id, r.cas, r.opts.TrainingOptions())
	if err != nil {
		return nil, err
	}
	r.train = w
	if r.signalled {
		w.Interrupt() // opened after the signal
	}
	return w, nil
}

// TrainingDone reports whether the training recorded in out is finished
// (rank.TrainingDone with TrainingOptions): a rerun of missing scenarios
// then skips training and may run on any number of ranks. It only reads.
func (r *Rank) TrainingDone(ctx context.Context) (rank.TrainingState, error) {
	return rank.TrainingDone(ctx, r.out, r.cas, r.opts.TrainingOptions())
}

// HandleSignals returns a context that is cancelled when the process gets
// SIGTERM or SIGINT (SLURM's --signal, scancel, Ctrl-C). On the signal it
// interrupts every writer open then, and every writer opened later
// (Writer.Interrupt, TrainingWriter.Interrupt), before the context ends:
// the simulation writer drops the queued scenarios it has not started,
// and Close records each journal as interrupted (termination "signal").
// The caller
// should stop starting work when the context is done and call Close. The
// returned stop function restores default handling; it may be called more
// than once.
func (r *Rank) HandleSignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			// Every writer is interrupted before the caller sees ctx done.
			r.mu.Lock()
			r.signalled = true
			if r.sim != nil {
				r.sim.Interrupt()
			}
			if r.train != nil {
				r.train.Interrupt()
			}
			r.mu.Unlock()
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
}

// Interrupted reports whether a signal reached this rank's handling
// (HandleSignals) or one of its writers'.
func (r *Rank) Interrupted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.signalled || (r.sim != nil && r.sim.Interrupted()) || (r.train != nil && r.train.Interrupted())
}

// Close closes every writer that was opened and that the caller has not
// closed itself, and returns what went wrong (errors.Join of the writers'
// outcomes; a writer the caller closed already is not an error):
//
//   - the training writer with TrainingWriter.Close: "clean", or
//     "interrupted" after a signal. Close it yourself with CloseTerminated
//     to record why training stopped;
//   - the simulation writer with Writer.CloseContext(ctx): it waits until
//     every accepted scenario is committed; when ctx ends first, the
//     scenarios not fully encoded are dropped for a rerun and the journal
//     is closed as interrupted.
//
// A writer opened after the signal is closed as interrupted too.
// Give Close a context for the shutdown (a deadline), not the one
// HandleSignals returned: after SIGTERM that one is done already, and
// every queued scenario would be dropped at once.
//
// The first Close returns the outcome; every later one returns an error
// matching rank.ErrClosed, and so do Simulation and Training.
func (r *Rank) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("hydroshard: Rank.Close: %w", rank.ErrClosed)
	}
	r.closed = true
	sim, train := r.sim, r.train
	r.mu.Unlock()
	var errs []error
	keep := func(err error) {
		if err != nil && !errors.Is(err, rank.ErrClosed) {
			errs = append(errs, err)
		}
	}
	// After a signal every writer is interrupted (HandleSignals, or at its
	// opening): each records it.
	if train != nil {
		keep(train.Close())
	}
	if sim != nil {
		keep(sim.CloseContext(ctx))
	}
	return errors.Join(errs...)
}
