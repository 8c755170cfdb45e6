// Package policygen writes a synthetic, protocol-exact policy checkpoint
// of a training run: for each of W ranks, one training journal (open
// record, one checkpoint record listing its fragments, clean close) and
// its FlatBuffers cuts fragments, one per stage, at their final paths
// (_shards/policy/iter-NNNNNN/<writer>/cuts_stage_NNN.bin), the state the
// rank writer (rank.TrainingWriter.WriteCheckpoint) leaves once its
// renames are done. `merge-shards` accepts it as a complete checkpoint.
//
// It exists for benchmarks (cmd/shardbench's policy section) that need
// production-sized checkpoints (60 stages x 38,400 cuts x 480 dimensions,
// ~8.8 GB) quickly: the floats are windows of one random pool (no
// per-cut allocation), fragments are encoded with policy.Writer exactly as
// the rank writer does, and the files are written without fsync (call
// syscall.Sync afterwards when the page cache's state matters).
package policygen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
)

// Spec is the shape of the checkpoint.
type Spec struct {
	Ranks  int // training ranks (journals), >= 1
	Stages int // stages, >= 1
	Cuts   int // cuts per stage, all ranks together
	Dim    int // state dimension (coefficients per cut)
	// ForwardPasses per iteration, all ranks together (default 192, or
	// Ranks when that is larger). Cut k of a stage was generated at
	// iteration k/ForwardPasses+1 by forward pass k%ForwardPasses, which
	// belongs to rank pass*Ranks/ForwardPasses: every rank holds the
	// cuts of its own passes, interleaved with the others' by slot.
	ForwardPasses int
	// Workers encoding and writing in parallel (default 2).
	Workers int
	Seed    uint64
}

// Result describes what was written.
type Result struct {
	Iteration    int   // the checkpoint's iteration
	Files        int   // fragments
	Bytes        int64 // fragment bytes
	StageBytes   []int64
	LargestStage int64 // fragment bytes of the largest stage, all ranks
	Took         time.Duration
}

// Writer is rank r's writer name.
func Writer(r int) string { return fmt.Sprintf("job-policygen.rank-%05d.attempt-0.%012x", r, r+1) }

const poolSize = 1 << 20 // floats in the random pool (8 MiB)

// Generate writes the checkpoint into out (created when missing; it must
// not hold another output directory).
func Generate(out string, s Spec) (Result, error) {
	t0 := time.Now()
	if s.Ranks < 1 || s.Stages < 1 || s.Cuts < 0 || s.Dim < 0 {
		return Result{}, fmt.Errorf("policygen: bad spec %+v", s)
	}
	if s.ForwardPasses <= 0 {
		s.ForwardPasses = max(192, s.Ranks)
	}
	if s.ForwardPasses < s.Ranks {
		return Result{}, fmt.Errorf("policygen: %d forward passes for %d ranks: want at least one per rank", s.ForwardPasses, s.Ranks)
	}
	if s.Workers <= 0 {
		s.Workers = 2
	}
	it := max(1, (s.Cuts+s.ForwardPasses-1)/s.ForwardPasses)
	for _, d := range []string{layout.JournalDir, layout.TempDir} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return Result{}, err
		}
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x9e3779b97f4a7c15))
	pool := make([]float64, poolSize+s.Dim)
	for i := range pool {
		pool[i] = rng.NormFloat64() * 100
	}

	res := Result{Iteration: it, StageBytes: make([]int64, s.Stages)}
	files := make([][]manifest.PolicyFile, s.Ranks) // per rank, by stage
	for r := range files {
		files[r] = make([]manifest.PolicyFile, s.Stages)
	}
	type job struct{ rank, stage int }
	jobs := make(chan job)
	errs := make([]error, s.Workers)
	var wg sync.WaitGroup
	for w := range s.Workers {
		wg.Go(func() {
			enc := policy.NewWriter(1 << 16)
			var cuts []policy.Cut
			for j := range jobs {
				if errs[w] != nil {
					continue
				}
				cuts = rankCuts(cuts[:0], s, pool, j.rank, j.stage)
				sc := &policy.StageCuts{StageID: uint32(j.stage), StateDimension: uint32(s.Dim), Capacity: uint32(s.Cuts), Cuts: cuts}
				buf, err := enc.EncodeStageCuts(sc)
				if err != nil {
					errs[w] = err
					continue
				}
				f := manifest.PolicyFile{
					Kind: manifest.FragmentCuts, Stage: j.stage,
					Temp:  layout.CheckpointTemp(Writer(j.rank), it, manifest.FragmentCuts, j.stage),
					Path:  layout.Fragment(it, Writer(j.rank), manifest.FragmentCuts, j.stage),
					Bytes: int64(len(buf)), XXH64: manifest.FormatXXH64(xxhash.Sum64(buf)),
				}
				full := filepath.Join(out, filepath.FromSlash(f.Path))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					errs[w] = err
					continue
				}
				if err := os.WriteFile(full, buf, 0o644); err != nil {
					errs[w] = err
					continue
				}
				files[j.rank][j.stage] = f
			}
		})
	}
	for r := range s.Ranks {
		for st := range s.Stages {
			jobs <- job{r, st}
		}
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, fmt.Errorf("policygen: %w", err)
	}
	for r := range s.Ranks {
		for st, f := range files[r] {
			res.Files++
			res.Bytes += f.Bytes
			res.StageBytes[st] += f.Bytes
		}
	}
	for _, b := range res.StageBytes {
		res.LargestStage = max(res.LargestStage, b)
	}
	base := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for r := range s.Ranks {
		if err := writeJournal(out, s, r, it, files[r], base); err != nil {
			return Result{}, err
		}
	}
	res.Took = time.Since(t0)
	return res, nil
}

// rankCuts appends rank r's cuts of stage st, ordered by slot.
func rankCuts(dst []policy.Cut, s Spec, pool []float64, r, st int) []policy.Cut {
	fp := s.ForwardPasses
	h := uint64(st)*0x9e3779b97f4a7c15 + 1
	for k := range s.Cuts {
		pass := k % fp
		if pass*s.Ranks/fp != r {
			continue
		}
		x := (uint64(k) + h) * 0xbf58476d1ce4e5b9
		x ^= x >> 31
		off := int(x % poolSize)
		dst = append(dst, policy.Cut{
			CutID:            uint64(k + 1),
			SlotIndex:        uint32(k),
			Iteration:        uint32(k/fp + 1),
			ForwardPassIndex: uint32(pass),
			Intercept:        pool[(off+7)%poolSize] * 1000,
			IsActive:         k%10 != 0,
			Coefficients:     pool[off : off+s.Dim : off+s.Dim],
		})
	}
	return dst
}

// writeJournal writes rank r's training journal: open, checkpoint (with
// the root's metadata on rank 0), clean close.
func writeJournal(out string, s Spec, r, it int, files []manifest.PolicyFile, base time.Time) error {
	writer := Writer(r)
	var jb []byte
	var seq int64
	add := func(rec *manifest.Record) error {
		rec.Seq = seq
		rec.Time = base.Add(time.Duration(seq) * time.Second).Format(manifest.TimeFormat)
		b, err := journal.Encode(rec)
		if err != nil {
			return err
		}
		jb = append(jb, b...)
		seq++
		return nil
	}
	open := &manifest.OpenInfo{Version: manifest.JournalVersion, Producer: "hydroshard " + manifest.Version, Writer: writer,
		Rank: r, World: s.Ranks, Host: "node0", Launcher: "local", PID: 100 + r, Solver: "policygen",
		CaseName: "policygen", CaseHash: "policygen", Scenarios: s.ForwardPasses, Phase: manifest.PhaseTraining}
	if r == 0 {
		open.Training = &manifest.TrainingConfig{Seed: s.Seed, MaxIterations: it, ForwardPasses: s.ForwardPasses}
	}
	info := &manifest.CheckpointInfo{Iteration: it, Files: files}
	if r == 0 {
		ub := 1.5e9
		capacity := make([]uint32, s.Stages)
		for i := range capacity {
			capacity[i] = uint32(s.Cuts)
		}
		info.Meta = &manifest.PolicyMeta{
			Iteration: it, LowerBound: 1.2e9, BestUpperBound: &ub, Seed: s.Seed,
			ConfigHash: "policygen", SystemHash: "policygen", MaxIterations: it, ForwardPasses: s.ForwardPasses,
			StateDimension: s.Dim, NumStages: s.Stages,
			Capacity: capacity, WarmStartCounts: make([]uint32, s.Stages),
		}
	}
	for _, rec := range []*manifest.Record{
		{Type: manifest.RecordOpen, Open: open},
		{Type: manifest.RecordCheckpoint, Checkpoint: info},
		{Type: manifest.RecordClose, Close: &manifest.CloseInfo{Status: manifest.StatusClean, Termination: "iteration_limit"}},
	} {
		if err := add(rec); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(out, layout.JournalDir, writer+layout.JournalSuffix), jb, 0o644)
}
