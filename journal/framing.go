package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// line is the on-disk form of one journal line: the record's exact bytes
// and their XXH64, so that a flipped byte anywhere in the record is found.
type line struct {
	XXH64  string          `json:"xxh64"`
	Record json.RawMessage `json:"record"`
}

// Encode returns one journal line, newline included.
func Encode(r *manifest.Record) ([]byte, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(line{XXH64: manifest.FormatXXH64(xxhash.Sum64(payload)), Record: payload})
	if err != nil {
		return nil, err
	}
	if len(out)+1 > MaxLineBytes {
		return nil, fmt.Errorf("journal: a %s record of %d bytes is longer than a line may be (%d, journal.MaxLineBytes)", r.Type, len(out)+1, MaxLineBytes)
	}
	return append(out, '\n'), nil
}

// Error reports damage in a journal, naming the file and line.
type Error struct {
	File string
	Line int // 1-based
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("journal %s line %d: %v", e.File, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrChecksum is wrapped by a JournalError for a line whose checksum fails.
var ErrChecksum = errors.New("journal: checksum mismatch (the line was altered or damaged)")

// linePrefix and lineSuffix frame every line Encode writes; the 16
// checksum digits sit between the prefix's two parts.
const (
	linePrefixA = `{"xxh64":"`
	linePrefixB = `","record":`
	lineSuffix  = `}`
)

// splitLine returns the checksum and record bytes of a line in the exact
// layout Encode writes, without a JSON decode of the wrapper (which
// would cost as much again as the record itself); ok is false for any other
// layout, which then goes through the strict decoder.
func splitLine(b []byte) (sum string, record []byte, ok bool) {
	const head = len(linePrefixA) + 16 + len(linePrefixB)
	if len(b) < head+len(lineSuffix)+2 || string(b[:len(linePrefixA)]) != linePrefixA ||
		string(b[len(linePrefixA)+16:head]) != linePrefixB || b[len(b)-1] != '}' {
		return "", nil, false
	}
	return string(b[len(linePrefixA) : len(linePrefixA)+16]), b[head : len(b)-1], true
}

func decodeLine(b []byte) (*manifest.Record, error) {
	sum, payload, ok := splitLine(b)
	if !ok {
		var l line
		if err := strictUnmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("not a journal line: %w", err)
		}
		sum, payload = l.XXH64, l.Record
	}
	want, err := manifest.ParseXXH64(sum)
	if err != nil {
		return nil, err
	}
	if xxhash.Sum64(payload) != want {
		return nil, ErrChecksum
	}
	var r manifest.Record
	if err := strictUnmarshal(payload, &r); err != nil {
		return nil, fmt.Errorf("bad record: %w", err)
	}
	if err := validate(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

func validate(r *manifest.Record) error {
	set := 0
	for _, ok := range []bool{r.Open != nil, r.Commit != nil, r.Iteration != nil, r.Checkpoint != nil, r.Close != nil, r.Revoke != nil} {
		if ok {
			set++
		}
	}
	ok := set == 1 && ((r.Type == manifest.RecordOpen && r.Open != nil) || (r.Type == manifest.RecordCommit && r.Commit != nil) ||
		(r.Type == manifest.RecordIteration && r.Iteration != nil) || (r.Type == manifest.RecordCheckpoint && r.Checkpoint != nil) ||
		(r.Type == manifest.RecordClose && r.Close != nil) || (r.Type == manifest.RecordRevoke && r.Revoke != nil))
	if !ok {
		return fmt.Errorf("record type %q does not match its body", r.Type)
	}
	if r.Open != nil && r.Open.Version != manifest.JournalVersion {
		return fmt.Errorf("journal version %d, this build reads version %d", r.Open.Version, manifest.JournalVersion)
	}
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// Reader streams the records of one journal file. A damaged LAST
// line (a torn append cut short by a crash) ends the stream quietly and is
// reported by Torn; damage on any earlier line is a *Error naming
// file and line. The first record must be an open record, and sequence
// numbers must count up from 0.
type Reader struct {
	name    string
	br      *bufio.Reader
	line    []byte // the current line's bytes, reused: a line is decoded before the next is read
	lineNo  int
	torn    bool
	seq     int64
	started bool
}

// NewReader reads a journal from r; name is used in errors.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, br: bufio.NewReaderSize(r, 64<<10)}
}

// Torn reports whether the last line was damaged and ignored.
func (jr *Reader) Torn() bool { return jr.torn }

// MaxLineBytes bounds a journal line, newline included. The longest
// lines a writer appends are open records, which carry the case (about
// 200 bytes per entity: a case of 80,000 entities fits; a production case
// is tens of KB); a reader never holds more than this of one line,
// whatever is on disk, so a merge under a 2 GiB address-space limit reads
// any journal.
const MaxLineBytes = 16 << 20

// errLineTooLong is the damage of a line longer than MaxLineBytes.
var errLineTooLong = fmt.Errorf("line longer than %d bytes (journal.MaxLineBytes)", MaxLineBytes)

// readLine returns the next raw line with its newline, if it has one, and
// io.EOF at the end. A line longer than MaxLineBytes is read to its end
// without being kept: long reports it (b then holds its first bytes, with
// the newline when the line had one).
func (jr *Reader) readLine() (b []byte, long bool, err error) {
	b = jr.line[:0]
	defer func() {
		if cap(b) <= 1<<20 { // an open record's long line is not kept
			jr.line = b[:0]
		}
	}()
	for {
		chunk, err := jr.br.ReadSlice('\n')
		if len(b)+len(chunk) > MaxLineBytes {
			long = true
			if len(b) == 0 {
				b = append(b, chunk[:min(len(chunk), 64)]...)
			}
		} else {
			b = append(b, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(b) == 0 {
				return nil, false, io.EOF
			}
			if long && b[len(b)-1] == '\n' {
				b = b[:len(b)-1] // the newline was not this line's end
			}
			return b, long, nil
		case err != nil:
			return nil, false, err
		}
		if long && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		return b, long, nil
	}
}

// Next returns the next record, or io.EOF after the last one.
func (jr *Reader) Next() (*manifest.Record, error) {
	b, long, err := jr.readLine()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, &Error{File: jr.name, Line: jr.lineNo + 1, Err: err}
	}
	jr.lineNo++
	terminated := b[len(b)-1] == '\n'
	body := bytes.TrimRight(b, "\n")
	var rec *manifest.Record
	var derr error
	if long {
		derr = errLineTooLong
	} else if len(bytes.TrimSpace(body)) == 0 {
		derr = errors.New("blank line")
	} else {
		rec, derr = decodeLine(body)
	}
	if derr == nil && !terminated {
		// A complete record without its newline: the append was cut
		// after the payload. Its fsync never returned, so it is not
		// durable by protocol; treat it as torn.
		derr = errors.New("line not terminated")
	}
	if derr != nil {
		// An unterminated line is where the file ended when it was read:
		// torn, even if a writer still appending to it has added bytes
		// since (a rank resuming beside live ranks reads their journals).
		if !terminated || jr.isLast() {
			jr.torn = true
			return nil, io.EOF
		}
		return nil, &Error{File: jr.name, Line: jr.lineNo, Err: derr}
	}
	if !jr.started {
		if rec.Type != manifest.RecordOpen {
			return nil, &Error{File: jr.name, Line: jr.lineNo, Err: fmt.Errorf("first record is %q, want open", rec.Type)}
		}
		jr.started = true
	} else if rec.Type == manifest.RecordOpen {
		return nil, &Error{File: jr.name, Line: jr.lineNo, Err: errors.New("second open record")}
	}
	if rec.Seq != jr.seq {
		return nil, &Error{File: jr.name, Line: jr.lineNo, Err: fmt.Errorf("sequence %d, want %d", rec.Seq, jr.seq)}
	}
	jr.seq++
	return rec, nil
}

// isLast reports whether nothing but NUL bytes or whitespace follows the
// current line: a crash can leave a zero-filled tail after a torn append.
func (jr *Reader) isLast() bool {
	for {
		b, err := jr.br.ReadByte()
		if err != nil {
			return true
		}
		if b != 0 && b != '\n' && b != ' ' && b != '\r' && b != '\t' {
			_ = jr.br.UnreadByte()
			return false
		}
	}
}

// ReadFile reads every record of the journal file name through fsys,
// calling fn for each in order. It returns whether the file ended in a
// torn line.
func ReadFile(fsys vfs.FS, name string, fn func(*manifest.Record) error) (torn bool, err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	jr := NewReader(f, name)
	for {
		rec, err := jr.Next()
		if err == io.EOF {
			return jr.Torn(), nil
		}
		if err != nil {
			return false, err
		}
		if err := fn(rec); err != nil {
			return false, err
		}
	}
}
