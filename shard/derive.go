package shard

import "fmt"

type deriveOp int

const (
	opSum    deriveOp = iota + 1 // a + b
	opDiff                       // a - b
	opEnergy                     // a x block hours (MW -> MWh)
	opVolume                     // a x block hours x 3600 / 1e6 (m3/s -> hm3)
	opLosses                     // loss fraction of the line x (a + b)
)

type derivation struct {
	op   deriveOp
	args []string
}

// Params supplies the case data that derived columns need. Stage-level rows
// (null block_id) count as one hour, as docs/tables.md specifies.
type Params interface {
	// BlockHours returns the duration of a block of a stage.
	BlockHours(stage, block int32) (float64, bool)
	// LineLossFraction returns the loss fraction of a transmission line.
	LineLossFraction(line int32) (float64, bool)
}

// BadRowError reports, while encoding, a row the case cannot derive
// columns for: a (stage, block) the case does not have, or a line without
// a loss fraction. It names the table, the row and what was expected.
// Entity ids, repeated keys, codes and NaN are checked before encoding, by
// CheckValues.
type BadRowError struct {
	Table string
	Row   int
	What  string
}

func (e *BadRowError) Error() string {
	return fmt.Sprintf("%s row %d: %s", e.Table, e.Row, e.What)
}

// hours fills dst with the block hours of every row, and so checks that
// every row's stage and block are in the case (a stage-level row's stage
// as that of its block 0: every case has one).
func hours(dst []float64, t *Table, stage []int32, block NullInt32, p Params) error {
	for i := range dst {
		if block.Values == nil || (block.Valid != nil && !block.Valid[i]) {
			if _, ok := p.BlockHours(stage[i], 0); !ok {
				return &BadRowError{Table: t.Name, Row: i, What: fmt.Sprintf("stage %d is not in the case", stage[i])}
			}
			dst[i] = 1
			continue
		}
		h, ok := p.BlockHours(stage[i], block.Values[i])
		if !ok {
			return &BadRowError{Table: t.Name, Row: i, What: fmt.Sprintf("stage %d block %d is not in the case", stage[i], block.Values[i])}
		}
		dst[i] = h
	}
	return nil
}

// derive computes column c into dst. get returns an already-available
// float64 column (supplied or derived earlier) by name; h holds block hours.
func (d derivation) compute(dst []float64, t *Table, get func(string) []float64, h []float64, lineIDs []int32, p Params) error {
	a := get(d.args[0])
	switch d.op {
	case opSum:
		b := get(d.args[1])
		for i := range dst {
			dst[i] = a[i] + b[i]
		}
	case opDiff:
		b := get(d.args[1])
		for i := range dst {
			dst[i] = a[i] - b[i]
		}
	case opEnergy:
		for i := range dst {
			dst[i] = a[i] * h[i]
		}
	case opVolume:
		for i := range dst {
			dst[i] = a[i] * h[i] * 3600 / 1e6
		}
	case opLosses:
		b := get(d.args[1])
		var last int32
		var frac float64
		for i := range dst {
			if i == 0 || lineIDs[i] != last {
				f, ok := p.LineLossFraction(lineIDs[i])
				if !ok {
					return &BadRowError{Table: t.Name, Row: i, What: fmt.Sprintf("line %d is not in the case", lineIDs[i])}
				}
				last, frac = lineIDs[i], f
			}
			dst[i] = frac * (a[i] + b[i])
		}
	default:
		return fmt.Errorf("shard: %s: unknown derivation %d", t.Name, d.op)
	}
	return nil
}
