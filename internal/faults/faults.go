// Package faults injects failures at named points of the commit protocol so
// that tests can prove what a crash or an I/O error at each step leaves on
// disk. Points are armed in-process with Set, or in a child process through
// the HYDROSHARD_FAULT environment variable ("point:action:n", comma
// separated), where action is "error" (the step fails with ErrInjected) or
// "kill" (the process sends itself SIGKILL: a real crash, no deferred code
// runs) and n is the 1-based hit count that triggers it.
//
// Unarmed, Hit costs one atomic load.
package faults

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Points of the commit protocol, in protocol order.
const (
	TempWrite     = "temp-write"     // encoding a table into its temp file
	TempSync      = "temp-fsync"     // fsync of a temp file
	JournalAppend = "journal-append" // appending the commit record (before its fsync)
	JournalSync   = "journal-fsync"  // fsync of the journal (the commit point)
	Rename        = "rename"         // renaming one temp file into its partition
	DirSync       = "dir-fsync"      // fsync of a partition directory
)

// ErrInjected is returned by an armed "error" fault.
var ErrInjected = errors.New("injected fault")

type rule struct {
	action string
	at     int64
	hits   atomic.Int64
}

var (
	armed atomic.Bool
	mu    sync.Mutex
	rules = map[string]*rule{}
)

func init() {
	if spec := os.Getenv("HYDROSHARD_FAULT"); spec != "" {
		if err := Set(spec); err != nil {
			fmt.Fprintf(os.Stderr, "HYDROSHARD_FAULT: %v\n", err)
			os.Exit(1)
		}
	}
}

// Set arms the faults described by spec ("point:action:n[,...]"), replacing
// any armed before. An empty spec disarms everything.
func Set(spec string) error {
	mu.Lock()
	defer mu.Unlock()
	rules = map[string]*rule{}
	armed.Store(false)
	if spec == "" {
		return nil
	}
	for _, item := range strings.Split(spec, ",") {
		parts := strings.Split(item, ":")
		if len(parts) != 3 {
			return fmt.Errorf("fault %q: want point:action:n", item)
		}
		n, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("fault %q: n must be a positive integer", item)
		}
		if parts[1] != "error" && parts[1] != "kill" {
			return fmt.Errorf("fault %q: action must be error or kill", item)
		}
		rules[parts[0]] = &rule{action: parts[1], at: n}
	}
	armed.Store(true)
	return nil
}

// Hit reports that execution reached point; it returns ErrInjected (wrapped
// with the point name) or kills the process when a rule says so.
func Hit(point string) error {
	if !armed.Load() {
		return nil
	}
	mu.Lock()
	r := rules[point]
	mu.Unlock()
	if r == nil || r.hits.Add(1) != r.at {
		return nil
	}
	if r.action == "kill" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the signal is fatal
	}
	return fmt.Errorf("%s: %w", point, ErrInjected)
}
