package launch

// submit.sh's command line, without a cluster: a fake sbatch first in
// PATH records every call, so a test can assert that nothing was
// submitted.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSbatch returns an environment whose sbatch appends its arguments to
// the returned file, one call a line, and prints a job id.
func fakeSbatch(t *testing.T) (env []string, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	if err := os.WriteFile(calls, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$*\" >> '" + calls + "'\necho 4242\n"
	if err := os.WriteFile(filepath.Join(dir, "sbatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kv := range cleanEnv() {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			kv = "PATH=" + dir + ":" + p
		}
		env = append(env, kv)
	}
	return env, calls
}

// runSubmit runs submit.sh with args and returns its exit code and output.
func runSubmit(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "scripts", "slurm", "submit.sh")}, args...)...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("submit.sh %q: %v\n%s", args, err, e.String())
	}
	return code, o.String(), e.String()
}

func sbatchCalls(t *testing.T, calls string) string {
	t.Helper()
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSubmitHelp: --help and -h print the usage, written as text (not the
// script's own lines), on stdout, and exit 0, submitting nothing.
func TestSubmitHelp(t *testing.T) {
	env, calls := fakeSbatch(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-n", "4", "--help"}, {"-n", "4", "/scratch/x", "--help", "--"}} {
		code, stdout, stderr := runSubmit(t, env, args...)
		if code != 0 || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 0 and nothing on stderr", args, code, stderr)
		}
		for _, want := range []string{"usage: scripts/slurm/submit.sh [options] OUT -- RANK_ARGS...", "-n, --ntasks N", "--program PATH", "--sbatch ARG", `"--" is required`, "Exit codes:"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%q: the usage lacks %q:\n%s", args, want, stdout)
			}
		}
		// The old usage printed the script's first lines, code included.
		for _, code := range []string{"set -euo", "ROOT=", "$(", "#!/", "# "} {
			if strings.Contains(stdout, code) {
				t.Errorf("%q: the usage shows the script's code (%q):\n%s", args, code, stdout)
			}
		}
	}
	if s := sbatchCalls(t, calls); s != "" {
		t.Errorf("--help submitted jobs:\n%s", s)
	}
}

// TestSubmitMissingDashes: rank arguments without "--" before them (or no
// "--" at all) are a usage error: one line that says "--" is missing,
// exit 2, nothing submitted, OUT not created. With "--" the same
// arguments submit the two jobs (the fake sbatch is the one called).
func TestSubmitMissingDashes(t *testing.T) {
	env, calls := fakeSbatch(t)
	out := filepath.Join(t.TempDir(), "study")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "2", out}, `missing "--" after OUT`},
		{[]string{"-n", "2", out, "--case", "demo", "--scenarios", "4"}, `--case after OUT: the rank program's arguments go after "--"`},
		{[]string{out, "demo"}, `the rank program's arguments go after "--"`},
		{[]string{"--seed", "7", out, "--"}, `unknown option --seed (the rank program's arguments go after OUT and "--")`},
		{[]string{"-n", "zero", out, "--"}, "-n zero: want an integer >= 1"},
		{[]string{"-n", "0", out, "--"}, "-n 0: want an integer >= 1"},
		{[]string{out}, `missing "--" after OUT`},
		{[]string{"-n"}, "-n needs a value"},
		{[]string{"--", "--case", "demo"}, "want the output directory OUT"},
	} {
		code, stdout, stderr := runSubmit(t, env, c.args...)
		line, rest, _ := strings.Cut(stderr, "\n")
		if code != 2 || stdout != "" || rest != "" || !strings.HasPrefix(line, "submit.sh: ") || !strings.Contains(line, c.want) || !strings.HasSuffix(line, "(see scripts/slurm/submit.sh --help)") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line: submit.sh: ...%s... (see scripts/slurm/submit.sh --help)", c.args, code, stdout, stderr, c.want)
		}
		if s := sbatchCalls(t, calls); s != "" {
			t.Fatalf("%q submitted jobs:\n%s", c.args, s)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%q created OUT %s", c.args, out)
		}
	}

	code, stdout, stderr := runSubmit(t, env, "-n", "2", out, "--", "--case", "demo", "--scenarios", "4")
	if code != 0 || stdout != "run 4242\nmerge 4242\n" {
		t.Fatalf("with \"--\": exit %d, stdout %q, stderr %q; want both jobs submitted", code, stdout, stderr)
	}
	if n := strings.Count(sbatchCalls(t, calls), "\n"); n != 2 {
		t.Errorf("with \"--\": %d sbatch calls, want 2 (run and merge)", n)
	}
}
