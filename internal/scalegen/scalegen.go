// Package scalegen writes synthetic but protocol-exact runs for measuring
// the merge at scale: J journals (one per rank) committing P partition
// files, the files already renamed into place, without encoding any
// Parquet. The merge's tests (merge/scale_test.go) and shardbench's merge
// scaling section (cmd/shardbench/mergescale.go) both use it.
//
// A generated run is deterministic: the same arguments give the same
// bytes (journals, data files), so the merge's outputs are too.
package scalegen

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

// Run describes a run written by Generate.
type Run struct {
	Out        string
	Journals   int
	Scenarios  int
	Partitions int // Scenarios x len(Entities): one data file each
	Entities   []string
	Bytes      int64 // total size of the data files
	CaseName   string
	CaseHash   string
}

// Base is the clock of the synthetic run: every journal's record times
// derive from it, so the run (and hence the merge's outputs) is
// deterministic. The fraction has nine significant digits and every time
// below keeps a non-zero last nanosecond digit, so that RFC3339Nano never
// trims trailing zeros and all times have the same length.
var Base = time.Date(2026, 3, 1, 12, 0, 0, 100000001, time.UTC)

// Time is the time of record seq of the journal of rank r.
func Time(r int, seq int64) string {
	return Base.Add(time.Duration(r)*time.Millisecond + time.Duration(seq)*time.Second).Format(time.RFC3339Nano)
}

// Content is the deterministic content of one data file: 0..64 bytes
// (some files empty) of a little LCG stream, appended to buf[:0].
func Content(buf []byte, scenario, entity int) []byte {
	n := (scenario*7 + entity*13) % 65
	buf = buf[:0]
	x := uint32(scenario*2654435761) ^ uint32(entity*40503+1)
	for range n {
		x = x*1664525 + 1013904223
		buf = append(buf, byte(x>>24))
	}
	return buf
}

// WriterName is the writer id (and journal base name) of rank r, shaped
// like rank.Writer's: job-<job>.rank-NNNNN.attempt-A.<token>.
func WriterName(r int) string {
	return fmt.Sprintf("job-bench.rank-%05d.attempt-0.%012x", r, uint64(r)*0x9e3779b97f4a7c15>>16)
}

// Generate writes into out a clean, finished run of case c: journals
// journals (one per rank of a world of that size) committing partitions
// partitions in total, partitions/len(entities) scenarios in contiguous
// blocks. Every commit lists one file per entity of the case, with the
// XXH64 of the file written in place at its final path (the renames were
// done; _shards/tmp is empty). Journals are closed clean.
func Generate(out string, c *manifest.Case, journals, partitions int) (*Run, error) {
	ents := c.Entities()
	if partitions%len(ents) != 0 {
		return nil, fmt.Errorf("scalegen: %d partitions is not a multiple of the case's %d entities", partitions, len(ents))
	}
	run := &Run{Out: out, Journals: journals, Scenarios: partitions / len(ents), Partitions: partitions, Entities: ents, CaseName: c.Name, CaseHash: c.Hash()}
	if journals < 1 || journals > run.Scenarios {
		return nil, fmt.Errorf("scalegen: %d journals for %d scenarios", journals, run.Scenarios)
	}
	for _, d := range []string{layout.JournalDir, layout.TempDir, layout.SimDir} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Entity directories first, so that the workers only create
	// partition directories (no racing parents).
	for _, e := range ents {
		if err := os.MkdirAll(filepath.Join(out, layout.SimDir, e), 0o755); err != nil {
			return nil, err
		}
	}
	lay := manifest.Layout{ScenarioPad: 0, Ownership: "contiguous"}

	var next atomic.Int64
	var total atomic.Int64
	errs := make([]error, journals)
	var wg sync.WaitGroup
	// The work is system calls (mkdir, create, write): more goroutines
	// than cores keep the file system busy.
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var content []byte
			for {
				r := int(next.Add(1)) - 1
				if r >= journals {
					return
				}
				n, err := writeRank(out, c, run, lay, r, &content)
				if err != nil {
					errs[r] = err
					return
				}
				total.Add(n)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	run.Bytes = total.Load()
	return run, nil
}

// writeRank writes rank r's data files and journal; it returns the bytes
// of data written.
func writeRank(out string, c *manifest.Case, run *Run, lay manifest.Layout, r int, content *[]byte) (int64, error) {
	writer := WriterName(r)
	first, end := r*run.Scenarios/run.Journals, (r+1)*run.Scenarios/run.Journals
	var jbuf []byte
	var seq int64
	add := func(rec *manifest.Record) error {
		rec.Seq = seq
		rec.Time = Time(r, seq)
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
			data := Content(*content, sc, i)
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
				Temp:   layout.SimTemp(writer, sc, e),
				Path:   rel,
				Rows:   int64(len(data) / 8),
				Bytes:  int64(len(data)),
				XXH64:  manifest.FormatXXH64(xxhash.Sum64(data)),
			}
		}
		cost := manifest.CostSummary{Stages: make([]float64, c.Stages)}
		for st := range c.Stages {
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

// HeapMetric is the runtime metric the sampler reads: the live-and-unswept
// heap object bytes, which is what MemStats.HeapAlloc reports, without
// ReadMemStats' stop-the-world.
const HeapMetric = "/memory/classes/heap/objects:bytes"

// HeapNow returns the current value of HeapMetric.
func HeapNow() uint64 {
	s := []metrics.Sample{{Name: HeapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// HeapSampler records the peak of HeapMetric, read every few ms.
type HeapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
	n    int
}

// StartHeapSampler starts sampling every interval.
func StartHeapSampler(every time.Duration) *HeapSampler {
	h := &HeapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: HeapMetric}}
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
func (h *HeapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return max(h.peak, HeapNow())
}

// Samples is how many times the sampler read the heap (after Stop).
func (h *HeapSampler) Samples() int { return h.n }

// Remove deletes the run's directory. The partitions go first, on several
// goroutines taking the scenarios' tables in turn (so that they work in
// different directories): removing a million files and directories one
// after the other takes the better part of an hour on a busy disk.
func (r *Run) Remove() error {
	var next atomic.Int64
	n := int64(r.Scenarios) * int64(len(r.Entities))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				rel := layout.DataFile(r.Entities[i%int64(len(r.Entities))], 0, int(i/int64(len(r.Entities))))
				p := filepath.Join(r.Out, filepath.FromSlash(rel))
				_ = os.Remove(p)
				_ = os.Remove(filepath.Dir(p)) // fails, harmlessly, when something else is in it
			}
		})
	}
	wg.Wait()
	return os.RemoveAll(r.Out)
}
