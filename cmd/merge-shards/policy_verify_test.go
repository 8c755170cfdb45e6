package main

// Policy and training outputs under merge and verify: a packed policy
// survives a merge byte for byte; a damaged stage file (plain or packed)
// or training table is named by verify (and a damaged policy by the
// merge), exit 2.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/policy"
)

// trainedStudy runs a 2-rank job with training (4 iterations, checkpoints
// every 2, visited states exported: cuts/, basis/ and states/), merges it
// and returns OUT.
func trainedStudy(t *testing.T, iterations string) string {
	t.Helper()
	out := t.TempDir()
	runRanks(t, 2, "83", "--out", out, "--scenarios", "2", "--iterations", iterations, "--forward-passes", "4", "--checkpoint-every", "2", "--export-states")
	wantExit(t, mergeShards(t, out), 0)
	return out
}

// flipByte flips one bit of the byte in the middle of a file.
func flipByte(t *testing.T, p string) {
	t.Helper()
	b := readFile(t, p)
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// truncate cuts the last 5 bytes off a file.
func truncate(t *testing.T, p string) {
	t.Helper()
	b := readFile(t, p)
	if err := os.WriteFile(p, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// verifyProblems runs merge-shards verify --json and returns its problems
// as "kind path" strings.
func verifyProblems(t *testing.T, code int, args ...string) []string {
	t.Helper()
	r := mergeShards(t, append([]string{"verify", "--json"}, args...)...)
	wantExit(t, r, code)
	var v struct {
		OK       bool `json:"ok"`
		Problems []struct {
			Kind, Path, Detail string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r)
	}
	var out []string
	for _, p := range v.Problems {
		out = append(out, p.Kind+" "+p.Path)
	}
	return out
}

// policyContent maps every file under a policy directory to its bytes.
func policyContent(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, sub := range []string{"cuts", "basis", "states"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, f := range files {
			m[sub+"/"+filepath.Base(f)] = string(readFile(t, f))
		}
	}
	return m
}

// TestPackThenMergeKeepsPolicy: after `policy pack` (whole, or
// interrupted so that a stage file is in both forms, or only some stage
// files packed), a merge exits 0 with the same report, changes no byte,
// name or time under policy/, and after unpack the policy is
// byte-identical to the one merged before packing.
func TestPackThenMergeKeepsPolicy(t *testing.T) {
	t.Parallel()
	base := trainedStudy(t, "4")
	c := tinyCaseT(t)
	for _, tc := range []struct {
		name  string
		after func(t *testing.T, dir string, plain map[string]string) // after the pack
	}{
		{"packed", func(*testing.T, string, map[string]string) {}},
		{"both forms of one file", func(t *testing.T, dir string, plain map[string]string) {
			// An interrupted pack or unpack: the .bin is back beside its .zst.
			if err := os.WriteFile(filepath.Join(dir, "cuts", "stage_001.bin"), []byte(plain["cuts/stage_001.bin"]), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"some files packed", func(t *testing.T, dir string, plain map[string]string) {
			for _, rel := range []string{"cuts/stage_000.bin", "states/stage_002.bin"} {
				remove(t, filepath.Join(dir, filepath.FromSlash(rel))+policy.PackedExt)
				if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel)), []byte(plain[rel]), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := copyTree(t, base)
			dir := filepath.Join(out, "policy")
			first := mergeShards(t, out) // the report of a merge that has nothing to do
			wantExit(t, first, 0)
			plain := policyContent(t, dir)
			meta := readFile(t, filepath.Join(dir, "metadata.json"))

			wantExit(t, mergeShards(t, "policy", "pack", dir), 0)
			tc.after(t, dir, plain)
			packed := snapshot(t, dir)
			if len(packed) < 10 {
				t.Fatalf("policy has too few files to mean anything: %v", packed)
			}
			for range 2 { // and again: merging a merged directory changes nothing
				r := mergeShards(t, out)
				wantExit(t, r, 0)
				if r.stdout != first.stdout {
					t.Fatalf("the merge report changed after pack:\nbefore:\n%s\nafter:\n%s", first.stdout, r.stdout)
				}
				sameSnapshot(t, "merging a packed policy", packed, snapshot(t, dir))
			}
			mustExist(t, filepath.Join(out, "simulation", "_SUCCESS"))
			wantExit(t, mergeShards(t, "verify", out), 0)
			wantExit(t, mergeShards(t, "verify", "--full", out), 0)

			wantExit(t, mergeShards(t, "policy", "unpack", dir), 0)
			if got := policyContent(t, dir); !reflect.DeepEqual(got, plain) {
				t.Fatalf("after pack, merge and unpack the policy differs from the merged one: %d files, want %d", len(got), len(plain))
			}
			if string(readFile(t, filepath.Join(dir, "metadata.json"))) != string(meta) {
				t.Fatal("metadata.json changed")
			}
			if _, err := policy.Open(dir, policy.Expect{StateDimension: c.StateDimension(), NumStages: c.Stages}); err != nil {
				t.Fatalf("policy.Open after pack, merge, unpack: %v", err)
			}
		})
	}
}

// TestPackedPolicyNewCheckpoint: a packed policy, then a later checkpoint:
// the merge replaces the policy (plain files), removes the old .zst files
// and the result opens and verifies.
func TestPackedPolicyNewCheckpoint(t *testing.T) {
	t.Parallel()
	out := trainedStudy(t, "4")
	dir := filepath.Join(out, "policy")
	wantExit(t, mergeShards(t, "policy", "pack", dir), 0)
	// The rerun continues after iteration 4 and checkpoints iteration 6.
	runRanks(t, 2, "84", "--out", out, "--scenarios", "2", "--iterations", "6", "--forward-passes", "4", "--checkpoint-every", "2", "--export-states")
	wantExit(t, mergeShards(t, out), 0)
	for f := range policyContent(t, dir) {
		if strings.HasSuffix(f, policy.PackedExt) {
			t.Fatalf("%s of the old policy left beside the new one", f)
		}
	}
	if it := readJSONFile(t, filepath.Join(dir, "metadata.json"))["completed_iterations"]; it != float64(6) {
		t.Fatalf("completed_iterations %v, want 6", it)
	}
	c := tinyCaseT(t)
	if _, err := policy.Open(dir, policy.Expect{StateDimension: c.StateDimension(), NumStages: c.Stages}); err != nil {
		t.Fatal(err)
	}
	wantExit(t, mergeShards(t, "verify", "--full", out), 0)
}

// TestMergeRefusesDamagedPolicy: with metadata.json unchanged, a listed
// stage file that is damaged (plain or packed) or gone makes the merge
// exit 2 naming it; nothing under policy/ changes (the damaged .zst is
// kept, not replaced) and simulation/_SUCCESS goes. Removing
// policy/metadata.json, as the message says, rebuilds the policy.
func TestMergeRefusesDamagedPolicy(t *testing.T) {
	t.Parallel()
	base := trainedStudy(t, "4")
	for _, tc := range []struct {
		name   string
		packed bool
		damage func(*testing.T, string)
		file   string // the file named, under OUT
		kind   string
	}{
		{"plain flipped", false, flipByte, "policy/cuts/stage_001.bin", "checksum"},
		{"packed flipped", true, flipByte, "policy/cuts/stage_001.bin.zst", "checksum"},
		{"packed truncated", true, truncate, "policy/basis/stage_000.bin.zst", "size"},
		{"plain truncated", false, truncate, "policy/states/stage_002.bin", "size"},
		{"packed removed", true, remove, "policy/cuts/stage_002.bin", "lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := copyTree(t, base)
			dir := filepath.Join(out, "policy")
			if tc.packed {
				wantExit(t, mergeShards(t, "policy", "pack", dir), 0)
			}
			victim := filepath.Join(out, filepath.FromSlash(tc.file))
			if tc.kind == "lost" {
				victim += policy.PackedExt
			}
			tc.damage(t, victim)
			before := snapshot(t, dir)
			rep := mergeJSON(t, 2, out)
			var got []string
			for _, p := range rep["problems"].([]any) {
				p := p.(map[string]any)
				got = append(got, p["kind"].(string)+" "+p["path"].(string))
			}
			if want := []string{tc.kind + " " + tc.file}; !reflect.DeepEqual(got, want) {
				t.Fatalf("merge problems %v, want %v", got, want)
			}
			sameSnapshot(t, "a merge refusing a damaged policy", before, snapshot(t, dir))
			mustNotExist(t, filepath.Join(out, "simulation", "_SUCCESS"))

			remove(t, filepath.Join(dir, "metadata.json"))
			wantExit(t, mergeShards(t, out), 0)
			wantExit(t, mergeShards(t, "verify", "--full", out), 0)
		})
	}
}

// TestVerifyPolicyAndTraining: verify names a damaged policy stage file
// (plain or packed) or training table, exit 2: --full catches a flipped
// byte, plain verify a truncated or missing file.
func TestVerifyPolicyAndTraining(t *testing.T) {
	t.Parallel()
	base := trainedStudy(t, "4")
	for _, tc := range []struct {
		name   string
		packed bool
		damage func(*testing.T, string)
		file   string // under OUT
		full   bool
		kind   string // "": verify passes
	}{
		{"intact plain", false, nil, "", false, ""},
		{"intact plain full", false, nil, "", true, ""},
		{"intact packed", true, nil, "", false, ""},
		{"intact packed full", true, nil, "", true, ""},

		{"cuts flipped full", false, flipByte, "policy/cuts/stage_002.bin", true, "checksum"},
		{"basis flipped full", false, flipByte, "policy/basis/stage_001.bin", true, "checksum"},
		{"states flipped full", false, flipByte, "policy/states/stage_000.bin", true, "checksum"},
		{"packed cuts flipped full", true, flipByte, "policy/cuts/stage_001.bin.zst", true, "checksum"},
		{"packed states flipped full", true, flipByte, "policy/states/stage_001.bin.zst", true, "checksum"},
		{"convergence flipped full", false, flipByte, "training/convergence.parquet", true, "checksum"},
		{"timing iterations flipped full", false, flipByte, "training/timing/iterations.parquet", true, "checksum"},
		{"timing mpi_ranks flipped full", false, flipByte, "training/timing/mpi_ranks.parquet", true, "checksum"},

		{"cuts truncated", false, truncate, "policy/cuts/stage_001.bin", false, "size"},
		{"packed basis truncated", true, truncate, "policy/basis/stage_002.bin.zst", false, "size"},
		{"packed cuts truncated", true, truncate, "policy/cuts/stage_000.bin.zst", false, "size"},
		{"cuts removed", false, remove, "policy/cuts/stage_002.bin", false, "lost"},
		{"packed removed", true, remove, "policy/basis/stage_000.bin.zst", false, "lost"},
		{"convergence truncated", false, truncate, "training/convergence.parquet", false, "checksum"},
		{"timing iterations truncated", false, truncate, "training/timing/iterations.parquet", false, "checksum"},
		{"timing mpi_ranks truncated", false, truncate, "training/timing/mpi_ranks.parquet", false, "checksum"},
		{"mpi_ranks removed", false, remove, "training/timing/mpi_ranks.parquet", false, "lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := copyTree(t, base)
			if tc.packed {
				wantExit(t, mergeShards(t, "policy", "pack", filepath.Join(out, "policy")), 0)
			}
			args := []string{out}
			if tc.full {
				args = []string{"--full", out}
			}
			if tc.damage == nil {
				if got := verifyProblems(t, 0, args...); len(got) != 0 {
					t.Fatalf("problems %v in an intact study", got)
				}
				return
			}
			tc.damage(t, filepath.Join(out, filepath.FromSlash(tc.file)))
			named := strings.TrimSuffix(tc.file, map[bool]string{true: policy.PackedExt}[tc.kind == "lost"])
			if got, want := verifyProblems(t, 2, args...), []string{tc.kind + " " + named}; !reflect.DeepEqual(got, want) {
				t.Fatalf("verify %v: problems %v, want %v", args, got, want)
			}
			// The human report names the file too.
			r := mergeShards(t, append([]string{"verify"}, args...)...)
			wantExit(t, r, 2)
			if !strings.Contains(r.stdout, "BAD    "+tc.kind+": "+named+":") {
				t.Fatalf("verify does not name %s:\n%s", named, r)
			}
		})
	}
}
