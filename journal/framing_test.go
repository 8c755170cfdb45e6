package journal

import (
	"runtime"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"

	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleJournal(t testing.TB, commits int) []byte {
	t.Helper()
	var buf bytes.Buffer
	recs := []*manifest.Record{{Type: manifest.RecordOpen, Open: &manifest.OpenInfo{Version: manifest.JournalVersion, Writer: "w", World: 1, CaseName: "tiny", CaseHash: "00", Scenarios: 10}}}
	for i := range commits {
		recs = append(recs, &manifest.Record{Type: manifest.RecordCommit, Commit: &manifest.CommitInfo{Scenario: i, Files: []manifest.FileRecord{{Entity: "costs", Path: "simulation/costs/scenario_id=0/data.parquet", Rows: 3, Bytes: 100, XXH64: "0123456789abcdef"}}, Cost: manifest.CostSummary{Total: 1.5, Stages: []float64{1, 0.5}}}})
	}
	recs = append(recs, &manifest.Record{Type: manifest.RecordClose, Close: &manifest.CloseInfo{Status: manifest.StatusClean, Committed: commits}})
	for i, r := range recs {
		r.Seq = int64(i)
		r.Time = "2026-11-28T10:00:00Z"
		b, err := Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

func readAll(data []byte) ([]*manifest.Record, bool, error) {
	jr := NewReader(bytes.NewReader(data), "j.jsonl")
	var out []*manifest.Record
	for {
		r, err := jr.Next()
		if err == io.EOF {
			return out, jr.Torn(), nil
		}
		if err != nil {
			return out, false, err
		}
		out = append(out, r)
	}
}

func TestJournalRoundTrip(t *testing.T) {
	recs, torn, err := readAll(sampleJournal(t, 3))
	if err != nil || torn {
		t.Fatalf("err %v torn %v", err, torn)
	}
	if len(recs) != 5 || recs[0].Open.CaseName != "tiny" || recs[2].Commit.Scenario != 1 || recs[4].Close.Status != manifest.StatusClean {
		t.Fatalf("records %+v", recs)
	}
}

// TestJournalTornTail cuts the journal at every byte of its last line: the
// earlier records must all come back and the tail must be reported torn.
func TestJournalTornTail(t *testing.T) {
	data := sampleJournal(t, 2)
	lastStart := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	for cut := lastStart + 1; cut < len(data); cut++ {
		recs, torn, err := readAll(data[:cut])
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if !torn || len(recs) != 3 {
			t.Fatalf("cut at %d: %d records, torn %v; want 3, torn", cut, len(recs), torn)
		}
	}
	// A crash may also leave the torn tail padded with zeros.
	padded := append(append([]byte{}, data[:lastStart+20]...), make([]byte, 4096)...)
	if recs, torn, err := readAll(padded); err != nil || !torn || len(recs) != 3 {
		t.Fatalf("zero-padded tail: %d records, torn %v, err %v", len(recs), torn, err)
	}
}

// TestJournalDamage flips one byte in each earlier line: always an error
// naming the file and the line.
func TestJournalDamage(t *testing.T) {
	data := sampleJournal(t, 3)
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines = lines[:len(lines)-1] // SplitAfter leaves an empty tail
	offset := 0
	for i, l := range lines[:len(lines)-1] {
		for _, pos := range []int{2, len(l) / 2, len(l) - 3} {
			bad := append([]byte{}, data...)
			bad[offset+pos] ^= 0x01
			_, _, err := readAll(bad)
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("line %d byte %d flipped: err %v, want *Error", i+1, pos, err)
			}
			if je.Line != i+1 || !strings.Contains(err.Error(), "j.jsonl line") {
				t.Fatalf("line %d byte %d flipped: %v", i+1, pos, err)
			}
		}
		offset += len(l)
	}
}

func TestJournalStructure(t *testing.T) {
	data := sampleJournal(t, 2)
	lines := bytes.SplitAfter(data, []byte("\n"))
	cases := map[string][]byte{
		"no open first":    bytes.Join([][]byte{lines[1], lines[2]}, nil),
		"sequence gap":     bytes.Join([][]byte{lines[0], lines[2], lines[3]}, nil),
		"blank line":       bytes.Join([][]byte{lines[0], []byte("\n"), lines[1], lines[2]}, nil),
		"garbage mid-file": bytes.Join([][]byte{lines[0], []byte("{\"x\":1}\n"), lines[1]}, nil),
	}
	for name, d := range cases {
		if _, _, err := readAll(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j.jsonl")
	if err := os.WriteFile(p, sampleJournal(t, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	torn, err := ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
		if r.Commit != nil {
			n++
		}
		return nil
	})
	if err != nil || torn || n != 4 {
		t.Fatalf("commits %d torn %v err %v", n, torn, err)
	}
}

func FuzzJournalReader(f *testing.F) {
	data := sampleJournal(f, 2)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = readAll(b) // must not panic
	})
}

// growingReader returns its chunks one Read at a time, with io.EOF between
// them: a file that a writer appends to while it is being read.
type growingReader struct{ chunks [][]byte }

func (g *growingReader) Read(p []byte) (int, error) {
	if len(g.chunks) == 0 {
		return 0, io.EOF
	}
	c := g.chunks[0]
	if len(c) == 0 {
		g.chunks = g.chunks[1:]
		return 0, io.EOF
	}
	n := copy(p, c)
	g.chunks[0] = c[n:]
	return n, nil
}

// TestJournalAppendedWhileRead: a line cut where the file ended when it
// was read is a torn tail, even when the rest of it arrives before the
// reader looks further (a rank resuming beside live ranks).
func TestJournalAppendedWhileRead(t *testing.T) {
	data := sampleJournal(t, 1)
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := len(lines[1]) / 2
	g := &growingReader{chunks: [][]byte{append(append([]byte{}, lines[0]...), lines[1][:cut]...), lines[1][cut:]}}
	jr := NewReader(g, "live.jsonl")
	if r, err := jr.Next(); err != nil || r.Open == nil {
		t.Fatalf("first record %+v, %v", r, err)
	}
	if r, err := jr.Next(); err != io.EOF || !jr.Torn() {
		t.Fatalf("half-appended line: %+v, %v, torn %v; want a torn tail", r, err, jr.Torn())
	}
}

// fill is an io.Reader of n copies of one byte, allocating nothing.
type fill struct {
	b byte
	n int64
}

func (f *fill) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), f.n)
	for i := range p[:k] {
		p[i] = f.b
	}
	f.n -= k
	return int(k), nil
}

// TestLongLines: a line longer than MaxLineBytes is never held whole:
// what reading it allocates does not grow with its length. As the last
// line, unterminated or not, it is a torn tail; followed by more records
// it is damage naming the line. The records before it come back. Encode
// refuses to write such a line.
func TestLongLines(t *testing.T) {
	data := sampleJournal(t, 2)
	first := data[:bytes.IndexByte(data, '\n')+1]
	for _, c := range []struct {
		name    string
		b       byte
		after   []byte // after the long line
		wantErr bool
	}{
		{"unterminated tail", 'x', nil, false},
		{"terminated last line", 'x', []byte("\n"), false},
		{"zeros", 0, nil, false},
		{"followed by a record", 'x', append([]byte("\n"), first...), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var allocs [2]uint64
			for i, n := range []int64{MaxLineBytes + 1, 3 * MaxLineBytes} {
				in := io.MultiReader(bytes.NewReader(data), &fill{c.b, n}, bytes.NewReader(c.after))
				before := heapAllocs()
				jr := NewReader(in, "j.jsonl")
				recs := 0
				var err error
				for {
					if _, err = jr.Next(); err != nil {
						break
					}
					recs++
				}
				allocs[i] = heapAllocs() - before
				if c.wantErr {
					var je *Error
					if !errors.As(err, &je) || je.Line != 5 || !strings.Contains(err.Error(), "longer than") {
						t.Fatalf("err %v, want a *Error of line 5 naming the limit", err)
					}
				} else if err != io.EOF || !jr.Torn() {
					t.Fatalf("err %v torn %v, want a torn tail", err, jr.Torn())
				}
				if recs != 4 {
					t.Fatalf("%d records before it, want 4", recs)
				}
			}
			if allocs[1] > allocs[0]+1<<20 {
				t.Fatalf("reading a line of 3*MaxLineBytes allocated %d bytes, of MaxLineBytes+1 %d: it grows with the line", allocs[1], allocs[0])
			}
		})
	}
	long := strings.Repeat("x", MaxLineBytes)
	r := &manifest.Record{Type: manifest.RecordOpen, Open: &manifest.OpenInfo{Solver: long}}
	if _, err := Encode(r); err == nil || !strings.Contains(err.Error(), "MaxLineBytes") {
		t.Fatalf("Encode of a record longer than a line: %v", err)
	}
}

func heapAllocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}
