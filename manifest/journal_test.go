package manifest

import (
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
	recs := []*Record{{Type: RecordOpen, Open: &OpenInfo{Version: JournalVersion, Writer: "w", World: 1, CaseName: "tiny", CaseHash: "00", Scenarios: 10}}}
	for i := range commits {
		recs = append(recs, &Record{Type: RecordCommit, Commit: &CommitInfo{Scenario: i, Files: []FileRecord{{Entity: "costs", Path: "simulation/costs/scenario_id=0/data.parquet", Rows: 3, Bytes: 100, XXH64: "0123456789abcdef"}}, Cost: CostSummary{Total: 1.5, Stages: []float64{1, 0.5}}}})
	}
	recs = append(recs, &Record{Type: RecordClose, Close: &CloseInfo{Status: StatusClean, Committed: commits}})
	for i, r := range recs {
		r.Seq = int64(i)
		r.Time = "2026-11-28T10:00:00Z"
		b, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

func readAll(data []byte) ([]*Record, bool, error) {
	jr := NewJournalReader(bytes.NewReader(data), "j.jsonl")
	var out []*Record
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
	if len(recs) != 5 || recs[0].Open.CaseName != "tiny" || recs[2].Commit.Scenario != 1 || recs[4].Close.Status != StatusClean {
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
			var je *JournalError
			if !errors.As(err, &je) {
				t.Fatalf("line %d byte %d flipped: err %v, want *JournalError", i+1, pos, err)
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

func TestReadJournalFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j.jsonl")
	if err := os.WriteFile(p, sampleJournal(t, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	torn, err := ReadJournalFile(p, func(r *Record) error {
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
