package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/policy"
)

// TestPolicyCheckpointKilled: rank 1 of 2 is killed while writing its
// iteration-4 checkpoint fragments. A non-root rank writes one cuts temp
// per stage per checkpoint (rank/checkpoint.go) and nothing else before
// its simulation, so with the tiny case's 3 stages the iteration-2
// checkpoint is temp writes 1-3 and the iteration-4 one is 4-6: kill at 5.
// The merge must fall back to the complete iteration-2 checkpoint and say
// why iteration 4 was not used.
func TestPolicyCheckpointKilled(t *testing.T) {
	t.Parallel()
	c := tinyCaseT(t)
	if c.Stages != 3 {
		t.Fatalf("tiny case has %d stages: recompute the fault count", c.Stages)
	}
	out := t.TempDir()
	args := []string{"--out", out, "--scenarios", "2", "--iterations", "4", "--forward-passes", "4", "--checkpoint-every", "2"}
	runSimrank(t, slurmEnv(0, 2, "73"), args...)
	cmd := simrankCmd(testCtx(t), append(slurmEnv(1, 2, "73"), "HYDROSHARD_FAULT=temp-write:kill:5"), args...)
	if err := cmd.Run(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("rank 1 was not killed by the fault: %v", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(out, layout.TempDir, "*rank-00001*.ckpt4.cuts_stage_*.tmp"))
	if len(tmps) == 0 {
		t.Fatal("the kill did not land in the iteration-4 checkpoint write (no ckpt4 temp of rank 1)")
	}

	rep := mergeJSON(t, 3, out) // rank 1 never simulated: partial
	p := rep["training"].(map[string]any)["policy"].(map[string]any)
	if p["iteration"].(float64) != 2 {
		t.Fatalf("merged policy from iteration %v, want 2 (the last complete checkpoint)", p["iteration"])
	}
	inc, _ := p["incomplete"].([]any)
	found := false
	for _, s := range inc {
		s := s.(string)
		if strings.Contains(s, "iteration 4") && strings.Contains(s, "rank 1") {
			found = true
		}
	}
	if !found {
		t.Fatalf("training.policy.incomplete %v does not name iteration 4 and rank 1", inc)
	}
	dir := filepath.Join(out, "policy")
	pol, err := policy.Open(dir, policy.Expect{StateDimension: c.StateDimension(), NumStages: c.Stages})
	if err != nil {
		t.Fatalf("policy.Open: %v", err)
	}
	if pol.Metadata.CompletedIterations != 2 {
		t.Fatalf("metadata.json completed_iterations %d, want 2", pol.Metadata.CompletedIterations)
	}
	for _, st := range pol.Stages {
		cuts, err := pol.LoadCuts(st.StageID)
		if err != nil {
			t.Fatal(err)
		}
		for _, cut := range cuts.Cuts {
			if cut.Iteration > 2 {
				t.Fatalf("stage %d holds a cut of iteration %d", st.StageID, cut.Iteration)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
		t.Fatal(err)
	}
}
