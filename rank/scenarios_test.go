package rank_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/rank"
)

// writeList writes a rerun list with content into a new directory.
func writeList(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rerun.txt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReadRerunList: the file merge-shards --rerun-list writes (one id per
// line) and what a hand-edited one may add (blank lines, comments,
// spaces, CRLF, repeats, any order) are read; anything else is a
// *RerunListError naming the file and the line.
func TestReadRerunList(t *testing.T) {
	const n = 10
	for _, tc := range []struct {
		name     string
		content  string
		want     []int
		wantLine int    // for an error: the line named (0: none)
		wantText string // for an error: substring of the message
	}{
		{name: "as merge-shards writes it", content: "1\n4\n7\n", want: []int{1, 4, 7}},
		{name: "empty: nothing missing", content: "", want: nil},
		{name: "no final newline", content: "0\n9", want: []int{0, 9}},
		{name: "blank lines, comments and spaces", content: "# round 2\n\n  3 \n\t5\n\n# done\n", want: []int{3, 5}},
		{name: "CRLF", content: "2\r\n6\r\n", want: []int{2, 6}},
		{name: "repeats count once, order does not matter", content: "8\n2\n8\n2\n5\n", want: []int{2, 5, 8}},
		{name: "leading zeros", content: "007\n", want: []int{7}},
		{name: "out of range", content: "1\n10\n", wantLine: 2, wantText: `"10" is not a scenario id of this run (want one integer in 0..9 per line)`},
		{name: "negative", content: "-1\n", wantLine: 1, wantText: `"-1" is not a scenario id`},
		{name: "a sign", content: "3\n+4\n", wantLine: 2, wantText: `"+4" is not a scenario id`},
		{name: "not a number", content: "\n\nseven\n", wantLine: 3, wantText: `"seven" is not a scenario id`},
		{name: "two ids on a line", content: "1 2\n", wantLine: 1, wantText: `"1 2" is not a scenario id`},
		{name: "a fraction", content: "1.0\n", wantLine: 1, wantText: `"1.0"`},
		{name: "huge", content: "99999999999999999999999\n", wantLine: 1, wantText: "is not a scenario id"},
		{name: "a line too long", content: strings.Repeat("1", 70_000) + "\n", wantLine: 1, wantText: "line 1: is too long to hold a scenario id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeList(t, tc.content)
			got, err := rank.ReadRerunList(p, n)
			if tc.wantText == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("ids %v, want %v", got, tc.want)
				}
				return
			}
			var le *rank.RerunListError
			if !errors.As(err, &le) || le.File != p || le.Line != tc.wantLine {
				t.Fatalf("error %v (%T), want a *RerunListError for %s line %d", err, err, p, tc.wantLine)
			}
			if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "line "+itoa(tc.wantLine)) || !strings.Contains(msg, tc.wantText) {
				t.Fatalf("message %q, want it to name %s, line %d and say %q", msg, p, tc.wantLine, tc.wantText)
			}
			if got != nil {
				t.Fatalf("ids %v alongside an error", got)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "none.txt")
		_, err := rank.ReadRerunList(p, n)
		var le *rank.RerunListError
		if !errors.As(err, &le) || le.Line != 0 || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Fatalf("error %v, want a *RerunListError naming %s and matching fs.ErrNotExist", err, p)
		}
	})
	t.Run("bad scenario count", func(t *testing.T) {
		if _, err := rank.ReadRerunList(writeList(t, "1\n"), 0); err == nil || !strings.Contains(err.Error(), "scenario count 0") {
			t.Fatalf("n=0: %v", err)
		}
	})
}

// TestMyScenarios: without a list, a rank's share of 0..n-1 (Owned);
// with one, the ranks of any world share exactly the listed ids, each
// once, each rank's ascending.
func TestMyScenarios(t *testing.T) {
	const n = 20
	list := writeList(t, "# missing\n17\n3\n4\n11\n3\n0\n19\n")
	listed := []int{0, 3, 4, 11, 17, 19}
	for _, own := range []rank.Ownership{rank.Contiguous, rank.RoundRobin} {
		for _, world := range []int{1, 2, 3, 4, 6, 7, 10} {
			var all []int
			for r := range world {
				id := rank.Identity{Rank: r, World: world}
				plain, err := rank.MyScenarios(n, id, own, "")
				if err != nil {
					t.Fatal(err)
				}
				if want := own.Owned(n, id); !reflect.DeepEqual(plain, want) {
					t.Fatalf("%v rank %d/%d without a list: %v, want Owned %v", own, r, world, plain, want)
				}
				mine, err := rank.MyScenarios(n, id, own, list)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.IsSorted(mine) {
					t.Fatalf("%v rank %d/%d: %v not ascending", own, r, world, mine)
				}
				// The same rule on the list's positions.
				var want []int
				for _, i := range own.Owned(len(listed), id) {
					want = append(want, listed[i])
				}
				if !slices.Equal(mine, want) {
					t.Fatalf("%v rank %d/%d: %v, want %v", own, r, world, mine, want)
				}
				all = append(all, mine...)
			}
			slices.Sort(all)
			if !reflect.DeepEqual(all, listed) {
				t.Fatalf("%v world %d: the ranks write %v together, want each of %v once", own, world, all, listed)
			}
		}
	}
	empty := writeList(t, "")
	if got, err := rank.MyScenarios(n, rank.Identity{Rank: 0, World: 2}, rank.Contiguous, empty); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %v %v, want nothing to do", got, err)
	}
	for _, tc := range []struct {
		name string
		n    int
		id   rank.Identity
		own  rank.Ownership
		file string
		want string
	}{
		{"no scenarios", 0, rank.Identity{World: 1}, rank.Contiguous, "", "scenario count 0"},
		{"bad identity", n, rank.Identity{Rank: 2, World: 2}, rank.Contiguous, "", "Rank=2 is out of range"},
		{"unknown rule", n, rank.Identity{World: 1}, rank.Ownership(7), "", "unknown ownership Ownership(7)"},
		{"bad list", n, rank.Identity{World: 1}, rank.Contiguous, writeList(t, "20\n"), `line 1: "20" is not a scenario id`},
	} {
		if _, err := rank.MyScenarios(tc.n, tc.id, tc.own, tc.file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestWriterOwnedAndRemaining: the writer is the one source of "my
// scenarios" (Options.Ownership, Options.RerunFile); Remaining leaves out
// what any attempt committed; the deprecated Pending(owned) agrees.
func TestWriterOwnedAndRemaining(t *testing.T) {
	c := tinyCase(t)
	ctx := context.Background()
	const n = 7
	t.Run("ownership", func(t *testing.T) {
		out := t.TempDir()
		id := explicit(t, 1, 3)
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: n, Ownership: rank.RoundRobin})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Owned(); !reflect.DeepEqual(got, []int{1, 4}) {
			t.Fatalf("Owned %v, want [1 4] (round-robin, rank 1 of 3)", got)
		}
		if err := w.WriteScenario(ctx, gen(t, c, 4)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := w.Remaining(); !reflect.DeepEqual(got, []int{1}) {
			t.Fatalf("Remaining %v, want [1]", got)
		}
		if got := w.Pending(rank.RoundRobin.Owned(n, id)); !reflect.DeepEqual(got, w.Remaining()) {
			t.Fatalf("Pending(Owned) %v, Remaining %v: the old spelling must agree", got, w.Remaining())
		}
		owned := w.Owned()
		owned[0] = 99 // a copy: the writer's list is its own
		if w.Owned()[0] != 1 {
			t.Fatal("Owned returned the writer's own slice")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rerun list, resumed", func(t *testing.T) {
		out := t.TempDir()
		list := writeList(t, "6\n2\n5\n")
		id := explicit(t, 0, 2) // contiguous: positions 0 and 1 of [2 5 6]
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: n, RerunFile: list})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Owned(); !reflect.DeepEqual(got, []int{2, 5}) {
			t.Fatalf("Owned %v, want [2 5]", got)
		}
		if err := w.WriteScenario(ctx, gen(t, c, 2)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// A requeued attempt of the rerun job: only 5 is left.
		w, err = rank.Open(ctx, out, id, c, rank.Options{Scenarios: n, RerunFile: list})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Remaining(); !reflect.DeepEqual(got, []int{5}) {
			t.Fatalf("Remaining after a resume %v, want [5]", got)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad rerun list: nothing written", func(t *testing.T) {
		out := t.TempDir()
		list := writeList(t, "1\n7\n")
		_, err := rank.Open(ctx, out, explicit(t, 0, 1), c, rank.Options{Scenarios: n, RerunFile: list})
		var le *rank.RerunListError
		if !errors.As(err, &le) || le.Line != 2 {
			t.Fatalf("Open with a bad rerun list: %v, want a *RerunListError for line 2", err)
		}
		if _, err := os.Stat(filepath.Join(out, layout.ShardsDir)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open refused the list but made %s (%v)", layout.ShardsDir, err)
		}
	})
	t.Run("unknown ownership", func(t *testing.T) {
		_, err := rank.Open(ctx, t.TempDir(), explicit(t, 0, 1), c, rank.Options{Scenarios: n, Ownership: rank.Ownership(5)})
		if err == nil || !strings.Contains(err.Error(), "Options.Ownership") {
			t.Fatalf("Open with an unknown ownership: %v", err)
		}
	})
}
