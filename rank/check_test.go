package rank_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// durableState is what the journals of an output directory say.
type durableState struct {
	commits map[int][]manifest.FileRecord // scenario -> files (first commit seen)
	closes  []manifest.CloseInfo
	opens   []manifest.OpenInfo
	order   []int // scenarios in journal order (across files: file by file)
}

func readJournals(t *testing.T, out string) durableState {
	t.Helper()
	st := durableState{commits: map[int][]manifest.FileRecord{}}
	files, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	for _, p := range files {
		_, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			switch {
			case r.Open != nil:
				st.opens = append(st.opens, *r.Open)
			case r.Commit != nil:
				st.order = append(st.order, r.Commit.Scenario)
				if _, ok := st.commits[r.Commit.Scenario]; !ok {
					st.commits[r.Commit.Scenario] = r.Commit.Files
				}
			case r.Close != nil:
				st.closes = append(st.closes, *r.Close)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("journal %s: %v", p, err)
		}
	}
	return st
}

// checkInvariants asserts the crash-safety contract of the commit
// protocol on an output directory:
//
//	(a) every file a reader can see under simulation/ is a complete data
//	    file that some durable commit lists with the same bytes;
//	(b) every durable commit has each of its files either in place or
//	    still in _shards/tmp, with the committed size and checksum.
//
// It returns the committed scenarios.
func checkInvariants(t *testing.T, out string) []int {
	t.Helper()
	st := readJournals(t, out)
	claimed := map[string]manifest.FileRecord{}
	for _, files := range st.commits {
		for _, f := range files {
			claimed[f.Path] = f
		}
	}
	// (a)
	root := filepath.Join(out, layout.SimDir)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if p == root && errors.Is(err, fs.ErrNotExist) {
			return nil // killed before Open made it: nothing is visible
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		f, ok := claimed[rel]
		if !ok {
			t.Errorf("(a) reader-visible file %s is claimed by no durable commit", rel)
			return nil
		}
		if !strings.HasSuffix(rel, "/data.parquet") {
			t.Errorf("(a) unexpected file name %s", rel)
		}
		info, err := vfs.HashFile(vfs.OS(), p)
		if err != nil {
			return err
		}
		if info.Bytes != f.Bytes || manifest.FormatXXH64(info.XXH64) != f.XXH64 {
			t.Errorf("(a) %s has %d bytes xxh64 %016x, commit says %d bytes %s", rel, info.Bytes, info.XXH64, f.Bytes, f.XXH64)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// (b)
	var ids []int
	for s, files := range st.commits {
		ids = append(ids, s)
		for _, f := range files {
			var found bool
			for _, p := range []string{f.Path, f.Temp} {
				info, err := vfs.HashFile(vfs.OS(), filepath.Join(out, p))
				if err != nil {
					continue
				}
				found = true
				if info.Bytes != f.Bytes || manifest.FormatXXH64(info.XXH64) != f.XXH64 {
					t.Errorf("(b) scenario %d: %s has %d bytes xxh64 %016x, commit says %d %s", s, p, info.Bytes, info.XXH64, f.Bytes, f.XXH64)
				}
				break
			}
			if !found {
				t.Errorf("(b) scenario %d: %s is neither in place nor in %s", s, f.Path, f.Temp)
			}
		}
	}
	sort.Ints(ids)
	return ids
}
