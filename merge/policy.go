package merge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/vfs"
)

// PolicyReport says which checkpoint the merged policy comes from.
type PolicyReport struct {
	// Iteration is the checkpoint used: the latest one every training
	// rank committed (0: none is complete, no policy was assembled).
	Iteration int `json:"iteration"`
	// Incomplete lists the later checkpoints that could not be used and
	// why ("iteration 6: no checkpoint record of rank 2").
	Incomplete    []string `json:"incomplete,omitempty"`
	Stages        int      `json:"stages"`
	Cuts          int      `json:"cuts"`
	RolledForward int      `json:"rolled_forward"`
}

// ckptRec is one durable checkpoint record of one journal.
type ckptRec struct {
	rel  string // the journal's path
	time string
	seq  int64
	info *manifest.CheckpointInfo
}

// policyFrag is one fragment of the chosen checkpoint.
type policyFrag struct {
	rank     int
	file     manifest.PolicyFile
	fromTemp bool // the rename never happened: read (and publish) the temp file
}

// src is the fragment's current location relative to the output directory.
func (f *policyFrag) src() string {
	if f.fromTemp {
		return f.file.Temp
	}
	return f.file.Path
}

// policyPlan is the assembly the analysis decided on.
type policyPlan struct {
	iteration int
	meta      *manifest.PolicyMeta
	created   string
	cuts      [][]*policyFrag // per stage, in rank order
	basis     []*policyFrag   // per stage: the lowest rank's, nil when none
	states    []*policyFrag
	hasStates bool
	entries   map[string]policy.FileEntry // name relative to layout.PolicyDir
	sha       map[string]string           // name relative to layout.PolicyDir -> SHA-256
	metadata  []byte
	fsys      vfs.FS

	// Buffers reused from stage to stage and from the analysis to the
	// write, so that the merge's memory is about twice the largest stage
	// (its fragments, its encoding) whatever the stage count, and the
	// garbage collector has little to do.
	enc    *policy.Writer    // the stage's encoding; its buffer is reused
	arena  []byte            // the stage's cuts fragments, each 8-byte aligned
	cuts1  []policy.Cut      // the stage's union
	order  []uint64          // slot_index<<32 | index into the union
	byID   map[uint64]int    // the union's cut_id -> index
	bySlot map[uint32]uint64 // its slot_index -> cut_id
	// The SHA-256 of the last cuts file the analysis encoded runs while
	// the next stage's fragments are read: hashing waits for it before
	// the encoder reuses that buffer.
	hashing sync.WaitGroup
	hashMu  sync.Mutex
	// shaAtWrite: a first merge (no policy/metadata.json): every stage
	// file will be written, and their SHA-256s are computed as they are
	// written (by writePolicy, or by the analysis when it stages them),
	// not by the dry run.
	shaAtWrite bool
	// staged: the analysis wrote every stage file to a durable temp file
	// as it checked it (a first merge run by Run: stageAtAnalysis), so
	// writePolicy only renames them into place; nil when it did not, and
	// writePolicy assembles every stage again. In output order.
	staged []stagedFile
}

// encoder returns the plan's policy.Writer.
func (p *policyPlan) encoder() *policy.Writer {
	if p.enc == nil {
		p.enc = policy.NewWriter(1 << 16)
	}
	return p.enc
}

// analyzePolicy picks the latest complete checkpoint, locates and
// verifies its fragments and dry-runs the assembly of every stage, so that
// a lost or corrupt fragment or a conflicting cut is a Problem before
// anything is changed.
func (s *state) analyzePolicy() {
	var tj []*journalState
	for _, j := range s.other {
		if j.open.Phase == manifest.PhaseTraining {
			tj = append(tj, j)
		}
	}
	// Committed fragments are never garbage, whichever checkpoint they
	// belong to.
	keep := map[string]bool{}
	ranks := map[int]bool{}
	// byIter[iteration][rank] is the latest record of that rank.
	byIter := map[int]map[int]ckptRec{}
	for _, j := range tj {
		ranks[j.open.Rank] = true
		for _, c := range j.checkpoints {
			for _, f := range c.info.Files {
				keep[f.Temp] = true
			}
			m := byIter[c.info.Iteration]
			if m == nil {
				m = map[int]ckptRec{}
				byIter[c.info.Iteration] = m
			}
			if prev, ok := m[j.open.Rank]; !ok || cmpTime(c.time, prev.time) > 0 || (cmpTime(c.time, prev.time) == 0 && c.seq > prev.seq) {
				m[j.open.Rank] = c
			}
		}
	}
	if len(keep) > 0 {
		g := s.garbage[:0]
		for _, p := range s.garbage {
			if !keep[p] {
				g = append(g, p)
			}
		}
		s.garbage = g
	}
	if len(byIter) == 0 {
		return
	}
	pr := &PolicyReport{}
	if s.report.Training != nil {
		s.report.Training.Policy = pr
	}
	iters := sortedKeys(byIter)
	var chosen map[int]ckptRec
	for i := len(iters) - 1; i >= 0; i-- {
		it := iters[i]
		m := byIter[it]
		var why []string
		for _, r := range sortedKeys(ranks) {
			if _, ok := m[r]; !ok {
				why = append(why, fmt.Sprintf("no checkpoint record of rank %d", r))
			}
		}
		if root, ok := m[0]; !ok && !ranks[0] {
			why = append(why, "rank 0 (the root) has no training journal")
		} else if ok && root.info.Meta == nil {
			why = append(why, "the root's record has no metadata")
		}
		if len(why) == 0 {
			chosen, pr.Iteration = m, it
			break
		}
		pr.Incomplete = append(pr.Incomplete, fmt.Sprintf("iteration %d: %s", it, strings.Join(why, ", ")))
	}
	if chosen == nil {
		return
	}
	root := chosen[0]
	meta := root.info.Meta
	if meta.NumStages <= 0 || meta.NumStages > MaxStages || meta.StateDimension < 0 || meta.StateDimension > policy.MaxStateDimension ||
		len(meta.Capacity) != meta.NumStages || len(meta.WarmStartCounts) != meta.NumStages {
		s.problem(ProblemPolicy, root.rel, nil, "checkpoint of iteration %d: root metadata has %d stages (want 1..%d), %d capacities, %d warm start counts, state dimension %d (want 0..%d)",
			pr.Iteration, meta.NumStages, MaxStages, len(meta.Capacity), len(meta.WarmStartCounts), meta.StateDimension, policy.MaxStateDimension)
		return
	}
	for st := range meta.NumStages {
		if meta.Capacity[st] > policy.MaxCutsPerStage || meta.WarmStartCounts[st] > policy.MaxCutsPerStage {
			s.problem(ProblemPolicy, root.rel, nil, "checkpoint of iteration %d: stage %d has capacity %d and %d warm start cuts, want at most %d each (policy.MaxCutsPerStage)",
				pr.Iteration, st, meta.Capacity[st], meta.WarmStartCounts[st], policy.MaxCutsPerStage)
			return
		}
	}
	p := &policyPlan{
		fsys:      s.fsys,
		iteration: pr.Iteration,
		meta:      meta,
		created:   createdAt(root.time),
		cuts:      make([][]*policyFrag, meta.NumStages),
		basis:     make([]*policyFrag, meta.NumStages),
		states:    make([]*policyFrag, meta.NumStages),
		entries:   map[string]policy.FileEntry{},
		sha:       map[string]string{},
	}
	ok := true
	for _, r := range sortedKeys(chosen) {
		for _, f := range chosen[r].info.Files {
			fr := &policyFrag{rank: r, file: f}
			if f.Stage < 0 || f.Stage >= meta.NumStages {
				s.problem(ProblemPolicy, f.Path, nil, "rank %d: %s fragment of stage %d, the policy has stages 0..%d", r, f.Kind, f.Stage, meta.NumStages-1)
				ok = false
				continue
			}
			if !s.locateFragment(fr) {
				ok = false
				continue
			}
			if fr.fromTemp {
				pr.RolledForward++
			}
			switch f.Kind {
			case manifest.FragmentCuts:
				p.cuts[f.Stage] = append(p.cuts[f.Stage], fr)
			case manifest.FragmentBasis:
				if p.basis[f.Stage] == nil {
					p.basis[f.Stage] = fr
				}
			case manifest.FragmentStates:
				if p.states[f.Stage] == nil {
					p.states[f.Stage] = fr
				}
				p.hasStates = true
			default:
				s.problem(ProblemPolicy, f.Path, nil, "rank %d: unknown fragment kind %q", r, f.Kind)
				ok = false
			}
		}
	}
	if !ok {
		return
	}
	// On a first merge (no policy/metadata.json) every stage file will be
	// written: their SHA-256s (for training/metadata.json) are computed
	// then, while the write waits for the disk, instead of here, where
	// the CPU is the limit. A policy that may be in place already has
	// them computed here.
	if _, err := s.fsys.Lstat(layout.Join(s.out, layout.PolicyMetadataFile)); errors.Is(err, fs.ErrNotExist) {
		p.shaAtWrite = true
	}
	// A first merge run by Run writes each stage file to a temp file as
	// it checks it, so that each stage is assembled once (see
	// stageAtAnalysis); nothing is renamed into policy/ before
	// writePolicy. Any problem, or any error staging, removes the temp
	// files, and the merge goes on as a dry run (writePolicy then
	// assembles every stage again).
	var sg *stager
	if p.shaAtWrite && s.stageAtAnalysis() {
		sg = s.newStager(&p.hashing)
	}
	unstage := func() {
		if sg != nil {
			sg.abandon()
			sg = nil
		}
	}
	defer unstage()
	for st := range meta.NumStages {
		n, err := p.stageOutputs(s.out, st, func(f *policyFrag, err error) {
			if f == nil {
				s.problem(ProblemPolicy, path.Join(layout.PolicyDir, "cuts", layout.StageFileName(st)), nil, "stage %d: %v", st, err)
			} else {
				s.policyProblem(f, err)
			}
			ok = false
			unstage()
		}, func(name string, data []byte) error {
			p.record(name, data)
			if sg != nil {
				// The SHA-256 now, while the bytes are in memory (they
				// stay valid until the next stage's encoding, which
				// waits for it).
				p.shaAsync(name, data)
				if err := sg.stage(name, data, p.entries[name]); err != nil {
					unstage()
				}
			}
			return nil
		})
		if err != nil {
			p.hashing.Wait()
			return
		}
		pr.Cuts += n
	}
	p.hashing.Wait()
	if !ok {
		return
	}
	pr.Stages = meta.NumStages
	md, err := p.buildMetadata()
	if err != nil {
		s.problem(ProblemPolicy, path.Join(layout.PolicyDir, layout.MetadataName), nil, "%v", err)
		return
	}
	p.metadata = md
	p.sha[layout.MetadataName] = sha256hex(md)
	s.policy = p
	s.checkPolicyInPlace(p)
	if sg != nil && len(s.report.Problems) == 0 {
		// Every stage checked out: the staged files are kept for
		// writePolicy once their fsyncs are done (a failed fsync removes
		// them all, and writePolicy assembles the stages again).
		if files, err := sg.wait(); err == nil {
			p.staged = files
			sg = nil
		}
	}
}

// checkPolicyInPlace: when policy/metadata.json already holds exactly the
// bytes this merge would write, the policy in place is this one, and
// writePolicy will change none of its stage files. Each file metadata.json
// lists must then be there, plain (stage_NNN.bin) or packed by `policy
// pack` (stage_NNN.bin.zst: metadata.json is unchanged by packing, its
// entries are of the uncompressed bytes), and every form present must
// hold the listed bytes: a .zst is decompressed into at most the listed
// size. A form that does not is a problem naming it (nothing is replaced:
// the damage is reported, as for a data file altered after its commit);
// removing policy/metadata.json makes the next merge rebuild the policy
// from the checkpoint fragments.
func (s *state) checkPolicyInPlace(p *policyPlan) {
	dir := layout.Join(s.out, layout.PolicyDir)
	old, err := vfs.ReadFile(s.fsys, layout.Join(s.out, layout.PolicyMetadataFile), int64(len(p.metadata)))
	if err != nil || !bytes.Equal(old, p.metadata) {
		return // absent or another policy: writePolicy replaces it
	}
	const remedy = "(remove policy/metadata.json and merge again to rebuild the policy from the checkpoint fragments)"
	for _, rel := range sortedKeys(p.entries) {
		forms, err := policy.CheckStageFile(s.fsys, dir, rel, p.entries[rel], true)
		if err != nil {
			s.problem(ProblemLost, path.Join(layout.PolicyDir, rel), nil, "policy file listed in metadata.json: %v", err)
			continue
		}
		if len(forms) == 0 {
			s.problem(ProblemLost, path.Join(layout.PolicyDir, rel), nil, "listed in policy/metadata.json, but neither it nor its packed %s is there %s", policy.PackedExt, remedy)
		}
		for _, f := range forms {
			if f.Err != nil {
				s.problem(stageProblemKind(f.Err), path.Join(layout.PolicyDir, f.File), nil, "%v %s", f.Err, remedy)
			}
		}
	}
}

// stageProblemKind maps a policy.CheckStageFile verdict to a ProblemKind.
func stageProblemKind(err error) ProblemKind {
	if errors.Is(err, policy.ErrSize) {
		return ProblemSize
	}
	return ProblemChecksum
}

// createdAt renders a journal time at second precision, RFC 3339 UTC 'Z'.
func createdAt(t string) string {
	tt, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		return t
	}
	return tt.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

// fragError is a defect of one fragment, turned into a Problem.
type fragError struct {
	kind ProblemKind
	msg  string
}

func (e *fragError) Error() string { return e.msg }

func (s *state) policyProblem(f *policyFrag, err error) {
	kind, p := ProblemPolicy, ""
	var fe *fragError
	if errors.As(err, &fe) {
		kind = fe.kind
	}
	if f != nil {
		p = f.file.Path
	}
	s.problem(kind, p, nil, "%v", err)
}

// locateFragment finds a fragment at its final path or, when the rename
// never happened, in _shards/tmp (sizes checked here, hashes when read).
func (s *state) locateFragment(f *policyFrag) bool {
	st, err := s.fsys.Stat(layout.Join(s.out, f.file.Path))
	if errors.Is(err, fs.ErrNotExist) && f.file.Temp != "" {
		if st, err = s.fsys.Stat(layout.Join(s.out, f.file.Temp)); err == nil {
			f.fromTemp = true
		}
	}
	if err != nil {
		s.problem(ProblemLost, f.file.Path, nil, "rank %d: %s fragment of stage %d is neither at its path nor in %s: %v", f.rank, f.file.Kind, f.file.Stage, layout.TempDir, err)
		return false
	}
	if st.Size() != f.file.Bytes {
		s.problem(ProblemSize, f.src(), nil, "rank %d: %s fragment of stage %d is %d bytes, its checkpoint record says %d", f.rank, f.file.Kind, f.file.Stage, st.Size(), f.file.Bytes)
		return false
	}
	return true
}

// readFragment reads a fragment whole and checks its size and XXH64.
func readFragment(fsys vfs.FS, out string, f *policyFrag) ([]byte, error) {
	buf, err := vfs.ReadFile(fsys, layout.Join(out, f.src()), f.file.Bytes)
	var tl *vfs.TooLargeError
	if errors.As(err, &tl) {
		return nil, &fragError{ProblemSize, fmt.Sprintf("rank %d: %s fragment of stage %d is %d bytes, its checkpoint record says %d", f.rank, f.file.Kind, f.file.Stage, tl.Size, f.file.Bytes)}
	}
	if err != nil {
		return nil, &fragError{ProblemLost, fmt.Sprintf("rank %d: %s fragment of stage %d: %v", f.rank, f.file.Kind, f.file.Stage, err)}
	}
	if int64(len(buf)) != f.file.Bytes {
		return nil, &fragError{ProblemSize, fmt.Sprintf("rank %d: %s fragment of stage %d is %d bytes, its checkpoint record says %d", f.rank, f.file.Kind, f.file.Stage, len(buf), f.file.Bytes)}
	}
	if got := manifest.FormatXXH64(xxhash.Sum64(buf)); got != f.file.XXH64 {
		return nil, &fragError{ProblemChecksum, fmt.Sprintf("rank %d: %s fragment of stage %d has xxh64 %s, its checkpoint record says %s", f.rank, f.file.Kind, f.file.Stage, got, f.file.XXH64)}
	}
	return buf, nil
}

// readFragmentInto is readFragment into dst (len(dst) = the recorded
// size), without allocating.
func readFragmentInto(fsys vfs.FS, out string, f *policyFrag, dst []byte) error {
	sizeErr := func(n int64) error {
		return &fragError{ProblemSize, fmt.Sprintf("rank %d: %s fragment of stage %d is %d bytes, its checkpoint record says %d", f.rank, f.file.Kind, f.file.Stage, n, f.file.Bytes)}
	}
	lost := func(err error) error {
		return &fragError{ProblemLost, fmt.Sprintf("rank %d: %s fragment of stage %d: %v", f.rank, f.file.Kind, f.file.Stage, err)}
	}
	file, err := fsys.Open(layout.Join(out, f.src()))
	if err != nil {
		return lost(err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return lost(err)
	}
	if st.Size() > f.file.Bytes {
		return sizeErr(st.Size())
	}
	n, err := io.ReadFull(file, dst)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return sizeErr(int64(n))
	}
	if err != nil {
		return lost(err)
	}
	// One byte more: the file must end here (it may have grown since Stat).
	var one [1]byte
	if m, _ := file.Read(one[:]); m > 0 {
		return sizeErr(int64(n + m))
	}
	if got := manifest.FormatXXH64(xxhash.Sum64(dst)); got != f.file.XXH64 {
		return &fragError{ProblemChecksum, fmt.Sprintf("rank %d: %s fragment of stage %d has xxh64 %s, its checkpoint record says %s", f.rank, f.file.Kind, f.file.Stage, got, f.file.XXH64)}
	}
	return nil
}

// readCopy reads a basis or states fragment that is copied verbatim,
// checking that it is one of the stage and, for states, of the dimension.
func (p *policyPlan) readCopy(out string, f *policyFrag, stage int) ([]byte, error) {
	buf, err := readFragment(p.fsys, out, f)
	if err != nil {
		return nil, err
	}
	var id uint32
	switch f.file.Kind {
	case manifest.FragmentBasis:
		v, err := policy.ReadStageBasis(buf)
		if err != nil {
			return nil, &fragError{ProblemDecode, fmt.Sprintf("rank %d: basis fragment of stage %d: %v", f.rank, stage, err)}
		}
		id = v.StageID
	default:
		v, err := policy.ReadStageStates(buf)
		if err != nil {
			return nil, &fragError{ProblemDecode, fmt.Sprintf("rank %d: states fragment of stage %d: %v", f.rank, stage, err)}
		}
		if v.Count > 0 && int(v.StateDimension) != p.meta.StateDimension {
			return nil, &fragError{ProblemPolicy, fmt.Sprintf("rank %d: states fragment of stage %d has state_dimension %d, the policy %d", f.rank, stage, v.StateDimension, p.meta.StateDimension)}
		}
		id = v.StageID
	}
	if int(id) != stage {
		return nil, &fragError{ProblemPolicy, fmt.Sprintf("rank %d: %s fragment recorded for stage %d holds stage_id %d", f.rank, f.file.Kind, stage, id)}
	}
	return buf, nil
}

// assembleStage unions every rank's cuts of one stage by cut_id and
// orders them by slot_index. Its fragments are read into the plan's
// arena, one 8-byte aligned slot each, and the union's coefficients are
// views into them (no copy): the result is valid until the next call.
// On error it returns the fragment at fault.
func (p *policyPlan) assembleStage(out string, stage int) (*policy.StageCuts, *policyFrag, error) {
	sc := &policy.StageCuts{
		StageID:        uint32(stage),
		StateDimension: uint32(p.meta.StateDimension),
		Capacity:       p.meta.Capacity[stage],
		WarmStartCount: p.meta.WarmStartCounts[stage],
	}
	frags := p.cuts[stage]
	need := p.stageNeed(stage)
	if int64(cap(p.arena)) < need {
		// Sized once for the largest stage (never regrown stage by stage).
		var most int64
		for st := range p.cuts {
			most = max(most, p.stageNeed(st))
		}
		p.arena = nil // before the new one is allocated: never both
		p.arena = make([]byte, most)
	} else if need >= gcStageBytes {
		// The stage's garbage (views, maps) is small, but the garbage
		// collector's goal is twice the live heap, and the live heap is
		// two stages (fragments and encoding): left alone, garbage would
		// pile up to that goal over the stages, so the peak would grow
		// with the stage count up to about four stages' worth. One
		// collection per large stage keeps it flat at two (it marks only
		// the small pointerful part of the heap: milliseconds).
		runtime.GC()
	}
	arena := p.arena[:need]
	if p.byID == nil {
		p.byID, p.bySlot = map[uint64]int{}, map[uint32]uint64{}
	}
	byID, bySlot := p.byID, p.bySlot
	clear(byID)
	clear(bySlot)
	cuts := p.cuts1[:0]
	defer func() { p.cuts1 = cuts[:0] }()
	// The fragments are read and hashed in parallel (each into its own
	// slot), then decoded and united in rank order, so the fragment at
	// fault is the same as when reading one at a time.
	bufs := make([][]byte, len(frags))
	var off int64
	for i, f := range frags {
		bufs[i] = arena[off : off+f.file.Bytes : off+f.file.Bytes]
		off += (f.file.Bytes + 7) &^ 7
	}
	readErrs := make([]error, len(frags))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(frags), runtime.GOMAXPROCS(0), maxFragmentReaders) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(frags); i = int(next.Add(1) - 1) {
				readErrs[i] = readFragmentInto(p.fsys, out, frags[i], bufs[i])
			}
		})
	}
	wg.Wait()
	for i, f := range frags {
		buf := bufs[i]
		if err := readErrs[i]; err != nil {
			return nil, f, err
		}
		v, err := policy.ReadStageCuts(buf)
		if err != nil {
			return nil, f, &fragError{ProblemDecode, fmt.Sprintf("rank %d: cuts fragment of stage %d: %v", f.rank, stage, err)}
		}
		if int(v.StageID) != stage {
			return nil, f, &fragError{ProblemPolicy, fmt.Sprintf("rank %d: cuts fragment recorded for stage %d holds stage_id %d", f.rank, stage, v.StageID)}
		}
		if int(v.StateDimension) != p.meta.StateDimension {
			return nil, f, &fragError{ProblemPolicy, fmt.Sprintf("rank %d: cuts fragment of stage %d has state_dimension %d, the policy %d", f.rank, stage, v.StateDimension, p.meta.StateDimension)}
		}
		for i := range v.Cuts {
			c := &v.Cuts[i]
			if k, dup := byID[c.CutID]; dup {
				if !sameCut(&cuts[k], c) {
					return nil, f, &fragError{ProblemConflict, fmt.Sprintf("stage %d cut_id %d: rank %d's copy differs from an earlier rank's (coefficients, intercept, slot or flags)", stage, c.CutID, f.rank)}
				}
				continue
			}
			if other, taken := bySlot[c.SlotIndex]; taken {
				return nil, f, &fragError{ProblemConflict, fmt.Sprintf("stage %d cut_id %d: rank %d puts it in slot %d, which holds cut_id %d", stage, c.CutID, f.rank, c.SlotIndex, other)}
			}
			byID[c.CutID] = len(cuts)
			bySlot[c.SlotIndex] = c.CutID
			// The views alias buf (zero-copy: aligned in the arena) or are
			// copies ReadStageCuts made; either way they live as long as
			// the arena's contents, which is this stage.
			cut := policy.Cut{
				CutID:            c.CutID,
				SlotIndex:        c.SlotIndex,
				Iteration:        c.Iteration,
				ForwardPassIndex: c.ForwardPassIndex,
				Intercept:        c.Intercept,
				IsActive:         c.IsActive,
				Coefficients:     c.Coefficients(),
			}
			if g := c.StateAtGeneration(); len(g) > 0 {
				cut.StateAtGeneration = g
			}
			cuts = append(cuts, cut)
		}
	}
	// Ordered by slot_index (unique: bySlot): the keys are sorted, then
	// the cuts permuted in place along the permutation's cycles.
	order := p.order[:0]
	for i := range cuts {
		order = append(order, uint64(cuts[i].SlotIndex)<<32|uint64(i))
	}
	slices.Sort(order)
	p.order = order[:0]
	const placed = 1 << 63 // slot_index < 2^32: bit 63 of a key is free
	for i := range order {
		if order[i]&placed != 0 {
			continue
		}
		// Position i takes the cut from src = order[i]; src takes
		// order[src]'s, and so on round the cycle back to i.
		tmp := cuts[i]
		j := i
		for {
			order[j] |= placed
			src := int(uint32(order[j]))
			if src == i {
				cuts[j] = tmp
				break
			}
			cuts[j] = cuts[src]
			j = src
		}
	}
	sc.Cuts = cuts
	return sc, nil, nil
}

// maxFragmentReaders bounds the goroutines reading one stage's
// fragments.
const maxFragmentReaders = 4

// gcStageBytes is the stage size from which assembleStage collects
// garbage before each stage.
const gcStageBytes = 32 << 20

// stageNeed is the arena size stage st's cuts fragments take.
func (p *policyPlan) stageNeed(st int) int64 {
	var need int64
	for _, f := range p.cuts[st] {
		need += (f.file.Bytes + 7) &^ 7
	}
	return need
}

// sameCut compares two copies of a cut bit for bit.
func sameCut(a *policy.Cut, b *policy.CutView) bool {
	if a.SlotIndex != b.SlotIndex || a.Iteration != b.Iteration || a.ForwardPassIndex != b.ForwardPassIndex ||
		a.IsActive != b.IsActive || math.Float64bits(a.Intercept) != math.Float64bits(b.Intercept) {
		return false
	}
	return sameFloats(a.Coefficients, b.Coefficients()) && sameFloats(a.StateAtGeneration, b.StateAtGeneration())
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// stageOutputs assembles stage st and hands each of its files (the merged
// StageCuts, then the root's basis and states of the stage; names relative
// to policy/) to emit, one at a time, so at most one stage is in memory.
// The analysis and the write both use it, so what is written is exactly
// what was verified. A defective fragment (nil: the encoder refused the
// stage) goes to fail and the other files of the stage still go on; an
// error from emit stops. It returns the stage's cut count.
func (p *policyPlan) stageOutputs(out string, st int, fail func(*policyFrag, error), emit func(name string, data []byte) error) (int, error) {
	sc, frag, err := p.assembleStage(out, st)
	if err != nil {
		fail(frag, err)
		return 0, nil
	}
	p.hashing.Wait() // the encoder's buffer may still be being hashed
	buf, err := p.encoder().EncodeStageCuts(sc)
	if err != nil {
		fail(nil, err)
		return 0, nil
	}
	n := len(sc.Cuts)
	if err := emit(path.Join("cuts", layout.StageFileName(st)), buf); err != nil {
		return 0, err
	}
	for _, kf := range []struct {
		sub  string
		frag *policyFrag
	}{{"basis", p.basis[st]}, {"states", p.states[st]}} {
		if kf.frag == nil {
			continue
		}
		data, err := p.readCopy(out, kf.frag, st)
		if err != nil {
			fail(kf.frag, err)
			continue
		}
		if err := emit(path.Join(kf.sub, layout.StageFileName(st)), data); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// record notes an output file's integrity data: its size and XXH64, and
// its SHA-256 unless shaAtWrite.
func (p *policyPlan) record(name string, data []byte) {
	p.entries[name] = policy.FileEntry{Bytes: int64(len(data)), XXH64: manifest.FormatXXH64(xxhash.Sum64(data))}
	if !p.shaAtWrite {
		p.shaAsync(name, data)
	}
}

// shaAsync computes data's SHA-256 into p.sha[name] in the background
// (the slowest hash: it overlaps the next stage's reads, or the disk);
// stageOutputs waits for it before reusing the encoder's buffer, and
// whoever uses p.sha waits for p.hashing first.
func (p *policyPlan) shaAsync(name string, data []byte) {
	p.hashing.Add(1)
	go func() {
		defer p.hashing.Done()
		h := sha256hex(data)
		p.hashMu.Lock()
		p.sha[name] = h
		p.hashMu.Unlock()
	}()
}

func (p *policyPlan) buildMetadata() ([]byte, error) {
	m := p.meta
	var warm uint64
	for _, c := range m.WarmStartCounts {
		warm += uint64(c)
	}
	md := &policy.Metadata{
		CobreVersion:        manifest.Version,
		CreatedAt:           p.created,
		CompletedIterations: p.iteration,
		FinalLowerBound:     m.LowerBound,
		BestUpperBound:      m.BestUpperBound,
		StateDimension:      &m.StateDimension,
		NumStages:           &m.NumStages,
		MaxIterations:       m.MaxIterations,
		ForwardPasses:       m.ForwardPasses,
		WarmStartCuts:       warm,
		WarmStartCounts:     append([]uint32{}, m.WarmStartCounts...),
		RNGSeed:             m.Seed,
		TotalVisitedStates:  m.TotalVisitedStates,
		Files:               p.entries,
		ConfigHash:          m.ConfigHash,
		SystemHash:          m.SystemHash,
		RNGState:            m.RNGState,
	}
	return manifest.Marshal(md)
}

// writePolicy rolls the chosen fragments' renames forward and writes
// OUT/policy: the stage files one at a time (each atomically, skipped when
// unchanged), metadata.json last. When metadata.json is to change, the old
// one is removed first, so the directory is never a mix of old and new
// files under a commit marker.
func (s *state) writePolicy() error {
	p := s.policy
	if p == nil {
		return nil
	}
	// Staged temp files not renamed into place when this returns (an
	// error on the way) are removed.
	defer s.dropStaged(p)
	var roll []manifest.FileRecord
	for _, l := range [][]*policyFrag{p.basis, p.states} {
		for _, f := range l {
			if f != nil && f.fromTemp {
				roll = append(roll, fragRecord(f))
			}
		}
	}
	for _, l := range p.cuts {
		for _, f := range l {
			if f.fromTemp {
				roll = append(roll, fragRecord(f))
			}
		}
	}
	if len(roll) > 0 {
		if err := journal.Publish(s.dirs, s.out, roll); err != nil {
			return fmt.Errorf("rolling forward policy fragments: %w", err)
		}
		for _, l := range append([][]*policyFrag{p.basis, p.states}, p.cuts...) {
			for _, f := range l {
				if f != nil {
					f.fromTemp = false
				}
			}
		}
	}
	dir := layout.Join(s.out, layout.PolicyDir)
	mdPath := layout.Join(s.out, layout.PolicyMetadataFile)
	old, err := vfs.ReadFile(s.fsys, mdPath, int64(len(p.metadata)))
	if err == nil && bytes.Equal(old, p.metadata) && !p.shaAtWrite {
		// Already committed with exactly this content, and every listed
		// file verified by the analysis (checkPolicyInPlace), plain or
		// packed: leave them all as they are, but durable (the merge that
		// wrote them may have died before its fsyncs). Only files that
		// are neither a listed stage file nor its .zst are removed.
		if err := s.removeStalePolicy(dir, p, true); err != nil {
			return err
		}
		return s.syncPolicy(dir, p)
	}
	if _, serr := s.fsys.Lstat(mdPath); serr == nil {
		if err := s.fsys.Remove(mdPath); err != nil {
			return fmt.Errorf("removing old %s: %w", mdPath, err)
		}
		if err := s.dirs.SyncDir(dir); err != nil {
			return err
		}
	}
	for _, sub := range []string{manifest.FragmentCuts, manifest.FragmentBasis} {
		if err := s.dirs.Ensure(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	if p.staged != nil {
		if err := s.publishStaged(p); err != nil {
			return err
		}
	} else if err := s.writeStages(p); err != nil {
		return err
	}
	// Every new stage file is durable (fsynced, renamed and its directory
	// synced): only now do the old policy's files go, packed ones
	// included (a stage_NNN.bin.zst beside the new stage_NNN.bin is the
	// old policy's), and only then is the new policy committed.
	if err := s.removeStalePolicy(dir, p, false); err != nil {
		return err
	}
	return s.replaceAll([]outputFile{{path.Join(layout.PolicyDir, layout.MetadataName), p.metadata}})
}

// writeStages assembles every stage again (the analysis did not stage
// them) and writes its files through a stageWriter, each checked against
// the analysis' size and XXH64.
func (s *state) writeStages(p *policyPlan) error {
	sw := s.newStageWriter()
	for st := range p.meta.NumStages {
		var failed error
		_, err := p.stageOutputs(s.out, st, func(_ *policyFrag, err error) {
			if failed == nil {
				failed = fmt.Errorf("policy stage %d changed since it was verified: %w", st, err)
			}
		}, func(name string, data []byte) error {
			if p.shaAtWrite {
				p.shaAsync(name, data) // data stays valid until the next stage's encoding, which waits
			}
			return sw.write(path.Join(layout.PolicyDir, name), data, p.entries[name])
		})
		if err == nil {
			err = failed
		}
		if err != nil {
			p.hashing.Wait()
			return errors.Join(err, sw.finish())
		}
	}
	p.hashing.Wait()
	return sw.finish()
}

// removeStalePolicy deletes files under policy/cuts, basis and states
// that the new policy does not have (left by an earlier merge, or
// temp files of an interrupted `policy pack`), which policy.Open would
// reject. With keepPacked, a listed file's packed form (stage_NNN.bin.zst)
// is the policy's own and stays.
func (s *state) removeStalePolicy(dir string, p *policyPlan, keepPacked bool) error {
	dirty := map[string]bool{}
	for _, sub := range []string{"cuts", "basis", "states"} {
		ents, err := s.fsys.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			rel := path.Join(sub, e.Name())
			if _, ok := p.entries[rel]; ok || !e.Type().IsRegular() {
				continue
			}
			if _, ok := p.entries[strings.TrimSuffix(rel, policy.PackedExt)]; ok && keepPacked && strings.HasSuffix(rel, policy.PackedExt) {
				continue
			}
			if err := s.fsys.Remove(filepath.Join(dir, sub, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing stale policy file: %w", err)
			}
			dirty[filepath.Join(dir, sub)] = true
		}
	}
	return s.syncDirs(dirty)
}

func fragRecord(f *policyFrag) manifest.FileRecord {
	return manifest.FileRecord{Entity: "policy/" + f.file.Kind, Temp: f.file.Temp, Path: f.file.Path, Bytes: f.file.Bytes, XXH64: f.file.XXH64}
}

// syncPolicy fsyncs every file of an unchanged policy directory, in
// each form present (plain, packed or both), and the directories that
// hold them.
func (s *state) syncPolicy(dir string, p *policyPlan) error {
	dirty := map[string]bool{dir: true}
	for _, name := range append(sortedKeys(p.entries), layout.MetadataName) {
		f := filepath.Join(dir, filepath.FromSlash(name))
		found := false
		for _, form := range []string{f, f + policy.PackedExt} {
			if name == layout.MetadataName && form != f {
				continue
			}
			err := vfs.SyncFile(s.fsys, form)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			found = true
		}
		if !found {
			// The analysis found it: it vanished since.
			return fmt.Errorf("policy file %s (or its %s) disappeared during the merge", f, policy.PackedExt)
		}
		dirty[filepath.Dir(f)] = true
	}
	for d := range dirty {
		if err := s.dirs.Ensure(d); err != nil {
			return err
		}
	}
	return s.syncDirs(dirty)
}

// stageWriter writes the policy's stage files, each through a temp file
// in _shards/tmp, checked against the analysis' size and XXH64 (hashed
// as it is written), fsynced and renamed into place, as replaceAll does,
// but with the fsync and rename of one file in a goroutine of their own
// while the caller assembles and encodes the next stage (the written
// bytes are in the page cache: the encoder's buffer is free as soon as
// write returns). finish waits for the last one and syncs the
// directories that got new names; until it returns nil, no stage file
// may be vouched for.
type stageWriter struct {
	s     *state
	seq   int
	dirs  map[string]bool
	queue chan stagePending
	done  chan struct{}
	mu    sync.Mutex
	err   error
	wrote []string // renamed into place, in order
}

type stagePending struct {
	p          *vfs.Pending
	tmp, final string
	rel        string
}

func (s *state) newStageWriter() *stageWriter {
	w := &stageWriter{s: s, dirs: map[string]bool{}, queue: make(chan stagePending), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for sp := range w.queue {
			if w.failed() != nil {
				sp.p.Abort()
				continue
			}
			err := sp.p.Sync() // removes the temp on failure
			if err == nil {
				if err = s.fsys.Rename(sp.tmp, sp.final); err != nil {
					_ = s.fsys.Remove(sp.tmp)
					err = fmt.Errorf("writing %s: %w", sp.final, err)
				}
			}
			w.mu.Lock()
			if err != nil && w.err == nil {
				w.err = err
			}
			if err == nil {
				w.wrote = append(w.wrote, sp.rel)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *stageWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// write makes OUT/rel hold data (which must match want), durably once
// finish returns nil. A file already holding exactly data is only
// fsynced (a merge that wrote it may have died before its fsync).
func (w *stageWriter) write(rel string, data []byte, want policy.FileEntry) error {
	if err := w.failed(); err != nil {
		return err
	}
	s := w.s
	final := layout.Join(s.out, rel)
	dir := filepath.Dir(final)
	if err := s.dirs.Ensure(dir); err != nil {
		return fmt.Errorf("writing %s: %w", final, err)
	}
	w.dirs[dir] = true
	if same, err := sameContent(s.fsys, final, data); err == nil && same {
		if want.Bytes != int64(len(data)) || want.XXH64 != manifest.FormatXXH64(xxhash.Sum64(data)) {
			return fmt.Errorf("%s: assembled differently than verified", rel)
		}
		return vfs.SyncFile(s.fsys, final)
	}
	if w.seq == 0 {
		if err := s.dirs.Ensure(layout.Join(s.out, layout.TempDir)); err != nil {
			return fmt.Errorf("writing %s: %w", final, err)
		}
	}
	tmp := layout.Join(s.out, layout.MergeTemp(os.Getpid(), w.seq, rel))
	w.seq++
	_ = s.fsys.Remove(tmp) // a leftover of this same process id from an earlier crash
	info, pend, err := vfs.WriteNew(s.fsys, tmp, func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", final, err)
	}
	if info.Bytes != want.Bytes || manifest.FormatXXH64(info.XXH64) != want.XXH64 {
		pend.Abort()
		return fmt.Errorf("%s: assembled differently than verified", rel)
	}
	w.queue <- stagePending{p: pend, tmp: tmp, final: final, rel: rel}
	return nil
}

// finish waits for the pending fsyncs and renames, reports the files
// renamed into place and syncs their directories.
func (w *stageWriter) finish() error {
	if w.queue != nil {
		close(w.queue)
		<-w.done
		w.queue = nil
		w.s.report.Written = append(w.s.report.Written, w.wrote...)
	}
	if err := w.failed(); err != nil {
		return err
	}
	return w.s.syncDirs(w.dirs)
}

// sameContent reports whether name holds exactly data, reading it in
// bounded chunks (a stage file is up to 2 GiB).
func sameContent(fsys vfs.FS, name string, data []byte) (bool, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() != int64(len(data)) || !st.Mode().IsRegular() {
		return false, err
	}
	buf := make([]byte, min(len(data), 1<<20)+1)
	for off := 0; ; {
		n, err := f.Read(buf)
		if n > 0 {
			if off+n > len(data) || !bytes.Equal(buf[:n], data[off:off+n]) {
				return false, nil
			}
			off += n
		}
		if errors.Is(err, io.EOF) {
			return off == len(data), nil
		}
		if err != nil {
			return false, err
		}
	}
}

// stageAtAnalysis reports whether the analysis may write the policy's
// stage files to temp files as it checks them: only in a merge that will
// go on to apply what it found (s.applying: Run, which holds the merge
// lock; never Analyze or `merge-shards report`, which change nothing), when nothing has made the outcome corrupt or running so far
// (a problem the policy check itself finds removes the temp files
// again), and when _shards/tmp exists (the analysis creates no
// directory).
func (s *state) stageAtAnalysis() bool {
	if len(s.report.Problems) > 0 || len(s.report.Live) > 0 || !s.applying {
		return false
	}
	st, err := s.fsys.Lstat(layout.Join(s.out, layout.TempDir))
	return err == nil && st.IsDir()
}

// stagedFile is a stage file the analysis staged.
type stagedFile struct {
	rel   string           // relative to policy/ ("cuts/stage_003.bin")
	final string           // its path
	tmp   string           // its durable temp file; "" when final already holds exactly its bytes
	want  policy.FileEntry // its size and XXH64
	done  bool             // renamed into place
}

// stager writes the stage files during the analysis, each to a temp file
// in _shards/tmp as soon as it has been assembled and checked, checked
// against the size and XXH64 just recorded for it (hashed as it is
// written). The write runs in a goroutine of its own while the caller
// reads and unites the next stage's fragments, and each file's fsync in
// another while the next is written. It renames nothing: writePolicy
// does, once the analysis found no problem and the apply phase has come
// to the policy. A stage file already holding exactly the assembled
// bytes (a rebuild) is not staged: writePolicy fsyncs it in place.
type stager struct {
	s     *state
	busy  *sync.WaitGroup // Done when a job's bytes are written: the caller may reuse them
	jobs  chan stageJob
	queue chan *vfs.Pending
	done  chan struct{} // the writer and the syncer have stopped
	// Only the writer goroutine uses these until done is closed.
	seq   int
	taken map[string]bool // temp names the apply phase will remove (garbage)
	files []stagedFile
	mu    sync.Mutex
	err   error
}

type stageJob struct {
	rel  string
	data []byte
	want policy.FileEntry
}

// newStager starts the stager's goroutines; busy is the WaitGroup the
// caller waits on before it reuses the bytes it handed to stage.
func (s *state) newStager(busy *sync.WaitGroup) *stager {
	g := &stager{s: s, busy: busy, taken: map[string]bool{}, jobs: make(chan stageJob, 4), queue: make(chan *vfs.Pending), done: make(chan struct{})}
	for _, rel := range s.garbage {
		g.taken[rel] = true
	}
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		for pend := range g.queue {
			if g.failed() != nil {
				pend.Abort()
				continue
			}
			if err := pend.Sync(); err != nil { // removes the temp on failure
				g.fail(err)
			}
		}
	}()
	go func() {
		defer close(g.done)
		for job := range g.jobs {
			var pend *vfs.Pending
			if g.failed() == nil {
				var err error
				if pend, err = g.write(job); err != nil {
					g.fail(err)
				}
			}
			g.busy.Done() // job.data is no longer read
			if pend != nil {
				g.queue <- pend // waits for the previous file's fsync
			}
		}
		close(g.queue)
		<-synced
	}()
	return g
}

func (g *stager) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *stager) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

// stage queues the writing of data, policy/rel's assembled bytes (which
// must match want), to a new temp file; data must stay unchanged until
// the busy WaitGroup is done. An error means staging has failed (this
// file or an earlier one).
func (g *stager) stage(rel string, data []byte, want policy.FileEntry) error {
	if err := g.failed(); err != nil {
		return err
	}
	g.busy.Add(1)
	g.jobs <- stageJob{rel: rel, data: data, want: want}
	return nil
}

// write writes one job's temp file, unless its stage file already holds
// exactly its bytes, and returns its pending fsync.
func (g *stager) write(job stageJob) (*vfs.Pending, error) {
	s, rel, data, want := g.s, job.rel, job.data, job.want
	final := layout.Join(s.out, path.Join(layout.PolicyDir, rel))
	if want.Bytes != int64(len(data)) {
		return nil, fmt.Errorf("%s: assembled differently than verified", rel)
	}
	if same, err := sameContent(s.fsys, final, data); err == nil && same {
		if want.XXH64 != manifest.FormatXXH64(xxhash.Sum64(data)) {
			return nil, fmt.Errorf("%s: assembled differently than verified", rel)
		}
		g.files = append(g.files, stagedFile{rel: rel, final: final, want: want})
		return nil, nil
	}
	if g.seq == 0 {
		if err := s.dirs.Ensure(layout.Join(s.out, layout.TempDir)); err != nil {
			return nil, fmt.Errorf("writing %s: %w", final, err)
		}
	}
	// A name no file has: a leftover of an earlier merge with this same
	// process id is garbage that the apply phase removes, and must not
	// take this file with it.
	var tmp string
	for {
		name := layout.MergeTemp(os.Getpid(), g.seq, path.Join(layout.PolicyDir, rel))
		g.seq++
		if g.taken[name] {
			continue
		}
		tmp = layout.Join(s.out, name)
		_, err := s.fsys.Lstat(tmp)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", final, err)
		}
	}
	info, pend, err := vfs.WriteNew(s.fsys, tmp, func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", final, err)
	}
	if info.Bytes != want.Bytes || manifest.FormatXXH64(info.XXH64) != want.XXH64 {
		pend.Abort()
		return nil, fmt.Errorf("%s: assembled differently than verified", rel)
	}
	g.files = append(g.files, stagedFile{rel: rel, final: final, tmp: tmp, want: want})
	return pend, nil
}

// wait waits for the queued writes and fsyncs and returns the staged
// files, every temp file durable, or the first error (the temp file that
// failed is gone; abandon removes the others).
func (g *stager) wait() ([]stagedFile, error) {
	if g.jobs != nil {
		close(g.jobs)
		<-g.done
		g.jobs = nil
	}
	if err := g.failed(); err != nil {
		return nil, err
	}
	return g.files, nil
}

// abandon removes every staged temp file.
func (g *stager) abandon() {
	_, _ = g.wait()
	for _, f := range g.files {
		if f.tmp != "" {
			_ = g.s.fsys.Remove(f.tmp)
		}
	}
	g.files = nil
}

// publishStaged puts the files the analysis staged in place, in stage
// order: each temp file (durable since the analysis) is renamed over its
// stage file; a stage file that already held exactly its bytes is
// checked against its size and XXH64 again and fsynced (a merge that
// wrote it may have died before its fsync). Then the directories that
// got new names are synced. On an error the temp files not yet renamed
// are removed (dropStaged).
func (s *state) publishStaged(p *policyPlan) error {
	dirs := map[string]bool{}
	for i := range p.staged {
		f := &p.staged[i]
		dir := filepath.Dir(f.final)
		if err := s.dirs.Ensure(dir); err != nil {
			return fmt.Errorf("writing %s: %w", f.final, err)
		}
		dirs[dir] = true
		if f.tmp == "" {
			if err := fileMatches(s.fsys, f.final, f.want); err != nil {
				return fmt.Errorf("policy file %s changed since it was verified: %w", f.rel, err)
			}
			if err := vfs.SyncFile(s.fsys, f.final); err != nil {
				return err
			}
			continue
		}
		if err := s.fsys.Rename(f.tmp, f.final); err != nil {
			return fmt.Errorf("writing %s: %w", f.final, err)
		}
		f.done = true
		s.report.Written = append(s.report.Written, path.Join(layout.PolicyDir, f.rel))
	}
	return s.syncDirs(dirs)
}

// dropStaged removes the staged temp files that were not renamed into
// place.
func (s *state) dropStaged(p *policyPlan) {
	for i := range p.staged {
		if f := &p.staged[i]; f.tmp != "" && !f.done {
			_ = s.fsys.Remove(f.tmp)
			f.done = true
		}
	}
}

// fileMatches checks that name holds want's size and XXH64, reading it
// in bounded chunks.
func fileMatches(fsys vfs.FS, name string, want policy.FileEntry) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	h := xxhash.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	if err != nil {
		return err
	}
	if n != want.Bytes {
		return fmt.Errorf("%d bytes, want %d", n, want.Bytes)
	}
	if got := manifest.FormatXXH64(h.Sum64()); got != want.XXH64 {
		return fmt.Errorf("xxh64 %s, want %s", got, want.XXH64)
	}
	return nil
}
