package rank

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hydroshard/hydroshard/manifest"
)

// RerunListError reports a rerun list (the file merge-shards --rerun-list
// writes, which a launcher hands to every rank of a rerun job) that cannot
// be used: it names the file and, for a bad line, the line (1-based) and
// its text. Err is the underlying I/O error when there is one (Line is 0
// then).
type RerunListError struct {
	File string
	Line int    // 0: the file as a whole (it could not be read)
	Text string // the offending line, trimmed
	What string // what is wrong with it
	Err  error
}

func (e *RerunListError) Error() string {
	if e.Line == 0 {
		if e.Err != nil {
			return fmt.Sprintf("rank: rerun list %s: %v", e.File, e.Err)
		}
		return fmt.Sprintf("rank: rerun list %s: %s", e.File, e.What)
	}
	if e.Text == "" {
		return fmt.Sprintf("rank: rerun list %s line %d: %s", e.File, e.Line, e.What)
	}
	return fmt.Sprintf("rank: rerun list %s line %d: %q %s", e.File, e.Line, e.Text, e.What)
}

func (e *RerunListError) Unwrap() error { return e.Err }

// ReadRerunList reads a rerun list: one scenario id per line, as
// merge-shards --rerun-list writes it (an empty file means nothing is
// missing). Every id must be in 0..n-1, n being the run's scenario count
// (Options.Scenarios). Blank lines, lines starting with '#', and spaces
// around an id are ignored, so that a hand-edited list works; an id listed
// twice counts once (two lists concatenated). Anything else (a sign, a
// fraction, two ids on a line) is refused: every error is a
// *RerunListError naming the file and the line. The ids are returned
// ascending, without repeats.
func ReadRerunList(file string, n int) ([]int, error) {
	if n < 1 || n > manifest.MaxScenarios {
		return nil, fmt.Errorf("rank: ReadRerunList: scenario count %d, want the run's count (1..%d)", n, manifest.MaxScenarios)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, &RerunListError{File: file, Err: err}
	}
	defer f.Close()
	seen := map[int]bool{}
	var ids []int
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		id, ok := parseID(s)
		if !ok || id >= n {
			return nil, &RerunListError{File: file, Line: line, Text: s, What: fmt.Sprintf("is not a scenario id of this run (want one integer in 0..%d per line)", n-1)}
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &RerunListError{File: file, Line: line + 1, What: "is too long to hold a scenario id", Err: err}
		}
		return nil, &RerunListError{File: file, Err: err}
	}
	slices.Sort(ids)
	return ids, nil
}

// parseID reads a scenario id: decimal digits only (no sign, no space).
func parseID(s string) (int, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.Atoi(s)
	return v, err == nil
}

// MyScenarios returns, ascending, the scenarios this rank is to write in a
// run of n scenarios:
//
//   - without a rerun list (rerunFile ""), own.Owned(n, id): this rank's
//     share of 0..n-1;
//   - with one (the file merge-shards --rerun-list wrote, which a launcher
//     passes to every rank of a rerun job as --scenarios-from FILE), this
//     rank's share of the listed ids: the same rule applied to their
//     positions in the list (ascending), so the ranks of the rerun job,
//     whatever their number, split the list between them with no overlap
//     and no gap. An empty list gives every rank nothing to do.
//
// The list is read with ReadRerunList (a bad file is a *RerunListError,
// which a solver reports as a usage error). A solver that opens a Writer
// need not call this: Options.RerunFile and Writer.Owned do it with the
// writer's own scenario count, identity and ownership. MyScenarios is for
// work that comes before Open (deciding what to solve) or without a
// writer. It returns an error, never panics, on a bad n, identity or rule.
func MyScenarios(n int, id Identity, own Ownership, rerunFile string) ([]int, error) {
	if n < 1 || n > manifest.MaxScenarios {
		return nil, fmt.Errorf("rank: MyScenarios: scenario count %d, want the run's count (1..%d)", n, manifest.MaxScenarios)
	}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if own != Contiguous && own != RoundRobin {
		return nil, fmt.Errorf("rank: MyScenarios: unknown ownership %v (want %v or %v)", own, Contiguous, RoundRobin)
	}
	if rerunFile == "" {
		return own.Owned(n, id), nil
	}
	list, err := ReadRerunList(rerunFile, n)
	if err != nil {
		return nil, err
	}
	idx := own.Owned(len(list), id)
	out := make([]int, len(idx))
	for i, k := range idx {
		out[i] = list[k]
	}
	return out, nil
}
