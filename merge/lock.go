package merge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// LockInfo is the lock file's content: who holds it.
type LockInfo struct {
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	Started string `json:"started"`
	// Token tells two locks of one process apart (a takeover checks it
	// moved the very lock it judged stale).
	Token string `json:"token,omitempty"`
}

// LockedError reports a merge refused because another holds the lock.
type LockedError struct {
	Path  string
	Owner LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("another merge holds %s (pid %d on %s since %s); if no merge is running there, remove the file", e.Path, e.Owner.PID, e.Owner.Host, e.Owner.Started)
}

// lock takes the merge lock of out, so that two merges never run on one
// directory at once. A lock left by a dead process on this host (alive
// says whether a pid runs) is detected and taken over. It returns the
// function that releases it.
func lock(fsys vfs.FS, out string, alive func(int) bool) (func(), error) {
	p := layout.Join(out, layout.LockFile)
	if err := vfs.NewDirs(fsys, out).Ensure(filepath.Dir(p)); err != nil {
		return nil, fmt.Errorf("merge lock: %w", err)
	}
	host, _ := os.Hostname()
	tok := make([]byte, 8)
	_, _ = rand.Read(tok)
	me := LockInfo{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Format(time.RFC3339), Token: hex.EncodeToString(tok)}
	body, _ := json.Marshal(me)
	for attempt := 0; attempt < 3; attempt++ {
		f, err := fsys.Create(p)
		if err == nil {
			_, werr := f.Write(body)
			if serr := f.Sync(); werr == nil {
				werr = serr
			}
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				_ = fsys.Remove(p)
				return nil, fmt.Errorf("merge lock %s: %w", p, werr)
			}
			// The removal is made durable: a lock that came back after a
			// power cut would name a pid that may be reused after reboot.
			return func() {
				if fsys.Remove(p) == nil {
					_ = fsys.SyncDir(filepath.Dir(p))
				}
			}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("merge lock %s: %w", p, err)
		}
		owner, raw, stale := staleLock(fsys, p, host, alive)
		if !stale {
			return nil, &LockedError{Path: p, Owner: owner}
		}
		// The owner died without releasing it: take it over. Two merges
		// may both find the same stale lock; each renames it aside and
		// checks it moved the very lock it judged stale (same bytes, and
		// every lock carries a random token), so neither can remove a lock
		// the other has just created.
		aside := fmt.Sprintf("%s.stale.%d", p, os.Getpid())
		if err := fsys.Rename(p, aside); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the other merge took it over first: try again
			}
			return nil, fmt.Errorf("taking over stale merge lock %s: %w", p, err)
		}
		moved, err := vfs.ReadFile(fsys, aside, maxLock)
		if err != nil || !bytes.Equal(moved, raw) {
			// We moved a fresh lock: put it back (never over a newer one).
			if rerr := fsys.RenameNoReplace(aside, p); rerr != nil {
				_ = fsys.Remove(aside)
			}
			return nil, &LockedError{Path: p, Owner: owner}
		}
		_ = fsys.Remove(aside)
	}
	return nil, fmt.Errorf("merge lock %s: lost a race with another merge", p)
}

// maxLock bounds the lock file read back: it holds one small JSON object.
const maxLock = 4 << 10

// staleLock reads a lock file and decides whether its owner is gone: a
// process on this host that no longer exists. An owner on another host
// cannot be checked and is presumed alive; an unreadable lock is stale
// only once it is old enough not to be one being written right now. It
// returns the lock's bytes, which a takeover compares.
func staleLock(fsys vfs.FS, p, host string, alive func(int) bool) (LockInfo, []byte, bool) {
	var owner LockInfo
	b, err := vfs.ReadFile(fsys, p, maxLock)
	if err != nil {
		return owner, nil, errors.Is(err, fs.ErrNotExist)
	}
	if json.Unmarshal(b, &owner) != nil || owner.PID <= 0 {
		st, err := fsys.Stat(p)
		return owner, b, err == nil && time.Since(st.ModTime()) > 10*time.Second
	}
	if owner.Host != host {
		return owner, b, false
	}
	return owner, b, !alive(owner.PID)
}
