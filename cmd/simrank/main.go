// Command simrank is a synthetic solver rank: it loads a case, generates
// physically consistent results for the scenarios this rank owns and
// writes them through rank.Writer exactly as a real solver would. It is the
// demo and the load generator.
//
// Launch it like any rank program (srun, mpirun, or a loop that sets
// SLURM_PROCID/SLURM_NTASKS); --rank/--world override the environment.
//
// With --iterations K it first runs a synthetic training phase (before the
// simulation, as a solver does): it journals iterations
// LastIteration()+1..K through rank.TrainingWriter (a requeued rank
// continues after its last durable iteration), closes the training journal
// with termination "iteration_limit", and then simulates. A SIGTERM during
// training closes the training journal as interrupted and skips the
// simulation. A training that rank.TrainingDone finds finished in --out
// (every rank of its world, every iteration and checkpoint, closed by the
// root) is skipped, so a rerun of missing scenarios (--scenarios-from) may
// use any number of ranks; an unfinished one resumes only with its own
// world size (exit 1 otherwise, naming it).
//
// The command line follows merge-shards' conventions (cli.go): flags in
// any order, --help, -h and "simrank help" on stdout with exit 0, one-line
// usage errors. By default it prints one summary line per phase (and a
// progress line on a terminal); -v a line per iteration, checkpoint and
// scenario; --quiet errors and notices only.
//
// Exit codes: 0 done (or interrupted by a signal with the journal closed),
// 1 the run failed (I/O, a bad case: one beyond manifest's MaxStages,
// MaxBlocks, MaxInflowLagOrder or MaxEntities is refused before anything
// is sized from it), 2 usage or launcher environment error (an unknown
// --case included). A rank that
// runs out of memory is not supervised: Go's runtime ends it with exit 2
// and "fatal error: out of memory" on stderr (so exit 2 with "fatal
// error:" on stderr is a crash, not a usage error), and the kernel's OOM
// killer ends it with SIGKILL. Either way what it committed is durable
// and its journal consistent: a rerun continues, the merge lists what is
// missing. merge-shards, whose exit 2 means "corrupt input", supervises
// its own work so that such a death is exit 1 there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/internal/cli"
	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
)

// Exit codes. Go's runtime also exits 2 on a fatal error (out of memory):
// see the package doc.
const (
	exitOK    = 0 // done, or interrupted by a signal with the journal closed
	exitError = 1 // the run failed (I/O, bad case, conflicting journals)
	exitUsage = 2 // bad flags or launcher environment
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	caseName, out, from, ownership string
	scenarios, pad, workers        int
	seed                           uint64
	rank, world                    int
	quiet, verbose                 bool
	iterations, forwardPasses      int
	threads                        int
	iterationDelay                 time.Duration
	scenarioDelay                  time.Duration
	leaseInterval                  time.Duration
	queue                          int
	checkpointEvery                int
	allCuts                        bool
	exportStates                   bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simrank", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed below
	fs.Usage = func() {}
	var c config
	fs.StringVar(&c.caseName, "case", "demo", "case: a builtin (production, xl), a directory with case.json, a JSON file, or a name under testdata/cases/")
	fs.StringVar(&c.out, "out", "", "output directory (required; shared by all ranks)")
	fs.IntVar(&c.scenarios, "scenarios", 16, "scenario count of the whole run (ids 0..N-1)")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed: the same seed gives the same bytes on any rank count")
	fs.IntVar(&c.rank, "rank", -1, "this rank (overrides the launcher environment; needs --world)")
	fs.IntVar(&c.world, "world", -1, "world size (overrides the launcher environment; needs --rank)")
	fs.StringVar(&c.from, "scenarios-from", "", "write only the scenario ids listed in FILE (one per line, as merge-shards --rerun-list writes), shared among the ranks")
	fs.StringVar(&c.ownership, "ownership", "contiguous", "scenario ownership rule: contiguous or round-robin")
	fs.IntVar(&c.pad, "scenario-pad", 0, "zero-pad partition names to this width, 0..12 (4 reproduces Cobre's scenario_id=0042)")
	fs.IntVar(&c.workers, "workers", 0, "encoding goroutines, at least 1: tables of one scenario and of consecutive scenarios at once (default: GOMAXPROCS, at most 4)")
	// A synthetic rank produces scenarios far faster than a solver (or the
	// encoder), so it always fills the writer's queue; 8 keep the workers
	// busy at a fraction of the memory of the writer's default 64.
	fs.IntVar(&c.queue, "queue", 8, "scenarios the writer may hold before WriteScenario blocks (rank.Options.Queue)")
	fs.BoolVar(&c.quiet, "quiet", false, "errors and notices only: no summary lines, no progress line")
	fs.BoolVar(&c.verbose, "v", false, "verbose: also one line per training iteration, checkpoint and queued scenario")
	fs.BoolVar(&c.verbose, "verbose", false, "the same as -v")
	fs.IntVar(&c.iterations, "iterations", 0, "training iterations to run before the simulation (0: no training phase); a rerun continues after the last durable iteration, or skips training once it is done in --out")
	fs.IntVar(&c.forwardPasses, "forward-passes", 8, "forward passes per training iteration, split among the ranks")
	fs.IntVar(&c.threads, "threads", 1, "solver threads per rank: recorded in the journals; training writes one timing row per thread")
	fs.DurationVar(&c.iterationDelay, "iteration-delay", 0, "sleep this long per training iteration, to emulate solve time (demos, preemption tests)")
	fs.DurationVar(&c.leaseInterval, "lease-interval", lease.DefaultInterval, "how often the rank renews its lease, which tells a merge it is alive (rank.Options.LeaseInterval)")
	fs.DurationVar(&c.scenarioDelay, "scenario-delay", 0, "sleep this long before each scenario, to emulate solve time (demos, preemption tests); a signal cuts the sleep short")
	fs.IntVar(&c.checkpointEvery, "checkpoint-every", 0, "with --iterations: after every durable iteration that is a multiple of M (and the last), each rank writes its policy checkpoint fragments (0: none)")
	fs.BoolVar(&c.allCuts, "all-cuts", false, "with --checkpoint-every: every rank writes all cuts (default: only the cuts of the forward passes it owns)")
	fs.BoolVar(&c.exportStates, "export-states", false, "with --checkpoint-every: the root also writes the visited states (one per forward pass of every iteration so far) in each checkpoint")
	pos, err := cli.ParseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs)
		return exitOK
	case err != nil:
		return usageError(stderr, "%s", cli.FlagError(fs, err))
	case len(pos) > 0 && pos[0] == "help":
		printHelp(stdout, fs)
		return exitOK
	case len(pos) > 0:
		return usageError(stderr, "unexpected argument %q: simrank takes flags only", pos[0])
	case c.out == "":
		return usageError(stderr, "--out is required")
	case c.quiet && c.verbose:
		return usageError(stderr, "--quiet and -v: choose one")
	}
	if msg := checkFlags(fs, c); msg != "" {
		return usageError(stderr, "%s", msg)
	}
	level := levelDefault
	switch {
	case c.quiet:
		level = levelQuiet
	case c.verbose:
		level = levelVerbose
	}
	log := newLogger(stderr, level)
	own, err := rank.ParseOwnership(c.ownership)
	if err != nil {
		return usageError(stderr, "--ownership %s: want %s or %s", c.ownership, rank.Contiguous, rank.RoundRobin)
	}
	id, err := identity(c)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	cs, err := loadCase(c.caseName)
	if errors.Is(err, errNoCase) {
		return usageError(stderr, "%v", err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "simrank: %v\n", err)
		return exitError
	}
	// This rank's share of the scenarios, or of the rerun list's ids.
	owned, err := rank.MyScenarios(c.scenarios, id, own, c.from)
	if err != nil {
		var rl *rank.RerunListError
		if errors.As(err, &rl) && rl.Line > 0 && rl.Text != "" {
			return usageError(stderr, "%s line %d: %q is not a scenario id in 0..%d", rl.File, rl.Line, rl.Text, c.scenarios-1)
		}
		return usageError(stderr, "--scenarios-from: %v", err)
	}

	ctx := context.Background()
	trainingDone := false
	if c.iterations > 0 {
		// A finished training (every rank of its world, every iteration,
		// closed by the root) is not opened again: a rerun of missing
		// scenarios may use any rank count. An unfinished one is resumed,
		// and only with its own world size.
		st, err := rank.TrainingDone(ctx, c.out, cs, trainingOptions(c))
		if err != nil {
			fmt.Fprintf(stderr, "simrank: %s: training: %v\n", id, err)
			return exitError
		}
		trainingDone = st.Done
		if st.Done {
			log.notice("simrank %s: training: already done in %s (%d iterations on %d ranks, %s): skipped", id, c.out, st.Iterations, st.World, st.Termination)
		} else if st.World > 0 && st.World != id.World {
			fmt.Fprintf(stderr, "simrank: %s: training: the training in %s is not done (%s) and was run on %d ranks: resume it with %d ranks (a new rank count would restart its iterations)\n", id, c.out, st.Reason, st.World, st.World)
			return exitError
		}
	}
	if c.iterations > 0 && !trainingDone {
		tctx, stop, code := train(ctx, c, id, cs, log)
		defer stop()
		if code >= 0 {
			return code
		}
		// A signal that arrives from here on (the simulation writer's
		// handler is not installed yet) still cancels ctx.
		ctx = tctx
	}
	w, err := rank.Open(ctx, c.out, id, cs, rank.Options{Scenarios: c.scenarios, ScenarioPad: c.pad, Ownership: own, Workers: c.workers, Queue: c.queue, Solver: solverName, Threads: c.threads, LeaseInterval: c.leaseInterval})
	if err != nil {
		if ctx.Err() != nil {
			log.notice("simrank %s: interrupted by signal before the simulation", id)
			return exitOK
		}
		fmt.Fprintf(stderr, "simrank: %s: %v\n", id, err)
		return exitError
	}
	ctx, stop := w.HandleSignals(ctx)
	defer stop()
	pending := w.Pending(owned)
	start := time.Now()
	done := 0
	var runErr error
	for _, s := range pending {
		if c.scenarioDelay > 0 {
			sleep(ctx, c.scenarioDelay)
		}
		if ctx.Err() != nil {
			break
		}
		sc, err := synth.Generate(cs, c.seed, s)
		if err != nil {
			runErr = fmt.Errorf("generating scenario %d: %w", s, err)
			break
		}
		if err := w.WriteScenario(ctx, sc); err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				break
			}
			runErr = err
			break
		}
		done++
		log.detail("simrank %s: queued scenario %d (%d/%d)", id, s, done, len(pending))
		log.progress(done == len(pending), "simrank %s: %d/%d scenarios queued", id, done, len(pending))
	}
	log.clear()
	var cerr error
	if ctx.Err() != nil && !w.Interrupted() {
		// The signal reached only the training phase's handler.
		cerr = w.CloseInterrupted("signal")
	} else {
		cerr = w.Close()
	}
	if runErr == nil {
		runErr = cerr
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "simrank %s: %v\n", id, runErr)
		return exitError
	}
	status, say := "done", log.summary
	if w.Interrupted() || ctx.Err() != nil {
		status, say = "interrupted by signal, journal closed", log.notice
	}
	say("simrank %s: %s: %d scenarios committed, %d already committed earlier, in %.2fs -> %s",
		id, status, w.CommittedHere(), len(owned)-len(pending), time.Since(start).Seconds(), c.out)
	return exitOK
}

// checkFlags checks the flags' values: "" if they are fine, else the
// usage error, naming the flag.
func checkFlags(fs *flag.FlagSet, c config) string {
	switch {
	case c.scenarios < 1 || c.scenarios > manifest.MaxScenarios:
		return fmt.Sprintf("--scenarios %d: want 1..%d", c.scenarios, manifest.MaxScenarios)
	case c.iterations < 0:
		return fmt.Sprintf("--iterations %d: want 0 (no training) or more", c.iterations)
	case c.forwardPasses < 1:
		return fmt.Sprintf("--forward-passes %d: want at least 1", c.forwardPasses)
	case c.threads < 1:
		return fmt.Sprintf("--threads %d: want at least 1", c.threads)
	case c.checkpointEvery < 0:
		return fmt.Sprintf("--checkpoint-every %d: want 0 (no checkpoints) or more", c.checkpointEvery)
	case c.iterationDelay < 0:
		return fmt.Sprintf("--iteration-delay %v: want >= 0", c.iterationDelay)
	case c.queue < 1:
		return fmt.Sprintf("--queue %d: want at least 1", c.queue)
	case c.leaseInterval <= 0:
		return fmt.Sprintf("--lease-interval %v: want > 0", c.leaseInterval)
	case c.scenarioDelay < 0:
		return fmt.Sprintf("--scenario-delay %v: want >= 0", c.scenarioDelay)
	case c.pad < 0 || c.pad > 12:
		return fmt.Sprintf("--scenario-pad %d: want 0..12", c.pad)
	case cli.IsSet(fs, "workers") && c.workers < 1:
		return fmt.Sprintf("--workers %d: want at least 1 (omit it for the default)", c.workers)
	}
	return ""
}

const solverName = "hydroshard simrank (synthetic)"

// train runs the training phase: iterations LastIteration()+1..K. It
// returns the signal-aware context (cancelled by SIGTERM/SIGINT from now
// on), its stop function, and an exit code, or -1 when the simulation
// should follow.
func train(ctx context.Context, c config, id rank.Identity, cs *manifest.Case, log *logger) (context.Context, func(), int) {
	tw, err := rank.OpenTraining(ctx, c.out, id, cs, trainingOptions(c))
	if err != nil {
		log.notice("simrank: %s: training: %v", id, err)
		return ctx, func() {}, exitError
	}
	tctx, stop := tw.HandleSignals(ctx)
	start := time.Now()
	first := tw.LastIteration() + 1
	var runErr error
	// A rank killed between an iteration and its checkpoint writes the
	// checkpoint it owes before continuing.
	if due := checkpointDue(c, first-1); due > 0 {
		last, err := tw.LastCheckpoint()
		if err == nil && due > last {
			err = checkpoint(tctx, tw, c, id, cs, due)
		}
		if err != nil {
			runErr = err
			first = c.iterations + 1 // skip the loop
		}
	}
	for it := first; it <= c.iterations && tctx.Err() == nil; it++ {
		if c.iterationDelay > 0 {
			sleep(tctx, c.iterationDelay)
			if tctx.Err() != nil {
				break // abandon the iteration in progress
			}
		}
		info := synth.TrainingIteration(cs, c.seed, it, c.forwardPasses, id.Rank, id.World, c.threads)
		if err := tw.WriteIteration(tctx, info); err != nil {
			if tctx.Err() != nil && errors.Is(err, tctx.Err()) {
				break
			}
			runErr = err
			break
		}
		log.detail("simrank %s: training iteration %d/%d durable", id, it, c.iterations)
		log.progress(it == c.iterations, "simrank %s: training iteration %d/%d", id, it, c.iterations)
		if checkpointDue(c, it) == it {
			if err := checkpoint(tctx, tw, c, id, cs, it); err != nil {
				if tctx.Err() != nil && errors.Is(err, tctx.Err()) {
					break
				}
				runErr = err
				break
			}
			log.detail("simrank %s: checkpoint of iteration %d durable", id, it)
		}
	}
	var cerr error
	done := tw.LastIteration() >= c.iterations
	if runErr == nil && done {
		cerr = tw.CloseTerminated(rank.TerminationIterationLimit)
	} else {
		cerr = tw.Close() // interrupted (signal) or failed
	}
	if runErr == nil {
		runErr = cerr
	}
	log.clear()
	if runErr != nil {
		log.notice("simrank %s: training: %v", id, runErr)
		return tctx, stop, exitError
	}
	log.summary("simrank %s: training: %d iterations written (%d durable before), %d/%d in %.2fs",
		id, tw.Written(), tw.ResumedFrom(), tw.LastIteration(), c.iterations, time.Since(start).Seconds())
	if !done {
		log.notice("simrank %s: interrupted by signal during training, journal closed; simulation skipped", id)
		return tctx, stop, exitOK
	}
	return tctx, stop, -1
}

// trainingOptions are the training writer's options for this run.
func trainingOptions(c config) rank.TrainingOptions {
	cfg := manifest.TrainingConfig{Seed: c.seed, MaxIterations: c.iterations, ForwardPasses: c.forwardPasses, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
	return rank.TrainingOptions{Config: cfg, Solver: solverName, Threads: c.threads, LeaseInterval: c.leaseInterval}
}

// checkpointDue returns the last iteration <= it that takes a checkpoint
// (a multiple of --checkpoint-every, or the last iteration); 0 if none.
func checkpointDue(c config, it int) int {
	m := c.checkpointEvery
	if m <= 0 || it < 1 {
		return 0
	}
	if it >= c.iterations {
		return c.iterations
	}
	return it - it%m
}

// checkpoint writes this rank's fragments of the checkpoint at iteration
// it: its cuts (all with --all-cuts) and, on the root, the bases (one per
// stage, with the stage's active cut rows), with --export-states the
// visited states, and the metadata.
func checkpoint(ctx context.Context, tw *rank.TrainingWriter, c config, id rank.Identity, cs *manifest.Case, it int) error {
	cuts := synth.CheckpointCutsCap(cs, c.seed, it, c.iterations, c.forwardPasses, id.Rank, id.World, c.allCuts)
	if id.Rank != 0 {
		return tw.WriteCheckpoint(ctx, it, cuts, nil, nil, nil)
	}
	all := cuts
	if !c.allCuts {
		all = synth.CheckpointCutsCap(cs, c.seed, it, c.iterations, c.forwardPasses, 0, 1, true)
	}
	active := make([]int, len(all))
	for s := range all {
		for _, cut := range all[s].Cuts {
			if cut.IsActive {
				active[s]++
			}
		}
	}
	basis := synth.CheckpointBasis(cs, c.seed, it, active)
	var states []policy.StageStates
	visited := 0
	if c.exportStates {
		states = synth.CheckpointStates(cs, c.seed, it, c.forwardPasses)
		for _, st := range states {
			if st.StateDimension > 0 {
				visited += len(st.Data) / int(st.StateDimension)
			}
		}
	}
	meta := synth.CheckpointMeta(cs, c.seed, it, c.iterations, c.forwardPasses, visited)
	return tw.WriteCheckpoint(ctx, it, cuts, basis, states, meta)
}

func identity(c config) (rank.Identity, error) {
	switch {
	case c.rank >= 0 && c.world >= 0:
		return rank.Explicit(c.rank, c.world)
	case c.rank >= 0 || c.world >= 0:
		return rank.Identity{}, errors.New("--rank and --world go together")
	}
	return rank.DetectIdentity(os.LookupEnv)
}

// errNoCase: a --case that names no case (a usage error).
var errNoCase = errors.New("not a builtin (production, xl), not a path, and not an example case (tiny, demo)")

// loadCase resolves a case name: a builtin generated case, a path, or one
// of the example cases (testdata/cases/<name>, embedded in the binary so
// that it works from any directory).
func loadCase(name string) (*manifest.Case, error) {
	if c, ok := synth.Builtin(name); ok {
		return c, nil
	}
	c, err := hydroshard.LoadCase(name)
	if errors.Is(err, hydroshard.ErrNoCase) {
		return nil, fmt.Errorf("--case %q: %w", name, errNoCase)
	}
	return c, err
}

// sleep emulates solve time; a cancelled ctx (a signal) ends it early.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
