package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/policy"
)

// TestPolicyStatesEndToEnd: with --export-states the root writes the
// visited states in each checkpoint; the merge copies them to
// OUT/policy/states/, policy.Open accepts them, every stage's states are
// the synthetic ones of the last checkpoint bit for bit, and metadata.json
// total_visited_states is their count.
func TestPolicyStatesEndToEnd(t *testing.T) {
	t.Parallel()
	c := tinyCaseT(t)
	const (
		iterations = 4
		passes     = 8 // simrank's default --forward-passes
		seed       = 1 // simrank's default --seed
	)
	out := t.TempDir()
	for r := range 2 {
		runSimrank(t, []string{"SLURM_PROCID=" + strconv.Itoa(r), "SLURM_NTASKS=2", "SLURM_JOB_ID=7"},
			"--out", out, "--scenarios", "2", "--iterations", strconv.Itoa(iterations), "--checkpoint-every", "2", "--export-states")
	}
	rep := mergeJSON(t, 0, out)
	if it := rep["training"].(map[string]any)["policy"].(map[string]any)["iteration"].(float64); it != iterations {
		t.Fatalf("policy from iteration %v, want %d", it, iterations)
	}
	dir := filepath.Join(out, "policy")
	for s := range c.Stages {
		if _, err := os.Stat(filepath.Join(dir, "states", layout.StageFileName(s))); err != nil {
			t.Fatalf("stage %d: %v", s, err)
		}
	}
	pol, err := policy.Open(dir, policy.Expect{StateDimension: c.StateDimension(), NumStages: c.Stages})
	if err != nil {
		t.Fatalf("policy.Open: %v", err)
	}
	want := synth.CheckpointStates(c, seed, iterations, passes)
	total := 0
	for s := range c.Stages {
		v, err := pol.LoadStates(uint32(s))
		if err != nil || v == nil {
			t.Fatalf("LoadStates(%d): %v, %v", s, v, err)
		}
		w := want[s]
		if v.StateDimension != uint32(c.StateDimension()) || int(v.Count) != iterations*passes || len(v.Data) != int(v.Count)*int(v.StateDimension) {
			t.Fatalf("stage %d: count %d dimension %d, %d values; want %d x %d", s, v.Count, v.StateDimension, len(v.Data), iterations*passes, c.StateDimension())
		}
		if len(w.Data) != len(v.Data) {
			t.Fatalf("stage %d: %d values, synth.CheckpointStates has %d", s, len(v.Data), len(w.Data))
		}
		for i := range w.Data {
			if math.Float64bits(v.Data[i]) != math.Float64bits(w.Data[i]) {
				t.Fatalf("stage %d value %d: %v, want %v", s, i, v.Data[i], w.Data[i])
			}
		}
		total += int(v.Count)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		TotalVisitedStates *int `json:"total_visited_states"`
	}
	if err := json.Unmarshal(raw, &md); err != nil {
		t.Fatal(err)
	}
	if md.TotalVisitedStates == nil || *md.TotalVisitedStates != total {
		t.Fatalf("metadata.json total_visited_states %v, want %d", md.TotalVisitedStates, total)
	}
}
