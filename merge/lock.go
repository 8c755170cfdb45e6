package merge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/shard"
)

// LockName is the merge lock, under _shards/.
const LockName = "_shards/merge.lock"

// LockInfo is the lock file's content: who holds it.
type LockInfo struct {
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	Started string `json:"started"`
}

// LockedError reports a merge refused because another holds the lock.
type LockedError struct {
	Path  string
	Owner LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("another merge holds %s (pid %d on %s since %s); if no merge is running there, remove the file", e.Path, e.Owner.PID, e.Owner.Host, e.Owner.Started)
}

// Lock takes the merge lock of out, so that two merges never run on one
// directory at once. A lock left by a dead process on this host is
// detected and taken over. It returns the function that releases it.
func Lock(out string) (func(), error) {
	p := filepath.Join(out, LockName)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("merge lock: %w", err)
	}
	host, _ := os.Hostname()
	me := LockInfo{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Format(time.RFC3339)}
	body, _ := json.Marshal(me)
	for attempt := 0; attempt < 3; attempt++ {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, werr := f.Write(body)
			if serr := f.Sync(); werr == nil {
				werr = serr
			}
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(p)
				return nil, fmt.Errorf("merge lock %s: %w", p, werr)
			}
			return func() { os.Remove(p) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("merge lock %s: %w", p, err)
		}
		before, statErr := os.Stat(p)
		owner, stale := staleLock(p, host)
		if !stale || statErr != nil {
			return nil, &LockedError{Path: p, Owner: owner}
		}
		// The owner died without releasing it: take it over. Two merges
		// may both find the same stale lock; each renames it aside and
		// checks it moved the very file it judged stale, so neither can
		// remove a lock the other has just created.
		aside := fmt.Sprintf("%s.stale.%d", p, os.Getpid())
		if err := os.Rename(p, aside); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the other merge took it over first: try again
			}
			return nil, fmt.Errorf("taking over stale merge lock %s: %w", p, err)
		}
		moved, err := os.Stat(aside)
		if err != nil || !os.SameFile(before, moved) {
			// We moved a fresh lock: put it back (never over a newer one).
			if rerr := shard.Publish(aside, p); rerr != nil {
				_ = os.Remove(aside)
			}
			return nil, &LockedError{Path: p, Owner: owner}
		}
		_ = os.Remove(aside)
	}
	return nil, fmt.Errorf("merge lock %s: lost a race with another merge", p)
}

// staleLock reads a lock file and decides whether its owner is gone: a
// process on this host that no longer exists. An owner on another host
// cannot be checked and is presumed alive; an unreadable lock is stale
// only once it is old enough not to be one being written right now.
func staleLock(p, host string) (LockInfo, bool) {
	var owner LockInfo
	b, err := os.ReadFile(p)
	if err != nil {
		return owner, errors.Is(err, fs.ErrNotExist)
	}
	if json.Unmarshal(b, &owner) != nil || owner.PID <= 0 {
		st, err := os.Stat(p)
		return owner, err == nil && time.Since(st.ModTime()) > 10*time.Second
	}
	if owner.Host != host {
		return owner, false
	}
	err = syscall.Kill(owner.PID, 0)
	return owner, errors.Is(err, syscall.ESRCH)
}
