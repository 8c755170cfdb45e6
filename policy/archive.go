package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// PackedExt is the suffix of a packed (zstd-compressed) stage file.
const PackedExt = ".zst"

// ErrPacked: the policy directory holds packed stage files
// (stage_NNN.bin.zst); run `merge-shards policy unpack DIR` first.
var ErrPacked = errors.New("policy: directory is packed")

var packedName = regexp.MustCompile(`^stage_[0-9]{3,}\.bin\.zst$`)

// ArchiveError names the stage file (relative to the policy directory,
// forward slashes) that Pack or Unpack could not handle. Err wraps
// ErrChecksum when the bytes differ from metadata.json's "files" entry.
type ArchiveError struct {
	Op   string // "pack" or "unpack"
	File string
	Err  error
}

func (e *ArchiveError) Error() string { return fmt.Sprintf("policy %s %s: %v", e.Op, e.File, e.Err) }
func (e *ArchiveError) Unwrap() error { return e.Err }

// packedError is Open's error for a packed directory.
func packedError(dir, rel string) error {
	return fmt.Errorf("%w: %s holds %s (zstd-compressed): run `merge-shards policy unpack %s` before opening it",
		ErrPacked, dir, rel, dir)
}

// readFiles reads metadata.json's "files" map: Pack and Unpack refuse a
// directory without it (nothing to verify the bytes against).
func readFiles(fsys vfs.FS, dir string) (map[string]FileEntry, error) {
	raw, err := vfs.ReadFile(fsys, filepath.Join(dir, layout.MetadataName), maxMetadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMetadata, err)
	}
	var md Metadata
	if err := json.Unmarshal(raw, &md); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMetadata, filepath.Join(dir, "metadata.json"), err)
	}
	if md.Files == nil {
		return nil, fmt.Errorf("%w: %s has no \"files\" checksums to verify against", ErrMetadata, dir)
	}
	return md.Files, nil
}

// checkEntry compares buf with files[rel].
func checkEntry(files map[string]FileEntry, rel string, buf []byte) error {
	e, ok := files[rel]
	if !ok {
		return fmt.Errorf("%w: %s is not listed in metadata.json files", ErrChecksum, rel)
	}
	if int64(len(buf)) != e.Bytes {
		return fmt.Errorf("%w: %s is %d bytes, metadata.json says %d", ErrChecksum, rel, len(buf), e.Bytes)
	}
	want, err := strconv.ParseUint(e.XXH64, 16, 64)
	if err != nil {
		return fmt.Errorf("%w: files[%q].xxh64 %q is not hex", ErrMetadata, rel, e.XXH64)
	}
	if got := xxhash.Sum64(buf); got != want {
		return fmt.Errorf("%w: %s has xxh64 %016x, metadata.json says %s", ErrChecksum, rel, got, e.XXH64)
	}
	return nil
}

// stageEntries lists the stage files (.bin and .bin.zst) of dir's stage
// subdirectories as relative paths without the .zst suffix, sorted.
func stageEntries(fsys vfs.FS, dir string) ([]string, error) {
	seen := map[string]bool{}
	for _, sub := range layout.StageKinds {
		ents, err := fsys.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, e := range ents {
			n := e.Name()
			if !e.Type().IsRegular() {
				continue
			}
			if packedName.MatchString(n) {
				n = strings.TrimSuffix(n, PackedExt)
			} else if !stageName.MatchString(n) {
				continue
			}
			seen[path.Join(sub, n)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for rel := range seen {
		out = append(out, rel)
	}
	sort.Strings(out)
	return out, nil
}

// writeReplace writes buf durably to a temp file beside final, renames it
// over final and fsyncs the directory.
func writeReplace(fsys vfs.FS, final string, buf []byte) error {
	tmp := layout.ReplaceTemp(final)
	_ = fsys.Remove(tmp) // a leftover of an interrupted run
	if _, err := vfs.WriteNewSync(fsys, tmp, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	}); err != nil {
		return err
	}
	dir := filepath.Dir(final)
	if err := vfs.NewDirs(fsys, dir).Replace(tmp, final); err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	return nil
}

func removeSync(fsys vfs.FS, p string) error {
	if err := fsys.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fsys.SyncDir(filepath.Dir(p))
}

// Bounds of what Pack, Unpack and Open read: whatever is on disk, no read
// allocates more.
const (
	maxMetadata = 64 << 20 // metadata.json
	// maxStageFile bounds a stage file not listed in metadata.json (it is
	// refused anyway, after reading).
	maxStageFile = 1 << 32
)

// entrySize is the size metadata.json lists for rel: a stage file larger
// than that is refused without reading it whole.
func entrySize(files map[string]FileEntry, rel string) int64 {
	if e, ok := files[rel]; ok && e.Bytes >= 0 {
		return e.Bytes
	}
	return maxStageFile
}

// maxPacked bounds a packed stage file: zstd never grows data by more
// than a small fraction.
func maxPacked(size int64) int64 { return size + size/16 + 1<<16 }

// Pack replaces every stage file under dir's cuts/, basis/ and states/ by
// its zstd-compressed stage_NNN.bin.zst. Each file is first checked against
// metadata.json's "files"; the .zst is written to a temp file, fsynced,
// read back, decompressed and verified before it is renamed into place,
// and only then is the .bin removed: an interruption at any point loses
// nothing, and Pack can be run again. metadata.json is not changed (its
// checksums are of the uncompressed files).
func Pack(fsys vfs.FS, dir string) error {
	files, err := readFiles(fsys, dir)
	if err != nil {
		return err
	}
	rels, err := stageEntries(fsys, dir)
	if err != nil {
		return err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		return err
	}
	defer enc.Close()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return err
	}
	defer dec.Close()
	for _, rel := range rels {
		bin := filepath.Join(dir, filepath.FromSlash(rel))
		buf, err := vfs.ReadFile(fsys, bin, entrySize(files, rel))
		if errors.Is(err, os.ErrNotExist) {
			continue // already packed
		}
		fail := func(err error) error { return &ArchiveError{Op: "pack", File: rel, Err: err} }
		if err != nil {
			return fail(err)
		}
		if err := checkEntry(files, rel, buf); err != nil {
			return fail(err)
		}
		z := enc.EncodeAll(buf, nil)
		if back, err := dec.DecodeAll(z, nil); err != nil {
			return fail(fmt.Errorf("decompressing what was just compressed: %v", err))
		} else if err := checkEntry(files, rel, back); err != nil {
			return fail(err)
		}
		if err := writeReplace(fsys, bin+PackedExt, z); err != nil {
			return fail(err)
		}
		// Read the durable copy back: what is on disk must decompress to
		// the original bytes before the original goes.
		onDisk, err := vfs.ReadFile(fsys, bin+PackedExt, int64(len(z)))
		if err != nil {
			return fail(err)
		}
		back, err := dec.DecodeAll(onDisk, nil)
		if err != nil {
			return fail(fmt.Errorf("%w: %s%s does not decompress: %v", ErrChecksum, rel, PackedExt, err))
		}
		if err := checkEntry(files, rel, back); err != nil {
			return fail(err)
		}
		if err := removeSync(fsys, bin); err != nil {
			return fail(err)
		}
	}
	return nil
}

// Unpack reverses Pack: every stage_NNN.bin.zst is decompressed, its size
// and xxh64 checked against metadata.json's "files", written durably as
// stage_NNN.bin, and only then removed. A .zst that fails the check is
// left in place and reported as an *ArchiveError wrapping ErrChecksum.
func Unpack(fsys vfs.FS, dir string) error {
	files, err := readFiles(fsys, dir)
	if err != nil {
		return err
	}
	rels, err := stageEntries(fsys, dir)
	if err != nil {
		return err
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return err
	}
	defer dec.Close()
	for _, rel := range rels {
		bin := filepath.Join(dir, filepath.FromSlash(rel))
		zrel := rel + PackedExt
		fail := func(err error) error { return &ArchiveError{Op: "unpack", File: zrel, Err: err} }
		z, err := vfs.ReadFile(fsys, bin+PackedExt, maxPacked(entrySize(files, rel)))
		if errors.Is(err, os.ErrNotExist) {
			continue // not packed
		}
		if err != nil {
			return fail(err)
		}
		// An interrupted Unpack (or Pack) may have left both: keep a .bin
		// that is already right.
		if have, err := vfs.ReadFile(fsys, bin, entrySize(files, rel)); err == nil && checkEntry(files, rel, have) == nil {
			if err := removeSync(fsys, bin+PackedExt); err != nil {
				return fail(err)
			}
			continue
		}
		if e, ok := files[rel]; ok && e.Bytes >= 0 {
			// Bound the memory a damaged frame header could claim.
			if hdr := (zstd.Header{}); hdr.Decode(z) == nil && hdr.HasFCS && hdr.FrameContentSize != uint64(e.Bytes) {
				return fail(fmt.Errorf("%w: %s decompresses to %d bytes, metadata.json says %d",
					ErrChecksum, zrel, hdr.FrameContentSize, e.Bytes))
			}
		}
		buf, err := dec.DecodeAll(z, nil)
		if err != nil {
			return fail(fmt.Errorf("%w: %s does not decompress: %v", ErrChecksum, zrel, err))
		}
		if err := checkEntry(files, rel, buf); err != nil {
			return fail(err)
		}
		if err := writeReplace(fsys, bin, buf); err != nil {
			return fail(err)
		}
		if err := removeSync(fsys, bin+PackedExt); err != nil {
			return fail(err)
		}
	}
	return nil
}
