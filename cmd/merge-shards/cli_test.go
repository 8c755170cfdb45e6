package main

// Tests of the command line's conventions (cli.go): flags before or after
// OUT, help on stdout with exit 0, the help command, one-line usage errors
// that name the flag, exit codes; verify's message on a directory whose
// merge was partial; the rerun hint.

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/internal/cli"
	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/layout"
)

// TestParseArgs: flags anywhere, positionals in order, "--" ends the
// flags, and a "--" that is a flag's value does not.
func TestParseArgs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		pos  []string
		json bool
		list string
	}{
		{[]string{"OUT"}, []string{"OUT"}, false, ""},
		{[]string{"--json", "OUT"}, []string{"OUT"}, true, ""},
		{[]string{"OUT", "--json"}, []string{"OUT"}, true, ""},
		{[]string{"A", "--json", "B", "--rerun-list", "f"}, []string{"A", "B"}, true, "f"},
		{[]string{"--", "--json"}, []string{"--json"}, false, ""},
		{[]string{"OUT", "--", "--json", "x"}, []string{"OUT", "--json", "x"}, false, ""},
		{[]string{"--rerun-list", "--", "OUT", "--json"}, []string{"OUT"}, true, "--"},
		{[]string{"--json", "--rerun-list=--", "--", "-x"}, []string{"-x"}, true, "--"},
		{[]string{"-", "--json"}, []string{"-"}, true, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		l := fs.String("rerun-list", "", "")
		pos, err := cli.ParseArgs(fs, c.args)
		if err != nil || !reflect.DeepEqual(pos, c.pos) || *j != c.json || *l != c.list {
			t.Errorf("%q: positionals %q, --json %v, --rerun-list %q, err %v; want %q, %v, %q", c.args, pos, *j, *l, err, c.pos, c.json, c.list)
		}
	}
}

// mergedRun is a complete, merged two-scenario run, made once.
func mergedRun(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1")
	wantExit(t, mergeShards(t, out), 0)
	return out
}

// TestFlagsAfterOut: every command takes its flags before or after OUT.
func TestFlagsAfterOut(t *testing.T) {
	t.Parallel()
	out := mergedRun(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{out, "--json"}, 0},
		{[]string{"--json", out}, 0},
		{[]string{out, "--verify", "full", "--json", "--workers", "2"}, 0},
		{[]string{"--json", "--", out}, 0},
		{[]string{"verify", out, "--json"}, 0},
		{[]string{"verify", "--full", out, "--json", "--workers", "1"}, 0},
		{[]string{"report", out, "--json"}, 0},
		{[]string{"status", out, "--json"}, 0},
	} {
		r := mergeShards(t, c.args...)
		wantExit(t, r, c.code)
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Errorf("%q: stdout is not the JSON report (the flag after OUT was not taken): %v\n%s", c.args, err, r)
		}
	}
}

// TestHelp: --help, -h and the help command print the help on stdout,
// nothing on stderr, and exit 0; "help COMMAND" is "COMMAND --help".
func TestHelp(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	top := mergeShards(t, "--help")
	cases := []struct {
		args []string
		same []string // prints what these arguments print
		want string   // a flag only this help lists
	}{
		{[]string{"--help"}, nil, "-requeue-lost"},
		{[]string{"-h"}, []string{"--help"}, ""},
		{[]string{"help"}, []string{"--help"}, ""},
		{[]string{"help", "help"}, []string{"--help"}, ""},
		{[]string{out, "--help"}, []string{"--help"}, ""},
		{[]string{"--json", "-h", out}, []string{"--help"}, ""},
		{[]string{"help", "verify"}, []string{"verify", "--help"}, "-full"},
		{[]string{"verify", out, "-h"}, []string{"verify", "--help"}, "-full"},
		{[]string{"help", "report"}, []string{"report", "--help"}, "-lease-grace"},
		{[]string{"help", "status"}, []string{"status", "--help"}, "-interval"},
		{[]string{"help", "policy"}, []string{"policy", "--help"}, ""},
		{[]string{"policy", "pack", "-h"}, []string{"policy", "--help"}, ""},
	}
	for _, c := range cases {
		r := mergeShards(t, c.args...)
		wantExit(t, r, 0)
		if r.stderr != "" || !strings.HasPrefix(r.stdout, "usage:\n") || !strings.Contains(r.stdout, "\nFlags:\n") {
			t.Errorf("%q: want the help on stdout and nothing on stderr:\n%s", c.args, r)
		}
		if c.same != nil {
			if want := mergeShards(t, c.same...); r.stdout != want.stdout {
				t.Errorf("%q prints another help than %q:\n%s\nwant:\n%s", c.args, c.same, r.stdout, want.stdout)
			}
		}
		if c.want != "" && !strings.Contains(r.stdout, "\n  "+c.want) {
			t.Errorf("%q: the help does not list %s:\n%s", c.args, c.want, r.stdout)
		}
	}
	// The help says what a merge writes besides the simulation.
	for _, want := range []string{"OUT/training/", "OUT/policy/", "merge-shards help", "after OUT", "your solver"} {
		if !strings.Contains(top.stdout, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	// Supervised (a release build's default), the worker's help still
	// reaches stdout.
	cmd := exec.CommandContext(testCtx(t), mergeBin, "verify", "--help")
	cmd.Env = append(testtools.CleanEnv(), superviseEnv+"=1")
	r := runCmd(t, cmd, []string{"verify", "--help"}, "supervised merge-shards verify --help")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "\n  -full") {
		t.Errorf("supervised verify --help:\n%s", r)
	}
}

// TestUsageErrorsOneLine: every usage error is one line on stderr that
// names what is wrong and where the help is, nothing on stdout, exit 1.
func TestUsageErrorsOneLine(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
		help string // the command whose help the error points to
	}{
		{[]string{"--workers", "0", out}, "--workers 0: want at least 1", "merge-shards"},
		{[]string{"--workers", "-3", out}, "--workers -3: want at least 1", "merge-shards"},
		{[]string{out, "--workers", "-3"}, "--workers -3: want at least 1", "merge-shards"},
		{[]string{out, "--workers", "abc"}, "--workers abc: want an integer", "merge-shards"},
		{[]string{out, "--workers"}, "--workers: needs a value", "merge-shards"},
		{[]string{"verify", out, "--workers", "0"}, "--workers 0: want at least 1", "merge-shards verify"},
		{[]string{"--verify", "sometimes", out}, "--verify sometimes: unknown verify level", "merge-shards"},
		{[]string{"--lease-grace", "0s", out}, "--lease-grace 0s: want > 0", "merge-shards"},
		{[]string{"report", out, "--lease-grace", "5"}, "--lease-grace 5: want a duration", "merge-shards report"},
		{[]string{"status", "--interval", "0s", out}, "--interval 0s: want > 0", "merge-shards status"},
		{[]string{"status", out, "--watch=maybe"}, "--watch=maybe: want true or false", "merge-shards status"},
		{[]string{"--no-such-flag", out}, "unknown flag --no-such-flag", "merge-shards"},
		{[]string{out, "--no-such-flag"}, "unknown flag --no-such-flag", "merge-shards"},
		{[]string{"verify", out, "--gc"}, "unknown flag --gc", "merge-shards verify"},
		{nil, "want exactly one output directory (OUT), got none", "merge-shards"},
		{[]string{"--json"}, "want exactly one output directory (OUT), got none", "merge-shards"},
		{[]string{"verify"}, "want exactly one output directory (OUT), got none", "merge-shards verify"},
		{[]string{out, out}, "want exactly one output directory (OUT), got 2 arguments", "merge-shards"},
		{[]string{out, "verify"}, "a command comes first: merge-shards verify [flags] OUT", "merge-shards"},
		{[]string{"report", out, "x"}, "want exactly one output directory (OUT), got 2 arguments", "merge-shards report"},
		{[]string{filepath.Join(out, "nope")}, "nope is not a directory", "merge-shards"},
		{[]string{"verfy"}, "verfy is not a directory (commands: verify, report, status, policy, compact, help)", "merge-shards"},
		{[]string{"--", "help"}, "help is not a directory", "merge-shards"},
		{[]string{"help", "nosuch"}, "help nosuch: unknown command", "merge-shards"},
		{[]string{"help", "verify", "x"}, "help: want at most one command", "merge-shards"},
		{[]string{"policy"}, "want pack or unpack, got nothing", "merge-shards policy"},
		{[]string{"policy", "frob", out}, `want pack or unpack, got "frob"`, "merge-shards policy"},
		{[]string{"policy", "pack"}, "want one policy directory", "merge-shards policy pack"},
		{[]string{"policy", "unpack", filepath.Join(out, "nope")}, "nope is not a directory", "merge-shards policy unpack"},
	} {
		r := mergeShards(t, c.args...)
		wantExit(t, r, 1)
		line, rest, _ := strings.Cut(r.stderr, "\n")
		if rest != "" || r.stdout != "" {
			t.Errorf("%q: want one line on stderr and nothing on stdout:\n%s", c.args, r)
		}
		if !strings.HasPrefix(line, c.help+": ") || !strings.Contains(line, c.want) || !strings.HasSuffix(line, "(see "+c.help+" --help)") {
			t.Errorf("%q: stderr %q, want %q: ... %q ... (see %s --help)", c.args, line, c.help, c.want, c.help)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("a usage error wrote %d entries into OUT", len(entries))
	}
}

// TestVerifyNotMerged: verify on a directory it cannot check says what the
// directory is: a partial merge of a training with no simulation yet (not
// "run merge-shards first": it ran), simulation journals not merged yet,
// or no hydroshard output at all. A partial merge of some scenarios
// verifies.
func TestVerifyNotMerged(t *testing.T) {
	t.Parallel()
	verify := func(t *testing.T, out string, code int, want ...string) {
		t.Helper()
		r := mergeShards(t, "verify", out)
		wantExit(t, r, code)
		for _, w := range want {
			if !strings.Contains(r.output(), w) {
				t.Errorf("verify says\n%s\nwant %q in it", r, w)
			}
		}
		if code != 0 && strings.Contains(r.stderr, "run merge-shards first") && strings.Contains(r.stderr, "partial") {
			t.Errorf("verify tells to merge a directory whose merge was partial:\n%s", r)
		}
	}
	t.Run("training only", func(t *testing.T) {
		// The ranks trained and died before they simulated: no
		// simulation journal, no simulation data.
		out := t.TempDir()
		runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1", "--iterations", "2")
		journals, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
		for _, j := range journals {
			if !strings.Contains(filepath.Base(j), "."+layout.TrainingTag+".") {
				os.Remove(j)
			}
		}
		os.RemoveAll(filepath.Join(out, layout.SimDir))
		r := mergeShards(t, out)
		wantExit(t, r, 3)
		if !strings.Contains(r.stdout, "PARTIAL") {
			t.Fatalf("test setup: the merge is not partial:\n%s", r)
		}
		verify(t, out, 1, "the last merge was partial", "training journals only", `training/_manifest.json says status "complete"`, "no simulation/_manifest.json")
	})
	t.Run("not merged yet", func(t *testing.T) {
		out := t.TempDir()
		runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "1")
		verify(t, out, 1, "simulation/_manifest.json is missing", "1 simulation journal under _shards/journal", "run merge-shards "+out)
	})
	t.Run("no output", func(t *testing.T) {
		verify(t, t.TempDir(), 1, "not a merged directory", "no rank journals")
	})
	t.Run("partial simulation", func(t *testing.T) {
		out := t.TempDir()
		runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "2")
		wantExit(t, mergeShards(t, out), 3)
		verify(t, out, 0, "OK", "manifest status partial")
	})
}

// TestRerunHint: a partial merge's rerun hint (merge and report) speaks of
// the solver, simrank only as an example.
func TestRerunHint(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	runSimrank(t, nil, "--out", out, "--scenarios", "2", "--rank", "0", "--world", "2")
	for _, args := range [][]string{{"report", out}, {out}} {
		r := mergeShards(t, args...)
		wantExit(t, r, 3)
		if !strings.Contains(r.stdout, "rerun the missing scenarios with your solver") || !strings.Contains(r.stdout, "e.g. simrank --scenarios-from FILE") {
			t.Errorf("%q: rerun hint:\n%s", args, r)
		}
	}
}
