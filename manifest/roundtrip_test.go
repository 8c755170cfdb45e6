package manifest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
)

// documents are the serialised types: every JSON document hydroshard
// writes (the merge's outputs, and the journal record and case the ranks
// write), with who owns the format (docs/api.md, "Serialised types").
var documents = []struct {
	file string
	new  func() any
	// cobre: the format is Cobre's (hydroshard adds keys Cobre's readers
	// ignore); its readers tolerate unknown keys. Else the format is
	// hydroshard's own.
	cobre bool
}{
	{"simulation/_manifest.json", func() any { return new(manifest.SimManifest) }, false},
	{"simulation/metadata.json", func() any { return new(manifest.SimMetadata) }, true},
	{"simulation/summary.json", func() any { return new(manifest.Summary) }, false},
	{"training/metadata.json", func() any { return new(manifest.TrainingMetadata) }, true},
	{"training/_manifest.json", func() any { return new(manifest.TrainingManifest) }, false},
	{"policy/metadata.json", func() any { return new(policy.Metadata) }, true},
	{"_shards/journal/*.jsonl (a record)", func() any { return new(manifest.Record) }, false},
	{"case.json", func() any { return new(manifest.Case) }, false},
}

// fill sets every exported field reachable from v (a pointer) to a
// non-zero value, distinct per field, so that a field the JSON form loses
// cannot hide behind its zero value. Slices and maps get two elements,
// pointers a filled value.
func fill(v reflect.Value) {
	n := 0
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		n++
		switch v.Kind() {
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.SetInt(int64(n % 100))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			v.SetUint(uint64(n % 100))
		case reflect.Float32, reflect.Float64:
			v.SetFloat(float64(n) + 0.25)
		case reflect.String:
			v.SetString(fmt.Sprintf("s%d", n))
		case reflect.Pointer:
			p := reflect.New(v.Type().Elem())
			walk(p.Elem())
			v.Set(p)
		case reflect.Slice:
			s := reflect.MakeSlice(v.Type(), 2, 2)
			for i := range 2 {
				walk(s.Index(i))
			}
			v.Set(s)
		case reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			for range 2 {
				k := reflect.New(v.Type().Key()).Elem()
				walk(k)
				e := reflect.New(v.Type().Elem()).Elem()
				walk(e)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		}
	}
	walk(v.Elem())
}

// roundTrip encodes v with manifest.Marshal (as every document is
// written), decodes it strictly into a new value of its type, and says
// what differs ("" when decode(encode(v)) equals v).
func roundTrip(v any) string {
	b, err := manifest.Marshal(v)
	if err != nil {
		return fmt.Sprintf("encoding: %v", err)
	}
	back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(back); err != nil {
		return fmt.Sprintf("decoding %s: %v", b, err)
	}
	if !reflect.DeepEqual(back, v) {
		return fmt.Sprintf("decode(encode(x)) != x:\n x     %+v\n back  %+v\n JSON  %s", reflect.ValueOf(v).Elem(), reflect.ValueOf(back).Elem(), b)
	}
	return ""
}

// TestDocumentsRoundTrip: every document type survives its JSON form,
// every field set (a field tagged "-", unexported where it should not be,
// or sharing another's key would not) and every field zero (omitempty
// keys come back as the zero value they were). Encoding twice gives the
// same bytes.
func TestDocumentsRoundTrip(t *testing.T) {
	for _, d := range documents {
		t.Run(d.file, func(t *testing.T) {
			full := d.new()
			fill(reflect.ValueOf(full))
			if diff := roundTrip(full); diff != "" {
				t.Errorf("%T, every field set: %s", full, diff)
			}
			if diff := roundTrip(d.new()); diff != "" {
				t.Errorf("%T, zero: %s", full, diff)
			}
			a, err1 := manifest.Marshal(full)
			b, err2 := manifest.Marshal(full)
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%T: two encodings differ (%v, %v)", full, err1, err2)
			}
		})
	}
}

// TestRoundTripFindsLoss: the round trip fails, naming the difference, on
// types that lose a field in their JSON form (what TestDocumentsRoundTrip
// guards against in the real ones).
func TestRoundTripFindsLoss(t *testing.T) {
	type ignored struct {
		A int `json:"a"`
		B int `json:"-"`
	}
	type E1 struct{ X int }
	type E2 struct{ X int }
	type clash struct { // X twice at one depth: encoding/json drops both
		E1
		E2
	}
	type inner struct {
		C string `json:"c"`
	}
	type nested struct {
		In    inner `json:"in"`
		Lossy *ignored
	}
	for _, v := range []any{new(ignored), new(clash), new(nested)} {
		fill(reflect.ValueOf(v))
		if diff := roundTrip(v); !strings.Contains(diff, "decode(encode(x)) != x") {
			t.Errorf("%T: round trip says %q, want a difference", v, diff)
		}
	}
}

// TestSimManifestReader: simulation/_manifest.json is hydroshard's own
// format and its reader (manifest.ReadSimManifest, which verify uses) is
// strict: an unknown key or another schema version is refused, named.
func TestSimManifestReader(t *testing.T) {
	m := new(manifest.SimManifest)
	fill(reflect.ValueOf(m))
	m.SchemaVersion = manifest.ManifestVersion
	b, err := manifest.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := manifest.ReadSimManifest("m.json", b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("ReadSimManifest(Marshal(m)) = %+v, %v; want m", got, err)
	}
	extra := bytes.Replace(b, []byte("{"), []byte(`{"from_a_newer_build": true,`), 1)
	if _, err := manifest.ReadSimManifest("m.json", extra); err == nil || !strings.Contains(err.Error(), "from_a_newer_build") || !strings.Contains(err.Error(), "m.json") {
		t.Errorf("unknown key: %v, want it refused, naming the key and the file", err)
	}
	m.SchemaVersion = manifest.ManifestVersion + 1
	b, err = manifest.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.ReadSimManifest("m.json", b); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Errorf("schema version %d: %v, want it refused", m.SchemaVersion, err)
	}
}

// TestOwnDocumentsVersioned: hydroshard's own output documents carry a
// schema_version, so that a reader can refuse one it does not know.
func TestOwnDocumentsVersioned(t *testing.T) {
	for _, v := range []any{manifest.SimManifest{}, manifest.Summary{}, manifest.TrainingManifest{}} {
		f, ok := reflect.TypeOf(v).FieldByName("SchemaVersion")
		if !ok || f.Tag.Get("json") != "schema_version" {
			t.Errorf("%T has no schema_version", v)
		}
	}
}

// TestCobreDocumentsTolerant: Cobre's documents are read the way their
// readers here read them (encoding/json without DisallowUnknownFields:
// policy.Open for policy/metadata.json, verify for training/metadata.json)
// and the way Cobre's readers do: a key the type does not know, such as
// one a later Cobre adds, is ignored and every known key is kept.
func TestCobreDocumentsTolerant(t *testing.T) {
	for _, d := range documents {
		if !d.cobre {
			continue
		}
		t.Run(d.file, func(t *testing.T) {
			v := d.new()
			fill(reflect.ValueOf(v))
			b, err := manifest.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			extra := bytes.Replace(b, []byte("{"), []byte(`{"a_later_cobre_key": {"x": [1, 2]},`), 1)
			back := d.new()
			if err := json.Unmarshal(extra, back); err != nil {
				t.Fatalf("%T with an unknown key: %v", v, err)
			}
			if !reflect.DeepEqual(back, v) {
				t.Errorf("%T with an unknown key decodes to %+v, want %+v", v, back, v)
			}
		})
	}
}
