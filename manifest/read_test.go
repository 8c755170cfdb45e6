package manifest

import (
	"strings"
	"testing"
)

// TestStrictReaders: hydroshard's own manifests are read strictly: an
// unknown key, data after the document or another schema version is an
// error naming the file.
func TestStrictReaders(t *testing.T) {
	readers := map[string]func(string, []byte) error{
		"simulation/_manifest.json": func(p string, b []byte) error { _, err := ReadSimManifest(p, b); return err },
		"training/_manifest.json":   func(p string, b []byte) error { _, err := ReadTrainingManifest(p, b); return err },
	}
	for name, read := range readers {
		for _, c := range []struct {
			doc  string
			want string // "" for no error
		}{
			{`{"schema_version": 1}`, ""},
			{"{\"schema_version\": 1}\n  \n", ""},
			{`{"schema_version": 1, "bogus": 2}`, "unknown field"},
			{`{"schema_version": 1}{"schema_version": 1}`, "data after the JSON document"},
			{`{"schema_version": 1} x`, "data after"},
			{`{"schema_version": 2}`, "schema version 2"},
			{`[]`, "cannot unmarshal"},
		} {
			err := read(name, []byte(c.doc))
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%s %q: %v", name, c.doc, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), name)):
				t.Errorf("%s %q: %v, want an error naming the file and saying %q", name, c.doc, err, c.want)
			}
		}
	}
}
