package merge

// A study compacted with --replace: its partition files are gone, their
// rows are in compacted/. The merge and verify must neither call those
// files lost nor recreate their directories; they check the compacted
// files instead.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// compactCover is what a compaction that replaced the partition files
// vouches for: the partition files of simulation/_files.csv (by path,
// with their size and XXH64) and the compacted files that hold their rows.
type compactCover struct {
	manifest *CompactManifest
	files    map[string]source
}

// covers reports whether f, a committed partition file missing from
// disk, is one the compaction replaced: the very bytes the index lists.
func (c *compactCover) covers(f manifest.FileRecord) bool {
	if c == nil {
		return false
	}
	s, ok := c.files[f.Path]
	return ok && s.bytes == f.Bytes && s.xxh64 == f.XXH64
}

// readCompactCover returns, for the merge, the cover of a study compacted
// with --replace (see coverOf), nil for any other (none merged yet, not
// compacted, partitions kept). A compaction manifest or index that does
// not check out is a *CompactDamageError: the partition files may be
// gone, so nothing can be judged lost or kept until someone looks.
func readCompactCover(fsys vfs.FS, out string) (*compactCover, error) {
	cm, err := loadCompaction(fsys, out)
	if cm == nil || err != nil || cm.Partitions != manifest.PartitionsRemoved {
		return nil, err
	}
	mPath := layout.Join(out, path.Join(layout.SimDir, layout.ManifestName))
	raw, err := vfs.ReadFile(fsys, mPath, maxDocument)
	var m *manifest.SimManifest
	if err == nil {
		m, err = manifest.ReadSimManifest(mPath, raw)
	}
	if err != nil {
		// A compaction that replaced the partitions of a study whose
		// manifest does not read cannot be matched.
		return nil, &CompactDamageError{Path: path.Join(layout.SimDir, layout.ManifestName), Detail: err.Error() + " (and " + layout.CompactManifestFile + " says the partition files were removed)"}
	}
	if err := replacedBy(m, cm); err != nil {
		return nil, err
	}
	srcs, err := readIndex(fsys, out, m)
	if err != nil {
		return nil, err
	}
	return coverOf(cm, srcs), nil
}

// replacedBy checks that cm, which removed the partition files, was made
// from the dataset m describes.
func replacedBy(m *manifest.SimManifest, cm *CompactManifest) error {
	if cm.DatasetXXH64 != m.DatasetXXH64 {
		return &CompactDamageError{Path: layout.CompactManifestFile, Detail: fmt.Sprintf("replaced the partition files of dataset_xxh64 %s, but simulation/_manifest.json says %s: the study changed after compact --replace", cm.DatasetXXH64, m.DatasetXXH64)}
	}
	return nil
}

// coverOf is what cm, which removed the partition files, vouches for:
// the index's files srcs.
func coverOf(cm *CompactManifest, srcs []source) *compactCover {
	c := &compactCover{manifest: cm, files: make(map[string]source, len(srcs))}
	for _, s := range srcs {
		c.files[s.rel] = s
	}
	return c
}

// indexSources is the path, size and XXH64 of every well-formed row of
// simulation/_files.csv (verify reports the others).
func indexSources(recs [][]string) []source {
	srcs := make([]source, 0, len(recs))
	for _, r := range recs {
		if len(r) != len(indexHeader) {
			continue
		}
		if size, err := strconv.ParseInt(r[4], 10, 64); err == nil {
			srcs = append(srcs, source{rel: r[0], entity: r[1], bytes: size, xxh64: r[5]})
		}
	}
	return srcs
}

// checkCompacted checks the compacted files of c against their manifest:
// each must exist with its size and, when full, its XXH64. It returns one
// problem per bad file; they name the compacted file.
func checkCompacted(ctx context.Context, fsys vfs.FS, out string, cm *CompactManifest, full bool) ([]Problem, error) {
	var problems []Problem
	for _, f := range cm.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := layout.Join(out, f.Path)
		st, err := fsys.Stat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, Problem{Kind: ProblemLost, Path: f.Path, Detail: fmt.Sprintf("missing: %s lists it and the partition files of scenarios %d-%d of %s were removed (compact --replace)", layout.CompactManifestFile, f.FirstScenario, f.LastScenario, f.Entity)})
			continue
		case err != nil:
			return nil, err
		case st.Size() != f.Bytes:
			problems = append(problems, Problem{Kind: ProblemSize, Path: f.Path, Detail: fmt.Sprintf("%d bytes, %s says %d", st.Size(), layout.CompactManifestFile, f.Bytes)})
			continue
		}
		if !full {
			continue
		}
		got, err := vfs.HashFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("verifying %s: %w", f.Path, err)
		}
		if manifest.FormatXXH64(got.XXH64) != f.XXH64 {
			problems = append(problems, Problem{Kind: ProblemChecksum, Path: f.Path, Detail: fmt.Sprintf("xxh64 %016x, %s says %s", got.XXH64, layout.CompactManifestFile, f.XXH64)})
		}
	}
	return problems, nil
}

// verifyCompacted checks compacted/ for verify (cm: its manifest, nil when
// there is none): that it was made from the merged dataset (else it is stale, which is no
// damage while the partition files are kept); that its files account for
// exactly the rows simulation/_files.csv lists, per entity and scenario
// range; every compacted file's size (and with full its XXH64); and that
// nothing else sits under compacted/, where a table glob would read it.
// replaced is how many listed partition files --replace removed.
func (v *VerifyReport) verifyCompacted(ctx context.Context, fsys vfs.FS, out string, m *manifest.SimManifest, cm *CompactManifest, recs [][]string, full bool, replaced int) error {
	if cm == nil {
		// Parts without a manifest: an interrupted compaction, which the
		// next compact finishes; meanwhile a glob would read them.
		return v.compactedStrays(fsys, out, nil)
	}
	vc := &VerifyCompacted{Partitions: cm.Partitions, Replaced: replaced}
	v.Compacted = vc
	if cm.DatasetXXH64 != m.DatasetXXH64 {
		// With the partitions removed, verify reported it (replacedBy).
		vc.Stale = true
		return v.compactedStrays(fsys, out, cm)
	}
	// Rows per entity and scenario, as the index lists them, in
	// scenario order: each compacted file's range is a slice of it.
	type scenarioRows struct {
		scenario int
		rows     int64
		covered  bool
	}
	byEntity := map[string][]scenarioRows{}
	for _, r := range recs {
		sc, err1 := strconv.Atoi(r[2])
		n, err2 := strconv.ParseInt(r[3], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s: bad number in %q", path.Join(layout.SimDir, layout.IndexName), r)
		}
		byEntity[r[1]] = append(byEntity[r[1]], scenarioRows{scenario: sc, rows: n})
	}
	for _, list := range byEntity {
		slices.SortFunc(list, func(a, b scenarioRows) int { return a.scenario - b.scenario })
	}
	for _, f := range cm.Files {
		list := byEntity[f.Entity]
		lo, _ := slices.BinarySearchFunc(list, f.FirstScenario, func(e scenarioRows, t int) int { return e.scenario - t })
		var n int64
		scenarios := 0
		for i := lo; i < len(list) && list[i].scenario <= f.LastScenario; i++ {
			n += list[i].rows
			scenarios++
			list[i].covered = true
		}
		if n != f.Rows || scenarios != f.Scenarios {
			v.Problems = append(v.Problems, Problem{Kind: ProblemIndex, Path: f.Path,
				Detail: fmt.Sprintf("%s says %d rows of %d scenarios (%d-%d), simulation/_files.csv lists %d rows of %d", layout.CompactManifestFile, f.Rows, f.Scenarios, f.FirstScenario, f.LastScenario, n, scenarios)})
		}
	}
	for _, entity := range sortedKeys(byEntity) {
		for _, e := range byEntity[entity] {
			if !e.covered {
				v.Problems = append(v.Problems, Problem{Kind: ProblemIndex, Path: layout.CompactManifestFile, Scenario: intp(e.scenario),
					Detail: fmt.Sprintf("no compacted file holds %s scenario %d, which simulation/_files.csv lists", entity, e.scenario)})
			}
		}
	}
	problems, err := checkCompacted(ctx, fsys, out, cm, full)
	if err != nil {
		return err
	}
	v.Problems = append(v.Problems, problems...)
	for _, f := range cm.Files {
		vc.Files++
		vc.Bytes += f.Bytes
	}
	return v.compactedStrays(fsys, out, cm)
}

// compactedStrays lists as Extra every file under compacted/ that cm
// (nil: no manifest) does not list: a glob over compacted/<entity>/ would
// read it. Links and special files are layout problems.
func (v *VerifyReport) compactedStrays(fsys vfs.FS, out string, cm *CompactManifest) error {
	listed := map[string]bool{layout.CompactManifestFile: true}
	if cm != nil {
		for _, f := range cm.Files {
			listed[f.Path] = true
		}
	}
	t, err := walkTree(fsys, out, layout.CompactDir)
	if err != nil {
		return err
	}
	for _, rel := range sortedKeys(t.files) {
		if !listed[rel] {
			v.Extra = append(v.Extra, rel)
		}
	}
	for _, e := range t.odd {
		if e.mode&fs.ModeSymlink != 0 {
			v.Problems = addLinkProblem(v.Problems, e.rel)
		} else {
			v.add(ProblemLayout, e.rel, "%s", e.problem())
		}
	}
	return nil
}
