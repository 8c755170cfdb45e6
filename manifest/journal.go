package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// JournalVersion is the version of the journal record format.
const JournalVersion = 1

// Record types.
const (
	RecordOpen   = "open"
	RecordCommit = "commit"
	RecordClose  = "close"
)

// Close statuses.
const (
	StatusClean       = "clean"
	StatusInterrupted = "interrupted"
	StatusFailed      = "failed"
)

// TimeFormat is how journals write times: RFC 3339, UTC, with a fixed
// nine-digit fraction, so that string order is time order (RFC3339Nano
// trims trailing zeros and would not sort).
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Record is one journal line's payload. Exactly one of Open, Commit, Close
// is set, matching Type.
type Record struct {
	Type      string         `json:"type"`
	Seq       int64          `json:"seq"`  // 0 for open, then +1 per record
	Time      string         `json:"time"` // TimeFormat
	Open      *OpenInfo      `json:"open,omitempty"`
	Commit    *CommitInfo    `json:"commit,omitempty"`
	Iteration *IterationInfo `json:"iteration,omitempty"`
	// Checkpoint is a rank's policy checkpoint fragments (training journals).
	Checkpoint *CheckpointInfo `json:"checkpoint,omitempty"`
	Close      *CloseInfo      `json:"close,omitempty"`
}

// OpenInfo says who wrote a journal and for what run.
type OpenInfo struct {
	Version   int    `json:"version"`
	Producer  string `json:"producer"` // "hydroshard <version>"
	Writer    string `json:"writer"`   // unique writer id: also the journal file's base name
	Rank      int    `json:"rank"`
	World     int    `json:"world"`
	LocalRank int    `json:"local_rank"`
	Host      string `json:"host"`
	JobID     string `json:"job_id,omitempty"`
	Attempt   int    `json:"attempt"`
	Launcher  string `json:"launcher"`
	PID       int    `json:"pid"`
	Solver    string `json:"solver"`
	Threads   int    `json:"threads,omitempty"`
	CaseName  string `json:"case_name"`
	CaseHash  string `json:"case_hash"`
	// Case is the whole case document, so the merge can build dictionaries
	// without the input files.
	Case      *Case  `json:"case,omitempty"`
	Scenarios int    `json:"scenarios"` // expected scenario count of the run
	Layout    Layout `json:"layout"`
	// Phase is PhaseSimulation ("") or PhaseTraining.
	Phase string `json:"phase,omitempty"`
	// Training is the root rank's training configuration (training
	// journals only).
	Training *TrainingConfig `json:"training,omitempty"`
}

// Layout holds the options that decide file names; all ranks of a run must
// agree on them.
type Layout struct {
	// ScenarioPad is the zero-padding width of scenario_id=N directory
	// names; 0 means unpadded (the default, so DuckDB types the column
	// BIGINT), 4 reproduces Cobre's scenario_id=0042.
	ScenarioPad int    `json:"scenario_pad"`
	Ownership   string `json:"ownership"`
}

// PartitionDir returns the name of a scenario's partition directory.
func (l Layout) PartitionDir(scenario int) string {
	return fmt.Sprintf("scenario_id=%0*d", l.ScenarioPad, scenario)
}

// CommitInfo is the commit point of one scenario: once this record is
// durable, the files it lists are the scenario's result.
type CommitInfo struct {
	Scenario int          `json:"scenario"`
	Files    []FileRecord `json:"files"`
	Cost     CostSummary  `json:"cost"`
}

// FileRecord describes one committed data file. Paths are relative to the
// output directory and use forward slashes.
type FileRecord struct {
	Entity string `json:"entity"`
	Temp   string `json:"temp"`
	Path   string `json:"path"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	XXH64  string `json:"xxh64"` // 16 lowercase hex digits
}

// CostSummary is the scenario's cost, carried in the journal so that the
// merge computes statistics without reopening Parquet files.
type CostSummary struct {
	Total  float64   `json:"total"`
	Stages []float64 `json:"stages"`
}

// CloseInfo ends a journal.
type CloseInfo struct {
	Status    string `json:"status"`
	Committed int    `json:"committed"` // scenarios (simulation) or iterations (training)
	Reason    string `json:"reason,omitempty"`
	// Termination is why training stopped (training journals of the root
	// rank): "converged", "iteration_limit", "signal", ...
	Termination string `json:"termination,omitempty"`
}

// FormatXXH64 renders a checksum the way journals and manifests store it.
func FormatXXH64(h uint64) string { return fmt.Sprintf("%016x", h) }

// ParseXXH64 parses a checksum written by FormatXXH64.
func ParseXXH64(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("checksum %q: want 16 hex digits", s)
	}
	return strconv.ParseUint(s, 16, 64)
}

// line is the on-disk form of one journal line: the record's exact bytes
// and their XXH64, so that a flipped byte anywhere in the record is found.
type line struct {
	XXH64  string          `json:"xxh64"`
	Record json.RawMessage `json:"record"`
}

// EncodeRecord returns one journal line, newline included.
func EncodeRecord(r *Record) ([]byte, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(line{XXH64: FormatXXH64(xxhash.Sum64(payload)), Record: payload})
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// JournalError reports damage in a journal, naming the file and line.
type JournalError struct {
	File string
	Line int // 1-based
	Err  error
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("journal %s line %d: %v", e.File, e.Line, e.Err)
}

func (e *JournalError) Unwrap() error { return e.Err }

// ErrChecksum is wrapped by a JournalError for a line whose checksum fails.
var ErrChecksum = errors.New("checksum mismatch (the line was altered or damaged)")

// linePrefix and lineSuffix frame every line EncodeRecord writes; the 16
// checksum digits sit between the prefix's two parts.
const (
	linePrefixA = `{"xxh64":"`
	linePrefixB = `","record":`
	lineSuffix  = `}`
)

// splitLine returns the checksum and record bytes of a line in the exact
// layout EncodeRecord writes, without a JSON decode of the wrapper (which
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

func decodeLine(b []byte) (*Record, error) {
	sum, payload, ok := splitLine(b)
	if !ok {
		var l line
		if err := strictUnmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("not a journal line: %w", err)
		}
		sum, payload = l.XXH64, l.Record
	}
	want, err := ParseXXH64(sum)
	if err != nil {
		return nil, err
	}
	if xxhash.Sum64(payload) != want {
		return nil, ErrChecksum
	}
	var r Record
	if err := strictUnmarshal(payload, &r); err != nil {
		return nil, fmt.Errorf("bad record: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Record) validate() error {
	set := 0
	for _, ok := range []bool{r.Open != nil, r.Commit != nil, r.Iteration != nil, r.Checkpoint != nil, r.Close != nil} {
		if ok {
			set++
		}
	}
	ok := set == 1 && ((r.Type == RecordOpen && r.Open != nil) || (r.Type == RecordCommit && r.Commit != nil) ||
		(r.Type == RecordIteration && r.Iteration != nil) || (r.Type == RecordCheckpoint && r.Checkpoint != nil) ||
		(r.Type == RecordClose && r.Close != nil))
	if !ok {
		return fmt.Errorf("record type %q does not match its body", r.Type)
	}
	if r.Open != nil && r.Open.Version != JournalVersion {
		return fmt.Errorf("journal version %d, this build reads version %d", r.Open.Version, JournalVersion)
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

// JournalReader streams the records of one journal file. A damaged LAST
// line (a torn append cut short by a crash) ends the stream quietly and is
// reported by Torn; damage on any earlier line is a *JournalError naming
// file and line. The first record must be an open record, and sequence
// numbers must count up from 0.
type JournalReader struct {
	name    string
	br      *bufio.Reader
	lineNo  int
	torn    bool
	seq     int64
	started bool
}

// NewJournalReader reads a journal from r; name is used in errors.
func NewJournalReader(r io.Reader, name string) *JournalReader {
	return &JournalReader{name: name, br: bufio.NewReaderSize(r, 64<<10)}
}

// Torn reports whether the last line was damaged and ignored.
func (jr *JournalReader) Torn() bool { return jr.torn }

// readLine returns the next raw line with its newline, if it has one, and
// io.EOF at the end.
func (jr *JournalReader) readLine() ([]byte, error) {
	b, err := jr.br.ReadBytes('\n')
	if len(b) == 0 && err != nil {
		return nil, err
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// Next returns the next record, or io.EOF after the last one.
func (jr *JournalReader) Next() (*Record, error) {
	b, err := jr.readLine()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, &JournalError{File: jr.name, Line: jr.lineNo + 1, Err: err}
	}
	jr.lineNo++
	terminated := b[len(b)-1] == '\n'
	body := bytes.TrimRight(b, "\n")
	var rec *Record
	var derr error
	if len(bytes.TrimSpace(body)) == 0 {
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
		if jr.isLast() {
			jr.torn = true
			return nil, io.EOF
		}
		return nil, &JournalError{File: jr.name, Line: jr.lineNo, Err: derr}
	}
	if !jr.started {
		if rec.Type != RecordOpen {
			return nil, &JournalError{File: jr.name, Line: jr.lineNo, Err: fmt.Errorf("first record is %q, want open", rec.Type)}
		}
		jr.started = true
	} else if rec.Type == RecordOpen {
		return nil, &JournalError{File: jr.name, Line: jr.lineNo, Err: errors.New("second open record")}
	}
	if rec.Seq != jr.seq {
		return nil, &JournalError{File: jr.name, Line: jr.lineNo, Err: fmt.Errorf("sequence %d, want %d", rec.Seq, jr.seq)}
	}
	jr.seq++
	return rec, nil
}

// isLast reports whether nothing but NUL bytes or whitespace follows the
// current line: a crash can leave a zero-filled tail after a torn append.
func (jr *JournalReader) isLast() bool {
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

// ReadJournalFile reads every record of a journal file, calling fn for
// each in order. It returns whether the file ended in a torn line.
func ReadJournalFile(path string, fn func(*Record) error) (torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	jr := NewJournalReader(f, path)
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
