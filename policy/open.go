package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// Errors returned (wrapped, with the details) by Open and the Load methods.
var (
	// ErrStateDimension: a state_dimension differs from the expected one
	// (metadata.json or a stage file).
	ErrStateDimension = errors.New("policy: state_dimension mismatch")
	// ErrStageCount: the number of stages differs from the expected one
	// (metadata.json num_stages or the number of cuts files).
	ErrStageCount = errors.New("policy: stage count mismatch")
	// ErrLayout: the directory breaks the directory contract (missing
	// cuts/ or basis/, bad file names, duplicate stage ids, orphan files).
	ErrLayout = errors.New("policy: directory layout")
	// ErrMetadata: metadata.json is missing or unreadable.
	ErrMetadata = errors.New("policy: metadata.json")
	// ErrChecksum: a file's size or xxh64 differs from metadata.json's
	// "files" entry, or a file is not covered by it.
	ErrChecksum = errors.New("policy: checksum mismatch")
)

// FileEntry is this project's per-file integrity record, kept under the
// extra key "files" of metadata.json (Cobre ignores unknown keys).
type FileEntry struct {
	Bytes int64  `json:"bytes"`
	XXH64 string `json:"xxh64"` // 16 lowercase hex digits
}

// Metadata is policy/metadata.json, the one type the merge writes and
// Open reads: Cobre's keys, then this project's integrity data ("files",
// per stage file) and hashes.
type Metadata struct {
	CobreVersion        string   `json:"cobre_version"`
	CreatedAt           string   `json:"created_at"`
	CompletedIterations int      `json:"completed_iterations"`
	FinalLowerBound     float64  `json:"final_lower_bound"`
	BestUpperBound      *float64 `json:"best_upper_bound"`
	// StateDimension and NumStages are pointers so that a reader tells a
	// missing key (refused) from a zero.
	StateDimension     *int                 `json:"state_dimension"`
	NumStages          *int                 `json:"num_stages"`
	MaxIterations      int                  `json:"max_iterations"`
	ForwardPasses      int                  `json:"forward_passes"`
	WarmStartCuts      uint64               `json:"warm_start_cuts"`
	WarmStartCounts    []uint32             `json:"warm_start_counts"`
	RNGSeed            uint64               `json:"rng_seed"`
	TotalVisitedStates int                  `json:"total_visited_states"`
	Files              map[string]FileEntry `json:"files"`
	// This project's keys, after Cobre's: SHA-256 of the training
	// configuration and of the system (the case), and the RNG state when
	// the solver gives one.
	ConfigHash string `json:"config_hash"`
	SystemHash string `json:"system_hash"`
	RNGState   string `json:"rng_state,omitempty"`
}

// Expect is what the caller needs the policy to be. A zero field is not
// checked.
type Expect struct {
	StateDimension int
	NumStages      int
}

// StageInfo locates one stage's files; paths are relative to Policy.Dir
// with forward slashes, BasisFile and StatesFile empty when absent.
type StageInfo struct {
	StageID        uint32
	StateDimension uint32
	PopulatedCount uint32
	CutsFile       string
	BasisFile      string
	StatesFile     string
}

// Policy is an opened, fully verified policy directory. Stage data is not
// kept in memory (one stage can be ~250 MB): Load* re-read and re-verify a
// stage's file on demand.
type Policy struct {
	Dir      string
	Metadata Metadata
	Stages   []StageInfo // ordered by StageID
	byID     map[uint32]int
	fsys     vfs.FS
}

var stageName = regexp.MustCompile(`^stage_[0-9]{3,}\.bin$`)

// Open is OpenFS on the operating system's file system.
func Open(dir string, expect Expect) (*Policy, error) { return OpenFS(vfs.OS(), dir, expect) }

// OpenFS checks the policy directory dir of fsys against the directory contract
// (metadata.json present, cuts/stage_NNN.bin, basis/ present, states/
// optional) and against expect, verifies every stage file's structure and,
// where metadata.json has a "files" entry, its size and xxh64. Stages are
// ordered by the stage_id inside the files, not by file name.
//
// When dir is the policy of a merged output (OUT/policy, beside
// OUT/training/dictionaries/state_dictionary.json), the state dictionary
// must list exactly state_dimension state variables, one per dimension of
// the cut coefficients (ErrStateDimension otherwise); a policy directory
// without that sibling is not checked against it.
func OpenFS(fsys vfs.FS, dir string, expect Expect) (*Policy, error) {
	p := &Policy{Dir: dir, fsys: fsys, byID: map[uint32]int{}}
	raw, err := vfs.ReadFile(fsys, filepath.Join(dir, layout.MetadataName), maxMetadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (it is written last: the policy is incomplete without it)", ErrMetadata, err)
	}
	if err := json.Unmarshal(raw, &p.Metadata); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMetadata, filepath.Join(dir, "metadata.json"), err)
	}
	md := &p.Metadata
	if md.StateDimension == nil || md.NumStages == nil {
		return nil, fmt.Errorf("%w: %s lacks state_dimension or num_stages", ErrMetadata, dir)
	}
	if *md.StateDimension < 0 || *md.StateDimension > MaxStateDimension {
		return nil, fmt.Errorf("%w: %w: %s: state_dimension %d, want 0..%d (policy.MaxStateDimension)",
			ErrMetadata, ErrLimit, dir, *md.StateDimension, MaxStateDimension)
	}
	if expect.StateDimension != 0 && *md.StateDimension != expect.StateDimension {
		return nil, fmt.Errorf("%w: expected state_dimension %d, metadata.json says %d (%s)",
			ErrStateDimension, expect.StateDimension, *md.StateDimension, dir)
	}
	if expect.NumStages != 0 && *md.NumStages != expect.NumStages {
		return nil, fmt.Errorf("%w: expected %d stages, metadata.json says num_stages %d (%s)",
			ErrStageCount, expect.NumStages, *md.NumStages, dir)
	}
	if err := checkStateDictionary(fsys, dir, *md.StateDimension); err != nil {
		return nil, err
	}
	for name, e := range md.Files {
		if _, err := strconv.ParseUint(e.XXH64, 16, 64); err != nil || len(e.XXH64) != 16 {
			return nil, fmt.Errorf("%w: files[%q].xxh64 %q is not 16 hex digits", ErrMetadata, name, e.XXH64)
		}
	}

	cuts, err := p.listStageFiles("cuts", true)
	if err != nil {
		return nil, err
	}
	if len(cuts) != *md.NumStages {
		return nil, fmt.Errorf("%w: metadata.json says num_stages %d, cuts/ holds %d stage files (%s)",
			ErrStageCount, *md.NumStages, len(cuts), dir)
	}
	dim := *md.StateDimension
	for _, rel := range cuts {
		s, err := p.loadCuts(rel)
		if err != nil {
			return nil, err
		}
		if int(s.StateDimension) != dim {
			return nil, fmt.Errorf("%w: %s has state_dimension %d, metadata.json says %d",
				ErrStateDimension, rel, s.StateDimension, dim)
		}
		if prev, dup := p.byID[s.StageID]; dup {
			return nil, fmt.Errorf("%w: %s and %s both hold stage_id %d",
				ErrLayout, p.Stages[prev].CutsFile, rel, s.StageID)
		}
		p.byID[s.StageID] = len(p.Stages)
		p.Stages = append(p.Stages, StageInfo{StageID: s.StageID, StateDimension: s.StateDimension,
			PopulatedCount: s.PopulatedCount, CutsFile: rel})
	}

	basis, err := p.listStageFiles("basis", true)
	if err != nil {
		return nil, err
	}
	for _, rel := range basis {
		b, err := p.loadBasis(rel)
		if err != nil {
			return nil, err
		}
		i, ok := p.byID[b.StageID]
		if !ok {
			return nil, fmt.Errorf("%w: %s holds stage_id %d, which has no cuts file", ErrLayout, rel, b.StageID)
		}
		if p.Stages[i].BasisFile != "" {
			return nil, fmt.Errorf("%w: %s and %s both hold the basis of stage_id %d",
				ErrLayout, p.Stages[i].BasisFile, rel, b.StageID)
		}
		p.Stages[i].BasisFile = rel
	}

	states, err := p.listStageFiles("states", false)
	if err != nil {
		return nil, err
	}
	for _, rel := range states {
		s, err := p.loadStates(rel)
		if err != nil {
			return nil, err
		}
		i, ok := p.byID[s.StageID]
		if !ok {
			return nil, fmt.Errorf("%w: %s holds stage_id %d, which has no cuts file", ErrLayout, rel, s.StageID)
		}
		if int(s.StateDimension) != dim && s.Count > 0 {
			return nil, fmt.Errorf("%w: %s has state_dimension %d, metadata.json says %d",
				ErrStateDimension, rel, s.StateDimension, dim)
		}
		if p.Stages[i].StatesFile != "" {
			return nil, fmt.Errorf("%w: %s and %s both hold the states of stage_id %d",
				ErrLayout, p.Stages[i].StatesFile, rel, s.StageID)
		}
		p.Stages[i].StatesFile = rel
	}

	if md.Files != nil {
		covered := map[string]bool{}
		for _, l := range [][]string{cuts, basis, states} {
			for _, rel := range l {
				covered[rel] = true
			}
		}
		names := make([]string, 0, len(md.Files))
		for name := range md.Files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if !covered[name] && isStageDir(name) {
				return nil, fmt.Errorf("%w: metadata.json lists %s, which is missing", ErrChecksum, name)
			}
		}
	}
	sort.Slice(p.Stages, func(a, b int) bool { return p.Stages[a].StageID < p.Stages[b].StageID })
	for i, s := range p.Stages {
		p.byID[s.StageID] = i
	}
	return p, nil
}

func isStageDir(rel string) bool {
	return strings.HasPrefix(rel, "cuts/") || strings.HasPrefix(rel, "basis/") || strings.HasPrefix(rel, "states/")
}

// listStageFiles returns the relative paths of sub's stage files, sorted by
// name. A missing required directory, a subdirectory or a file not named
// stage_NNN.bin is an ErrLayout error.
func (p *Policy) listStageFiles(sub string, required bool) ([]string, error) {
	ents, err := p.fsys.ReadDir(filepath.Join(p.Dir, sub))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !required {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s/ must exist: %v", ErrLayout, sub, err)
	}
	var out []string
	for _, e := range ents {
		if packedName.MatchString(e.Name()) {
			return nil, packedError(p.Dir, path.Join(sub, e.Name()))
		}
		if !e.Type().IsRegular() || !stageName.MatchString(e.Name()) {
			return nil, fmt.Errorf("%w: unexpected entry %s/%s (only stage_NNN.bin files)", ErrLayout, sub, e.Name())
		}
		out = append(out, path.Join(sub, e.Name()))
	}
	return out, nil
}

// readChecked reads rel and checks it against metadata.json's "files".
func (p *Policy) readChecked(rel string) ([]byte, error) {
	limit := int64(maxStageFile)
	if e, ok := p.Metadata.Files[rel]; ok && e.Bytes >= 0 {
		limit = e.Bytes // a larger file is refused without reading it whole
	}
	buf, err := vfs.ReadFile(p.fsys, filepath.Join(p.Dir, filepath.FromSlash(rel)), limit)
	var tl *vfs.TooLargeError
	if errors.As(err, &tl) {
		return nil, fmt.Errorf("%w: %s is %d bytes, metadata.json says %d", ErrChecksum, rel, tl.Size, limit)
	}
	if err != nil {
		return nil, err
	}
	if p.Metadata.Files == nil {
		return buf, nil
	}
	e, ok := p.Metadata.Files[rel]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not listed in metadata.json files", ErrChecksum, rel)
	}
	if int64(len(buf)) != e.Bytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, metadata.json says %d", ErrChecksum, rel, len(buf), e.Bytes)
	}
	want, _ := strconv.ParseUint(e.XXH64, 16, 64)
	if got := xxhash.Sum64(buf); got != want {
		return nil, fmt.Errorf("%w: %s has xxh64 %016x, metadata.json says %s", ErrChecksum, rel, got, e.XXH64)
	}
	return buf, nil
}

func (p *Policy) loadCuts(rel string) (*StageCutsView, error) {
	buf, err := p.readChecked(rel)
	if err != nil {
		return nil, err
	}
	s, err := ReadStageCuts(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return s, nil
}

func (p *Policy) loadBasis(rel string) (*StageBasisView, error) {
	buf, err := p.readChecked(rel)
	if err != nil {
		return nil, err
	}
	s, err := ReadStageBasis(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return s, nil
}

func (p *Policy) loadStates(rel string) (*StageStatesView, error) {
	buf, err := p.readChecked(rel)
	if err != nil {
		return nil, err
	}
	s, err := ReadStageStates(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return s, nil
}

func (p *Policy) stage(stageID uint32) (StageInfo, error) {
	i, ok := p.byID[stageID]
	if !ok {
		return StageInfo{}, fmt.Errorf("policy: no stage_id %d in %s", stageID, p.Dir)
	}
	return p.Stages[i], nil
}

// LoadCuts reads, checks and verifies the cuts of stageID.
func (p *Policy) LoadCuts(stageID uint32) (*StageCutsView, error) {
	st, err := p.stage(stageID)
	if err != nil {
		return nil, err
	}
	s, err := p.loadCuts(st.CutsFile)
	if err == nil && s.StageID != stageID {
		err = fmt.Errorf("%w: %s now holds stage_id %d, not %d", ErrLayout, st.CutsFile, s.StageID, stageID)
	}
	return s, err
}

// LoadBasis reads the basis of stageID; nil, nil when the stage has none.
func (p *Policy) LoadBasis(stageID uint32) (*StageBasisView, error) {
	st, err := p.stage(stageID)
	if err != nil || st.BasisFile == "" {
		return nil, err
	}
	return p.loadBasis(st.BasisFile)
}

// LoadStates reads the visited states of stageID; nil, nil when absent.
func (p *Policy) LoadStates(stageID uint32) (*StageStatesView, error) {
	st, err := p.stage(stageID)
	if err != nil || st.StatesFile == "" {
		return nil, err
	}
	return p.loadStates(st.StatesFile)
}

// checkStateDictionary checks the state dictionary beside a merged
// policy directory (dir/../training/dictionaries/state_dictionary.json)
// against the policy's state dimension: its "state_variables" array
// names one state variable per dimension. An absent dictionary is not an
// error. The array is counted as it streams, never held whole.
func checkStateDictionary(fsys vfs.FS, dir string, dim int) error {
	name := filepath.Join(filepath.Dir(filepath.Clean(dir)), filepath.FromSlash(layout.DictDir), layout.DictStateName)
	f, err := fsys.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrStateDimension, name, err)
	}
	defer f.Close()
	bad := func(what string) error {
		return fmt.Errorf("%w: %s: %s", ErrStateDimension, name, what)
	}
	dec := json.NewDecoder(f)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("not a JSON object")
	}
	n := -1
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return bad(err.Error())
		}
		if key != "state_variables" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(err.Error())
			}
			continue
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return bad("state_variables is not an array")
		}
		for n = 0; dec.More(); n++ {
			if n >= dim {
				return bad(fmt.Sprintf("more than state_dimension %d state variables", dim))
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return bad(err.Error())
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err.Error())
		}
	}
	switch {
	case n < 0:
		return bad("no state_variables")
	case n != dim:
		return bad(fmt.Sprintf("%d state variables, metadata.json says state_dimension %d", n, dim))
	}
	return nil
}
