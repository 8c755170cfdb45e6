package rank_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// diskState is what a test compares before and after an operation that
// must write nothing: every journal's bytes, every data file's identity
// and checksum, and the names under _shards/tmp.
type diskState struct {
	journals map[string][]byte      // base name -> content
	data     map[string]os.FileInfo // path relative to out -> its stat
	hashes   map[string]uint64      // path relative to out -> xxh64
	temps    []string               // names under _shards/tmp
}

func readDisk(t *testing.T, out string) diskState {
	t.Helper()
	st := diskState{journals: map[string][]byte{}, data: map[string]os.FileInfo{}, hashes: map[string]uint64{}}
	js, err := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range js {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st.journals[filepath.Base(p)] = b
	}
	err = filepath.WalkDir(filepath.Join(out, layout.SimDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(out, p)
		if err != nil {
			return err
		}
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		h, err := vfs.HashFile(vfs.OS(), p)
		if err != nil {
			return err
		}
		st.data[rel], st.hashes[rel] = info, h.XXH64
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := os.ReadDir(filepath.Join(out, layout.TempDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tmp {
		st.temps = append(st.temps, e.Name())
	}
	return st
}

// sameDisk fails the test for every difference between two diskStates:
// a journal that changed or appeared, a data file replaced, rewritten or
// added, a temp file.
func sameDisk(t *testing.T, what string, before, after diskState) {
	t.Helper()
	for name, b := range after.journals {
		a, ok := before.journals[name]
		switch {
		case !ok:
			t.Errorf("%s: a new journal %s appeared", what, name)
		case !bytes.Equal(a, b):
			added := b[len(commonPrefix(a, b)):]
			t.Errorf("%s: journal %s changed: %d lines before, %d after; from the first difference: %.200s", what, name, bytes.Count(a, []byte("\n")), bytes.Count(b, []byte("\n")), added)
		}
	}
	for name := range before.journals {
		if _, ok := after.journals[name]; !ok {
			t.Errorf("%s: journal %s disappeared", what, name)
		}
	}
	if len(after.data) != len(before.data) {
		t.Errorf("%s: %d data files before, %d after", what, len(before.data), len(after.data))
	}
	for rel, fi := range before.data {
		now, ok := after.data[rel]
		switch {
		case !ok:
			t.Errorf("%s: data file %s disappeared", what, rel)
		case !os.SameFile(fi, now) || !fi.ModTime().Equal(now.ModTime()) || before.hashes[rel] != after.hashes[rel]:
			t.Errorf("%s: data file %s was replaced or rewritten", what, rel)
		}
	}
	if len(after.temps) != 0 {
		t.Errorf("%s: temp files %v under %s", what, after.temps, layout.TempDir)
	}
}

func commonPrefix(a, b []byte) []byte {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

// TestResumeRefusesWhatAnEarlierAttemptCommitted: attempt 0 of a rank
// commits scenarios 0 and 1 and closes; attempt 1 (a requeued job: a new
// process, a new writer on the same OUT) is asked to write them again.
// Each is refused with ErrCommitted and nothing at all is written: the
// scenario never reaches an encoder, no temp file is created, no journal
// gets a line, no data file is touched. (TestWriterCommits only reaches
// the refusal of a scenario committed by the same writer.)
func TestResumeRefusesWhatAnEarlierAttemptCommitted(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	c := tinyCase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first := explicit(t, 0, 1)
	first.JobID = "4242"
	w, err := rank.Open(ctx, out, first, c, rank.Options{Scenarios: 4, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for s := range 2 {
		if err := w.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{0, 1}) {
		t.Fatalf("test setup: attempt 0 committed %v, want [0 1]", got)
	}

	// Attempt 1: the same job and rank, requeued. Its file system counts
	// every temp file created, every rename into place and every journal
	// write (the rules match but never fire).
	second := first
	second.Attempt = 1
	fsys := vfs.Inject(vfs.OS(),
		vfs.Rule{Op: vfs.OpCreate, Path: "_shards/tmp/*", Nth: 1 << 30},
		vfs.Rule{Op: vfs.OpRenameNoReplace, Path: "*", Nth: 1 << 30},
		vfs.Rule{Op: vfs.OpWrite, Path: "*" + layout.JournalSuffix, Nth: 1 << 30},
	)
	w2, err := rank.Open(ctx, out, second, c, rank.Options{Scenarios: 4, Workers: 1, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var encoded []int
	rank.SetTestHookEncode(w2, func(s int) {
		mu.Lock()
		defer mu.Unlock()
		encoded = append(encoded, s)
	})
	if got := w2.Committed(); !reflect.DeepEqual(got, []int{0, 1}) {
		t.Fatalf("attempt 1 sees %v committed, want attempt 0's [0 1]", got)
	}
	if got := w2.Pending([]int{0, 1, 2, 3}); !reflect.DeepEqual(got, []int{2, 3}) {
		t.Fatalf("attempt 1 pending %v, want [2 3]", got)
	}
	journalWrites := fsys.Hits(2) // the open record
	before := readDisk(t, out)
	if len(before.journals) != 2 || len(before.data) != 2*len(c.Entities()) {
		t.Fatalf("test setup: %d journals and %d data files, want 2 and %d", len(before.journals), len(before.data), 2*len(c.Entities()))
	}

	for _, s := range []int{0, 1} {
		err := w2.WriteScenario(ctx, gen(t, c, s))
		var se *rank.ScenarioError
		if !errors.Is(err, rank.ErrCommitted) || !errors.As(err, &se) || se.Scenario != s {
			t.Errorf("attempt 1 writing scenario %d, committed by attempt 0: %v, want a *ScenarioError for it wrapping rank.ErrCommitted", s, err)
		}
	}
	// Whatever was accepted would be committed by now.
	if err := w2.Flush(ctx); err != nil {
		t.Errorf("Flush after the refusals: %v", err)
	}
	sameDisk(t, "refused rewrites of committed scenarios", before, readDisk(t, out))
	if n := fsys.Hits(0); n != 0 {
		t.Errorf("refused rewrites created %d temp files", n)
	}
	if n := fsys.Hits(1); n != 0 {
		t.Errorf("refused rewrites renamed %d files into place", n)
	}
	if n := fsys.Hits(2); n != journalWrites {
		t.Errorf("refused rewrites wrote %d journal lines", n-journalWrites)
	}
	mu.Lock()
	if len(encoded) != 0 {
		t.Errorf("refused scenarios reached the encoder: %v", encoded)
	}
	mu.Unlock()

	// The writer is still usable: the pending scenarios commit, and the
	// journals then hold each scenario exactly once.
	for _, s := range w2.Pending([]int{0, 1, 2, 3}) {
		if err := w2.WriteScenario(ctx, gen(t, c, s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := checkInvariants(t, out); !reflect.DeepEqual(got, []int{0, 1, 2, 3}) {
		t.Fatalf("committed %v, want [0 1 2 3]", got)
	}
	st := readJournals(t, out)
	order := append([]int(nil), st.order...)
	sort.Ints(order)
	if !reflect.DeepEqual(order, []int{0, 1, 2, 3}) {
		t.Errorf("commit records for scenarios %v, want each of 0..3 once", order)
	}
	for _, cl := range st.closes {
		if cl.Status != manifest.StatusClean || cl.Committed != 2 {
			t.Errorf("close record %+v, want clean with 2 commits (each attempt its own two)", cl)
		}
	}
	after := readDisk(t, out)
	if j0 := filepath.Base(w.JournalPath()); !bytes.Equal(after.journals[j0], before.journals[j0]) {
		t.Errorf("attempt 0's journal %s changed after attempt 1 ran", j0)
	}
	for rel, fi := range before.data {
		if now := after.data[rel]; now == nil || !os.SameFile(fi, now) || before.hashes[rel] != after.hashes[rel] {
			t.Errorf("attempt 0's data file %s changed after attempt 1 ran", rel)
		}
	}
}
