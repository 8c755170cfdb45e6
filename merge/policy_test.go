package merge_test

// Policy assembly tests: training journals with checkpoint records and
// FlatBuffers fragments written by hand, then a merge.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/internal/policygen"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/policy"
)

const (
	polStages = 3
	polDim    = 4
	polCuts   = 20 // per stage
)

var polBase = time.Date(2026, 3, 2, 9, 30, 15, 123456789, time.UTC)

// polCut is the canonical cut i of stage st.
func polCut(st, i int) policy.Cut {
	c := policy.Cut{
		CutID:            uint64(st*1000 + i*7 + 3),
		SlotIndex:        uint32((i * 13) % polCuts), // a permutation of 0..polCuts-1
		Iteration:        uint32(1 + i/5),
		ForwardPassIndex: uint32(i % 5),
		Intercept:        float64(st*100+i) + 0.25,
		IsActive:         i%3 != 0,
		Coefficients:     make([]float64, polDim),
	}
	for k := range c.Coefficients {
		c.Coefficients[k] = float64(st) - float64(i*k)/7
	}
	if i%2 == 0 {
		c.StateAtGeneration = []float64{1, 2, 3, float64(i)}
	}
	return c
}

// polRank is one rank's part of one checkpoint.
type polRank struct {
	cuts   func(st, i int) bool                         // which cuts it holds
	mutate func(st int, c *policy.Cut)                  // optional change of its copies
	temp   bool                                         // leave its fragments in _shards/tmp (crash after the record)
	skip   bool                                         // no checkpoint record
	extra  func(st int, cuts []policy.Cut) []policy.Cut // optional
}

func polWriter(r int) string { return fmt.Sprintf("job-pol.rank-%05d.attempt-0.%012x", r, r+1) }

// polMeta is the root's metadata of a checkpoint.
func polMeta(it int) *manifest.PolicyMeta {
	ub := 123.5
	return &manifest.PolicyMeta{
		Iteration: it, LowerBound: 99.25 + float64(it), BestUpperBound: &ub, Seed: 42,
		ConfigHash: "cfg", SystemHash: "sys", MaxIterations: 50, ForwardPasses: 8,
		StateDimension: polDim, NumStages: polStages,
		Capacity: []uint32{64, 64, 32}, WarmStartCounts: []uint32{2, 0, 1}, TotalVisitedStates: 17,
	}
}

// polWrite writes a training-only output directory: one journal per rank,
// one checkpoint record per entry of ckpts (iteration -> the ranks' parts).
func polWrite(t *testing.T, out string, world int, ckpts map[int][]polRank) {
	t.Helper()
	for _, d := range []string{layout.JournalDir, layout.TempDir} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := policy.NewWriter(1024)
	var iters []int
	for it := range ckpts {
		iters = append(iters, it)
	}
	for i := range iters {
		for j := i + 1; j < len(iters); j++ {
			if iters[j] < iters[i] {
				iters[i], iters[j] = iters[j], iters[i]
			}
		}
	}
	for r := range world {
		writer := polWriter(r)
		var jb []byte
		var seq int64
		add := func(rec *manifest.Record) {
			rec.Seq = seq
			rec.Time = polBase.Add(time.Duration(seq) * time.Second).Format(manifest.TimeFormat)
			b, err := journal.Encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			jb = append(jb, b...)
			seq++
		}
		open := &manifest.OpenInfo{Version: manifest.JournalVersion, Producer: "hydroshard " + manifest.Version, Writer: writer,
			Rank: r, World: world, Host: "node0", Launcher: "local", PID: 100 + r, Solver: "test",
			CaseName: "pol", CaseHash: "polhash", Scenarios: 4, Phase: manifest.PhaseTraining}
		if r == 0 {
			open.Training = &manifest.TrainingConfig{Seed: 42, MaxIterations: 50, ForwardPasses: 8}
		}
		add(&manifest.Record{Type: manifest.RecordOpen, Open: open})
		for _, it := range iters {
			part := ckpts[it][r]
			if part.skip {
				continue
			}
			info := &manifest.CheckpointInfo{Iteration: it}
			if r == 0 {
				info.Meta = polMeta(it)
			}
			for st := range polStages {
				sc := &policy.StageCuts{StageID: uint32(st), StateDimension: polDim, Capacity: 64, WarmStartCount: 9}
				for i := range polCuts {
					if part.cuts(st, i) {
						c := polCut(st, i)
						if part.mutate != nil {
							part.mutate(st, &c)
						}
						sc.Cuts = append(sc.Cuts, c)
					}
				}
				if part.extra != nil {
					sc.Cuts = part.extra(st, sc.Cuts)
				}
				sortCuts(sc.Cuts)
				buf, err := w.EncodeStageCuts(sc)
				if err != nil {
					t.Fatal(err)
				}
				info.Files = append(info.Files, polFragment(t, out, it, writer, manifest.FragmentCuts, st, buf, part.temp))
				if r == 0 && st != 1 { // bases for stages 0 and 2, from the root only
					bb, err := w.EncodeStageBasis(&policy.StageBasis{StageID: uint32(st), Iteration: uint32(it), ColumnStatus: []byte{1, 2, 3}, RowStatus: []byte{0, 1}, NumCutRows: 1})
					if err != nil {
						t.Fatal(err)
					}
					info.Files = append(info.Files, polFragment(t, out, it, writer, manifest.FragmentBasis, st, bb, part.temp))
				}
			}
			add(&manifest.Record{Type: manifest.RecordCheckpoint, Checkpoint: info})
		}
		add(&manifest.Record{Type: manifest.RecordClose, Close: &manifest.CloseInfo{Status: manifest.StatusClean, Committed: 0, Termination: "iteration_limit"}})
		if err := os.WriteFile(filepath.Join(out, layout.JournalDir, writer+layout.JournalSuffix), jb, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sortCuts(c []policy.Cut) {
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j].SlotIndex < c[i].SlotIndex {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
}

// polFragment writes one fragment at its final path (or only its temp).
func polFragment(t *testing.T, out string, it int, writer, kind string, st int, buf []byte, temp bool) manifest.PolicyFile {
	t.Helper()
	f := manifest.PolicyFile{
		Kind: kind, Stage: st,
		Temp:  layout.CheckpointTemp(writer, it, kind, st),
		Path:  path.Join(layout.ShardsDir, "policy", fmt.Sprintf("iter-%06d", it), writer, fmt.Sprintf("%s_stage_%03d.bin", kind, st)),
		Bytes: int64(len(buf)), XXH64: manifest.FormatXXH64(xxhash.Sum64(buf)),
	}
	p := f.Path
	if temp {
		p = f.Temp
	}
	full := filepath.Join(out, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func polMerge(t *testing.T, out string) *merge.Report {
	t.Helper()
	rep, err := merge.Run(context.Background(), out, merge.Options{Verify: merge.VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func all(int, int) bool { return true }

func TestPolicyAssemblyIdenticalAcrossSplits(t *testing.T) {
	layouts := map[string]map[int][]polRank{
		"one rank": {5: {{cuts: all}}},
		"disjoint": {5: {
			{cuts: func(st, i int) bool { return i%4 == 0 }},
			{cuts: func(st, i int) bool { return i%4 == 1 }},
			{cuts: func(st, i int) bool { return i%4 == 2 }},
			{cuts: func(st, i int) bool { return i%4 == 3 }},
		}},
		"overlapping": {5: {
			{cuts: func(st, i int) bool { return i < 8 }},
			{cuts: func(st, i int) bool { return i >= 5 && i < 15 }, temp: true},
			{cuts: func(st, i int) bool { return i >= 12 || i == 0 }},
			{cuts: func(st, i int) bool { return i%2 == 1 }},
		}},
	}
	var ref map[string][]byte
	var refName string
	for _, name := range []string{"one rank", "disjoint", "overlapping"} {
		out := t.TempDir()
		polWrite(t, out, len(layouts[name][5]), layouts[name])
		rep := polMerge(t, out)
		if len(rep.Problems) > 0 || rep.Outcome == merge.Corrupt {
			t.Fatalf("%s: problems %v", name, rep.Problems)
		}
		if rep.Training == nil || rep.Training.Policy == nil || rep.Training.Policy.Iteration != 5 || rep.Training.Policy.Cuts != polStages*polCuts {
			t.Fatalf("%s: policy report %+v", name, rep.Training)
		}
		if name == "overlapping" && rep.Training.Policy.RolledForward == 0 {
			t.Fatalf("overlapping: rank 1's fragments were left in tmp, none rolled forward")
		}
		tree := readTree(t, filepath.Join(out, layout.PolicyDir))
		if ref == nil {
			ref, refName = tree, name
			checkPolicy(t, out)
		} else {
			if len(tree) != len(ref) {
				t.Fatalf("%s: %d policy files, %s: %d", name, len(tree), refName, len(ref))
			}
			for k, b := range ref {
				if !bytes.Equal(tree[k], b) {
					t.Fatalf("%s: policy/%s differs from %s's", name, k, refName)
				}
			}
		}
		if fi, err := os.Stat(filepath.Join(out, layout.PolicyDir, "basis")); err != nil || !fi.IsDir() {
			t.Fatalf("%s: policy/basis missing: %v", name, err)
		}
		// Training metadata carries the policy's SHA-256s.
		var tm manifest.TrainingMetadata
		b, err := os.ReadFile(filepath.Join(out, layout.TrainingDir, "metadata.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &tm); err != nil {
			t.Fatal(err)
		}
		if len(tm.DataIntegrity.PolicySHA256) != polStages+2+1 {
			t.Fatalf("%s: policy_sha256 %v", name, tm.DataIntegrity.PolicySHA256)
		}
		// Re-merging changes no byte and rewrites no policy file.
		rep2 := polMerge(t, out)
		for _, w := range rep2.Written {
			if strings.HasPrefix(w, layout.PolicyDir+"/") {
				t.Fatalf("%s: re-merge rewrote %s", name, w)
			}
		}
		tree2 := readTree(t, filepath.Join(out, layout.PolicyDir))
		for k, b := range tree {
			if !bytes.Equal(tree2[k], b) {
				t.Fatalf("%s: re-merge changed policy/%s", name, k)
			}
		}
	}
}

// checkPolicy opens out/policy and compares every cut and the metadata.
func checkPolicy(t *testing.T, out string) {
	t.Helper()
	p, err := policy.Open(filepath.Join(out, layout.PolicyDir), policy.Expect{StateDimension: polDim, NumStages: polStages})
	if err != nil {
		t.Fatal(err)
	}
	meta := polMeta(5)
	for st := range polStages {
		v, err := p.LoadCuts(uint32(st))
		if err != nil {
			t.Fatal(err)
		}
		if v.Capacity != meta.Capacity[st] || v.WarmStartCount != meta.WarmStartCounts[st] || len(v.Cuts) != polCuts {
			t.Fatalf("stage %d: capacity %d warm %d cuts %d", st, v.Capacity, v.WarmStartCount, len(v.Cuts))
		}
		want := make([]policy.Cut, polCuts)
		for i := range want {
			want[i] = polCut(st, i)
		}
		sortCuts(want)
		for i := range want {
			c, w := &v.Cuts[i], &want[i]
			if c.CutID != w.CutID || c.SlotIndex != w.SlotIndex || c.Intercept != w.Intercept || c.IsActive != w.IsActive ||
				c.Iteration != w.Iteration || c.ForwardPassIndex != w.ForwardPassIndex ||
				fmt.Sprint(c.Coefficients()) != fmt.Sprint(w.Coefficients) || len(c.StateAtGeneration()) != len(w.StateAtGeneration) {
				t.Fatalf("stage %d cut %d: got %+v, want %+v", st, i, *c, *w)
			}
		}
		b, err := p.LoadBasis(uint32(st))
		if err != nil || (st != 1) != (b != nil) {
			t.Fatalf("stage %d basis %v %v", st, b, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, layout.PolicyDir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cobre_version", "created_at", "completed_iterations", "final_lower_bound", "best_upper_bound",
		"state_dimension", "num_stages", "max_iterations", "forward_passes", "warm_start_cuts", "warm_start_counts",
		"rng_seed", "total_visited_states", "files", "config_hash", "system_hash"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metadata.json lacks %q", k)
		}
	}
	// The checkpoint record of iteration 5 is the root's second record.
	if m["created_at"] != "2026-03-02T09:30:16Z" || m["cobre_version"] != manifest.Version || m["completed_iterations"] != 5.0 ||
		m["warm_start_cuts"] != 3.0 || m["num_stages"] != float64(polStages) || m["best_upper_bound"] != 123.5 {
		t.Errorf("metadata.json: %s", raw)
	}
	if files, _ := m["files"].(map[string]any); len(files) != polStages+2 {
		t.Errorf("metadata.json files: %v", m["files"])
	}
}

func TestPolicyConflictingDuplicateCut(t *testing.T) {
	out := t.TempDir()
	polWrite(t, out, 2, map[int][]polRank{5: {
		{cuts: all},
		{cuts: func(st, i int) bool { return i == 4 }, mutate: func(st int, c *policy.Cut) {
			if st == 1 {
				c.Intercept += 1e-9
			}
		}},
	}})
	rep := polMerge(t, out)
	if rep.Outcome != merge.Corrupt || rep.ExitCode() != 2 {
		t.Fatalf("outcome %v, want corrupt", rep.Outcome)
	}
	cut := polCut(1, 4).CutID
	found := false
	for _, p := range rep.Problems {
		if p.Kind == "conflict" && strings.Contains(p.Detail, fmt.Sprintf("stage 1 cut_id %d", cut)) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no conflict problem naming stage 1 cut_id %d: %v", cut, rep.Problems)
	}
	if _, err := os.Stat(filepath.Join(out, layout.PolicyDir)); err == nil {
		t.Fatal("policy/ written despite the conflict")
	}
}

func TestPolicyIncompleteLaterCheckpoint(t *testing.T) {
	out := t.TempDir()
	polWrite(t, out, 3, map[int][]polRank{
		5: {{cuts: all}, {cuts: all}, {cuts: all}},
		7: {{cuts: all}, {skip: true}, {cuts: all}},
	})
	rep := polMerge(t, out)
	if len(rep.Problems) > 0 {
		t.Fatal(rep.Problems)
	}
	pr := rep.Training.Policy
	if pr == nil || pr.Iteration != 5 || len(pr.Incomplete) != 1 || !strings.Contains(pr.Incomplete[0], "iteration 7") || !strings.Contains(pr.Incomplete[0], "rank 1") {
		t.Fatalf("policy report %+v", pr)
	}
	p, err := policy.Open(filepath.Join(out, layout.PolicyDir), policy.Expect{StateDimension: polDim, NumStages: polStages})
	if err != nil {
		t.Fatal(err)
	}
	if p.Metadata.CompletedIterations != 5 {
		t.Fatalf("completed_iterations %d, want 5", p.Metadata.CompletedIterations)
	}
}

func TestPolicyLostFragment(t *testing.T) {
	out := t.TempDir()
	polWrite(t, out, 2, map[int][]polRank{5: {{cuts: all}, {cuts: all}}})
	p := filepath.Join(out, layout.ShardsDir, "policy", "iter-000005", polWriter(1), "cuts_stage_002.bin")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	rep := polMerge(t, out)
	if rep.ExitCode() != 2 || len(rep.Problems) == 0 || rep.Problems[0].Kind != "lost" {
		t.Fatalf("exit %d problems %v", rep.ExitCode(), rep.Problems)
	}
}

// BenchmarkPolicyMerge merges a synthetic checkpoint (internal/policygen)
// of HYDROSHARD_POLICY_BENCH="ranks,stages,cuts,dim" (default
// 8,4,4800,480: ~74 MB) once per iteration, the policy removed between
// iterations (untimed). cmd/shardbench's policy section measures the same
// at production size, against cp -r.
func BenchmarkPolicyMerge(b *testing.B) {
	spec := policygen.Spec{Ranks: 8, Stages: 4, Cuts: 4800, Dim: 480}
	if v := os.Getenv("HYDROSHARD_POLICY_BENCH"); v != "" {
		if _, err := fmt.Sscanf(v, "%d,%d,%d,%d", &spec.Ranks, &spec.Stages, &spec.Cuts, &spec.Dim); err != nil {
			b.Fatalf("HYDROSHARD_POLICY_BENCH=%q: %v", v, err)
		}
	}
	out := b.TempDir()
	g, err := policygen.Generate(out, spec)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(g.Bytes)
	b.ResetTimer()
	for range b.N {
		rep, err := merge.Run(context.Background(), out, merge.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Training == nil || rep.Training.Policy == nil || rep.Training.Policy.Cuts != spec.Stages*spec.Cuts {
			b.Fatalf("policy report %+v", rep.Training)
		}
		b.StopTimer()
		for _, d := range []string{layout.PolicyDir, layout.TrainingDir} {
			if err := os.RemoveAll(filepath.Join(out, d)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}

// TestPolicyRebuildKeepsIdenticalStageFiles: with policy/metadata.json
// gone, the merge rebuilds the policy; stage files that already hold the
// assembled bytes are kept (fsynced, not rewritten), one that differs is
// replaced, and no temp file is left behind.
func TestPolicyRebuildKeepsIdenticalStageFiles(t *testing.T) {
	out := t.TempDir()
	polWrite(t, out, 2, map[int][]polRank{5: {{cuts: all}, {cuts: func(st, i int) bool { return i%2 == 0 }}}})
	polMerge(t, out)
	want := readTree(t, filepath.Join(out, layout.PolicyDir))
	if err := os.Remove(filepath.Join(out, layout.PolicyMetadataFile)); err != nil {
		t.Fatal(err)
	}
	damaged := path.Join("cuts", layout.StageFileName(1))
	if err := os.WriteFile(filepath.Join(out, layout.PolicyDir, filepath.FromSlash(damaged)), []byte("not a stage"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := polMerge(t, out)
	if len(rep.Problems) > 0 {
		t.Fatal(rep.Problems)
	}
	var policyWritten []string
	for _, w := range rep.Written {
		if strings.HasPrefix(w, layout.PolicyDir+"/") {
			policyWritten = append(policyWritten, w)
		}
	}
	wantWritten := []string{path.Join(layout.PolicyDir, damaged), layout.PolicyMetadataFile}
	if fmt.Sprint(policyWritten) != fmt.Sprint(wantWritten) {
		t.Fatalf("policy files written %v, want %v", policyWritten, wantWritten)
	}
	got := readTree(t, filepath.Join(out, layout.PolicyDir))
	if len(got) != len(want) {
		t.Fatalf("%d policy files, want %d", len(got), len(want))
	}
	for k, b := range want {
		if !bytes.Equal(got[k], b) {
			t.Fatalf("policy/%s differs after the rebuild", k)
		}
	}
	checkPolicy(t, out)
	ents, err := os.ReadDir(filepath.Join(out, layout.TempDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in %s: %s", layout.TempDir, e.Name())
	}
}

// TestPolicyGeneratedCheckpoint merges a checkpoint of internal/policygen
// (what cmd/shardbench's policy section measures at production size):
// complete, every cut there once, in slot order, with its coefficients.
func TestPolicyGeneratedCheckpoint(t *testing.T) {
	out := t.TempDir()
	spec := policygen.Spec{Ranks: 5, Stages: 3, Cuts: 1000, Dim: 7, ForwardPasses: 20}
	g, err := policygen.Generate(out, spec)
	if err != nil {
		t.Fatal(err)
	}
	if g.Files != spec.Ranks*spec.Stages || g.Iteration != 50 {
		t.Fatalf("generated %+v", g)
	}
	rep, err := merge.Run(context.Background(), out, merge.Options{Verify: merge.VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Training == nil || rep.Training.Policy == nil || rep.Training.Policy.Cuts != spec.Stages*spec.Cuts {
		t.Fatalf("problems %v, training %+v", rep.Problems, rep.Training)
	}
	// A first merge hashes the stage files as it writes them: the
	// training metadata's SHA-256s are those of the files.
	checkPolicySHA := func() {
		t.Helper()
		var tm manifest.TrainingMetadata
		b, err := os.ReadFile(filepath.Join(out, layout.TrainingDir, "metadata.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &tm); err != nil {
			t.Fatal(err)
		}
		tree := readTree(t, filepath.Join(out, layout.PolicyDir))
		if len(tm.DataIntegrity.PolicySHA256) != len(tree) || len(tree) != spec.Stages+1 {
			t.Fatalf("policy_sha256 %v for %d files", tm.DataIntegrity.PolicySHA256, len(tree))
		}
		for name, data := range tree {
			if got, want := tm.DataIntegrity.PolicySHA256[name], fmt.Sprintf("%x", sha256.Sum256(data)); got != want {
				t.Fatalf("policy_sha256[%s] = %s, the file's is %s", name, got, want)
			}
		}
	}
	checkPolicySHA()
	// A re-merge (the policy in place) computes them in the analysis.
	if _, err := merge.Run(context.Background(), out, merge.Options{Verify: merge.VerifyFull}); err != nil {
		t.Fatal(err)
	}
	checkPolicySHA()
	p, err := policy.Open(filepath.Join(out, layout.PolicyDir), policy.Expect{StateDimension: spec.Dim, NumStages: spec.Stages})
	if err != nil {
		t.Fatal(err)
	}
	for st := range spec.Stages {
		v, err := p.LoadCuts(uint32(st))
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Cuts) != spec.Cuts || v.Capacity != uint32(spec.Cuts) {
			t.Fatalf("stage %d: %d cuts, capacity %d", st, len(v.Cuts), v.Capacity)
		}
		for k := range v.Cuts {
			c := &v.Cuts[k]
			if c.SlotIndex != uint32(k) || c.CutID != uint64(k+1) || c.ForwardPassIndex != uint32(k%20) || len(c.Coefficients()) != spec.Dim {
				t.Fatalf("stage %d cut %d: %+v", st, k, *c)
			}
		}
		if k := 777; v.Cuts[k].Coefficients()[3] == v.Cuts[k+1].Coefficients()[3] {
			t.Fatalf("stage %d: cuts %d and %d have the same coefficients", st, k, k+1)
		}
	}
}

// BenchmarkPolicyOpenRead: policy.Open + LoadCuts of every stage of a
// merged synthetic checkpoint (HYDROSHARD_POLICY_BENCH as in
// BenchmarkPolicyMerge), every coefficient summed.
func BenchmarkPolicyOpenRead(b *testing.B) {
	spec := policygen.Spec{Ranks: 8, Stages: 4, Cuts: 4800, Dim: 480}
	if v := os.Getenv("HYDROSHARD_POLICY_BENCH"); v != "" {
		if _, err := fmt.Sscanf(v, "%d,%d,%d,%d", &spec.Ranks, &spec.Stages, &spec.Cuts, &spec.Dim); err != nil {
			b.Fatalf("HYDROSHARD_POLICY_BENCH=%q: %v", v, err)
		}
	}
	out := b.TempDir()
	if _, err := policygen.Generate(out, spec); err != nil {
		b.Fatal(err)
	}
	if _, err := merge.Run(context.Background(), out, merge.Options{}); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(out, layout.PolicyDir)
	var size int64
	for st := range spec.Stages {
		fi, err := os.Stat(filepath.Join(dir, "cuts", layout.StageFileName(st)))
		if err != nil {
			b.Fatal(err)
		}
		size += fi.Size()
	}
	b.SetBytes(size)
	b.ResetTimer()
	var sum float64
	for range b.N {
		p, err := policy.Open(dir, policy.Expect{StateDimension: spec.Dim, NumStages: spec.Stages})
		if err != nil {
			b.Fatal(err)
		}
		for st := range spec.Stages {
			v, err := p.LoadCuts(uint32(st))
			if err != nil {
				b.Fatal(err)
			}
			for i := range v.Cuts {
				for _, x := range v.Cuts[i].Coefficients() {
					sum += x
				}
			}
		}
	}
	if sum == 0.5 {
		b.Log(sum)
	}
}
