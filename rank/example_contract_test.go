package rank_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// A rerun job: merge-shards --rerun-list wrote the missing scenario ids,
// one per line; the launcher passes the file to every rank of the rerun
// job (run.sbatch: --scenarios-from FILE), whatever their number, and
// each rank takes its share of the list by the ownership rule.
func ExampleMyScenarios() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	list := filepath.Join(dir, "rerun-round-1.txt")
	if err := os.WriteFile(list, []byte("3\n8\n9\n14\n15\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	const scenarios = 16
	for r := range 2 {
		id, err := rank.Explicit(r, 2)
		if err != nil {
			log.Fatal(err)
		}
		first, err := rank.MyScenarios(scenarios, id, rank.Contiguous, "")
		if err != nil {
			log.Fatal(err)
		}
		rerun, err := rank.MyScenarios(scenarios, id, rank.Contiguous, list)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("rank %d: first run %v, rerun %v\n", r, first, rerun)
	}
	// A bad list names the file and the line.
	if err := os.WriteFile(list, []byte("3\n16\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	_, err = rank.MyScenarios(scenarios, rank.Identity{Rank: 0, World: 2}, rank.Contiguous, list)
	var le *rank.RerunListError
	if errors.As(err, &le) {
		fmt.Printf("line %d: %s\n", le.Line, le.What)
	}
	// Output:
	// rank 0: first run [0 1 2 3 4 5 6 7], rerun [3 8 9]
	// rank 1: first run [8 9 10 11 12 13 14 15], rerun [14 15]
	// line 2: is not a scenario id of this run (want one integer in 0..15 per line)
}

// The writer is the one place the ownership rule and the rerun list are
// given: Owned is this rank's share, Remaining what is left of it.
func ExampleWriter_Remaining() {
	out, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		log.Fatal(err)
	}
	id, err := rank.Explicit(1, 2)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: 6, Ownership: rank.RoundRobin})
	if err != nil {
		log.Fatal(err)
	}
	sc, err := synth.Generate(c, 1, 3)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.WriteScenario(ctx, sc); err != nil {
		log.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("owned:", w.Owned(), "remaining:", w.Remaining())
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	// Output: owned: [1 3 5] remaining: [1 5]
}

// After Close every write, flush or close returns an error matching
// rank.ErrClosed; the first Close returned the writer's outcome, so a
// deferred Close after an explicit one is harmless.
func ExampleErrClosed() {
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
	ctx := context.Background()
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close() // returns ErrClosed after the Close below: ignored
	if err := w.Close(); err != nil {
		log.Fatal(err) // the run's outcome
	}
	sc, err := synth.Generate(c, 1, 0)
	if err != nil {
		log.Fatal(err)
	}
	err = w.WriteScenario(ctx, sc)
	fmt.Println(errors.Is(err, rank.ErrClosed), err)
	fmt.Println(errors.Is(w.Flush(ctx), rank.ErrClosed), errors.Is(w.Close(), rank.ErrClosed))
	// Output:
	// true rank: WriteScenario after Close: the writer is closed
	// true true
}
