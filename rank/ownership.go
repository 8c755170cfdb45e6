package rank

import (
	"fmt"
	"strings"
)

// Ownership is the rule that assigns each scenario to exactly one rank. Every
// rank computes it independently, with no communication, so the rule must be
// a pure function of (scenario count, world size); any two ranks that agree on
// those agree on who owns what.
type Ownership int

const (
	// Contiguous gives each rank one block of consecutive scenarios, matching
	// how Cobre distributes forward-pass scenarios, so a rank's output lines
	// up with the scenarios it actually simulated.
	Contiguous Ownership = iota
	// RoundRobin deals scenarios out like cards. It suits solvers that
	// interleave scenarios across ranks, and it spreads any cost gradient
	// along the scenario index evenly.
	RoundRobin
)

// String returns the name used on the command line and in manifests, so the
// value round-trips through ParseOwnership.
func (o Ownership) String() string {
	switch o {
	case Contiguous:
		return "contiguous"
	case RoundRobin:
		return "round-robin"
	default:
		return fmt.Sprintf("Ownership(%d)", int(o))
	}
}

// ParseOwnership reads a rule name as written by String. Case and surrounding
// space are ignored because the value usually comes from a flag or a config
// file; anything else is an error rather than a default, since ranks that
// silently disagree on the rule would write overlapping shards.
func ParseOwnership(s string) (Ownership, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "contiguous":
		return Contiguous, nil
	case "round-robin":
		return RoundRobin, nil
	default:
		return 0, fmt.Errorf("rank: unknown ownership %q (want %q or %q)", s, Contiguous.String(), RoundRobin.String())
	}
}

// Owned returns the scenario ids in [0,n) that rank owns, ascending.
//
// Contiguous: blocks; the first n%world ranks get one extra (as Cobre does).
// RoundRobin: ids with id%world == rank.
//
// When n < world some ranks own nothing and get an empty slice. Invalid input
// (n < 0, an Identity that fails Validate, an unknown rule) panics: these are
// programming errors, and returning an empty list would make a rank silently
// write nothing.
func (o Ownership) Owned(n int, id Identity) []int {
	if err := id.Validate(); err != nil {
		panic(fmt.Sprintf("rank: Ownership.Owned: %v", err))
	}
	checkCount("Owned", n)
	switch o {
	case Contiguous:
		start, count := contiguousBlock(n, id.World, id.Rank)
		out := make([]int, count)
		for i := range out {
			out[i] = start + i
		}
		return out
	case RoundRobin:
		out := make([]int, 0, (n+id.World-1)/id.World)
		for s := id.Rank; s < n; s += id.World {
			out = append(out, s)
		}
		return out
	default:
		panic(fmt.Sprintf("rank: Ownership.Owned: unknown ownership %v", o))
	}
}

// Owner returns the rank that owns scenario under this rule. It is the
// inverse of Owned and is computed directly, so that a merge or report can
// attribute a scenario without materialising every rank's list. It panics on
// a scenario outside [0,n) or world < 1, for the same reason Owned does.
func (o Ownership) Owner(scenario, n, world int) int {
	if world < 1 {
		panic(fmt.Sprintf("rank: Ownership.Owner: world %d, want at least 1", world))
	}
	checkCount("Owner", n)
	if scenario < 0 || scenario >= n {
		panic(fmt.Sprintf("rank: Ownership.Owner: scenario %d out of range 0..%d", scenario, n-1))
	}
	switch o {
	case Contiguous:
		base, extra := n/world, n%world
		// The first extra ranks hold base+1 scenarios each; past them every
		// block holds base. base > 0 there, because extra < world means the
		// remaining scenarios exist only if n >= world.
		big := extra * (base + 1)
		if scenario < big {
			return scenario / (base + 1)
		}
		return extra + (scenario-big)/base
	case RoundRobin:
		return scenario % world
	default:
		panic(fmt.Sprintf("rank: Ownership.Owner: unknown ownership %v", o))
	}
}

// contiguousBlock gives rank's block as a start and length; the larger blocks
// come first so that the split agrees with Cobre's.
func contiguousBlock(n, world, rank int) (start, count int) {
	base, extra := n/world, n%world
	if rank < extra {
		return rank * (base + 1), base + 1
	}
	return extra*(base+1) + (rank-extra)*base, base
}

func checkCount(fn string, n int) {
	if n < 0 {
		panic(fmt.Sprintf("rank: Ownership.%s: scenario count %d, want at least 0", fn, n))
	}
}
