package hydroshard_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/rank"
)

// A solver rank, through its one door: OpenRank detects the identity
// (here from a SLURM environment given as a map; a real rank leaves Env
// nil to read its own), loads the case and holds the options both
// writers share. The rank trains (iterations, then the policy checkpoint
// at the last one), then simulates the scenarios it still owes, and
// closes whatever it opened. A requeued job runs the same code: each
// writer resumes after what earlier attempts made durable.
func ExampleOpenRank() {
	out, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	slurm := map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_ID": "4242", "SLURMD_NODENAME": "node01"}
	env := func(k string) (string, bool) { v, ok := slurm[k]; return v, ok }
	// A bound on every wait, so that a stuck run fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const iterations, passes, seed = 3, 4, 1
	r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{
		Env:       env,
		CasePath:  "tiny", // a case.json, a directory holding one, or an example case
		Scenarios: 4,
		Training:  manifest.TrainingConfig{Seed: seed, MaxIterations: iterations, ForwardPasses: passes, StoppingMode: manifest.StoppingAny, PolicyMode: "fresh"},
		Solver:    "my-solver",
	})
	if err != nil {
		log.Fatal(err) // no launcher environment is a *rank.IdentityError: there is no silent rank 0
	}
	// Give Close its own deadline: after SIGTERM the signal context is done.
	defer r.Close(context.Background())
	ctx, stop := r.HandleSignals(ctx) // SIGTERM/SIGINT: every writer closes interrupted
	defer stop()
	id, c := r.Identity(), r.Case()
	fmt.Println(id)

	// Training: one durable record per iteration, the policy checkpoint
	// fragments at the last one (the root rank adds the metadata).
	tw, err := r.Training(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for it := tw.LastIteration() + 1; it <= iterations && ctx.Err() == nil; it++ {
		info := synth.TrainingIteration(c, seed, it, passes, id.Rank, id.World, 1) // the solver's rows
		if err := tw.WriteIteration(ctx, info); err != nil {
			log.Fatal(err)
		}
		if it == iterations {
			cuts := synth.CheckpointCutsCap(c, seed, it, iterations, passes, id.Rank, id.World, false) // the solver's cuts
			meta := synth.CheckpointMeta(c, seed, it, iterations, passes, 0)
			if err := tw.WriteCheckpoint(ctx, it, cuts, nil, nil, meta); err != nil {
				log.Fatal(err)
			}
		}
	}
	if ctx.Err() == nil {
		if err := tw.CloseTerminated(rank.TerminationIterationLimit); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("training: durable iterations", tw.LastIteration())

	// Simulation: this rank's scenarios not committed yet, queued and
	// committed in the background.
	w, err := r.Simulation(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range w.Remaining() {
		if ctx.Err() != nil {
			break
		}
		result, err := synth.Generate(c, seed, s) // the solver's LP results, columnar
		if err != nil {
			log.Fatal(err)
		}
		if err := w.WriteScenario(ctx, result); err != nil {
			log.Fatal(err)
		}
	}
	// Close waits for the queue and closes every journal the rank opened.
	if err := r.Close(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("simulation: committed", w.Committed())
	// Output:
	// rank 0/1 (slurm job 4242, attempt 0, host node01)
	// training: durable iterations 3
	// simulation: committed [0 1 2 3]
}

// After the job, one call merges what the ranks wrote: it reconciles the
// journals, verifies every file, and writes the manifests, metadata,
// summary, dictionaries, training tables and the policy; the report's exit
// code is merge-shards'. Here two ranks ran, and rank 1 never wrote its
// last scenario (killed, say): the merge is partial and lists it; a rerun
// job (any number of ranks, each given the list as RerunFile) writes it,
// and the next merge is complete.
func ExampleMerge() {
	out, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Two ranks train, then simulate 6 scenarios; rank 1 stops one short
	// (runStudy is ExampleOpenRank's rank, once per rank).
	if err := runStudy(ctx, out, 2, 6, 1); err != nil {
		log.Fatal(err)
	}

	rerun := filepath.Join(out, "rerun.txt")
	rep, err := hydroshard.Merge(ctx, out, hydroshard.MergeOptions{RerunList: rerun})
	if err != nil {
		log.Fatal(err) // could not merge (no journals, lock held, disk full): exit 1
	}
	fmt.Printf("%s (exit %d): %d of %d scenarios, missing %v\n", rep.Status, rep.ExitCode(), rep.Committed, rep.Scenarios, rep.Missing)
	fmt.Printf("training %s: %d iterations, policy of iteration %d\n", rep.Training.Status, rep.Training.Iterations, rep.Training.Policy.Iteration)

	// The rerun job: one rank, the listed scenarios only.
	id, err := rank.Explicit(0, 1)
	if err != nil {
		log.Fatal(err)
	}
	r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &id, CasePath: "tiny", Scenarios: 6, RerunFile: rerun})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rerun owns", r.Owned())
	if err := simulate(ctx, r); err != nil {
		log.Fatal(err)
	}

	rep, err = hydroshard.Merge(ctx, out, hydroshard.MergeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (exit %d): %d of %d scenarios\n", rep.Status, rep.ExitCode(), rep.Committed, rep.Scenarios)
	v, err := hydroshard.Verify(ctx, out, merge.Options{Verify: merge.VerifyFull})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", v.OK)
	// Output:
	// partial (exit 3): 5 of 6 scenarios, missing [5]
	// training complete: 3 iterations, policy of iteration 3
	// rerun owns [5]
	// complete (exit 0): 6 of 6 scenarios
	// verified: true
}
