package main

// The command line's conventions, shared with simrank (cmd/simrank/cli.go):
//
//   - flags may come before or after the positional arguments
//     ("merge-shards OUT --json"); "--" ends the flags, so that
//     "merge-shards -- help" merges a directory named help;
//   - --help, -h (and "merge-shards help [COMMAND]") print the help on
//     stdout and exit 0;
//   - a usage error is one line on stderr that names the flag or argument
//     and ends "(see merge-shards [COMMAND] --help)", exit 1 (merge-shards'
//     usage code; simrank's is 2).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hydroshard/hydroshard/internal/cli"
	"github.com/hydroshard/hydroshard/layout"
)

// commands are merge-shards' commands; anything else first is the merge's.
var commands = []string{"verify", "report", "status", "policy", "compact", "help"}

// isCommand reports whether s names a command.
func isCommand(s string) bool {
	return slices.Contains(commands, s)
}

// helpHint is the end of every usage error of a command.
func helpHint(name string) string { return "(see " + name + " --help)" }

// usageError prints a one-line usage error of the command name and
// returns merge-shards' usage exit code.
func usageError(stderr io.Writer, name, format string, a ...any) int {
	fmt.Fprintf(stderr, "%s: %s %s\n", name, fmt.Sprintf(format, a...), helpHint(name))
	return exitEnv
}

// printHelp prints the help of a command, its flags last, on w.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses a command's flags and its one OUT argument, then check
// (flag values; nil: none), then that OUT is a directory. code is -1 to
// go on, else the exit code: 0 after --help, 1 after a usage error.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, check func() error) (string, int) {
	name := fs.Name()
	pos, err := cli.ParseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs)
		return "", exitComplete
	case err != nil:
		return "", usageError(stderr, name, "%s", cli.FlagError(fs, err))
	case len(pos) == 0:
		return "", usageError(stderr, name, "want exactly one output directory (OUT), got none")
	case len(pos) > 1:
		hint := ""
		if name == "merge-shards" {
			for _, p := range pos[1:] {
				if isCommand(p) {
					hint = fmt.Sprintf("; a command comes first: merge-shards %s [flags] OUT", p)
					break
				}
			}
		}
		return "", usageError(stderr, name, "want exactly one output directory (OUT), got %d arguments (%s)%s", len(pos), strings.Join(pos, " "), hint)
	}
	if check != nil {
		if err := check(); err != nil {
			return "", usageError(stderr, name, "%v", err)
		}
	}
	out := pos[0]
	if st, err := os.Stat(out); err != nil || !st.IsDir() {
		hint := ""
		if errors.Is(err, os.ErrNotExist) && name == "merge-shards" && !strings.ContainsAny(out, `/\.`) && !slices.Contains(args, "--") {
			hint = " (commands: " + strings.Join(commands, ", ") + ")"
		}
		return "", usageError(stderr, name, "%s is not a directory%s", out, hint)
	}
	return out, -1
}

// workersCheck refuses an explicit --workers below 1 (omitted, it is one
// per CPU).
func workersCheck(fs *flag.FlagSet, workers *int) error {
	if cli.IsSet(fs, "workers") && *workers < 1 {
		return fmt.Errorf("--workers %d: want at least 1 (omit it for one per CPU)", *workers)
	}
	return nil
}

// runHelp runs "help [COMMAND]": the help of merge-shards or of one of
// its commands, on stdout.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		return dispatch(ctx, []string{"--help"}, stdout, stderr)
	case !isCommand(args[0]):
		return usageError(stderr, "merge-shards", "help %s: unknown command, want one of %s", args[0], strings.Join(commands[:len(commands)-1], ", "))
	case len(args) > 1:
		return usageError(stderr, "merge-shards", "help: want at most one command, got %d arguments (%s)", len(args), strings.Join(args, " "))
	}
	return dispatch(ctx, []string{args[0], "--help"}, stdout, stderr)
}

// notMerged explains why verify finds no simulation/_manifest.json in out,
// the file it checks the simulation against: "" when there is one (the
// merge package's error says what is wrong with it).
func notMerged(out string) string {
	sim := filepath.Join(out, layout.SimDir, layout.ManifestName)
	if _, err := os.Lstat(sim); !errors.Is(err, os.ErrNotExist) {
		return ""
	}
	journals := map[string]int{} // by tag: "" simulation, training, merge
	if entries, err := os.ReadDir(filepath.Join(out, filepath.FromSlash(layout.JournalDir))); err == nil {
		for _, e := range entries {
			if w, err := layout.ParseJournalName(e.Name()); err == nil {
				journals[w.Tag]++
			}
		}
	}
	simPath := filepath.ToSlash(filepath.Join(layout.SimDir, layout.ManifestName))
	trPath := filepath.ToSlash(filepath.Join(layout.TrainingDir, layout.ManifestName))
	status, trained := trainingStatus(filepath.Join(out, layout.TrainingDir, layout.ManifestName))
	switch {
	case trained && journals[""] == 0:
		return fmt.Sprintf("the last merge was partial: it found training journals only (%s says %s), no rank has simulated yet, so there is no %s to verify the simulation against; run the simulation (rerun the ranks), merge again, then verify",
			trPath, status, simPath)
	case journals[""] > 0:
		return fmt.Sprintf("%s is missing: OUT has %s under %s but no merge has written the simulation's outputs yet (a merge that exits 2, corrupt, or 4, running, changes nothing); run merge-shards %s (merge-shards report %s says what it would find), then verify",
			simPath, plural(journals[""], "simulation journal"), layout.JournalDir, out, out)
	case journals[layout.TrainingTag] > 0:
		return fmt.Sprintf("not a merged directory: %s is missing; OUT has %s and no merge outputs: run merge-shards %s first", simPath, plural(journals[layout.TrainingTag], "training journal"), out)
	}
	return fmt.Sprintf("not a merged directory: no %s and no rank journals under %s (is OUT the directory the ranks wrote, and did merge-shards run on it?)", simPath, layout.JournalDir)
}

// plural is "1 journal", "2 journals".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// trainingStatus reads the status of a training manifest: "status
// \"partial\"", or why it could not.
func trainingStatus(p string) (string, bool) {
	f, err := os.Open(p)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var m struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&m); err != nil || m.Status == "" {
		return "it is unreadable", true
	}
	return fmt.Sprintf("status %q", m.Status), true
}

// verifyError is verify's error message for err.
func verifyError(out string, err error) string {
	if why := notMerged(out); why != "" {
		return why
	}
	return err.Error()
}
