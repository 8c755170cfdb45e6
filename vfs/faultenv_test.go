//go:build faultinject

package vfs_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

// TestFaultEnv runs children with HYDROSHARD_FAULT set (the variable is
// read once per process, so each spec needs its own process): OS() fails
// or kills at the hit the spec names, and a bad spec ends the process
// with a message.
func TestFaultEnv(t *testing.T) {
	if dir := os.Getenv("VFS_TEST_FAULTENV_DIR"); dir != "" {
		err := workload(vfs.OS(), dir)
		fmt.Printf("child: injected=%v err=%v\n", errors.Is(err, vfs.ErrInjected), err)
		os.Exit(0)
	}
	for _, c := range []struct {
		spec   string
		signal bool   // killed by SIGKILL
		exit   int    // exit code otherwise
		out    string // in the child's output, %s standing for its directory
	}{
		{"", false, 0, "injected=false err=<nil>"},
		{"temp-fsync:error:2", false, 0, "injected=true err=syncing %s/_shards/tmp/t1.tmp: injected fault: sync %s/_shards/tmp/t1.tmp\n"},
		{"journal-fsync:error:3", false, 0, "injected fault: sync %s/_shards/journal/rank-0.jsonl"},
		{"sync-dir@simulation/*/*:error:2", false, 0, "injected fault: sync-dir %s/simulation/costs/scenario_id=1"},
		{"dir-fsync:error:1", false, 0, "injected fault: sync-dir %s"}, // the first directory sync of all: Ensure's
		{"rename:kill:1", true, 0, ""},
		{"temp-write:kill:3", true, 0, ""},
		{"bogus", false, 1, "HYDROSHARD_FAULT: fault \"bogus\": want point:action:n"},
	} {
		t.Run(c.spec, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestFaultEnv$")
			cmd.Env = append(os.Environ(), "VFS_TEST_FAULTENV_DIR="+dir, vfs.FaultEnv+"="+c.spec)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			errors.As(err, &ee)
			switch {
			case c.signal:
				if ee == nil || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("child: %v, want SIGKILL; output:\n%s", err, out)
				}
			case c.exit == 0 && err != nil, c.exit != 0 && (ee == nil || ee.ExitCode() != c.exit):
				t.Fatalf("child: %v, want exit %d; output:\n%s", err, c.exit, out)
			}
			if want := strings.ReplaceAll(c.out, "%s", dir); !strings.Contains(string(out), want) {
				t.Errorf("output:\n%s\nwant %q", out, want)
			}
		})
	}
}

// TestFaultEnvUnset: with the variable unset, a faultinject build's OS()
// is not wrapped (the rest of the suite runs with it too).
func TestFaultEnvUnset(t *testing.T) {
	if os.Getenv(vfs.FaultEnv) != "" {
		t.Skip(vfs.FaultEnv, " is set")
	}
	if _, ok := vfs.OS().(*vfs.Injector); ok {
		t.Error("OS() is an Injector with no spec")
	}
	if _, err := vfs.WriteNewSync(vfs.OS(), filepath.Join(t.TempDir(), "f"), writeString("x")); err != nil {
		t.Error(err)
	}
}
