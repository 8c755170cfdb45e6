package merge

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
)

// TestCmpTimeIsChronological: journals written before the fixed-width
// time format trim trailing zeros, so string order is not time order (and
// a directory can mix both formats); the merge must compare instants.
func TestCmpTimeIsChronological(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"2026-01-01T00:00:05Z", "2026-01-01T00:00:05.1Z", -1},
		{"2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.51Z", -1},
		{"2026-01-01T00:00:00.51Z", "2026-01-01T00:00:00.5Z", 1},
		{"2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.500Z", 0},
		{"2026-01-01T00:00:00.123456789Z", "2026-01-01T00:00:00.12345679Z", -1},
		// A directory can hold journals of both formats (a rank requeued
		// after an upgrade): trimmed RFC3339Nano and fixed-width.
		{"2026-01-01T00:00:05Z", "2026-01-01T00:00:05.000000001Z", -1},
		{"2026-01-01T00:00:05.100000000Z", "2026-01-01T00:00:05.1Z", 0},
		{time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC).Format(manifest.TimeFormat), "2026-01-01T00:00:05.1Z", -1},
	} {
		if got := cmpTime(c.a, c.b); got != c.want {
			t.Errorf("cmpTime(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	j1 := &journalState{open: &manifest.OpenInfo{Writer: "a"}, first: "2026-01-01T00:00:05Z", last: "2026-01-01T00:00:09Z"}
	j2 := &journalState{open: &manifest.OpenInfo{Writer: "b"}, first: "2026-01-01T00:00:05.1Z", last: "2026-01-01T00:00:09.25Z"}
	early := &commit{j: j1, time: "2026-01-01T00:00:09Z"}
	late := &commit{j: j2, time: "2026-01-01T00:00:09.25Z"}
	if !late.later(early) || early.later(late) {
		t.Fatalf("commit at %s is not later than one at %s", late.time, early.time)
	}
	s := &state{journals: []*journalState{j2, j1}}
	if first, last := s.span(); first != j1.first || last != j2.last {
		t.Fatalf("span = %s .. %s, want %s .. %s", first, last, j1.first, j2.last)
	}
}

// TestDescribe checks the statistics against values known in closed form:
// for 1..20, mean 10.5, sample std sqrt(35), t(0.975, 19) = 2.0930240544,
// and the empirical quantile is the ceil(p*n)-th smallest value (so p95 of
// 20 values is the 19th, not the maximum; of 21 values the 20th).
func TestDescribe(t *testing.T) {
	seq := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[n-1-i] = float64(i + 1) // unsorted on purpose
		}
		return x
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %.17g, want %.17g", what, got, want)
		}
	}
	st := describe(seq(20))
	half := 2.0930240544082634 * math.Sqrt(35) / math.Sqrt(20)
	near("mean", st.Mean, 10.5)
	near("std", st.Std, math.Sqrt(35))
	near("ci lo", st.CI95[0], 10.5-half)
	near("ci hi", st.CI95[1], 10.5+half)
	for _, c := range []struct {
		n             int
		p5, p50, p95  float64
		min, max      float64
		count         int
		wantCI        bool
		wantStdIsZero bool
	}{
		{20, 1, 10, 19, 1, 20, 20, true, false},
		{21, 2, 11, 20, 1, 21, 21, true, false},
		{2, 1, 1, 2, 1, 2, 2, true, false},
		{1, 1, 1, 1, 1, 1, 1, false, true},
	} {
		st := describe(seq(c.n))
		if st.Count != c.count || st.P5 != c.p5 || st.P50 != c.p50 || st.P95 != c.p95 || st.Min != c.min || st.Max != c.max {
			t.Errorf("n=%d: %+v, want count %d p5 %v p50 %v p95 %v min %v max %v", c.n, st, c.count, c.p5, c.p50, c.p95, c.min, c.max)
		}
		if (st.CI95 != nil) != c.wantCI || (st.Std == 0) != c.wantStdIsZero {
			t.Errorf("n=%d: ci %v std %v", c.n, st.CI95, st.Std)
		}
	}
	if describe(nil) != nil {
		t.Errorf("describe(nil) is not nil")
	}
}

// slowWriter is a slow terminal: each write takes delay (a stand-in for a
// slow device, not a synchronisation).
type slowWriter struct {
	delay time.Duration
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *slowWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRunInProcess merges two in-process writers' output with parallel
// full verification and progress reporting (run it with -race), then
// checks idempotence and VerifyMerged.
func TestRunInProcess(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for r := range 2 {
		id, err := rank.Explicit(r, 2)
		if err != nil {
			t.Fatal(err)
		}
		tick := 0
		now := func() time.Time { tick++; return base.Add(time.Duration(r*1000+tick) * time.Millisecond) }
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: n, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rank.Contiguous.Owned(n, id) {
			sc, err := synth.Generate(c, 3, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteScenario(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	progress := &slowWriter{delay: 100 * time.Millisecond}
	rep, err := Run(ctx, out, Options{Verify: VerifyFull, Workers: 4, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != Complete || rep.Committed != n || rep.Files != n*len(c.Entities()) {
		t.Fatalf("report: %s", rep.Human())
	}
	// The final progress line is written before Run returns (and, under
	// -race, without racing with this read).
	if want := fmt.Sprintf("verifying %d/%d files", rep.Files, rep.Files); !strings.Contains(progress.String(), want) {
		t.Errorf("progress %q does not end with %q", progress.String(), want)
	}
	if _, err := os.Stat(filepath.Join(out, layout.SimDir, layout.SuccessName)); err != nil {
		t.Fatal(err)
	}
	rep, err = Run(ctx, out, Options{Verify: VerifyFull, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Written) != 0 {
		t.Fatalf("a second merge wrote %v", rep.Written)
	}
	v, err := VerifyMerged(ctx, out, Options{Verify: VerifyFull, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.Files != n*len(c.Entities()) {
		t.Fatalf("verify: %s", v.Human())
	}
}

func TestGapRanges(t *testing.T) {
	for _, c := range []struct {
		have    []int
		horizon int
		want    string
	}{
		{nil, 0, ""},
		{nil, 1, "1"},
		{nil, 4, "1-4"},
		{[]int{1, 2, 3}, 3, ""},
		{[]int{3, 1}, 3, "2"},
		{[]int{2, 6}, 8, "1,3-5,7-8"},
		{[]int{1_000_000}, 1_000_000, "1-999999"},
	} {
		if got := gapRanges(slices.Clone(c.have), c.horizon); got != c.want {
			t.Errorf("gapRanges(%v, %d) = %q, want %q", c.have, c.horizon, got, c.want)
		}
	}
}
