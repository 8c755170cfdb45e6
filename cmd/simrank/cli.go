package main

// The command line's conventions, shared with merge-shards
// (cmd/merge-shards/cli.go): flags in any order, "--" ends them; --help,
// -h and "simrank help" print the help on stdout and exit 0; a usage error
// is one line on stderr that names the flag and ends "(see simrank
// --help)", exit 2.

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hydroshard/hydroshard/internal/cli"
)

const usageText = `usage: simrank --out DIR [flags]
       simrank help

Writes synthetic SDDP results as a solver rank built on hydroshard's rank/
package does: with --iterations, a training history first (this rank's
share of each iteration); then the simulation results of the scenarios this
rank owns. Launch it like any rank program (srun, mpirun, or a loop that
sets SLURM_PROCID and SLURM_NTASKS); --rank and --world override the
launcher environment.

Flags may come in any order; "--" ends them (simrank takes no other
arguments). --help or -h prints this help on stdout.

Output, on stderr: errors; a notice when a finished training is skipped or
a signal interrupts the run; one summary line per phase ("training: N
iterations written", "done: N scenarios committed"); on a terminal, a
progress line. -v adds a line per training iteration, checkpoint and
queued scenario (they used to be printed by default); --quiet leaves
errors and notices only (it used to silence only those per-item lines, and
keeps working).

Exit codes:
  0  done, or interrupted by SIGTERM with the journal closed
  1  the run failed (I/O; a case beyond its limits is refused before
     anything is sized from it)
  2  usage or launcher environment error (a bad flag value, an unknown
     --case, no launcher environment), said in one line. Out of memory,
     Go's runtime also exits 2, with "fatal error: out of memory" on stderr
     (the kernel's OOM killer: SIGKILL). What was committed stays durable:
     rerun, and merge.

Fault injection for tests, in binaries built with -tags faultinject only:
HYDROSHARD_FAULT=point:action:n (see package vfs).

Flags:
`

// printHelp prints the help, the flags last, on w.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageText)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// usageError prints a one-line usage error and returns the usage exit
// code.
func usageError(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "simrank: %s (see simrank --help)\n", fmt.Sprintf(format, a...))
	return exitUsage
}

// Output levels (--quiet, default, -v).
const (
	levelQuiet   = 0 // errors and notices
	levelDefault = 1 // and one summary line per phase; a progress line on a terminal
	levelVerbose = 2 // and one line per iteration, checkpoint and scenario
)

// logger writes simrank's stderr lines by level, and on a terminal (at
// the default level) one progress line redrawn in place.
type logger struct {
	w     io.Writer
	level int
	tty   bool      // w is a terminal: progress lines are drawn
	drawn bool      // a progress line is on screen
	last  time.Time // when it was drawn
}

func newLogger(w io.Writer, level int) *logger {
	return &logger{w: w, level: level, tty: level == levelDefault && cli.IsTerminal(w)}
}

// line writes one line when the level allows it, after clearing a
// progress line.
func (l *logger) line(level int, format string, a ...any) {
	if l.level < level {
		return
	}
	l.clear()
	fmt.Fprintf(l.w, format+"\n", a...)
}

func (l *logger) notice(format string, a ...any)  { l.line(levelQuiet, format, a...) }
func (l *logger) summary(format string, a ...any) { l.line(levelDefault, format, a...) }
func (l *logger) detail(format string, a ...any)  { l.line(levelVerbose, format, a...) }

// progress redraws the progress line, at most ten times a second (final:
// whatever the time).
func (l *logger) progress(final bool, format string, a ...any) {
	if !l.tty || (!final && time.Since(l.last) < 100*time.Millisecond) {
		return
	}
	fmt.Fprintf(l.w, "\r\x1b[K"+format, a...)
	l.drawn, l.last = true, time.Now()
}

// clear erases the progress line.
func (l *logger) clear() {
	if l.drawn {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.drawn = false
	}
}
