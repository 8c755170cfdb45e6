package merge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/vfs"
)

// compactStudy writes a study of n scenarios of the tiny case with two
// ranks, skipping the scenarios in skip, and merges it.
func compactStudy(t *testing.T, n int, skip ...int) (string, *manifest.Case) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := t.TempDir()
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	for r := range 2 {
		id, err := rank.Explicit(r, 2)
		if err != nil {
			t.Fatal(err)
		}
		w, err := rank.Open(ctx, out, id, c, rank.Options{Scenarios: n})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rank.Contiguous.Owned(n, id) {
			if slices.Contains(skip, s) {
				continue
			}
			sc, err := synth.Generate(c, 3, s)
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
	rep, err := Run(ctx, out, Options{Verify: VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	want := Complete
	if len(skip) > 0 {
		want = Partial
	}
	if rep.Outcome != want {
		t.Fatalf("merge: %s", rep.Human())
	}
	return out, c
}

// parquetRows reads a Parquet file with pqarrow (not the compaction's
// code) and renders each row as text, prefix first: an independent view
// of every value.
func parquetRows(t *testing.T, name, prefix string) (*arrow.Schema, []string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 1<<20)
	defer tr.Release()
	var rows []string
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			cells := []string{}
			if prefix != "" {
				cells = append(cells, prefix)
			}
			for j := 0; j < int(rec.NumCols()); j++ {
				cells = append(cells, rec.Column(j).ValueStr(i))
			}
			rows = append(rows, strings.Join(cells, "|"))
		}
	}
	return tbl.Schema(), rows
}

// readManifest reads compacted/_manifest.json.
func readCompactManifest(t *testing.T, out string) *CompactManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, layout.CompactManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var cm CompactManifest
	if err := json.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

// TestCompact compacts a merged study into several files per table and
// several row groups per file, and compares every row and column with the
// partition files, read independently.
func TestCompact(t *testing.T) {
	const n = 7
	out, c := compactStudy(t, n)
	ctx := context.Background()
	m := readSimManifestT(t, out)

	// Small files and row groups, so that both boundaries are exercised:
	// about three scenarios a file, two a row group for hydros.
	hydro0, err := os.Stat(filepath.Join(out, layout.DataFile("hydros", 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	hydroRows := m.Entities["hydros"].Rows / n
	opts := CompactOptions{TargetSize: 3 * hydro0.Size(), RowGroupRows: 2 * hydroRows}
	start := time.Now()
	rep, err := Compact(ctx, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compacted the tiny study (%d scenarios, %d tables, %d files) in %v:\n%s", n, len(c.Entities()), rep.SourceFiles, time.Since(start), rep.Human())
	if rep.Already || rep.SourceFiles != n*len(c.Entities()) || len(rep.Files) == 0 {
		t.Fatalf("report: %+v", rep)
	}
	cm := readCompactManifest(t, out)
	if cm.DatasetXXH64 != m.DatasetXXH64 || cm.Status != manifest.CompactStatusVerified || len(cm.Files) != len(rep.Files) {
		t.Fatalf("manifest: %+v", cm)
	}
	byEntity := map[string][]CompactFile{}
	for _, f := range cm.Files {
		byEntity[f.Entity] = append(byEntity[f.Entity], f)
	}
	if len(byEntity["hydros"]) < 2 {
		t.Errorf("hydros in %d files, want several with --target-size %d", len(byEntity["hydros"]), opts.TargetSize)
	}
	for _, e := range c.Entities() {
		files := byEntity[e]
		if len(files) == 0 {
			t.Errorf("%s: no compacted file", e)
			continue
		}
		// Expected: every partition file's rows in scenario order, the
		// scenario id first.
		var want []string
		var srcSchema *arrow.Schema
		for s := 0; s < n; s++ {
			sch, rows := parquetRows(t, filepath.Join(out, layout.DataFile(e, 0, s)), fmt.Sprint(s))
			srcSchema = sch
			want = append(want, rows...)
		}
		var got []string
		next := 0
		for i, f := range files {
			if f.Path != layout.CompactPart(e, i) || f.FirstScenario != next {
				t.Errorf("%s: file %d is %s scenarios %d-%d, want %s from %d", e, i, f.Path, f.FirstScenario, f.LastScenario, layout.CompactPart(e, i), next)
			}
			next = f.LastScenario + 1
			name := filepath.Join(out, f.Path)
			sch, rows := parquetRows(t, name, "")
			if sch.Field(0).Name != "scenario_id" || sch.Field(0).Type.ID() != arrow.INT32 {
				t.Errorf("%s: first column %v, want scenario_id int32", f.Path, sch.Field(0))
			}
			if want := srcSchema.NumFields() + 1; sch.NumFields() != want {
				t.Errorf("%s: %d columns, want %d", f.Path, sch.NumFields(), want)
			}
			for j, fl := range srcSchema.Fields() {
				if g := sch.Field(j + 1); g.Name != fl.Name || !arrow.TypeEqual(g.Type, fl.Type) {
					t.Errorf("%s: column %d is %v, the partition's %v", f.Path, j+1, g, fl)
				}
			}
			got = append(got, rows...)
			checkRowGroupStats(t, name, f)
		}
		if next != n {
			t.Errorf("%s: files end at scenario %d, want %d", e, next-1, n-1)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d compacted rows differ from the %d partition rows", e, len(got), len(want))
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("first difference at row %d:\n got  %s\n want %s", i, got[i], want[i])
					break
				}
			}
		}
	}

	// The merged study is untouched: verify and a re-merge see nothing new.
	v, err := VerifyMerged(ctx, out, Options{Verify: VerifyFull})
	if err != nil || !v.OK || len(v.Extra) != 0 {
		t.Fatalf("verify after compaction: %v %s", err, v.Human())
	}
	rr, err := Run(ctx, out, Options{Verify: VerifyFull})
	if err != nil || rr.Outcome != Complete || len(rr.Written) != 0 {
		t.Fatalf("merge after compaction: %v %s (wrote %v)", err, rr.Human(), rr.Written)
	}

	// Again: nothing changes.
	before := treeBytes(t, filepath.Join(out, layout.CompactDir))
	rep2, err := Compact(ctx, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep2.Already {
		t.Errorf("a second compaction did not find the first: %s", rep2.Human())
	}
	if after := treeBytes(t, filepath.Join(out, layout.CompactDir)); !mapsEqual(before, after) {
		t.Errorf("a second compaction changed the compacted tree")
	}

	// An interrupted compaction (files published, no manifest) finishes
	// with the same bytes.
	if err := os.Remove(filepath.Join(out, layout.CompactManifestFile)); err != nil {
		t.Fatal(err)
	}
	rep3, err := Compact(ctx, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep3.Already {
		t.Errorf("no manifest, yet already compacted")
	}
	after := treeBytes(t, filepath.Join(out, layout.CompactDir))
	delete(before, layout.ManifestName)
	delete(after, layout.ManifestName)
	if !mapsEqual(before, after) {
		t.Errorf("a rerun after an interruption made other bytes")
	}
	noCompactTemps(t, out)

	// A compacted file altered after the manifest: named, exit 2.
	victim := filepath.Join(out, cm.Files[0].Path)
	flipByte(t, victim, 100)
	_, err = Compact(ctx, out, opts)
	var damage *CompactDamageError
	if !errors.As(err, &damage) || damage.Path != cm.Files[0].Path {
		t.Errorf("altered compacted file: err = %v, want a CompactDamageError naming %s", err, cm.Files[0].Path)
	}
}

// checkRowGroupStats checks each row group's scenario_id statistics
// against the manifest and the values, so that a filter on scenario_id
// can skip the others.
func checkRowGroupStats(t *testing.T, name string, f CompactFile) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if pf.NumRowGroups() != len(f.RowGroups) {
		t.Fatalf("%s: %d row groups, the manifest lists %d", f.Path, pf.NumRowGroups(), len(f.RowGroups))
	}
	var total int64
	for g := 0; g < pf.NumRowGroups(); g++ {
		cc, err := pf.MetaData().RowGroup(g).ColumnChunk(0)
		if err != nil {
			t.Fatal(err)
		}
		st, err := cc.Statistics()
		if err != nil {
			t.Fatal(err)
		}
		is, ok := st.(*metadata.Int32Statistics)
		if !ok || !is.HasMinMax() {
			t.Fatalf("%s row group %d: no scenario_id statistics", f.Path, g)
		}
		rg := f.RowGroups[g]
		if int(is.Min()) != rg.FirstScenario || int(is.Max()) != rg.LastScenario || pf.MetaData().RowGroup(g).NumRows() != rg.Rows {
			t.Errorf("%s row group %d: statistics %d-%d %d rows, manifest %+v", f.Path, g, is.Min(), is.Max(), pf.MetaData().RowGroup(g).NumRows(), rg)
		}
		// The tiny case's scenarios are far below a row group's cap, so
		// no scenario is split across two.
		if g > 0 && rg.FirstScenario == f.RowGroups[g-1].LastScenario {
			t.Errorf("%s: row group %d starts inside scenario %d", f.Path, g, rg.FirstScenario)
		}
		total += rg.Rows
	}
	if total != f.Rows {
		t.Errorf("%s: row groups hold %d rows, the file %d", f.Path, total, f.Rows)
	}
}

func readSimManifestT(t *testing.T, out string) *manifest.SimManifest {
	t.Helper()
	p := filepath.Join(out, layout.SimDir, layout.ManifestName)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.ReadSimManifest(p, raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// treeBytes maps every file under dir (relative) to its bytes.
func treeBytes(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatalf("%s is empty", dir)
	}
	return got
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func flipByte(t *testing.T, name string, off int) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[off%len(b)] ^= 0xff
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// noCompactTemps checks that no compaction temp file is left.
func noCompactTemps(t *testing.T, out string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(out, layout.TempDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), layout.CompactTag+".") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

// noCompaction checks that nothing was published under compacted/.
func noCompaction(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(out, layout.CompactDir)); !errors.Is(err, os.ErrNotExist) {
		entries, _ := os.ReadDir(filepath.Join(out, layout.CompactDir))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("compacted/ exists (%v, %v), want nothing published", err, names)
	}
	noCompactTemps(t, out)
}

// TestCompactRefusesDamage: a partition file altered (same size) or
// truncated after the merge is named, and nothing is published.
func TestCompactRefusesDamage(t *testing.T) {
	out, _ := compactStudy(t, 4)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		rel    string
		damage func(string)
		want   string
	}{
		{"altered", layout.DataFile("thermals", 0, 3), func(p string) { flipByte(t, p, 200) }, "xxh64"},
		{"truncated", layout.DataFile("costs", 0, 1), func(p string) {
			if err := os.Truncate(p, 10); err != nil {
				t.Fatal(err)
			}
		}, "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(out, tc.rel)
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(p)
			_, err = Compact(ctx, out, CompactOptions{})
			var damage *CompactDamageError
			if !errors.As(err, &damage) || damage.Path != tc.rel || !strings.Contains(damage.Detail, tc.want) {
				t.Errorf("err = %v, want a CompactDamageError naming %s (%s)", err, tc.rel, tc.want)
			}
			noCompaction(t, out)
			if err := os.WriteFile(p, orig, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, layout.LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("merge lock left behind: %v", err)
	}
	// Restored, it compacts.
	if _, err := Compact(ctx, out, CompactOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCompactRefusesIncomplete: a partial study, and a directory never
// merged, are refused with ErrNotComplete and nothing is written.
func TestCompactRefusesIncomplete(t *testing.T) {
	out, _ := compactStudy(t, 5, 2)
	_, err := Compact(context.Background(), out, CompactOptions{})
	if !errors.Is(err, ErrNotComplete) || !strings.Contains(err.Error(), `"partial"`) {
		t.Errorf("partial study: err = %v, want ErrNotComplete saying partial", err)
	}
	noCompaction(t, out)

	empty := t.TempDir()
	_, err = Compact(context.Background(), empty, CompactOptions{})
	if !errors.Is(err, ErrNotComplete) {
		t.Errorf("empty directory: err = %v, want ErrNotComplete", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("an empty directory got %v", entries)
	}
}

// TestCompactSchemaMetadata: a compacted file stores one Arrow schema,
// the compacted one (scenario_id first), never the partition's.
func TestCompactSchemaMetadata(t *testing.T) {
	out, _ := compactStudy(t, 2)
	if _, err := Compact(context.Background(), out, CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, layout.CompactPart("hydros", 0)))
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	n := 0
	for _, k := range pf.MetaData().KeyValueMetadata().Keys() {
		if k == "ARROW:schema" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d ARROW:schema keys, want 1", n)
	}
	if got := pf.MetaData().GetCreatedBy(); !strings.Contains(got, "hydroshard") {
		t.Errorf("created_by %q", got)
	}
}

// TestCompactCrashPoints crashes a compaction after each of its
// file-system operations on vfs.Mem (the process dies; or the machine
// loses power and keeps only what was synced), then compacts again: the
// rerun always succeeds with the same compacted files as an uninterrupted
// compaction, leaves no temp file, and never a manifest without its
// files.
func TestCompactCrashPoints(t *testing.T) {
	const out = "/out"
	base, _ := memStudy(t, 3, out)
	ctx := context.Background()
	dead := func(int) bool { return false } // a lock left by the crash is stale
	opts := func(m *vfs.Mem) CompactOptions {
		return CompactOptions{FS: m, Alive: dead, TargetSize: 6 << 10, RowGroupRows: 12}
	}
	ref := base.Clone()
	if _, err := Compact(ctx, out, opts(ref)); err != nil {
		t.Fatal(err)
	}
	want := memParts(t, ref, out)
	if len(want) < 11 {
		t.Fatalf("reference compaction made %d files", len(want))
	}
	points := 0
	for k := 0; ; k++ {
		m := base.Clone()
		m.CrashAfter(k)
		_, err := Compact(ctx, out, opts(m))
		if !m.Crashed() {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		points++
		for _, after := range []struct {
			name string
			m    *vfs.Mem
		}{{"process death", m.Clone()}, {"power cut", m.CrashClone(vfs.CrashOptions{})}} {
			// A manifest never survives without every file it lists.
			if raw, err := after.m.ReadFile(path.Join(out, layout.CompactManifestFile)); err == nil {
				var cm CompactManifest
				if err := json.Unmarshal(raw, &cm); err != nil {
					t.Fatalf("crash after op %d, %s: manifest: %v", k, after.name, err)
				}
				for _, f := range cm.Files {
					if got, err := after.m.ReadFile(path.Join(out, f.Path)); err != nil || string(got) != want[f.Path] {
						t.Fatalf("crash after op %d, %s: the manifest lists %s, which is missing or differs (%v)", k, after.name, f.Path, err)
					}
				}
			}
			rep, err := compactAgain(t, ctx, out, opts(after.m))
			if err != nil {
				t.Fatalf("crash after op %d, %s: rerun: %v", k, after.name, err)
			}
			if got := memParts(t, after.m, out); !mapsEqual(got, want) {
				t.Fatalf("crash after op %d, %s: rerun (already=%v) made other files than an uninterrupted compaction", k, after.name, rep.Already)
			}
			for _, p := range after.m.Paths() {
				if strings.Contains(p, "/"+layout.TempDir+"/"+layout.CompactTag+".") || strings.HasSuffix(p, layout.LockFile) {
					t.Fatalf("crash after op %d, %s: %s left after the rerun", k, after.name, p)
				}
			}
		}
	}
	t.Logf("%d crash points, each as a process death and a power cut", points)
	if points < 50 {
		t.Errorf("only %d crash points", points)
	}
}

// memStudy copies a merged study of n scenarios (compactStudy) into a
// crash-simulating file system under out, and returns it with the paths
// of its partition files.
func memStudy(t *testing.T, n int, out string) (*vfs.Mem, []string) {
	t.Helper()
	study, _ := compactStudy(t, n)
	base := vfs.NewMem()
	var sources []string
	err := filepath.WalkDir(study, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(study, p)
		rel = filepath.ToSlash(rel)
		if layout.Under(rel, layout.SimDir) && strings.HasSuffix(rel, ".parquet") {
			sources = append(sources, path.Join(out, rel))
		}
		return base.WriteFile(path.Join(out, rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	return base, sources
}

// compactAgain reruns a compaction after a crash. When the crash tore
// the lock file as it was written, the merge's lock presumes it live
// until it is old (merge/lock.go) and the operator removes it, as the
// message says: so does this.
func compactAgain(t *testing.T, ctx context.Context, out string, opts CompactOptions) (*CompactReport, error) {
	t.Helper()
	rep, err := Compact(ctx, out, opts)
	var locked *LockedError
	if errors.As(err, &locked) && locked.Owner.PID == 0 {
		if err := opts.FS.Remove(path.Join(out, layout.LockFile)); err != nil {
			t.Fatal(err)
		}
		rep, err = Compact(ctx, out, opts)
	}
	return rep, err
}

// memParts maps each compacted file under out in m (not the manifest,
// which holds a time) to its bytes.
func memParts(t *testing.T, m *vfs.Mem, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	prefix := path.Join(out, layout.CompactDir) + "/"
	for _, p := range m.Paths() {
		if strings.HasPrefix(p, prefix) && strings.HasSuffix(p, ".parquet") {
			b, err := m.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			got[strings.TrimPrefix(p, out+"/")] = string(b)
		}
	}
	return got
}
