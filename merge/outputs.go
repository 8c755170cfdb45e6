package merge

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// indexHeader is the header of simulation/_files.csv, the per-file
// integrity index: a CSV so that DuckDB, Polars or a spreadsheet can query
// it, named with a leading underscore and kept out of the entity
// directories so that no table glob ever picks it up.
var indexHeader = []string{"path", "entity", "scenario_id", "rows", "bytes", "xxh64"}

// writeOutputs writes the index, the manifest, metadata.json and
// summary.json, each atomically, then _SUCCESS last when complete.
func (s *state) writeOutputs() error {
	r := s.report
	if r.Outcome != Complete {
		if err := s.removeFile(simPath(layout.SuccessName)); err != nil {
			return err
		}
	}
	all, simManifest, err := s.simulationOutputs()
	if err != nil {
		return err
	}
	if s.caseRef.Case != nil {
		// The dictionaries explain codes, units and entity names of every
		// table, simulation included, from the case the ranks recorded.
		dicts, err := buildDictionaries(s.caseRef.Case, s.lastTime())
		if err != nil {
			return fmt.Errorf("building dictionaries: %w", err)
		}
		for _, d := range dicts {
			all = append(all, outputFile{path.Join(layout.DictDir, d.Name), d.Data})
		}
	}
	// The policy first: training/metadata.json vouches for its files.
	if err := s.writePolicy(); err != nil {
		return err
	}
	trainingOK := false
	if s.training != nil {
		tf, ok, err := s.trainingOutputs()
		if err != nil {
			return err
		}
		all, trainingOK = append(all, tf...), ok
	}
	if s.training != nil && !trainingOK {
		if err := s.removeFile(path.Join(layout.TrainingDir, layout.SuccessName)); err != nil {
			return err
		}
	}
	// The simulation manifest is renamed last: it vouches for the others.
	if simManifest != nil {
		all = append(all, outputFile{simPath(layout.ManifestName), simManifest})
	}
	if err := s.replaceAll(all); err != nil {
		return err
	}
	var success []outputFile
	if trainingOK {
		success = append(success, outputFile{path.Join(layout.TrainingDir, layout.SuccessName), nil})
	}
	if r.Outcome == Complete {
		success = append(success, outputFile{simPath(layout.SuccessName), nil})
	}
	return s.replaceAll(success)
}

// simulationOutputs builds the simulation's index, metadata and summary,
// and its manifest separately (it is renamed last). It returns nothing
// when no rank has simulated yet.
func (s *state) simulationOutputs() ([]outputFile, []byte, error) {
	if s.ref == nil {
		return nil, nil, nil
	}
	r := s.report
	files := byEntityScenario(s.files)
	// The index is its header, then the rows, in one buffer: the dataset
	// checksum is of the rows alone.
	var index bytes.Buffer
	index.Grow(len(files) * 96)
	cw := csv.NewWriter(&index)
	cw.Write(indexHeader)
	cw.Flush()
	head := index.Len()
	entities := map[string]manifest.EntityInfo{}
	var row [6]string
	var num []byte
	for _, f := range files {
		// The numbers share one small buffer; the strings they become
		// live only until the row is written.
		num = strconv.AppendInt(num[:0], int64(f.scenario), 10)
		num = append(num, ' ')
		num = strconv.AppendInt(num, f.rec.Rows, 10)
		num = append(num, ' ')
		num = strconv.AppendInt(num, f.rec.Bytes, 10)
		nums := string(num)
		a, rest, _ := strings.Cut(nums, " ")
		b, c, _ := strings.Cut(rest, " ")
		row = [6]string{f.rec.Path, f.rec.Entity, a, b, c, f.rec.XXH64}
		cw.Write(row[:])
		e := entities[f.rec.Entity]
		e.Partitions++
		e.Rows += f.rec.Rows
		e.Bytes += f.rec.Bytes
		entities[f.rec.Entity] = e
	}
	cw.Flush()
	rows := index.Bytes()[head:]

	for i := range r.Conflicts {
		k := &r.Conflicts[i]
		kept := layout.Superseded(k.Loser, layout.DataFile(k.Entity, s.ref.Layout.ScenarioPad, k.Scenario))
		if _, err := s.fsys.Lstat(layout.Join(s.out, kept)); err == nil {
			k.Kept = kept
		}
	}
	started, completed := s.span()
	m := &manifest.SimManifest{
		SchemaVersion: manifest.ManifestVersion,
		Producer:      "hydroshard " + manifest.Version,
		Status:        r.Status,
		CaseName:      s.ref.CaseName,
		CaseHash:      s.ref.CaseHash,
		StartedAt:     started,
		CompletedAt:   completed,
		Scenarios:     manifest.ScenarioCounts{Total: s.ref.Scenarios, Completed: r.Committed, Failed: s.ref.Scenarios - r.Committed},
		Entities:      entities,
		Layout:        s.ref.Layout,
		Index:         layout.IndexName,
		DatasetXXH64:  manifest.FormatXXH64(xxhash.Sum64(rows)),
		Files:         r.Files,
		Bytes:         r.Bytes,
		Ranks:         s.ranks(),
		Missing:       r.Missing,
		Conflicts:     r.Conflicts,
	}
	var docs []outputFile
	for _, d := range []struct {
		name string
		v    any
	}{
		{layout.MetadataName, s.metadata(started, completed, m.Ranks)},
		{layout.SummaryName, s.summarize()},
	} {
		b, err := manifest.Marshal(d.v)
		if err != nil {
			return nil, nil, err
		}
		docs = append(docs, outputFile{simPath(d.name), b})
	}
	mb, err := manifest.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	return append([]outputFile{{simPath(layout.IndexName), index.Bytes()}}, docs...), mb, nil
}

// lastTime is the latest record time of every journal, of any phase: the
// dictionaries' generated_at.
func (s *state) lastTime() string {
	var last string
	for _, j := range s.allJournals() {
		if last == "" || cmpTime(j.last, last) > 0 {
			last = j.last
		}
	}
	return last
}

// outputFile is one output: its path relative to the output directory
// (slash-separated) and its bytes.
type outputFile struct {
	name string
	data []byte
}

func simPath(name string) string { return path.Join(layout.SimDir, name) }

// replaceAll replaces files under simulation/ as one step as far as a
// filesystem allows: every new version is first written to a durable temp
// file (so a full disk or a crash fails before anything is replaced), then
// all are renamed into place and the directory fsynced once. A file that
// already holds exactly its new bytes is left alone, so re-merging changes
// nothing.
func (s *state) replaceAll(files []outputFile) (err error) {
	type staged struct{ tmp, final, rel string }
	var ready []staged
	defer func() {
		if err != nil {
			for _, st := range ready {
				_ = s.fsys.Remove(st.tmp)
			}
		}
	}()
	dirs := map[string]bool{}
	tmpReady := false
	for i, f := range files {
		final := layout.Join(s.out, f.name)
		dir := filepath.Dir(final)
		if sameBytes(s.fsys, final, f.data) {
			// Already in place, maybe by a merge that died before its
			// fsyncs: make the file and its name durable before this
			// merge vouches for it.
			if err := vfs.SyncFile(s.fsys, final); err != nil {
				return err
			}
			if err := s.dirs.Ensure(dir); err != nil {
				return fmt.Errorf("writing %s: %w", final, err)
			}
			dirs[dir] = true
			continue
		}
		if err := s.dirs.Ensure(dir); err != nil {
			return fmt.Errorf("writing %s: %w", final, err)
		}
		dirs[dir] = true
		// A training-only directory (every rank killed in training) has no
		// _shards/tmp: only the simulation writer creates it, so writing
		// the training outputs failed with "no such file or directory"
		// (exit 1 instead of a partial merge).
		if !tmpReady {
			if err := s.dirs.Ensure(layout.Join(s.out, layout.TempDir)); err != nil {
				return fmt.Errorf("writing %s: %w", final, err)
			}
			tmpReady = true
		}
		tmp := layout.Join(s.out, layout.MergeTemp(os.Getpid(), i, f.name))
		_ = s.fsys.Remove(tmp) // a leftover of this same process id from an earlier crash
		if _, err := vfs.WriteNewSync(s.fsys, tmp, func(w io.Writer) error {
			_, err := w.Write(f.data)
			return err
		}); err != nil {
			return fmt.Errorf("writing %s: %w", final, err)
		}
		ready = append(ready, staged{tmp, final, f.name})
	}
	for i, st := range ready {
		if err := s.fsys.Rename(st.tmp, st.final); err != nil {
			ready = ready[i:] // the renamed ones are in place; drop only the rest
			return fmt.Errorf("writing %s: %w", st.final, err)
		}
		s.report.Written = append(s.report.Written, st.rel)
	}
	if err := s.syncDirs(dirs); err != nil {
		return err
	}
	return nil
}

// removeFile deletes OUT/rel if it exists, durably: a stale _SUCCESS must
// not come back after a crash to vouch for an output that is not
// complete and verified.
func (s *state) removeFile(rel string) error {
	p := layout.Join(s.out, rel)
	err := s.fsys.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = s.dirs.SyncDir(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("removing stale %s: %w", p, err)
	}
	return nil
}

// span is the run's first and last journal record times.
func (s *state) span() (string, string) {
	var first, last string
	for _, j := range s.journals {
		if first == "" || cmpTime(j.first, first) < 0 {
			first = j.first
		}
		if last == "" || cmpTime(j.last, last) > 0 {
			last = j.last
		}
	}
	return first, last
}

func (s *state) ranks() manifest.RanksInfo {
	ri := manifest.RanksInfo{Journals: len(s.journals), Participated: []int{}, Hosts: []string{}, Attempts: []int{}}
	ranks, hosts, jobs, attempts := map[int]bool{}, map[string]bool{}, map[string]bool{}, map[int]bool{}
	for _, j := range s.journals {
		o := j.open
		ri.WorldSize = max(ri.WorldSize, o.World)
		ranks[o.Rank], hosts[o.Host], attempts[o.Attempt] = true, true, true
		if o.JobID != "" {
			jobs[o.JobID] = true
		}
		switch {
		case j.close == nil:
			ri.Unclosed++
		case j.close.Status == manifest.StatusInterrupted:
			ri.InterruptedCloses++
		case j.close.Status == manifest.StatusFailed:
			ri.FailedCloses++
		}
	}
	ri.Participated = append(ri.Participated, sortedKeys(ranks)...)
	ri.Hosts = append(ri.Hosts, sortedKeys(hosts)...)
	ri.SlurmJobIDs = sortedKeys(jobs)
	ri.Attempts = append(ri.Attempts, sortedKeys(attempts)...)
	return ri
}

// metadata builds the Cobre-compatible simulation/metadata.json.
func (s *state) metadata(started, completed string, ri manifest.RanksInfo) *manifest.SimMetadata {
	// The run's identity is its earliest journal of rank 0 (the root
	// rank), else its earliest journal.
	root := s.journals[0]
	for _, j := range s.journals {
		if (j.open.Rank == 0) != (root.open.Rank == 0) {
			if j.open.Rank == 0 {
				root = j
			}
			continue
		}
		if cmpTime(j.first, root.first) < 0 {
			root = j
		}
	}
	var dur float64
	t0, e0 := time.Parse(time.RFC3339Nano, started)
	t1, e1 := time.Parse(time.RFC3339Nano, completed)
	if e0 == nil && e1 == nil {
		dur = t1.Sub(t0).Seconds()
	}
	r := s.report
	return &manifest.SimMetadata{
		CobreVersion:    manifest.Version,
		Hostname:        root.open.Host,
		Solver:          root.open.Solver,
		StartedAt:       started,
		CompletedAt:     completed,
		DurationSeconds: dur,
		Status:          r.Status,
		Scenarios:       manifest.ScenarioCounts{Total: s.ref.Scenarios, Completed: r.Committed, Failed: s.ref.Scenarios - r.Committed},
		Distribution: manifest.Distribution{
			Backend:           root.open.Launcher,
			WorldSize:         ri.WorldSize,
			RanksParticipated: len(ri.Participated),
			NumNodes:          len(ri.Hosts),
			ThreadsPerRank:    root.open.Threads,
			SlurmJobID:        root.open.JobID,
		},
	}
}

// sameBytes reports whether the file name holds exactly data, reading it
// in pieces (the index of a million files is a hundred megabytes: never
// held twice). Any error is a no.
func sameBytes(fsys vfs.FS, name string, data []byte) bool {
	f, err := fsys.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, min(len(data)+1, 256<<10))
	for {
		n, err := io.ReadFull(f, buf)
		if n > len(data) || !bytes.Equal(buf[:n], data[:n]) {
			return false
		}
		data = data[n:]
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return len(data) == 0
		case err != nil:
			return false
		}
	}
}

// byEntityScenario returns files ordered by entity, then scenario. The
// merge lists them by scenario already (checkFiles), so a stable grouping
// by entity is the order, without sorting a million records; a group out
// of order (never, today) is sorted.
func byEntityScenario(files []*fileState) []*fileState {
	groups := map[string][]*fileState{}
	for _, f := range files {
		groups[f.rec.Entity] = append(groups[f.rec.Entity], f)
	}
	out := make([]*fileState, 0, len(files))
	for _, e := range sortedKeys(groups) {
		g := groups[e]
		if !sort.SliceIsSorted(g, func(i, j int) bool { return g[i].scenario < g[j].scenario }) {
			sort.SliceStable(g, func(i, j int) bool { return g[i].scenario < g[j].scenario })
		}
		out = append(out, g...)
	}
	return out
}
