package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/hydroshard/hydroshard/policy/internal/fb"
)

// Cut is one Benders cut as the solver holds it.
type Cut struct {
	CutID             uint64
	SlotIndex         uint32
	Iteration         uint32
	ForwardPassIndex  uint32
	Intercept         float64
	Coefficients      []float64 // length = state dimension
	StateAtGeneration []float64 // optional: empty or length = state dimension
	IsActive          bool
}

// StageCuts is the cut pool of one stage (root of cuts/stage_NNN.bin).
// active_cut_indices and populated_count are derived from Cuts when
// encoding.
type StageCuts struct {
	StageID        uint32
	StateDimension uint32
	Capacity       uint32
	WarmStartCount uint32
	Cuts           []Cut // populated slots, ordered by SlotIndex
}

// StageBasis is the LP basis of one stage (root of basis/stage_NNN.bin).
// num_columns and num_rows are derived from the status slices.
type StageBasis struct {
	StageID      uint32
	Iteration    uint32
	ColumnStatus []byte
	RowStatus    []byte
	NumCutRows   uint32
}

// StageStates holds the visited states of one stage, row-major
// Count x StateDimension (root of states/stage_NNN.bin). count is derived
// from len(Data)/StateDimension.
type StageStates struct {
	StageID        uint32
	StateDimension uint32
	Data           []float64
}

// ErrInvalid is wrapped by encoding errors about inconsistent input.
var ErrInvalid = errors.New("policy: invalid input")

// Vtable slots (field ids) of the wire layout, as byte offsets into the
// vtable: 4 + 2*id.
const (
	cutCutID             = 0
	cutSlotIndex         = 1
	cutIteration         = 2
	cutForwardPassIndex  = 3
	cutDominationCount   = 4 // retired: never written, ignored on read
	cutIntercept         = 5
	cutCoefficients      = 6
	cutStateAtGeneration = 7
	cutIsActive          = 8

	scStageID          = 0
	scStateDimension   = 1
	scCapacity         = 2
	scWarmStartCount   = 3
	scCuts             = 4
	scActiveCutIndices = 5
	scPopulatedCount   = 6

	sbStageID      = 0
	sbIteration    = 1
	sbNumColumns   = 2
	sbNumRows      = 3
	sbColumnStatus = 4
	sbRowStatus    = 5
	sbNumCutRows   = 6

	ssStageID        = 0
	ssStateDimension = 1
	ssCount          = 2
	ssData           = 3
)

// maxBuffer is the largest buffer the Go builder can make.
const maxBuffer = 1<<31 - 1

var littleEndian = func() bool {
	var x uint16 = 1
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Writer encodes stages with one reused builder. The slice returned by an
// Encode method is valid until the next call on the same Writer. A Writer
// is not safe for concurrent use; use one per worker.
type Writer struct {
	b    *flatbuffers.Builder
	offs []flatbuffers.UOffsetT
	idx  []uint32
}

// NewWriter returns a Writer whose builder starts with initialSize bytes
// (it grows, and is pre-sized per stage, as needed).
func NewWriter(initialSize int) *Writer {
	return &Writer{b: flatbuffers.NewBuilder(initialSize)}
}

// presize resets b and makes sure it holds at least n bytes, so encoding
// never regrows (each regrow copies the whole buffer).
func presize(b *flatbuffers.Builder, n int) {
	if n > maxBuffer-7 {
		n = maxBuffer - 7
	}
	// Keep the buffer length a multiple of 8: the builder aligns relative
	// to the buffer end, so this makes 8-aligned data 8-aligned in memory
	// too (Go allocates large slices page-aligned).
	n = (n + 7) &^ 7
	if cap(b.Bytes) < n || cap(b.Bytes)%8 != 0 {
		b.Bytes = make([]byte, n)
	}
	b.Reset()
}

// float64Bytes returns the little-endian bytes of v: v's own memory on a
// little-endian machine, a converted copy otherwise.
func float64Bytes(v []float64) []byte {
	if len(v) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*8)
	}
	out := make([]byte, len(v)*8)
	for i, x := range v {
		binary.LittleEndian.PutUint64(out[i*8:], math.Float64bits(x))
	}
	return out
}

func uint32Bytes(v []uint32) []byte {
	if len(v) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
	}
	out := make([]byte, len(v)*4)
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[i*4:], x)
	}
	return out
}

// createScalarVector writes a vector of n elements of elemSize bytes whose
// little-endian bytes are data, in one copy: align so the element data is
// elemSize-aligned (relative to the buffer end, hence to the finished
// buffer's start), let CreateByteVector copy the bytes, then replace the
// byte count it wrote as length prefix by the element count.
func createScalarVector(b *flatbuffers.Builder, data []byte, n, elemSize int) flatbuffers.UOffsetT {
	b.Prep(elemSize, n*elemSize)
	off := b.CreateByteVector(data)
	pos := len(b.Bytes) - int(off)
	binary.LittleEndian.PutUint32(b.Bytes[pos:], uint32(n))
	return off
}

// CreateFloat64Vector writes v as a [double] vector with one bulk copy.
func CreateFloat64Vector(b *flatbuffers.Builder, v []float64) flatbuffers.UOffsetT {
	return createScalarVector(b, float64Bytes(v), len(v), 8)
}

// CreateUint32Vector writes v as a [uint] vector with one bulk copy.
func CreateUint32Vector(b *flatbuffers.Builder, v []uint32) flatbuffers.UOffsetT {
	return createScalarVector(b, uint32Bytes(v), len(v), 4)
}

// StageCutsSize is an upper estimate of the encoded size of s.
func StageCutsSize(s *StageCuts) int {
	n := 64
	for i := range s.Cuts {
		c := &s.Cuts[i]
		// table + vtable + two vector prefixes + alignment + offset + index
		n += 96 + 8*(len(c.Coefficients)+len(c.StateAtGeneration))
	}
	return n
}

func validateStageCuts(s *StageCuts) error {
	dim := int(s.StateDimension)
	// What the reader refuses (limits.go), the encoder does not write.
	if len(s.Cuts) > MaxCutsPerStage {
		return fmt.Errorf("%w: stage %d has %d cuts, over policy.MaxCutsPerStage (%d)", ErrInvalid, s.StageID, len(s.Cuts), MaxCutsPerStage)
	}
	if s.Capacity > MaxCutsPerStage || s.WarmStartCount > MaxCutsPerStage {
		return fmt.Errorf("%w: stage %d: capacity %d / warm_start_count %d over policy.MaxCutsPerStage (%d)",
			ErrInvalid, s.StageID, s.Capacity, s.WarmStartCount, MaxCutsPerStage)
	}
	if s.StateDimension > MaxStateDimension {
		return fmt.Errorf("%w: stage %d: state_dimension %d over policy.MaxStateDimension (%d)",
			ErrInvalid, s.StageID, s.StateDimension, MaxStateDimension)
	}
	for i := range s.Cuts {
		c := &s.Cuts[i]
		if len(c.Coefficients) != dim {
			return fmt.Errorf("%w: stage %d cut %d (cut_id %d): %d coefficients, state_dimension %d",
				ErrInvalid, s.StageID, i, c.CutID, len(c.Coefficients), dim)
		}
		if len(c.StateAtGeneration) != 0 && len(c.StateAtGeneration) != dim {
			return fmt.Errorf("%w: stage %d cut %d (cut_id %d): state_at_generation length %d, state_dimension %d",
				ErrInvalid, s.StageID, i, c.CutID, len(c.StateAtGeneration), dim)
		}
		if i > 0 && c.SlotIndex <= s.Cuts[i-1].SlotIndex {
			return fmt.Errorf("%w: stage %d cuts not ordered by slot_index (cut %d slot %d after slot %d)",
				ErrInvalid, s.StageID, i, c.SlotIndex, s.Cuts[i-1].SlotIndex)
		}
	}
	if StageCutsSize(s) > maxBuffer {
		return fmt.Errorf("%w: stage %d needs %d bytes, over the 2 GiB FlatBuffers limit",
			ErrInvalid, s.StageID, StageCutsSize(s))
	}
	return nil
}

// EncodeStageCuts encodes s into b (reset and pre-sized first) and returns
// the finished buffer, which aliases b's memory.
func EncodeStageCuts(b *flatbuffers.Builder, s *StageCuts) ([]byte, error) {
	w := Writer{b: b}
	return w.EncodeStageCuts(s)
}

// EncodeStageCuts encodes s. Cuts are serialised last to first: the
// builder fills its buffer back to front, so cut 0 ends up at the lowest
// address and index-order reads walk memory forward.
func (w *Writer) EncodeStageCuts(s *StageCuts) ([]byte, error) {
	if err := validateStageCuts(s); err != nil {
		return nil, err
	}
	b := w.b
	presize(b, StageCutsSize(s))
	n := len(s.Cuts)
	if cap(w.offs) < n {
		w.offs = make([]flatbuffers.UOffsetT, n)
	}
	offs := w.offs[:n]
	w.idx = w.idx[:0]
	for i := range s.Cuts {
		if s.Cuts[i].IsActive {
			w.idx = append(w.idx, uint32(i))
		}
	}
	for i := n - 1; i >= 0; i-- {
		c := &s.Cuts[i]
		var state flatbuffers.UOffsetT
		if len(c.StateAtGeneration) > 0 {
			state = CreateFloat64Vector(b, c.StateAtGeneration)
		}
		coef := CreateFloat64Vector(b, c.Coefficients)
		fb.CutStart(b)
		fb.CutAddCutId(b, c.CutID)
		fb.CutAddIntercept(b, c.Intercept)
		fb.CutAddCoefficients(b, coef)
		if state != 0 {
			fb.CutAddStateAtGeneration(b, state)
		}
		fb.CutAddSlotIndex(b, c.SlotIndex)
		fb.CutAddIteration(b, c.Iteration)
		fb.CutAddForwardPassIndex(b, c.ForwardPassIndex)
		fb.CutAddIsActive(b, c.IsActive)
		offs[i] = fb.CutEnd(b)
	}
	active := CreateUint32Vector(b, w.idx)
	cuts := b.CreateVectorOfTables(offs)
	fb.StageCutsStart(b)
	fb.StageCutsAddCuts(b, cuts)
	fb.StageCutsAddActiveCutIndices(b, active)
	fb.StageCutsAddStageId(b, s.StageID)
	fb.StageCutsAddStateDimension(b, s.StateDimension)
	fb.StageCutsAddCapacity(b, s.Capacity)
	fb.StageCutsAddWarmStartCount(b, s.WarmStartCount)
	fb.StageCutsAddPopulatedCount(b, uint32(n))
	b.Finish(fb.StageCutsEnd(b))
	return b.FinishedBytes(), nil
}

// EncodeStageBasis encodes s.
func (w *Writer) EncodeStageBasis(s *StageBasis) ([]byte, error) {
	if int(s.NumCutRows) > len(s.RowStatus) {
		return nil, fmt.Errorf("%w: stage %d basis: num_cut_rows %d > %d rows",
			ErrInvalid, s.StageID, s.NumCutRows, len(s.RowStatus))
	}
	size := 128 + len(s.ColumnStatus) + len(s.RowStatus)
	if size > maxBuffer {
		return nil, fmt.Errorf("%w: stage %d basis too large", ErrInvalid, s.StageID)
	}
	b := w.b
	presize(b, size)
	rows := b.CreateByteVector(s.RowStatus)
	cols := b.CreateByteVector(s.ColumnStatus)
	fb.StageBasisStart(b)
	fb.StageBasisAddColumnStatus(b, cols)
	fb.StageBasisAddRowStatus(b, rows)
	fb.StageBasisAddStageId(b, s.StageID)
	fb.StageBasisAddIteration(b, s.Iteration)
	fb.StageBasisAddNumColumns(b, uint32(len(s.ColumnStatus)))
	fb.StageBasisAddNumRows(b, uint32(len(s.RowStatus)))
	fb.StageBasisAddNumCutRows(b, s.NumCutRows)
	b.Finish(fb.StageBasisEnd(b))
	return b.FinishedBytes(), nil
}

// EncodeStageStates encodes s.
func (w *Writer) EncodeStageStates(s *StageStates) ([]byte, error) {
	dim := int(s.StateDimension)
	if (dim == 0 && len(s.Data) != 0) || (dim != 0 && len(s.Data)%dim != 0) {
		return nil, fmt.Errorf("%w: stage %d states: %d values is not a multiple of state_dimension %d",
			ErrInvalid, s.StageID, len(s.Data), dim)
	}
	size := 128 + 8*len(s.Data)
	if size > maxBuffer {
		return nil, fmt.Errorf("%w: stage %d states too large", ErrInvalid, s.StageID)
	}
	count := 0
	if dim != 0 {
		count = len(s.Data) / dim
	}
	if dim > MaxStateDimension || count > MaxStatesPerStage {
		return nil, fmt.Errorf("%w: stage %d states: state_dimension %d / count %d over policy.MaxStateDimension (%d) / policy.MaxStatesPerStage (%d)",
			ErrInvalid, s.StageID, dim, count, MaxStateDimension, MaxStatesPerStage)
	}
	b := w.b
	presize(b, size)
	data := CreateFloat64Vector(b, s.Data)
	fb.StageStatesStart(b)
	fb.StageStatesAddData(b, data)
	fb.StageStatesAddStageId(b, s.StageID)
	fb.StageStatesAddStateDimension(b, s.StateDimension)
	fb.StageStatesAddCount(b, uint32(count))
	b.Finish(fb.StageStatesEnd(b))
	return b.FinishedBytes(), nil
}
