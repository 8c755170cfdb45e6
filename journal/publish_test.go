package journal_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// TestPublishRaces: a rank and a merge may both publish one commit (the
// merge rolling forward what the rank is still renaming). Whichever comes
// second finds the file in place with the committed bytes and counts it
// as published; a file that is in neither place, or other bytes in place,
// is an error and nothing is overwritten.
func TestPublishRaces(t *testing.T) {
	const out = "/o"
	data := []byte("committed bytes")
	rec := manifest.FileRecord{
		Entity: "costs",
		Temp:   layout.SimTemp("w", 0, "costs"),
		Path:   layout.DataFile("costs", 0, 0),
		Bytes:  int64(len(data)),
		XXH64:  manifest.FormatXXH64(xxhash.Sum64(data)),
	}
	tmp, final := layout.Join(out, rec.Temp), layout.Join(out, rec.Path)
	cases := []struct {
		name     string
		setup    func(m *vfs.Mem)
		wantErr  func(error) bool
		wantData []byte // at the final path afterwards
	}{
		{"only the temp: published", func(m *vfs.Mem) { must(t, m.WriteFile(tmp, data)) },
			func(err error) bool { return err == nil }, data},
		{"already published by the other side", func(m *vfs.Mem) { must(t, m.WriteFile(final, data)) },
			func(err error) bool { return err == nil }, data},
		{"both: the temp copy is redundant", func(m *vfs.Mem) { must(t, m.WriteFile(tmp, data)); must(t, m.WriteFile(final, data)) },
			func(err error) bool { return err == nil }, data},
		{"in neither place", func(m *vfs.Mem) { must(t, m.WriteFile(layout.Join(out, "x"), nil)) },
			func(err error) bool { return errors.Is(err, fs.ErrNotExist) }, nil},
		{"other bytes in place", func(m *vfs.Mem) { must(t, m.WriteFile(tmp, data)); must(t, m.WriteFile(final, []byte("other"))) },
			func(err error) bool { var ce *journal.ConflictError; return errors.As(err, &ce) }, []byte("other")},
		{"other bytes in place, temp gone", func(m *vfs.Mem) { must(t, m.WriteFile(final, []byte("other"))) },
			func(err error) bool { var ce *journal.ConflictError; return errors.As(err, &ce) }, []byte("other")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := vfs.NewMem()
			c.setup(m)
			err := journal.Publish(vfs.NewDirs(m, out), out, []manifest.FileRecord{rec})
			if !c.wantErr(err) {
				t.Fatalf("Publish: %v", err)
			}
			got, rerr := m.ReadFile(final)
			if c.wantData == nil {
				if rerr == nil {
					t.Fatalf("final file appeared: %q", got)
				}
				return
			}
			if string(got) != string(c.wantData) {
				t.Fatalf("final file %q, want %q", got, c.wantData)
			}
			if err == nil {
				if _, err := m.ReadFile(tmp); err == nil {
					t.Fatal("the temp copy was left behind")
				}
				// Published means durable: a power cut keeps it.
				if got, err := m.CrashClone(vfs.CrashOptions{}).ReadFile(final); err != nil || string(got) != string(data) {
					t.Fatalf("after a power cut: %q, %v", got, err)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
