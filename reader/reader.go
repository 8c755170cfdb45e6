// Package reader reads a merged study back into Go: the simulation tables
// (one Arrow record batch per entity and scenario, or the writer's own
// shard.*Rows structs) and the training tables.
//
// It reads merged studies only: Open starts from simulation/_manifest.json
// and simulation/_files.csv, which only merge-shards writes, and refuses a
// directory without them (ErrNotMerged). It never lists a directory and
// never opens a path it did not check: every path of the index must be
// exactly layout.DataFile of its own entity and scenario (so it is below
// OUT/simulation), and a data file is read only when its size on disk is
// the index's (and, with Options.VerifyChecksum, its XXH64 too). Every
// read is bounded: the manifest and the index by fixed limits, a data file
// by the size the index gives it and by Options.MaxFileBytes. Memory: a
// Study holds the index (about 150 bytes a file); a read holds one file's
// bytes and its decoded batch, nothing of other files.
//
// A study compacted by merge-shards compact is read from whichever form
// Options.Source selects, transparently: by default the partition files
// while they exist and the compacted files once compact --replace removed
// them (see compacted.go). A compacted file is checked against
// compacted/_manifest.json (size, and with VerifyChecksum its XXH64) and
// read a row group at a time; the manifest must be of the merged dataset
// (its dataset_xxh64) and hold every scenario of the index, row counts
// matching.
//
// A merged study may be partial (Manifest().Status "partial"): it reads
// the scenarios it has; Manifest().Missing lists the others. Training
// tables are read only when training/_manifest.json lists them. Reading an
// unmerged directory (walking the ranks' output) is not supported: the
// journals, not the tree, say which files are committed, and only the
// merge reconciles them.
//
// The package imports layout, manifest, shard and vfs of the module; never
// rank or merge.
package reader

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// Bounds of the documents read from OUT: whatever is on disk, the reader
// never allocates more than this for one of them.
const (
	maxDocument = 64 << 20 // _manifest.json
	// DefaultMaxIndexBytes bounds simulation/_files.csv (about 150 bytes a
	// file): the merge's own bound.
	DefaultMaxIndexBytes = 1 << 30
	// DefaultMaxFileBytes bounds one data or training file read into
	// memory.
	DefaultMaxFileBytes = 4 << 30
)

// ScenarioColumn is the name of the Int32 column ReadTable appends: the
// scenario of the Hive partition, as DuckDB's hive_partitioning gives it.
const ScenarioColumn = "scenario_id"

// indexHeader is the header line of simulation/_files.csv (docs/format.md).
const indexHeader = "path,entity,scenario_id,rows,bytes,xxh64"

// ErrNotMerged is wrapped by Open's error for a directory that has no
// merged simulation (no simulation/_manifest.json): run merge-shards
// first.
var ErrNotMerged = errors.New("reader: not a merged study (no simulation/_manifest.json: run merge-shards first)")

// ErrIndex is wrapped by every error about a malformed or forged
// simulation/_files.csv, or an index that does not match its manifest.
var ErrIndex = errors.New("reader: bad integrity index")

// ErrNotFound is wrapped when the study has no file for an entity and
// scenario (the entity is absent from the case, or the scenario is
// missing: Manifest().Missing).
var ErrNotFound = errors.New("reader: no such file in the study")

// IntegrityError is the refusal of a file whose bytes are not those the
// merge recorded: a size or checksum mismatch, or a Parquet schema or row
// count that is not the table's. Path is relative to OUT.
type IntegrityError struct {
	Path   string
	Detail string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("reader: %s: %s", e.Path, e.Detail)
}

// Options tune Open.
type Options struct {
	// FS is the file system (default vfs.OS()).
	FS vfs.FS
	// VerifyChecksum checks each file's XXH64 against the index (the
	// training manifest for training tables) before decoding it; the size
	// is always checked.
	VerifyChecksum bool
	// MaxIndexBytes bounds simulation/_files.csv (default
	// DefaultMaxIndexBytes).
	MaxIndexBytes int64
	// MaxFileBytes bounds one file read (default DefaultMaxFileBytes).
	MaxFileBytes int64
	// Alloc allocates the Arrow buffers (default memory.DefaultAllocator).
	Alloc memory.Allocator
	// Source selects the partition files or the compacted files
	// (default SourceAuto: the partitions while they exist).
	Source Source
}

// File is one row of simulation/_files.csv.
type File struct {
	Path     string // relative to OUT, slash-separated
	Entity   string
	Scenario int
	Rows     int64
	Bytes    int64
	XXH64    string
}

type key struct {
	entity   string
	scenario int
}

// Study is a merged study opened for reading. It is safe for concurrent
// use: it holds only what Open read.
type Study struct {
	out       string
	opts      Options
	manifest  *manifest.SimManifest
	files     []File // ordered by entity then scenario, as the index
	byKey     map[key]int
	entities  []string
	scenarios []int
	// compact is set when the Study reads the compacted files.
	compact *compaction
	mu      sync.Mutex // guards compact's caches
}

// Open opens the merged study in out with default options.
func Open(out string) (*Study, error) { return OpenWith(out, Options{}) }

// OpenWith opens the merged study in out: it reads and checks
// simulation/_manifest.json and simulation/_files.csv, and nothing else.
func OpenWith(out string, opts Options) (*Study, error) {
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	if opts.MaxIndexBytes <= 0 {
		opts.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.Alloc == nil {
		opts.Alloc = memory.DefaultAllocator
	}
	// Every read goes through Beneath: nothing outside OUT, and no
	// symbolic link inside it but OUT's own simulation/, training/ and
	// policy/ (layout.LinkDirs).
	confined, err := vfs.Beneath(opts.FS, out, layout.LinkDirs[:]...)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	opts.FS = confined
	mrel := path.Join(layout.SimDir, layout.ManifestName)
	raw, err := vfs.ReadFile(opts.FS, layout.Join(out, mrel), maxDocument)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", out, ErrNotMerged)
	}
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	m, err := manifest.ReadSimManifest(mrel, raw)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	if m.Index != layout.IndexName {
		return nil, fmt.Errorf("%w: the manifest names the index %q, want %q", ErrIndex, m.Index, layout.IndexName)
	}
	pad := m.Layout.ScenarioPad
	if pad < 0 || pad > layout.MaxPad {
		return nil, fmt.Errorf("%w: scenario_pad %d out of range", ErrIndex, pad)
	}
	irel := path.Join(layout.SimDir, layout.IndexName)
	data, err := vfs.ReadFile(opts.FS, layout.Join(out, irel), opts.MaxIndexBytes)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s missing", ErrIndex, irel)
		}
		return nil, fmt.Errorf("reader: %w", err)
	}
	header, rows, _ := bytes.Cut(data, []byte("\n"))
	if string(header) != indexHeader {
		return nil, fmt.Errorf("%w: %s: header %q, want %q", ErrIndex, irel, header, indexHeader)
	}
	if got := manifest.FormatXXH64(xxhash.Sum64(rows)); got != m.DatasetXXH64 {
		return nil, fmt.Errorf("%w: %s: dataset xxh64 %s, the manifest says %s: the index was altered", ErrIndex, irel, got, m.DatasetXXH64)
	}
	s := &Study{out: out, opts: opts, manifest: m, byKey: map[key]int{}}
	cr := csv.NewReader(bytes.NewReader(rows))
	cr.FieldsPerRecord = 6
	cr.ReuseRecord = true
	scen := map[int]bool{}
	var total int64
	for line := 2; ; line++ {
		r, err := cr.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%w: %s line %d: %v", ErrIndex, irel, line, err)
		}
		f, err := parseRow(r, pad)
		if err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %v", ErrIndex, irel, line, err)
		}
		k := key{f.Entity, f.Scenario}
		if _, dup := s.byKey[k]; dup {
			return nil, fmt.Errorf("%w: %s line %d: %s listed twice", ErrIndex, irel, line, f.Path)
		}
		s.byKey[k] = len(s.files)
		s.files = append(s.files, f)
		if len(s.entities) == 0 || s.entities[len(s.entities)-1] != f.Entity {
			if slices.Contains(s.entities, f.Entity) {
				return nil, fmt.Errorf("%w: %s line %d: not ordered by entity", ErrIndex, irel, line)
			}
			s.entities = append(s.entities, f.Entity)
		}
		scen[f.Scenario] = true
		total += f.Bytes
	}
	if len(s.files) != m.Files || total != m.Bytes {
		return nil, fmt.Errorf("%w: %s lists %d files of %d bytes, the manifest says %d files of %d bytes", ErrIndex, irel, len(s.files), total, m.Files, m.Bytes)
	}
	for sc := range scen {
		s.scenarios = append(s.scenarios, sc)
	}
	sort.Ints(s.scenarios)
	sort.Strings(s.entities)
	if err := s.openCompaction(); err != nil {
		return nil, err
	}
	return s, nil
}

// parseRow checks one index row: the path must be exactly the layout's
// name of its entity and scenario, of a table of the registry.
func parseRow(r []string, pad int) (File, error) {
	f := File{Path: r[0], Entity: r[1], XXH64: r[5]}
	var err error
	if f.Scenario, err = strconv.Atoi(r[2]); err != nil || f.Scenario < 0 {
		return f, fmt.Errorf("scenario_id %q: want a non-negative integer", r[2])
	}
	if f.Rows, err = strconv.ParseInt(r[3], 10, 64); err != nil || f.Rows < 0 {
		return f, fmt.Errorf("rows %q: want a non-negative integer", r[3])
	}
	if f.Bytes, err = strconv.ParseInt(r[4], 10, 64); err != nil || f.Bytes < 0 {
		return f, fmt.Errorf("bytes %q: want a non-negative integer", r[4])
	}
	if _, err := manifest.ParseXXH64(f.XXH64); err != nil {
		return f, err
	}
	if _, err := shard.TableByEntity(f.Entity); err != nil {
		return f, err
	}
	if err := layout.Check(f.Path); err != nil {
		return f, err
	}
	ent, sc, err := layout.ParseDataFile(f.Path, pad)
	if err != nil {
		return f, err
	}
	if ent != f.Entity || sc != f.Scenario || layout.DataFile(f.Entity, pad, f.Scenario) != f.Path {
		return f, fmt.Errorf("path %q is not the data file of entity %q, scenario %d", f.Path, f.Entity, f.Scenario)
	}
	return f, nil
}

// Manifest returns the study's simulation manifest (status, counts,
// missing scenarios). The caller must not modify it.
func (s *Study) Manifest() *manifest.SimManifest { return s.manifest }

// Scenarios returns, sorted, every scenario with at least one data file.
func (s *Study) Scenarios() []int { return slices.Clone(s.scenarios) }

// Entities returns, sorted, every entity table with at least one data
// file ("costs", "hydros", "violations/generic", ...).
func (s *Study) Entities() []string { return slices.Clone(s.entities) }

// Files returns the index rows of an entity, ordered by scenario (nil for
// an entity the study does not have).
func (s *Study) Files(entity string) []File {
	var out []File
	for _, f := range s.files {
		if f.Entity == entity {
			out = append(out, f)
		}
	}
	return out
}

// File returns the index row of an entity and scenario.
func (s *Study) File(entity string, scenario int) (File, bool) {
	i, ok := s.byKey[key{entity, scenario}]
	if !ok {
		return File{}, false
	}
	return s.files[i], true
}

// readChecked reads rel (relative to OUT), refusing it unless it has
// size bytes (size < 0: any size up to the limit) and, when checking,
// the XXH64 want.
func (s *Study) readChecked(rel string, size int64, want string) ([]byte, error) {
	limit := s.opts.MaxFileBytes
	if size > limit {
		return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("the index says %d bytes, more than the limit of %d", size, limit)}
	}
	if size >= 0 {
		limit = size // never allocate more than the index allows
	}
	p := layout.Join(s.out, rel)
	if size >= 0 {
		st, err := s.opts.FS.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reader: %w", err)
		}
		if st.Size() != size {
			return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("%d bytes, the index says %d", st.Size(), size)}
		}
	}
	b, err := vfs.ReadFile(s.opts.FS, p, limit)
	if err != nil {
		var tl *vfs.TooLargeError
		if errors.As(err, &tl) && size >= 0 {
			return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("more than %d bytes, the index says %d (the file grew)", size, size)}
		}
		return nil, fmt.Errorf("reader: %w", err)
	}
	if size >= 0 && int64(len(b)) != size {
		return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("%d bytes, the index says %d", len(b), size)}
	}
	if s.opts.VerifyChecksum {
		if got := manifest.FormatXXH64(xxhash.Sum64(b)); got != want {
			return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("xxh64 %s, the index says %s", got, want)}
		}
	}
	return b, nil
}

// decode reads a Parquet file's bytes as one record batch of table t,
// refusing another schema or row count (rows < 0: any).
func (s *Study) decode(ctx context.Context, rel string, b []byte, t *shard.Table, rows int64) (arrow.RecordBatch, error) {
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("not a Parquet file: %v", err)}
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, s.opts.Alloc)
	if err != nil {
		return nil, &IntegrityError{Path: rel, Detail: err.Error()}
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &IntegrityError{Path: rel, Detail: err.Error()}
	}
	defer tbl.Release()
	if err := sameSchema(tbl.Schema(), t.Schema()); err != nil {
		return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("not the schema of %s: %v", t.Name, err)}
	}
	if rows >= 0 && tbl.NumRows() != rows {
		return nil, &IntegrityError{Path: rel, Detail: fmt.Sprintf("%d rows, the index says %d", tbl.NumRows(), rows)}
	}
	cols := make([]arrow.Array, tbl.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		chunks := tbl.Column(i).Data().Chunks()
		switch len(chunks) {
		case 0:
			cols[i] = array.MakeArrayOfNull(s.opts.Alloc, t.Schema().Field(i).Type, 0)
		case 1:
			cols[i] = chunks[0]
			cols[i].Retain()
		default:
			if cols[i], err = array.Concatenate(chunks, s.opts.Alloc); err != nil {
				return nil, fmt.Errorf("reader: %s: %w", rel, err)
			}
		}
	}
	return array.NewRecordBatch(t.Schema(), cols, tbl.NumRows()), nil
}

// sameSchema compares column names, types and nullability.
func sameSchema(got, want *arrow.Schema) error {
	if got.NumFields() != want.NumFields() {
		return fmt.Errorf("%d columns, want %d", got.NumFields(), want.NumFields())
	}
	for i := range want.NumFields() {
		g, w := got.Field(i), want.Field(i)
		if g.Name != w.Name || !arrow.TypeEqual(g.Type, w.Type) {
			return fmt.Errorf("column %d is %s %s, want %s %s", i, g.Name, g.Type, w.Name, w.Type)
		}
	}
	return nil
}

// ReadTable reads one entity table of one scenario as a record batch: the
// table's columns (shard.TableByEntity(entity).Schema(), derived columns
// included) followed by ScenarioColumn, an Int32 holding scenario on every
// row. The file is verified first (its size, and its XXH64 with
// Options.VerifyChecksum; an *IntegrityError names it). The caller must
// Release the batch.
func (s *Study) ReadTable(ctx context.Context, entity string, scenario int) (arrow.RecordBatch, error) {
	rec, err := s.readTable(ctx, entity, scenario)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	return s.withScenario(rec, scenario), nil
}

// withScenario returns rec with ScenarioColumn appended (rec is not
// released).
func (s *Study) withScenario(rec arrow.RecordBatch, scenario int) arrow.RecordBatch {
	b := array.NewInt32Builder(s.opts.Alloc)
	defer b.Release()
	b.Reserve(int(rec.NumRows()))
	for range rec.NumRows() {
		b.UnsafeAppend(int32(scenario))
	}
	sc := b.NewArray()
	defer sc.Release()
	fields := append(slices.Clone(rec.Schema().Fields()), arrow.Field{Name: ScenarioColumn, Type: arrow.PrimitiveTypes.Int32})
	cols := append(slices.Clone(rec.Columns()), sc)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
}

// readTable reads one data file as its table's schema, without the
// scenario column.
func (s *Study) readTable(ctx context.Context, entity string, scenario int) (arrow.RecordBatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := shard.TableByEntity(entity)
	if err != nil {
		return nil, err
	}
	i, ok := s.byKey[key{entity, scenario}]
	if !ok {
		return nil, fmt.Errorf("%w: entity %q, scenario %d", ErrNotFound, entity, scenario)
	}
	if s.compact != nil {
		return s.readCompacted(ctx, t, i)
	}
	f := s.files[i]
	b, err := s.readChecked(f.Path, f.Bytes, f.XXH64)
	if err != nil {
		return nil, err
	}
	return s.decode(ctx, f.Path, b, t, f.Rows)
}

// ReadRows reads one entity table of one scenario into dst, a pointer to
// the table's rows struct (*shard.HydrosRows for "hydros", ...): the
// columns a solver supplies. Derived columns are not in the rows structs:
// read them with ReadTable.
func (s *Study) ReadRows(ctx context.Context, entity string, scenario int, dst any) error {
	rec, err := s.readTable(ctx, entity, scenario)
	if err != nil {
		return err
	}
	defer rec.Release()
	return Decode(rec, dst)
}

// ReadScenario reads every table of a scenario into a shard.Scenario, the
// writer's input: the tables the study does not have for it stay nil.
func (s *Study) ReadScenario(ctx context.Context, scenario int) (*shard.Scenario, error) {
	sc := &shard.Scenario{ID: scenario}
	targets := map[string]any{
		shard.Costs.Entity:             &sc.Costs,
		shard.Hydros.Entity:            &sc.Hydros,
		shard.Thermals.Entity:          &sc.Thermals,
		shard.Exchanges.Entity:         &sc.Exchanges,
		shard.Buses.Entity:             &sc.Buses,
		shard.PumpingStations.Entity:   &sc.PumpingStations,
		shard.Contracts.Entity:         &sc.Contracts,
		shard.NonControllables.Entity:  &sc.NonControllables,
		shard.InflowLags.Entity:        &sc.InflowLags,
		shard.GenericViolations.Entity: &sc.GenericViolations,
	}
	found := false
	for _, t := range shard.SimulationTables {
		if _, ok := s.File(t.Entity, scenario); !ok {
			continue
		}
		found = true
		if err := s.ReadRows(ctx, t.Entity, scenario, newRows(targets[t.Entity])); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: scenario %d", ErrNotFound, scenario)
	}
	return sc, nil
}

// TrainingManifest reads training/_manifest.json (fs.ErrNotExist when the
// study has no merged training).
func (s *Study) TrainingManifest() (*manifest.TrainingManifest, error) {
	rel := path.Join(layout.TrainingDir, layout.ManifestName)
	raw, err := vfs.ReadFile(s.opts.FS, layout.Join(s.out, rel), maxDocument)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	tm, err := manifest.ReadTrainingManifest(rel, raw)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	return tm, nil
}

// trainingFiles are the training tables and their files.
var trainingFiles = map[*shard.Table]string{
	shard.Convergence:      layout.ConvergenceFile,
	shard.TimingIterations: layout.TimingIterationsFile,
	shard.TimingMPIRanks:   layout.TimingMPIRanksFile,
}

// ReadTraining reads a training table (shard.Convergence,
// shard.TimingIterations or shard.TimingMPIRanks) as one record batch.
// The file must be listed in training/_manifest.json; with
// Options.VerifyChecksum its XXH64 is checked against it. The caller must
// Release the batch.
func (s *Study) ReadTraining(ctx context.Context, t *shard.Table) (arrow.RecordBatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rel, ok := trainingFiles[t]
	if !ok {
		return nil, fmt.Errorf("reader: %v is not a training table", t.Name)
	}
	tm, err := s.TrainingManifest()
	if err != nil {
		return nil, err
	}
	want, ok := tm.Files[strings.TrimPrefix(rel, layout.TrainingDir+"/")]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not listed in the training manifest", ErrNotFound, rel)
	}
	b, err := s.readChecked(rel, -1, want)
	if err != nil {
		return nil, err
	}
	return s.decode(ctx, rel, b, t, -1)
}

// ReadConvergence reads training/convergence.parquet, one row per
// iteration.
func (s *Study) ReadConvergence(ctx context.Context) (arrow.RecordBatch, error) {
	return s.ReadTraining(ctx, shard.Convergence)
}

// ReadConvergenceRows reads training/convergence.parquet into its rows
// struct.
func (s *Study) ReadConvergenceRows(ctx context.Context) (*shard.ConvergenceRows, error) {
	rec, err := s.ReadConvergence(ctx)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	var rows shard.ConvergenceRows
	if err := Decode(rec, &rows); err != nil {
		return nil, err
	}
	return &rows, nil
}
