package policy

import (
	"bufio"
	"bytes"
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
	// maxStageFile bounds a stage file's listed size.
	maxStageFile = 1 << 32
)

// listed is metadata.json's entry for rel, checked: listed, a size within
// 0..maxStageFile and an xxh64 of 16 hex digits. Errors wrap ErrChecksum
// (not listed) or ErrMetadata.
func listed(files map[string]FileEntry, rel string) (FileEntry, uint64, error) {
	e, ok := files[rel]
	if !ok {
		return e, 0, fmt.Errorf("%w: %s is not listed in metadata.json files", ErrChecksum, rel)
	}
	want, err := strconv.ParseUint(e.XXH64, 16, 64)
	if err != nil || len(e.XXH64) != 16 || e.Bytes < 0 || e.Bytes > maxStageFile {
		return e, 0, fmt.Errorf("%w: files[%q] is {bytes %d, xxh64 %q}", ErrMetadata, rel, e.Bytes, e.XXH64)
	}
	return e, want, nil
}

// hashWriter counts and hashes what inflate writes, and writes it nowhere.
type hashWriter struct {
	h *xxhash.Digest
	n int64
}

func newHashWriter() *hashWriter { return &hashWriter{h: xxhash.New()} }

func (w *hashWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

// checkInflated compares what inflate produced (n bytes hashing to got)
// with metadata.json's entry.
func checkInflated(e FileEntry, want uint64, n int64, got uint64) error {
	if n != e.Bytes {
		return fmt.Errorf("%w: decompresses to %d bytes, metadata.json lists %d", ErrSize, n, e.Bytes)
	}
	if got != want {
		return fmt.Errorf("%w: decompresses to xxh64 %016x, metadata.json says %s", ErrChecksum, got, e.XXH64)
	}
	return nil
}

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
		fail := func(err error) error { return &ArchiveError{Op: "pack", File: rel, Err: err} }
		if ok, err := vfs.Exists(fsys, bin); err != nil {
			return fail(err)
		} else if !ok {
			continue // already packed
		}
		e, want, err := listed(files, rel)
		if err != nil {
			return fail(err) // refused before reading it
		}
		buf, err := vfs.ReadFile(fsys, bin, e.Bytes)
		var tl *vfs.TooLargeError
		if errors.As(err, &tl) {
			return fail(fmt.Errorf("%w: %s is %d bytes, metadata.json says %d", ErrSize, rel, tl.Size, e.Bytes))
		}
		if err != nil {
			return fail(err)
		}
		if err := checkEntry(files, rel, buf); err != nil {
			return fail(err)
		}
		z := enc.EncodeAll(buf, nil)
		buf = nil
		// verify decompresses z (in memory, or as read back from disk)
		// and checks it against the listed entry.
		verify := func(z []byte) error {
			hw := newHashWriter()
			if err := inflate(hw, bytes.NewReader(z), int64(len(z)), e.Bytes); err != nil {
				return err
			}
			return checkInflated(e, want, hw.n, hw.h.Sum64())
		}
		if err := verify(z); err != nil {
			return fail(fmt.Errorf("decompressing what was just compressed: %w", err))
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
		if err := verify(onDisk); err != nil {
			return fail(fmt.Errorf("the packed copy on disk: %w", err))
		}
		if err := removeSync(fsys, bin); err != nil {
			return fail(err)
		}
	}
	return nil
}

// Unpack reverses Pack: every stage_NNN.bin.zst is decompressed, streaming,
// into a temp file beside it (never whole into memory, and never more
// than the size metadata.json's "files" lists: see inflate), its size and
// xxh64 checked against that entry, fsynced and renamed to stage_NNN.bin,
// and only then is the .zst removed. A .zst that fails is left in place,
// its temp file removed, and reported as an *ArchiveError wrapping ErrSize
// or ErrChecksum.
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
		zpath := bin + PackedExt
		fail := func(err error) error { return &ArchiveError{Op: "unpack", File: rel + PackedExt, Err: err} }
		if ok, err := vfs.Exists(fsys, zpath); err != nil {
			return fail(err)
		} else if !ok {
			continue // not packed
		}
		e, want, err := listed(files, rel)
		if err != nil {
			return fail(err)
		}
		// An interrupted Unpack (or Pack) may have left both: keep a .bin
		// that is already right.
		if plainMatches(fsys, bin, e, want) {
			if err := removeSync(fsys, zpath); err != nil {
				return fail(err)
			}
			continue
		}
		if err := unpackFile(fsys, zpath, bin, e, want); err != nil {
			return fail(err)
		}
		if err := removeSync(fsys, zpath); err != nil {
			return fail(err)
		}
	}
	return nil
}

// plainMatches reports whether bin exists and holds e's bytes (streamed:
// its size is checked before it is read).
func plainMatches(fsys vfs.FS, bin string, e FileEntry, want uint64) bool {
	st, err := fsys.Stat(bin)
	if err != nil || !st.Mode().IsRegular() || st.Size() != e.Bytes {
		return false
	}
	got, err := vfs.HashFile(fsys, bin)
	return err == nil && got.Bytes == e.Bytes && got.XXH64 == want
}

// unpackFile streams zpath's decompressed bytes into a temp file beside
// bin, checks them against e, fsyncs the temp file and renames it to bin.
// On any failure the temp file is removed and zpath is untouched.
func unpackFile(fsys vfs.FS, zpath, bin string, e FileEntry, want uint64) error {
	zf, err := fsys.Open(zpath)
	if err != nil {
		return err
	}
	defer zf.Close()
	st, err := zf.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", ErrChecksum)
	}
	tmp := layout.ReplaceTemp(bin)
	_ = fsys.Remove(tmp) // a leftover of an interrupted run
	var verdict error
	w, p, err := vfs.WriteNew(fsys, tmp, func(w io.Writer) error {
		verdict = inflate(w, zf, st.Size(), e.Bytes)
		return verdict
	})
	if verdict != nil {
		return verdict // WriteNew removed the temp file
	}
	if err != nil {
		return err
	}
	defer p.Abort() // removes the temp file unless it was synced
	if err := checkInflated(e, want, w.Bytes, w.XXH64); err != nil {
		return err
	}
	if err := p.Sync(); err != nil {
		return err
	}
	if err := vfs.NewDirs(fsys, filepath.Dir(bin)).Replace(tmp, bin); err != nil {
		_ = fsys.Remove(tmp)
		return err
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

// frameSize checks, without decompressing, that the packed stage file
// read from zr (zsize bytes) is one zstd frame declaring size bytes of
// content (or none: zstd omits it under 256 bytes) whose blocks (and
// checksum) end exactly at its end: a truncated or extended .zst fails
// with ErrSize, as a .bin of the wrong size does. It streams, skipping
// block contents, and reports whether the frame declares its content
// size. Errors wrap ErrSize or ErrChecksum, except an error reading zr.
func frameSize(zr io.Reader, zsize, size int64) (hasFCS bool, err error) {
	if zsize > maxPacked(size) {
		return false, fmt.Errorf("%w: %d bytes, more than the %d listed bytes compress to (at most %d)", ErrSize, zsize, size, maxPacked(size))
	}
	in := &errRecorder{r: zr}
	br := bufio.NewReaderSize(in, 64<<10)
	head, _ := br.Peek(zstd.HeaderMaxSize)
	if in.err != nil {
		return false, in.err
	}
	var hdr zstd.Header
	if err := hdr.Decode(head); err != nil {
		return false, fmt.Errorf("%w: not a zstd frame: %v", ErrSize, err)
	}
	if hdr.Skippable {
		return false, fmt.Errorf("%w: a skippable zstd frame, not a packed stage file", ErrChecksum)
	}
	if hdr.HasFCS && hdr.FrameContentSize != uint64(size) {
		return false, fmt.Errorf("%w: its zstd frame declares %d bytes of content, metadata.json lists %d", ErrSize, hdr.FrameContentSize, size)
	}
	// RFC 8878 3.1.1.2: 3-byte little-endian block headers (bit 0 last
	// block, bits 1-2 type, bits 3-23 size); a raw or compressed block's
	// size bytes follow, an RLE block's one byte; then an optional 4-byte
	// content checksum.
	skip := func(n int) error {
		_, err := br.Discard(n)
		return err
	}
	at := int64(hdr.HeaderSize)
	if err := skip(hdr.HeaderSize); err != nil {
		return false, fmt.Errorf("%w: the zstd frame is cut short (%d bytes)", ErrSize, zsize)
	}
	var bh [3]byte
	for {
		if _, err := io.ReadFull(br, bh[:]); err != nil {
			if in.err != nil {
				return false, in.err
			}
			return false, fmt.Errorf("%w: the zstd frame is cut short (%d bytes, a block header at %d)", ErrSize, zsize, at)
		}
		h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		at += 3
		var n int
		switch (h >> 1) & 3 {
		case 0, 2:
			n = int(h >> 3)
		case 1:
			n = 1
		default:
			return false, fmt.Errorf("%w: reserved zstd block type at %d", ErrChecksum, at-3)
		}
		if err := skip(n); err != nil {
			if in.err != nil {
				return false, in.err
			}
			return false, fmt.Errorf("%w: the zstd frame is cut short (%d bytes, a block of %d bytes at %d)", ErrSize, zsize, n, at)
		}
		at += int64(n)
		if h&1 != 0 {
			break
		}
	}
	if hdr.HasCheckSum {
		if err := skip(4); err != nil {
			if in.err != nil {
				return false, in.err
			}
			return false, fmt.Errorf("%w: the zstd frame is cut short (%d bytes, its checksum at %d)", ErrSize, zsize, at)
		}
		at += 4
	}
	if extra, _ := br.Peek(1); len(extra) > 0 {
		return false, fmt.Errorf("%w: the zstd frame needs %d bytes, the file has more (%d)", ErrSize, at, zsize)
	}
	if in.err != nil {
		return false, in.err
	}
	return hdr.HasFCS, nil
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
// XXH64: a .bin is hashed as it streams, a .zst is decompressed as it
// streams, bounded as Unpack is (see inflate: never more than e.Bytes+1
// bytes of output, nothing held whole in memory). Without full, sizes
// only: a .bin's size; a .zst's frame must declare e.Bytes (or, under 256
// bytes, decompress to it) and its blocks must end exactly at the end of
// the file.
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
	// The packed form, streamed: never read or decompressed whole.
	zrel, zpath := rel+PackedExt, bin+PackedExt
	if ok, err := vfs.Exists(fsys, zpath); err != nil {
		return nil, err
	} else if !ok {
		return out, nil
	}
	c := StageCheck{File: zrel}
	var hasFCS bool
	verdict, err := readPacked(fsys, zpath, func(zr io.Reader, zsize int64) (err error) {
		hasFCS, err = frameSize(zr, zsize, e.Bytes)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case verdict != nil && (!full || errors.Is(verdict, ErrSize)):
		// cut short or too long: say so rather than "does not decompress"
		return append(out, StageCheck{zrel, verdict}), nil
	case !full && hasFCS:
		return append(out, c), nil
	}
	// Full, or a small frame that does not record its content size:
	// decompress (bounded: see inflate) to learn it, and hash it.
	hw := newHashWriter()
	dverdict, err := readPacked(fsys, zpath, func(zr io.Reader, zsize int64) error {
		return inflate(hw, zr, zsize, e.Bytes)
	})
	switch {
	case err != nil:
		return nil, err
	case dverdict != nil:
		c.Err = dverdict
	case verdict != nil:
		c.Err = verdict
	case full:
		c.Err = checkInflated(e, want, hw.n, hw.h.Sum64())
	}
	return append(out, c), nil
}

// readPacked opens zpath and hands it and its size to read. An error of
// read that wraps ErrChecksum (ErrSize included) or ErrMetadata is a
// verdict on the file; any other error (opening or reading it) is err.
func readPacked(fsys vfs.FS, zpath string, read func(zr io.Reader, zsize int64) error) (verdict, err error) {
	f, err := fsys.Open(zpath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", ErrChecksum), nil
	}
	if err := read(f, st.Size()); err != nil {
		if errors.Is(err, ErrChecksum) || errors.Is(err, ErrMetadata) {
			return err, nil
		}
		return nil, err
	}
	return nil, nil
}
