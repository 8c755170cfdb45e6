package main

// Tests of the command line's conventions (cli.go): help on stdout with
// exit 0, one-line usage errors that name the flag with exit 2, and the
// output levels (--quiet, default, -v, a progress line on a terminal).

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHelp: --help, -h and "simrank help" print the help on stdout,
// nothing on stderr, exit 0, wherever they are among the flags.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}, {"--out", "x", "--help"}, {"--case", "nosuch", "-h"}, {"--out", "x", "help"}} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		if code != exitOK || stderr.Len() != 0 || !strings.HasPrefix(stdout.String(), "usage: simrank") {
			t.Errorf("%q: exit %d, stderr %q, stdout %.60q; want exit 0 and the help on stdout", args, code, stderr.String(), stdout.String())
		}
		for _, want := range []string{"\n  -v\t", "\n  -quiet\n", "\n  -out string\n", "Exit codes:", "  2  usage"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%q: the help lacks %q", args, want)
			}
		}
	}
}

// TestUsageErrorsOneLine: a usage error is one line on stderr that names
// the flag and points to --help, nothing on stdout, exit 2 (an unknown
// --case included: it used to exit 1, the code of a failed run).
func TestUsageErrorsOneLine(t *testing.T) {
	clearLauncherEnv(t)
	out := t.TempDir()
	id := []string{"--out", out, "--rank", "0", "--world", "1", "--case", "tiny"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(id, "--case", "nosuch"), `--case "nosuch": not a builtin`},
		{append(id, "--workers", "0"), "--workers 0: want at least 1"},
		{append(id, "--workers", "-3"), "--workers -3: want at least 1"},
		{append(id, "--scenario-pad", "13"), "--scenario-pad 13: want 0..12"},
		{append(id, "--scenarios", "abc"), "--scenarios abc: want an integer"},
		{append(id, "--scenario-delay", "5"), "--scenario-delay 5: want a duration"},
		{append(id, "--seed", "-1"), "--seed -1: want a non-negative integer"},
		{append(id, "--quiet=maybe"), "--quiet=maybe: want true or false"},
		{append(id, "--no-such-flag"), "unknown flag --no-such-flag"},
		{append(id, "--scenarios"), "--scenarios: needs a value"},
		{append(id, "--quiet", "-v"), "--quiet and -v: choose one"},
		{append(id, "--ownership", "zigzag"), "--ownership zigzag: want contiguous or round-robin"},
		{append(id, "stray"), `unexpected argument "stray"`},
		{append(id, "--", "--quiet"), `unexpected argument "--quiet"`},
		{[]string{"--case", "tiny"}, "--out is required"},
		{[]string{"--out", out, "--case", "tiny"}, "no launcher environment"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		line, rest, _ := strings.Cut(stderr.String(), "\n")
		if code != exitUsage || rest != "" || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", c.args, code, stdout.String(), stderr.String())
			continue
		}
		if !strings.HasPrefix(line, "simrank: ") || !strings.Contains(line, c.want) || !strings.HasSuffix(line, "(see simrank --help)") {
			t.Errorf("%q: stderr %q, want simrank: ... %q ... (see simrank --help)", c.args, line, c.want)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("a usage error wrote %d entries into --out", len(entries))
	}
}

func clearLauncherEnv(t *testing.T) {
	for _, k := range []string{"SLURM_PROCID", "SLURM_NTASKS", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// TestOutputLevels: by default one summary line per phase and no line
// per scenario or iteration; -v adds them; --quiet prints nothing on a
// run that goes as planned, and still the notice of a skipped training.
func TestOutputLevels(t *testing.T) {
	const scenarios, iterations = 5, 3
	runLevel := func(t *testing.T, out string, flags ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append([]string{"--case", "tiny", "--out", out, "--scenarios", strconv.Itoa(scenarios), "--rank", "0", "--world", "1", "--iterations", strconv.Itoa(iterations), "--checkpoint-every", "2"}, flags...)
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d: %s", flags, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout %q, want nothing", flags, stdout.String())
		}
		return stderr.String()
	}
	count := func(s, sub string) int { return strings.Count(s, sub) }
	for _, c := range []struct {
		flags                                      []string
		queued, iterLines, ckLines, summaries, all int
	}{
		{nil, 0, 0, 0, 2, 2},
		{[]string{"-v"}, scenarios, iterations, 2, 2, scenarios + iterations + 2 + 2},
		{[]string{"--verbose"}, scenarios, iterations, 2, 2, scenarios + iterations + 2 + 2},
		{[]string{"--quiet"}, 0, 0, 0, 0, 0},
	} {
		log := runLevel(t, t.TempDir(), c.flags...)
		got := []int{count(log, "queued scenario"), count(log, "training iteration"), count(log, "checkpoint of iteration"), count(log, ": done: ") + count(log, "iterations written"), count(log, "\n")}
		want := []int{c.queued, c.iterLines, c.ckLines, c.summaries, c.all}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: %d scenario, %d iteration, %d checkpoint, %d summary lines, %d in all; want %v:\n%s", c.flags, got[0], got[1], got[2], got[3], got[4], want, log)
				break
			}
		}
		if strings.Contains(log, "\r") {
			t.Errorf("%q: a progress line on a stderr that is no terminal:\n%q", c.flags, log)
		}
	}
	// --quiet keeps the notices: a training found done is skipped.
	out := t.TempDir()
	runLevel(t, out, "--quiet")
	if log := runLevel(t, out, "--quiet"); count(log, "\n") != 1 || !strings.Contains(log, "training: already done") {
		t.Errorf("--quiet rerun: stderr %q, want the one notice that the training was skipped", log)
	}
}

// TestProgressOnTerminal: on a terminal the default level draws one
// progress line, redrawn in place and cleared before the summaries; -v
// and --quiet draw none.
func TestProgressOnTerminal(t *testing.T) {
	for _, c := range []struct {
		flags    []string
		progress bool
	}{{nil, true}, {[]string{"-v"}, false}, {[]string{"--quiet"}, false}} {
		master, slave, err := openPTY()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		var screen bytes.Buffer
		read := make(chan struct{})
		go func() { defer close(read); _, _ = screen.ReadFrom(master) }()
		args := append([]string{"--case", "tiny", "--out", t.TempDir(), "--scenarios", "3", "--rank", "0", "--world", "1", "--iterations", "2"}, c.flags...)
		code := run(args, new(bytes.Buffer), slave)
		slave.Close()
		<-read
		master.Close()
		s := screen.String()
		if code != exitOK {
			t.Fatalf("%q: exit %d: %q", c.flags, code, s)
		}
		drawn := strings.Contains(s, "\r\x1b[K") && strings.Contains(s, "3/3 scenarios queued") && strings.Contains(s, "training iteration 2/2")
		if drawn != c.progress {
			t.Errorf("%q: progress line drawn %v, want %v:\n%q", c.flags, drawn, c.progress, s)
		}
		// What the terminal shows in the end: the summaries, no
		// progress line left over.
		want := []string{"training: 2 iterations written", ": done: 3 scenarios committed"}
		if c.flags != nil {
			want = nil
			if c.flags[0] == "-v" {
				want = []string{"training iteration 1/2", "training iteration 2/2", "training: 2 iterations written", "queued scenario 0", "queued scenario 1", "queued scenario 2", ": done: 3 scenarios committed"}
			}
		}
		lines := render(s)
		if len(lines) != len(want) {
			t.Errorf("%q: the terminal shows %q, want %d lines: %q", c.flags, lines, len(want), want)
			continue
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, "simrank rank 0/1 ") || !strings.Contains(l, want[i]) || strings.Count(l, "simrank") != 1 {
				t.Errorf("%q: line %d on the terminal is %q, want %q", c.flags, i+1, l, want[i])
			}
		}
	}
}

// render returns the lines a terminal shows after s: "\r" returns to the
// line's start, "\x1b[K" erases to its end; a last empty line is dropped.
func render(s string) []string {
	var lines [][]rune
	line, col := []rune{}, 0
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		switch {
		case rs[i] == '\r':
			col = 0
		case rs[i] == '\n':
			lines = append(lines, line)
			line, col = []rune{}, 0
		case strings.HasPrefix(string(rs[i:min(i+3, len(rs))]), "\x1b[K"):
			line = line[:col]
			i += 2
		default:
			if col < len(line) {
				line[col] = rs[i]
			} else {
				line = append(line, rs[i])
			}
			col++
		}
	}
	if len(line) > 0 {
		lines = append(lines, line)
	}
	var out []string
	for _, l := range lines {
		out = append(out, string(l))
	}
	return out
}

// openPTY opens a pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlock the slave
		m.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}
