package merge

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/hydroshard/hydroshard/manifest"
)

// describe computes the summary statistics of a sample: mean, standard
// deviation (n-1), the 95% confidence interval of the mean from Student's
// t, min, max and the empirical p5/p50/p95 (gonum's stat.Empirical: the
// smallest value with at least that fraction of the sample at or below it).
func describe(x []float64) *manifest.Stats {
	if len(x) == 0 {
		return nil
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	st := &manifest.Stats{
		Count: len(s),
		Mean:  stat.Mean(s, nil),
		Min:   s[0],
		Max:   s[len(s)-1],
		P5:    stat.Quantile(0.05, stat.Empirical, s, nil),
		P50:   stat.Quantile(0.50, stat.Empirical, s, nil),
		P95:   stat.Quantile(0.95, stat.Empirical, s, nil),
	}
	if len(s) > 1 {
		st.Std = stat.StdDev(s, nil)
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(s) - 1)}.Quantile(0.975)
		half := t * st.Std / math.Sqrt(float64(len(s)))
		st.CI95 = &[2]float64{st.Mean - half, st.Mean + half}
	}
	return st
}

// summarize builds summary.json from the chosen commits' cost summaries,
// in scenario order (so the result does not depend on journal order).
func (s *state) summarize() *manifest.Summary {
	var totals []float64
	var stages [][]float64
	for _, sc := range sortedKeys(s.chosen) {
		c := s.chosen[sc].cost
		totals = append(totals, c.Total)
		for i, v := range c.Stages {
			for len(stages) <= i {
				stages = append(stages, nil)
			}
			stages[i] = append(stages[i], v)
		}
	}
	sum := &manifest.Summary{SchemaVersion: 1, Cost: manifest.SummaryCost, Scenarios: len(totals), TotalCost: describe(totals), StageCosts: []manifest.StageStat{}}
	for i, v := range stages {
		if d := describe(v); d != nil {
			sum.StageCosts = append(sum.StageCosts, manifest.StageStat{Stage: i, Stats: *d})
		}
	}
	return sum
}
