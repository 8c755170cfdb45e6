// Package cstudy builds, with the Go API's types, the study the C and
// Fortran examples write (examples/c/simulate.c, examples/fortran/
// simulate.f90): every value a fixed function of (scenario, row, column),
// computed the same way in all three languages, so that a study written
// through the C API can be compared byte for byte with the same study
// written through package rank, and timed against it.
//
// The rows of a table: costs one per stage (block_id left out: null);
// inflow_lags one per (stage, hydro, lag 1..order); the others one per
// (stage, block, entity), entities in case order, fastest. Columns are the
// table's input columns in registry order (derived ones left out), j their
// index in that list:
//
//	stage_id, block_id, lag_index, the entity id   what the row is
//	int8 (codes)                                   0
//	bool                                           (row + scenario) % 2
//	double j                                       ((scenario*7919 + row*131 + j*17) % 100003) / 8
//	                                               null when nullable and (row + j) % 5 == 0
package cstudy

import (
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// Value is double column j of row r in scenario s.
func Value(s, r, j int) float64 {
	return float64((int64(s)*7919+int64(r)*131+int64(j)*17)%100003) / 8.0
}

// Scenario builds scenario s of case c.
func Scenario(c *manifest.Case, s int) (*shard.Scenario, error) {
	sc := &shard.Scenario{ID: s}
	sv := reflect.ValueOf(sc).Elem()
	// Fill every table field with an empty rows struct, then keep those
	// whose entity the case has: Tables pairs each with its registry table.
	for i := 0; i < sv.NumField(); i++ {
		if f := sv.Field(i); f.Kind() == reflect.Pointer {
			f.Set(reflect.New(f.Type().Elem()))
		}
	}
	has := map[string]bool{}
	for _, e := range c.Entities() {
		has[e] = true
	}
	for _, tr := range sc.Tables() {
		field := fieldOf(sv, tr.Rows)
		if !has[tr.Table.Entity] {
			sv.Field(field).Set(reflect.Zero(sv.Field(field).Type()))
			continue
		}
		if err := fill(c, s, tr.Table, reflect.ValueOf(tr.Rows).Elem()); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// fieldOf finds the Scenario field holding rows.
func fieldOf(sv reflect.Value, rows any) int {
	for i := 0; i < sv.NumField(); i++ {
		if f := sv.Field(i); f.Kind() == reflect.Pointer && f.Interface() == rows {
			return i
		}
	}
	panic("cstudy: rows not in the scenario")
}

func fill(c *manifest.Case, s int, t *shard.Table, rows reflect.Value) error {
	ids, ok := c.IDs(t.Entity)
	if !ok {
		return fmt.Errorf("cstudy: %s: not a simulation table", t.Name)
	}
	stages, blocks, lags := c.Stages, len(c.Hours), c.InflowLagOrder
	costs, lagt := t.Entity == "costs", t.Entity == "inflow_lags"
	n := stages * blocks * len(ids)
	switch {
	case costs:
		n = stages
	case lagt:
		n = stages * len(ids) * lags
	}
	fields := map[string]int{}
	for f := 0; f < rows.NumField(); f++ {
		fields[rows.Type().Field(f).Tag.Get("col")] = f
	}
	j := 0
	for _, col := range t.Columns {
		if col.Derived || (costs && col.Name == "block_id") {
			continue
		}
		var v any
		switch col.Type.ID() {
		case arrow.FLOAT64:
			vals := make([]float64, n)
			valid := make([]bool, n)
			for r := range vals {
				vals[r] = Value(s, r, j)
				valid[r] = (r+j)%5 != 0
			}
			if col.Nullable {
				v = shard.NullFloat64{Values: vals, Valid: valid}
			} else {
				v = vals
			}
		case arrow.INT32:
			vals := make([]int32, n)
			for r := range vals {
				var stage, block, entity, lag int
				switch {
				case costs:
					stage = r
				case lagt:
					stage, entity, lag = r/(len(ids)*lags), (r/lags)%len(ids), r%lags+1
				default:
					stage, block, entity = r/(blocks*len(ids)), (r/len(ids))%blocks, r%len(ids)
				}
				switch col.Name {
				case "stage_id":
					vals[r] = int32(stage)
				case "block_id":
					vals[r] = int32(block)
				case "lag_index":
					vals[r] = int32(lag)
				default:
					vals[r] = ids[entity]
				}
			}
			if col.Nullable {
				v = shard.NullInt32{Values: vals} // every value valid
			} else {
				v = vals
			}
		case arrow.INT8:
			v = make([]int8, n)
		case arrow.BOOL:
			b := make([]bool, n)
			for r := range b {
				b[r] = (r+s)%2 == 1
			}
			v = b
		default:
			return fmt.Errorf("cstudy: %s.%s: type %s", t.Name, col.Name, col.Type)
		}
		rows.Field(fields[col.Name]).Set(reflect.ValueOf(v))
		j++
	}
	return nil
}
