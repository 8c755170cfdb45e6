package reader_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/reader"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

const (
	seed       = 1
	scenarios  = 5
	world      = 2
	iterations = 3
	passes     = 4
)

// writeStudy writes the tiny case's study with world ranks (training,
// then simulation) into out, and merges it unless merged is false.
func writeStudy(t testing.TB, out string, merged bool) *manifest.Case {
	t.Helper()
	return writeStudyWith(t, out, merged, 0, world)
}

// writeStudyWith writes the study with the first ranks of world only (a
// partial study when ranks < world), partitions padded to pad digits.
func writeStudyWith(t testing.TB, out string, merged bool, pad, ranks int) *manifest.Case {
	t.Helper()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for r := range ranks {
		id, err := rank.Explicit(r, world)
		if err != nil {
			t.Fatal(err)
		}
		cfg := manifest.TrainingConfig{Seed: seed, MaxIterations: iterations, ForwardPasses: passes, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
		tw, err := rank.OpenTraining(ctx, out, id, c, rank.TrainingOptions{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		for it := 1; it <= iterations; it++ {
			if err := tw.WriteIteration(ctx, synth.TrainingIteration(c, seed, it, passes, r, world, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.CloseTerminated(rank.TerminationIterationLimit); err != nil {
			t.Fatal(err)
		}
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: scenarios, Ownership: rank.Contiguous, ScenarioPad: pad})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range w.Remaining() {
			sc, err := synth.Generate(c, seed, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteScenario(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if merged {
		rep, err := merge.Run(ctx, out, merge.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 3}[ranks == world]; rep.ExitCode() != want {
			t.Fatalf("merge: exit %d, want %d: %s", rep.ExitCode(), want, rep.Human())
		}
	}
	return c
}

var (
	sharedOnce sync.Once
	sharedOut  string
	sharedCase *manifest.Case
)

// shared returns a merged study the tests only read.
func shared(t *testing.T) (string, *manifest.Case) {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reader-test")
		if err != nil {
			t.Fatal(err)
		}
		sharedOut = dir
		sharedCase = writeStudy(t, dir, true)
	})
	if sharedCase == nil {
		t.Fatal("the shared study could not be written")
	}
	return sharedOut, sharedCase
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedOut != "" {
		os.RemoveAll(sharedOut)
	}
	os.Exit(code)
}

// fresh returns a merged study of its own, which the test may damage.
func fresh(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	writeStudy(t, out, true)
	return out
}

// sameColumns compares every tagged field of two rows structs, row by row,
// by the writer's conventions (Valid nil: all valid; Values nil: all
// null), floats bit for bit.
func sameColumns(t *testing.T, what string, want, got any) {
	t.Helper()
	wv, gv := reflect.ValueOf(want).Elem(), reflect.ValueOf(got).Elem()
	if wv.Type() != gv.Type() {
		t.Fatalf("%s: %s vs %s", what, wv.Type(), gv.Type())
	}
	for i := range wv.NumField() {
		name := wv.Type().Field(i).Tag.Get("col")
		w, g := flatten(wv.Field(i)), flatten(gv.Field(i))
		if len(w) != len(g) {
			t.Errorf("%s.%s: %d rows read, %d written", what, name, len(g), len(w))
			continue
		}
		for r := range w {
			if w[r] != g[r] {
				t.Errorf("%s.%s row %d: read %s, written %s", what, name, r, g[r], w[r])
				break
			}
		}
	}
}

// flatten renders each row of a column field as a string ("null" for a
// null row).
func flatten(f reflect.Value) []string {
	render := func(v reflect.Value) string {
		if v.Kind() == reflect.Float64 {
			return fmt.Sprintf("%016x", math.Float64bits(v.Float()))
		}
		return fmt.Sprint(v.Interface())
	}
	if f.Kind() == reflect.Slice {
		out := make([]string, f.Len())
		for i := range out {
			out[i] = render(f.Index(i))
		}
		return out
	}
	values, valid := f.FieldByName("Values"), f.FieldByName("Valid")
	n := max(values.Len(), valid.Len())
	out := make([]string, n)
	for i := range out {
		switch {
		case values.IsNil() || !valid.IsNil() && !valid.Index(i).Bool():
			out[i] = "null"
		default:
			out[i] = render(values.Index(i))
		}
	}
	return out
}

func TestOpenLists(t *testing.T) {
	out, c := shared(t)
	s, err := reader.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Scenarios(), []int{0, 1, 2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("Scenarios() = %v, want %v", got, want)
	}
	sc, err := synth.Generate(c, seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tr := range sc.Tables() {
		want = append(want, tr.Table.Entity)
	}
	got := s.Entities()
	if !reflect.DeepEqual(sortedCopy(got), sortedCopy(want)) {
		t.Errorf("Entities() = %v, want %v", got, want)
	}
	for _, e := range want {
		fs := s.Files(e)
		if len(fs) != scenarios {
			t.Errorf("Files(%q): %d files, want %d", e, len(fs), scenarios)
		}
		for i, f := range fs {
			if f.Scenario != i || f.Path != layout.DataFile(e, s.Manifest().Layout.ScenarioPad, i) {
				t.Errorf("Files(%q)[%d] = %+v", e, i, f)
			}
		}
	}
	if s.Files("no-such") != nil {
		t.Error("Files of an unknown entity is not nil")
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// TestRoundTrip writes the tiny case, merges it, and reads every table of
// every scenario back: every supplied column equals what was written, and
// the record batch has the table's schema plus scenario_id.
func TestRoundTrip(t *testing.T) {
	out, c := shared(t)
	for _, verify := range []bool{false, true} {
		s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: verify})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for sid := range scenarios {
			written, err := synth.Generate(c, seed, sid)
			if err != nil {
				t.Fatal(err)
			}
			read, err := s.ReadScenario(ctx, sid)
			if err != nil {
				t.Fatal(err)
			}
			readTables := read.Tables()
			if len(readTables) != len(written.Tables()) {
				t.Fatalf("scenario %d: %d tables read, %d written", sid, len(readTables), len(written.Tables()))
			}
			for i, tr := range written.Tables() {
				e := tr.Table.Entity
				t.Run(fmt.Sprintf("verify=%v/%s/%d", verify, e, sid), func(t *testing.T) {
					sameColumns(t, e, tr.Rows, readTables[i].Rows)
					rec, err := s.ReadTable(ctx, e, sid)
					if err != nil {
						t.Fatal(err)
					}
					defer rec.Release()
					sch := rec.Schema()
					if n := len(tr.Table.Columns); sch.NumFields() != n+1 || sch.Field(n).Name != reader.ScenarioColumn {
						t.Fatalf("schema %v: want the table's %d columns then %s", sch, n, reader.ScenarioColumn)
					}
					col := rec.Column(len(tr.Table.Columns)).(*array.Int32)
					for r := range col.Len() {
						if col.Value(r) != int32(sid) || col.IsNull(r) {
							t.Fatalf("scenario_id row %d = %d, want %d", r, col.Value(r), sid)
						}
					}
					f, _ := s.File(e, sid)
					if rec.NumRows() != f.Rows {
						t.Errorf("%d rows, the index says %d", rec.NumRows(), f.Rows)
					}
					// The same rows through ReadRows into a fresh struct.
					dst := reflect.New(reflect.TypeOf(tr.Rows).Elem()).Interface()
					if err := s.ReadRows(ctx, e, sid, dst); err != nil {
						t.Fatal(err)
					}
					sameColumns(t, e, tr.Rows, dst)
				})
			}
		}
	}
}

func TestReadConvergence(t *testing.T) {
	out, c := shared(t)
	s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: true})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.ReadConvergenceRows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows.Iteration) != iterations {
		t.Fatalf("%d iterations read, want %d", len(rows.Iteration), iterations)
	}
	for i := range iterations {
		want := synth.TrainingIteration(c, seed, i+1, passes, 0, world, 1).Convergence
		if rows.Iteration[i] != want.Iteration || rows.LowerBound[i] != want.LowerBound || rows.UpperBoundMean[i] != want.UpperBoundMean || rows.CutsActive[i] != want.CutsActive {
			t.Errorf("row %d: iteration %d lower %v upper %v active %d, written %+v", i, rows.Iteration[i], rows.LowerBound[i], rows.UpperBoundMean[i], rows.CutsActive[i], *want)
		}
	}
	for _, tbl := range []*shard.Table{shard.TimingIterations, shard.TimingMPIRanks} {
		rec, err := s.ReadTraining(context.Background(), tbl)
		if err != nil {
			t.Fatal(err)
		}
		if rec.NumRows() == 0 {
			t.Errorf("%s: no rows", tbl.Name)
		}
		rec.Release()
	}
	if _, err := s.ReadTraining(context.Background(), shard.Hydros); err == nil {
		t.Error("ReadTraining of a simulation table: no error")
	}
}

// TestTampered alters a data file (its size, or its bytes at the same
// size) and the convergence table: the read is refused with an
// *IntegrityError naming the file; the checksum only with VerifyChecksum.
func TestTampered(t *testing.T) {
	out := fresh(t)
	s0, err := reader.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	grow, _ := s0.File("hydros", 1)
	flip, _ := s0.File("costs", 2)
	ctx := context.Background()
	// one more byte
	if err := appendByte(layout.Join(out, grow.Path)); err != nil {
		t.Fatal(err)
	}
	// one byte changed in the middle (same size)
	if err := flipByte(layout.Join(out, flip.Path), flip.Bytes/2); err != nil {
		t.Fatal(err)
	}
	if err := flipByte(layout.Join(out, layout.ConvergenceFile), 100); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		verify   bool
		read     func(*reader.Study) error
		path     string
		detail   string
		wantFail bool
	}{
		{"size", false, func(s *reader.Study) error { return readTable(ctx, s, "hydros", 1) }, grow.Path, fmt.Sprintf("%d bytes, the index says %d", grow.Bytes+1, grow.Bytes), true},
		{"size-verify", true, func(s *reader.Study) error { return readTable(ctx, s, "hydros", 1) }, grow.Path, "the index says", true},
		{"xxh64", true, func(s *reader.Study) error { return readTable(ctx, s, "costs", 2) }, flip.Path, "xxh64", true},
		{"xxh64-rows", true, func(s *reader.Study) error { return s.ReadRows(ctx, "costs", 2, &shard.CostsRows{}) }, flip.Path, "xxh64", true},
		{"convergence", true, func(s *reader.Study) error { _, err := s.ReadConvergenceRows(ctx); return err }, layout.ConvergenceFile, "xxh64", true},
		{"untouched", true, func(s *reader.Study) error { return readTable(ctx, s, "hydros", 0) }, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: tc.verify})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.read(s)
			if !tc.wantFail {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ie *reader.IntegrityError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an *IntegrityError", err)
			}
			if ie.Path != tc.path || !strings.Contains(err.Error(), tc.path) || !strings.Contains(ie.Detail, tc.detail) {
				t.Errorf("err = %v, want it to name %s and say %q", err, tc.path, tc.detail)
			}
		})
	}
}

func readTable(ctx context.Context, s *reader.Study, e string, sid int) error {
	rec, err := s.ReadTable(ctx, e, sid)
	if err == nil {
		rec.Release()
	}
	return err
}

func appendByte(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte{0})
	return errors.Join(err, f.Close())
}

func flipByte(p string, at int64) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		f.Close()
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, at)
	return errors.Join(err, f.Close())
}

// forgeIndex rewrites simulation/_files.csv through edit and re-seals the
// manifest's dataset_xxh64, files and bytes, as a forger would.
func forgeIndex(t *testing.T, out string, edit func(rows string) string) {
	t.Helper()
	ip := layout.Join(out, path.Join(layout.SimDir, layout.IndexName))
	mp := layout.Join(out, path.Join(layout.SimDir, layout.ManifestName))
	data, err := os.ReadFile(ip)
	if err != nil {
		t.Fatal(err)
	}
	header, rows, _ := strings.Cut(string(data), "\n")
	rows = edit(rows)
	if err := os.WriteFile(ip, []byte(header+"\n"+rows), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.ReadSimManifest(mp, raw)
	if err != nil {
		t.Fatal(err)
	}
	m.DatasetXXH64 = manifest.FormatXXH64(xxhash.Sum64String(rows))
	m.Files, m.Bytes = 0, 0
	for _, line := range strings.Split(strings.TrimSuffix(rows, "\n"), "\n") {
		f := strings.Split(line, ",")
		n, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		m.Files++
		m.Bytes += n
	}
	mb, err := manifest.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mp, mb, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForgedIndex: an index row whose path is not the layout's name of its
// own entity and scenario is refused by Open, whatever the manifest says.
func TestForgedIndex(t *testing.T) {
	out := fresh(t)
	ip := layout.Join(out, path.Join(layout.SimDir, layout.IndexName))
	mp := layout.Join(out, path.Join(layout.SimDir, layout.ManifestName))
	index, _ := os.ReadFile(ip)
	man, _ := os.ReadFile(mp)
	restore := func() {
		os.WriteFile(ip, index, 0o644)
		os.WriteFile(mp, man, 0o644)
	}
	firstPath := func(rows string) string { p, _, _ := strings.Cut(rows, ","); return p }
	for _, tc := range []struct {
		name string
		edit func(rows string) string
		want string
	}{
		{"dotdot", func(rows string) string { return strings.Replace(rows, firstPath(rows), "../x", 1) }, `"../x"`},
		{"dotdot-inside", func(rows string) string {
			return strings.Replace(rows, firstPath(rows), "simulation/costs/../../../etc/passwd", 1)
		}, "passwd"},
		{"absolute", func(rows string) string { return strings.Replace(rows, firstPath(rows), "/etc/passwd", 1) }, "/etc/passwd"},
		{"other-file", func(rows string) string {
			return strings.Replace(rows, firstPath(rows), layout.DataFile("costs", 0, 3), 1)
		}, "not the data file"},
		{"other-entity", func(rows string) string {
			return strings.Replace(rows, "simulation/costs/scenario_id=0/data.parquet,costs", "simulation/costs/scenario_id=0/data.parquet,hydros", 1)
		}, "not the data file"},
		{"unknown-entity", func(rows string) string {
			return strings.Replace(rows, "simulation/costs/scenario_id=0/data.parquet,costs", "simulation/x/scenario_id=0/data.parquet,x", 1)
		}, "unknown entity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer restore()
			forgeIndex(t, out, tc.edit)
			_, err := reader.Open(out)
			if !errors.Is(err, reader.ErrIndex) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrIndex naming %s", err, tc.want)
			}
		})
	}
	t.Run("unsealed", func(t *testing.T) {
		defer restore()
		data, _ := os.ReadFile(ip)
		os.WriteFile(ip, []byte(strings.Replace(string(data), "simulation/costs/scenario_id=0/data.parquet", "../x", 1)), 0o644)
		_, err := reader.Open(out)
		if !errors.Is(err, reader.ErrIndex) || !strings.Contains(err.Error(), "dataset xxh64") {
			t.Fatalf("err = %v, want ErrIndex about the dataset xxh64", err)
		}
	})
	if _, err := reader.Open(out); err != nil {
		t.Fatalf("restored study: %v", err)
	}
}

// TestNotMerged: a directory the ranks wrote but no merge has run on, an
// empty one and a missing one are refused with ErrNotMerged.
func TestNotMerged(t *testing.T) {
	unmerged := t.TempDir()
	writeStudy(t, unmerged, false)
	for name, dir := range map[string]string{
		"unmerged": unmerged,
		"empty":    t.TempDir(),
		"missing":  filepath.Join(t.TempDir(), "nothing"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := reader.Open(dir)
			if !errors.Is(err, reader.ErrNotMerged) {
				t.Fatalf("err = %v, want ErrNotMerged", err)
			}
		})
	}
}

// noListFS refuses to list a directory and counts the bytes of each
// open: the reader reads the index, never the tree.
type noListFS struct {
	vfs.FS
	mu     sync.Mutex
	opened []string
}

func (f *noListFS) ReadDir(name string) ([]fs.DirEntry, error) {
	return nil, fmt.Errorf("ReadDir(%s): the reader must not list directories", name)
}

func (f *noListFS) Open(name string) (vfs.File, error) {
	f.mu.Lock()
	f.opened = append(f.opened, name)
	f.mu.Unlock()
	return f.FS.Open(name)
}

// TestBounded: the reader never lists a directory (an FS that refuses
// ReadDir serves it), opens only the manifest and index at Open and one
// file per read, and refuses an index or a file over its limit. (Open
// also tries compacted/_manifest.json, which the shared study lacks.)
func TestBounded(t *testing.T) {
	out, _ := shared(t)
	fsys := &noListFS{FS: vfs.OS()}
	s, err := reader.OpenWith(out, reader.Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{layout.Join(out, "simulation/_manifest.json"), layout.Join(out, "simulation/_files.csv"), layout.Join(out, layout.CompactManifestFile)}; !reflect.DeepEqual(fsys.opened, want) {
		t.Errorf("Open opened %v, want the manifests and the index only (%v)", fsys.opened, want)
	}
	fsys.opened = nil
	if err := readTable(context.Background(), s, "hydros", 3); err != nil {
		t.Fatal(err)
	}
	f, _ := s.File("hydros", 3)
	if len(fsys.opened) != 1 || fsys.opened[0] != layout.Join(out, f.Path) {
		t.Errorf("ReadTable opened %v, want %s only", fsys.opened, f.Path)
	}

	_, err = reader.OpenWith(out, reader.Options{MaxIndexBytes: 100})
	var tl *vfs.TooLargeError
	if !errors.As(err, &tl) {
		t.Errorf("index over its limit: err = %v, want a *vfs.TooLargeError", err)
	}
	small, err := reader.OpenWith(out, reader.Options{MaxFileBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ie *reader.IntegrityError
	if err := readTable(context.Background(), small, "hydros", 3); !errors.As(err, &ie) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("file over its limit: err = %v, want an *IntegrityError about the limit", err)
	}
	if _, err := small.ReadConvergence(context.Background()); !errors.As(err, &tl) {
		t.Errorf("training file over its limit: err = %v, want a *vfs.TooLargeError", err)
	}
}

func TestNotFound(t *testing.T) {
	out, _ := shared(t)
	s, err := reader.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		entity string
		sid    int
	}{{"hydros", scenarios}, {"costs", -1}} {
		if err := readTable(context.Background(), s, tc.entity, tc.sid); !errors.Is(err, reader.ErrNotFound) {
			t.Errorf("%s %d: err = %v, want ErrNotFound", tc.entity, tc.sid, err)
		}
	}
	if err := readTable(context.Background(), s, "nope", 0); err == nil {
		t.Error("unknown entity: no error")
	}
	if err := s.ReadRows(context.Background(), "hydros", 0, &shard.CostsRows{}); err == nil {
		t.Error("decoding hydros into CostsRows: no error")
	}
}

// TestWrongContent: a file whose bytes are those the (re-sealed) index
// lists but whose content is not its table's (another table's file, or
// another row count) is refused naming it.
func TestWrongContent(t *testing.T) {
	out := fresh(t)
	s0, err := reader.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	costs, _ := s0.File("costs", 1)
	hydros, _ := s0.File("hydros", 1)
	hydros0, _ := s0.File("hydros", 0)
	// hydros/1 becomes a copy of costs/1, and the index says so.
	b, err := os.ReadFile(layout.Join(out, costs.Path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.Join(out, hydros.Path), b, 0o644); err != nil {
		t.Fatal(err)
	}
	row := func(f reader.File) string {
		return strings.Join([]string{f.Path, f.Entity, strconv.Itoa(f.Scenario), strconv.FormatInt(f.Rows, 10), strconv.FormatInt(f.Bytes, 10), f.XXH64}, ",")
	}
	forgeIndex(t, out, func(rows string) string {
		forged := hydros
		forged.Bytes, forged.XXH64, forged.Rows = costs.Bytes, costs.XXH64, costs.Rows
		rows = strings.Replace(rows, row(hydros), row(forged), 1)
		wrongRows := hydros0
		wrongRows.Rows++
		return strings.Replace(rows, row(hydros0), row(wrongRows), 1)
	})
	s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sid    int
		path   string
		detail string
	}{{1, hydros.Path, "not the schema of simulation/hydros"}, {0, hydros0.Path, fmt.Sprintf("%d rows, the index says %d", hydros0.Rows, hydros0.Rows+1)}} {
		err := readTable(context.Background(), s, "hydros", tc.sid)
		var ie *reader.IntegrityError
		if !errors.As(err, &ie) || ie.Path != tc.path || !strings.Contains(ie.Detail, tc.detail) {
			t.Errorf("hydros %d: err = %v, want an *IntegrityError naming %s and saying %q", tc.sid, err, tc.path, tc.detail)
		}
	}
}

// TestPaddedAndPartial: a study with Cobre's padded partitions
// (scenario_id=0003) reads back; a partial study (rank 1 never ran) reads
// back the scenarios it has, and reports the others missing.
func TestPaddedAndPartial(t *testing.T) {
	ctx := context.Background()
	t.Run("padded", func(t *testing.T) {
		out := t.TempDir()
		c := writeStudyWith(t, out, true, 4, world)
		s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: true})
		if err != nil {
			t.Fatal(err)
		}
		f, _ := s.File("hydros", 3)
		if !strings.Contains(f.Path, "scenario_id=0003/") {
			t.Fatalf("path %s: want a padded partition", f.Path)
		}
		var got shard.HydrosRows
		if err := s.ReadRows(ctx, "hydros", 3, &got); err != nil {
			t.Fatal(err)
		}
		want, err := synth.Generate(c, seed, 3)
		if err != nil {
			t.Fatal(err)
		}
		sameColumns(t, "hydros", want.Hydros, &got)
	})
	t.Run("partial", func(t *testing.T) {
		out := t.TempDir()
		writeStudyWith(t, out, true, 0, 1)
		s, err := reader.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if s.Manifest().Status != manifest.StatusPartial {
			t.Errorf("status %s, want %s", s.Manifest().Status, manifest.StatusPartial)
		}
		if got, want := s.Scenarios(), []int{0, 1, 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("Scenarios() = %v, want %v", got, want)
		}
		if got, want := s.Manifest().Missing, []int{3, 4}; !reflect.DeepEqual(got, want) {
			t.Errorf("Missing = %v, want %v", got, want)
		}
		if err := readTable(ctx, s, "costs", 3); !errors.Is(err, reader.ErrNotFound) {
			t.Errorf("a missing scenario: err = %v, want ErrNotFound", err)
		}
		if _, err := s.ReadScenario(ctx, 4); !errors.Is(err, reader.ErrNotFound) {
			t.Errorf("ReadScenario of a missing scenario: err = %v, want ErrNotFound", err)
		}
		if _, err := s.ReadScenario(ctx, 2); err != nil {
			t.Error(err)
		}
	})
}

// TestPlantedLink: a data file replaced by a symbolic link to a copy of
// itself outside OUT (same bytes, same checksum) is refused: the reader
// never reads through a link inside OUT.
func TestPlantedLink(t *testing.T) {
	out := fresh(t)
	s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: true})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s.File("thermals", 2)
	p := layout.Join(out, f.Path)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "data.parquet")
	if err := os.WriteFile(outside, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, p); err != nil {
		t.Fatal(err)
	}
	var link *vfs.SymlinkError
	if err := readTable(context.Background(), s, "thermals", 2); !errors.As(err, &link) {
		t.Fatalf("err = %v, want a *vfs.SymlinkError", err)
	}
}
