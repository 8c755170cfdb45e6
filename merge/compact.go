package merge

// Compaction (merge-shards compact): a COMPLETE, merged study's simulation
// tables rewritten as a few large Parquet files per table, with scenario_id
// as an Int32 column, beside the partition tree. On a cluster file system
// every open is a metadata round trip: 20,000 small partition files cost an
// analyst seconds per query that one compacted file does not.
//
// Checked, never trusted:
//   - every partition file read is checked against simulation/_files.csv
//     (size and XXH64), itself checked against the manifest's
//     dataset_xxh64, before a byte of it is used;
//   - every compacted file is hashed while written (vfs.WriteNew), fsynced
//     under _shards/tmp, then read back and compared with the partition
//     files (rows per scenario, and an XXH64 of every column of every
//     scenario computed on both sides) before it is published with a
//     no-replace rename (vfs.Dirs.Publish);
//   - compacted/_manifest.json, which lists every compacted file with its
//     size, XXH64 and rows per scenario range, is written last
//     (vfs.Dirs.Replace): compacted files without it are an interrupted
//     compaction, which a rerun finishes (the output is deterministic, so
//     an existing file must be byte-identical to what the rerun makes).
//
//
// With --replace (CompactOptions.Replace) the partition files go, but only
// after every compacted file is verified, published and listed in a
// durable manifest whose "partitions" says "removed": that record is the
// write-ahead intent. A crash while removing leaves some partition files,
// which the next compact removes (a manifest saying "removed" is finished
// whatever the flags); readers, verify and the merge take a manifest
// saying "removed" to mean that a partition file simulation/_files.csv
// lists may be gone, its rows being in compacted/. simulation/_files.csv
// and _manifest.json are not rewritten: they stay the record of what the
// merge vouched for, and the compaction manifest's dataset_xxh64 ties the
// two.

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// Compaction defaults.
const (
	// DefaultCompactTarget is the default size a compacted file grows to
	// (measured in partition-file bytes, which the compacted file's size
	// follows closely: same encoding, one more column).
	DefaultCompactTarget = 256 << 20
)

// CompactOptions tune a compaction.
type CompactOptions struct {
	// TargetSize: a compacted file takes whole scenarios until their
	// partition files add up to this many bytes (default
	// DefaultCompactTarget); a file holds at least one scenario.
	TargetSize int64
	// RowGroupRows caps the rows of a row group (default
	// shard.MaxRowGroupRows). Row groups end at scenario boundaries unless
	// one scenario alone is larger; each has scenario_id statistics, so a
	// filter on scenario_id reads only the row groups that hold it.
	RowGroupRows int64
	// FS is the file system (default vfs.OS()).
	FS vfs.FS
	// Alive tells whether a pid of this host runs, to judge a stale merge
	// lock (default: signal 0).
	Alive func(int) bool
	// Progress receives a line per compacted file; nil for none.
	Progress io.Writer
	// ReEncode makes compaction decode every partition file and encode
	// its rows again instead of copying their compressed pages as they
	// are (pagecopy.go), which it does whenever they qualify: about half
	// the speed; for measurements, and a way around a page-copy problem.
	// The bytes differ, not the rows; both are verified the same way. A
	// rerun after a crash must use the same setting (a published file of
	// the other kind is refused as "other settings").
	ReEncode bool
	// Replace removes the partition files once the compaction is verified
	// and its manifest, saying so, is durable (compact --replace). From
	// then on compacted/ holds the dataset; simulation/_files.csv and
	// _manifest.json still describe the partitions it was made from.
	Replace bool
}

// ErrNotComplete is returned (wrapped, with the study's status) when the
// study is not a complete, merged one: compaction needs every scenario.
var ErrNotComplete = errors.New("not a complete merged study")

// CompactDamageError reports input that failed its check (a partition
// file whose size or XXH64 differs from simulation/_files.csv, an altered
// index, a compacted file that differs from what its manifest says): the
// CLI exits 2. Nothing was published.
type CompactDamageError struct {
	Path   string // relative to OUT
	Detail string
}

func (e *CompactDamageError) Error() string {
	return fmt.Sprintf("%s: %s", e.Path, e.Detail)
}

// The compaction manifest's types live in package manifest, beside the
// simulation's: the reader and verify read them too.
type (
	// CompactManifest is compacted/_manifest.json.
	CompactManifest = manifest.CompactManifest
	// CompactFile is one compacted file.
	CompactFile = manifest.CompactFile
	// CompactRowGroup is one row group's scenario range.
	CompactRowGroup = manifest.CompactRowGroup
)

// CompactReport is what a compaction did.
type CompactReport struct {
	Dir string `json:"dir"`
	// Already: a verified compaction of this very dataset was there (every
	// file's size and XXH64 checked against its manifest): nothing changed.
	Already bool `json:"already_compacted"`
	// Partitions is what became of the partition files:
	// manifest.PartitionsKept or manifest.PartitionsRemoved.
	Partitions string `json:"partitions"`
	// Removed counts the partition files this run removed (--replace).
	Removed     int           `json:"partitions_removed"`
	Scenarios   int           `json:"scenarios"`
	SourceFiles int           `json:"source_files"`
	SourceBytes int64         `json:"source_bytes"`
	Files       []CompactFile `json:"files"`
	Rows        int64         `json:"rows"`
	Bytes       int64         `json:"bytes"`
	Seconds     float64       `json:"seconds"`
}

// Human renders the report for people.
func (r *CompactReport) Human() string {
	var b strings.Builder
	if r.Already {
		fmt.Fprintf(&b, "%s: already compacted (every file verified against %s)\n", r.Dir, layout.CompactManifestFile)
	} else {
		fmt.Fprintf(&b, "%s: compacted %d partition files (%s) into %d files (%s), %d rows of %d scenarios, verified against the partitions, in %.1fs\n",
			r.Dir, r.SourceFiles, humanBytes(r.SourceBytes), len(r.Files), humanBytes(r.Bytes), r.Rows, r.Scenarios, r.Seconds)
	}
	for _, f := range r.Files {
		fmt.Fprintf(&b, "  %s  scenarios %d-%d  %d rows  %d row groups  %s\n", f.Path, f.FirstScenario, f.LastScenario, f.Rows, len(f.RowGroups), humanBytes(f.Bytes))
	}
	if r.Partitions == manifest.PartitionsRemoved {
		fmt.Fprintf(&b, "the partition files are replaced by the compacted files (%d removed by this run); simulation/_files.csv still lists them as merged; the manifest is %s\n", r.Removed, layout.CompactManifestFile)
	} else {
		fmt.Fprintf(&b, "the partition files are unchanged (compact --replace removes them); the manifest is %s\n", layout.CompactManifestFile)
	}
	return b.String()
}

// source is one partition file to compact, as the index lists it.
type source struct {
	rel      string
	entity   string
	scenario int
	rows     int64
	bytes    int64
	xxh64    string
}

// compactPart is one compacted file to make.
type compactPart struct {
	final   string
	entity  string
	sources []source
	temp    string
	written vfs.Written
	// want holds, per scenario, the rows and the hash of each column of
	// the partition file, computed while copying.
	want map[int]*scenarioSums
	rgs  []CompactRowGroup
}

// scenarioSums are a scenario's rows and per-column value hashes.
type scenarioSums struct {
	rows int64
	cols []uint64
}

// Compact compacts the simulation tables of the complete, merged study in
// out into out/compacted (see the top of this file). It holds the merge
// lock while it works, so that no merge runs beside it.
func Compact(ctx context.Context, out string, opts CompactOptions) (*CompactReport, error) {
	start := time.Now()
	if opts.TargetSize <= 0 {
		opts.TargetSize = DefaultCompactTarget
	}
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = shard.MaxRowGroupRows
	}
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	if opts.Alive == nil {
		opts.Alive = lease.ProcessAlive
	}
	fsys, err := vfs.Beneath(opts.FS, out, layout.LinkDirs[:]...)
	if err != nil {
		return nil, err
	}
	// Refuse an incomplete study before taking the lock, which creates
	// _shards/ (nothing is written into a directory that is not a study).
	if _, _, err := readCompleteManifest(fsys, out); err != nil {
		return nil, err
	}
	unlock, err := lock(fsys, out, opts.Alive)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Read again under the lock: a merge may have run in between.
	m, _, err := readCompleteManifest(fsys, out)
	if err != nil {
		return nil, err
	}
	if err := removeCompactTemps(fsys, out); err != nil {
		return nil, err
	}
	srcs, err := readIndex(fsys, out, m)
	if err != nil {
		return nil, err
	}
	rep := &CompactReport{Dir: out, Scenarios: m.Scenarios.Total}
	for _, s := range srcs {
		rep.SourceFiles++
		rep.SourceBytes += s.bytes
	}

	// An existing manifest: verify its files, then finish what it says
	// (remove the partition files it replaces).
	done, err := checkExistingCompaction(fsys, out, m, rep)
	if err != nil {
		return nil, err
	}
	if done != nil {
		if opts.Replace && done.Partitions != manifest.PartitionsRemoved {
			done.Partitions = manifest.PartitionsRemoved
			if err := writeCompactManifest(fsys, out, done); err != nil {
				return nil, err
			}
		}
		rep.Partitions = done.Partitions
		if done.Partitions == manifest.PartitionsRemoved {
			if rep.Removed, err = removePartitions(ctx, fsys, out, srcs); err != nil {
				return nil, err
			}
		}
		rep.Seconds = time.Since(start).Seconds()
		return rep, nil
	}

	// Cheap checks first: a truncated or missing partition file is found
	// before anything is written.
	for _, s := range srcs {
		st, err := fsys.Stat(layout.Join(out, s.rel))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, &CompactDamageError{Path: s.rel, Detail: "missing (simulation/_files.csv lists it): run merge-shards verify"}
		case err != nil:
			return nil, err
		case st.Size() != s.bytes:
			return nil, &CompactDamageError{Path: s.rel, Detail: fmt.Sprintf("%d bytes, simulation/_files.csv says %d: run merge-shards verify", st.Size(), s.bytes)}
		}
	}

	parts := planParts(srcs, opts.TargetSize)
	if err := checkStrayParts(fsys, out, parts); err != nil {
		return nil, err
	}
	dirs := vfs.NewDirs(fsys, out)
	if err := dirs.Ensure(layout.Join(out, layout.TempDir)); err != nil {
		return nil, err
	}
	// Every temp is removed on any failure; published files stay (they are
	// verified, and a rerun finds them byte-identical).
	defer func() {
		for _, p := range parts {
			if p.temp != "" {
				_ = fsys.Remove(layout.Join(out, p.temp))
			}
		}
	}()
	pid := os.Getpid()
	// Write and verify every file under _shards/tmp first: a damaged
	// partition file found while reading leaves nothing published.
	for i, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p.temp = layout.CompactTemp(pid, i, p.final)
		if err := writePart(ctx, fsys, out, p, opts); err != nil {
			return nil, err
		}
		if err := verifyPart(ctx, fsys, out, p, layout.Join(out, p.temp)); err != nil {
			return nil, err
		}
	}
	var files []CompactFile
	for _, p := range parts {
		final := layout.Join(out, p.final)
		err := dirs.Publish(layout.Join(out, p.temp), final)
		if errors.Is(err, fs.ErrExist) {
			// An interrupted compaction published it: it must be exactly
			// what this one made.
			got, herr := vfs.HashFile(fsys, final)
			if herr != nil {
				return nil, herr
			}
			if got != p.written {
				return nil, fmt.Errorf("%s exists and differs from what this compaction makes (%d bytes xxh64 %016x, want %d bytes xxh64 %016x) and %s is missing: left by an interrupted compaction with other settings? Remove %s and compact again",
					p.final, got.Bytes, got.XXH64, p.written.Bytes, p.written.XXH64, layout.CompactManifestFile, layout.Join(out, layout.CompactDir))
			}
			if err := fsys.Remove(layout.Join(out, p.temp)); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		p.temp = ""
		files = append(files, p.record())
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "compacted %s\n", p.final)
		}
	}
	cm := &CompactManifest{
		SchemaVersion: manifest.CompactVersion,
		Producer:      "hydroshard " + manifest.Version,
		Status:        manifest.CompactStatusVerified,
		Partitions:    manifest.PartitionsKept,
		CaseName:      m.CaseName,
		CaseHash:      m.CaseHash,
		DatasetXXH64:  m.DatasetXXH64,
		ScenarioPad:   m.Layout.ScenarioPad,
		Scenarios:     m.Scenarios.Total,
		TargetSize:    opts.TargetSize,
		RowGroupRows:  opts.RowGroupRows,
		Files:         files,
		CompletedAt:   time.Now().UTC().Format(time.RFC3339),
	}
	// Every compacted file is verified and durable under its final name:
	// with --replace the manifest can say so at once, and the partition
	// files go only once it is durable.
	if opts.Replace {
		cm.Partitions = manifest.PartitionsRemoved
	}
	if err := writeCompactManifest(fsys, out, cm); err != nil {
		return nil, err
	}
	rep.Partitions = cm.Partitions
	if opts.Replace {
		if rep.Removed, err = removePartitions(ctx, fsys, out, srcs); err != nil {
			return nil, err
		}
	}
	rep.Files = files
	for _, f := range files {
		rep.Rows += f.Rows
		rep.Bytes += f.Bytes
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// removeCompactTemps removes the temp files an earlier compaction left
// when it died (their names may come back: a pid is reused). Called under
// the merge lock, so no other compaction is writing them.
func removeCompactTemps(fsys vfs.FS, out string) error {
	dir := layout.Join(out, layout.TempDir)
	entries, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing temp files: %w", err)
	}
	removed := false
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, layout.CompactTag+".") && layout.IsTempName(name) && e.Type().IsRegular() {
			if err := fsys.Remove(layout.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = true
		}
	}
	if removed {
		return fsys.SyncDir(dir)
	}
	return nil
}

// readCompleteManifest reads simulation/_manifest.json and refuses a study
// that is not complete.
func readCompleteManifest(fsys vfs.FS, out string) (*manifest.SimManifest, []byte, error) {
	mPath := layout.Join(out, path.Join(layout.SimDir, layout.ManifestName))
	raw, err := vfs.ReadFile(fsys, mPath, maxDocument)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %s is missing (run merge-shards first)", ErrNotComplete, mPath)
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := manifest.ReadSimManifest(mPath, raw)
	if err != nil {
		return nil, nil, &CompactDamageError{Path: path.Join(layout.SimDir, layout.ManifestName), Detail: err.Error()}
	}
	if m.Status != manifest.StatusComplete {
		return nil, nil, fmt.Errorf("%w: %s says status %q (%d of %d scenarios completed); compaction needs every scenario: rerun the missing ones and merge again",
			ErrNotComplete, mPath, m.Status, m.Scenarios.Completed, m.Scenarios.Total)
	}
	return m, raw, nil
}

// readIndex reads simulation/_files.csv, checked against the manifest's
// dataset_xxh64, and returns its files sorted by entity and scenario.
func readIndex(fsys vfs.FS, out string, m *manifest.SimManifest) ([]source, error) {
	rel := path.Join(layout.SimDir, layout.IndexName)
	data, err := vfs.ReadFile(fsys, layout.Join(out, rel), maxIndex)
	if err != nil {
		return nil, fmt.Errorf("reading the integrity index: %w", err)
	}
	header, rows, _ := strings.Cut(string(data), "\n")
	if header != strings.Join(indexHeader, ",") {
		return nil, &CompactDamageError{Path: rel, Detail: fmt.Sprintf("header %q, want %q", header, strings.Join(indexHeader, ","))}
	}
	if got := manifest.FormatXXH64(xxhash.Sum64String(rows)); got != m.DatasetXXH64 {
		return nil, &CompactDamageError{Path: rel, Detail: fmt.Sprintf("dataset xxh64 %s, the manifest says %s: the index was altered", got, m.DatasetXXH64)}
	}
	recs, err := csv.NewReader(strings.NewReader(rows)).ReadAll()
	if err != nil {
		return nil, &CompactDamageError{Path: rel, Detail: err.Error()}
	}
	srcs := make([]source, 0, len(recs))
	for i, r := range recs {
		bad := func(format string, a ...any) error {
			return &CompactDamageError{Path: rel, Detail: fmt.Sprintf("line %d: ", i+2) + fmt.Sprintf(format, a...)}
		}
		if len(r) != len(indexHeader) {
			return nil, bad("%d fields, want %d", len(r), len(indexHeader))
		}
		entity, sc, err := layout.ParseDataFile(r[0], m.Layout.ScenarioPad)
		if err != nil {
			return nil, bad("%v", err)
		}
		nrows, err1 := strconv.ParseInt(r[3], 10, 64)
		size, err2 := strconv.ParseInt(r[4], 10, 64)
		idx, err3 := strconv.Atoi(r[2])
		if err1 != nil || err2 != nil || err3 != nil || nrows < 0 || size < 0 {
			return nil, bad("bad number")
		}
		if entity != r[1] || idx != sc {
			return nil, bad("path %s is not entity %q scenario %d", r[0], r[1], idx)
		}
		if _, err := shard.TableByEntity(entity); err != nil {
			return nil, bad("%v", err)
		}
		if sc > math.MaxInt32 {
			return nil, bad("scenario %d does not fit scenario_id's Int32", sc)
		}
		srcs = append(srcs, source{rel: r[0], entity: entity, scenario: sc, rows: nrows, bytes: size, xxh64: r[5]})
	}
	slices.SortFunc(srcs, func(a, b source) int {
		if c := strings.Compare(a.entity, b.entity); c != 0 {
			return c
		}
		return a.scenario - b.scenario
	})
	for i := 1; i < len(srcs); i++ {
		if srcs[i].entity == srcs[i-1].entity && srcs[i].scenario == srcs[i-1].scenario {
			return nil, &CompactDamageError{Path: rel, Detail: fmt.Sprintf("lists %s scenario %d twice", srcs[i].entity, srcs[i].scenario)}
		}
	}
	return srcs, nil
}

// planParts groups each entity's scenarios, in order, into files of about
// target partition bytes. The plan depends only on the index and target,
// so a rerun makes the same files.
func planParts(srcs []source, target int64) []*compactPart {
	var parts []*compactPart
	var cur *compactPart
	var size int64
	n := 0
	for _, s := range srcs {
		if cur == nil || cur.entity != s.entity {
			n = 0
			cur = nil
		}
		if cur != nil && size+s.bytes > target {
			cur = nil
			n++
		}
		if cur == nil {
			cur = &compactPart{final: layout.CompactPart(s.entity, n), entity: s.entity, want: map[int]*scenarioSums{}}
			parts = append(parts, cur)
			size = 0
		}
		cur.sources = append(cur.sources, s)
		size += s.bytes
	}
	return parts
}

// checkExistingCompaction handles a compacted/_manifest.json already
// there: of this dataset, every file it lists is checked (size, XXH64) and
// its manifest returned; none there, nil; of another dataset, or damaged,
// an error.
func checkExistingCompaction(fsys vfs.FS, out string, m *manifest.SimManifest, rep *CompactReport) (*CompactManifest, error) {
	cm, err := readCompaction(fsys, out, m)
	if cm == nil || err != nil {
		return nil, err
	}
	for _, f := range cm.Files {
		got, err := vfs.HashFile(fsys, layout.Join(out, f.Path))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &CompactDamageError{Path: f.Path, Detail: "missing (" + layout.CompactManifestFile + " lists it)"}
		}
		if err != nil {
			return nil, err
		}
		if got.Bytes != f.Bytes || manifest.FormatXXH64(got.XXH64) != f.XXH64 {
			return nil, &CompactDamageError{Path: f.Path, Detail: fmt.Sprintf("%d bytes xxh64 %016x, %s says %d bytes xxh64 %s", got.Bytes, got.XXH64, layout.CompactManifestFile, f.Bytes, f.XXH64)}
		}
		rep.Rows += f.Rows
		rep.Bytes += f.Bytes
	}
	rep.Already = true
	rep.Files = cm.Files
	return cm, nil
}

// loadCompaction reads compacted/_manifest.json strictly: nil when there
// is none; a *CompactDamageError when it does not decode. The one reader
// of that file in this package (compact, the merge, verify, status).
func loadCompaction(fsys vfs.FS, out string) (*CompactManifest, error) {
	raw, err := vfs.ReadFile(fsys, layout.Join(out, layout.CompactManifestFile), maxDocument)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cm, err := manifest.ReadCompactManifest(layout.CompactManifestFile, raw)
	if err != nil {
		return nil, &CompactDamageError{Path: layout.CompactManifestFile, Detail: err.Error()}
	}
	return cm, nil
}

// readCompaction is loadCompaction for compact: a compaction made from
// another dataset than the one simulation/_manifest.json (m) describes (a
// merge changed the study since) is an error.
func readCompaction(fsys vfs.FS, out string, m *manifest.SimManifest) (*CompactManifest, error) {
	cm, err := loadCompaction(fsys, out)
	if cm == nil || err != nil {
		return nil, err
	}
	if cm.DatasetXXH64 != m.DatasetXXH64 {
		return nil, fmt.Errorf("%s was made from another dataset (dataset_xxh64 %s, simulation/_manifest.json says %s): remove %s and compact again",
			layout.CompactManifestFile, cm.DatasetXXH64, m.DatasetXXH64, layout.Join(out, layout.CompactDir))
	}
	return cm, nil
}

// writeCompactManifest writes cm durably: a temp file under _shards/tmp,
// fsynced, renamed over compacted/_manifest.json, the directory synced.
func writeCompactManifest(fsys vfs.FS, out string, cm *CompactManifest) error {
	body, err := manifest.Marshal(cm)
	if err != nil {
		return err
	}
	tmp := layout.Join(out, layout.CompactTemp(os.Getpid(), 0, layout.CompactManifestFile))
	if _, err := vfs.WriteNewSync(fsys, tmp, func(w io.Writer) error { _, err := w.Write(body); return err }); err != nil {
		return err
	}
	if err := vfs.NewDirs(fsys, out).Replace(tmp, layout.Join(out, layout.CompactManifestFile)); err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	return nil
}

// removePartitions removes the partition files of srcs (compact
// --replace), called only once a manifest saying so is durable: from then
// on a missing partition file is not lost, and a crash here leaves
// partition files a rerun removes. Each emptied partition directory, and
// each emptied entity directory, goes too; a directory's parent is synced
// once, after all its removals, so that the removals are durable when
// this returns (a power cut before then brings some back: harmless, and
// the next compact removes them again). It returns how many files it
// removed.
func removePartitions(ctx context.Context, fsys vfs.FS, out string, srcs []source) (int, error) {
	removed := 0
	dirty := map[string]bool{} // directories whose entries changed (relative)
	parts := map[string]bool{} // partition directories that may now be empty
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		err := fsys.Remove(layout.Join(out, s.rel))
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			return removed, fmt.Errorf("removing %s (compacted: %s says partitions %q): %w", s.rel, layout.CompactManifestFile, manifest.PartitionsRemoved, err)
		}
		parts[path.Dir(s.rel)] = true
	}
	// Partition directories, then entity directories ("violations/generic"
	// then "violations"): deepest first, so a parent is empty when its
	// turn comes. A directory that is not empty (a stray the merge will
	// quarantine) stays.
	pending := sortedKeys(parts)
	for len(pending) > 0 {
		next := map[string]bool{}
		for _, d := range pending {
			err := fsys.Remove(layout.Join(out, d))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				if entries, lerr := fsys.ReadDir(layout.Join(out, d)); lerr == nil && len(entries) > 0 {
					dirty[d] = true // its own entries changed
					continue
				}
				return removed, fmt.Errorf("removing the emptied directory %s: %w", d, err)
			}
			parent := path.Dir(d)
			dirty[parent] = true
			if parent != layout.SimDir {
				next[parent] = true
			}
		}
		pending = sortedKeys(next)
	}
	for _, d := range sortedKeys(dirty) {
		if _, err := fsys.Stat(layout.Join(out, d)); errors.Is(err, fs.ErrNotExist) {
			continue // removed itself: its parent's sync covers it
		}
		if err := fsys.SyncDir(layout.Join(out, d)); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// checkStrayParts refuses, when no compaction manifest is there, a file
// under compacted/<entity>/ that this compaction would not write: left by
// an interrupted compaction with another --target-size, a reader could
// take it for data.
func checkStrayParts(fsys vfs.FS, out string, parts []*compactPart) error {
	want := map[string]bool{}
	dirs := map[string]bool{}
	for _, p := range parts {
		want[p.final] = true
		dirs[path.Dir(p.final)] = true
	}
	for _, d := range sortedKeys(dirs) {
		entries, err := fsys.ReadDir(layout.Join(out, d))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			if rel := path.Join(d, e.Name()); !want[rel] {
				return fmt.Errorf("%s is not a file this compaction writes and %s is missing: left by an interrupted compaction with other settings? Remove %s and compact again",
					rel, layout.CompactManifestFile, layout.Join(out, layout.CompactDir))
			}
		}
	}
	return nil
}
