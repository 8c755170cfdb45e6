package manifest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/manifest"
)

// TestCaseLimits: a case asking for a dimension beyond the documented
// limits is refused by name before anything is sized from it.
func TestCaseLimits(t *testing.T) {
	base, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(c *manifest.Case)
		want   string // "" = accepted
	}{
		{"the tiny case", func(*manifest.Case) {}, ""},
		{"stages at the limit", func(c *manifest.Case) { c.Stages = manifest.MaxStages }, ""},
		{"a million stages", func(c *manifest.Case) { c.Stages = 1_000_000 }, "stages = 1000000"},
		{"no stage", func(c *manifest.Case) { c.Stages = 0 }, "stages = 0"},
		{"a billion inflow lags", func(c *manifest.Case) { c.InflowLagOrder = 1e9 }, "inflow_lag_order = 1000000000"},
		{"too many blocks", func(c *manifest.Case) { c.Hours = make([]float64, manifest.MaxBlocks+1) }, "blocks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := *base
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestCaseIDs: IDs names the entities of every table Entities lists, in
// case order, and refuses a name that is no table.
func TestCaseIDs(t *testing.T) {
	c := &manifest.Case{
		Buses:              []manifest.Bus{{ID: 7}, {ID: 3}},
		Hydros:             []manifest.Hydro{{ID: 5}, {ID: 2}},
		Thermals:           []manifest.Thermal{{ID: 9}},
		Lines:              []manifest.Line{{ID: 4}},
		PumpingStations:    []manifest.PumpingStation{{ID: 8}},
		Contracts:          []manifest.Contract{{ID: 6}},
		NonControllables:   []manifest.NonControllable{{ID: 11}},
		GenericConstraints: []manifest.GenericConstraint{{ID: 12}},
		InflowLagOrder:     1,
	}
	want := map[string][]int32{
		"costs": {}, "hydros": {5, 2}, "inflow_lags": {5, 2}, "thermals": {9}, "exchanges": {4}, "buses": {7, 3},
		"pumping_stations": {8}, "contracts": {6}, "non_controllables": {11}, "violations/generic": {12},
	}
	for _, e := range c.Entities() {
		got, ok := c.IDs(e)
		if !ok || !slices.Equal(got, want[e]) {
			t.Errorf("IDs(%q) = %v, %v; want %v", e, got, ok, want[e])
		}
		delete(want, e)
	}
	if len(want) > 0 {
		t.Errorf("Entities left out %v", want)
	}
	if _, ok := c.IDs("hydro"); ok {
		t.Error(`IDs("hydro") is ok, want a refusal`)
	}
}
