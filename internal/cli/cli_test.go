package cli

import (
	"errors"
	"flag"
	"os"
	"slices"
	"testing"
)

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		pos  []string
		json bool
		list string
	}{
		{[]string{"OUT"}, []string{"OUT"}, false, ""},
		{[]string{"OUT", "--json"}, []string{"OUT"}, true, ""},
		{[]string{"--json", "OUT", "--rerun-list", "f"}, []string{"OUT"}, true, "f"},
		{[]string{"--rerun-list", "--", "OUT"}, []string{"OUT"}, false, "--"}, // "--" as a flag's value
		{[]string{"--", "--json"}, []string{"--json"}, false, ""},
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, true, ""},
	} {
		fs := NewFlags("x")
		json := fs.Bool("json", false, "")
		list := fs.String("rerun-list", "", "")
		pos, err := ParseArgs(fs, c.args)
		if err != nil || !slices.Equal(pos, c.pos) || *json != c.json || *list != c.list {
			t.Errorf("%q: positional %q json %v list %q err %v; want %q %v %q", c.args, pos, *json, *list, err, c.pos, c.json, c.list)
		}
	}
	fs := NewFlags("x")
	if _, err := ParseArgs(fs, []string{"OUT", "--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help after OUT: %v, want flag.ErrHelp", err)
	}
}

func TestFlagError(t *testing.T) {
	fs := NewFlags("x")
	fs.Int("workers", 0, "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "abc"}, "--workers abc: want an integer"},
		{[]string{"--nope"}, "unknown flag --nope"},
		{[]string{"--workers"}, "--workers: needs a value"},
	} {
		_, err := ParseArgs(fs, c.args)
		if err == nil || FlagError(fs, err) != c.want {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
}

// TestIsTerminal: /dev/null is a character device, not a terminal: no
// progress lines into it.
func TestIsTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("/dev/null counts as a terminal")
	}
}
