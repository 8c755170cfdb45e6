package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

// hostileBases are the studies the layout cases start from, written once:
// a finished run (simulation, training and a checkpoint) not merged yet,
// and the same run merged.
type hostileBases struct {
	raw, merged string
	commit      manifest.CommitInfo // the first commit of the simulation journal
}

func newHostileBases(t *testing.T) hostileBases {
	t.Helper()
	var b hostileBases
	b.raw = t.TempDir()
	runSimrank(t, nil, "--out", b.raw, "--scenarios", "3", "--rank", "0", "--world", "1", "--iterations", "2", "--checkpoint-every", "2", "--quiet")
	for _, p := range journalPaths(t, b.raw) {
		if strings.Contains(filepath.Base(p), "."+layout.TrainingTag+".") {
			continue
		}
		for _, r := range readRecords(t, p) {
			if r.Commit != nil {
				b.commit = *r.Commit
				break
			}
		}
	}
	if len(b.commit.Files) == 0 {
		t.Fatal("no commit in the simulation journal")
	}
	b.merged = copyTree(t, b.raw)
	wantExit(t, mergeShards(t, b.merged), 0)
	return b
}

// outsideChanged fails the test when anything under root but outside
// root/out differs between two snapshots of root.
func outsideChanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	in := func(p string) bool { return p == "out" || strings.HasPrefix(p, "out"+string(filepath.Separator)) }
	for p, v := range before {
		if !in(p) && after[p] != v {
			t.Fatalf("%s outside OUT changed: %q -> %q", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !in(p) {
			t.Fatalf("%s appeared outside OUT", p)
		}
	}
}

// linkAway moves OUT/rel out of OUT, next to it, and puts a symbolic link
// to the moved copy in its place: what a careless user or another process
// could do. It returns the moved copy's path.
func linkAway(t *testing.T, root, out, rel string) string {
	t.Helper()
	away := filepath.Join(root, "away-"+strings.ReplaceAll(rel, "/", "_"))
	if err := os.Rename(filepath.Join(out, rel), away); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(away, filepath.Join(out, rel)); err != nil {
		t.Fatal(err)
	}
	return away
}

// TestSymlinksInsideOUT: a symbolic link (or a special file) where the
// layout has a directory or file, at each level of the layout, is a
// named problem: exit 2, the problem names the link, nothing outside OUT
// changes (the link's target included) and nothing inside is lost (only
// a stale _SUCCESS is removed, as for any corrupt outcome).
func TestSymlinksInsideOUT(t *testing.T) {
	t.Parallel()
	b := newHostileBases(t)
	f := b.commit.Files[0]
	entityDir := filepath.Dir(filepath.Dir(f.Path))
	partition := filepath.Dir(f.Path)
	cases := []struct {
		name   string
		merged bool                                 // start from the merged study
		plant  func(t *testing.T, root, out string) // returns nothing; plants the hostile entry
		names  string                               // the path the problem names
	}{
		{"entity directory", false, func(t *testing.T, root, out string) { linkAway(t, root, out, entityDir) }, entityDir},
		{"partition directory", false, func(t *testing.T, root, out string) { linkAway(t, root, out, partition) }, partition},
		{"data file", false, func(t *testing.T, root, out string) { linkAway(t, root, out, f.Path) }, f.Path},
		{"partition directory of a commit to roll forward", false, func(t *testing.T, root, out string) {
			// The commit's file waits in its temp (a crash between the
			// commit record and the rename); its partition directory is a
			// link to an empty directory outside: publishing must not
			// write there.
			if err := os.Rename(filepath.Join(out, f.Path), filepath.Join(out, f.Temp)); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(out, partition)); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(out, partition), 0o755); err != nil {
				t.Fatal(err)
			}
			linkAway(t, root, out, partition)
		}, partition},
		{"temp file of a commit to roll forward", false, func(t *testing.T, root, out string) {
			if err := os.Rename(filepath.Join(out, f.Path), filepath.Join(out, f.Temp)); err != nil {
				t.Fatal(err)
			}
			linkAway(t, root, out, f.Temp)
		}, f.Temp},
		{"_shards", false, func(t *testing.T, root, out string) { linkAway(t, root, out, layout.ShardsDir) }, layout.ShardsDir},
		{"journal directory", false, func(t *testing.T, root, out string) { linkAway(t, root, out, layout.JournalDir) }, layout.JournalDir},
		{"journal file", false, func(t *testing.T, root, out string) {
			j := journalPaths(t, out)[0]
			linkAway(t, root, out, filepath.ToSlash(strings.TrimPrefix(j, out+"/")))
		}, layout.JournalDir + "/"},
		{"temp directory", false, func(t *testing.T, root, out string) {
			if err := os.Rename(filepath.Join(out, f.Path), filepath.Join(out, f.Temp)); err != nil {
				t.Fatal(err)
			}
			linkAway(t, root, out, layout.TempDir)
		}, layout.TempDir},
		{"checkpoint fragment directory", false, func(t *testing.T, root, out string) { linkAway(t, root, out, layout.PolicyShardDir) }, layout.PolicyShardDir},
		{"checkpoint fragment", false, func(t *testing.T, root, out string) {
			var frag string
			err := filepath.WalkDir(filepath.Join(out, layout.PolicyShardDir), func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && frag == "" {
					frag = p
				}
				return err
			})
			if err != nil || frag == "" {
				t.Fatalf("no fragment: %v", err)
			}
			linkAway(t, root, out, filepath.ToSlash(strings.TrimPrefix(frag, out+"/")))
		}, layout.PolicyShardDir + "/"},
		{"training/timing", true, func(t *testing.T, root, out string) { linkAway(t, root, out, "training/timing") }, "training/timing"},
		{"training/dictionaries", true, func(t *testing.T, root, out string) { linkAway(t, root, out, layout.DictDir) }, layout.DictDir},
		{"policy stage file", true, func(t *testing.T, root, out string) {
			linkAway(t, root, out, layout.PolicyStageFile("cuts", 0))
		}, layout.PolicyStageFile("cuts", 0)},
		{"a FIFO where a data file goes", false, func(t *testing.T, root, out string) {
			p := filepath.Join(out, entityDir, layout.Partition(0, 99))
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(filepath.Join(p, layout.DataFileName), 0o644); err != nil {
				t.Fatal(err)
			}
		}, filepath.Join(entityDir, layout.Partition(0, 99), layout.DataFileName)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			out := filepath.Join(root, "out")
			from := b.raw
			if c.merged {
				from = b.merged
			}
			if err := os.Rename(copyTree(t, from), out); err != nil {
				t.Fatal(err)
			}
			c.plant(t, root, out)
			before, outside := snapshot(t, out), snapshot(t, root)
			r := mergeShards(t, out)
			wantExit(t, r, 2)
			if !strings.Contains(r.stdout, "PROBLEM      layout: "+c.names) || !strings.Contains(r.stdout, "link") && !strings.Contains(r.stdout, "special file") {
				t.Fatalf("want a layout problem naming %s:\n%s", c.names, r)
			}
			sameSnapshot(t, "a merge refusing a link", before, snapshot(t, out),
				filepath.Join(layout.SimDir, layout.SuccessName), filepath.Join(layout.TrainingDir, layout.SuccessName))
			outsideChanged(t, outside, snapshot(t, root))
			// verify (read-only) names it too, when there is a merged study.
			if c.merged {
				v := mergeShards(t, "verify", out)
				if v.code == 0 || !strings.Contains(v.stdout, c.names) {
					t.Fatalf("verify does not name %s:\n%s", c.names, v)
				}
			}
		})
	}
}

// TestAllowedLinks: OUT itself, and its simulation/ (TestSymlinkedSimulation),
// training/ and policy/ directories, may be links to another disk: the
// merge gives the same results as without the link.
func TestAllowedLinks(t *testing.T) {
	t.Parallel()
	b := newHostileBases(t)
	want := map[string]map[string]string{}
	for _, dir := range []string{layout.SimDir, layout.TrainingDir, layout.PolicyDir} {
		want[dir] = contentOnly(snapshot(t, filepath.Join(b.merged, dir)))
	}
	for _, link := range []string{".", layout.TrainingDir, layout.PolicyDir} {
		t.Run(link, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			out := filepath.Join(root, "out")
			if err := os.Rename(copyTree(t, b.raw), out); err != nil {
				t.Fatal(err)
			}
			arg := out
			if link == "." {
				arg = filepath.Join(root, "link-to-out")
				if err := os.Symlink(out, arg); err != nil {
					t.Fatal(err)
				}
			} else {
				disk := filepath.Join(root, "disk")
				if err := os.Mkdir(disk, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(disk, filepath.Join(out, link)); err != nil {
					t.Fatal(err)
				}
			}
			wantExit(t, mergeShards(t, arg), 0)
			for dir, w := range want {
				if got := contentOnly(snapshot(t, filepath.Join(out, dir)+"/.")); !sameContent(w, got) {
					t.Fatalf("%s through a link to %s differs from a merge without it:\nwant %v\ngot  %v", dir, link, w, got)
				}
			}
			wantExit(t, mergeShards(t, "verify", "--full", arg), 0)
		})
	}
}

func sameContent(a, b map[string]string) bool { return len(diffSnapshots(a, b)) == 0 }

// TestStrayFilesAtEachLevel: a file no commit claims, under simulation/
// at any depth, or a .parquet under training/ the merge does not write,
// is moved out of the dataset to _shards/unclaimed/<its path> (never
// deleted), the directories it leaves empty are removed, the report names
// it, and the merge completes: afterwards every .parquet a glob reads is
// one the merge vouches for.
func TestStrayFilesAtEachLevel(t *testing.T) {
	t.Parallel()
	b := newHostileBases(t)
	f := b.commit.Files[0]
	entityDir := filepath.Dir(filepath.Dir(f.Path))
	strays := []struct {
		rel     string
		removed string // a directory the quarantine must remove (left empty)
	}{
		{entityDir + "/" + layout.Partition(0, 99) + "/" + layout.DataFileName, entityDir + "/" + layout.Partition(0, 99)},
		{entityDir + "/extra.parquet", ""},
		{layout.SimDir + "/extra.parquet", ""},
		{layout.SimDir + "/zz_unknown/" + layout.Partition(0, 0) + "/" + layout.DataFileName, layout.SimDir + "/zz_unknown"},
		{filepath.Dir(f.Path) + "/second.parquet", ""},
		{filepath.Dir(f.Path) + "/notes.txt", ""},
		{layout.TrainingDir + "/extra.parquet", ""},
		{"training/timing/extra.parquet", ""},
		{layout.DictDir + "/extra.parquet", ""},
		{layout.TrainingDir + "/more/deep.parquet", layout.TrainingDir + "/more"},
	}
	for _, merged := range []bool{false, true} {
		for _, s := range strays {
			name := s.rel
			if merged {
				name += " after a merge"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				root := t.TempDir()
				out := filepath.Join(root, "out")
				from := b.raw
				if merged {
					from = b.merged
				}
				if err := os.Rename(copyTree(t, from), out); err != nil {
					t.Fatal(err)
				}
				copyFile(t, filepath.Join(b.raw, f.Path), filepath.Join(out, s.rel))
				outside := snapshot(t, root)
				rep := mergeJSON(t, 0, out)
				if u := strs(rep["unclaimed"]); len(u) != 1 || u[0] != s.rel {
					t.Fatalf("unclaimed %v, want [%s]", rep["unclaimed"], s.rel)
				}
				mustNotExist(t, filepath.Join(out, s.rel))
				if s.removed != "" {
					mustNotExist(t, filepath.Join(out, s.removed))
				}
				if fileHashOf(t, filepath.Join(b.raw, f.Path)) != fileHashOf(t, filepath.Join(out, layout.Unclaimed(s.rel))) {
					t.Fatal("the quarantined copy differs from the stray file")
				}
				mustExist(t, simPath(out, layout.SuccessName))
				mustExist(t, filepath.Join(out, layout.TrainingDir, layout.SuccessName))
				// Every .parquet left under simulation/ and training/ is the
				// merge's.
				var left []string
				for _, dir := range []string{layout.SimDir, layout.TrainingDir} {
					for rel := range snapshot(t, filepath.Join(out, dir)) {
						if rel := filepath.ToSlash(filepath.Join(dir, rel)); strings.HasSuffix(rel, ".parquet") {
							left = append(left, rel)
						}
					}
				}
				sort.Strings(left)
				v := mergeShards(t, "verify", "--full", out)
				wantExit(t, v, 0)
				if strings.Contains(v.stdout, "EXTRA") {
					t.Fatalf("verify after the quarantine still sees extra files:\n%s", v)
				}
				for _, p := range left {
					if p == s.rel {
						t.Fatalf("%s is still in the dataset", p)
					}
				}
				outsideChanged(t, outside, snapshot(t, root))
			})
		}
	}
}

// strs turns a JSON array of strings into a []string.
func strs(v any) []string {
	a, _ := v.([]any)
	var out []string
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
