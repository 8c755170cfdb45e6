package merge

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
)

func fuzzOpen(t testing.TB) *manifest.OpenInfo {
	c, err := manifest.LoadCase("../testdata/cases/tiny")
	if err != nil {
		t.Fatal(err)
	}
	w := layout.NewWriterID("1", 0, 0, "", []byte{1, 2, 3, 4, 5, 6}).String()
	return &manifest.OpenInfo{Writer: w, Scenarios: 4, Case: c, CaseName: c.Name}
}

// FuzzCheckCommit: whatever a commit record says, checkCommit never
// panics, and a commit it accepts names only files the layout makes for
// the journal's writer, below simulation/ and _shards/tmp/, with sane
// counts: nothing a forged record could use to reach outside OUT.
func FuzzCheckCommit(f *testing.F) {
	o := fuzzOpen(f)
	valid := manifest.CommitInfo{Scenario: 1}
	for _, e := range o.Case.Entities() {
		valid.Files = append(valid.Files, manifest.FileRecord{Entity: e, Path: layout.DataFile(e, 0, 1), Temp: layout.SimTemp(o.Writer, 1, e), Rows: 3, Bytes: 10, XXH64: "0123456789abcdef"})
	}
	b, _ := json.Marshal(valid)
	f.Add(b)
	f.Add([]byte(strings.Replace(string(b), "simulation/", "../", 1)))
	f.Add([]byte(`{"scenario":0,"files":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c manifest.CommitInfo
		if json.Unmarshal(data, &c) != nil {
			return
		}
		if err := checkCommit(o, &c); err != nil {
			return
		}
		if len(c.Files) != len(o.Case.Entities()) {
			t.Fatalf("accepted %d files for %d tables", len(c.Files), len(o.Case.Entities()))
		}
		for _, f := range c.Files {
			if err := layout.Check(f.Path); err != nil || !strings.HasPrefix(f.Path, layout.SimDir+"/") {
				t.Fatalf("accepted path %q: %v", f.Path, err)
			}
			if err := layout.CheckTemp(f.Temp); err != nil || !strings.HasPrefix(f.Temp, layout.TempDir+"/"+o.Writer+".") {
				t.Fatalf("accepted temp %q: %v", f.Temp, err)
			}
			if f.Rows < 0 || f.Bytes < 0 {
				t.Fatalf("accepted counts %d rows %d bytes", f.Rows, f.Bytes)
			}
		}
	})
}
