package reader

// Reading the compacted form (merge-shards compact): compacted/<entity>/
// part-NNNNN.parquet, every scenario of a table in a few large files with
// a leading scenario_id column, listed in compacted/_manifest.json. A
// Study reads it transparently: ReadTable, ReadRows, ReadScenario and
// Stream return the same batches from either form.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// Source selects the form of the simulation tables a Study reads.
type Source int

const (
	// SourceAuto reads the partition files while they exist, and the
	// compacted files once compact --replace removed the partitions.
	SourceAuto Source = iota
	// SourcePartitions reads the partition files (an error once
	// compact --replace removed them).
	SourcePartitions
	// SourceCompacted reads the compacted files (ErrNotCompacted when
	// there is no compaction of the merged dataset).
	SourceCompacted
)

// ErrNotCompacted is wrapped by OpenWith's error when Options.Source is
// SourceCompacted and the study has no compaction of its merged dataset
// (none, or one a later merge made stale): run merge-shards compact.
var ErrNotCompacted = errors.New("reader: no compaction of the merged dataset (run merge-shards compact)")

// Compacted reports whether the Study reads the compacted files.
func (s *Study) Compacted() bool { return s.compact != nil }

// compaction is what a Study reading the compacted form holds: the
// manifest, which compacted file holds each index row, and the footers
// and checksums of the files read so far.
type compaction struct {
	m    *manifest.CompactManifest
	part []int // per index row (Study.files): its file in m.Files
	// cache: footers parsed and checksums verified, per file (guarded by
	// the Study's mutex).
	footers  map[int]*metadata.FileMetaData
	verified map[int]bool
}

// openCompaction reads compacted/_manifest.json, when there is one, and
// decides which form the Study reads (opts.Source).
func (s *Study) openCompaction() error {
	raw, err := vfs.ReadFile(s.opts.FS, layout.Join(s.out, layout.CompactManifestFile), maxDocument)
	if errors.Is(err, fs.ErrNotExist) {
		if s.opts.Source == SourceCompacted {
			return fmt.Errorf("%s: %w", s.out, ErrNotCompacted)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	cm, err := manifest.ReadCompactManifest(layout.CompactManifestFile, raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrIndex, err)
	}
	removed := cm.Partitions == manifest.PartitionsRemoved
	switch {
	case cm.DatasetXXH64 != s.manifest.DatasetXXH64 && removed:
		return fmt.Errorf("%w: %s replaced the partition files of dataset_xxh64 %s, but simulation/_manifest.json says %s", ErrIndex, layout.CompactManifestFile, cm.DatasetXXH64, s.manifest.DatasetXXH64)
	case cm.DatasetXXH64 != s.manifest.DatasetXXH64:
		// Stale: a merge changed the dataset since; the partitions hold it.
		if s.opts.Source == SourceCompacted {
			return fmt.Errorf("%s: %w (%s was made from dataset_xxh64 %s, the merged one is %s)", s.out, ErrNotCompacted, layout.CompactManifestFile, cm.DatasetXXH64, s.manifest.DatasetXXH64)
		}
		return nil
	case s.opts.Source == SourcePartitions && removed:
		return fmt.Errorf("reader: %s: compact --replace removed the partition files (%s); read the compacted files (SourceAuto or SourceCompacted)", s.out, layout.CompactManifestFile)
	case s.opts.Source == SourcePartitions, s.opts.Source == SourceAuto && !removed:
		return nil
	}
	// Which file holds each index row: an entity's files have ascending,
	// disjoint scenario ranges (ReadCompactManifest checked).
	byEntity := map[string][]int{}
	for i, f := range cm.Files {
		byEntity[f.Entity] = append(byEntity[f.Entity], i)
	}
	c := &compaction{m: cm, part: make([]int, len(s.files)), footers: map[int]*metadata.FileMetaData{}, verified: map[int]bool{}}
	for i, f := range s.files {
		list := byEntity[f.Entity]
		k := sort.Search(len(list), func(k int) bool { return cm.Files[list[k]].LastScenario >= f.Scenario })
		if k == len(list) || cm.Files[list[k]].FirstScenario > f.Scenario {
			return fmt.Errorf("%w: no compacted file holds %s scenario %d, which simulation/_files.csv lists", ErrIndex, f.Entity, f.Scenario)
		}
		c.part[i] = list[k]
	}
	s.compact = c
	return nil
}

// openPart opens compacted file n for reading: its size must be the
// manifest's (and with Options.VerifyChecksum its XXH64, hashed once per
// Study); its footer is parsed once and must describe the row groups the
// manifest lists. The caller closes the returned closer.
func (s *Study) openPart(n int) (*file.Reader, io.Closer, error) {
	cf := &s.compact.m.Files[n]
	if cf.Bytes > s.opts.MaxFileBytes*64 {
		// A compacted file is read a row group at a time, never whole:
		// only a forged size this far beyond any real one is refused.
		return nil, nil, &IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("%s says %d bytes", layout.CompactManifestFile, cf.Bytes)}
	}
	ra, size, closer, err := vfs.OpenReaderAt(s.opts.FS, layout.Join(s.out, cf.Path))
	if err != nil {
		return nil, nil, fmt.Errorf("reader: %w", err)
	}
	fail := func(err error) (*file.Reader, io.Closer, error) {
		_ = closer.Close()
		return nil, nil, err
	}
	if size != cf.Bytes {
		return fail(&IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("%d bytes, %s says %d", size, layout.CompactManifestFile, cf.Bytes)})
	}
	sr := io.NewSectionReader(ra, 0, size)
	s.mu.Lock()
	verified, md := s.compact.verified[n], s.compact.footers[n]
	s.mu.Unlock()
	if s.opts.VerifyChecksum && !verified {
		d := xxhash.New()
		if _, err := io.Copy(d, io.NewSectionReader(ra, 0, size)); err != nil {
			return fail(fmt.Errorf("reader: %s: %w", cf.Path, err))
		}
		if got := manifest.FormatXXH64(d.Sum64()); got != cf.XXH64 {
			return fail(&IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("xxh64 %s, %s says %s", got, layout.CompactManifestFile, cf.XXH64)})
		}
	}
	var opts []file.ReadOption
	if md != nil {
		opts = append(opts, file.WithMetadata(md))
	}
	pf, err := file.NewParquetReader(sr, opts...)
	if err != nil {
		return fail(&IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("not a Parquet file: %v", err)})
	}
	if md == nil {
		md = pf.MetaData()
		if md.NumRowGroups() != len(cf.RowGroups) {
			_ = pf.Close()
			return fail(&IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("%d row groups, %s lists %d", md.NumRowGroups(), layout.CompactManifestFile, len(cf.RowGroups))})
		}
		for g, rg := range cf.RowGroups {
			if got := md.RowGroup(g).NumRows(); got != rg.Rows {
				_ = pf.Close()
				return fail(&IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("row group %d has %d rows, %s says %d", g, got, layout.CompactManifestFile, rg.Rows)})
			}
		}
	}
	s.mu.Lock()
	s.compact.footers[n] = md
	if s.opts.VerifyChecksum {
		s.compact.verified[n] = true
	}
	s.mu.Unlock()
	return pf, closerFunc(func() error { err := pf.Close(); _ = closer.Close(); return err }), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// partReader reads one compacted file's rows in order, as batches of table
// t's schema, each with the scenario of its rows: a scenario's rows come
// as one or more consecutive batches.
type partReader struct {
	path string
	rr   pqarrow.RecordReader
	cur  arrow.RecordBatch // batch being split, nil when exhausted
	at   int               // next row of cur
	last int               // last scenario returned (rows must ascend)
}

// openPartReader opens compacted file n, reading only row groups rgs
// (nil: all) of it.
func (s *Study) openPartReader(ctx context.Context, n int, t *shard.Table, rgs []int) (*partReader, io.Closer, error) {
	cf := &s.compact.m.Files[n]
	pf, closer, err := s.openPart(n)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*partReader, io.Closer, error) {
		_ = closer.Close()
		return nil, nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, s.opts.Alloc)
	if err != nil {
		return fail(&IntegrityError{Path: cf.Path, Detail: err.Error()})
	}
	schema, err := fr.Schema()
	if err != nil {
		return fail(&IntegrityError{Path: cf.Path, Detail: err.Error()})
	}
	if schema.NumFields() < 1 || schema.Field(0).Name != ScenarioColumn || !arrow.TypeEqual(schema.Field(0).Type, arrow.PrimitiveTypes.Int32) {
		return fail(&IntegrityError{Path: cf.Path, Detail: "its first column is not scenario_id (Int32)"})
	}
	if err := sameSchema(arrow.NewSchema(schema.Fields()[1:], nil), t.Schema()); err != nil {
		return fail(&IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("not the schema of %s after scenario_id: %v", t.Name, err)})
	}
	if rgs == nil {
		rgs = make([]int, pf.NumRowGroups())
		for g := range rgs {
			rgs[g] = g
		}
	}
	rr, err := fr.GetRecordReader(ctx, nil, rgs)
	if err != nil {
		return fail(&IntegrityError{Path: cf.Path, Detail: err.Error()})
	}
	pr := &partReader{path: cf.Path, rr: rr, last: -1}
	return pr, closerFunc(func() error {
		if pr.cur != nil {
			pr.cur.Release()
		}
		rr.Release()
		return closer.Close()
	}), nil
}

// next returns the next run of rows of one scenario (without scenario_id:
// the table's columns), and its scenario; io.EOF at the end. The caller
// releases the batch.
func (p *partReader) next(ctx context.Context, t *shard.Table) (int, arrow.RecordBatch, error) {
	for p.cur == nil || p.at >= int(p.cur.NumRows()) {
		if p.cur != nil {
			p.cur.Release()
			p.cur = nil
		}
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		if !p.rr.Next() {
			if err := p.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				return 0, nil, &IntegrityError{Path: p.path, Detail: fmt.Sprintf("decoding: %v", err)}
			}
			return 0, nil, io.EOF
		}
		p.cur = p.rr.RecordBatch()
		p.cur.Retain()
		p.at = 0
	}
	sid, ok := p.cur.Column(0).(*array.Int32)
	if !ok || sid.NullN() > 0 {
		return 0, nil, &IntegrityError{Path: p.path, Detail: "scenario_id has nulls"}
	}
	i, n := p.at, int(p.cur.NumRows())
	sc := int(sid.Value(i))
	j := i + 1
	for j < n && int(sid.Value(j)) == sc {
		j++
	}
	if sc < p.last {
		return 0, nil, &IntegrityError{Path: p.path, Detail: fmt.Sprintf("scenario_id %d after %d: rows out of order", sc, p.last)}
	}
	p.last, p.at = sc, j
	cols := make([]arrow.Array, 0, p.cur.NumCols()-1)
	for c := 1; c < int(p.cur.NumCols()); c++ {
		cols = append(cols, array.NewSlice(p.cur.Column(c), int64(i), int64(j)))
	}
	rec := array.NewRecordBatch(t.Schema(), cols, int64(j-i))
	for _, c := range cols {
		c.Release()
	}
	return sc, rec, nil
}

// concat joins runs of one table into one batch (releasing them).
func (s *Study) concat(t *shard.Table, runs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	defer func() {
		for _, r := range runs {
			r.Release()
		}
	}()
	if len(runs) == 1 {
		runs[0].Retain()
		return runs[0], nil
	}
	cols := make([]arrow.Array, t.Schema().NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, r := range runs {
		rows += r.NumRows()
	}
	for c := range cols {
		if len(runs) == 0 {
			cols[c] = array.MakeArrayOfNull(s.opts.Alloc, t.Schema().Field(c).Type, 0)
			continue
		}
		parts := make([]arrow.Array, len(runs))
		for k, r := range runs {
			parts[k] = r.Column(c)
		}
		var err error
		if cols[c], err = array.Concatenate(parts, s.opts.Alloc); err != nil {
			return nil, fmt.Errorf("reader: %w", err)
		}
	}
	return array.NewRecordBatch(t.Schema(), cols, rows), nil
}

// readCompacted reads index row i (table t) from its compacted file: only
// the row groups whose scenario range holds it.
func (s *Study) readCompacted(ctx context.Context, t *shard.Table, i int) (arrow.RecordBatch, error) {
	f, n := s.files[i], s.compact.part[i]
	cf := &s.compact.m.Files[n]
	var rgs []int
	for g, rg := range cf.RowGroups {
		if rg.FirstScenario <= f.Scenario && f.Scenario <= rg.LastScenario {
			rgs = append(rgs, g)
		}
	}
	var runs []arrow.RecordBatch
	if len(rgs) > 0 {
		pr, closer, err := s.openPartReader(ctx, n, t, rgs)
		if err != nil {
			return nil, err
		}
		defer closer.Close()
		for {
			sc, rec, err := pr.next(ctx, t)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				for _, r := range runs {
					r.Release()
				}
				return nil, err
			}
			if sc != f.Scenario {
				rec.Release()
				if sc > f.Scenario {
					break
				}
				continue
			}
			runs = append(runs, rec)
		}
	}
	rec, err := s.concat(t, runs)
	if err != nil {
		return nil, err
	}
	if rec.NumRows() != f.Rows {
		rec.Release()
		return nil, &IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("%d rows of %s scenario %d, simulation/_files.csv lists %d", rec.NumRows(), f.Entity, f.Scenario, f.Rows)}
	}
	return rec, nil
}

// Stream calls fn with every scenario of an entity table in scenario
// order, as ReadTable returns it (fn must not keep the batch past its
// return; Stream releases it). It reads the compacted files (when the
// Study reads them) one row group at a time, each file opened once, so
// memory holds a row group and one scenario's rows whatever the study's
// size; the partition files one at a time. An error of fn stops it and is
// returned.
func (s *Study) Stream(ctx context.Context, entity string, fn func(scenario int, rec arrow.RecordBatch) error) error {
	t, err := shard.TableByEntity(entity)
	if err != nil {
		return err
	}
	var rows []int // index rows of entity, in scenario order
	for i, f := range s.files {
		if f.Entity == entity {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("%w: entity %q", ErrNotFound, entity)
	}
	emit := func(scenario int, rec arrow.RecordBatch) error {
		out := s.withScenario(rec, scenario)
		rec.Release()
		defer out.Release()
		return fn(scenario, out)
	}
	if s.compact == nil {
		for _, i := range rows {
			rec, err := s.readTable(ctx, entity, s.files[i].Scenario)
			if err != nil {
				return err
			}
			if err := emit(s.files[i].Scenario, rec); err != nil {
				return err
			}
		}
		return nil
	}
	// Compacted: walk each file once; the index says which scenarios (and
	// how many rows of each) must come out of it, in order.
	for len(rows) > 0 {
		n := s.compact.part[rows[0]]
		k := 0
		for k < len(rows) && s.compact.part[rows[k]] == n {
			k++
		}
		if err := s.streamPart(ctx, t, n, rows[:k], emit); err != nil {
			return err
		}
		rows = rows[k:]
	}
	return nil
}

// streamPart streams compacted file n, which holds index rows want.
func (s *Study) streamPart(ctx context.Context, t *shard.Table, n int, want []int, emit func(int, arrow.RecordBatch) error) error {
	cf := &s.compact.m.Files[n]
	pr, closer, err := s.openPartReader(ctx, n, t, nil)
	if err != nil {
		return err
	}
	defer closer.Close()
	listed := make(map[int]bool, len(want)) // the scenarios this file may hold
	for _, i := range want {
		listed[s.files[i].Scenario] = true
	}
	var (
		pending arrow.RecordBatch // a run read ahead: the next scenario's first
		pendSc  int
	)
	defer func() {
		if pending != nil {
			pending.Release()
		}
	}()
	for _, i := range want {
		f := s.files[i]
		var runs []arrow.RecordBatch
		release := func() {
			for _, r := range runs {
				r.Release()
			}
		}
		for {
			var sc int
			var rec arrow.RecordBatch
			if pending != nil {
				sc, rec, pending = pendSc, pending, nil
			} else {
				sc, rec, err = pr.next(ctx, t)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					release()
					return err
				}
			}
			if sc != f.Scenario {
				if sc < f.Scenario || !listed[sc] {
					rec.Release()
					release()
					return &IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("holds %s scenario %d, which simulation/_files.csv does not list here", f.Entity, sc)}
				}
				pending, pendSc = rec, sc
				break
			}
			runs = append(runs, rec)
		}
		rec, err := s.concat(t, runs)
		if err != nil {
			return err
		}
		if rec.NumRows() != f.Rows {
			rec.Release()
			return &IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("%d rows of %s scenario %d, simulation/_files.csv lists %d", rec.NumRows(), f.Entity, f.Scenario, f.Rows)}
		}
		if err := emit(f.Scenario, rec); err != nil {
			return err
		}
	}
	if pending != nil {
		return &IntegrityError{Path: cf.Path, Detail: fmt.Sprintf("holds %s scenario %d, which simulation/_files.csv does not list here", cf.Entity, pendSc)}
	}
	if _, rec, err := pr.next(ctx, t); err == nil {
		rec.Release()
		return &IntegrityError{Path: cf.Path, Detail: "holds rows after the last scenario simulation/_files.csv lists here"}
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
