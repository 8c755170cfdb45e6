package reader_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/reader"
	"github.com/hydroshard/hydroshard/shard"
)

// An analyst reads a merged study back: what it holds, one table of one
// scenario as an Arrow record batch (derived columns and scenario_id
// included), the same table as the writer's rows struct.
func Example() {
	out, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A tiny study: one rank writes 3 scenarios of the tiny case, then
	// the merge (merge-shards) seals it.
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		log.Fatal(err)
	}
	id, err := rank.Explicit(0, 1)
	if err != nil {
		log.Fatal(err)
	}
	w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: 3})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range w.Remaining() {
		result, err := synth.Generate(c, 1, s)
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
	if _, err := merge.Run(ctx, out, merge.Options{}); err != nil {
		log.Fatal(err)
	}

	// Reading it back.
	study, err := reader.OpenWith(out, reader.Options{VerifyChecksum: true})
	if err != nil {
		log.Fatal(err) // reader.ErrNotMerged: run merge-shards first
	}
	fmt.Println("status:", study.Manifest().Status)
	fmt.Println("scenarios:", study.Scenarios())
	fmt.Println("hydros files:", len(study.Files("hydros")))

	rec, err := study.ReadTable(ctx, "hydros", 1)
	if err != nil {
		log.Fatal(err) // a *reader.IntegrityError names a damaged file
	}
	defer rec.Release()
	sid := rec.Column(int(rec.NumCols()) - 1).(*array.Int32)
	fmt.Println("last column:", rec.Schema().Field(int(rec.NumCols())-1).Name, sid.Value(0))

	var hydros shard.HydrosRows
	if err := study.ReadRows(ctx, "hydros", 1, &hydros); err != nil {
		log.Fatal(err)
	}
	fmt.Println("rows agree:", int64(len(hydros.StageID)) == rec.NumRows())

	// Compacted (merge-shards compact --replace): the partition files
	// are gone, the same Study API reads the compacted files.
	if _, err := merge.Compact(ctx, out, merge.CompactOptions{Replace: true}); err != nil {
		log.Fatal(err)
	}
	study, err = reader.Open(out)
	if err != nil {
		log.Fatal(err)
	}
	var total int64
	err = study.Stream(ctx, "hydros", func(scenario int, rec arrow.RecordBatch) error {
		total += rec.NumRows() // every scenario in order, as ReadTable returns it
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("compacted:", study.Compacted(), "rows:", total == 3*rec.NumRows())
	// Output:
	// status: complete
	// scenarios: [0 1 2]
	// hydros files: 3
	// last column: scenario_id 1
	// rows agree: true
	// compacted: true rows: true
}
