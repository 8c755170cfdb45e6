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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

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
		return fmt.Errorf("%w: %s is %d bytes, metadata.json says %d", ErrSize, rel, len(buf), e.Bytes)
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
		if back, err := decodeBounded(z, int64(len(buf))); err != nil {
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
		back, err := decodeBounded(onDisk, int64(len(buf)))
		if err != nil {
			return fail(fmt.Errorf("the packed copy on disk: %w", err))
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
		e, ok := files[rel]
		if !ok {
			return fail(fmt.Errorf("%w: %s is not listed in metadata.json files", ErrChecksum, rel))
		}
		// Never more memory than metadata.json says the file holds,
		// whatever a damaged or hostile frame claims.
		buf, err := decodeBounded(z, e.Bytes)
		if err != nil {
			return fail(err)
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

// ErrSize: a stage file, or what a packed one decompresses to (or the
// size its zstd frame declares), has another size than metadata.json's
// "files" entry. It wraps ErrChecksum.
var ErrSize error = &sizeError{}

type sizeError struct{}

func (*sizeError) Error() string { return "policy: size mismatch" }
func (*sizeError) Unwrap() error { return ErrChecksum }

// boundedDecoder decompresses whole packed stage files: DecodeAll never
// writes past the capacity of the buffer it is given
// (WithDecodeAllCapLimit), so the caller decides the most a frame can
// cost, whatever its header says. Safe for concurrent use.
var boundedDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderConcurrency(0))
})

// decodeBounded decompresses z, which must be one zstd frame (what Pack
// writes) of exactly size bytes, allocating at most size bytes for the
// output: a frame declaring another content size is refused before
// decompressing, one that decompresses to more is stopped there and
// refused. Errors wrap ErrSize or ErrChecksum.
func decodeBounded(z []byte, size int64) ([]byte, error) {
	if size < 0 || size > maxStageFile {
		return nil, fmt.Errorf("%w: metadata.json lists %d bytes", ErrMetadata, size)
	}
	var hdr zstd.Header
	if err := hdr.Decode(z); err != nil {
		return nil, fmt.Errorf("%w: not a zstd frame: %v", ErrChecksum, err)
	}
	if hdr.Skippable {
		return nil, fmt.Errorf("%w: a skippable zstd frame, not a packed stage file", ErrChecksum)
	}
	if hdr.HasFCS && hdr.FrameContentSize != uint64(size) {
		return nil, fmt.Errorf("%w: decompresses to %d bytes, metadata.json says %d", ErrSize, hdr.FrameContentSize, size)
	}
	dec, err := boundedDecoder()
	if err != nil {
		return nil, err
	}
	buf, err := dec.DecodeAll(z, make([]byte, 0, size))
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrFrameSizeExceeded):
		return nil, fmt.Errorf("%w: decompresses to more than the %d bytes metadata.json lists", ErrSize, size)
	case err != nil:
		return nil, fmt.Errorf("%w: does not decompress: %v", ErrChecksum, err)
	case int64(len(buf)) != size:
		return nil, fmt.Errorf("%w: decompresses to %d bytes, metadata.json says %d", ErrSize, len(buf), size)
	}
	return buf, nil
}

// frameSize checks, without decompressing, that z is one zstd frame
// declaring size bytes of content whose blocks (and checksum) end exactly
// at the end of z: a truncated or extended .zst fails with ErrSize, as a
// .bin of the wrong size does. A frame that declares no content size
// (zstd omits it under 256 bytes) is decompressed, bounded, to learn it.
// Errors wrap ErrSize or ErrChecksum.
func frameSize(z []byte, size int64) error {
	var hdr zstd.Header
	if err := hdr.Decode(z); err != nil {
		return fmt.Errorf("%w: not a zstd frame: %v", ErrSize, err)
	}
	if hdr.Skippable {
		return fmt.Errorf("%w: a skippable zstd frame, not a packed stage file", ErrChecksum)
	}
	if hdr.HasFCS && hdr.FrameContentSize != uint64(size) {
		return fmt.Errorf("%w: decompresses to %d bytes, metadata.json says %d", ErrSize, hdr.FrameContentSize, size)
	}
	// RFC 8878 3.1.1.2: 3-byte little-endian block headers (bit 0 last
	// block, bits 1-2 type, bits 3-23 size); a raw or compressed block's
	// size bytes follow, an RLE block's one byte; then an optional 4-byte
	// content checksum.
	at := int64(hdr.HeaderSize)
	n := int64(len(z))
	for {
		if at+3 > n {
			return fmt.Errorf("%w: the zstd frame is cut short (%d bytes, a block header at %d)", ErrSize, n, at)
		}
		bh := uint32(z[at]) | uint32(z[at+1])<<8 | uint32(z[at+2])<<16
		at += 3
		switch (bh >> 1) & 3 {
		case 0, 2:
			at += int64(bh >> 3)
		case 1:
			at++
		default:
			return fmt.Errorf("%w: reserved zstd block type at %d", ErrChecksum, at-3)
		}
		if bh&1 != 0 {
			break
		}
	}
	if hdr.HasCheckSum {
		at += 4
	}
	if at != n {
		return fmt.Errorf("%w: the zstd frame needs %d bytes, the file has %d", ErrSize, at, n)
	}
	if !hdr.HasFCS {
		// Small frames (under 256 bytes of content) do not record it.
		_, err := decodeBounded(z, size)
		return err
	}
	return nil
}

// StageCheck is the verdict on one form of a stage file listed in
// metadata.json: the plain file or its packed .zst.
type StageCheck struct {
	// File is the form's path relative to the policy directory, forward
	// slashes: "cuts/stage_003.bin" or "cuts/stage_003.bin.zst".
	File string
	// Err is nil when the form holds the listed bytes (or, when sizes
	// only were checked, the listed size); else it wraps ErrSize (the
	// size differs, or a .zst's frame is cut short) or ErrChecksum. Its
	// message does not repeat File.
	Err error
}

// CheckStageFile checks the stage file rel ("cuts/stage_003.bin",
// relative to the policy directory dir) against e, its metadata.json
// "files" entry, in each form present: rel itself and the packed
// rel+".zst" (Pack leaves metadata.json unchanged: its entries are of the
// uncompressed bytes). With full, each form's bytes are checked, size and
// XXH64: a .bin is hashed as it streams, a .zst is read (at most a little
// more than e.Bytes) and decompressed into at most e.Bytes bytes. Without
// full, sizes only: a .bin's size; a .zst's frame must declare e.Bytes and
// its blocks must end exactly at the end of the file.
//
// It returns one StageCheck per form found, the plain one first; none when
// neither exists (the file is lost). rel or e being malformed (metadata.json
// is damaged) is an error wrapping ErrMetadata; an I/O error other than a
// missing file is returned as is. CheckStageFile changes nothing.
func CheckStageFile(fsys vfs.FS, dir, rel string, e FileEntry, full bool) ([]StageCheck, error) {
	sub, name, ok := strings.Cut(rel, "/")
	if !ok || !slices.Contains(layout.StageKinds[:], sub) || !stageName.MatchString(name) {
		return nil, fmt.Errorf("%w: files key %q is not <cuts|basis|states>/stage_NNN.bin", ErrMetadata, rel)
	}
	want, err := strconv.ParseUint(e.XXH64, 16, 64)
	if err != nil || len(e.XXH64) != 16 || e.Bytes < 0 || e.Bytes > maxStageFile {
		return nil, fmt.Errorf("%w: files[%q] is {bytes %d, xxh64 %q}", ErrMetadata, rel, e.Bytes, e.XXH64)
	}
	bin := filepath.Join(dir, filepath.FromSlash(rel))
	var out []StageCheck
	// The plain form.
	st, err := fsys.Stat(bin)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	case !st.Mode().IsRegular():
		out = append(out, StageCheck{rel, fmt.Errorf("%w: not a regular file", ErrChecksum)})
	case st.Size() != e.Bytes:
		out = append(out, StageCheck{rel, fmt.Errorf("%w: %d bytes, metadata.json says %d", ErrSize, st.Size(), e.Bytes)})
	case !full:
		out = append(out, StageCheck{File: rel})
	default:
		got, err := vfs.HashFile(fsys, bin)
		if err != nil {
			return nil, err
		}
		c := StageCheck{File: rel}
		if got.Bytes != e.Bytes {
			c.Err = fmt.Errorf("%w: %d bytes, metadata.json says %d", ErrSize, got.Bytes, e.Bytes)
		} else if got.XXH64 != want {
			c.Err = fmt.Errorf("%w: xxh64 %016x, metadata.json says %s", ErrChecksum, got.XXH64, e.XXH64)
		}
		out = append(out, c)
	}
	// The packed form.
	zrel := rel + PackedExt
	z, err := vfs.ReadFile(fsys, bin+PackedExt, maxPacked(e.Bytes))
	var tl *vfs.TooLargeError
	switch {
	case errors.Is(err, os.ErrNotExist):
		return out, nil
	case errors.As(err, &tl):
		return append(out, StageCheck{zrel, fmt.Errorf("%w: %d bytes, more than %d listed bytes compress to", ErrSize, tl.Size, e.Bytes)}), nil
	case err != nil:
		return nil, err
	}
	c := StageCheck{File: zrel}
	if !full {
		c.Err = frameSize(z, e.Bytes)
		return append(out, c), nil
	}
	buf, err := decodeBounded(z, e.Bytes)
	if serr := frameSize(z, e.Bytes); serr != nil && errors.Is(serr, ErrSize) {
		c.Err = serr // cut short or too long: say so rather than "does not decompress"
	} else if err != nil {
		c.Err = err
	} else if got := xxhash.Sum64(buf); got != want {
		c.Err = fmt.Errorf("%w: decompresses to xxh64 %016x, metadata.json says %s", ErrChecksum, got, e.XXH64)
	}
	return append(out, c), nil
}
