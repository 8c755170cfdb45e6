package policy

import (
	"errors"
	"fmt"
)

// Limits of what a policy file may claim. A stage file comes from disk and
// is untrusted: every count the reader would size something from is
// checked against these constants, and against the bytes the buffer
// actually holds, before anything is allocated for it. Real studies stay
// far below them (production: 38,400 cuts per stage, state dimension 480);
// the encoder refuses to write past them (ErrInvalid), so everything
// hydroshard writes, it reads back. docs/policy-wire.md lists them.
const (
	// MaxCutsPerStage bounds StageCuts.populated_count (the number of
	// cuts), StageCuts.capacity and StageCuts.warm_start_count.
	MaxCutsPerStage = 1 << 24
	// MaxStateDimension bounds StageCuts.state_dimension and
	// StageStates.state_dimension (and metadata.json's state_dimension).
	MaxStateDimension = 1 << 20
	// MaxStatesPerStage bounds StageStates.count.
	MaxStatesPerStage = 1 << 24
)

// minCutBytes is the least a cut of state dimension dim takes in a
// buffer: its uoffset in StageCuts.cuts, its table's soffset to the
// vtable, and its dim coefficients (8 bytes each). Every writer gives each
// cut its own table and its own coefficients vector, so populated_count x
// minCutBytes(dim) never exceeds an honest buffer's size; a claim that does
// is refused before the cut views are allocated.
func minCutBytes(dim uint32) int64 { return 8 + 8*int64(dim) }

// ErrLimit is wrapped by every error about a count beyond one of the
// documented limits (MaxCutsPerStage, MaxStateDimension, MaxStatesPerStage).
var ErrLimit = errors.New("policy: limit exceeded")

// LimitError is a count read from a stage file (or metadata.json) that
// exceeds a documented limit. It wraps ErrLimit and ErrCorrupt.
type LimitError struct {
	Stage uint32 // the stage_id the buffer claims
	Field string // "StageCuts.populated_count"
	Value uint64
	Limit uint64
	Const string // the limit's name: "policy.MaxCutsPerStage"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: stage %d: %s %d exceeds the limit of %d (%s)",
		ErrCorrupt, e.Stage, e.Field, e.Value, e.Limit, e.Const)
}

func (e *LimitError) Unwrap() []error { return []error{ErrLimit, ErrCorrupt} }

// checkLimit returns a *LimitError when v > limit.
func checkLimit(stage uint32, field string, v uint32, limit uint64, name string) error {
	if uint64(v) > limit {
		return &LimitError{Stage: stage, Field: field, Value: uint64(v), Limit: limit, Const: name}
	}
	return nil
}
