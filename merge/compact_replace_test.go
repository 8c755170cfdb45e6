package merge

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// treeShape lists every directory and file under dir (relative, dirs
// with a trailing slash) with the files' bytes, but not _shards/, which
// holds the merge's lock and temp directory.
func treeShape(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == layout.ShardsDir:
			return fs.SkipDir
		case d.IsDir():
			got[rel+"/"] = ""
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// partitionFiles lists the data files left under simulation/.
func partitionFiles(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for rel := range treeShape(t, out) {
		if layout.Under(rel, layout.SimDir) && strings.HasSuffix(rel, ".parquet") {
			got = append(got, rel)
		}
	}
	return got
}

// TestCompactReplace: --replace removes every partition file (and its
// emptied directories) only after the compaction is verified; the
// manifest says so; a re-merge changes no byte and recreates no
// directory; verify --full is OK and counts the replaced files; a second
// compact changes nothing.
func TestCompactReplace(t *testing.T) {
	for _, died := range []bool{false, true} {
		name := "closed"
		if died {
			name = "died after its last commit"
		}
		t.Run(name, func(t *testing.T) { testCompactReplace(t, died) })
	}
}

// dropCloseRecords removes the close record ending each journal of out,
// as if every rank died right after its last commit (whose directories
// the merge then makes durable again: journal.Resync).
func dropCloseRecords(t *testing.T, out string) {
	t.Helper()
	js, err := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	if err != nil || len(js) == 0 {
		t.Fatalf("journals: %v %v", js, err)
	}
	for _, j := range js {
		b, err := os.ReadFile(j)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
		if !strings.Contains(lines[len(lines)-1], `"type":"close"`) {
			t.Fatalf("%s does not end in a close record", j)
		}
		if err := os.WriteFile(j, []byte(strings.Join(lines[:len(lines)-1], "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func testCompactReplace(t *testing.T, died bool) {
	out, _ := compactStudy(t, 4)
	ctx := context.Background()
	if died {
		dropCloseRecords(t, out)
		if mr, err := Run(ctx, out, Options{}); err != nil || mr.Outcome != Complete {
			t.Fatalf("merge after the ranks died: %v %v", mr, err)
		}
	}
	sources := len(partitionFiles(t, out))
	rep, err := Compact(ctx, out, CompactOptions{Replace: true, TargetSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Partitions != manifest.PartitionsRemoved || rep.Removed != sources || sources < 40 {
		t.Fatalf("report: partitions %q, removed %d, want %q and %d", rep.Partitions, rep.Removed, manifest.PartitionsRemoved, sources)
	}
	if left := partitionFiles(t, out); len(left) != 0 {
		t.Fatalf("partition files left: %v", left)
	}
	for rel := range treeShape(t, out) {
		if layout.Under(rel, layout.SimDir) && strings.Count(rel, "/") > 1 {
			t.Errorf("%s left under simulation/ (emptied directories must go)", rel)
		}
	}
	if cm := readCompactManifest(t, out); cm.Partitions != manifest.PartitionsRemoved {
		t.Fatalf("manifest partitions %q", cm.Partitions)
	}
	if !strings.Contains(rep.Human(), "replaced by the compacted files") {
		t.Errorf("report does not say the partitions were replaced:\n%s", rep.Human())
	}

	before := treeShape(t, out)
	for _, verify := range []string{VerifySize, VerifyFull} {
		mr, err := Run(ctx, out, Options{Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		if mr.Outcome != Complete || len(mr.Problems) != 0 {
			t.Fatalf("re-merge (verify %v): outcome %v, problems %v", verify, mr.Outcome, mr.Problems)
		}
		after := treeShape(t, out)
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Errorf("re-merge removed %s", k)
			} else if after[k] != before[k] {
				t.Errorf("re-merge changed %s", k)
			}
		}
		for k := range after {
			if _, ok := before[k]; !ok {
				t.Errorf("re-merge created %s", k)
			}
		}
	}

	v, err := VerifyMerged(ctx, out, Options{Verify: VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.Compacted == nil || v.Compacted.Replaced != sources || v.Compacted.Files != len(rep.Files) || len(v.Extra) != 0 {
		t.Fatalf("verify: ok %v, compacted %+v, extra %v, problems %v", v.OK, v.Compacted, v.Extra, v.Problems)
	}

	again, err := Compact(ctx, out, CompactOptions{})
	if err != nil || !again.Already || again.Removed != 0 || again.Partitions != manifest.PartitionsRemoved {
		t.Fatalf("second compact: %+v, %v", again, err)
	}
	if after := treeShape(t, out); !mapsEqual(after, before) {
		t.Error("a second compact changed the tree")
	}
}

// TestCompactReplaceLater: a compaction made without --replace is
// replaced by a later compact --replace, which first checks every
// compacted file: a damaged one is named and no partition file goes.
func TestCompactReplaceLater(t *testing.T) {
	ctx := context.Background()
	out, _ := compactStudy(t, 3)
	rep, err := Compact(ctx, out, CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Partitions != manifest.PartitionsKept || len(partitionFiles(t, out)) == 0 {
		t.Fatalf("without --replace: partitions %q", rep.Partitions)
	}
	// Bit rot in a compacted file: --replace refuses.
	victim := filepath.Join(out, rep.Files[0].Path)
	flipByte(t, victim, 100)
	n := len(partitionFiles(t, out))
	_, err = Compact(ctx, out, CompactOptions{Replace: true})
	var damage *CompactDamageError
	if !errors.As(err, &damage) || damage.Path != rep.Files[0].Path {
		t.Fatalf("--replace over a damaged compacted file: err = %v, want a CompactDamageError naming %s", err, rep.Files[0].Path)
	}
	if got := len(partitionFiles(t, out)); got != n {
		t.Fatalf("%d partition files left of %d after a refused --replace", got, n)
	}
	if cm := readCompactManifest(t, out); cm.Partitions != manifest.PartitionsKept {
		t.Fatalf("refused --replace: manifest says %q", cm.Partitions)
	}
	flipByte(t, victim, 100)
	rep, err = Compact(ctx, out, CompactOptions{Replace: true})
	if err != nil || !rep.Already || rep.Removed != n || len(partitionFiles(t, out)) != 0 {
		t.Fatalf("--replace: %+v, %v; %d partition files left", rep, err, len(partitionFiles(t, out)))
	}
}

// TestCompactReplacedDamage: after --replace, a compacted file that is
// missing, truncated or altered is named by verify and by the merge
// (which then changes nothing), never reported as lost partition files.
func TestCompactReplacedDamage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, name string)
		kind   ProblemKind
		full   bool // found only by hashing
	}{
		{"missing", func(t *testing.T, name string) {
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
		}, ProblemLost, false},
		{"truncated", func(t *testing.T, name string) {
			if err := os.Truncate(name, 100); err != nil {
				t.Fatal(err)
			}
		}, ProblemSize, false},
		{"altered", func(t *testing.T, name string) { flipByte(t, name, 200) }, ProblemChecksum, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := compactStudy(t, 2)
			rep, err := Compact(ctx, out, CompactOptions{Replace: true})
			if err != nil {
				t.Fatal(err)
			}
			bad := rep.Files[len(rep.Files)-1].Path
			tc.damage(t, filepath.Join(out, bad))
			before := treeShape(t, out)
			level := VerifySize
			if tc.full {
				level = VerifyFull
			}
			v, err := VerifyMerged(ctx, out, Options{Verify: level})
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || len(v.Problems) != 1 || v.Problems[0].Kind != tc.kind || v.Problems[0].Path != bad {
				t.Fatalf("verify: ok %v, problems %v; want one %s problem naming %s", v.OK, v.Problems, tc.kind, bad)
			}
			mr, err := Run(ctx, out, Options{Verify: level})
			if err != nil {
				t.Fatal(err)
			}
			if mr.ExitCode() != 2 || len(mr.Problems) != 1 || mr.Problems[0].Path != bad {
				t.Fatalf("merge: exit %d, problems %v; want exit 2 naming %s", mr.ExitCode(), mr.Problems, bad)
			}
			// A damaged study loses its _SUCCESS marker (as when a
			// partition file is damaged), and nothing else changes.
			success := path.Join(layout.SimDir, layout.SuccessName)
			if _, ok := before[success]; !ok {
				t.Fatal("no _SUCCESS before the merge")
			}
			delete(before, success)
			if after := treeShape(t, out); !mapsEqual(after, before) {
				for k := range after {
					if _, ok := before[k]; !ok {
						t.Errorf("the merge created %s", k)
					} else if before[k] != after[k] {
						t.Errorf("the merge changed %s", k)
					}
				}
				for k := range before {
					if _, ok := after[k]; !ok {
						t.Errorf("the merge removed %s", k)
					}
				}
			}
		})
	}
}

// TestVerifyCompacted: verify checks compacted/ beside kept partitions:
// its files' sizes and checksums, its row counts against
// simulation/_files.csv, strays a glob would read, and a compaction left
// stale by a later merge.
func TestVerifyCompacted(t *testing.T) {
	ctx := context.Background()
	out, _ := compactStudy(t, 3)
	rep, err := Compact(ctx, out, CompactOptions{TargetSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyMerged(ctx, out, Options{Verify: VerifyFull})
	if err != nil || !v.OK || v.Compacted == nil || v.Compacted.Files != len(rep.Files) || v.Compacted.Partitions != manifest.PartitionsKept || v.Compacted.Replaced != 0 {
		t.Fatalf("verify: %+v (compacted %+v), %v", v, v.Compacted, err)
	}
	// A stray part: an Extra, as under simulation/.
	stray := layout.CompactPart("hydros", 90)
	if err := os.WriteFile(filepath.Join(out, stray), []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err = VerifyMerged(ctx, out, Options{})
	if err != nil || !v.OK || len(v.Extra) != 1 || v.Extra[0] != stray {
		t.Fatalf("stray part: ok %v, extra %v, %v", v.OK, v.Extra, err)
	}
	if err := os.Remove(filepath.Join(out, stray)); err != nil {
		t.Fatal(err)
	}
	// A manifest whose rows disagree with the index (well formed, so
	// only the cross-check can tell).
	cmPath := filepath.Join(out, layout.CompactManifestFile)
	orig, err := os.ReadFile(cmPath)
	if err != nil {
		t.Fatal(err)
	}
	cm := readCompactManifest(t, out)
	cm.Files[0].Rows++
	cm.Files[0].RowGroups[0].Rows++
	body, err := manifest.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cmPath, body, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err = VerifyMerged(ctx, out, Options{})
	if err != nil || v.OK || len(v.Problems) != 1 || v.Problems[0].Kind != ProblemIndex || v.Problems[0].Path != cm.Files[0].Path {
		t.Fatalf("rows off by one: ok %v, problems %v, %v", v.OK, v.Problems, err)
	}
	// A manifest that does not decode strictly.
	if err := os.WriteFile(cmPath, append(orig[:len(orig)-2:len(orig)-2], []byte(`,"x":1}`)...), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err = VerifyMerged(ctx, out, Options{})
	if err != nil || v.OK || len(v.Problems) != 1 || v.Problems[0].Path != layout.CompactManifestFile {
		t.Fatalf("unknown key: ok %v, problems %v, %v", v.OK, v.Problems, err)
	}
	if err := os.WriteFile(cmPath, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	// Stale: made from another dataset (as after a merge that changed
	// it): no damage while the partitions are kept, but said.
	cm = readCompactManifest(t, out)
	cm.DatasetXXH64 = "0123456789abcdef"
	body, _ = manifest.Marshal(cm)
	if err := os.WriteFile(cmPath, body, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err = VerifyMerged(ctx, out, Options{})
	if err != nil || !v.OK || v.Compacted == nil || !v.Compacted.Stale {
		t.Fatalf("stale: ok %v, compacted %+v, problems %v, %v", v.OK, v.Compacted, v.Problems, err)
	}
}

// TestCompactReplaceCrashPoints: compact --replace killed after every
// file-system operation, as a process death and as a power cut: no
// partition file is ever gone unless a durable manifest saying
// "removed" lists intact compacted files, and a rerun finishes with
// exactly the uninterrupted run's files and no partition file left.
func TestCompactReplaceCrashPoints(t *testing.T) {
	const out = "/out"
	base, sources := memStudy(t, 2, out)
	ctx := context.Background()
	dead := func(int) bool { return false }
	opts := func(m *vfs.Mem) CompactOptions {
		return CompactOptions{FS: m, Alive: dead, TargetSize: 6 << 10, RowGroupRows: 12, Replace: true}
	}
	ref := base.Clone()
	if _, err := Compact(ctx, out, opts(ref)); err != nil {
		t.Fatal(err)
	}
	want := memParts(t, ref, out)
	gone := func(m *vfs.Mem) int {
		n := 0
		for _, s := range sources {
			if _, err := m.ReadFile(s); err != nil {
				n++
			}
		}
		return n
	}
	// Once compact returns, the removals are durable: a power cut brings
	// no partition file back.
	if n := gone(ref.CrashClone(vfs.CrashOptions{})); n != len(sources) {
		t.Fatalf("a power cut after compact --replace returned brings back %d partition files", len(sources)-n)
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
			if n := gone(after.m); n > 0 {
				raw, err := after.m.ReadFile(path.Join(out, layout.CompactManifestFile))
				if err != nil {
					t.Fatalf("crash after op %d, %s: %d partition files gone and no compaction manifest", k, after.name, n)
				}
				cm, err := manifest.ReadCompactManifest(layout.CompactManifestFile, raw)
				if err != nil || cm.Partitions != manifest.PartitionsRemoved {
					t.Fatalf("crash after op %d, %s: %d partition files gone, manifest %v (%v)", k, after.name, n, cm, err)
				}
				for _, f := range cm.Files {
					if got, err := after.m.ReadFile(path.Join(out, f.Path)); err != nil || string(got) != want[f.Path] {
						t.Fatalf("crash after op %d, %s: partition files gone and %s is missing or differs (%v)", k, after.name, f.Path, err)
					}
				}
			}
			_, err := compactAgain(t, ctx, out, opts(after.m))
			if err != nil {
				t.Fatalf("crash after op %d, %s: rerun: %v", k, after.name, err)
			}
			if got := memParts(t, after.m, out); !mapsEqual(got, want) {
				t.Fatalf("crash after op %d, %s: rerun made other files than an uninterrupted compaction", k, after.name)
			}
			if n := gone(after.m); n != len(sources) {
				t.Fatalf("crash after op %d, %s: rerun left %d partition files", k, after.name, len(sources)-n)
			}
		}
	}
	t.Logf("%d crash points, each as a process death and a power cut", points)
	if points < 40 {
		t.Errorf("only %d crash points", points)
	}
}
