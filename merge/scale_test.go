package merge_test

// Scale tests of the merge: a generator writes a synthetic but
// protocol-exact run (J journals, P partitions, files already renamed into
// place) without encoding any Parquet, so that the merge's own cost at
// production scale can be measured.

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
)

// scaleRun describes a run written by scaleGenerate.
type scaleRun struct {
	Out        string
	Journals   int
	Scenarios  int
	Partitions int // Scenarios x len(Entities): one data file each
	Entities   []string
	Bytes      int64 // total size of the data files
	CaseName   string
	CaseHash   string
}

// scaleBase is the clock of the synthetic run: every journal's record
// times derive from it, so the run (and hence the merge's outputs) is
// deterministic. The fraction has nine significant digits and every time
// below keeps a non-zero last nanosecond digit, so that RFC3339Nano never
// trims trailing zeros and all times have the same length.
var scaleBase = time.Date(2026, 3, 1, 12, 0, 0, 100000001, time.UTC)

// scaleTime is the time of record seq of the journal of rank r.
func scaleTime(r int, seq int64) string {
	return scaleBase.Add(time.Duration(r)*time.Millisecond + time.Duration(seq)*time.Second).Format(time.RFC3339Nano)
}

// scaleContent is the deterministic content of one data file: 0..64 bytes
// (some files empty) of a little LCG stream.
func scaleContent(buf []byte, scenario, entity int) []byte {
	n := (scenario*7 + entity*13) % 65
	buf = buf[:0]
	x := uint32(scenario*2654435761) ^ uint32(entity*40503+1)
	for range n {
		x = x*1664525 + 1013904223
		buf = append(buf, byte(x>>24))
	}
	return buf
}

// scaleWriterName is the writer id (and journal base name) of rank r,
// shaped like rank.Writer's: job-<job>.rank-NNNNN.attempt-A.<token>.
func scaleWriterName(r int) string {
	return fmt.Sprintf("job-bench.rank-%05d.attempt-0.%012x", r, uint64(r)*0x9e3779b97f4a7c15>>16)
}

// scaleGenerate writes into out a clean, finished run of the tiny case:
// journals journals (one per rank of a world of that size) committing
// partitions partitions in total, partitions/len(entities) scenarios in
// contiguous blocks. Every commit lists one file per entity of the case,
// with the XXH64 of the file written in place at its final path (the
// renames were done; _shards/tmp is empty). Journals are closed clean.
func scaleGenerate(tb testing.TB, out string, journals, partitions int) *scaleRun {
	tb.Helper()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		tb.Fatal(err)
	}
	ents := c.Entities()
	if partitions%len(ents) != 0 {
		tb.Fatalf("scaleGenerate: %d partitions is not a multiple of the case's %d entities", partitions, len(ents))
	}
	run := &scaleRun{Out: out, Journals: journals, Scenarios: partitions / len(ents), Partitions: partitions, Entities: ents, CaseName: c.Name, CaseHash: c.Hash()}
	if journals < 1 || journals > run.Scenarios {
		tb.Fatalf("scaleGenerate: %d journals for %d scenarios", journals, run.Scenarios)
	}
	for _, d := range []string{layout.JournalDir, layout.TempDir, layout.SimDir} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	// Entity directories first, so that the workers only create
	// partition directories (no racing parents).
	for _, e := range ents {
		if err := os.MkdirAll(filepath.Join(out, layout.SimDir, e), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	lay := manifest.Layout{ScenarioPad: 0, Ownership: "contiguous"}
	stages := c.Stages

	var next atomic.Int64
	var total atomic.Int64
	errs := make([]error, journals)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var content []byte
			for {
				r := int(next.Add(1)) - 1
				if r >= journals {
					return
				}
				n, err := scaleWriteRank(out, c, run, lay, stages, r, &content)
				if err != nil {
					errs[r] = err
					return
				}
				total.Add(n)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	run.Bytes = total.Load()
	return run
}

// scaleWriteRank writes rank r's data files and journal; it returns the
// bytes of data written.
func scaleWriteRank(out string, c *manifest.Case, run *scaleRun, lay manifest.Layout, stages, r int, content *[]byte) (int64, error) {
	writer := scaleWriterName(r)
	first, end := r*run.Scenarios/run.Journals, (r+1)*run.Scenarios/run.Journals
	var jbuf []byte
	var seq int64
	add := func(rec *manifest.Record) error {
		rec.Seq = seq
		rec.Time = scaleTime(r, seq)
		b, err := journal.Encode(rec)
		if err != nil {
			return err
		}
		jbuf = append(jbuf, b...)
		seq++
		return nil
	}
	if err := add(&manifest.Record{Type: manifest.RecordOpen, Open: &manifest.OpenInfo{
		Version:   manifest.JournalVersion,
		Producer:  "hydroshard " + manifest.Version,
		Writer:    writer,
		Rank:      r,
		World:     run.Journals,
		Host:      fmt.Sprintf("node%03d", r/32),
		JobID:     "bench",
		Launcher:  "slurm",
		PID:       1000 + r,
		Solver:    "bench",
		CaseName:  c.Name,
		CaseHash:  run.CaseHash,
		Case:      nil, // optional for the merge; keeps journals small
		Scenarios: run.Scenarios,
		Layout:    lay,
	}}); err != nil {
		return 0, err
	}
	var bytes int64
	for sc := first; sc < end; sc++ {
		files := make([]manifest.FileRecord, len(run.Entities))
		for i, e := range run.Entities {
			data := scaleContent(*content, sc, i)
			*content = data
			rel := layout.DataFile(e, lay.ScenarioPad, sc)
			p := filepath.Join(out, filepath.FromSlash(rel))
			if err := os.Mkdir(filepath.Dir(p), 0o755); err != nil {
				return 0, err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return 0, err
			}
			bytes += int64(len(data))
			files[i] = manifest.FileRecord{
				Entity: e,
				Temp:   path.Join(layout.TempDir, fmt.Sprintf("%s.s%d.%s%s", writer, sc, strings.ReplaceAll(e, "/", "-"), layout.TempSuffix)),
				Path:   rel,
				Rows:   int64(len(data) / 8),
				Bytes:  int64(len(data)),
				XXH64:  manifest.FormatXXH64(xxhash.Sum64(data)),
			}
		}
		cost := manifest.CostSummary{Stages: make([]float64, stages)}
		for st := range stages {
			v := 1000 + float64((sc*37+st*101)%997) + float64(st)*0.25
			cost.Stages[st] = v
			cost.Total += v
		}
		if err := add(&manifest.Record{Type: manifest.RecordCommit, Commit: &manifest.CommitInfo{Scenario: sc, Files: files, Cost: cost}}); err != nil {
			return 0, err
		}
	}
	if err := add(&manifest.Record{Type: manifest.RecordClose, Close: &manifest.CloseInfo{Status: manifest.StatusClean, Committed: end - first}}); err != nil {
		return 0, err
	}
	return bytes, os.WriteFile(filepath.Join(out, layout.JournalDir, writer+layout.JournalSuffix), jbuf, 0o644)
}

// scaleOutputs hashes the merge's outputs: simulation/*.json,
// simulation/_files.csv and the presence of simulation/_SUCCESS.
func scaleOutputs(tb testing.TB, out string) map[string]string {
	tb.Helper()
	got := map[string]string{}
	names, err := filepath.Glob(filepath.Join(out, layout.SimDir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	names = append(names, filepath.Join(out, layout.SimDir, layout.IndexName), filepath.Join(out, layout.SimDir, layout.SuccessName))
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			tb.Fatal(err)
		}
		got[filepath.Base(p)] = fmt.Sprintf("%d bytes xxh64 %016x mtime %s", len(b), xxhash.Sum64(b), st.ModTime().Format(time.RFC3339Nano))
	}
	return got
}

func scaleCheckReport(tb testing.TB, run *scaleRun, rep *merge.Report) {
	tb.Helper()
	if rep.Outcome != merge.Complete || rep.Status != manifest.StatusComplete {
		tb.Fatalf("outcome %v, want complete:\n%s", rep.Outcome, rep.Human())
	}
	if rep.Files != run.Partitions || rep.Committed != run.Scenarios || rep.Scenarios != run.Scenarios || rep.Journals != run.Journals || rep.Bytes != run.Bytes {
		tb.Fatalf("files %d committed %d of %d journals %d bytes %d, want %d, %d of %d, %d, %d", rep.Files, rep.Committed, rep.Scenarios, rep.Journals, rep.Bytes, run.Partitions, run.Scenarios, run.Scenarios, run.Journals, run.Bytes)
	}
	if len(rep.Problems) > 0 || len(rep.Missing) > 0 || len(rep.Unclaimed) > 0 || len(rep.Conflicts) > 0 || rep.Duplicates > 0 || rep.RolledForward > 0 || rep.TempRemoved > 0 || len(rep.TornTails) > 0 {
		tb.Fatalf("a clean run should need nothing but the outputs:\n%s", rep.Human())
	}
}

// TestMergeScaleSmall merges 64 journals describing 5,000 partitions, then
// merges again and checks that the second merge rewrites nothing.
func TestMergeScaleSmall(t *testing.T) {
	out := t.TempDir()
	t0 := time.Now()
	run := scaleGenerate(t, out, 64, 5000)
	gen := time.Since(t0)

	ctx := context.Background()
	t1 := time.Now()
	rep, err := merge.Run(ctx, out, merge.Options{Verify: merge.VerifySize})
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(t1)
	scaleCheckReport(t, run, rep)
	if rep.Files != 5000 {
		t.Fatalf("files %d, want 5000", rep.Files)
	}
	want := []string{"simulation/_files.csv", "simulation/_manifest.json", "simulation/_SUCCESS", "simulation/metadata.json", "simulation/summary.json"}
	got := append([]string(nil), rep.Written...)
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first merge wrote %v, want %v", got, want)
	}
	before := scaleOutputs(t, out)

	// The merged manifest agrees with the generator.
	m, err := readSimManifest(filepath.Join(out, layout.SimDir, layout.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if m.Files != run.Partitions || m.Bytes != run.Bytes || m.CaseHash != run.CaseHash || m.Ranks.Journals != 64 || m.Ranks.WorldSize != 64 || len(m.Ranks.Participated) != 64 || len(m.Entities) != len(run.Entities) {
		t.Errorf("manifest: files %d bytes %d hash %s journals %d world %d ranks %d entities %d", m.Files, m.Bytes, m.CaseHash, m.Ranks.Journals, m.Ranks.WorldSize, len(m.Ranks.Participated), len(m.Entities))
	}
	if m.StartedAt != scaleTime(0, 0) {
		t.Errorf("started_at %s, want %s (rank 0's open record)", m.StartedAt, scaleTime(0, 0))
	}
	for _, e := range run.Entities {
		if m.Entities[e].Partitions != run.Scenarios {
			t.Errorf("entity %s: %d partitions, want %d", e, m.Entities[e].Partitions, run.Scenarios)
		}
	}
	// And the index vouches for every file's bytes.
	v, err := merge.VerifyMerged(ctx, out, merge.Options{Verify: merge.VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.Files != run.Partitions {
		t.Fatalf("verify --full after merge:\n%s", v.Human())
	}

	t2 := time.Now()
	rep2, err := merge.Run(ctx, out, merge.Options{Verify: merge.VerifySize})
	if err != nil {
		t.Fatal(err)
	}
	second := time.Since(t2)
	scaleCheckReport(t, run, rep2)
	if len(rep2.Written) > 0 {
		t.Errorf("second merge rewrote %v", rep2.Written)
	}
	after := scaleOutputs(t, out)
	for _, k := range scaleSortedKeys(before, after) {
		if before[k] != after[k] {
			t.Errorf("%s changed by the second merge: %s -> %s", k, before[k], after[k])
		}
	}
	t.Logf("generate %d journals / %d partitions: %v; first merge %v; second merge %v", run.Journals, run.Partitions, gen.Round(time.Millisecond), first.Round(time.Millisecond), second.Round(time.Millisecond))
}

func scaleSortedKeys(ms ...map[string]string) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// scaleHeapSampler records the peak of the live-and-unswept heap object bytes
// (runtime/metrics /memory/classes/heap/objects:bytes, which is what
// HeapAlloc reports, without ReadMemStats' stop-the-world) every few ms.
type scaleHeapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
	n    int
}

const scaleHeapMetric = "/memory/classes/heap/objects:bytes"

func scaleHeapNow() uint64 {
	s := []metrics.Sample{{Name: scaleHeapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func scaleStartHeapSampler(every time.Duration) *scaleHeapSampler {
	h := &scaleHeapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: scaleHeapMetric}}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			metrics.Read(s)
			h.peak = max(h.peak, s[0].Value.Uint64())
			h.n++
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// Stop ends sampling and returns the peak in bytes.
func (h *scaleHeapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return max(h.peak, scaleHeapNow())
}

// BenchmarkMergeScale merges 1,024 journals describing 100,000 partitions
// (10,000 scenarios x the tiny case's 10 entities) with size verification.
// Targets on a 2-core machine: <= 10 s and <= 512 MiB peak heap per merge.
//
// What is measured (warm page cache: the files were just written, then
// flushed with sync(2) outside the timer):
//
//   - first: every iteration merges a run that has never been merged
//     (freshly generated, timer stopped): read and check 1,024 journals,
//     walk and size-check 100,000 files, write the index and the
//     manifests. Files are in place, so there is nothing to roll forward.
//     This is the figure that matters.
//   - remerge: every iteration merges the already-merged run again (the
//     idempotent re-run: same analysis, no output rewritten).
//
// Metrics: ns/op and wall_s are the merge's wall time per iteration;
// peak_heap_MiB is the highest heap object bytes sampled every 2 ms during
// the merges (after a runtime.GC() before each), base_heap_MiB the heap
// before the merge; gen_s is the time the generator took for one run.
func BenchmarkMergeScale(b *testing.B) {
	const journals, partitions = 1024, 100_000
	root := b.TempDir()
	var merged string // a run already merged by "first", reused by "remerge"
	var gens int
	generate := func(b *testing.B) (*scaleRun, time.Duration) {
		gens++
		dir := filepath.Join(root, fmt.Sprintf("run%d", gens))
		t0 := time.Now()
		run := scaleGenerate(b, dir, journals, partitions)
		gen := time.Since(t0)
		// Flush the generator's dirty pages now, so that the merge is not
		// measured against their writeback (a real merge runs long after
		// the ranks wrote); the flush is not part of gen_s.
		t1 := time.Now()
		syscall.Sync()
		b.Logf("generated %d journals / %d files (%d data bytes) in %v; sync %v", run.Journals, run.Partitions, run.Bytes, gen.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		return run, gen
	}
	measure := func(b *testing.B, run *scaleRun, remerge bool) (time.Duration, uint64, uint64) {
		runtime.GC()
		base := scaleHeapNow()
		h := scaleStartHeapSampler(2 * time.Millisecond)
		t0 := time.Now()
		b.StartTimer()
		rep, err := merge.Run(context.Background(), run.Out, merge.Options{Verify: merge.VerifySize})
		b.StopTimer()
		wall := time.Since(t0)
		peak := h.Stop()
		if err != nil {
			b.Fatal(err)
		}
		scaleCheckReport(b, run, rep)
		if remerge && len(rep.Written) > 0 {
			b.Fatalf("re-merge rewrote %v", rep.Written)
		}
		return wall, peak, base
	}
	report := func(b *testing.B, wall time.Duration, peak, base uint64, gen time.Duration) {
		n := float64(b.N)
		b.ReportMetric(wall.Seconds()/n, "wall_s")
		b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
		b.ReportMetric(float64(base)/(1<<20), "base_heap_MiB")
		if gen > 0 {
			b.ReportMetric(gen.Seconds(), "gen_s")
		}
		if w := wall / time.Duration(b.N); w > 10*time.Second {
			b.Logf("merge wall time %v exceeds the 10 s target", w)
		}
		if peak > 512<<20 {
			b.Logf("peak heap %.0f MiB exceeds the 512 MiB target", float64(peak)/(1<<20))
		}
	}

	b.Run("first", func(b *testing.B) {
		b.StopTimer()
		var wall, gen time.Duration
		var peak, base uint64
		for i := 0; i < b.N; i++ {
			if merged != "" {
				_ = os.RemoveAll(merged) // one generated run on disk at a time
				merged = ""
			}
			run, g := generate(b)
			gen = max(gen, g)
			w, p, bs := measure(b, run, false)
			wall += w
			peak, base = max(peak, p), max(base, bs)
			merged = run.Out
			b.Logf("iteration %d: merged in %v, peak heap %.1f MiB (base %.1f MiB)", i, w.Round(time.Millisecond), float64(p)/(1<<20), float64(bs)/(1<<20))
		}
		report(b, wall, peak, base, gen)
	})

	b.Run("remerge", func(b *testing.B) {
		b.StopTimer()
		run := &scaleRun{Out: merged}
		var gen time.Duration
		if merged == "" {
			run, gen = generate(b)
			if _, err := merge.Run(context.Background(), run.Out, merge.Options{Verify: merge.VerifySize}); err != nil {
				b.Fatal(err)
			}
			merged = run.Out
		} else {
			c, _ := manifest.LoadCase("../testdata/cases/tiny")
			ents := c.Entities()
			m, err := readSimManifest(filepath.Join(merged, layout.SimDir, layout.ManifestName))
			if err != nil {
				b.Fatal(err)
			}
			run = &scaleRun{Out: merged, Journals: journals, Scenarios: partitions / len(ents), Partitions: partitions, Entities: ents, Bytes: m.Bytes, CaseName: c.Name, CaseHash: c.Hash()}
		}
		var wall time.Duration
		var peak, base uint64
		for range b.N {
			w, p, bs := measure(b, run, true)
			wall += w
			peak, base = max(peak, p), max(base, bs)
		}
		report(b, wall, peak, base, gen)
	})
}

// readSimManifest reads and decodes a simulation/_manifest.json.
func readSimManifest(p string) (*manifest.SimManifest, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return manifest.ReadSimManifest(p, b)
}
