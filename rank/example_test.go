package rank_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// A solver rank: detect who we are, open the writer (which resumes from
// any earlier attempt), write the owned scenarios that are not committed
// yet, stop early on SIGTERM, close.
func Example() {
	out, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(out)
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		log.Fatal(err)
	}
	// In a real job: id, err := rank.DetectIdentity(os.LookupEnv)
	id, _ := rank.Explicit(0, 2)
	const scenarios = 5
	ctx := context.Background()
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: scenarios})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := w.HandleSignals(ctx)
	defer stop()
	for _, s := range w.Pending(rank.Contiguous.Owned(scenarios, id)) {
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
