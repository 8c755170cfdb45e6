package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// A packed stage file (stage_NNN.bin.zst) is untrusted: a small frame can
// claim nothing about its size and decompress to gigabytes. It is only
// ever decompressed by streaming (inflate), never whole into memory:
//
//   - the .zst itself may hold at most maxPacked(listed) bytes;
//   - a frame header declaring a content size other than the listed one
//     is refused before anything is decompressed;
//   - the window the frame asks for (the decoder's history, its one
//     allocation that grows with the data) is at most maxWindow(listed);
//   - the output goes through an io.LimitReader of listed+1 bytes: one
//     byte past the listed size stops decompression and refuses the file.
//
// So decompressing a .zst costs at most maxWindow(listed) plus fixed
// buffers of memory, and at most listed+1 bytes of output, whatever the
// frame holds.

// minWindowLimit is the window accepted for any stage file, however small:
// Pack's encoder (SpeedBetterCompression) uses at most 8 MiB, and so do
// the zstd command line's levels up to 19 when the size is not known.
const minWindowLimit = 8 << 20

// maxWindow is the largest zstd window a packed stage file of size bytes
// may declare: minWindowLimit, or the size rounded up to a power of two
// (no encoder needs a window larger than the content), at most
// zstd.MaxWindowSize.
func maxWindow(size int64) uint64 {
	w := uint64(minWindowLimit)
	for w < uint64(size) && w < zstd.MaxWindowSize {
		w <<= 1
	}
	return w
}

// maxPacked bounds a packed stage file: zstd never grows data by more
// than a small fraction.
func maxPacked(size int64) int64 { return size + size/16 + 1<<16 }

// errRecorder remembers the first error (other than EOF) its reader
// returned, so that a failed copy is attributed to its side.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// inflate decompresses the packed stage file read from zr (zsize bytes
// on disk) into dst, checking it is one zstd frame of exactly size bytes
// of content. A defect of the packed data is an error wrapping ErrSize
// (the sizes differ) or ErrChecksum (it does not decompress, or asks for
// an oversized window); an error reading zr or writing dst is returned
// as is. Whatever the frame claims or holds, inflate writes at most
// size+1 bytes to dst and holds at most maxWindow(size) bytes of history.
func inflate(dst io.Writer, zr io.Reader, zsize, size int64) error {
	if size < 0 || size > maxStageFile {
		return fmt.Errorf("%w: metadata.json lists %d bytes", ErrMetadata, size)
	}
	if zsize > maxPacked(size) {
		return fmt.Errorf("%w: %d bytes, more than the %d listed bytes compress to (at most %d)", ErrSize, zsize, size, maxPacked(size))
	}
	in := &errRecorder{r: zr}
	br := bufio.NewReaderSize(in, 64<<10)
	head, _ := br.Peek(zstd.HeaderMaxSize)
	if in.err != nil {
		return in.err
	}
	var hdr zstd.Header
	if err := hdr.Decode(head); err != nil {
		return fmt.Errorf("%w: not a zstd frame: %v", ErrChecksum, err)
	}
	if hdr.Skippable {
		return fmt.Errorf("%w: a skippable zstd frame, not a packed stage file", ErrChecksum)
	}
	if hdr.HasFCS && hdr.FrameContentSize != uint64(size) {
		return fmt.Errorf("%w: its zstd frame declares %d bytes of content, metadata.json lists %d (refused before decompressing)",
			ErrSize, hdr.FrameContentSize, size)
	}
	window := hdr.WindowSize
	if hdr.SingleSegment {
		window = hdr.FrameContentSize
	}
	if limit := maxWindow(size); window > limit {
		return fmt.Errorf("%w: its zstd frame asks for a %d-byte window, more than the %d bytes allowed for a stage file of %d bytes (refused before decompressing)",
			ErrChecksum, window, limit, size)
	}
	// One decoder per file, synchronous (concurrency 1: no blocks decoded
	// ahead), its window bounded again for any frame after the first.
	limit := maxWindow(size)
	dec, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(limit), zstd.WithDecoderMaxMemory(limit))
	if err != nil {
		return err
	}
	defer dec.Close()
	out := &errRecorder{r: dec}
	n, err := io.Copy(dst, io.LimitReader(out, size+1))
	switch {
	case in.err != nil:
		return in.err // reading the .zst failed: not a verdict on its bytes
	case out.err != nil:
		if errors.Is(out.err, zstd.ErrWindowSizeExceeded) || errors.Is(out.err, zstd.ErrDecoderSizeExceeded) {
			return fmt.Errorf("%w: a zstd frame asks for a window of more than %d bytes (a stage file of %d bytes)", ErrChecksum, limit, size)
		}
		return fmt.Errorf("%w: does not decompress (after %d bytes): %v", ErrChecksum, n, out.err)
	case err != nil:
		return err // writing failed
	case n > size:
		how := "its zstd frame declares no content size"
		if hdr.HasFCS {
			how = fmt.Sprintf("its zstd frame declares %d", hdr.FrameContentSize)
		}
		return fmt.Errorf("%w: decompresses to more than the %d bytes metadata.json lists (stopped at %d bytes; %s)", ErrSize, size, n, how)
	case n < size:
		return fmt.Errorf("%w: decompresses to %d bytes, metadata.json lists %d", ErrSize, n, size)
	}
	return nil
}
