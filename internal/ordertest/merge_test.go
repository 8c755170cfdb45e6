package ordertest

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/vfs"
)

// recordOf returns the type of the journal record o appended, and its
// scenario for a commit ("" when o appended no whole record).
func recordOf(o vfs.RecordedOp) (typ string, scenario int) {
	if o.Op != vfs.OpWrite || o.Err != nil || !strings.HasSuffix(o.Path, layout.JournalSuffix) {
		return "", -1
	}
	var l struct {
		Record struct {
			Type   string `json:"type"`
			Commit *struct {
				Scenario int `json:"scenario"`
			} `json:"commit"`
		} `json:"record"`
	}
	if json.Unmarshal(o.Data, &l) != nil {
		return "", -1
	}
	if l.Record.Commit != nil {
		return l.Record.Type, l.Record.Commit.Scenario
	}
	return l.Record.Type, -1
}

// crashPoint says whether a rank killed right after operation last (the
// last one before the crash) of log leaves the state a case wants.
type crashPoint func(last int, log []vfs.RecordedOp) bool

// afterAppend: the crash comes right after a record of type typ (of
// scenario s, for a commit) was written, before its fsync.
func afterAppend(typ string, s int) crashPoint {
	return func(last int, log []vfs.RecordedOp) bool {
		t, sc := recordOf(log[last])
		return t == typ && (typ != "commit" || sc == s)
	}
}

// afterAppendSync: the crash comes right after the fsync of a commit
// record of scenario s.
func afterAppendSync(s int) crashPoint {
	return func(last int, log []vfs.RecordedOp) bool {
		o := log[last]
		if o.Op != vfs.OpSync || !strings.HasSuffix(o.Path, layout.JournalSuffix) {
			return false
		}
		for i := last - 1; i >= 0; i-- {
			if log[i].Handle == o.Handle && log[i].Op == vfs.OpWrite {
				t, sc := recordOf(log[i])
				return t == "commit" && sc == s
			}
		}
		return false
	}
}

// afterRename: the crash comes right after the n-th rename (from 1) of a
// file of scenario s into place, before its directory's fsync.
func afterRename(s, n int) crashPoint {
	part := "/" + layout.Partition(0, s) + "/"
	return func(last int, log []vfs.RecordedOp) bool {
		if o := log[last]; o.Op != vfs.OpRenameNoReplace || !strings.Contains(o.New, part) {
			return false
		}
		k := 0
		for _, o := range log[:last+1] {
			if o.Op == vfs.OpRenameNoReplace && o.Err == nil && strings.Contains(o.New, part) {
				k++
			}
		}
		return k == n
	}
}

// lastBeforeCrash is the index of the last operation that ran before the
// crash (the first ErrCrashed one is refused).
func lastBeforeCrash(log []vfs.RecordedOp) int {
	for i, o := range log {
		if errors.Is(o.Err, vfs.ErrCrashed) {
			return i - 1
		}
	}
	return len(log) - 1
}

// mutating says whether vfs.Mem counts o (see Mem.Ops).
func mutating(o vfs.RecordedOp) bool {
	switch o.Op {
	case vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpRemove, vfs.OpRename, vfs.OpRenameNoReplace, vfs.OpMkdir, vfs.OpSyncDir:
		return !errors.Is(o.Err, vfs.ErrCrashed)
	}
	return false
}

// crashRank runs st on a Mem that crashes right after the operation at
// point, replays the rank's log on c and returns the crashed Mem. The
// rank's goroutines may order their operations differently from run to
// run, so the crash point is found by trying: from a little before where
// an uncrashed run has it, and from the start if that misses it.
func crashRank(t *testing.T, st study, point crashPoint, c *Checker) *vfs.Mem {
	t.Helper()
	ctx := context.Background()
	r := vfs.Record(vfs.NewMem())
	if err := st.run(ctx, r, 0, nil); err != nil {
		t.Fatal(err)
	}
	est, k := 0, 0
	for i, o := range r.Ops() {
		if mutating(o) {
			k++
		}
		if point(i, r.Ops()) {
			est = k
			break
		}
	}
	if est == 0 {
		t.Fatal("an uncrashed run never reaches the crash point: an operation it needs is missing")
	}
	for _, from := range []int{max(1, est-40), 1} {
		for k := from; ; k++ {
			m := vfs.NewMem()
			m.CrashAfter(k)
			rr := vfs.Record(m)
			_ = st.run(ctx, rr, 0, rr.Mark)
			if !m.Crashed() {
				break // past the end of the run
			}
			log := rr.Ops()
			if last := lastBeforeCrash(log); last >= 0 && point(last, log) {
				t.Logf("rank killed after %v", log[last])
				c.Run(log)
				return m
			}
		}
	}
	t.Fatal("no crash point leaves the state wanted")
	return nil
}

// TestMergeApplyOrder records the merge's apply phase on what a rank left
// (killed, power cut or broken while publishing) and checks its order:
// the journals made durable before the roll-forward renames, each rolled
// forward file durable at its final path, every output staged, fsynced,
// renamed and its directory fsynced, and each _SUCCESS only after
// everything it vouches for is durable. The rank's own log is replayed
// first, so the Checker knows what of its work was durable.
func TestMergeApplyOrder(t *testing.T) {
	tests := []struct {
		name      string
		st        study
		crash     crashPoint // kill the rank there (nil: no crash)
		powerCut  bool       // a power cut, not a kill
		inject    []vfs.Rule // instead of a crash
		rolled    bool       // the merge must roll a commit forward
		successes []string   // the _SUCCESS files the merge must write
	}{
		{
			name:      "killed after the last commit record's append, before its fsync",
			st:        study{scenarios: 2},
			crash:     afterAppend("commit", 1),
			rolled:    true,
			successes: []string{"simulation/_SUCCESS"},
		},
		{
			name:      "power cut after the last commit record's fsync",
			st:        study{scenarios: 2},
			crash:     afterAppendSync(1),
			powerCut:  true,
			rolled:    true,
			successes: []string{"simulation/_SUCCESS"},
		},
		{
			name:      "killed after a rename, before the partition directory's fsync",
			st:        study{scenarios: 2},
			crash:     afterRename(1, 2),
			rolled:    true,
			successes: []string{"simulation/_SUCCESS"},
		},
		{
			name:      "killed after the last file's rename, before its directory's fsync",
			st:        study{scenarios: 2},
			crash:     afterRename(1, 10),
			successes: []string{"simulation/_SUCCESS"},
		},
		{
			name:      "publish broken by a failed rename",
			st:        study{scenarios: 2},
			inject:    []vfs.Rule{{Op: vfs.OpRenameNoReplace, Path: layout.Partition(0, 1) + "/" + layout.DataFileName, Nth: 1}},
			rolled:    true,
			successes: []string{"simulation/_SUCCESS"},
		},
		{
			name:   "training killed after the checkpoint record's append",
			st:     study{scenarios: 1, iterations: 2, checkpoint: 2},
			crash:  afterAppend("checkpoint", -1),
			rolled: true,
		},
		{
			name:      "training and simulation complete",
			st:        study{scenarios: 2, iterations: 3, checkpoint: 2, flushEvery: 1},
			successes: []string{"training/_SUCCESS", "simulation/_SUCCESS"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := tc.st
			st.c = tinyCase(t)
			c := New(out)
			var r *vfs.Recorder
			switch {
			case tc.crash != nil:
				base := crashRank(t, st, tc.crash, c)
				if tc.powerCut {
					base = base.CrashClone(vfs.CrashOptions{})
					c.PowerCut()
				} else {
					base = base.Clone()
				}
				r = vfs.Record(base)
			default:
				var fsys vfs.FS = vfs.NewMem()
				if tc.inject != nil {
					fsys = vfs.Inject(fsys, tc.inject...)
				}
				r = vfs.Record(fsys)
				err := st.run(ctx, r, 0, r.Mark)
				if (err != nil) != (tc.inject != nil) {
					t.Fatalf("rank: %v", err)
				}
			}
			// What the rank did wrong, even if the merge then fails.
			seen := clean(t, c, 0)
			start := r.Len()
			c.Run(r.Ops()[:start])
			seen = clean(t, c, seen)
			rep := runMerge(t, r)
			c.Run(r.Ops()[start:])
			clean(t, c, seen)
			if got := rep.RolledForward > 0 || rep.Training != nil && rep.Training.Policy != nil && rolledPolicy(r.Ops()[start:]); got != tc.rolled {
				t.Errorf("merge rolled forward: %v, want %v (%+v)", got, tc.rolled, rep)
			}
			s := c.Stats()
			if !slices.Equal(s.Successes, tc.successes) {
				t.Errorf("_SUCCESS files written: %v, want %v (outcome %v)", s.Successes, tc.successes, rep.Outcome)
			}
			if s.StagedMoves == 0 {
				t.Error("the merge staged no output")
			}
			if tc.successes == nil && rep.Outcome == merge.Complete {
				t.Errorf("outcome %v", rep.Outcome)
			}
		})
	}
}

// rolledPolicy reports whether the log renames a checkpoint fragment out
// of _shards/tmp (the merge's roll-forward of a checkpoint).
func rolledPolicy(log []vfs.RecordedOp) bool {
	for _, o := range log {
		if o.Op == vfs.OpRenameNoReplace && o.Err == nil && strings.Contains(filepath.ToSlash(o.New), "/"+layout.PolicyShardDir+"/") {
			return true
		}
	}
	return false
}
