package vfs_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

func TestParseFaultSpec(t *testing.T) {
	for _, c := range []struct {
		spec string
		want string // the rules, or "error: ..." with part of the message
	}{
		{"", "[]"},
		{"temp-write:error:2", "[create@_shards/tmp/*#2]"},
		{"temp-fsync:kill:1", "[sync@_shards/tmp/*#1 kill]"},
		{"journal-append:error:3,journal-fsync:error:3", "[write@_shards/journal/*#3 sync@_shards/journal/*#3]"},
		{"rename:error:4,dir-fsync:kill:5", "[rename-noreplace@*#4 sync-dir@*#5 kill]"},
		{"sync-dir@simulation/*/*:error:2", "[sync-dir@simulation/*/*#2]"},
		{"rename@:error:1", "[rename@#1]"},
		{"write@c:/x/*.tmp:kill:7", "[write@c:/x/*.tmp#7 kill]"}, // a colon in the pattern
		{"temp-write:error:0", "error: n must be a positive integer"},
		{"temp-write:error:x", "error: n must be a positive integer"},
		{"temp-write:crash:1", "error: action must be error, kill or exhaust"},
		{"create@simulation/*:exhaust:1", "[create@simulation/*#1 exhaust]"},
		{"temp-write:error", "error: want point:action:n"},
		{"temp-write", "error: want point:action:n"},
		{":error:1", "error: want point:action:n"},
		{"fsync:error:1", `error: unknown point "fsync"`},
		{"sync:error:1", `error: unknown point "sync"`},
		{"fsync@*:error:1", `error: unknown operation "fsync"`},
		{"sync@[:error:1", "error: pattern \"[\": syntax error in pattern"},
		{"temp-write:error:1,", `error: fault ""`},
	} {
		rules, err := vfs.ParseFaultSpec(c.spec)
		var got string
		if err != nil {
			got = "error: " + err.Error()
			if !strings.HasPrefix(got, "error: fault ") || !strings.Contains(got, strings.TrimPrefix(c.want, "error: ")) {
				t.Errorf("%q: %v, want %s", c.spec, err, c.want)
			}
			continue
		}
		var s []string
		for _, r := range rules {
			x := fmt.Sprintf("%v@%s#%d", r.Op, r.Path, r.Nth)
			if r.Kill {
				x += " kill"
			}
			if r.Exhaust {
				x += " exhaust"
			}
			if r.Err != nil || r.Short {
				x += " ?"
			}
			s = append(s, x)
		}
		if got = "[" + strings.Join(s, " ") + "]"; got != c.want {
			t.Errorf("%q: %s, want %s", c.spec, got, c.want)
		}
	}
}
