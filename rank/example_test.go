package rank_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// A solver rank: detect who we are, open the writer (which resumes from
// any earlier attempt), write this rank's scenarios that are not committed
// yet (Remaining), stop early on SIGTERM, close.
func Example() {
	out, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		log.Fatal(err)
	}
	// In a real job: id, err := rank.DetectIdentity(os.LookupEnv)
	id, err := rank.Explicit(0, 2)
	if err != nil {
		log.Fatal(err)
	}
	const scenarios = 5
	// A bound on every wait, so that a stuck run fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A rerun job's launcher adds --scenarios-from FILE: pass it as
	// Options.RerunFile ("" for the first run).
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: scenarios, Ownership: rank.Contiguous})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := w.HandleSignals(ctx)
	defer stop()
	for _, s := range w.Remaining() { // this rank's scenarios not committed yet
		if ctx.Err() != nil {
			break // SIGTERM: Close records the journal as interrupted
		}
		result, err := synth.Generate(c, 1, s) // the solver's LP results, columnar
		if err != nil {
			log.Fatal(err)
		}
		if err := w.WriteScenario(ctx, result); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed:", w.Committed())
	// Output: committed: [0 1 2]
}

// A solver's simulation workers share one writer: WriteScenario queues
// (blocking only when Options.Queue scenarios wait), the writer encodes on
// its own workers and commits in acceptance order; Flush waits until what
// was handed over is durable (and the caller may reuse those slices).
func ExampleWriter_WriteScenario() {
	out, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		log.Fatal(err)
	}
	id, err := rank.Explicit(0, 1)
	if err != nil {
		log.Fatal(err)
	}
	const scenarios = 6
	// A bound on every wait (handing out work, WriteScenario's
	// backpressure, Flush): a wrong ownership list or a stuck writer fails
	// the run instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: scenarios, Workers: 2, Queue: 4})
	if err != nil {
		log.Fatal(err)
	}
	next := make(chan int)
	go func() {
		defer close(next)
		for _, s := range w.Remaining() {
			select {
			case next <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 3 { // the solver's simulation workers
		wg.Go(func() {
			for s := range next {
				result, err := synth.Generate(c, 1, s)
				if err == nil {
					err = w.WriteScenario(ctx, result)
				}
				if err != nil {
					log.Fatal(err)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		log.Fatal("handing the scenarios to the workers: ", err)
	}
	if err := w.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed:", w.Committed())
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	// Output: committed: [0 1 2 3 4 5]
}

// A solver rank's training loop: open the training writer (which finds
// the last iteration this rank made durable in an earlier attempt),
// journal each completed iteration, record why training stopped.
func ExampleOpenTraining() {
	out, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		log.Fatal(err)
	}
	id, err := rank.Explicit(0, 2)
	if err != nil {
		log.Fatal(err)
	}
	cfg := manifest.TrainingConfig{Seed: 1, MaxIterations: 4, ForwardPasses: 8, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := rank.OpenTraining(ctx, out, id, c, rank.TrainingOptions{Config: cfg, Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := w.HandleSignals(ctx)
	defer stop()
	for it := w.LastIteration() + 1; it <= cfg.MaxIterations && ctx.Err() == nil; it++ {
		// The solver's iteration: forward and backward passes, then this
		// rank's rows (the root adds the convergence row).
		info := synth.TrainingIteration(c, cfg.Seed, it, cfg.ForwardPasses, id.Rank, id.World, 2)
		if err := w.WriteIteration(ctx, info); err != nil {
			log.Fatal(err)
		}
	}
	if ctx.Err() != nil {
		err = w.Close() // interrupted, termination "signal"
	} else {
		err = w.CloseTerminated(rank.TerminationIterationLimit)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("durable iterations:", w.LastIteration())
	// Output: durable iterations: 4
}
