package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hydroshard/hydroshard/internal/cli"
	"github.com/hydroshard/hydroshard/merge"
)

// runCompact runs "compact [--target-size SIZE] [--replace] [--json] OUT": exit 0
// compacted (or already), 1 usage or environment error or a study that is
// not complete, 2 a damaged partition file or index (named; nothing
// published).
func runCompact(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlags("merge-shards compact")
	target := fs.String("target-size", "256MiB", "size a compacted file grows to, in partition-file bytes (whole scenarios; at least one a file): a number of bytes or with KiB, MiB, GiB")
	rgRows := fs.Int64("row-group-rows", 0, "rows of a row group at most (default 100000, the partition files'); row groups end at scenario boundaries")
	replace := fs.Bool("replace", false, "remove the partition files once the compacted files are verified and their manifest is durable (compacted/ then holds the simulation tables)")
	reEncode := fs.Bool("re-encode", false, "decode and encode the rows again instead of copying the partition files' compressed pages (slower; the same rows, other bytes)")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	var size int64
	out, code := parse(fs, args, stdout, stderr, func() error {
		var err error
		if size, err = parseSize(*target); err != nil {
			return fmt.Errorf("--target-size %s: %v", *target, err)
		}
		if *rgRows < 0 {
			return fmt.Errorf("--row-group-rows %d: want at least 1 (omit it for 100000)", *rgRows)
		}
		return nil
	})
	if code >= 0 {
		return code
	}
	rep, err := merge.Compact(ctx, out, merge.CompactOptions{TargetSize: size, RowGroupRows: *rgRows, Replace: *replace, ReEncode: *reEncode, Progress: progressTo(stderr)})
	if err != nil {
		var damage *merge.CompactDamageError
		if errors.As(err, &damage) {
			// The damaged file and what is wrong, without the temp file
			// it was being copied into.
			fmt.Fprintf(stderr, "merge-shards compact: %s: %v\n", out, damage)
			fmt.Fprintf(stderr, "merge-shards compact: nothing was published and no partition file was removed\n")
			return exitCorrupt
		}
		fmt.Fprintf(stderr, "merge-shards compact: %s: %v\n", out, err)
		return exitEnv
	}
	if err := print(stdout, *asJSON, rep, rep.Human()); err != nil {
		return exitEnv
	}
	return exitComplete
}

// parseSize parses a byte count: "268435456", "256MiB", "1GiB", "64KiB".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := s
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, errors.New("want a positive number of bytes, optionally with KiB, MiB or GiB")
	}
	return n * mult, nil
}
