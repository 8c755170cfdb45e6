package main

// Supervision: the exit code of a process that dies. Go's runtime ends a
// process that runs out of memory (or cannot create a thread, or panics
// outside run's recover) with exit 2, and 2 is "corrupt input" to every
// job script that runs the merge: keep everything, call a human. The
// kernel's OOM killer ends it with SIGKILL instead. So merge-shards runs
// its work in a child process, a copy of itself, and this parent turns a
// death into exit 1 with a message that says so. The merge is crash-safe
// (write-ahead; internal/crashtest and the kill tests prove it): a dead
// child leaves OUT consistent, and merging again is all it takes.
//
// The parent re-executes /proc/self/exe (the same binary even if it was
// replaced since) with the same arguments, environment, stdin and stdout
// (the child's own descriptors: no copy), and HYDROSHARD_MERGE_CHILD set
// to the parent's pid (a variable inherited from anywhere else does not
// match the child's parent pid, so it never disables supervision). Two
// pipes tell a death from a verdict:
//
//   - fd 3, the crash pipe: the child writes "ready\n" to it first thing,
//     then hands it to debug.SetCrashOutput, so that the runtime copies
//     every fatal error and unhandled panic report there. A child exit 2
//     with anything after "ready\n", or without "ready\n" (it died before
//     main ran), is a death; an exit 2 with exactly "ready\n" is the
//     merge's verdict "corrupt". Only the runtime writes there after the
//     marker, so no text a journal or file name puts into a message can
//     forge a death, nor hide one.
//   - stderr goes through a pipe that the parent copies to its own stderr
//     as it arrives, watching for the first line of a crash report
//     ("fatal error: out of memory", which the runtime does not copy to
//     the crash output; "panic: ..."; "SIGQUIT: quit") to say what the
//     death was: out of memory (or threads), a SIGQUIT dump, or a bug.
//
// SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the parent are forwarded to
// the child, which handles them as before (an interrupted merge exits 1,
// a status --watch 0; SIGQUIT's goroutine dump, Go's exit 2, is exit 1). A child killed by SIGKILL, and only the parent
// alive to see it, was most likely chosen by the kernel's OOM killer:
// exit 1. A child that died of another signal (one that came before its
// handlers were installed, or a broken stdout's SIGPIPE) is mirrored: the
// parent dies of the same signal, as the merge would have alone. If the
// parent dies, the kernel kills the child (PR_SET_PDEATHSIG).
//
// HYDROSHARD_MERGE_SUPERVISE=0 runs the work in one process (debuggers,
// profilers); =1 supervises. Release builds supervise by default; test
// builds (-tags faultinject) do not, since their crash tests kill and
// freeze the merging process itself, by its pid (supervise_*.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/internal/cli"
)

const (
	// childEnv marks the supervised child: "<parent pid>", or
	// "<parent pid>,tty" when the parent's stderr is a terminal (the
	// child's stderr is then a pipe to it, and progress is still wanted).
	childEnv = "HYDROSHARD_MERGE_CHILD"
	// superviseEnv: "0" runs in one process, "1" supervises; unset, the
	// build's default (superviseDefault).
	superviseEnv = "HYDROSHARD_MERGE_SUPERVISE"
	// readyMark is what a child writes to the crash pipe once it runs
	// main.
	readyMark = "ready\n"
	// crashFD is the crash pipe's descriptor in the child.
	crashFD = 3
)

// stderrTerminal: this process is a supervised child whose stderr pipe
// leads to a terminal (progressTo).
var stderrTerminal bool

// supervised decides how this process runs. A supervised child sets up
// its crash output and returns false: it does the work. A parent runs
// the child and returns true with the exit code to end with. Otherwise
// (supervision off) it returns false.
func supervised() (code int, parent bool) {
	if v, ok := os.LookupEnv(childEnv); ok {
		os.Unsetenv(childEnv) // nothing this process starts inherits it
		pid, tty, _ := strings.Cut(v, ",")
		if pid == strconv.Itoa(os.Getppid()) {
			becomeChild(tty == "tty")
			return 0, false
		}
	}
	switch os.Getenv(superviseEnv) {
	case "0":
		return 0, false
	case "1":
	default:
		if !superviseDefault {
			return 0, false
		}
	}
	return supervise(), true
}

// becomeChild marks the crash pipe ready and hands it to the runtime.
func becomeChild(tty bool) {
	stderrTerminal = tty
	f := os.NewFile(crashFD, "crash-output")
	if f == nil {
		return
	}
	defer f.Close() // SetCrashOutput keeps a duplicate
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return // not the parent's pipe: write nothing to whatever it is
	}
	if _, err := f.WriteString(readyMark); err == nil {
		_ = debug.SetCrashOutput(f, debug.CrashOptions{})
	}
}

// child is one run of the supervised child process.
type child struct {
	cmd    *exec.Cmd
	stderr *stderrWatch
	crash  boundedBuffer
	wg     sync.WaitGroup
}

// supervise runs the work in a child process and returns the exit code
// to end with.
func supervise() int {
	// The parent only waits and copies a pipe: one P is plenty, and
	// every thread it does not start is address space (a stack, a malloc
	// arena) it cannot run out of while the child works.
	procs := runtime.GOMAXPROCS(1)
	// Subscribed before the child starts: a signal that comes while it
	// starts is forwarded once it runs.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	c, err := startChild()
	if err != nil {
		signal.Stop(sigs)
		if errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EAGAIN) {
			fmt.Fprintf(os.Stderr, "merge-shards: out of memory: cannot start its worker process: %v; exit 1; nothing was changed\n", err)
			return exitEnv
		}
		// No way to re-execute this binary (no /proc, say): run the work
		// here, unsupervised.
		fmt.Fprintf(os.Stderr, "merge-shards: cannot start its worker process (%v): running in one process, where a Go runtime fatal error (out of memory) exits 2\n", err)
		runtime.GOMAXPROCS(procs)
		return mainWork()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				// os.Process signals through a pidfd: never another
				// process that reused the pid.
				_ = c.cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	werr := c.cmd.Wait()
	signal.Stop(sigs)
	close(done)
	c.wg.Wait() // the child's stderr and crash output, to their ends
	st := c.cmd.ProcessState
	if st == nil {
		fmt.Fprintf(os.Stderr, "merge-shards: waiting for its worker process: %v; exit 1\n", werr)
		return exitEnv
	}
	return c.verdict(st)
}

// startChild starts this binary again as the supervised child.
func startChild() (*child, error) {
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	crashR, crashW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		crashR.Close()
		crashW.Close()
		return nil, err
	}
	mark := strconv.Itoa(os.Getpid())
	if cli.IsTerminal(os.Stderr) {
		mark += ",tty"
	}
	env := []string{childEnv + "=" + mark}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, childEnv+"=") {
			env = append(env, kv)
		}
	}
	c := &child{stderr: &stderrWatch{w: os.Stderr}, crash: boundedBuffer{max: 64 << 10}}
	c.cmd = &exec.Cmd{
		Path:       exe,
		Args:       os.Args,
		Env:        env,
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     errW,
		ExtraFiles: []*os.File{crashW}, // fd 3
		// The kernel sends Pdeathsig when the thread that started the
		// child exits; a Go thread exits only when a goroutine locked to
		// it ends locked, which none of this process's do.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	err = c.cmd.Start()
	crashW.Close() // the child has its own copies
	errW.Close()
	if err != nil {
		crashR.Close()
		errR.Close()
		return nil, err
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		_, _ = io.Copy(c.stderr, errR) // live: every read is written on at once
		c.stderr.flush()
		errR.Close()
	}()
	go func() {
		defer c.wg.Done()
		_, _ = io.Copy(&c.crash, crashR) // drained whole, so the child never blocks on it
		crashR.Close()
	}()
	return c, nil
}

// verdict maps how the child ended onto merge-shards' exit code.
func (c *child) verdict(st *os.ProcessState) int {
	ws, _ := st.Sys().(syscall.WaitStatus)
	out := c.crash.bytes()
	ready := bytes.HasPrefix(out, []byte(readyMark))
	crashed := !ready || len(out) > len(readyMark)
	pid := st.Pid()
	switch {
	case ws.Exited() && ws.ExitStatus() == exitCorrupt && crashed:
		c.died(pid, ready, fmt.Sprintf("exit %d", exitCorrupt))
		return exitEnv
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		fmt.Fprintf(os.Stderr, "merge-shards: killed (out of memory?): its worker process (pid %d) was killed by SIGKILL, as the kernel's OOM killer does; exit 1; %s; run it again (with more memory)\n", pid, notLost)
		return exitEnv
	case ws.Signaled() && len(out) > len(readyMark):
		// A runtime crash that ends in a signal (GOTRACEBACK=crash).
		c.died(pid, ready, "signal "+ws.Signal().String())
		return exitEnv
	case ws.Signaled():
		return mirror(ws.Signal())
	}
	fmt.Fprintf(os.Stderr, "merge-shards: its worker process (pid %d) ended unexpectedly (%v); exit 1\n", pid, st)
	return exitEnv
}

const notLost = "nothing committed is lost: the merge is crash-safe"

// died reports a child that the Go runtime ended: out of memory (or
// another resource: threads), a SIGQUIT's goroutine dump, or a bug.
func (c *child) died(pid int, ready bool, how string) {
	crash := c.stderr.crashLine()
	when := ""
	if !ready {
		when = " while starting"
	}
	if crash == "" {
		crash = "a Go runtime crash"
	}
	switch {
	case resourceFatal(crash):
		fmt.Fprintf(os.Stderr, "merge-shards: out of memory: its worker process (pid %d) died%s (%s, %s); exit 1; %s; run it again with more memory\n", pid, when, crash, how, notLost)
	case strings.HasPrefix(crash, "SIGQUIT:"):
		fmt.Fprintf(os.Stderr, "merge-shards: quit: its worker process (pid %d) dumped its goroutines on SIGQUIT and ended (%s); exit 1; %s\n", pid, how, notLost)
	default:
		fmt.Fprintf(os.Stderr, "merge-shards: internal error (a bug, please report it): its worker process (pid %d) died%s (%s, %s; its report is above); exit 1; %s\n", pid, when, crash, how, notLost)
	}
}

// resourceFatal reports whether a crash line is about memory or
// threads, not a bug.
func resourceFatal(line string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "newosproc", "failed to create new OS thread", "pthread_create failed"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// isCrashLine reports whether a line of stderr begins a Go runtime crash
// report: "fatal error: ..." (which the runtime does not copy to the
// crash output), "panic: ...", a signal's "SIGSEGV: segmentation
// violation", or cgo's "runtime/cgo: pthread_create failed: ..." that
// precedes its abort.
func isCrashLine(l []byte) bool {
	for _, p := range []string{"fatal error: ", "panic: ", "runtime/cgo: "} {
		if bytes.HasPrefix(l, []byte(p)) {
			return true
		}
	}
	name, _, ok := bytes.Cut(l, []byte(": "))
	return ok && len(name) > 3 && bytes.HasPrefix(name, []byte("SIG")) && bytes.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == nil
}

// mirror ends this process with the signal that ended the child, as if
// it had been this process's own: a shell or job script sees what it
// would have seen without supervision. A signal Go does not die of when
// raised (SIGPIPE) falls back to the shell's code for it, 128+signal.
func mirror(sig syscall.Signal) int {
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	time.Sleep(100 * time.Millisecond)
	return 128 + int(sig)
}

// stderrWatch copies the child's stderr to w as it arrives and keeps the
// first line that begins a Go runtime crash report (isCrashLine).
type stderrWatch struct {
	w     io.Writer
	werr  error // w failed: keep draining, the child must never block
	mu    sync.Mutex
	line  []byte // the start of the current line
	crash string
}

// maxLine bounds what is kept of one line.
const maxLine = 512

func (s *stderrWatch) Write(p []byte) (int, error) {
	n := len(p)
	if s.werr == nil {
		_, s.werr = s.w.Write(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if room := maxLine - len(s.line); room > 0 {
			s.line = append(s.line, part[:min(room, len(part))]...)
		}
		if i < 0 {
			break
		}
		s.endLine()
		p = p[i+1:]
	}
	return n, nil
}

func (s *stderrWatch) endLine() {
	if s.crash == "" && isCrashLine(s.line) {
		s.crash = string(s.line)
	}
	s.line = s.line[:0]
}

// flush ends a last line without a newline.
func (s *stderrWatch) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLine()
}

func (s *stderrWatch) crashLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crash
}

// boundedBuffer keeps the first max bytes written to it and discards the
// rest.
type boundedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *boundedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf
}
