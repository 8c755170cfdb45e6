package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/hydroshard/hydroshard/shard"
)

// hydroRow is one hydros row in parquet-go's idiomatic form (a struct per
// row for GenericWriter), columns in the writer's on-disk order. Nullable
// columns are pointers: parquet-go's "optional" on a plain field would
// turn every 0.0 into a null, which is not the same data. toHydroRows
// checks this type against the registry, so a schema change fails loudly
// instead of comparing different tables.
type hydroRow struct {
	StageID                        int32    `parquet:"stage_id"`
	BlockID                        *int32   `parquet:"block_id,optional"`
	HydroID                        int32    `parquet:"hydro_id"`
	TurbinedM3s                    float64  `parquet:"turbined_m3s"`
	SpillageM3s                    float64  `parquet:"spillage_m3s"`
	OutflowM3s                     float64  `parquet:"outflow_m3s"`
	EvaporationM3s                 *float64 `parquet:"evaporation_m3s,optional"`
	DivertedInflowM3s              *float64 `parquet:"diverted_inflow_m3s,optional"`
	DivertedOutflowM3s             *float64 `parquet:"diverted_outflow_m3s,optional"`
	IncrementalInflowM3s           float64  `parquet:"incremental_inflow_m3s"`
	InflowM3s                      float64  `parquet:"inflow_m3s"`
	StorageInitialHm3              float64  `parquet:"storage_initial_hm3"`
	StorageFinalHm3                float64  `parquet:"storage_final_hm3"`
	GenerationMW                   float64  `parquet:"generation_mw"`
	GenerationMWh                  float64  `parquet:"generation_mwh"`
	ProductivityMWPerM3s           *float64 `parquet:"productivity_mw_per_m3s,optional"`
	SpillageCost                   float64  `parquet:"spillage_cost"`
	WaterValuePerHm3               float64  `parquet:"water_value_per_hm3"`
	StorageBindingCode             int8     `parquet:"storage_binding_code"`
	OperativeStateCode             int8     `parquet:"operative_state_code"`
	TurbinedSlackM3s               float64  `parquet:"turbined_slack_m3s"`
	OutflowSlackBelowM3s           float64  `parquet:"outflow_slack_below_m3s"`
	OutflowSlackAboveM3s           float64  `parquet:"outflow_slack_above_m3s"`
	GenerationSlackMW              float64  `parquet:"generation_slack_mw"`
	StorageViolationBelowHm3       float64  `parquet:"storage_violation_below_hm3"`
	FillingTargetViolationHm3      float64  `parquet:"filling_target_violation_hm3"`
	EvaporationViolationPosM3s     float64  `parquet:"evaporation_violation_pos_m3s"`
	EvaporationViolationNegM3s     float64  `parquet:"evaporation_violation_neg_m3s"`
	InflowNonnegativitySlackM3s    float64  `parquet:"inflow_nonnegativity_slack_m3s"`
	WaterWithdrawalViolationPosM3s float64  `parquet:"water_withdrawal_violation_pos_m3s"`
	WaterWithdrawalViolationNegM3s float64  `parquet:"water_withdrawal_violation_neg_m3s"`
}

// toHydroRows converts a hydros record (derived columns included) into
// rows. It runs before any timing, so it favours checks over speed.
// Nullable values point into one backing array per column, so the heap
// holds a few large objects instead of one small object per value (which
// would slow every contestant's garbage collections alike).
func toHydroRows(rec arrow.RecordBatch) ([]hydroRow, error) {
	typ := reflect.TypeFor[hydroRow]()
	sch := rec.Schema()
	if typ.NumField() != sch.NumFields() {
		return nil, fmt.Errorf("hydroRow has %d fields, %s has %d columns", typ.NumField(), shard.Hydros.Name, sch.NumFields())
	}
	n := int(rec.NumRows())
	rows := make([]hydroRow, n)
	rv := reflect.ValueOf(rows)
	for f := range typ.NumField() {
		sf := typ.Field(f)
		name := strings.Split(sf.Tag.Get("parquet"), ",")[0]
		af := sch.Field(f)
		if af.Name != name {
			return nil, fmt.Errorf("column %d is %s, hydroRow field %s is %s", f, af.Name, sf.Name, name)
		}
		if ptr := sf.Type.Kind() == reflect.Pointer; ptr != af.Nullable {
			return nil, fmt.Errorf("column %s: nullable %v, hydroRow field %s is %s", name, af.Nullable, sf.Name, sf.Type)
		}
		col := rec.Column(f)
		set := func(i int, v reflect.Value) { rv.Index(i).Field(f).Set(v) }
		switch a := col.(type) {
		case *array.Float64:
			if af.Nullable {
				if sf.Type != reflect.TypeFor[*float64]() {
					return nil, fmt.Errorf("column %s: field %s is %s, want *float64", name, sf.Name, sf.Type)
				}
				vals := append([]float64(nil), a.Float64Values()...)
				for i := range n {
					if a.IsValid(i) {
						set(i, reflect.ValueOf(&vals[i]))
					}
				}
				continue
			}
			if sf.Type.Kind() != reflect.Float64 {
				return nil, fmt.Errorf("column %s: field %s is %s, want float64", name, sf.Name, sf.Type)
			}
			for i, v := range a.Float64Values() {
				rv.Index(i).Field(f).SetFloat(v)
			}
		case *array.Int32:
			if af.Nullable {
				if sf.Type != reflect.TypeFor[*int32]() {
					return nil, fmt.Errorf("column %s: field %s is %s, want *int32", name, sf.Name, sf.Type)
				}
				vals := append([]int32(nil), a.Int32Values()...)
				for i := range n {
					if a.IsValid(i) {
						set(i, reflect.ValueOf(&vals[i]))
					}
				}
				continue
			}
			if sf.Type.Kind() != reflect.Int32 {
				return nil, fmt.Errorf("column %s: field %s is %s, want int32", name, sf.Name, sf.Type)
			}
			for i, v := range a.Int32Values() {
				rv.Index(i).Field(f).SetInt(int64(v))
			}
		case *array.Int8:
			if af.Nullable || sf.Type.Kind() != reflect.Int8 {
				return nil, fmt.Errorf("column %s: field %s is %s, want int8", name, sf.Name, sf.Type)
			}
			for i, v := range a.Int8Values() {
				rv.Index(i).Field(f).SetInt(int64(v))
			}
		default:
			return nil, fmt.Errorf("column %s: Arrow type %s has no conversion", name, col.DataType())
		}
	}
	return rows, nil
}

// parquetGoCodec is parquet-go's own zstd codec at SpeedDefault, which is
// what klauspost maps zstd level 3 to (the level the writer uses), so both
// compress with the same klauspost encoder settings.
func parquetGoCodec() *pqzstd.Codec {
	return &pqzstd.Codec{Level: zstd.EncoderLevelFromZstd(shard.ZstdLevel)}
}

// parquetGoContestant writes each scenario's hydros rows with one
// long-lived GenericWriter (Reset per file: parquet-go's cheapest way to
// write many files), zstd level 3, no dictionary (parquet-go only builds
// dictionaries for fields tagged "dict"), at most 100k rows per row group,
// then fsyncs, as the writer does.
func parquetGoContestant(d *dataset, dir string) func(context.Context, int) (sample, error) {
	w := parquet.NewGenericWriter[hydroRow](io.Discard,
		parquet.Compression(parquetGoCodec()),
		parquet.MaxRowsPerRowGroup(shard.MaxRowGroupRows),
		parquet.CreatedBy("shardbench", "", ""),
	)
	return func(ctx context.Context, round int) (sample, error) {
		sub, err := roundDir(dir, "parquet-go", round)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(sub)
		var out int64
		t0 := time.Now()
		for i, rows := range d.pgRows {
			if err := ctx.Err(); err != nil {
				return sample{}, err
			}
			n, err := writeParquetGo(w, filepath.Join(sub, fmt.Sprintf("s%d.parquet", i)), rows)
			if err != nil {
				return sample{}, err
			}
			out += n
		}
		return sample{sec: time.Since(t0).Seconds(), in: sum(d.hydrosIn), out: out, scen: len(d.pgRows)}, nil
	}
}

func writeParquetGo(w *parquet.GenericWriter[hydroRow], path string, rows []hydroRow) (n int64, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("parquet-go: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("parquet-go: closing %s: %w", path, cerr)
		}
	}()
	w.Reset(f)
	if _, err := w.Write(rows); err != nil {
		return 0, fmt.Errorf("parquet-go: writing %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("parquet-go: closing writer of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("parquet-go: fsync %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("parquet-go: %w", err)
	}
	return st.Size(), nil
}
