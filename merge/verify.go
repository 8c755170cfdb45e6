package merge

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
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
	Extra    []string  `json:"extra,omitempty"` // data files the index does not list, .parquet files under training/ the merge does not write
	// Compacted describes compacted/ when merge-shards compact made it.
	Compacted *VerifyCompacted `json:"compacted,omitempty"`
}

// VerifyCompacted is verify's account of compacted/.
type VerifyCompacted struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Partitions is the compaction manifest's: "kept" or "removed".
	Partitions string `json:"partitions"`
	// Replaced counts the partition files simulation/_files.csv lists
	// that compact --replace removed (their rows are in compacted/).
	Replaced int `json:"replaced"`
	// Stale: made from another dataset than the merged one (a merge
	// changed the study since): readers ignore it; compact again.
	Stale bool `json:"stale,omitempty"`
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
	if c := v.Compacted; c != nil {
		switch {
		case c.Stale:
			fmt.Fprintf(&b, "  compacted/ is STALE: made from another dataset than the merged one; readers ignore it: compact again\n")
		case c.Partitions == manifest.PartitionsRemoved:
			fmt.Fprintf(&b, "  compacted/: %d files, %s, checked by %s; they replace %d partition files (compact --replace)\n", c.Files, humanBytes(c.Bytes), how, c.Replaced)
		default:
			fmt.Fprintf(&b, "  compacted/: %d files, %s, checked by %s, beside the partition files\n", c.Files, humanBytes(c.Bytes), how)
		}
	}
	for _, p := range v.Problems {
		fmt.Fprintf(&b, "  BAD    %s\n", p)
	}
	for _, e := range v.Extra {
		fmt.Fprintf(&b, "  EXTRA  %s is not in the index: not part of the dataset, but table globs will read it (the next merge-shards moves it out to _shards/unclaimed/)\n", e)
	}
	return b.String()
}

// VerifyMerged checks every file listed in simulation/_files.csv: that it
// exists with the listed size and, with full, the listed XXH64; and that
// the index itself matches the manifest's dataset checksum. It checks the
// policy and training outputs the same way: every stage file
// policy/metadata.json lists (plain, or packed as stage_NNN.bin.zst:
// sizes, and with full the decompressed bytes' XXH64), and every table
// training/_manifest.json lists (always hashed: the manifest records no
// sizes). A study without policy/ or training/_manifest.json has nothing
// checked there. Each problem names the file. It changes nothing.
// opts.Verify selects the level (VerifyFull hashes every file); GC and
// Strict are ignored.
func VerifyMerged(ctx context.Context, out string, opts Options) (*VerifyReport, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := confine(&opts, out); err != nil {
		return nil, err
	}
	v := &VerifyReport{Dir: out, Full: opts.Verify == VerifyFull}
	if err := v.verify(ctx, out, opts); err != nil {
		// A link where the layout has a directory or file is a problem
		// of the output, not of the environment.
		link := linkIn([]any{err})
		if link == nil {
			return nil, err
		}
		v.addLink(link)
	}
	v.OK = len(v.Problems) == 0
	return v, nil
}

// verify does VerifyMerged's checks on a confined opts.FS.
func (v *VerifyReport) verify(ctx context.Context, out string, opts Options) error {
	fsys, full := opts.FS, v.Full
	mPath := layout.Join(out, path.Join(layout.SimDir, layout.ManifestName))
	raw, err := vfs.ReadFile(fsys, mPath, maxDocument)
	var m *manifest.SimManifest
	if err == nil {
		m, err = manifest.ReadSimManifest(mPath, raw)
	}
	if err != nil {
		return fmt.Errorf("not a merged directory (run merge-shards first): %w", err)
	}
	v.Status = m.Status
	indexPath := layout.Join(out, path.Join(layout.SimDir, layout.IndexName))
	data, err := vfs.ReadFile(fsys, indexPath, maxIndex)
	if err != nil {
		return fmt.Errorf("reading the integrity index: %w", err)
	}
	header, rows, _ := strings.Cut(string(data), "\n")
	if header != strings.Join(indexHeader, ",") {
		v.Problems = append(v.Problems, Problem{Kind: ProblemIndex, Path: indexPath, Detail: fmt.Sprintf("header %q, want %q", header, strings.Join(indexHeader, ","))})
		return nil
	}
	if got := manifest.FormatXXH64(xxhash.Sum64String(rows)); got != m.DatasetXXH64 {
		v.Problems = append(v.Problems, Problem{Kind: ProblemIndex, Path: indexPath, Detail: fmt.Sprintf("dataset xxh64 %s, the manifest says %s: the index was altered", got, m.DatasetXXH64)})
	}
	recs, err := csv.NewReader(strings.NewReader(rows)).ReadAll()
	if err != nil {
		return fmt.Errorf("%s: %w", indexPath, err)
	}
	// compacted/: its manifest is read once; when it removed the
	// partition files, their index rows (recs) are what it vouches for.
	cm, err := loadCompaction(fsys, out)
	var damage *CompactDamageError
	var cover *compactCover
	switch {
	case errors.As(err, &damage):
	case err != nil:
		return err
	case cm != nil && cm.Partitions == manifest.PartitionsRemoved:
		if err := replacedBy(m, cm); !errors.As(err, &damage) {
			cover = coverOf(cm, indexSources(recs))
		}
	}
	if damage != nil {
		v.Problems = append(v.Problems, Problem{Kind: ProblemIndex, Path: damage.Path, Detail: damage.Detail})
	}
	listed := map[string]bool{}
	var jobs []*hashJob
	replaced := 0
	for i, r := range recs {
		if len(r) != len(indexHeader) {
			return fmt.Errorf("%s line %d: %d fields, want %d", indexPath, i+2, len(r), len(indexHeader))
		}
		size, err1 := strconv.ParseInt(r[4], 10, 64)
		sc, err2 := strconv.Atoi(r[2])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s line %d: bad number", indexPath, i+2)
		}
		rec := manifest.FileRecord{Path: r[0], Entity: r[1], Bytes: size, XXH64: r[5]}
		listed[rec.Path] = true
		v.Files++
		v.Bytes += size
		st, err := fsys.Stat(layout.Join(out, rec.Path))
		switch {
		case errors.Is(err, fs.ErrNotExist) && cover.covers(rec):
			// compact --replace removed it; verifyCompacted checks its rows.
			v.Files--
			v.Bytes -= size
			replaced++
		case errors.Is(err, fs.ErrNotExist):
			v.Problems = append(v.Problems, Problem{Kind: ProblemLost, Path: rec.Path, Scenario: intp(sc), Detail: "missing"})
		case err != nil:
			return err
		case st.Size() != size:
			v.Problems = append(v.Problems, Problem{Kind: ProblemSize, Path: rec.Path, Scenario: intp(sc), Detail: fmt.Sprintf("%d bytes, the index says %d", st.Size(), size)})
		case full:
			jobs = append(jobs, &hashJob{rel: rec.Path, want: rec})
		}
	}
	if err := hashAll(ctx, fsys, out, jobs, opts.Workers, progressLine(opts.Progress)); err != nil {
		return err
	}
	for _, j := range jobs {
		if j.err != nil {
			return fmt.Errorf("verifying %s: %w", j.rel, j.err)
		}
		if !matches(j.got, j.want) {
			v.Problems = append(v.Problems, Problem{Kind: ProblemChecksum, Path: j.rel, Detail: fmt.Sprintf("xxh64 %016x, the index says %s", j.got.XXH64, j.want.XXH64)})
		}
	}
	tr, err := walkData(fsys, out)
	if err != nil {
		return err
	}
	for _, p := range sortedKeys(tr.files) {
		if !listed[p] {
			v.Extra = append(v.Extra, p)
		}
	}
	strays, odd, err := walkTrainingStrays(fsys, out)
	if err != nil {
		return err
	}
	v.Extra = append(v.Extra, strays...)
	for _, e := range append(tr.odd, odd...) {
		if e.mode&fs.ModeSymlink != 0 {
			v.Problems = addLinkProblem(v.Problems, e.rel)
		} else {
			v.add(ProblemLayout, e.rel, "%s", e.problem())
		}
	}
	if damage == nil {
		if err := v.verifyCompacted(ctx, fsys, out, m, cm, recs, full, replaced); err != nil {
			return err
		}
	}
	// An extra data file is no damage to the dataset (the next merge moves
	// it out to _shards/unclaimed/): a warning here, not a problem.
	if err := v.verifyPolicy(ctx, fsys, out, full, opts.Workers); err != nil {
		return err
	}
	if err := v.verifyTraining(ctx, fsys, out); err != nil {
		return err
	}
	return nil
}

// add records a problem; one caused by a symbolic link planted inside OUT
// (an error among args) is a ProblemLayout naming the link.
func (v *VerifyReport) add(kind ProblemKind, rel, format string, args ...any) {
	if link := linkIn(args); link != nil {
		v.addLink(link)
		return
	}
	v.Problems = append(v.Problems, Problem{Kind: kind, Path: rel, Detail: fmt.Sprintf(format, args...)})
}

// addLink records the ProblemLayout of link, once.
func (v *VerifyReport) addLink(link *vfs.SymlinkError) {
	rel, err := filepath.Rel(v.Dir, link.Path)
	if err != nil {
		rel = link.Path
	}
	v.Problems = addLinkProblem(v.Problems, filepath.ToSlash(rel))
}

// verifyPolicy checks every stage file policy/metadata.json lists
// ("files"), plain or packed (policy.CheckStageFile: sizes; with full the
// bytes, a .zst decompressed into at most the listed size), and
// metadata.json itself against the SHA-256 training/metadata.json
// recorded for it. No policy/ directory: nothing to check.
func (v *VerifyReport) verifyPolicy(ctx context.Context, fsys vfs.FS, out string, full bool, workers int) error {
	dir := layout.Join(out, layout.PolicyDir)
	if _, err := fsys.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	raw, err := vfs.ReadFile(fsys, layout.Join(out, layout.PolicyMetadataFile), maxDocument)
	if errors.Is(err, fs.ErrNotExist) {
		v.add(ProblemLost, layout.PolicyMetadataFile, "missing: policy/ holds no committed policy (a merge was interrupted while replacing it: merge again)")
		return nil
	}
	if err != nil {
		var tl *vfs.TooLargeError
		if errors.As(err, &tl) {
			v.add(ProblemIndex, layout.PolicyMetadataFile, "%v", err)
			return nil
		}
		return err
	}
	var md policy.Metadata
	if err := json.Unmarshal(raw, &md); err != nil {
		v.add(ProblemIndex, layout.PolicyMetadataFile, "not valid JSON: %v", err)
		return nil
	}
	if len(md.Files) == 0 {
		v.add(ProblemIndex, layout.PolicyMetadataFile, "no \"files\" checksums to verify the stage files against")
		return nil
	}
	if want := trainingPolicySHA(fsys, out); want != "" {
		if got := sha256hex(raw); got != want {
			v.add(ProblemChecksum, layout.PolicyMetadataFile, "sha256 %s, training/metadata.json data_integrity.policy_sha256 says %s", got, want)
		}
	}
	rels := sortedKeys(md.Files)
	type result struct {
		forms []policy.StageCheck
		err   error
	}
	res := make([]result, len(rels))
	forEach(ctx, len(rels), workers, func(i int) {
		res[i].forms, res[i].err = policy.CheckStageFile(fsys, dir, rels[i], md.Files[rels[i]], full)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, rel := range rels {
		name := path.Join(layout.PolicyDir, rel)
		r := res[i]
		if errors.Is(r.err, policy.ErrMetadata) {
			v.add(ProblemIndex, layout.PolicyMetadataFile, "%v", r.err)
			continue
		}
		if r.err != nil {
			return fmt.Errorf("verifying %s: %w", name, r.err)
		}
		v.Files++
		v.Bytes += md.Files[rel].Bytes
		if len(r.forms) == 0 {
			v.add(ProblemLost, name, "missing (neither it nor its packed %s), listed in policy/metadata.json", policy.PackedExt)
		}
		for _, f := range r.forms {
			if f.Err != nil {
				v.add(stageProblemKind(f.Err), path.Join(layout.PolicyDir, f.File), "%v", f.Err)
			}
		}
	}
	return nil
}

// trainingPolicySHA is the SHA-256 training/metadata.json recorded for
// policy/metadata.json, "" when it recorded none (or is unreadable: the
// training outputs are checked against training/_manifest.json).
func trainingPolicySHA(fsys vfs.FS, out string) string {
	raw, err := vfs.ReadFile(fsys, layout.Join(out, path.Join(layout.TrainingDir, layout.MetadataName)), maxDocument)
	if err != nil {
		return ""
	}
	var md manifest.TrainingMetadata
	if json.Unmarshal(raw, &md) != nil {
		return ""
	}
	return md.DataIntegrity.PolicySHA256[layout.MetadataName]
}

// verifyTraining checks the training tables training/_manifest.json lists
// ("files_xxh64") against their XXH64. The manifest records no sizes, so
// the tables (a row per iteration, or per rank and iteration) are hashed
// at every level: a truncated table is caught by its checksum. No
// training/_manifest.json (a study without training): nothing to check.
func (v *VerifyReport) verifyTraining(ctx context.Context, fsys vfs.FS, out string) error {
	mrel := path.Join(layout.TrainingDir, layout.ManifestName)
	raw, err := vfs.ReadFile(fsys, layout.Join(out, mrel), maxDocument)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		var tl *vfs.TooLargeError
		if errors.As(err, &tl) {
			v.add(ProblemIndex, mrel, "%v", err)
			return nil
		}
		return err
	}
	tm, err := manifest.ReadTrainingManifest(mrel, raw)
	if err != nil {
		v.add(ProblemIndex, mrel, "%v", err)
		return nil
	}
	for _, k := range sortedKeys(tm.Files) {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := path.Join(layout.TrainingDir, k)
		if layout.Check(k) != nil || !layout.IsTrainingOutput(rel) {
			v.add(ProblemIndex, mrel, "files_xxh64 key %q is not a training output the merge writes under %s/", k, layout.TrainingDir)
			continue
		}
		v.Files++
		got, err := vfs.HashFile(fsys, layout.Join(out, rel))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			v.add(ProblemLost, rel, "missing, listed in %s", mrel)
			continue
		case err != nil:
			return fmt.Errorf("verifying %s: %w", rel, err)
		}
		v.Bytes += got.Bytes
		if g := manifest.FormatXXH64(got.XXH64); g != tm.Files[k] {
			v.add(ProblemChecksum, rel, "xxh64 %s (%d bytes), %s says %s", g, got.Bytes, mrel, tm.Files[k])
		}
	}
	return nil
}
