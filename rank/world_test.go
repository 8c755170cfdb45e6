package rank_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// slurmID is the identity srun gives rank r of a job of world ranks.
func slurmID(r, world int, job string, attempt int) rank.Identity {
	return rank.Identity{Rank: r, World: world, JobID: job, Attempt: attempt, Host: "n01", Launcher: "slurm"}
}

// TestWorldMismatch: a rank whose world size differs from that of a
// running rank of the same job and attempt is refused at Open (and at
// OpenTraining), with a *WorldMismatchError naming both; ranks of other
// launches, finished or dead ranks, and ranks without a job id are not.
func TestWorldMismatch(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		other rank.Identity
		// state of the other writer when this one opens
		closed, dead bool
		this         rank.Identity
		refused      bool
	}{
		{name: "same job, other world: refused", other: slurmID(0, 3, "77", 0), this: slurmID(3, 4, "77", 0), refused: true},
		{name: "either side: the right rank refuses beside a wrong one", other: slurmID(3, 4, "77", 0), this: slurmID(1, 3, "77", 0), refused: true},
		{name: "requeued attempt, same job: refused", other: slurmID(0, 3, "77", 2), this: slurmID(1, 2, "77", 2), refused: true},
		{name: "same job and world: the normal launch", other: slurmID(0, 3, "77", 0), this: slurmID(1, 3, "77", 0)},
		{name: "another job (a rerun job)", other: slurmID(0, 3, "77", 0), this: slurmID(1, 2, "78", 0)},
		{name: "another attempt", other: slurmID(0, 3, "77", 0), this: slurmID(1, 2, "77", 1)},
		{name: "the other is closed (an earlier srun step of the allocation)", other: slurmID(0, 3, "77", 0), closed: true, this: slurmID(1, 2, "77", 0)},
		{name: "the other is dead (its lease gone)", other: slurmID(0, 3, "77", 0), dead: true, this: slurmID(1, 2, "77", 0)},
		{name: "no job id: not checked", other: explicit(t, 0, 3), this: explicit(t, 1, 2)},
	} {
		for _, phase := range []string{"simulation", "training"} {
			t.Run(phase+"/"+tc.name, func(t *testing.T) {
				out := t.TempDir()
				// The other rank: a simulation writer that stays open
				// (its lease renewed rarely, so that "dead" stays dead).
				ow, err := rank.Open(ctx, out, tc.other, c, rank.Options{Scenarios: 6, LeaseInterval: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				defer ow.Close()
				switch {
				case tc.closed:
					if err := ow.Close(); err != nil {
						t.Fatal(err)
					}
				case tc.dead:
					lease := filepath.Join(out, filepath.FromSlash(layout.Lease(strings.TrimSuffix(filepath.Base(ow.JournalPath()), layout.JournalSuffix))))
					if err := os.Remove(lease); err != nil {
						t.Fatal(err)
					}
				}
				before := readDisk(t, out)
				var opened interface{ Close() error }
				if phase == "simulation" {
					w, e := rank.Open(ctx, out, tc.this, c, rank.Options{Scenarios: 6})
					if e == nil {
						opened = w
					}
					err = e
				} else {
					cfg := trainCfg(4, 8)
					if tc.this.Rank != 0 {
						cfg = manifest.TrainingConfig{}
					}
					w, e := rank.OpenTraining(ctx, out, tc.this, c, rank.TrainingOptions{Config: cfg})
					if e == nil {
						opened = w
					}
					err = e
				}
				if !tc.refused {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if err := opened.Close(); err != nil {
						t.Fatal(err)
					}
					return
				}
				var we *rank.WorldMismatchError
				if !errors.As(err, &we) {
					t.Fatalf("Open: %v, want a *WorldMismatchError", err)
				}
				want := rank.WorldMismatchError{JobID: tc.this.JobID, Attempt: tc.this.Attempt, Rank: tc.this.Rank, World: tc.this.World,
					OtherRank: tc.other.Rank, OtherWorld: tc.other.World, Journal: ow.JournalPath()}
				if *we != want {
					t.Fatalf("error %+v, want %+v", *we, want)
				}
				msg := err.Error()
				for _, s := range []string{"job 77 attempt " + itoa(tc.this.Attempt), "this rank (rank " + itoa(tc.this.Rank) + ") has world size " + itoa(tc.this.World),
					"rank " + itoa(tc.other.Rank) + " of the same job and attempt, running now, has world size " + itoa(tc.other.World), ow.JournalPath(), "srun -n"} {
					if !strings.Contains(msg, s) {
						t.Errorf("message %q does not say %q", msg, s)
					}
				}
				// Refused before its journal: nothing written.
				sameDisk(t, "a refused Open", before, readDisk(t, out))
			})
		}
	}
}

// journalHookFS runs hook once, just before the first journal of out is
// created through it: the writer has read the journals and taken its
// lease, and its own journal does not exist yet.
type journalHookFS struct {
	vfs.FS
	once sync.Once
	hook func()
}

func (f *journalHookFS) Create(name string) (vfs.File, error) {
	if strings.HasSuffix(name, layout.JournalSuffix) {
		f.once.Do(f.hook)
	}
	return f.FS.Create(name)
}

// TestWorldMismatchStartedTogether: two ranks of one job with different
// world sizes open at the same moment: the other's journal appears after
// this rank read the journals and before its own exists. The second look,
// once its own journal is durable, sees it: this rank refuses and closes
// its journal as failed, naming the mismatch.
func TestWorldMismatchStartedTogether(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	out := t.TempDir()
	var other *rank.Writer
	fsys := &journalHookFS{FS: vfs.OS(), hook: func() {
		var err error
		other, err = rank.Open(ctx, out, slurmID(0, 3, "91", 0), c, rank.Options{Scenarios: 6})
		if err != nil {
			t.Error(err) // it cannot see this rank yet: it opens
		}
	}}
	_, err := rank.Open(ctx, out, slurmID(2, 4, "91", 0), c, rank.Options{Scenarios: 6, FS: fsys})
	if other == nil {
		t.Fatal("the hook did not run")
	}
	defer other.Close()
	var we *rank.WorldMismatchError
	if !errors.As(err, &we) || we.OtherRank != 0 || we.OtherWorld != 3 || we.World != 4 || we.Journal != other.JournalPath() {
		t.Fatalf("Open: %v, want a *WorldMismatchError against rank 0 of 3", err)
	}
	st := readJournals(t, out)
	var failed int
	for _, cl := range st.closes {
		if cl.Status == manifest.StatusFailed && strings.Contains(cl.Reason, "world size mismatch") && cl.Committed == 0 {
			failed++
		}
	}
	if len(st.opens) != 2 || len(st.closes) != 1 || failed != 1 {
		t.Fatalf("opens %d, closes %+v: want this rank's journal closed failed, naming the mismatch, and the other's open", len(st.opens), st.closes)
	}
	leases, err := os.ReadDir(filepath.Join(out, filepath.FromSlash(layout.LeaseDir)))
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases %v (%v): want only the other writer's", leases, err)
	}
	// The other rank of the wrong launch goes on; it must close cleanly.
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
}
