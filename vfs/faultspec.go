package vfs

import (
	"fmt"
	"strconv"
	"strings"
)

// FaultEnv is the environment variable that a build with the faultinject
// tag reads, once, to wrap OS() in an Injector (see ParseFaultSpec for its
// syntax). Other builds never read it.
const FaultEnv = "HYDROSHARD_FAULT"

// legacyPoints maps the fault points of the old internal/faults package to
// rules, so existing HYDROSHARD_FAULT specs keep working.
var legacyPoints = map[string]Rule{
	"temp-write":     {Op: OpCreate, Path: "_shards/tmp/*"},
	"temp-fsync":     {Op: OpSync, Path: "_shards/tmp/*"},
	"journal-append": {Op: OpWrite, Path: "_shards/journal/*"},
	"journal-fsync":  {Op: OpSync, Path: "_shards/journal/*"},
	"rename":         {Op: OpRenameNoReplace, Path: "*"},
	// Every directory sync counts, not only those of partition
	// directories: Dirs.Ensure's parent syncs too.
	"dir-fsync": {Op: OpSyncDir, Path: "*"},
}

// ParseFaultSpec turns a HYDROSHARD_FAULT spec, "point:action:n" items
// separated by commas, into rules for Inject. point is "op@pattern" (an Op
// name and a Rule.Path pattern, e.g. "sync-dir@simulation/*/*") or one of
// the legacy names temp-write (create@_shards/tmp/*), temp-fsync
// (sync@_shards/tmp/*), journal-append (write@_shards/journal/*),
// journal-fsync (sync@_shards/journal/*), rename (rename-noreplace@*) and
// dir-fsync (sync-dir@*, which counts every directory sync). action is
// "error" (the operation fails with ErrInjected), "kill" (the process
// sends itself SIGKILL) or "exhaust" (the process allocates memory until
// the Go runtime dies of out of memory); n is the 1-based matching operation that
// triggers it. An empty spec is no rules. Tests in other packages use it
// to arm, in process, what a child process gets from the environment.
func ParseFaultSpec(spec string) ([]Rule, error) {
	if spec == "" {
		return nil, nil
	}
	var rules []Rule
	for _, item := range strings.Split(spec, ",") {
		r, err := parseFault(item)
		if err != nil {
			return nil, fmt.Errorf("fault %q: %w", item, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// parseFault parses one "point:action:n"; it splits from the right so
// that a pattern may contain a colon.
func parseFault(item string) (Rule, error) {
	rest, nstr, ok1 := cutLast(item, ":")
	point, action, ok2 := cutLast(rest, ":")
	if !ok1 || !ok2 || point == "" {
		return Rule{}, fmt.Errorf("want point:action:n")
	}
	n, err := strconv.Atoi(nstr)
	if err != nil || n < 1 {
		return Rule{}, fmt.Errorf("n must be a positive integer")
	}
	var r Rule
	if opName, pattern, ok := strings.Cut(point, "@"); ok {
		op, err := ParseOp(opName)
		if err != nil {
			return Rule{}, err
		}
		r = Rule{Op: op, Path: pattern}
	} else if r, ok = legacyPoints[point]; !ok {
		return Rule{}, fmt.Errorf("unknown point %q (want op@pattern or a legacy name)", point)
	}
	switch action {
	case "error":
	case "kill":
		r.Kill = true
	case "exhaust":
		r.Exhaust = true
	default:
		return Rule{}, fmt.Errorf("action must be error, kill or exhaust")
	}
	r.Nth = n
	if err := validRule(r); err != nil {
		return Rule{}, err
	}
	return r, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
