// Package lease tells live writers from dead ones, across hosts, on a
// shared file system.
//
// # Rule
//
// Every open writer (a rank's simulation Writer or TrainingWriter) holds a
// lease: the file _shards/lease/<writer>.lease, created before its journal
// and renewed by a goroutine of its own every Interval (default 5 s), so a
// writer stuck in a long LP solve keeps it. A renewal writes a fresh file
// beside the lease and renames it over the lease: both are file-system
// operations stamped by the file system's clock (on NFS, the server's), and
// neither is fsynced (a lease means nothing after a power cut: every writer
// is dead then). Close removes the lease after the journal's close record.
//
// A reader (the merge, `merge-shards status`) judges a lease against the
// file system's clock, never its own: it takes "now" from the modification
// time of a file it has just written itself (the merge lock, or a probe),
// and a lease is live when now - mtime(lease) < Grace, where Grace is the
// reader's option (default 45 s) but never less than 6 renewal intervals
// of the writer. A lease of this host whose process no longer exists is
// dead at once. So a writer killed by SIGKILL is dead within about Grace.
//
// A writer that has not renewed its lease for 3 intervals (half the least
// grace a reader allows) must not commit: it may already be judged dead
// and a merge may be finishing its work. Fresh reports that.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// Defaults.
const (
	DefaultInterval = 5 * time.Second
	DefaultGrace    = 45 * time.Second
	// MinGraceIntervals is the least grace a reader allows, in renewal
	// intervals of the writer.
	MinGraceIntervals = 6
	// FreshIntervals is how many intervals a writer may go without a
	// renewal before it stops committing.
	FreshIntervals = 3
)

// ErrExpired is returned by Fresh when the writer's lease has not been
// renewed recently enough for it to commit safely.
var ErrExpired = errors.New("lease: not renewed in time; a merge may judge this writer dead")

// Info is a lease file's content.
type Info struct {
	Writer     string `json:"writer"`
	Rank       int    `json:"rank"`
	Host       string `json:"host"`
	PID        int    `json:"pid"`
	IntervalMS int64  `json:"interval_ms"`
	Seq        int64  `json:"seq"`
}

// Lease is a writer's held lease.
type Lease struct {
	fsys     vfs.FS
	out      string
	info     Info
	interval time.Duration

	mu      sync.Mutex
	renewed time.Time // monotonic: the last successful renewal
	err     error     // the last renewal's error
	stop    chan struct{}
	done    chan struct{}
}

// Acquire creates writer's lease under out and starts renewing it every
// interval (DefaultInterval when 0) until Release.
func Acquire(dirs *vfs.Dirs, out, writer string, rank int, interval time.Duration) (*Lease, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	host, _ := os.Hostname()
	l := &Lease{
		fsys: dirs.FS(), out: out, interval: interval,
		info: Info{Writer: writer, Rank: rank, Host: host, PID: os.Getpid(), IntervalMS: interval.Milliseconds()},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if err := dirs.Ensure(layout.Join(out, layout.LeaseDir)); err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	if err := l.renew(); err != nil {
		return nil, err
	}
	go l.loop()
	return l, nil
}

func (l *Lease) loop() {
	defer close(l.done)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			_ = l.renew() // recorded; Fresh reports a lease that lapses
		}
	}
}

// renew writes the lease afresh: a new file renamed over the old one, so
// a reader never sees a partial lease and the mtime is the file system's.
func (l *Lease) renew() error {
	l.mu.Lock()
	l.info.Seq++
	b, _ := json.Marshal(l.info)
	l.mu.Unlock()
	tmp := layout.Join(l.out, layout.LeaseTemp(l.info.Writer))
	final := layout.Join(l.out, layout.Lease(l.info.Writer))
	_ = l.fsys.Remove(tmp) // a leftover of a renewal cut short
	err := func() error {
		f, err := l.fsys.Create(tmp)
		if err != nil {
			return err
		}
		_, err = f.Write(append(b, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = l.fsys.Remove(tmp)
			return err
		}
		return l.fsys.Rename(tmp, final)
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = fmt.Errorf("lease: renewing %s: %w", final, err)
		return l.err
	}
	l.renewed, l.err = time.Now(), nil
	return nil
}

// Fresh returns nil while the lease was renewed within FreshIntervals
// intervals; else ErrExpired (with the last renewal's error). A writer
// checks it before each commit record.
func (l *Lease) Fresh() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if age := time.Since(l.renewed); age > FreshIntervals*l.interval {
		return fmt.Errorf("%w (last renewal %s ago, interval %s; %v)", ErrExpired, age.Round(time.Millisecond), l.interval, l.err)
	}
	return nil
}

// Release stops the renewals and removes the lease. It is idempotent.
func (l *Lease) Release() error {
	select {
	case <-l.stop:
		return nil
	default:
	}
	close(l.stop)
	<-l.done
	err := l.fsys.Remove(layout.Join(l.out, layout.Lease(l.info.Writer)))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return err
}

// State is a reader's verdict on one lease.
type State struct {
	Info
	// Age is how long ago, by the file system's clock, the lease was last
	// renewed.
	Age time.Duration `json:"age_ns"`
	// Live: renewed within the grace, and not a process of this host that
	// no longer exists.
	Live bool `json:"live"`
}

// Options tune a reader's judgement.
type Options struct {
	Grace time.Duration // DefaultGrace when 0
	// Alive reports whether a pid runs on this host (default: signal 0).
	Alive func(pid int) bool
}

// ProcessAlive reports whether a process of this host runs with pid.
func ProcessAlive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// Judge reads every lease under out and judges it against now, a time of
// the file system's clock (Now or the mtime of a file the reader wrote).
// A missing lease directory means no lease at all.
func Judge(fsys vfs.FS, out string, now time.Time, opts Options) (map[string]State, error) {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Alive == nil {
		opts.Alive = ProcessAlive
	}
	host, _ := os.Hostname()
	dir := layout.Join(out, layout.LeaseDir)
	ents, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	states := map[string]State{}
	for _, e := range ents {
		w, err := layout.ParseLeaseName(e.Name())
		if err != nil || e.IsDir() {
			continue // not a lease (a renewal's temp file, or a stray)
		}
		p := filepath.Join(dir, e.Name())
		st, err := fsys.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("lease: %w", err)
		}
		var info Info
		b, err := vfs.ReadFile(fsys, p, 4<<10)
		if err == nil {
			err = json.Unmarshal(b, &info)
		}
		if err != nil || info.Writer != w.String() {
			// Unreadable (being replaced, or damaged): judged by its
			// age alone.
			info = Info{Writer: w.String(), Rank: w.Rank}
		}
		s := State{Info: info, Age: now.Sub(st.ModTime())}
		grace := max(opts.Grace, MinGraceIntervals*time.Duration(info.IntervalMS)*time.Millisecond)
		s.Live = s.Age < grace && !(info.PID > 0 && info.Host == host && !opts.Alive(info.PID))
		states[w.String()] = s
	}
	return states, nil
}

// Now returns the file system's clock under out: the modification time of
// a probe file it creates and removes at once. When the probe cannot be
// written (a read-only copy of a study), it falls back to this host's
// clock and says so.
func Now(ctx context.Context, fsys vfs.FS, out string) (now time.Time, fromFS bool, err error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	tok := make([]byte, 6)
	_, _ = rand.Read(tok)
	p := layout.Join(out, layout.ClockProbe(os.Getpid(), hex.EncodeToString(tok)))
	f, err := fsys.Create(p)
	if err != nil {
		return time.Now(), false, nil
	}
	_, werr := f.Write([]byte{'\n'})
	st, serr := f.Stat()
	_ = f.Close()
	_ = fsys.Remove(p)
	if werr != nil || serr != nil {
		return time.Now(), false, nil
	}
	return st.ModTime(), true, nil
}
