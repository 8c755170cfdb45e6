// Package rankpath is the rank writer's whole path as the benchmarks time
// it: cmd/shardbench's writer_full contestants and package rank's
// BenchmarkRankPathVsSingleTable call the one definition, so that both
// measure the same thing.
package rankpath

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// Write opens a rank.Writer in out (rank 0 of 1, Options.Workers =
// workers, fsys its file system, nil for the OS), hands every scenario (all
// its tables) to WriteScenario from callers goroutines (WriteScenario is
// safe for concurrent callers and queues the scenario; the writer encodes
// on its workers), and returns the time from the first WriteScenario until
// Flush returns, that is until every scenario is committed. Open and Close
// are not timed: a real rank does them once per run, not per scenario.
func Write(ctx context.Context, out string, c *manifest.Case, scen []*shard.Scenario, workers, callers int, solver string, fsys vfs.FS) (time.Duration, error) {
	id, err := rank.Explicit(0, 1)
	if err != nil {
		return 0, err
	}
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: len(scen), Workers: workers, Solver: solver, FS: fsys})
	if err != nil {
		return 0, err
	}
	next := make(chan int, len(scen))
	for i := range scen {
		next <- i
	}
	close(next)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for k := range callers {
		wg.Go(func() {
			for i := range next {
				if err := w.WriteScenario(ctx, scen[i]); err != nil {
					errs[k] = err
					return
				}
			}
		})
	}
	wg.Wait()
	ferr := w.Flush(ctx)
	d := time.Since(t0)
	if err := errors.Join(append(errs, ferr, w.Close())...); err != nil {
		return 0, err
	}
	return d, nil
}
