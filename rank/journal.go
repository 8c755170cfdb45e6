package rank

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// ErrClosed matches (errors.Is) the error of every call that writes,
// flushes or closes a Writer or TrainingWriter after its Close (or
// CloseContext, CloseInterrupted, CloseTerminated) began: WriteScenario,
// Flush, WriteIteration, WriteCheckpoint, and a second Close of any kind.
// The first Close returns the writer's outcome (nil, or what went wrong);
// every later one returns an ErrClosed error, whatever the first returned,
// as an *os.File does: a deferred Close after an explicit one is harmless.
// Nothing is written after Close. The read-only methods (Committed,
// CommittedHere, LastIteration, ...) keep answering, with final values.
var ErrClosed = errors.New("rank: writer is closed")

// closedError is ErrClosed for one call.
type closedError struct{ op string }

func (e *closedError) Error() string        { return "rank: " + e.op + " after Close: the writer is closed" }
func (e *closedError) Is(target error) bool { return target == ErrClosed }

func errClosed(op string) error { return &closedError{op: op} }

// writerState is the lifecycle both writers share: calls are serialised,
// the first I/O error sticks (every later call returns it), and nothing is
// written after Close (every later call returns ErrClosed).
type writerState struct {
	mu     sync.Mutex
	err    error
	closed bool
}

// enter checks ctx and takes the lock for a write call named op; on
// success the caller holds w.mu and must unlock it.
func (w *writerState) enter(ctx context.Context, op string) error {
	w.mu.Lock()
	err := ctx.Err()
	switch {
	case w.closed:
		err = errClosed(op)
	case err == nil:
		err = w.err
	}
	if err != nil {
		w.mu.Unlock()
	}
	return err
}

// writerName returns a fresh writer id (layout.WriterID), also the
// journal's base name. Simulation journals have no tag; training journals
// have layout.TrainingTag, so the two phases of one attempt never share a
// file.
func writerName(id Identity, tag string) (string, error) {
	tok := make([]byte, layout.TokenLen/2)
	if _, err := rand.Read(tok); err != nil {
		return "", fmt.Errorf("rank: random token: %w", err)
	}
	return layout.NewWriterID(id.JobID, id.Rank, id.Attempt, tag, tok).String(), nil
}

// startJournal takes the writer's lease, then creates its journal with
// the open record: a reader that finds the journal always finds a lease
// (or the lease's expiry) beside it.
func startJournal(dirs *vfs.Dirs, out, name string, rank int, now func() time.Time, interval time.Duration, open *manifest.OpenInfo) (*journal.Writer, *lease.Lease, error) {
	l, err := lease.Acquire(dirs, out, name, rank, interval)
	if err != nil {
		return nil, nil, fmt.Errorf("rank: %w", err)
	}
	j, err := journal.Create(dirs, out, name, now, open)
	if err != nil {
		_ = l.Release()
		return nil, nil, err
	}
	return j, l, nil
}

// appendRecord appends a record that commits something (a scenario, an
// iteration, a checkpoint) only while the writer's lease is fresh: a
// writer that may already be judged dead must not commit what a merge
// could be recovering at the same time.
func appendRecord(j *journal.Writer, l *lease.Lease, r *manifest.Record) error {
	if err := l.Fresh(); err != nil {
		return fmt.Errorf("rank: not committing: %w", err)
	}
	return j.Append(r)
}

// endJournal appends the close record, closes the journal and releases
// the lease, in that order.
func endJournal(j *journal.Writer, l *lease.Lease, info *manifest.CloseInfo) (appendErr, closeErr error) {
	appendErr, closeErr = j.Close(info)
	if err := l.Release(); err != nil {
		closeErr = errors.Join(closeErr, fmt.Errorf("rank: releasing the lease: %w", err))
	}
	return appendErr, closeErr
}

// openInfo returns the open record fields every journal carries; the
// caller adds its phase's fields (scenarios, layout, phase, training).
func openInfo(name string, id Identity, c *manifest.Case, solver string, threads int) *manifest.OpenInfo {
	return &manifest.OpenInfo{
		Version:   manifest.JournalVersion,
		Producer:  "hydroshard " + manifest.Version,
		Writer:    name,
		Rank:      id.Rank,
		World:     id.World,
		LocalRank: id.LocalRank,
		Host:      id.Host,
		JobID:     id.JobID,
		Attempt:   id.Attempt,
		Launcher:  id.Launcher,
		PID:       os.Getpid(),
		Solver:    solver,
		Threads:   threads,
		CaseName:  c.Name,
		CaseHash:  c.Hash(),
		Case:      c,
	}
}

// scanJournals reads every journal already in out/_shards/journal, in name
// order, calling fn for each record with the open record of its file. A
// journal written for another case is a *CaseMismatchError, whatever its
// phase; fn adds its own phase's checks. A journal created but killed
// before its open record was durable holds nothing and is skipped.
func scanJournals(fsys vfs.FS, out string, c *manifest.Case, fn func(path string, open *manifest.OpenInfo, r *manifest.Record) error) error {
	rels, err := journal.List(fsys, out)
	if err != nil {
		return fmt.Errorf("rank: reading journals: %w", err)
	}
	hash := c.Hash()
	for _, rel := range rels {
		p := layout.Join(out, rel)
		var open *manifest.OpenInfo
		_, err := journal.ReadFile(fsys, p, func(r *manifest.Record) error {
			if r.Open != nil {
				open = r.Open
				if open.CaseHash != hash {
					return &CaseMismatchError{Journal: p, What: "case", Have: fmt.Sprintf("%q (hash %s)", open.CaseName, open.CaseHash), Want: fmt.Sprintf("%q (hash %s)", c.Name, hash)}
				}
			}
			return fn(p, open, r)
		})
		if err != nil {
			return fmt.Errorf("rank: resuming from %s: %w", p, err)
		}
	}
	return nil
}

// signalState records whether SIGTERM/SIGINT reached a writer's handler.
type signalState struct {
	ch   chan struct{}
	once sync.Once
}

func newSignalState() *signalState { return &signalState{ch: make(chan struct{})} }

// handle is the body of the writers' HandleSignals.
func (s *signalState) handle(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			s.mark()
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
}

// mark records the signal (once).
func (s *signalState) mark() { s.once.Do(func() { close(s.ch) }) }

func (s *signalState) interrupted() bool {
	select {
	case <-s.ch:
		return true
	default:
		return false
	}
}
