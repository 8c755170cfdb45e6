package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildPolicyTools builds merge-shards and rsswrap into a test directory.
func buildPolicyTools(t *testing.T) (mergeShards, wrap string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator), "./cmd/merge-shards", "./cmd/shardbench/rsswrap")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "merge-shards"), filepath.Join(dir, "rsswrap")
}

// TestPolicyScaleQuick runs the policy section at its --quick size (or,
// with HYDROSHARD_POLICY_FULL=1, at production size; HYDROSHARD_POLICY_OUT
// picks the scratch disk and HYDROSHARD_POLICY_JSON a file for the
// figures) and checks that every figure is there.
func TestPolicyScaleQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds merge-shards and runs it")
	}
	full := os.Getenv("HYDROSHARD_POLICY_FULL") == "1"
	mergeShards, wrap := buildPolicyTools(t)
	pc := policyScaleFor(!full)
	scratch := os.Getenv("HYDROSHARD_POLICY_OUT")
	if scratch == "" {
		scratch = t.TempDir()
	}
	var progress bytes.Buffer
	r, err := measurePolicyScale(context.Background(), pc, mergeShards, wrap, scratch, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	r.print(&out)
	t.Log("\n" + out.String())
	m := map[string]any{}
	r.addJSON(m)
	for _, k := range []string{"policy_merge_mbps", "policy_cp_mbps", "policy_cp_ratio", "policy_rss_mb_small", "policy_rss_mb_large",
		"policy_largest_stage_mb", "policy_rss_stage_ratio", "policy_rss_flat_ratio", "policy_open_read_mbps", "policy_readfile_mbps"} {
		v, ok := m[k].(float64)
		if !ok || !(v > 0) {
			t.Errorf("%s = %v, want a positive figure", k, m[k])
		}
	}
	if !strings.Contains(out.String(), "target") {
		t.Errorf("no targets printed:\n%s", out.String())
	}
	if p := os.Getenv("HYDROSHARD_POLICY_JSON"); p != "" {
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Everything the section wrote is gone.
	if ents, err := os.ReadDir(scratch); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "policy-") {
				t.Errorf("left behind: %s", e.Name())
			}
		}
	}
}
