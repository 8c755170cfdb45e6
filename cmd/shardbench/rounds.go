package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
)

// result is one contestant's samples over the measured rounds.
type result struct {
	key, label string
	mbps       []float64 // per measured round, in round order
	bytes      int64     // bytes on disk per scenario (last round)
	in         int64     // input bytes per scenario
}

func (r *result) median() float64 { return median(r.mbps) }

func (r *result) span() (lo, hi float64) { return slices.Min(r.mbps), slices.Max(r.mbps) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// runRounds runs every contestant once per round, warmup rounds first
// (discarded: first-touch page faults, encoder and DuckDB start-up), then
// reps measured rounds. Interleaving puts machine noise (other tenants,
// thermal state, page-cache writeback) on every contestant alike, so the
// ratios of one run are meaningful even when absolute MB/s drift. The
// order is a fresh (seeded, so repeatable) permutation each round, so no
// contestant always runs first or after the same neighbour (page-cache
// writeback of the previous one's files, DuckDB waking up). A GC before each
// run gives each one a clean heap instead of the previous one's garbage.
func runRounds(ctx context.Context, cs []contestant, warmup, reps int, progress io.Writer, scale string) ([]*result, error) {
	res := make([]*result, len(cs))
	for i, c := range cs {
		res[i] = &result{key: c.key, label: c.label}
	}
	for r := range warmup + reps {
		what := fmt.Sprintf("round %d/%d", r-warmup+1, reps)
		if r < warmup {
			what = fmt.Sprintf("warm-up %d/%d", r+1, warmup)
		}
		fmt.Fprintf(progress, "shardbench: %s: %s\n", scale, what)
		for _, i := range rand.New(rand.NewPCG(uint64(r), 0x5eed)).Perm(len(cs)) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			runtime.GC()
			s, err := cs[i].run(ctx, r)
			if err != nil {
				return nil, fmt.Errorf("%s: %s, %s: %w", scale, cs[i].label, what, err)
			}
			if s.sec <= 0 || s.in <= 0 || s.scen <= 0 {
				return nil, fmt.Errorf("%s: %s, %s: empty sample %+v", scale, cs[i].label, what, s)
			}
			if r >= warmup {
				res[i].mbps = append(res[i].mbps, s.mbps())
				res[i].bytes = s.out / int64(s.scen)
				res[i].in = s.in / int64(s.scen)
			}
		}
	}
	return res, nil
}
