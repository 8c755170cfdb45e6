package rank

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// WorldMismatchError reports a rank whose world size differs from that of
// another rank of the same launch: a writer of the same job id and
// attempt, another rank, running now (its lease is live), whose journal
// records another world size. All ranks of one launch must agree on the
// world size, or scenarios are owned twice or by nobody: the launch is
// wrong (srun -n, mpirun -np, or the world given to Explicit), so Open and
// OpenTraining refuse to start rather than write beside it.
//
// Either side may be the wrong one: the error names both, and the rank
// that sees the other refuses (when two start at the same moment, at least
// one of them does). Writers of other jobs or attempts (a rerun job, a
// requeued attempt, a second srun step once the first is over) may use
// any world size: this is not checked without a job id (Identity.JobID
// "": no launcher told which launch a rank belongs to).
type WorldMismatchError struct {
	JobID   string
	Attempt int
	// This rank.
	Rank, World int
	// The other writer, and its journal.
	OtherRank, OtherWorld int
	Journal               string
}

func (e *WorldMismatchError) Error() string {
	return fmt.Sprintf("rank: world size mismatch in job %s attempt %d: this rank (rank %d) has world size %d, but rank %d of the same job and attempt, running now, has world size %d (journal %s); every rank of one launch must have the same world size: check the launch (srun -n, mpirun -np, or the world given to rank.Explicit)",
		e.JobID, e.Attempt, e.Rank, e.World, e.OtherRank, e.OtherWorld, e.Journal)
}

// worldCheck finds WorldMismatchErrors at Open, in two steps: while
// resume reads the journals (note), and once more after this writer's own
// journal is durable (recheck), for journals created meanwhile. A writer
// whose open record is durable before another's recheck is seen by that
// recheck, so of two ranks started at the same moment at least one sees
// the other. Only a suspect (same job and attempt, another rank, another
// world) costs a look at the leases, to tell a running writer from a dead
// one.
type worldCheck struct {
	id       Identity
	seen     map[string]bool // journals whose open record was read
	suspects []worldSuspect
}

type worldSuspect struct {
	path string
	open *manifest.OpenInfo
}

func newWorldCheck(id Identity) *worldCheck {
	return &worldCheck{id: id, seen: map[string]bool{}}
}

// note takes the open record of the journal at path.
func (c *worldCheck) note(path string, o *manifest.OpenInfo) {
	c.seen[path] = true
	if c.id.JobID == "" || o.Phase == manifest.PhaseMerge {
		return
	}
	if o.JobID == c.id.JobID && o.Attempt == c.id.Attempt && o.Rank != c.id.Rank && o.World != c.id.World {
		c.suspects = append(c.suspects, worldSuspect{path, o})
	}
}

// verdict returns a *WorldMismatchError for the first suspect whose
// writer is running now (its lease is live); the suspects are then
// cleared.
func (c *worldCheck) verdict(ctx context.Context, fsys vfs.FS, out string) error {
	if len(c.suspects) == 0 {
		return nil
	}
	suspects := c.suspects
	c.suspects = nil
	now, _, err := lease.Now(ctx, fsys, out)
	if err != nil {
		return err
	}
	live, err := lease.Judge(fsys, out, now, lease.Options{})
	if err != nil {
		return fmt.Errorf("rank: checking the world size against the running ranks: %w", err)
	}
	for _, s := range suspects {
		if st, ok := live[s.open.Writer]; ok && st.Live {
			return &WorldMismatchError{JobID: c.id.JobID, Attempt: c.id.Attempt, Rank: c.id.Rank, World: c.id.World,
				OtherRank: s.open.Rank, OtherWorld: s.open.World, Journal: s.path}
		}
	}
	return nil
}

// recheck reads the open records of the journals of this launch (by their
// names: same job and attempt, another rank) that resume did not see, and
// returns verdict. self is this writer's id.
func (c *worldCheck) recheck(ctx context.Context, fsys vfs.FS, out, self string) error {
	if c.id.JobID == "" {
		return nil
	}
	rels, err := journal.List(fsys, out)
	if err != nil {
		return fmt.Errorf("rank: checking the world size against the running ranks: %w", err)
	}
	job := layout.SanitizeJob(c.id.JobID)
	for _, rel := range rels {
		p := layout.Join(out, rel)
		if c.seen[p] {
			continue
		}
		wid, err := layout.ParseJournalName(path.Base(rel))
		if err != nil || wid.String() == self || wid.Job != job || wid.Attempt != c.id.Attempt || wid.Rank == c.id.Rank || wid.Tag == layout.MergeTag {
			continue
		}
		if o := readOpenRecord(fsys, p); o != nil {
			c.note(p, o)
		}
	}
	return c.verdict(ctx, fsys, out)
}

var errStopReading = errors.New("stop")

// readOpenRecord returns the open record of the journal at p, or nil when
// it has none yet (being created) or cannot be read: the check is about
// running writers, whose own checks see this writer's journal.
func readOpenRecord(fsys vfs.FS, p string) *manifest.OpenInfo {
	var open *manifest.OpenInfo
	_, _ = journal.ReadFile(fsys, p, func(r *manifest.Record) error {
		open = r.Open
		return errStopReading
	})
	return open
}
