package merge

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// VerifyReport is the result of checking a merged directory against its
// integrity index, without the journals.
type VerifyReport struct {
	Dir      string    `json:"dir"`
	OK       bool      `json:"ok"`
	Status   string    `json:"status"` // the manifest's status
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	Full     bool      `json:"full"`
	Problems []Problem `json:"problems,omitempty"`
	Extra    []string  `json:"extra,omitempty"` // data files the index does not list
}

// Human renders the verification for a terminal, naming every bad file.
func (v *VerifyReport) Human() string {
	var b strings.Builder
	how := "size"
	if v.Full {
		how = "size and xxh64"
	}
	verdict := "OK"
	if !v.OK {
		verdict = "DAMAGED"
	}
	fmt.Fprintf(&b, "%s: %s (%d files, %s, checked by %s; manifest status %s)\n", v.Dir, verdict, v.Files, humanBytes(v.Bytes), how, v.Status)
	for _, p := range v.Problems {
		fmt.Fprintf(&b, "  BAD    %s\n", p)
	}
	for _, e := range v.Extra {
		fmt.Fprintf(&b, "  EXTRA  %s is not in the index: not part of the dataset, but table globs will read it (merge-shards --gc removes it)\n", e)
	}
	return b.String()
}

// VerifyMerged checks every file listed in simulation/_files.csv: that it
// exists with the listed size and, with full, the listed XXH64; and that
// the index itself matches the manifest's dataset checksum. It changes
// nothing.
// opts.Verify selects the level (VerifyFull hashes every file); GC and
// Strict are ignored.
func VerifyMerged(ctx context.Context, out string, opts Options) (*VerifyReport, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	fsys, full := opts.FS, opts.Verify == VerifyFull
	v := &VerifyReport{Dir: out, Full: full}
	mPath := layout.Join(out, path.Join(layout.SimDir, layout.ManifestName))
	raw, err := vfs.ReadFile(fsys, mPath, maxDocument)
	var m *manifest.SimManifest
	if err == nil {
		m, err = manifest.ReadSimManifest(mPath, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("not a merged directory (run merge-shards first): %w", err)
	}
	v.Status = m.Status
	indexPath := layout.Join(out, path.Join(layout.SimDir, layout.IndexName))
	data, err := vfs.ReadFile(fsys, indexPath, maxIndex)
	if err != nil {
		return nil, fmt.Errorf("reading the integrity index: %w", err)
	}
	header, rows, _ := strings.Cut(string(data), "\n")
	if header != strings.Join(indexHeader, ",") {
		v.Problems = append(v.Problems, Problem{Kind: ProblemIndex, Path: indexPath, Detail: fmt.Sprintf("header %q, want %q", header, strings.Join(indexHeader, ","))})
		return v, nil
	}
	if got := manifest.FormatXXH64(xxhash.Sum64String(rows)); got != m.DatasetXXH64 {
		v.Problems = append(v.Problems, Problem{Kind: ProblemIndex, Path: indexPath, Detail: fmt.Sprintf("dataset xxh64 %s, the manifest says %s: the index was altered", got, m.DatasetXXH64)})
	}
	recs, err := csv.NewReader(strings.NewReader(rows)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", indexPath, err)
	}
	listed := map[string]bool{}
	var jobs []*hashJob
	for i, r := range recs {
		if len(r) != len(indexHeader) {
			return nil, fmt.Errorf("%s line %d: %d fields, want %d", indexPath, i+2, len(r), len(indexHeader))
		}
		size, err1 := strconv.ParseInt(r[4], 10, 64)
		sc, err2 := strconv.Atoi(r[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s line %d: bad number", indexPath, i+2)
		}
		rec := manifest.FileRecord{Path: r[0], Entity: r[1], Bytes: size, XXH64: r[5]}
		listed[rec.Path] = true
		v.Files++
		v.Bytes += size
		st, err := fsys.Stat(layout.Join(out, rec.Path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			v.Problems = append(v.Problems, Problem{Kind: ProblemLost, Path: rec.Path, Scenario: intp(sc), Detail: "missing"})
		case err != nil:
			return nil, err
		case st.Size() != size:
			v.Problems = append(v.Problems, Problem{Kind: ProblemSize, Path: rec.Path, Scenario: intp(sc), Detail: fmt.Sprintf("%d bytes, the index says %d", st.Size(), size)})
		case full:
			jobs = append(jobs, &hashJob{rel: rec.Path, want: rec})
		}
	}
	if err := hashAll(ctx, fsys, out, jobs, opts.Workers, progressLine(opts.Progress)); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if j.err != nil {
			return nil, fmt.Errorf("verifying %s: %w", j.rel, j.err)
		}
		if !matches(j.got, j.want) {
			v.Problems = append(v.Problems, Problem{Kind: ProblemChecksum, Path: j.rel, Detail: fmt.Sprintf("xxh64 %016x, the index says %s", j.got.XXH64, j.want.XXH64)})
		}
	}
	onDisk, err := walkData(fsys, out)
	if err != nil {
		return nil, err
	}
	for _, p := range sortedKeys(onDisk) {
		if !listed[p] {
			v.Extra = append(v.Extra, p)
		}
	}
	// An extra data file is no damage to the dataset, and the merge that
	// wrote the index reported it and kept it (--gc removes it): a warning
	// here too, so that merge and verify agree on what is OK.
	v.OK = len(v.Problems) == 0
	return v, nil
}
