package hydroshard

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/hydroshard/hydroshard/merge"
)

// MergeOptions tune Merge: the merge's own options, and where to write the
// rerun list.
type MergeOptions struct {
	merge.Options
	// RerunList, when set, is the file Merge writes the missing scenario
	// ids to, one per line, ascending (an empty file when none is missing),
	// as merge-shards --rerun-list does: what a rerun job's ranks read as
	// RankOptions.RerunFile (simrank --scenarios-from). It is not written
	// when the outcome is corrupt or running. At most
	// merge.MaxListedMissing ids are listed (the lowest): when
	// len(report.Missing) < report.Scenarios-report.Committed, rerun those
	// and merge again for the rest.
	RerunList string
}

// Merge is the post-job door to the output layer: it runs the merge of
// out (merge.Run) and returns its report. The merge reads every rank
// journal, finishes interrupted commits, verifies every file, and writes
// everything the ranks do not: simulation/_manifest.json, _files.csv,
// metadata.json and summary.json; the training tables, metadata and
// manifest and the dictionaries (codes.json, entities.csv, variables.csv,
// bounds.parquet, state_dictionary.json); the policy assembled from the
// ranks' latest complete checkpoint; and the _SUCCESS markers last.
//
// As merge.Run, it returns a nil error for every outcome the report can
// state (complete, partial, corrupt, running): report.Outcome says which,
// and report.ExitCode() is merge-shards' exit code for it (0, 3, 2, 4). An
// error means the merge could not run or could not write its outputs
// (no journals: merge.ErrNoJournals; another merge holds the lock:
// *merge.LockedError; disk full, I/O), merge-shards' exit 1; the report
// may then be non-nil and says what was found. Merging a merged directory
// again changes no byte: run it again any time, a killed merge included.
func Merge(ctx context.Context, out string, opts MergeOptions) (*merge.Report, error) {
	rep, err := merge.Run(ctx, out, opts.Options)
	if err != nil {
		return rep, err
	}
	if opts.RerunList != "" && rep.Outcome != merge.Corrupt && rep.Outcome != merge.Running {
		if err := WriteRerunList(opts.RerunList, rep.Missing); err != nil {
			return rep, fmt.Errorf("hydroshard: rerun list: %w", err)
		}
	}
	return rep, nil
}

// Verify checks a merged directory without the journals
// (merge.VerifyMerged): every data file against simulation/_files.csv,
// every policy stage file against policy/metadata.json, every training
// table against training/_manifest.json; opts.Verify merge.VerifyFull
// adds every file's XXH64. It changes nothing. report.OK false is
// merge-shards verify's exit 2; an error (not a merged directory,
// I/O) its exit 1.
func Verify(ctx context.Context, out string, opts merge.Options) (*merge.VerifyReport, error) {
	return merge.VerifyMerged(ctx, out, opts)
}

// WriteRerunList writes scenario ids to file, one per line, as
// merge-shards --rerun-list does; rank.ReadRerunList reads it back. The
// file is created or truncated in place (not replaced by a rename), so
// that a named pipe or /dev/stdout works.
func WriteRerunList(file string, ids []int) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, id := range ids {
		w.WriteString(strconv.Itoa(id))
		w.WriteByte('\n')
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
