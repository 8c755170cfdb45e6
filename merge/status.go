package merge

// Status: a read-only progress view of a run, safe beside live ranks and
// beside other readers (merge-shards status, its --watch).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// States of a writer (and of a rank) in a StatusReport.
const (
	// StateLive: no close record, and a lease renewed within the grace
	// (by the file system's clock) of a process that is not known gone.
	StateLive = "live"
	// StateClosed: the journal ends in a close record (its status says how).
	StateClosed = "closed"
	// StateDead: no close record, and its lease expired, is missing, or
	// belongs to a process of this host that no longer exists.
	StateDead = "dead"
	// StateAbsent: a rank of the world without any journal (yet).
	StateAbsent = "absent"
)

// Phases as a StatusReport names them.
const (
	PhaseNameSimulation = "simulation"
	PhaseNameTraining   = "training"
)

// statusMaxScenarios bounds the per-scenario table of Status (4 bytes a
// scenario): a commit of a scenario id past it is counted by its writer
// only.
const statusMaxScenarios = 1 << 24

// StatusReport is a snapshot of a run's progress, read from the journals
// and leases only. It is not a verdict: merge-shards (or report) says
// whether the output is complete.
type StatusReport struct {
	Dir string `json:"dir"`
	// Now is the file system's clock (ClockFromFS), or this host's when
	// the clock probe could not be written (a read-only directory).
	Now         time.Time `json:"now"`
	ClockFromFS bool      `json:"clock_from_fs"`
	// LeaseGraceSeconds is the reader's grace (a writer's lease may
	// extend it: see package lease).
	LeaseGraceSeconds float64 `json:"lease_grace_s"`
	// Journals is how many journal files were found (0: no rank started
	// yet, or no hydroshard output).
	Journals int          `json:"journals"`
	Totals   StatusTotals `json:"totals"`
	// Ranks: one per rank that wrote a journal, and one (absent) per rank
	// of the world that did not; ordered by rank.
	Ranks    []RankStatus    `json:"ranks"`
	Training *TrainingStatus `json:"training,omitempty"`
	// Compacted is set when merge-shards compact committed compacted/.
	Compacted *CompactedStatus `json:"compacted,omitempty"`
	// Problems: journals that could not be read in full (damage, not a
	// torn tail). Status reads what precedes the damage.
	Problems []string `json:"problems,omitempty"`
}

// CompactedStatus is status's account of compacted/ (from its manifest;
// merge-shards verify checks the files).
type CompactedStatus struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Partitions: "kept" (both forms hold the tables) or "removed"
	// (compact --replace: compacted/ alone does).
	Partitions string `json:"partitions"`
}

// StatusTotals sums a StatusReport.
type StatusTotals struct {
	// Scenarios is the run's scenario count (the largest any simulation
	// open record gives); Committed how many distinct ones any writer
	// committed.
	Scenarios int `json:"scenarios"`
	Committed int `json:"committed"`
	// Ranks by state (of the ranks listed).
	Ranks  int `json:"ranks"`
	Live   int `json:"live"`
	Dead   int `json:"dead"`
	Closed int `json:"closed"`
	Absent int `json:"absent"`
	// Writers by state (every journal of every attempt and phase).
	Writers       int `json:"writers"`
	WritersLive   int `json:"writers_live"`
	WritersDead   int `json:"writers_dead"`
	WritersClosed int `json:"writers_closed"`
	// ETASeconds is the largest ETA of the ranks with work left, when
	// every one of them has an ETA; 0 when nothing is left.
	ETASeconds *float64 `json:"eta_s,omitempty"`
}

// RankStatus is one rank's progress over all its writers.
type RankStatus struct {
	Rank int `json:"rank"`
	// State is live when any writer of the rank is live, else the state
	// of its latest writer (by open time); absent without a journal.
	State string `json:"state"`
	// CloseStatus is the latest writer's close status when State is closed.
	CloseStatus string `json:"close_status,omitempty"`
	// World, Ownership and Scenarios are the simulation layout the rank's
	// latest simulation writer recorded (the run's latest one for a rank
	// that has none yet).
	World     int    `json:"world"`
	Ownership string `json:"ownership,omitempty"`
	// Owned is the number of scenarios the rank owns; -1 when unknown (no
	// simulation journal yet, or an ownership rule this build does not
	// know).
	Owned int `json:"owned"`
	// Committed: owned scenarios committed by this rank's writers (any
	// attempt). CommittedAny: owned scenarios committed by any writer
	// (a rerun may be shared among other ranks).
	Committed    int `json:"committed"`
	CommittedAny int `json:"committed_any"`
	// RatePerMin is the commit rate of the rank's latest simulation writer
	// (scenarios per minute over its lifetime, by journal record times).
	RatePerMin *float64 `json:"rate_per_min,omitempty"`
	// ETASeconds: the owned scenarios no writer has committed, at the rate
	// of the rank's live simulation writers; 0 when none is left; absent
	// when unknown (nothing live, or no rate yet).
	ETASeconds *float64 `json:"eta_s,omitempty"`
	// LeaseAgeSeconds is the age of the rank's most recent lease renewal
	// (file system clock); absent when the rank holds no lease.
	LeaseAgeSeconds *float64 `json:"lease_age_s,omitempty"`
	// Iteration is the rank's last durable training iteration (0: none).
	Iteration int            `json:"iteration,omitempty"`
	Writers   []WriterStatus `json:"writers"`
}

// WriterStatus is one writer: one phase of one attempt of a rank.
type WriterStatus struct {
	Writer  string `json:"writer"`
	Phase   string `json:"phase"` // PhaseNameSimulation or PhaseNameTraining
	Attempt int    `json:"attempt"`
	JobID   string `json:"job_id,omitempty"`
	Host    string `json:"host,omitempty"`
	PID     int    `json:"pid,omitempty"`
	State   string `json:"state"`
	// Close record (State closed).
	CloseStatus string `json:"close_status,omitempty"`
	CloseReason string `json:"close_reason,omitempty"`
	Termination string `json:"termination,omitempty"`
	// Committed counts commit records (simulation). Iterations and
	// Checkpoints count the training records; Iteration is the last one.
	Committed   int `json:"committed"`
	Iterations  int `json:"iterations,omitempty"`
	Iteration   int `json:"iteration,omitempty"`
	Checkpoints int `json:"checkpoints,omitempty"`
	// Opened and LastRecord are journal record times (the writer's clock);
	// zero for a writer known only by its lease.
	Opened     time.Time `json:"opened"`
	LastRecord time.Time `json:"last_record"`
	// RatePerMin: commits (simulation) or iterations (training) per
	// minute from Opened to LastRecord.
	RatePerMin      *float64 `json:"rate_per_min,omitempty"`
	LeaseAgeSeconds *float64 `json:"lease_age_s,omitempty"`
	// Torn: the journal ended in a torn line (normal while it is appended
	// to, or after a crash).
	Torn    bool   `json:"torn,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// TrainingStatus is the training's progress, from the root rank.
type TrainingStatus struct {
	// MaxIterations from the root's open record (0: no limit or unknown).
	MaxIterations int `json:"max_iterations"`
	// Iteration is the root's latest iteration with a convergence row,
	// and the bounds are that row's.
	Iteration      int      `json:"iteration"`
	LowerBound     float64  `json:"lower_bound"`
	UpperBoundMean float64  `json:"upper_bound_mean"`
	UpperBoundStd  float64  `json:"upper_bound_std"`
	GapPercent     *float64 `json:"gap_percent"`
	// State of the root's latest training writer, and its termination
	// once closed.
	State       string `json:"state"`
	Termination string `json:"termination,omitempty"`
	// ETASeconds to MaxIterations at the root's live iteration rate.
	ETASeconds *float64 `json:"eta_s,omitempty"`
}

// statusWriter is what Status keeps of one journal: counters, never
// records.
type statusWriter struct {
	WriterStatus
	rel       string
	rank      int
	training  bool
	world     int
	scenarios int
	ownership string
	maxIter   int
	closed    bool
	consumed  int64 // bytes read: a journal that grew since is read again
	conv      *manifest.ConvergenceRow
	live      bool
}

// statusScenarios records which ranks committed each scenario, in 4 bytes
// a scenario: the first committing rank, and a map for the rare scenario
// committed by more than one rank.
type statusScenarios struct {
	by   []int32 // rank+1 of the first rank to commit the scenario; 0: none
	more map[int32][]int32
}

func (c *statusScenarios) grow(n int) {
	n = min(n, statusMaxScenarios)
	if n > len(c.by) {
		c.by = append(c.by, make([]int32, n-len(c.by))...)
	}
}

func (c *statusScenarios) mark(s, rank int) {
	if s < 0 || s >= len(c.by) {
		return
	}
	r := int32(rank + 1)
	switch {
	case c.by[s] == 0:
		c.by[s] = r
	case c.by[s] == r:
	default:
		for _, o := range c.more[int32(s)] {
			if o == r {
				return
			}
		}
		if c.more == nil {
			c.more = map[int32][]int32{}
		}
		c.more[int32(s)] = append(c.more[int32(s)], r)
	}
}

func (c *statusScenarios) any(s int) bool { return s >= 0 && s < len(c.by) && c.by[s] != 0 }

func (c *statusScenarios) byRank(s, rank int) bool {
	if !c.any(s) {
		return false
	}
	r := int32(rank + 1)
	if c.by[s] == r {
		return true
	}
	for _, o := range c.more[int32(s)] {
		if o == r {
			return true
		}
	}
	return false
}

// statusCounter counts the bytes read from a journal.
type statusCounter struct {
	r io.Reader
	n int64
}

func (c *statusCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Status reports the progress of the run in out: per rank and writer,
// live, closed or dead; scenarios committed of those owned; commit rate,
// ETA and lease age; the training's iteration and bounds. It only reads
// (apart from lease.Now's clock probe, created and removed at once), takes
// no lock, and may run at any time, beside live ranks, a merge, and any
// number of other Status calls. It keeps counters per journal, never its
// records. An error means out could not be read; a directory without
// journals gives a report with Journals 0.
func Status(ctx context.Context, out string, opts Options) (*StatusReport, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := confine(&opts, out); err != nil {
		return nil, err
	}
	if opts.Lease.Grace <= 0 {
		opts.Lease.Grace = lease.DefaultGrace
	}
	fsys := opts.FS
	if st, err := fsys.Stat(out); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("status: %s is not a directory", out)
	}
	rep := &StatusReport{Dir: out, LeaseGraceSeconds: opts.Lease.Grace.Seconds(), Ranks: []RankStatus{}}
	rels, err := journal.List(fsys, out)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("status: %w", err)
	}
	rep.Journals = len(rels)
	var sets statusScenarios
	var writers []*statusWriter
	read := func(rel string) (*statusWriter, error) {
		return statusRead(fsys, layout.Join(out, rel), rel, &sets)
	}
	for _, rel := range rels {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := read(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed since the listing
		case err != nil:
			rep.Problems = append(rep.Problems, err.Error())
			continue
		case w == nil:
			continue // no durable open record yet: describes nothing
		}
		writers = append(writers, w)
	}
	// Leases are judged after the journals: a writer creates its lease
	// before its journal, so every journal read has its lease judged,
	// unless the writer closed meanwhile; such a journal has grown since,
	// and is read again below.
	now, fromFS, err := lease.Now(ctx, fsys, out)
	if err != nil {
		return nil, err
	}
	rep.Now, rep.ClockFromFS = now.UTC(), fromFS
	states, err := lease.Judge(fsys, out, now, opts.Lease)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	seen := map[string]bool{}
	for i, w := range writers {
		if !w.closed && !states[w.Writer].Live {
			if st, err := fsys.Stat(layout.Join(out, w.rel)); err == nil && st.Size() != w.consumed {
				if again, err := read(w.rel); err == nil && again != nil {
					w = again
					writers[i] = w
				}
			}
		}
		seen[w.Writer] = true
		st, ok := states[w.Writer]
		if ok {
			w.LeaseAgeSeconds = statusPtr(st.Age.Seconds())
		}
		switch {
		case w.closed:
			w.State = StateClosed
		case ok && st.Live:
			w.State, w.live = StateLive, true
		default:
			w.State = StateDead
		}
	}
	// A live lease whose journal was not there yet: a writer starting.
	for _, name := range statusKeys(states) {
		st := states[name]
		id, err := layout.ParseWriterID(name)
		if seen[name] || !st.Live || err != nil {
			continue
		}
		w := &statusWriter{rank: id.Rank, training: id.Tag == layout.TrainingTag, live: true}
		w.WriterStatus = WriterStatus{Writer: name, Phase: PhaseNameSimulation, Attempt: id.Attempt, Host: st.Host, PID: st.PID, State: StateLive, LeaseAgeSeconds: statusPtr(st.Age.Seconds())}
		if w.training {
			w.Phase = PhaseNameTraining
		}
		writers = append(writers, w)
	}
	statusAssemble(rep, writers, &sets)
	if cm, err := loadCompaction(fsys, out); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	} else if cm != nil {
		rep.Compacted = &CompactedStatus{Files: len(cm.Files), Partitions: cm.Partitions}
		for _, f := range cm.Files {
			rep.Compacted.Bytes += f.Bytes
		}
	}
	return rep, nil
}

// statusRead reads the journal p into counters; nil without a durable
// open record. Its commits mark sets (marking twice is harmless).
func statusRead(fsys vfs.FS, p, rel string, sets *statusScenarios) (*statusWriter, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := &statusCounter{r: f}
	jr := journal.NewReader(cr, p)
	var w *statusWriter
	for {
		rec, err := jr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if w == nil {
				return nil, err
			}
			w.Problem = err.Error()
			break
		}
		if w == nil {
			if rec.Open.Phase == manifest.PhaseMerge {
				return nil, nil // a merge's own journal (revocations): no writer of the run
			}
			w = statusOpen(rel, rec.Open)
			if w.scenarios > 0 && !w.training {
				sets.grow(w.scenarios)
			}
		}
		w.add(rec, sets)
	}
	if w != nil {
		w.Torn, w.consumed = jr.Torn(), cr.n
	}
	return w, nil
}

func statusOpen(rel string, o *manifest.OpenInfo) *statusWriter {
	w := &statusWriter{rel: rel, rank: o.Rank, training: o.Phase == manifest.PhaseTraining,
		world: o.World, scenarios: o.Scenarios, ownership: o.Layout.Ownership}
	if w.world < 0 || w.world > MaxWorld {
		// A claim beyond the limit (the merge refuses the journal): the
		// ranks of the world are unknown, rather than listed by the
		// billion.
		w.world = 0
	}
	w.WriterStatus = WriterStatus{Writer: o.Writer, Phase: PhaseNameSimulation, Attempt: o.Attempt, JobID: o.JobID, Host: o.Host, PID: o.PID}
	if w.Writer == "" {
		w.Writer = strings.TrimSuffix(path.Base(rel), layout.JournalSuffix)
	}
	if w.training {
		w.Phase = PhaseNameTraining
		if o.Training != nil {
			w.maxIter = o.Training.MaxIterations
		}
	}
	return w
}

// add counts one record.
func (w *statusWriter) add(rec *manifest.Record, sets *statusScenarios) {
	if t, err := time.Parse(time.RFC3339Nano, rec.Time); err == nil {
		if rec.Type == manifest.RecordOpen {
			w.Opened = t.UTC()
		}
		if t.After(w.LastRecord) {
			w.LastRecord = t.UTC()
		}
	}
	switch {
	case rec.Commit != nil:
		w.Committed++
		if !w.training && rec.Commit.Scenario < w.scenarios {
			sets.mark(rec.Commit.Scenario, w.rank)
		}
	case rec.Iteration != nil:
		w.Iterations++
		it := rec.Iteration.Iteration
		w.Iteration = max(w.Iteration, it)
		if c := rec.Iteration.Convergence; c != nil && (w.conv == nil || it >= int(w.conv.Iteration)) {
			row := *c
			row.Iteration = int32(it)
			w.conv = &row
		}
	case rec.Checkpoint != nil:
		w.Checkpoints++
	case rec.Close != nil:
		w.closed = true
		w.CloseStatus, w.CloseReason, w.Termination = rec.Close.Status, rec.Close.Reason, rec.Close.Termination
	}
	if d := w.LastRecord.Sub(w.Opened); d > 0 && !w.Opened.IsZero() {
		n := w.Committed
		if w.training {
			n = w.Iterations
		}
		w.RatePerMin = statusPtr(float64(n) / d.Minutes())
	}
}

// statusAssemble groups the writers by rank and fills rep.
func statusAssemble(rep *StatusReport, writers []*statusWriter, sets *statusScenarios) {
	byRank := map[int][]*statusWriter{}
	var runSim *statusWriter // the latest simulation writer of the run
	for _, w := range writers {
		byRank[w.rank] = append(byRank[w.rank], w)
		if !w.training && w.world > 0 && statusLater(w, runSim) {
			runSim = w
		}
		rep.Totals.Writers++
		switch w.State {
		case StateLive:
			rep.Totals.WritersLive++
		case StateDead:
			rep.Totals.WritersDead++
		case StateClosed:
			rep.Totals.WritersClosed++
		}
		if !w.training {
			rep.Totals.Scenarios = max(rep.Totals.Scenarios, w.scenarios)
		}
	}
	if runSim != nil {
		for r := range runSim.world {
			if _, ok := byRank[r]; !ok {
				byRank[r] = nil
			}
		}
	}
	for s := range min(rep.Totals.Scenarios, len(sets.by)) {
		if sets.any(s) {
			rep.Totals.Committed++
		}
	}
	etaKnown, eta, left := true, 0.0, false
	for _, r := range statusKeys(byRank) {
		ws := byRank[r]
		sort.Slice(ws, func(i, j int) bool { return statusLater(ws[j], ws[i]) })
		rs := RankStatus{Rank: r, State: StateAbsent, Owned: -1, Writers: []WriterStatus{}}
		var latest, sim *statusWriter
		rate := 0.0
		liveSim := false
		for _, w := range ws {
			rs.Writers = append(rs.Writers, w.WriterStatus)
			latest = w
			if w.live {
				rs.State = StateLive
			}
			if w.LeaseAgeSeconds != nil && (rs.LeaseAgeSeconds == nil || *w.LeaseAgeSeconds < *rs.LeaseAgeSeconds) {
				rs.LeaseAgeSeconds = statusPtr(*w.LeaseAgeSeconds)
			}
			if w.training {
				rs.Iteration = max(rs.Iteration, w.Iteration)
				continue
			}
			if w.world > 0 {
				sim = w
			}
			if w.live {
				liveSim = true
				if w.RatePerMin != nil {
					rate += *w.RatePerMin
				}
			}
		}
		if latest != nil && rs.State != StateLive {
			rs.State, rs.CloseStatus = latest.State, latest.CloseStatus
		}
		if sim == nil && runSim != nil && r < runSim.world {
			sim = runSim
		}
		if sim != nil {
			rs.World, rs.Ownership = sim.world, sim.ownership
			if start, step, count, ok := statusOwned(sim.ownership, sim.scenarios, sim.world, r); ok {
				rs.Owned = count
				for i := range count {
					s := start + i*step
					if sets.any(s) {
						rs.CommittedAny++
						if sets.byRank(s, r) {
							rs.Committed++
						}
					}
				}
			}
			if sim.rank == r && sim.RatePerMin != nil {
				rs.RatePerMin = statusPtr(*sim.RatePerMin)
			}
		}
		if rs.Owned >= 0 {
			remaining := rs.Owned - rs.CommittedAny
			switch {
			case remaining == 0:
				rs.ETASeconds = statusPtr(0.0)
			case liveSim && rate > 0:
				rs.ETASeconds = statusPtr(float64(remaining) / rate * 60)
			}
			if remaining > 0 {
				left = true
				if rs.ETASeconds == nil {
					etaKnown = false
				} else {
					eta = max(eta, *rs.ETASeconds)
				}
			}
		}
		rep.Totals.Ranks++
		switch rs.State {
		case StateLive:
			rep.Totals.Live++
		case StateDead:
			rep.Totals.Dead++
		case StateClosed:
			rep.Totals.Closed++
		case StateAbsent:
			rep.Totals.Absent++
		}
		rep.Ranks = append(rep.Ranks, rs)
	}
	if etaKnown && (left || rep.Totals.Scenarios > 0) {
		rep.Totals.ETASeconds = statusPtr(eta)
	}
	rep.Training = statusTraining(byRank[0])
}

// statusTraining is the training's progress from the root's writers (nil
// without a training journal of the root).
func statusTraining(root []*statusWriter) *TrainingStatus {
	var ts *TrainingStatus
	var latest *statusWriter
	for _, w := range root { // oldest first
		if !w.training {
			continue
		}
		if ts == nil {
			ts = &TrainingStatus{}
		}
		latest = w
		if w.maxIter > 0 {
			ts.MaxIterations = w.maxIter
		}
		if c := w.conv; c != nil && int(c.Iteration) >= ts.Iteration {
			ts.Iteration, ts.LowerBound, ts.UpperBoundMean, ts.UpperBoundStd = int(c.Iteration), c.LowerBound, c.UpperBoundMean, c.UpperBoundStd
			ts.GapPercent = nil
			if c.GapPercent != nil {
				ts.GapPercent = statusPtr(*c.GapPercent)
			}
		}
	}
	if ts == nil {
		return nil
	}
	ts.State, ts.Termination = latest.State, latest.Termination
	if latest.live && ts.MaxIterations > 0 && latest.RatePerMin != nil && *latest.RatePerMin > 0 {
		ts.ETASeconds = statusPtr(float64(max(0, ts.MaxIterations-ts.Iteration)) / *latest.RatePerMin * 60)
	}
	return ts
}

// statusLater reports whether a was opened after b (nil b: true); equal
// open times fall back on the attempt, then the writer id.
func statusLater(a, b *statusWriter) bool {
	switch {
	case b == nil:
		return true
	case !a.Opened.Equal(b.Opened):
		return a.Opened.After(b.Opened)
	case a.Attempt != b.Attempt:
		return a.Attempt > b.Attempt
	}
	return a.Writer > b.Writer
}

// statusOwned gives the scenarios of [0,n) that rank owns under rule as
// an arithmetic progression: start, start+step, ... (count of them). It
// repeats the arithmetic of rank.Ownership.Owned (merge may not import
// rank; status_test.go checks that the two agree): contiguous gives each
// rank one block, the first n%world ranks one scenario more; round-robin
// gives the ids with id%world == rank. ok is false for an unknown rule or
// an impossible layout.
func statusOwned(rule string, n, world, rank int) (start, step, count int, ok bool) {
	if n < 0 || world < 1 || rank < 0 {
		return 0, 0, 0, false
	}
	if rank >= world {
		return 0, 1, 0, true
	}
	switch strings.ToLower(strings.TrimSpace(rule)) {
	case "contiguous":
		base, extra := n/world, n%world
		if rank < extra {
			return rank * (base + 1), 1, base + 1, true
		}
		return extra*(base+1) + (rank-extra)*base, 1, base, true
	case "round-robin":
		if rank >= n {
			return rank, world, 0, true
		}
		return rank, world, (n - rank + world - 1) / world, true
	}
	return 0, 0, 0, false
}

func statusPtr[T any](v T) *T { return &v }

func statusKeys[K ~int | ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Human renders the report as a compact table, one line per rank.
func (r *StatusReport) Human() string {
	var b strings.Builder
	clock := "file system clock"
	if !r.ClockFromFS {
		clock = "this host's clock: the clock probe could not be written"
	}
	fmt.Fprintf(&b, "status of %s at %s (%s)\n", r.Dir, r.Now.Format(time.RFC3339), clock)
	if r.Journals == 0 && len(r.Ranks) == 0 {
		fmt.Fprintf(&b, "no journals under %s yet: no rank has started\n", layout.JournalDir)
	}
	fmt.Fprintln(&b, r.Summary())
	if t := r.Training; t != nil {
		fmt.Fprintf(&b, "training: %s\n", t.line())
	}
	if c := r.Compacted; c != nil {
		what := "beside the partition files"
		if c.Partitions == manifest.PartitionsRemoved {
			what = "the partition files removed (compact --replace)"
		}
		fmt.Fprintf(&b, "compacted: %d files (%s) under %s/, %s\n", c.Files, humanBytes(c.Bytes), layout.CompactDir, what)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	if len(r.Ranks) == 0 {
		return b.String()
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RANK\tSTATE\tCOMMITTED\tOWNED\tANY\tRATE/MIN\tETA\tLEASE\tITER\tWRITERS\t")
	for _, rs := range r.Ranks {
		state := rs.State
		if rs.CloseStatus != "" {
			state += " (" + rs.CloseStatus + ")"
		}
		owned := "?"
		if rs.Owned >= 0 {
			owned = fmt.Sprint(rs.Owned)
		}
		iter := "-"
		if rs.Iteration > 0 {
			iter = fmt.Sprint(rs.Iteration)
		}
		writers := fmt.Sprint(len(rs.Writers))
		if dead := statusCount(rs.Writers, StateDead); dead > 0 {
			writers += fmt.Sprintf(" (%d dead)", dead)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", rs.Rank, state, rs.Committed, owned, rs.CommittedAny,
			statusRate(rs.RatePerMin), statusSeconds(rs.ETASeconds), statusSeconds(rs.LeaseAgeSeconds), iter, writers)
	}
	_ = tw.Flush()
	return b.String()
}

// Summary is the report in one line: scenarios committed, ranks and
// writers by state, the ETA, and the training's iteration and gap.
func (r *StatusReport) Summary() string {
	t := r.Totals
	s := fmt.Sprintf("committed %d/%d scenarios; ranks: %d live, %d dead, %d closed", t.Committed, t.Scenarios, t.Live, t.Dead, t.Closed)
	if t.Absent > 0 {
		s += fmt.Sprintf(", %d absent", t.Absent)
	}
	s += fmt.Sprintf("; writers: %d live, %d dead, %d closed", t.WritersLive, t.WritersDead, t.WritersClosed)
	if t.ETASeconds != nil {
		s += "; eta " + statusSeconds(t.ETASeconds)
	}
	if tr := r.Training; tr != nil {
		s += fmt.Sprintf("; training iteration %d", tr.Iteration)
		if tr.MaxIterations > 0 {
			s += fmt.Sprintf("/%d", tr.MaxIterations)
		}
		if tr.GapPercent != nil {
			s += fmt.Sprintf(" gap %.3g%%", *tr.GapPercent)
		}
	}
	return s
}

func (t *TrainingStatus) line() string {
	s := fmt.Sprintf("iteration %d", t.Iteration)
	if t.MaxIterations > 0 {
		s += fmt.Sprintf("/%d", t.MaxIterations)
	}
	if t.Iteration > 0 {
		s += fmt.Sprintf(", lower bound %.6g, upper bound %.6g (std %.3g)", t.LowerBound, t.UpperBoundMean, t.UpperBoundStd)
		if t.GapPercent != nil {
			s += fmt.Sprintf(", gap %.3g%%", *t.GapPercent)
		}
	}
	s += "; root " + t.State
	if t.Termination != "" {
		s += " (" + t.Termination + ")"
	}
	if t.ETASeconds != nil {
		s += ", eta " + statusSeconds(t.ETASeconds)
	}
	return s
}

func statusCount(ws []WriterStatus, state string) int {
	n := 0
	for _, w := range ws {
		if w.State == state {
			n++
		}
	}
	return n
}

func statusRate(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

// statusSeconds renders seconds briefly: 0.4s, 12s, 3m20s, 2h5m0s.
func statusSeconds(v *float64) string {
	switch {
	case v == nil:
		return "-"
	case *v < 10:
		return fmt.Sprintf("%.1fs", *v)
	}
	return (time.Duration(min(*v, 1e9)) * time.Second).String()
}
