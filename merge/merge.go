// Package merge turns the per-rank output of a run into one verified
// dataset: it reads every journal, checks that they describe one run,
// picks one committed copy of each partition, finishes interrupted
// commits, verifies the files, clears temp garbage and writes the final
// manifests. A run with missing scenarios is reported as partial, with the
// exact ids to rerun.
//
// Phases: take _shards/merge.lock; analyze (read-only: journals, files,
// temps, training, policy); then, unless the output is corrupt, apply:
// make the journals it read durable, preserve losing copies under
// _shards/superseded, roll commits forward, fsync the directories of
// every journal's unfinished last commit, remove temp garbage, and write
// the outputs (each staged in _shards/tmp, fsynced, renamed into place),
// the simulation manifest after the others and _SUCCESS last.
//
// Invariants: committed data is never deleted or overwritten; whatever
// the merge reports committed is durable when it returns (a power cut
// right after it changes nothing it vouched for); every step is
// idempotent, so a merge killed half way is simply run again, and a
// second merge changes no byte. internal/crashtest proves these on a
// crash-simulating file system.
package merge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// Verify levels.
const (
	VerifySize = "size" // size of every file (always)
	VerifyFull = "full" // size and XXH64 of every file
)

// Options tune a merge.
type Options struct {
	Verify string // VerifySize (default) or VerifyFull
	GC     bool   // delete the files quarantined under _shards/unclaimed/
	// RequeueLost: when the only problems are committed data files that
	// are missing, truncated or altered, revoke those scenarios (durably,
	// in a journal of the merge's own), move the damaged copies aside and
	// list the scenarios as missing, so that a rerun writes them again.
	RequeueLost bool
	Strict      bool // a conflict (one scenario committed with different bytes) is an error
	Workers     int  // parallel file verification (default GOMAXPROCS)
	// Progress receives a progress line during long verification; nil for
	// none. The CLI passes stderr only when it is a terminal.
	Progress io.Writer
	// FS is the file system (default vfs.OS()); tests pass a
	// fault-injecting or crash-simulating one.
	FS vfs.FS
	// Lease judges the writers' leases (package lease): Grace, default
	// 45 s, is how long after its last renewal a writer counts as live;
	// Alive tells whether a pid of this host runs (default: signal 0),
	// for leases and for a stale merge lock alike.
	Lease lease.Options
}

// Bounds of the merge's own documents read back from OUT: whatever is on
// disk, the merge never allocates more than this for one of them.
const (
	maxDocument = 64 << 20 // a manifest or metadata document
	maxIndex    = 1 << 30  // simulation/_files.csv (about 150 bytes a file)
)

func (o *Options) defaults() error {
	switch o.Verify {
	case "":
		o.Verify = VerifySize
	case VerifySize, VerifyFull:
	default:
		return fmt.Errorf("verify level %q: want size or full", o.Verify)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.FS == nil {
		o.FS = vfs.OS()
	}
	if o.Lease.Alive == nil {
		o.Lease.Alive = lease.ProcessAlive
	}
	return nil
}

// Outcome classifies a merge; it maps one to one onto merge-shards' exit
// codes.
type Outcome int

// Outcomes.
const (
	Complete Outcome = iota // every scenario committed and verified
	Partial                 // some scenarios missing; everything present is fine
	Corrupt                 // damaged or inconsistent input: nothing was changed
	// Running: writers still hold live leases. The merge changed nothing
	// (it never touches a live writer's files, and what it would write for
	// the others a later merge writes anyway); run it again when they are
	// done.
	Running
)

func (o Outcome) String() string {
	return [...]string{manifest.StatusComplete, manifest.StatusPartial, manifest.StatusCorrupt, manifest.StatusRunning}[o]
}

// ProblemKind classifies a Problem. Every kind makes the outcome corrupt
// (exit 2), except where a kind's doc says otherwise.
type ProblemKind string

// The problem kinds: the one list of them.
const (
	// ProblemJournal: a journal line other than its torn tail is damaged
	// (checksum, JSON, sequence), or its open record is missing.
	ProblemJournal ProblemKind = "journal"
	// ProblemInconsistent: a journal was written for another case,
	// scenario count or layout than the run's.
	ProblemInconsistent ProblemKind = "inconsistent"
	// ProblemLost: a committed file is gone, and so is its temp copy.
	ProblemLost ProblemKind = "lost"
	// ProblemSize: a committed file's size differs from its record.
	ProblemSize ProblemKind = "size"
	// ProblemChecksum: a committed file's XXH64 differs from its record.
	ProblemChecksum ProblemKind = "checksum"
	// ProblemDecode: a checkpoint fragment has its recorded bytes but is
	// not a valid FlatBuffers stage.
	ProblemDecode ProblemKind = "decode"
	// ProblemConflict: two commits disagree: copies of one cut that
	// differ, or (with --strict) one partition committed with different
	// bytes.
	ProblemConflict ProblemKind = "conflict"
	// ProblemPolicy: a checkpoint does not fit together (stage counts,
	// dimensions, stage ids, fragment kinds).
	ProblemPolicy ProblemKind = "policy"
	// ProblemLayout: a symbolic link or special file inside OUT where the
	// layout has a directory or file (OUT itself and its simulation/,
	// training/ and policy/ directories may be links). The merge never
	// writes, renames or removes through it.
	ProblemLayout ProblemKind = "layout"
	// ProblemIndex: (verify) simulation/_files.csv does not match its
	// header or the manifest's dataset checksum.
	ProblemIndex ProblemKind = "index"
)

// Problem is one thing wrong with the input, naming the file (and the
// scenario or journal line when known).
type Problem struct {
	Kind     ProblemKind `json:"kind"`
	Path     string      `json:"path"`
	Scenario *int        `json:"scenario,omitempty"`
	Detail   string      `json:"detail"`
}

func (p Problem) String() string {
	s := p.Path
	if p.Scenario != nil {
		s += fmt.Sprintf(" (scenario %d)", *p.Scenario)
	}
	return fmt.Sprintf("%s: %s: %s", p.Kind, s, p.Detail)
}

// Report is what a merge (or a read-only analysis) found and did.
type Report struct {
	Dir           string              `json:"dir"`
	Outcome       Outcome             `json:"-"`
	Status        string              `json:"status"`
	CaseName      string              `json:"case_name,omitempty"`
	CaseHash      string              `json:"case_hash,omitempty"`
	Scenarios     int                 `json:"scenarios"`
	Committed     int                 `json:"committed"`
	Missing       []int               `json:"missing"`
	Files         int                 `json:"files"`
	Bytes         int64               `json:"bytes"`
	Verified      string              `json:"verified"`
	Journals      int                 `json:"journals"`
	TornTails     []string            `json:"torn_tails,omitempty"`
	Duplicates    int                 `json:"duplicate_commits"`
	Conflicts     []manifest.Conflict `json:"conflicts,omitempty"`
	RolledForward int                 `json:"rolled_forward"`
	TempRemoved   int                 `json:"temp_removed"`
	Unclaimed     []string            `json:"unclaimed,omitempty"`
	GCRemoved     int                 `json:"gc_removed"`
	Problems      []Problem           `json:"problems,omitempty"`
	Written       []string            `json:"written,omitempty"`
	Training      *TrainingReport     `json:"training,omitempty"`
	// Live lists the writers whose leases are live (Outcome Running).
	Live []lease.State `json:"live,omitempty"`
	// Revoked lists the scenarios this merge revoked (RequeueLost): their
	// files were lost or damaged after commit; they are to be rerun.
	Revoked []int `json:"revoked,omitempty"`
	// RevokedCommits counts the commits that revocations void.
	RevokedCommits int  `json:"revoked_commits,omitempty"`
	DryRun         bool `json:"dry_run,omitempty"`
}

// ExitCode is merge-shards' exit code for the report.
func (r *Report) ExitCode() int {
	switch r.Outcome {
	case Complete:
		return 0
	case Partial:
		return 3
	case Running:
		return 4
	default:
		return 2
	}
}

// Human renders the report for a terminal.
func (r *Report) Human() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", r.Dir, strings.ToUpper(r.Status))
	if r.CaseName != "" {
		fmt.Fprintf(&b, "  case         %s (hash %s)\n", r.CaseName, r.CaseHash)
	}
	if r.Scenarios == 0 && r.Training != nil {
		fmt.Fprintf(&b, "  scenarios    none yet: the ranks have not simulated (training journals only)\n")
	} else {
		fmt.Fprintf(&b, "  scenarios    %d of %d committed", r.Committed, r.Scenarios)
		if n := r.Scenarios - r.Committed; n > 0 {
			fmt.Fprintf(&b, ", %d missing: %s", n, ranges(r.Missing))
			if len(r.Missing) < n {
				fmt.Fprintf(&b, " (the first %d listed)", len(r.Missing))
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  files        %d (%s), verified by %s\n", r.Files, humanBytes(r.Bytes), r.Verified)
	fmt.Fprintf(&b, "  journals     %d", r.Journals)
	if len(r.TornTails) > 0 {
		fmt.Fprintf(&b, ", %d with a torn last line (a crash; ignored)", len(r.TornTails))
	}
	b.WriteString("\n")
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, "  duplicates   %d identical re-commits (retried attempts; fine)\n", r.Duplicates)
	}
	for _, c := range r.Conflicts {
		fmt.Fprintf(&b, "  CONFLICT     scenario %d %s: committed with different bytes by %s and %s; kept %s", c.Scenario, c.Entity, c.Loser, c.Winner, c.Winner)
		if c.Kept != "" {
			fmt.Fprintf(&b, " (the other copy is preserved at %s)", c.Kept)
		}
		b.WriteString("\n")
	}
	if r.RolledForward > 0 {
		fmt.Fprintf(&b, "  rolled forward %d files of interrupted commits\n", r.RolledForward)
	}
	if r.TempRemoved > 0 {
		fmt.Fprintf(&b, "  removed      %d temp files of uncommitted or duplicate writes\n", r.TempRemoved)
	}
	for _, u := range r.Unclaimed {
		fmt.Fprintf(&b, "  unclaimed    %s: no commit claims it; moved out of the dataset to %s\n", u, layout.Unclaimed(u))
	}
	if r.GCRemoved > 0 {
		fmt.Fprintf(&b, "  removed      %d quarantined files under %s (--gc)\n", r.GCRemoved, layout.UnclaimedDir)
	}
	for _, l := range r.Live {
		fmt.Fprintf(&b, "  LIVE         rank %d: %s on %s (pid %d), lease renewed %s ago\n", l.Rank, l.Writer, l.Host, l.PID, l.Age.Round(time.Second))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  PROBLEM      %s\n", p)
	}
	if len(r.Revoked) > 0 {
		fmt.Fprintf(&b, "  REVOKED      scenarios %s: their files were lost or damaged after commit; rerun them\n", ranges(r.Revoked))
	}
	if t := r.Training; t != nil {
		fmt.Fprintf(&b, "  training     %s: %d iterations", strings.ToUpper(t.Status), t.Iterations)
		if t.Termination != "" {
			fmt.Fprintf(&b, ", stopped by %s", t.Termination)
		}
		fmt.Fprintf(&b, "; ranks %d of %d\n", len(t.Ranks), t.WorldSize)
		if t.Iterations > 0 {
			fmt.Fprintf(&b, "               final lower bound %.6g, upper bound mean %.6g", t.LowerBound, t.UpperBound)
			if t.GapPercent != nil {
				fmt.Fprintf(&b, ", gap %.3g%%", *t.GapPercent)
			}
			b.WriteString("\n")
		}
		for _, m := range t.Missing {
			fmt.Fprintf(&b, "  MISSING      training %s\n", m)
		}
		if t.Conflicts > 0 {
			fmt.Fprintf(&b, "  CONFLICT     %d training iterations recorded twice with different rows; kept the latest\n", t.Conflicts)
			for i, c := range t.Conflicted {
				if i == 20 {
					fmt.Fprintf(&b, "               ... and %d more (--json lists them all)\n", len(t.Conflicted)-i)
					break
				}
				fmt.Fprintf(&b, "               rank %d iteration %d: kept %s, not %s\n", c.Rank, c.Iteration, c.Winner, c.Loser)
			}
		}
		if p := t.Policy; p != nil {
			if p.Iteration > 0 {
				fmt.Fprintf(&b, "  policy       checkpoint of iteration %d: %d stages, %d cuts", p.Iteration, p.Stages, p.Cuts)
				if p.RolledForward > 0 {
					fmt.Fprintf(&b, " (%d fragments rolled forward)", p.RolledForward)
				}
				b.WriteString("\n")
			} else {
				b.WriteString("  policy       no complete checkpoint: none written\n")
			}
			for _, in := range p.Incomplete {
				fmt.Fprintf(&b, "  INCOMPLETE   checkpoint %s (not used)\n", in)
			}
		}
	}
	switch r.Outcome {
	case Partial:
		fmt.Fprintf(&b, "  rerun the missing scenarios with your solver (--rerun-list FILE writes their ids, one per line, for its list option, e.g. simrank --scenarios-from FILE) and merge again\n")
	case Corrupt:
		fmt.Fprintf(&b, "  nothing was changed; no _SUCCESS\n")
		if len(revocable(r.Problems)) > 0 {
			fmt.Fprintf(&b, "  committed files were lost or damaged after commit: merge-shards --requeue-lost OUT revokes those scenarios, moves the damaged copies aside under _shards/superseded/ and lists them for a rerun\n")
		}
	case Running:
		fmt.Fprintf(&b, "  RUNNING: %d writers hold live leases; nothing was changed; merge again when they are done (merge-shards status shows progress)\n", len(r.Live))
	}
	return b.String()
}

// ranges renders sorted ids compactly: 1-4,7,9-10.
func ranges(ids []int) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		} else {
			parts = append(parts, fmt.Sprint(ids[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ErrNoJournals reports input that cannot be merged at all: a directory
// that is not a hydroshard output, or one where no rank ever started.
var ErrNoJournals = errors.New("merge: no journals: not a hydroshard output directory, or no rank ever started")

// Run merges the output directory out. It returns the report and a nil
// error for complete, partial and corrupt outcomes alike (the report says
// which); an error means the merge could not run or could not write its
// outputs (usage, environment, disk full, lock held).
func Run(ctx context.Context, out string, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := confine(&opts, out); err != nil {
		return nil, err
	}
	// Refuse a directory that is no hydroshard output before taking the
	// lock: taking it creates _shards/, which a mistyped OUT must not get.
	if _, err := opts.FS.Stat(layout.Join(out, layout.JournalDir)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", out, ErrNoJournals)
	}
	unlock, err := lock(opts.FS, out, opts.Lease.Alive)
	if link := linkIn([]any{err}); link != nil {
		// _shards/ is a link: a problem of the input (nothing is read or
		// written through it).
		r := &Report{Dir: out, Verified: opts.Verify, Outcome: Corrupt, Missing: []int{}}
		r.Status = r.Outcome.String()
		rel, rerr := filepath.Rel(out, link.Path)
		if rerr != nil {
			rel = link.Path
		}
		r.Problems = addLinkProblem(nil, filepath.ToSlash(rel))
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := analyze(ctx, out, opts, true)
	if err != nil {
		return nil, err
	}
	if st.report.Outcome == Corrupt && opts.RequeueLost {
		revoked, err := st.requeueLost()
		if err != nil {
			return st.report, err
		}
		if len(revoked) > 0 {
			if st, err = analyze(ctx, out, opts, true); err != nil {
				return nil, err
			}
			st.report.Revoked = revoked
		}
	}
	if st.report.Outcome == Running {
		return st.report, nil // a live writer's files are its own
	}
	if st.report.Outcome == Corrupt {
		// Keep everything for inspection; a stale _SUCCESS must not vouch
		// for damaged data.
		if err := st.removeFile(path.Join(layout.SimDir, layout.SuccessName)); err != nil {
			return st.report, err
		}
		if err := st.removeFile(path.Join(layout.TrainingDir, layout.SuccessName)); err != nil {
			return st.report, err
		}
		return st.report, nil
	}
	if err := st.apply(ctx, opts); err != nil {
		return st.report, err
	}
	return st.report, nil
}

// Analyze reads and verifies out like Run but changes nothing: the
// report says what a merge would do.
func Analyze(ctx context.Context, out string, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := confine(&opts, out); err != nil {
		return nil, err
	}
	st, err := analyze(ctx, out, opts, false)
	if err != nil {
		return nil, err
	}
	st.report.DryRun = true
	return st.report, nil
}

func sortedKeys[K ~int | ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
