// Package cli holds the command-line conventions merge-shards and simrank
// share: flags anywhere among the positional arguments, "--" ends them,
// usage errors worded in one line that names the flag, and the terminal
// test for progress lines. Each command prints its own help and chooses
// its own usage exit code.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// NewFlags returns a flag set whose errors and help the caller prints:
// the flag package would print the whole help on every error, to stderr.
func NewFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// ParseArgs parses args with flags anywhere: before, between and after
// the positional arguments, which it returns in order. "--" ends the
// flags; everything after it is positional. The error is flag.ErrHelp
// for -h, -help and --help.
func ParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endedByDashes(fs, args[:len(args)-len(rest)]) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endedByDashes reports whether the flag package stopped at a "--" among
// the arguments it consumed, rather than taking "--" as a flag's value
// ("--rerun-list --").
func endedByDashes(fs *flag.FlagSet, consumed []string) bool {
	value := false // the next argument is the value of the flag before it
	for _, a := range consumed {
		switch {
		case value:
			value = false
		case a == "--":
			return true
		case len(a) > 1 && a[0] == '-':
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
					value = true
				}
			}
		}
	}
	return false
}

// IsSet reports whether the command line set the flag name.
func IsSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// FlagError words an error of the flag package for a one-line usage
// error, naming the flag as the help does: "--workers abc: want an
// integer".
func FlagError(fs *flag.FlagSet, err error) string {
	s := err.Error()
	if name, ok := strings.CutPrefix(s, "flag provided but not defined: -"); ok {
		return "unknown flag --" + name
	}
	if name, ok := strings.CutPrefix(s, "flag needs an argument: -"); ok {
		return "--" + name + ": needs a value"
	}
	var value, name string
	if _, err := fmt.Sscanf(s, "invalid boolean value %q for -%s", &value, &name); err == nil {
		name = strings.TrimSuffix(name, ":")
		return fmt.Sprintf("--%s=%s: want true or false", name, value)
	}
	if _, err := fmt.Sscanf(s, "invalid value %q for flag -%s", &value, &name); err == nil {
		name = strings.TrimSuffix(name, ":")
		want := "invalid value"
		if f := fs.Lookup(name); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case int, int64:
					want = "want an integer"
				case uint, uint64:
					want = "want a non-negative integer"
				case float64:
					want = "want a number"
				case bool:
					want = "want true or false (--" + name + "=false)"
				case time.Duration:
					want = "want a duration such as 500ms, 45s or 2m"
				}
			}
		}
		return fmt.Sprintf("--%s %s: %s", name, value, want)
	}
	return s
}

// IsTerminal reports whether w is a terminal (not merely a character
// device: /dev/null is one), where progress lines are drawn.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
