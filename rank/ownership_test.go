package rank_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/rank"
)

// sizes covers the edges that matter: n = 0, n < world, n = world, exact
// multiples, remainders of every size, and a few larger irregular pairs.
func sizes() [][2]int {
	var out [][2]int
	for world := 1; world <= 12; world++ {
		for n := 0; n <= 40; n++ {
			out = append(out, [2]int{n, world})
		}
	}
	return append(out,
		[2]int{3, 64}, [2]int{63, 64}, [2]int{64, 64}, [2]int{65, 64},
		[2]int{1000, 7}, [2]int{1000, 999}, [2]int{1001, 1000}, [2]int{4096, 96}, [2]int{2000, 192},
	)
}

func TestOwnershipPartitions(t *testing.T) {
	for _, o := range []rank.Ownership{rank.Contiguous, rank.RoundRobin} {
		for _, nw := range sizes() {
			n, world := nw[0], nw[1]
			t.Run(fmt.Sprintf("%v/n=%d/world=%d", o, n, world), func(t *testing.T) {
				owner := make([]int, n)
				for i := range owner {
					owner[i] = -1
				}
				lists := make([][]int, world)
				for r := 0; r < world; r++ {
					got := o.Owned(n, rank.Identity{Rank: r, World: world})
					lists[r] = got
					for i, s := range got {
						if s < 0 || s >= n {
							t.Fatalf("rank %d owns %d, outside [0,%d)", r, s, n)
						}
						if i > 0 && got[i-1] >= s {
							t.Fatalf("rank %d: %v is not strictly ascending", r, got)
						}
						if owner[s] != -1 {
							t.Fatalf("scenario %d owned by ranks %d and %d", s, owner[s], r)
						}
						owner[s] = r
					}
				}
				for s, r := range owner {
					if r == -1 {
						t.Fatalf("scenario %d owned by no rank", s)
					}
					if got := o.Owner(s, n, world); got != r {
						t.Fatalf("Owner(%d, %d, %d) = %d, but Owned puts it on rank %d", s, n, world, got, r)
					}
				}
				switch o {
				case rank.Contiguous:
					checkContiguous(t, n, world, lists)
				case rank.RoundRobin:
					for r, l := range lists {
						for _, s := range l {
							if s%world != r {
								t.Fatalf("round-robin: rank %d owns %d, but %d %% %d = %d", r, s, s, world, s%world)
							}
						}
					}
				}
			})
		}
	}
}

func checkContiguous(t *testing.T, n, world int, lists [][]int) {
	t.Helper()
	prevEnd := 0 // one past the last scenario of the previous non-empty block
	for r, l := range lists {
		if len(l) == 0 {
			continue
		}
		if l[0] != prevEnd {
			t.Fatalf("rank %d's block starts at %d, want %d (blocks must follow rank order without gaps)", r, l[0], prevEnd)
		}
		if l[len(l)-1]-l[0] != len(l)-1 {
			t.Fatalf("rank %d's block %v is not contiguous", r, l)
		}
		prevEnd = l[len(l)-1] + 1
	}
	// Sizes differ by at most one, larger ones first, and exactly n%world
	// ranks hold the larger size.
	big := 0
	for r := range lists {
		if r > 0 && len(lists[r]) > len(lists[r-1]) {
			t.Fatalf("rank %d owns %d scenarios but rank %d only %d: larger blocks must come first", r, len(lists[r]), r-1, len(lists[r-1]))
		}
		if d := len(lists[0]) - len(lists[r]); d > 1 {
			t.Fatalf("ranks 0 and %d own %d and %d scenarios: sizes differ by more than one", r, len(lists[0]), len(lists[r]))
		}
		if len(lists[r]) == n/world+1 {
			big++
		}
	}
	if big != n%world {
		t.Fatalf("%d ranks hold %d scenarios, want n%%world = %d", big, n/world+1, n%world)
	}
}

func TestOwnedExamples(t *testing.T) {
	tests := []struct {
		o           rank.Ownership
		n, world, r int
		want        []int
	}{
		// 10 scenarios on 4 ranks: 3,3,2,2 (Cobre's split).
		{rank.Contiguous, 10, 4, 0, []int{0, 1, 2}},
		{rank.Contiguous, 10, 4, 1, []int{3, 4, 5}},
		{rank.Contiguous, 10, 4, 2, []int{6, 7}},
		{rank.Contiguous, 10, 4, 3, []int{8, 9}},
		{rank.RoundRobin, 10, 4, 0, []int{0, 4, 8}},
		{rank.RoundRobin, 10, 4, 1, []int{1, 5, 9}},
		{rank.RoundRobin, 10, 4, 3, []int{3, 7}},
		// Fewer scenarios than ranks: the tail owns nothing.
		{rank.Contiguous, 2, 4, 1, []int{1}},
		{rank.Contiguous, 2, 4, 2, []int{}},
		{rank.RoundRobin, 2, 4, 3, []int{}},
		{rank.Contiguous, 0, 1, 0, []int{}},
		{rank.Contiguous, 5, 1, 0, []int{0, 1, 2, 3, 4}},
	}
	for _, tc := range tests {
		got := tc.o.Owned(tc.n, rank.Identity{Rank: tc.r, World: tc.world})
		if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%v.Owned(%d, rank %d/%d) = %v, want %v", tc.o, tc.n, tc.r, tc.world, got, tc.want)
		}
	}
}

func TestOwnershipStringAndParse(t *testing.T) {
	for _, o := range []rank.Ownership{rank.Contiguous, rank.RoundRobin} {
		got, err := rank.ParseOwnership(o.String())
		if err != nil || got != o {
			t.Errorf("ParseOwnership(%q) = %v, %v; want %v", o.String(), got, err, o)
		}
	}
	if got, want := rank.Contiguous.String(), "contiguous"; got != want {
		t.Errorf("Contiguous.String() = %q, want %q", got, want)
	}
	if got, want := rank.RoundRobin.String(), "round-robin"; got != want {
		t.Errorf("RoundRobin.String() = %q, want %q", got, want)
	}
	if got, want := rank.Ownership(7).String(), "Ownership(7)"; got != want {
		t.Errorf("Ownership(7).String() = %q, want %q", got, want)
	}
	for _, s := range []string{" Round-Robin ", "CONTIGUOUS"} {
		if _, err := rank.ParseOwnership(s); err != nil {
			t.Errorf("ParseOwnership(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "roundrobin", "block", "Ownership(7)"} {
		_, err := rank.ParseOwnership(s)
		if err == nil {
			t.Errorf("ParseOwnership(%q) succeeded, want an error", s)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("ParseOwnership(%q) error %q does not quote the input", s, err)
		}
	}
}

func TestOwnershipPanicsOnMisuse(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"Owned with invalid identity", func() { rank.Contiguous.Owned(4, rank.Identity{Rank: 2, World: 2}) }},
		{"Owned with zero world", func() { rank.RoundRobin.Owned(4, rank.Identity{}) }},
		{"Owned with negative n", func() { rank.Contiguous.Owned(-1, rank.Identity{World: 1}) }},
		{"Owned with unknown rule", func() { rank.Ownership(9).Owned(4, rank.Identity{World: 1}) }},
		{"Owner with scenario = n", func() { rank.Contiguous.Owner(4, 4, 2) }},
		{"Owner with negative scenario", func() { rank.RoundRobin.Owner(-1, 4, 2) }},
		{"Owner with zero world", func() { rank.Contiguous.Owner(0, 4, 0) }},
		{"Owner with unknown rule", func() { rank.Ownership(9).Owner(0, 4, 2) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("did not panic")
				}
			}()
			tc.f()
		})
	}
}
