package main

// The policy section: the merge's policy assembly at production size.
// 64 training ranks' checkpoint fragments (internal/policygen: protocol-
// exact journals and FlatBuffers cuts fragments, generated untimed) are
// merged by the real merge-shards binary (a child under rsswrap, for its
// peak RSS), alternately with `cp -r` of the same fragment tree to the
// same disk, then the merged checkpoint is read back with policy.Open +
// LoadCuts of every stage (every coefficient summed), alternately with
// os.ReadFile of the same files. Peak RSS is compared with the largest
// stage at two stage counts (it must not grow with them).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hydroshard/hydroshard/internal/policygen"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/policy"
)

// policyScaleConfig is the section's shape.
type policyScaleConfig struct {
	ranks, cuts, dim int
	stages           [2]int // the small (peak RSS only) and the large checkpoint (timed)
	rounds           int    // cp -r vs merge rounds on the large one (no warm-up)
	smallRounds      int    // merges of the small one
	readRounds       int    // policy.Open+read vs os.ReadFile rounds
	timeout          time.Duration
}

// policyScaleFor is the section's shape for a run: production size
// (64 ranks x 60 stages x 38,400 cuts x 480 dimensions, ~8.8 GB of
// fragments, 30 vs 60 stages) or, with quick, a CI size (4 x 6 x 2,000 x
// 480, ~46 MB, 3 vs 6 stages). HYDROSHARD_POLICY_CUTS overrides the cuts
// per stage (a half-size run: 19200), HYDROSHARD_POLICY_STAGES the two
// stage counts ("15,30").
func policyScaleFor(quick bool) policyScaleConfig {
	c := policyScaleConfig{ranks: 64, cuts: 38400, dim: 480, stages: [2]int{30, 60}, rounds: 3, smallRounds: 1, readRounds: 3, timeout: 30 * time.Minute}
	if quick {
		c = policyScaleConfig{ranks: 4, cuts: 2000, dim: 480, stages: [2]int{3, 6}, rounds: 3, smallRounds: 2, readRounds: 3, timeout: 3 * time.Minute}
	}
	if v := os.Getenv("HYDROSHARD_POLICY_CUTS"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			c.cuts = n
		}
	}
	if v := os.Getenv("HYDROSHARD_POLICY_STAGES"); v != "" {
		var a, b int
		if _, err := fmt.Sscanf(v, "%d,%d", &a, &b); err == nil && a > 0 && b > 0 {
			c.stages = [2]int{a, b}
		}
	}
	return c
}

// policyScaleResult is the section's figures.
type policyScaleResult struct {
	cfg          policyScaleConfig
	fragBytes    [2]int64 // fragment bytes of the small and large checkpoint
	largestStage [2]int64 // fragment bytes of their largest stage
	mergedBytes  int64    // bytes of the large checkpoint's merged stage files
	files        int      // fragments of the large checkpoint
	cp, merge    []float64
	open, read   []float64
	rssKiB       [2][]int64 // per merge, small and large
	generateTook time.Duration
}

// measurePolicyScale runs the section: mergeShards and wrap are the built
// merge-shards and rsswrap binaries, scratch a directory on the disk to
// measure (everything written under it is removed before returning).
func measurePolicyScale(ctx context.Context, pc policyScaleConfig, mergeShards, wrap, scratch string, progress io.Writer) (*policyScaleResult, error) {
	dir, err := os.MkdirTemp(scratch, "policy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &policyScaleResult{cfg: pc}
	for i := 1; i >= 0; i-- { // the large checkpoint first: its rounds are the timed ones
		stages := pc.stages[i]
		out := filepath.Join(dir, fmt.Sprintf("out-%d", stages))
		fmt.Fprintf(progress, "shardbench: policy: generating %d ranks x %d stages x %d cuts x %d dimensions\n", pc.ranks, stages, pc.cuts, pc.dim)
		g, err := policygen.Generate(out, policygen.Spec{Ranks: pc.ranks, Stages: stages, Cuts: pc.cuts, Dim: pc.dim, Seed: uint64(stages)})
		if err != nil {
			return nil, err
		}
		syscall.Sync() // both contestants start from clean, cached fragments
		r.generateTook += g.Took
		r.fragBytes[i], r.largestStage[i] = g.Bytes, g.LargestStage
		before, err := topLevel(out)
		if err != nil {
			return nil, err
		}
		rounds := pc.smallRounds
		if i == 1 {
			rounds, r.files = pc.rounds, g.Files
		}
		for round := range rounds {
			last := round == rounds-1
			if i == 1 {
				fmt.Fprintf(progress, "shardbench: policy: %d stages: cp -r vs merge-shards, round %d/%d\n", stages, round+1, rounds)
				sec, err := polCopyTree(ctx, filepath.Join(out, layout.ShardsDir, "policy"), filepath.Join(dir, "cp"))
				if err != nil {
					return nil, err
				}
				r.cp = append(r.cp, sec)
			} else {
				fmt.Fprintf(progress, "shardbench: policy: %d stages: merge-shards (peak RSS), round %d/%d\n", stages, round+1, rounds)
			}
			sec, kib, err := polMerge(ctx, mergeShards, wrap, out, pc.timeout)
			if err != nil {
				return nil, err
			}
			r.rssKiB[i] = append(r.rssKiB[i], kib)
			if i == 1 {
				r.merge = append(r.merge, sec)
			}
			if i == 1 && last {
				if err := r.readBack(out, progress); err != nil {
					return nil, err
				}
			}
			if err := polUnmerge(out, before); err != nil {
				return nil, err
			}
		}
		if err := os.RemoveAll(out); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// readBack times policy.Open + LoadCuts of every stage (summing every
// coefficient and intercept) against os.ReadFile of the same stage files,
// alternately.
func (r *policyScaleResult) readBack(out string, progress io.Writer) error {
	pdir := filepath.Join(out, layout.PolicyDir)
	stages := r.cfg.stages[1]
	var files []string
	for st := range stages {
		files = append(files, filepath.Join(pdir, "cuts", layout.StageFileName(st)))
	}
	r.mergedBytes = 0
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		r.mergedBytes += fi.Size()
	}
	var sink float64
	for round := range r.cfg.readRounds {
		fmt.Fprintf(progress, "shardbench: policy: policy.Open + every cut vs os.ReadFile, round %d/%d\n", round+1, r.cfg.readRounds)
		t0 := time.Now()
		p, err := policy.Open(pdir, policy.Expect{StateDimension: r.cfg.dim, NumStages: stages})
		if err != nil {
			return fmt.Errorf("policy: policy.Open of the merged checkpoint: %w", err)
		}
		n := 0
		for st := range stages {
			v, err := p.LoadCuts(uint32(st))
			if err != nil {
				return fmt.Errorf("policy: stage %d: %w", st, err)
			}
			for i := range v.Cuts {
				c := &v.Cuts[i]
				sink += c.Intercept
				for _, x := range c.Coefficients() {
					sink += x
				}
			}
			n += len(v.Cuts)
		}
		r.open = append(r.open, time.Since(t0).Seconds())
		if n != stages*r.cfg.cuts {
			return fmt.Errorf("policy: the merged checkpoint holds %d cuts, want %d", n, stages*r.cfg.cuts)
		}
		t0 = time.Now()
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			sink += float64(b[len(b)-1])
		}
		r.read = append(r.read, time.Since(t0).Seconds())
	}
	if sink == 0.5 { // keep the sums
		fmt.Fprintln(progress)
	}
	return nil
}

// topLevel lists out's top-level entries (to undo a merge).
func topLevel(out string) (map[string]bool, error) {
	ents, err := os.ReadDir(out)
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m, nil
}

// polUnmerge removes what a merge added at out's top level (policy/,
// training/, reports), so that the next round is a first merge again.
func polUnmerge(out string, before map[string]bool) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !before[e.Name()] {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// polCopyTree times `cp -r src dst` and removes dst afterwards (untimed).
func polCopyTree(ctx context.Context, src, dst string) (float64, error) {
	if err := os.RemoveAll(dst); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dst)
	cmd := exec.CommandContext(ctx, "cp", "-r", src, dst)
	t0 := time.Now()
	b, err := cmd.CombinedOutput()
	sec := time.Since(t0).Seconds()
	if err != nil {
		return 0, fmt.Errorf("cp -r %s %s: %w\n%s", src, dst, err, b)
	}
	return sec, nil
}

// polMerge runs `merge-shards OUT` under rsswrap: its wall time and peak
// RSS (KiB). The merge must assemble the policy (policy/metadata.json).
func polMerge(ctx context.Context, mergeShards, wrap, out string, timeout time.Duration) (float64, int64, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, wrap, mergeShards, out)
	cmd.Env = polChildEnv()
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	stdout, err := cmd.Output()
	sec := time.Since(t0).Seconds()
	what := "merge-shards " + out
	if err != nil {
		return 0, 0, fmt.Errorf("%s: rsswrap: %w\n%s", what, err, polTail(stderr.String()))
	}
	var res struct {
		MaxRSS int64 `json:"maxrss_kib"`
		Exit   int   `json:"exit"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		return 0, 0, fmt.Errorf("%s: rsswrap output %q: %w", what, stdout, err)
	}
	// 3 (PARTIAL) is the verdict on a training-only directory: no
	// scenario was simulated. The policy is assembled all the same.
	if res.Exit != 0 && res.Exit != 3 {
		return 0, 0, fmt.Errorf("%s: exit status %d\n%s", what, res.Exit, polTail(stderr.String()))
	}
	if _, err := os.Stat(filepath.Join(out, layout.PolicyMetadataFile)); err != nil {
		return 0, 0, fmt.Errorf("%s: no policy assembled: %w\n%s", what, err, polTail(stderr.String()))
	}
	if res.MaxRSS <= 0 {
		return 0, 0, errors.New(what + ": no peak RSS reported")
	}
	return sec, res.MaxRSS, nil
}

// polChildEnv is the environment without fault injection.
func polChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HYDROSHARD_FAULT=") {
			env = append(env, kv)
		}
	}
	return env
}

func polTail(s string) string {
	if len(s) > 4<<10 {
		return s[len(s)-4<<10:]
	}
	return s
}

func polMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

const polMB = 1e6

// Figures (MB/s are of the fragment bytes for cp and the merge, of the
// merged stage files for the reads; MB are 10^6 bytes).
func (r *policyScaleResult) mergeMBps() float64 {
	return float64(r.fragBytes[1]) / polMB / polMedian(r.merge)
}
func (r *policyScaleResult) cpMBps() float64 {
	return float64(r.fragBytes[1]) / polMB / polMedian(r.cp)
}
func (r *policyScaleResult) openMBps() float64 {
	return float64(r.mergedBytes) / polMB / polMedian(r.open)
}
func (r *policyScaleResult) readMBps() float64 {
	return float64(r.mergedBytes) / polMB / polMedian(r.read)
}

// cpRatioSpan is the range of the per-round merge/cp ratios (the two
// contestants of one round ran back to back).
func (r *policyScaleResult) cpRatioSpan() (lo, hi float64) {
	for i := range min(len(r.cp), len(r.merge)) {
		x := r.cp[i] / r.merge[i]
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}

// judged reports whether the targets apply: they are set for production
// stages (~150 MB); at the --quick size (8 MB stages) the merge process's
// fixed costs (start-up, its supervisor, ~40 MB of RSS) dominate.
func (r *policyScaleResult) judged() bool { return r.largestMB() >= 64 }

// rssMB is the largest peak RSS over the merges of checkpoint i, in MB.
func (r *policyScaleResult) rssMB(i int) float64 {
	return float64(slices.Max(r.rssKiB[i])) * 1024 / polMB
}

func (r *policyScaleResult) largestMB() float64 {
	return float64(max(r.largestStage[0], r.largestStage[1])) / polMB
}

// targets: merge >= 0.5x cp -r; peak RSS <= 2.5x the largest stage at the
// large stage count; large/small peak RSS <= 1.1 (flat in the stages).
func (r *policyScaleResult) targets() []polTargetT {
	return []polTargetT{
		{name: "policy merge / cp -r (MB/s)", key: "policy_cp_ratio", value: r.mergeMBps() / r.cpMBps(), bound: 0.5, atLeast: true},
		{name: fmt.Sprintf("merge peak RSS / largest stage (%d stages)", r.cfg.stages[1]), key: "policy_rss_stage_ratio", value: r.rssMB(1) / r.largestMB(), bound: 2.5},
		{name: fmt.Sprintf("merge peak RSS %d / %d stages", r.cfg.stages[1], r.cfg.stages[0]), key: "policy_rss_flat_ratio", value: r.rssMB(1) / r.rssMB(0), bound: 1.1},
	}
}

// polTargetT is one target of the section (the shape of report.go's
// target, kept apart so this file stands alone).
type polTargetT struct {
	name, key string
	value     float64
	bound     float64
	atLeast   bool
}

func (t polTargetT) met() bool {
	if t.atLeast {
		return t.value >= t.bound
	}
	return t.value <= t.bound
}

// printPolicyScale prints the section.
func (r *policyScaleResult) print(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "\npolicy merge at scale: %d ranks x %d stages x %d cuts x %d dimensions, %d fragments, %.1f MB (largest stage %.1f MB; generated in %v, untimed)\n",
		c.ranks, c.stages[1], c.cuts, c.dim, r.files, float64(r.fragBytes[1])/polMB, r.largestMB(), r.generateTook.Round(time.Second))
	fmt.Fprintf(w, "   cp -r of OUT/_shards/policy (same file system, no fsync) and merge-shards OUT (a child process under rsswrap: wall time, peak RSS), alternately, %d rounds; MB/s of fragment bytes\n", len(r.merge))
	span := func(xs []float64, bytes int64) string {
		return fmt.Sprintf("%.0f MB/s (%.0f-%.0f)", float64(bytes)/polMB/polMedian(xs), float64(bytes)/polMB/slices.Max(xs), float64(bytes)/polMB/slices.Min(xs))
	}
	fmt.Fprintf(w, "   %-58s %s\n", "cp -r of the fragments", span(r.cp, r.fragBytes[1]))
	fmt.Fprintf(w, "   %-58s %s\n", "merge-shards (policy assembly: read, verify, union, encode, fsync)", span(r.merge, r.fragBytes[1]))
	for i := range 2 {
		fmt.Fprintf(w, "   %-58s %.1f MB (%d merges; largest stage %.1f MB)\n", fmt.Sprintf("merge peak RSS, %d stages", c.stages[i]), r.rssMB(i), len(r.rssKiB[i]), float64(r.largestStage[i])/polMB)
	}
	fmt.Fprintf(w, "   reading the merged checkpoint (%.1f MB of cuts files), alternately, %d rounds\n", float64(r.mergedBytes)/polMB, len(r.open))
	fmt.Fprintf(w, "   %-58s %s\n", "policy.Open + LoadCuts of every stage, every value summed", span(r.open, r.mergedBytes))
	fmt.Fprintf(w, "   %-58s %s\n", "os.ReadFile of the same files", span(r.read, r.mergedBytes))
	lo, hi := r.cpRatioSpan()
	fmt.Fprintf(w, "   %-58s %.2f-%.2f\n", "merge / cp -r per round", lo, hi)
	for _, t := range r.targets() {
		verdict := "met"
		if !t.met() {
			verdict = "MISS"
		}
		if !r.judged() {
			verdict = "(not judged: CI size, the process's fixed costs dominate)"
		}
		op := "<="
		if t.atLeast {
			op = ">="
		}
		fmt.Fprintf(w, "   target %-50s %.3f (%s %.2f) %s\n", t.name, t.value, op, t.bound, verdict)
	}
}

// addJSON adds the section's figures to the run's JSON object.
func (r *policyScaleResult) addJSON(m map[string]any) {
	m["policy_merge_mbps"] = r.mergeMBps()
	m["policy_cp_mbps"] = r.cpMBps()
	m["policy_cp_ratio"] = r.mergeMBps() / r.cpMBps()
	lo, hi := r.cpRatioSpan()
	m["policy_cp_ratio_range"] = [2]float64{lo, hi}
	m[fmt.Sprintf("policy_rss_mb_%d", r.cfg.stages[0])] = r.rssMB(0)
	m[fmt.Sprintf("policy_rss_mb_%d", r.cfg.stages[1])] = r.rssMB(1)
	m["policy_rss_mb_small"] = r.rssMB(0)
	m["policy_rss_mb_large"] = r.rssMB(1)
	m["policy_largest_stage_mb"] = r.largestMB()
	m["policy_rss_stage_ratio"] = r.rssMB(1) / r.largestMB()
	m["policy_rss_flat_ratio"] = r.rssMB(1) / r.rssMB(0)
	m["policy_open_read_mbps"] = r.openMBps()
	m["policy_readfile_mbps"] = r.readMBps()
	m["policy_open_readfile_ratio"] = r.openMBps() / r.readMBps()
	m["policy_shape"] = fmt.Sprintf("%d ranks x %d/%d stages x %d cuts x %d dims", r.cfg.ranks, r.cfg.stages[0], r.cfg.stages[1], r.cfg.cuts, r.cfg.dim)
	targets := map[string]bool{}
	for _, t := range r.targets() {
		targets[t.key] = t.met()
	}
	m["policy_targets_met"] = targets
	m["policy_targets_judged"] = r.judged()
}

// runPolicySection is the section's entry point for bench (main.go):
// production size, or the CI size with --quick, with the merge-shards and
// rsswrap binaries buildTools made, under scratch.
func runPolicySection(ctx context.Context, cfg config, bins builtTools, scratch string, progress io.Writer) (*policyScaleResult, error) {
	return measurePolicyScale(ctx, policyScaleFor(cfg.quick), bins.mergeShards, bins.wrap, scratch, progress)
}

// targetDocs are the section's targets in the shape of the JSON
// "targets" list (report.go's doc).
func (r *policyScaleResult) targetDocs() []map[string]any {
	var out []map[string]any
	for _, t := range r.targets() {
		op := "<="
		if t.atLeast {
			op = ">="
		}
		out = append(out, map[string]any{"scale": "policy", "name": t.name, "key": t.key,
			"value": t.value, "target": fmt.Sprintf("%s %g", op, t.bound), "pass": t.met() || !r.judged()})
	}
	return out
}
