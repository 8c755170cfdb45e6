package rank

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/internal/faults"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// journalFile is one writer's journal under _shards/journal: created with
// O_EXCL (a writer never appends to another's journal), one checksummed
// JSON line per record, each appended and fsynced before the call returns
// (a record is durable exactly when append returns nil). Both the
// simulation Writer and the TrainingWriter use it. It is not safe for
// concurrent use: its owner serialises calls.
type journalFile struct {
	f    *os.File
	path string
	now  func() time.Time
	seq  int64
	// broken: a failed append may have left a partial line (or a line whose
	// durability is unknown): nothing more may be appended, not even a
	// close record.
	broken bool
}

// writerState is the lifecycle both writers share: calls are serialised,
// the first I/O error sticks (every later call returns it), and nothing is
// written after Close.
type writerState struct {
	mu     sync.Mutex
	err    error
	closed bool
}

// enter checks ctx and takes the lock for a write call named op; on
// success the caller holds w.mu and must unlock it.
func (w *writerState) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("rank: %s after Close", op)
	}
	return nil
}

// writerName returns a fresh writer id, also the journal's base name:
// job-<job>.rank-<r>.attempt-<a>[.<tag>].<random token>. Simulation
// journals have no tag; training journals have the tag "training", so the
// two phases of one attempt never share a file.
func writerName(id Identity, tag string) (string, error) {
	var tok [6]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return "", fmt.Errorf("rank: random token: %w", err)
	}
	job := id.JobID
	if job == "" {
		job = "local"
	}
	if tag != "" {
		tag += "."
	}
	return fmt.Sprintf("job-%s.rank-%05d.attempt-%d.%s%s", sanitize(job), id.Rank, id.Attempt, tag, hex.EncodeToString(tok[:])), nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '.' || r == ' ' || r < 32 {
			return '_'
		}
		return r
	}, s)
}

// openInfo returns the open record fields every journal carries; the
// caller adds its phase's fields (scenarios, layout, phase, training).
func openInfo(name string, id Identity, c *manifest.Case, solver string, threads int) *manifest.OpenInfo {
	return &manifest.OpenInfo{
		Version:   manifest.JournalVersion,
		Producer:  "hydroshard " + Version,
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

// createJournal creates out/_shards/journal/<name>.jsonl (it must not
// exist), appends the open record and fsyncs the file and the directory.
// On failure the file is removed again.
func createJournal(out, name string, now func() time.Time, open *manifest.OpenInfo) (*journalFile, error) {
	dir := filepath.Join(out, JournalDir)
	p := filepath.Join(dir, name+JournalSuffix)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("rank: creating journal: %w", err)
	}
	j := &journalFile{f: f, path: p, now: now}
	err = j.append(&manifest.Record{Type: manifest.RecordOpen, Open: open})
	if err == nil {
		err = shard.SyncDir(dir)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(p)
		return nil, fmt.Errorf("rank: starting journal %s: %w", p, err)
	}
	return j, nil
}

// append writes one record and fsyncs the journal: when it returns nil the
// record is durable. A failure after bytes may have reached the file marks
// the journal broken.
func (j *journalFile) append(r *manifest.Record) error {
	if j.broken {
		return fmt.Errorf("journal %s: an earlier append failed, the journal takes no more records", j.path)
	}
	r.Seq = j.seq
	r.Time = j.now().UTC().Format(manifest.TimeFormat)
	b, err := manifest.EncodeRecord(r)
	if err != nil {
		return err
	}
	if err := faults.Hit(faults.JournalAppend); err != nil {
		return fmt.Errorf("appending to journal %s: %w", j.path, err)
	}
	if _, err := j.f.Write(b); err != nil {
		j.broken = true
		return fmt.Errorf("appending to journal %s: %w", j.path, err)
	}
	if err := faults.Hit(faults.JournalSync); err != nil {
		j.broken = true
		return fmt.Errorf("fsync journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		j.broken = true
		return fmt.Errorf("fsync journal %s: %w", j.path, err)
	}
	j.seq++
	return nil
}

// close appends the close record (unless the journal is broken) and
// closes the file; it returns the append's and the close's errors.
func (j *journalFile) close(info *manifest.CloseInfo) (appendErr, closeErr error) {
	if !j.broken {
		appendErr = j.append(&manifest.Record{Type: manifest.RecordClose, Close: info})
	}
	return appendErr, j.f.Close()
}

// scanJournals reads every journal already in out/_shards/journal, in name
// order, calling fn for each record with the open record of its file. A
// journal written for another case is a *CaseMismatchError, whatever its
// phase; fn adds its own phase's checks. A journal created but killed
// before its open record was durable holds nothing and is skipped.
func scanJournals(out string, c *manifest.Case, fn func(path string, open *manifest.OpenInfo, r *manifest.Record) error) error {
	dir := filepath.Join(out, JournalDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("rank: reading journals: %w", err)
	}
	hash := c.Hash()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), JournalSuffix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		var open *manifest.OpenInfo
		_, err := manifest.ReadJournalFile(p, func(r *manifest.Record) error {
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
			s.once.Do(func() { close(s.ch) })
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

func (s *signalState) interrupted() bool {
	select {
	case <-s.ch:
		return true
	default:
		return false
	}
}
