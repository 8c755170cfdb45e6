package policy

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// CutView is one verified cut of a StageCutsView. Its slices alias the
// buffer when ZeroCopy reports true.
type CutView struct {
	CutID             uint64
	SlotIndex         uint32
	Iteration         uint32
	ForwardPassIndex  uint32
	Intercept         float64
	IsActive          bool
	coefficients      []float64
	stateAtGeneration []float64
}

// Coefficients returns the cut's coefficients: a zero-copy view over the
// buffer when its data is 8-byte aligned in memory on a little-endian
// machine, a copy made at read time otherwise. Do not modify it.
func (c *CutView) Coefficients() []float64 { return c.coefficients }

// StateAtGeneration returns the state the cut was generated at (nil when
// the file does not carry it), with the same aliasing as Coefficients.
func (c *CutView) StateAtGeneration() []float64 { return c.stateAtGeneration }

// StageCutsView is a verified, read-only view of a cuts/stage_NNN.bin
// buffer. It keeps the buffer alive.
type StageCutsView struct {
	StageID          uint32
	StateDimension   uint32
	Capacity         uint32
	WarmStartCount   uint32
	PopulatedCount   uint32
	ActiveCutIndices []uint32
	Cuts             []CutView
	// ZeroCopy is true when every float vector is a view over the buffer.
	ZeroCopy bool
}

// float64s returns n little-endian doubles starting at buf[pos] (bounds
// already verified), without copying when alignment allows.
func float64s(buf []byte, pos int64, n int) ([]float64, bool) {
	if n == 0 {
		return []float64{}, true
	}
	p := unsafe.Pointer(&buf[pos])
	if littleEndian && uintptr(p)%8 == 0 {
		return unsafe.Slice((*float64)(p), n), true
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(buf[pos+int64(i)*8:]))
	}
	return out, false
}

func uint32s(buf []byte, pos int64, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(buf[pos+int64(i)*4:])
	}
	return out
}

// ReadStageCuts verifies buf as a StageCuts root and returns a view of it.
// Any structural defect (bad offset, vtable, length, truncation) is an
// error wrapping ErrCorrupt; it never panics. Semantic checks: each cut has
// state_dimension coefficients, state_at_generation is empty or
// state_dimension long, populated_count = number of cuts, active indices
// are ascending and in range. Before anything is sized from them,
// state_dimension, populated_count, capacity and warm_start_count are
// checked against MaxStateDimension and MaxCutsPerStage (a *LimitError)
// and populated_count against the bytes the buffer holds (each cut takes
// at least minCutBytes). The retired field id 4 of Cut is ignored.
func ReadStageCuts(buf []byte) (*StageCutsView, error) {
	v := newVerifier(buf)
	root, err := v.root()
	if err != nil {
		return nil, err
	}
	s := &StageCutsView{ZeroCopy: true}
	if s.StageID, err = v.u32Field(root, scStageID, "StageCuts.stage_id"); err != nil {
		return nil, err
	}
	if s.StateDimension, err = v.u32Field(root, scStateDimension, "StageCuts.state_dimension"); err != nil {
		return nil, err
	}
	if s.Capacity, err = v.u32Field(root, scCapacity, "StageCuts.capacity"); err != nil {
		return nil, err
	}
	if s.WarmStartCount, err = v.u32Field(root, scWarmStartCount, "StageCuts.warm_start_count"); err != nil {
		return nil, err
	}
	if s.PopulatedCount, err = v.u32Field(root, scPopulatedCount, "StageCuts.populated_count"); err != nil {
		return nil, err
	}
	// Every count is checked against its limit and against the bytes
	// present before anything is sized from it.
	for _, l := range []struct {
		field string
		v     uint32
		limit uint64
		name  string
	}{
		{"StageCuts.state_dimension", s.StateDimension, MaxStateDimension, "policy.MaxStateDimension"},
		{"StageCuts.populated_count", s.PopulatedCount, MaxCutsPerStage, "policy.MaxCutsPerStage"},
		{"StageCuts.capacity", s.Capacity, MaxCutsPerStage, "policy.MaxCutsPerStage"},
		{"StageCuts.warm_start_count", s.WarmStartCount, MaxCutsPerStage, "policy.MaxCutsPerStage"},
	} {
		if err := checkLimit(s.StageID, l.field, l.v, l.limit, l.name); err != nil {
			return nil, err
		}
	}
	if need := int64(s.PopulatedCount) * minCutBytes(s.StateDimension); need > int64(len(buf)) {
		return nil, v.errf("stage %d: populated_count %d cuts of state_dimension %d need at least %d bytes, the buffer holds %d",
			s.StageID, s.PopulatedCount, s.StateDimension, need, len(buf))
	}
	cp, cn, _, err := v.vector(root, scCuts, 4, "StageCuts.cuts")
	if err != nil {
		return nil, err
	}
	if int64(s.PopulatedCount) != int64(cn) {
		return nil, v.errf("stage %d: populated_count %d but %d cuts", s.StageID, s.PopulatedCount, cn)
	}
	ap, an, _, err := v.vector(root, scActiveCutIndices, 4, "StageCuts.active_cut_indices")
	if err != nil {
		return nil, err
	}
	if an > cn {
		return nil, v.errf("stage %d: %d active_cut_indices for %d cuts", s.StageID, an, cn)
	}
	s.ActiveCutIndices = uint32s(buf, ap, an)
	dim := int(s.StateDimension)
	s.Cuts = make([]CutView, cn)
	for i := range s.Cuts {
		elem := cp + 4*int64(i)
		tp, err := v.follow(elem, "StageCuts.cuts[]")
		if err != nil {
			return nil, err
		}
		t, err := v.table(tp, "Cut")
		if err != nil {
			return nil, err
		}
		c := &s.Cuts[i]
		if c.CutID, err = v.u64Field(t, cutCutID, "Cut.cut_id"); err != nil {
			return nil, err
		}
		if c.SlotIndex, err = v.u32Field(t, cutSlotIndex, "Cut.slot_index"); err != nil {
			return nil, err
		}
		if c.Iteration, err = v.u32Field(t, cutIteration, "Cut.iteration"); err != nil {
			return nil, err
		}
		if c.ForwardPassIndex, err = v.u32Field(t, cutForwardPassIndex, "Cut.forward_pass_index"); err != nil {
			return nil, err
		}
		ip, err := v.field(t, cutIntercept, 8, "Cut.intercept")
		if err != nil {
			return nil, err
		}
		if ip != 0 {
			c.Intercept = math.Float64frombits(binary.LittleEndian.Uint64(buf[ip:]))
		}
		if c.IsActive, err = v.boolField(t, cutIsActive, "Cut.is_active"); err != nil {
			return nil, err
		}
		dp, dn, _, err := v.vector(t, cutCoefficients, 8, "Cut.coefficients")
		if err != nil {
			return nil, err
		}
		if dn != dim {
			return nil, v.errf("stage %d cut %d (cut_id %d): %d coefficients, state_dimension %d",
				s.StageID, i, c.CutID, dn, dim)
		}
		var zc bool
		c.coefficients, zc = float64s(buf, dp, dn)
		s.ZeroCopy = s.ZeroCopy && zc
		gp, gn, present, err := v.vector(t, cutStateAtGeneration, 8, "Cut.state_at_generation")
		if err != nil {
			return nil, err
		}
		if gn != 0 && gn != dim {
			return nil, v.errf("stage %d cut %d (cut_id %d): state_at_generation length %d, state_dimension %d",
				s.StageID, i, c.CutID, gn, dim)
		}
		if present && gn > 0 {
			c.stateAtGeneration, zc = float64s(buf, gp, gn)
			s.ZeroCopy = s.ZeroCopy && zc
		}
	}
	for k, idx := range s.ActiveCutIndices {
		if int64(idx) >= int64(cn) || (k > 0 && idx <= s.ActiveCutIndices[k-1]) {
			return nil, v.errf("stage %d: active_cut_indices[%d] = %d not ascending or out of range (%d cuts)",
				s.StageID, k, idx, cn)
		}
	}
	return s, nil
}

// StageBasisView is a verified view of a basis/stage_NNN.bin buffer. The
// status slices alias the buffer.
type StageBasisView struct {
	StageID      uint32
	Iteration    uint32
	NumColumns   uint32
	NumRows      uint32
	ColumnStatus []byte
	RowStatus    []byte
	NumCutRows   uint32
}

// ReadStageBasis verifies buf as a StageBasis root.
func ReadStageBasis(buf []byte) (*StageBasisView, error) {
	v := newVerifier(buf)
	root, err := v.root()
	if err != nil {
		return nil, err
	}
	s := &StageBasisView{}
	for _, f := range []struct {
		id  int
		dst *uint32
		nm  string
	}{
		{sbStageID, &s.StageID, "StageBasis.stage_id"},
		{sbIteration, &s.Iteration, "StageBasis.iteration"},
		{sbNumColumns, &s.NumColumns, "StageBasis.num_columns"},
		{sbNumRows, &s.NumRows, "StageBasis.num_rows"},
		{sbNumCutRows, &s.NumCutRows, "StageBasis.num_cut_rows"},
	} {
		if *f.dst, err = v.u32Field(root, f.id, f.nm); err != nil {
			return nil, err
		}
	}
	cp, cn, _, err := v.vector(root, sbColumnStatus, 1, "StageBasis.column_status")
	if err != nil {
		return nil, err
	}
	rp, rn, _, err := v.vector(root, sbRowStatus, 1, "StageBasis.row_status")
	if err != nil {
		return nil, err
	}
	s.ColumnStatus = buf[cp : cp+int64(cn) : cp+int64(cn)]
	s.RowStatus = buf[rp : rp+int64(rn) : rp+int64(rn)]
	if int64(s.NumColumns) != int64(cn) || int64(s.NumRows) != int64(rn) || s.NumCutRows > s.NumRows {
		return nil, v.errf("stage %d basis: num_columns %d / num_rows %d / num_cut_rows %d inconsistent with %d column and %d row statuses",
			s.StageID, s.NumColumns, s.NumRows, s.NumCutRows, cn, rn)
	}
	return s, nil
}

// StageStatesView is a verified view of a states/stage_NNN.bin buffer.
type StageStatesView struct {
	StageID        uint32
	StateDimension uint32
	Count          uint32
	// Data is row-major Count x StateDimension; a zero-copy view when
	// ZeroCopy is true.
	Data     []float64
	ZeroCopy bool
}

// State returns row i of Data.
func (s *StageStatesView) State(i int) []float64 {
	d := int(s.StateDimension)
	return s.Data[i*d : (i+1)*d : (i+1)*d]
}

// ReadStageStates verifies buf as a StageStates root: state_dimension and
// count within MaxStateDimension and MaxStatesPerStage (a *LimitError),
// count 0 when state_dimension is 0, count x state_dimension = the length
// of data.
func ReadStageStates(buf []byte) (*StageStatesView, error) {
	v := newVerifier(buf)
	root, err := v.root()
	if err != nil {
		return nil, err
	}
	s := &StageStatesView{}
	if s.StageID, err = v.u32Field(root, ssStageID, "StageStates.stage_id"); err != nil {
		return nil, err
	}
	if s.StateDimension, err = v.u32Field(root, ssStateDimension, "StageStates.state_dimension"); err != nil {
		return nil, err
	}
	if s.Count, err = v.u32Field(root, ssCount, "StageStates.count"); err != nil {
		return nil, err
	}
	if err := checkLimit(s.StageID, "StageStates.state_dimension", s.StateDimension, MaxStateDimension, "policy.MaxStateDimension"); err != nil {
		return nil, err
	}
	if err := checkLimit(s.StageID, "StageStates.count", s.Count, MaxStatesPerStage, "policy.MaxStatesPerStage"); err != nil {
		return nil, err
	}
	// A state of dimension 0 takes no bytes: the encoder writes count 0
	// then, and a count no data backs is refused.
	if s.Count > 0 && s.StateDimension == 0 {
		return nil, v.errf("stage %d states: count %d with state_dimension 0", s.StageID, s.Count)
	}
	dp, dn, _, err := v.vector(root, ssData, 8, "StageStates.data")
	if err != nil {
		return nil, err
	}
	if uint64(s.Count)*uint64(s.StateDimension) != uint64(dn) {
		return nil, v.errf("stage %d states: count %d x state_dimension %d != %d values",
			s.StageID, s.Count, s.StateDimension, dn)
	}
	s.Data, s.ZeroCopy = float64s(buf, dp, dn)
	return s, nil
}
