// Command merge-shards reconciles the per-rank output of a hydroshard run
// into one verified dataset, and checks or reports on it afterwards.
//
//	merge-shards [flags] OUT          merge (idempotent; run it again any time)
//	merge-shards verify [--full] [--json] [--workers N] OUT  check a merged directory against its index
//	merge-shards report [--json | --html FILE] OUT  what a merge would find, changing nothing
//	merge-shards status [--json] [--watch] OUT  a run's progress, beside live ranks
//	merge-shards policy pack|unpack OUT/policy  zstd-compress or restore stage files
//	merge-shards compact [--target-size SIZE] [--replace] [--json] OUT  a few large files per simulation table
//	merge-shards help [COMMAND]       the help, on stdout (also --help, -h)
//
// Flags may come before or after OUT; "--" ends them (cli.go).
//
// Exit codes: 0 complete, 3 partial (missing scenarios), 4 running (writers
// hold live leases; nothing changed), 2 corrupt or inconsistent input, 1
// usage or environment error, a limit, or out of memory. The work runs in
// a supervised child process (supervise.go), so that a process the Go
// runtime or the kernel's OOM killer ends exits 1, never 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/internal/cli"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/report"
	"github.com/hydroshard/hydroshard/vfs"
)

const (
	exitComplete = 0
	exitEnv      = 1
	exitCorrupt  = 2
	exitPartial  = 3
	exitRunning  = 4
)

const usage = `usage:
  merge-shards [--verify size|full] [--gc] [--strict] [--json] [--rerun-list FILE] [--workers N] [--lease-grace D] [--requeue-lost] OUT
  merge-shards verify [--full] [--json] [--workers N] OUT
  merge-shards report [--json | --html FILE] [--lease-grace D] OUT
  merge-shards status [--json] [--watch [--interval D]] [--lease-grace D] OUT
  merge-shards policy pack|unpack OUT/policy
  merge-shards compact [--target-size SIZE] [--row-group-rows N] [--replace] [--re-encode] [--json] OUT
  merge-shards help [verify|report|status|policy|compact]

Flags may come before or after OUT (merge-shards OUT --json); "--" ends
them (merge-shards -- help merges a directory named help). A command
comes first. --help or -h prints this help on stdout.

merge-shards reads every rank journal under OUT/_shards/journal, checks they
describe one run, picks one committed copy of each partition, finishes commits
whose renames were interrupted, verifies the files, removes temp garbage and
writes:
  OUT/simulation/  _manifest.json, _files.csv (integrity index),
           metadata.json, summary.json and, only when every scenario is
           committed and verified, _SUCCESS;
  OUT/training/    when the ranks trained: convergence.parquet, timing/,
           dictionaries/, metadata.json, _manifest.json (complete,
           converged, interrupted or partial) and _SUCCESS when complete;
  OUT/policy/      the latest checkpoint every rank finished: cuts/, basis/,
           states/ stage files and metadata.json.
Running it again on a merged directory changes nothing.
It is safe beside a running study: while any writer holds a live lease
(renewed within --lease-grace by the file system's clock) it changes nothing
and exits 4.

  verify   checks a merged directory without the journals: every data file
           against simulation/_files.csv, every policy stage file (packed or
           not) against policy/metadata.json, every training table against
           training/_manifest.json; names every missing, truncated or altered
           file (exit 2 if any). It needs simulation/_manifest.json, which
           a merge writes once the ranks have simulated.
  report   prints what a merge would find and do, changing nothing.
           --html FILE writes instead one self-contained HTML page (no
           script, nothing fetched: readable offline) describing the study:
           status (complete, partial, running, training only), case, ranks,
           hosts, checksums; convergence, simulated costs per stage and per
           scenario, time per rank and iteration, progress per rank and
           attempt; a section without data says why. It prints one line
           naming FILE (written atomically); the exit code is report's.
  status   the progress of a run, beside live ranks, changing nothing: one
           line per rank (live, closed or dead; scenarios committed of those
           it owns; commit rate; ETA; lease age; training iteration), totals,
           and the training's bounds and gap. --watch refreshes every
           --interval until every writer is closed or dead. Exit 0 whenever
           OUT could be read (status is no verdict), 1 otherwise.
  policy pack    replaces each stage file under OUT/policy/{cuts,basis,states}
           by stage_NNN.bin.zst, each verified against metadata.json before
           the original is removed (policy readers refuse a packed directory).
  policy unpack  restores the stage files, checking size and XXH64 against
           metadata.json; a .zst that fails is named, kept, and exit is 2.
  compact  on a complete, merged study: each simulation table rewritten as
           a few large files, OUT/compacted/<entity>/part-NNNNN.parquet
           (about --target-size each, default 256MiB), every scenario with
           scenario_id as an Int32 column, rows in scenario order, row
           groups at scenario boundaries with statistics (a filter on
           scenario_id reads only its row groups). Each file is verified
           against the partition files (rows per scenario, every column)
           before it is published; OUT/compacted/_manifest.json is written
           last. The partition files are kept unless --replace: then they
           are removed once that manifest, saying so, is durable (an
           earlier compaction is checked again first); verify, status, the
           Go reader and a re-merge then read compacted/. Exit 1 when the
           study is not complete; 2 when a partition or compacted file
           fails its check (named; nothing published, nothing removed).
           Killed, run it again: it finishes; after that it changes nothing.
  help     this help; help COMMAND: the help of a command and its flags.

Exit codes:
  0  complete: every scenario committed and verified
  3  partial: scenarios missing (listed; --rerun-list FILE writes them one per
     line, for your solver's list option, e.g. simrank --scenarios-from FILE);
     rerun them and merge again
  4  running: writers hold live leases (listed); nothing changed; merge again
     when they are done (a killed writer's lease expires after --lease-grace)
  2  corrupt or inconsistent input (damaged journal, file lost or altered after commit
     (--requeue-lost revokes such scenarios for a rerun instead),
     journal of another case, conflict with --strict): nothing changed
  1  usage or environment error (bad flags, said in one line; unreadable
     directory, disk full, another merge running, or an internal error), or
     out of memory: the merge process died (a Go runtime fatal error, or
     SIGKILL as the kernel's OOM killer sends; said on stderr). Nothing
     committed is lost: the merge is crash-safe; merge again with more memory

A partial merge lists at most 1048576 missing scenarios (the lowest; the
count is always exact), in the report, its JSON, --rerun-list and
simulation/_manifest.json: rerun those and merge again for the rest.

The work runs in a child process that merge-shards supervises, to give
those deaths exit 1 (Go's runtime would exit 2, "corrupt");
HYDROSHARD_MERGE_SUPERVISE=0 runs it in one process.

Flags:
`

func main() {
	if code, parent := supervised(); parent {
		os.Exit(code)
	}
	os.Exit(mainWork())
}

// mainWork runs merge-shards in this process.
func mainWork() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// progressTo returns stderr when it is a terminal: progress is for people.
// A supervised child's stderr is a pipe to its parent's: the parent says
// whether that is a terminal.
func progressTo(stderr io.Writer) io.Writer {
	if f, ok := stderr.(*os.File); ok {
		if f == os.Stderr && stderrTerminal {
			return f
		}
		if cli.IsTerminal(f) {
			return f
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	// A panic is a bug, not corrupt input: Go would exit 2, which job
	// scripts read as "corrupt, keep everything for inspection".
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "merge-shards: internal error (a bug, please report it): %v\n%s", p, debug.Stack())
			code = exitEnv
		}
	}()
	return dispatch(ctx, args, stdout, stderr)
}

// dispatch runs the command args name (the merge when args[0] is none).
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return runVerify(ctx, args[1:], stdout, stderr)
		case "report":
			return runReport(ctx, args[1:], stdout, stderr)
		case "status":
			return runStatus(ctx, args[1:], stdout, stderr)
		case "compact":
			return runCompact(ctx, args[1:], stdout, stderr)
		case "policy":
			return runPolicy(args[1:], stdout, stderr)
		case "help":
			return runHelp(ctx, args[1:], stdout, stderr)
		}
	}
	return runMerge(ctx, args, stdout, stderr)
}

// runMerge runs the merge: "[flags] OUT".
func runMerge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlags("merge-shards")
	verify := fs.String("verify", "size", "verification of every data file: size, or full (size and XXH64)")
	gc := fs.Bool("gc", false, "delete the files quarantined under _shards/unclaimed/ (data files no commit claims: every merge moves them out of simulation/ to there)")
	strict := fs.Bool("strict", false, "a scenario committed twice with different bytes is an error (exit 2) instead of latest-wins")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	rerun := fs.String("rerun-list", "", "write the missing scenario ids to FILE, one per line (empty file when complete), for your solver's list option (simrank --scenarios-from FILE)")
	workers := fs.Int("workers", 0, "parallel verification workers, at least 1 (default: number of CPUs)")
	grace := fs.Duration("lease-grace", lease.DefaultGrace, "a writer whose lease was renewed within this time (file system clock) is live: its files are left alone")
	requeue := fs.Bool("requeue-lost", false, "when the only problems are committed data files lost, truncated or altered after commit: revoke those scenarios (durably), move the damaged copies aside and list them for a rerun (exit 3) instead of exit 2")
	out, code := parse(fs, args, stdout, stderr, func() error {
		if *verify != merge.VerifySize && *verify != merge.VerifyFull {
			return fmt.Errorf("--verify %s: unknown verify level, want size or full", *verify)
		}
		if err := workersCheck(fs, workers); err != nil {
			return err
		}
		return graceCheck(*grace)
	})
	if code >= 0 {
		return code
	}
	rep, err := hydroshard.Merge(ctx, out, hydroshard.MergeOptions{
		Options:   merge.Options{Verify: *verify, GC: *gc, Strict: *strict, Workers: *workers, Progress: progressTo(stderr), Lease: lease.Options{Grace: *grace}, RequeueLost: *requeue},
		RerunList: *rerun,
	})
	if err != nil {
		fmt.Fprintf(stderr, "merge-shards: %v\n", err)
		return exitEnv
	}
	if n := rep.Scenarios - rep.Committed; *rerun != "" && rep.Outcome != merge.Corrupt && rep.Outcome != merge.Running && len(rep.Missing) < n {
		fmt.Fprintf(stderr, "merge-shards: --rerun-list: %s lists the first %d of the %d missing scenarios (no more are listed); rerun them and merge again for the rest\n", *rerun, len(rep.Missing), n)
	}
	if err := print(stdout, *asJSON, rep, rep.Human()); err != nil {
		fmt.Fprintf(stderr, "merge-shards: %v\n", err)
		return exitEnv
	}
	return rep.ExitCode()
}

// graceCheck refuses a --lease-grace that is not positive (the lease
// package would take it for the default).
func graceCheck(grace time.Duration) error {
	if grace <= 0 {
		return fmt.Errorf("--lease-grace %v: want > 0", grace)
	}
	return nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlags("merge-shards verify")
	full := fs.Bool("full", false, "also check every file's XXH64 (reads all data)")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	workers := fs.Int("workers", 0, "parallel verification workers, at least 1 (default: number of CPUs)")
	out, code := parse(fs, args, stdout, stderr, func() error { return workersCheck(fs, workers) })
	if code >= 0 {
		return code
	}
	v, err := hydroshard.Verify(ctx, out, merge.Options{Verify: verifyLevel(*full), Workers: *workers, Progress: progressTo(stderr)})
	if err != nil {
		fmt.Fprintf(stderr, "merge-shards verify: %s: %s\n", out, verifyError(out, err))
		return exitEnv
	}
	if err := print(stdout, *asJSON, v, v.Human()); err != nil {
		return exitEnv
	}
	if !v.OK {
		return exitCorrupt
	}
	return exitComplete
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlags("merge-shards report")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	grace := fs.Duration("lease-grace", lease.DefaultGrace, "a writer whose lease was renewed within this time (file system clock) is live")
	htmlFile := fs.String("html", "", "write a self-contained HTML report (status, convergence, costs, rank timing, progress; inline SVG, no script) to `FILE` instead of printing the report")
	out, code := parse(fs, args, stdout, stderr, func() error {
		if *htmlFile != "" && *asJSON {
			return errors.New("--html and --json: choose one (--html prints one line naming the file)")
		}
		return graceCheck(*grace)
	})
	if code >= 0 {
		return code
	}
	if *htmlFile != "" {
		// The page is built from whatever OUT holds (merged or not,
		// partial, running); a file it cannot read is a note in the page.
		rep, err := report.Build(ctx, out, report.Options{Merge: merge.Options{Lease: lease.Options{Grace: *grace}}})
		if err != nil {
			fmt.Fprintf(stderr, "merge-shards report: %v\n", err)
			return exitEnv
		}
		// Atomic: a temp file beside FILE, fsynced, renamed over it, the
		// directory fsynced: a reader (a browser, a web server) sees the old
		// page or the new one, never half of one.
		writeAtomic := func(name string) error {
			dir := filepath.Dir(name)
			f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
			if err != nil {
				return err
			}
			tmp := f.Name()
			err = rep.WriteHTML(f)
			if err == nil {
				err = f.Chmod(0o644)
			}
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp, name)
			}
			if err != nil {
				os.Remove(tmp)
				return err
			}
			d, err := os.Open(dir)
			if err != nil {
				return err
			}
			err = d.Sync()
			if cerr := d.Close(); err == nil {
				err = cerr
			}
			return err
		}
		if err := writeAtomic(*htmlFile); err != nil {
			fmt.Fprintf(stderr, "merge-shards report: --html %s: %v\n", *htmlFile, err)
			return exitEnv
		}
		fmt.Fprintf(stdout, "merge-shards report: wrote %s (%s)\n", *htmlFile, rep.Status)
		if rep.Analysis == nil {
			return exitComplete // the page says why the journals could not be analysed
		}
		return rep.Analysis.ExitCode()
	}
	rep, err := merge.Analyze(ctx, out, merge.Options{Lease: lease.Options{Grace: *grace}})
	if err != nil {
		fmt.Fprintf(stderr, "merge-shards report: %v\n", err)
		return exitEnv
	}
	if err := print(stdout, *asJSON, rep, "(report only: nothing was changed)\n"+rep.Human()); err != nil {
		return exitEnv
	}
	return rep.ExitCode()
}

// runPolicy runs "policy pack DIR" or "policy unpack DIR": exit 0 done,
// 2 checksum mismatch (the file is named and nothing is lost), 1 usage or
// environment error.
func runPolicy(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlags("merge-shards policy")
	pos, err := cli.ParseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs)
		return exitComplete
	case err != nil:
		return usageError(stderr, fs.Name(), "%s", cli.FlagError(fs, err))
	case len(pos) == 0 || (pos[0] != "pack" && pos[0] != "unpack"):
		got := "nothing"
		if len(pos) > 0 {
			got = fmt.Sprintf("%q", pos[0])
		}
		return usageError(stderr, fs.Name(), "want pack or unpack, got %s", got)
	case len(pos) != 2:
		return usageError(stderr, fs.Name()+" "+pos[0], "want one policy directory (OUT/policy), got %d arguments", len(pos)-1)
	}
	op, dir := pos[0], pos[1]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usageError(stderr, fs.Name()+" "+op, "%s is not a directory", dir)
	}
	do := policy.Pack
	if op == "unpack" {
		do = policy.Unpack
	}
	if err := do(vfs.OS(), dir); err != nil {
		fmt.Fprintf(stderr, "merge-shards policy %s: %v\n", op, err)
		if errors.Is(err, policy.ErrChecksum) {
			return exitCorrupt
		}
		return exitEnv
	}
	fmt.Fprintf(stdout, "policy %sed: %s\n", op, dir)
	return exitComplete
}

func print(w io.Writer, asJSON bool, v any, human string) error {
	if !asJSON {
		_, err := io.WriteString(w, human)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// verifyLevel maps verify's --full onto the merge's verify levels.
func verifyLevel(full bool) string {
	if full {
		return merge.VerifyFull
	}
	return merge.VerifySize
}
