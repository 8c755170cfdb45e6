package ordertest

import (
	"context"
	"testing"

	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// TestSimulationCommitOrder records a rank committing every scenario and
// checks the order of its operations: temps and their names durable
// before each commit record, the record fsynced before the renames, each
// scenario's files durable at their final paths before the next record
// and when Flush and Close return, a durable name for every committed
// file at every step.
func TestSimulationCommitOrder(t *testing.T) {
	tests := []struct {
		name string
		st   study
	}{
		{"one worker, flush after every scenario", study{scenarios: 3, flushEvery: 1, opts: rank.Options{Workers: 1, Queue: 1}}},
		{"one worker, queue of two", study{scenarios: 3, opts: rank.Options{Workers: 1, Queue: 2}}},
		{"four workers, padded partitions", study{scenarios: 4, flushEvery: 2, opts: rank.Options{Workers: 4, Queue: 4, ScenarioPad: 4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := tc.st
			st.c = tinyCase(t)
			r := vfs.Record(vfs.NewMem())
			if err := st.run(context.Background(), r, 0, r.Mark); err != nil {
				t.Fatal(err)
			}
			c := New(out)
			c.Run(r.Ops())
			clean(t, c, 0)
			s := c.Stats()
			files := st.scenarios * len(st.c.Entities())
			if s.Records["commit"] != st.scenarios || s.Records["close"] != 1 || s.Files != files || s.Publishes != files {
				t.Errorf("the checker saw %v records, %d files, %d publishing renames: want %d commits, a close, %d files and renames", s.Records, s.Files, s.Publishes, st.scenarios, files)
			}
		})
	}
}

// TestTrainingOrder records a training rank: iteration records, a
// checkpoint whose fragments are committed like a scenario's files, and
// the close.
func TestTrainingOrder(t *testing.T) {
	tests := []struct {
		name                   string
		iterations, checkpoint int
	}{
		{"checkpoint in the middle", 3, 2},
		{"checkpoint at the last iteration", 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := study{c: tinyCase(t), scenarios: 1, iterations: tc.iterations, checkpoint: tc.checkpoint}
			r := vfs.Record(vfs.NewMem())
			if err := st.run(context.Background(), r, 0, r.Mark); err != nil {
				t.Fatal(err)
			}
			c := New(out)
			c.Run(r.Ops())
			clean(t, c, 0)
			s := c.Stats()
			if s.Records["iteration"] != tc.iterations || s.Records["checkpoint"] != 1 || s.Records["commit"] != 1 {
				t.Errorf("the checker saw records %v", s.Records)
			}
			// cuts for every stage, basis for every stage (root rank), one
			// scenario's tables.
			if want := 2*st.c.Stages + len(st.c.Entities()); s.Files != want || s.Publishes != want {
				t.Errorf("the checker saw %d files and %d publishing renames, want %d", s.Files, s.Publishes, want)
			}
		})
	}
}
