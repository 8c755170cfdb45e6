// Command rsswrap runs a command and prints its peak RSS, for shardbench.
//
// Why a separate process: Go starts children with vfork semantics
// (CLONE_VM), so until exec the child runs on its parent's address space,
// and Linux folds that address space's high-water mark into the child's
// ru_maxrss. A child of shardbench, which holds hundreds of MB of
// benchmark data, would report at least shardbench's peak. rsswrap is a
// small process: the grandchild's ru_maxrss is max(rsswrap's few MB, its
// own peak), i.e. its own peak.
//
//	rsswrap COMMAND [ARG...]
//
// The command's stdout and stderr go to rsswrap's stderr; rsswrap prints one
// JSON line on stdout, {"maxrss_kib": N, "exit": CODE}, and exits 0 when it
// could run the command (whatever the command's exit code), 1 otherwise.
// The command is killed if rsswrap dies (so a timeout in shardbench, which
// kills rsswrap, does not leave it running).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: rsswrap COMMAND [ARG...]")
		return 2
	}
	// Pdeathsig follows the thread that started the child: keep it alive.
	runtime.LockOSThread()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "rsswrap: %v\n", err)
		return 1
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "rsswrap: no rusage for the child")
		return 1
	}
	out, _ := json.Marshal(map[string]int64{"maxrss_kib": ru.Maxrss, "exit": int64(cmd.ProcessState.ExitCode())})
	fmt.Println(string(out))
	return 0
}
