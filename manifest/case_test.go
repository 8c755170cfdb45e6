package manifest_test

import (
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
