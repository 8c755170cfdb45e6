package merge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// Training statuses. Unlike Cobre's, they say what happened.
const (
	TrainingComplete    = "complete"    // every rank recorded every iteration up to the limit
	TrainingConverged   = "converged"   // complete, and stopped because the gap closed
	TrainingInterrupted = "interrupted" // the root stopped on a signal; what is there is gap-free
	TrainingPartial     = "partial"     // ranks or iterations are missing
	TrainingRunning     = "running"     // a training writer holds a live lease (reports only)
)

// iterRec is one durable iteration record of one journal.
type iterRec struct {
	time   string
	writer string // the journal's writer id
	seq    int64
	info   *manifest.IterationInfo
}

// later reports whether r was recorded after o: by time, then (equal
// times) by writer id and sequence, as commits are, so that the choice
// never depends on the order journals were read in.
func (r iterRec) later(o iterRec) bool {
	if d := cmpTime(r.time, o.time); d != 0 {
		return d > 0
	}
	if r.writer != o.writer {
		return r.writer > o.writer
	}
	return r.seq > o.seq
}

// TrainingConflict is one (rank, iteration) recorded twice with different
// rows: the merge kept Winner's (the latest).
type TrainingConflict struct {
	Rank      int    `json:"rank"`
	Iteration int    `json:"iteration"`
	Winner    string `json:"winner"`
	Loser     string `json:"loser"`
}

// TrainingReport is the training part of a merge report.
type TrainingReport struct {
	Status      string   `json:"status"`
	Iterations  int      `json:"iterations"` // iterations the root rank recorded, gap-free from 1
	WorldSize   int      `json:"world_size"`
	Ranks       []int    `json:"ranks"`
	Missing     []string `json:"missing,omitempty"` // "rank 2: iterations 5-7", "rank 3: no training journal"
	Termination string   `json:"termination,omitempty"`
	LowerBound  float64  `json:"final_lower_bound"`
	UpperBound  float64  `json:"final_upper_bound_mean"`
	GapPercent  *float64 `json:"final_gap_percent,omitempty"`
	Duplicates  int      `json:"duplicate_iterations"`
	Conflicts   int      `json:"conflicting_iterations"`
	// Conflicted names each conflict, by rank and iteration.
	Conflicted []TrainingConflict `json:"conflicts,omitempty"`
	// Policy is the checkpoint the merged policy/ comes from (nil when
	// no rank recorded a checkpoint).
	Policy *PolicyReport `json:"policy,omitempty"`
}

// training is what the merge keeps of the training journals.
type training struct {
	journals []*journalState
	// chosen is, per (rank, iteration), the record kept: the latest when
	// attempts recorded it twice.
	chosen map[[2]int]iterRec
	root   *journalState // the latest training journal of rank 0
	iters  int
}

// analyzeTraining reads what the training journals recorded and reports
// missing ranks and iterations, never inventing any.
func (s *state) analyzeTraining() {
	var tj []*journalState
	for _, j := range s.other {
		if j.open.Phase == manifest.PhaseTraining {
			tj = append(tj, j)
		}
	}
	if len(tj) == 0 {
		return
	}
	t := &training{journals: tj, chosen: map[[2]int]iterRec{}}
	tr := &TrainingReport{Ranks: []int{}}
	ranks := map[int]bool{}
	for _, j := range tj {
		tr.WorldSize = max(tr.WorldSize, j.open.World)
		ranks[j.open.Rank] = true
		if j.open.Rank == 0 && (t.root == nil || cmpTime(j.first, t.root.first) > 0) {
			t.root = j
		}
		for _, it := range j.iterations {
			k := [2]int{j.open.Rank, it.info.Iteration}
			prev, dup := t.chosen[k]
			switch {
			case !dup:
				t.chosen[k] = it
			case sameIteration(prev.info, it.info):
				tr.Duplicates++
			default:
				tr.Conflicts++
				win, lose := prev, it
				if it.later(prev) {
					t.chosen[k] = it
					win, lose = it, prev
				}
				tr.Conflicted = append(tr.Conflicted, TrainingConflict{Rank: k[0], Iteration: k[1], Winner: win.writer, Loser: lose.writer})
			}
		}
	}
	tr.Ranks = sortedKeys(ranks)
	// The root's gap-free prefix of iterations is the training history.
	for t.chosen[[2]int{0, t.iters + 1}].info != nil {
		t.iters++
	}
	tr.Iterations = t.iters
	if t.root == nil {
		tr.Missing = append(tr.Missing, "rank 0 (the root): no training journal, so no convergence history")
	}
	// A rank lacks every iteration up to the last one any rank recorded.
	// Bounding each rank by its own last iteration (and the root's
	// prefix) hid a root killed mid-training: the other ranks went on to
	// record later iterations, yet the root's were not reported missing
	// and the training passed as "interrupted" rather than partial.
	// The gaps are computed from the iterations recorded, not by walking
	// 1..horizon: a journal may claim iteration 1,000,000 (MaxIterations).
	horizon := t.iters
	recorded := map[int][]int{} // rank -> its iterations
	for k := range t.chosen {
		horizon = max(horizon, k[1])
		recorded[k[0]] = append(recorded[k[0]], k[1])
	}
	for r := range tr.WorldSize {
		if !ranks[r] {
			tr.Missing = append(tr.Missing, fmt.Sprintf("rank %d: no training journal", r))
			continue
		}
		if gaps := gapRanges(recorded[r], horizon); gaps != "" {
			tr.Missing = append(tr.Missing, fmt.Sprintf("rank %d: iterations %s", r, gaps))
		}
	}
	if t.iters > 0 {
		c := t.chosen[[2]int{0, t.iters}].info.Convergence
		if c != nil {
			tr.LowerBound, tr.UpperBound, tr.GapPercent = c.LowerBound, c.UpperBoundMean, c.GapPercent
		}
	}
	if t.root != nil && t.root.close != nil {
		tr.Termination = t.root.close.Termination
	}
	switch {
	case len(tr.Missing) > 0:
		tr.Status = TrainingPartial
	case t.root.close != nil && t.root.close.Status == manifest.StatusInterrupted:
		tr.Status = TrainingInterrupted
	case tr.Termination == "converged":
		tr.Status = TrainingConverged
	case t.root.close == nil || t.root.close.Status != manifest.StatusClean:
		tr.Status = TrainingInterrupted
	default:
		tr.Status = TrainingComplete
	}
	s.training = t
	s.report.Training = tr
}

// gapRanges lists the numbers of 1..horizon missing from have (distinct,
// any order) as ranges ("2,5-7"), in time proportional to len(have).
func gapRanges(have []int, horizon int) string {
	slices.Sort(have)
	var parts []string
	next := 1
	for _, it := range append(have, horizon+1) {
		switch {
		case it == next+1:
			parts = append(parts, fmt.Sprint(next))
		case it > next+1:
			parts = append(parts, fmt.Sprintf("%d-%d", next, it-1))
		}
		next = max(next, it+1)
	}
	return strings.Join(parts, ",")
}

func sameIteration(a, b *manifest.IterationInfo) bool {
	x, err1 := manifest.Marshal(a)
	y, err2 := manifest.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// trainingTables builds the three training Parquet files from the chosen
// records, in the order the issue fixes: convergence by iteration; timing
// by iteration, rank, worker (rank-level row first); mpi_ranks by
// iteration, rank.
func (s *state) trainingTables() ([]outputFile, error) {
	t := s.training
	keys := make([][2]int, 0, len(t.chosen))
	for k := range t.chosen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][1] != keys[j][1] {
			return keys[i][1] < keys[j][1]
		}
		return keys[i][0] < keys[j][0]
	})
	var conv shard.ConvergenceRows
	var tim shard.TimingIterationsRows
	var mpi shard.TimingMPIRanksRows
	gapValid := []bool{}
	for it := 1; it <= t.iters; it++ {
		c := t.chosen[[2]int{0, it}].info.Convergence
		if c == nil {
			continue
		}
		conv.Iteration = append(conv.Iteration, c.Iteration)
		conv.LowerBound = append(conv.LowerBound, c.LowerBound)
		conv.UpperBoundMean = append(conv.UpperBoundMean, c.UpperBoundMean)
		conv.UpperBoundStd = append(conv.UpperBoundStd, c.UpperBoundStd)
		g := 0.0
		if c.GapPercent != nil {
			g = *c.GapPercent
		}
		conv.GapPercent.Values = append(conv.GapPercent.Values, g)
		gapValid = append(gapValid, c.GapPercent != nil)
		conv.CutsAdded = append(conv.CutsAdded, c.CutsAdded)
		conv.CutsRemoved = append(conv.CutsRemoved, c.CutsRemoved)
		conv.CutsActive = append(conv.CutsActive, c.CutsActive)
		conv.TimeForwardMs = append(conv.TimeForwardMs, c.TimeForwardMs)
		conv.TimeBackwardMs = append(conv.TimeBackwardMs, c.TimeBackwardMs)
		conv.TimeTotalMs = append(conv.TimeTotalMs, c.TimeTotalMs)
		conv.ForwardPasses = append(conv.ForwardPasses, c.ForwardPasses)
		conv.LPSolves = append(conv.LPSolves, c.LPSolves)
	}
	conv.GapPercent.Valid = gapValid
	var rankValid, workerValid []bool
	for _, k := range keys {
		info := t.chosen[k].info
		rows := append([]manifest.TimingRow(nil), info.Timing...)
		sort.SliceStable(rows, func(i, j int) bool { return workerKey(rows[i].WorkerID) < workerKey(rows[j].WorkerID) })
		for _, r := range rows {
			tim.Iteration = append(tim.Iteration, r.Iteration)
			tim.Rank.Values = append(tim.Rank.Values, deref(r.Rank))
			rankValid = append(rankValid, r.Rank != nil)
			tim.WorkerID.Values = append(tim.WorkerID.Values, deref(r.WorkerID))
			workerValid = append(workerValid, r.WorkerID != nil)
			tim.ForwardWallMs = append(tim.ForwardWallMs, r.ForwardWallMs)
			tim.BackwardWallMs = append(tim.BackwardWallMs, r.BackwardWallMs)
			tim.CutSelectionMs = append(tim.CutSelectionMs, r.CutSelectionMs)
			tim.MPIAllreduceMs = append(tim.MPIAllreduceMs, r.MPIAllreduceMs)
			tim.CutSyncMs = append(tim.CutSyncMs, r.CutSyncMs)
			tim.LowerBoundMs = append(tim.LowerBoundMs, r.LowerBoundMs)
			tim.StateExchangeMs = append(tim.StateExchangeMs, r.StateExchangeMs)
			tim.CutBatchBuildMs = append(tim.CutBatchBuildMs, r.CutBatchBuildMs)
			tim.BwdSetupMs = append(tim.BwdSetupMs, r.BwdSetupMs)
			tim.BwdLoadImbalanceMs = append(tim.BwdLoadImbalanceMs, r.BwdLoadImbalanceMs)
			tim.BwdSchedulingOverheadMs = append(tim.BwdSchedulingOverheadMs, r.BwdSchedulingOverheadMs)
			tim.FwdSetupMs = append(tim.FwdSetupMs, r.FwdSetupMs)
			tim.FwdLoadImbalanceMs = append(tim.FwdLoadImbalanceMs, r.FwdLoadImbalanceMs)
			tim.FwdSchedulingOverheadMs = append(tim.FwdSchedulingOverheadMs, r.FwdSchedulingOverheadMs)
			tim.OverheadMs = append(tim.OverheadMs, r.OverheadMs)
		}
		if m := info.MPIRank; m != nil {
			mpi.Iteration = append(mpi.Iteration, m.Iteration)
			mpi.Rank = append(mpi.Rank, m.Rank)
			mpi.ForwardTimeMs = append(mpi.ForwardTimeMs, m.ForwardTimeMs)
			mpi.BackwardTimeMs = append(mpi.BackwardTimeMs, m.BackwardTimeMs)
			mpi.CommunicationTimeMs = append(mpi.CommunicationTimeMs, m.CommunicationTimeMs)
			mpi.IdleTimeMs = append(mpi.IdleTimeMs, m.IdleTimeMs)
			mpi.LPSolves = append(mpi.LPSolves, m.LPSolves)
			mpi.ScenariosProcessed = append(mpi.ScenariosProcessed, m.ScenariosProcessed)
		}
	}
	tim.Rank.Valid, tim.WorkerID.Valid = rankValid, workerValid
	enc := shard.NewEncoder()
	var out []outputFile
	for _, tb := range []struct {
		name string
		tr   shard.TableRows
	}{
		{layout.ConvergenceFile, shard.TableRows{Table: shard.Convergence, Rows: &conv}},
		{layout.TimingIterationsFile, shard.TableRows{Table: shard.TimingIterations, Rows: &tim}},
		{layout.TimingMPIRanksFile, shard.TableRows{Table: shard.TimingMPIRanks, Rows: &mpi}},
	} {
		var buf bytes.Buffer
		if _, err := enc.Encode(&buf, tb.tr, s.caseRef.Case); err != nil {
			return nil, fmt.Errorf("building %s: %w", tb.name, err)
		}
		out = append(out, outputFile{tb.name, buf.Bytes()})
	}
	return out, nil
}

// workerKey sorts the rank-level row (no worker) before the workers.
func workerKey(w *int32) int64 {
	if w == nil {
		return -1
	}
	return int64(*w)
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// trainingOutputs builds every training output except _SUCCESS: the three
// tables, the metadata and the manifest. ok says whether training/_SUCCESS
// may follow.
func (s *state) trainingOutputs() (files []outputFile, ok bool, err error) {
	t, tr := s.training, s.report.Training
	files, err = s.trainingTables()
	if err != nil {
		return nil, false, err
	}
	var started, completed string
	for _, j := range t.journals {
		if started == "" || cmpTime(j.first, started) < 0 {
			started = j.first
		}
		if completed == "" || cmpTime(j.last, completed) > 0 {
			completed = j.last
		}
	}
	var pool manifest.RowPool
	for it := 1; it <= t.iters; it++ {
		if c := t.chosen[[2]int{0, it}].info.Convergence; c != nil {
			pool.TotalGenerated += int64(c.CutsAdded)
			pool.TotalActive = c.CutsActive
			pool.PeakActive = max(pool.PeakActive, c.CutsActive)
		}
	}
	conv := manifest.ConvergenceDoc{
		Achieved:          tr.Status == TrainingConverged,
		FinalGapPercent:   tr.GapPercent,
		TerminationReason: tr.Termination,
	}
	root := t.root
	if root == nil {
		root = t.journals[0]
	}
	var cfg manifest.TrainingConfigDoc
	if c := root.open.Training; c != nil {
		cfg = manifest.TrainingConfigDoc{Seed: c.Seed, MaxIterations: c.MaxIterations, ForwardPasses: c.ForwardPasses, StoppingMode: stoppingMode(c.StoppingMode), PolicyMode: c.PolicyMode}
	} else {
		cfg.StoppingMode = manifest.StoppingAny
	}
	hosts := map[string]bool{}
	for _, j := range t.journals {
		hosts[j.open.Host] = true
	}
	dist := manifest.Distribution{
		Backend:           root.open.Launcher,
		WorldSize:         tr.WorldSize,
		RanksParticipated: len(tr.Ranks),
		NumNodes:          len(hosts),
		ThreadsPerRank:    root.open.Threads,
		SlurmJobID:        root.open.JobID,
	}
	iters := manifest.IterationCounts{Completed: t.iters}
	if conv.Achieved {
		iters.ConvergedAt = &t.iters
	}
	var caseJSON []byte
	if c := s.caseRef.Case; c != nil {
		caseJSON, _ = json.Marshal(c)
	}
	md := &manifest.TrainingMetadata{
		CobreVersion:    manifest.Version,
		Hostname:        root.open.Host,
		Solver:          root.open.Solver,
		StartedAt:       started,
		CompletedAt:     completed,
		DurationSeconds: seconds(started, completed),
		Status:          tr.Status,
		Configuration:   cfg,
		Iterations:      iters,
		Convergence:     conv,
		RowPool:         pool,
		Distribution:    dist,
		DataIntegrity: manifest.DataIntegrity{
			ConvergenceSHA256: sha256hex(files[0].data),
			CaseSHA256:        sha256hex(caseJSON),
		},
	}
	if s.policy != nil {
		md.DataIntegrity.PolicySHA256 = s.policy.sha
	}
	if c := s.caseRef.Case; c != nil {
		md.ProblemDimensions = manifest.ProblemDimensions{NumStages: c.Stages, NumHydros: len(c.Hydros), NumThermals: len(c.Thermals), NumBuses: len(c.Buses), NumLines: len(c.Lines)}
	}
	sums := map[string]string{}
	for _, f := range files {
		sums[strings.TrimPrefix(f.name, layout.TrainingDir+"/")] = manifest.FormatXXH64(xxhash.Sum64(f.data))
	}
	tm := &manifest.TrainingManifest{
		SchemaVersion: manifest.ManifestVersion,
		Producer:      "hydroshard " + manifest.Version,
		Status:        tr.Status,
		CaseName:      s.caseRef.CaseName,
		CaseHash:      s.caseRef.CaseHash,
		StartedAt:     started,
		CompletedAt:   completed,
		Iterations:    t.iters,
		Missing:       tr.Missing,
		Convergence:   conv,
		FinalLower:    tr.LowerBound,
		FinalUpper:    tr.UpperBound,
		Cuts:          pool,
		Files:         sums,
		Distribution:  dist,
	}
	for _, d := range []struct {
		name string
		v    any
	}{{layout.TrainingDir + "/metadata.json", md}, {layout.TrainingDir + "/" + layout.ManifestName, tm}} {
		b, err := manifest.Marshal(d.v)
		if err != nil {
			return nil, false, err
		}
		files = append(files, outputFile{d.name, b})
	}
	ok = tr.Status == TrainingComplete || tr.Status == TrainingConverged
	return files, ok, nil
}

// stoppingMode is metadata.json's configuration.stopping_mode for what
// the root recorded: how the stopping rules combine, "any" or "all" as in
// Cobre. Anything but "all" is "any": Cobre's default, and what a single
// rule means; journals of earlier releases recorded a rule name there
// ("iteration_limit", "gap"), and why training stopped is
// convergence.termination_reason, never this key.
func stoppingMode(recorded string) string {
	if recorded == manifest.StoppingAll {
		return manifest.StoppingAll
	}
	return manifest.StoppingAny
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// seconds is the time between two journal times, 0 if either is unknown.
func seconds(from, to string) float64 {
	t0, e0 := time.Parse(time.RFC3339Nano, from)
	t1, e1 := time.Parse(time.RFC3339Nano, to)
	if e0 != nil || e1 != nil {
		return 0
	}
	return t1.Sub(t0).Seconds()
}
