package shard

import (
	"bytes"
	"context"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

type testParams struct{}

func (testParams) BlockHours(stage, block int32) (float64, bool) {
	if stage < 0 || stage > 99 || block < 0 || block > 2 {
		return 0, false
	}
	return []float64{100, 200, 300}[block], true
}

func (testParams) LineLossFraction(line int32) (float64, bool) {
	if line == 7 {
		return 0.05, true
	}
	return 0, false
}

// readBack decodes a Parquet file with arrow-go's reader.
func readBack(t *testing.T, b []byte) arrow.Table {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release)
	return tbl
}

func column(t *testing.T, tbl arrow.Table, name string) arrow.Array {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %s", name)
	}
	ch := tbl.Column(idx[0]).Data()
	if len(ch.Chunks()) != 1 {
		t.Fatalf("%s: %d chunks", name, len(ch.Chunks()))
	}
	return ch.Chunk(0)
}

func floats(t *testing.T, tbl arrow.Table, name string) []float64 {
	return column(t, tbl, name).(*array.Float64).Float64Values()
}

func TestDerivedColumns(t *testing.T) {
	ex := &ExchangesRows{
		StageID:            []int32{0, 0, 1},
		BlockID:            NullInt32{Values: []int32{0, 2, 1}},
		LineID:             []int32{7, 7, 7},
		DirectFlowMW:       []float64{100, 0, 50},
		ReverseFlowMW:      []float64{0, 40, 10},
		ExchangeCost:       []float64{1, 2, 3},
		OperativeStateCode: []int8{0, 0, 0},
	}
	var buf bytes.Buffer
	if _, err := NewEncoder().Encode(&buf, TableRows{Exchanges, ex}, testParams{}); err != nil {
		t.Fatal(err)
	}
	tbl := readBack(t, buf.Bytes())
	hours := []float64{100, 300, 200}
	net, netMWh := floats(t, tbl, "net_flow_mw"), floats(t, tbl, "net_flow_mwh")
	loss, lossMWh := floats(t, tbl, "losses_mw"), floats(t, tbl, "losses_mwh")
	for i := range 3 {
		wantNet := ex.DirectFlowMW[i] - ex.ReverseFlowMW[i]
		wantLoss := 0.05 * (ex.DirectFlowMW[i] + ex.ReverseFlowMW[i])
		if net[i] != wantNet || netMWh[i] != wantNet*hours[i] || loss[i] != wantLoss || lossMWh[i] != wantLoss*hours[i] {
			t.Errorf("row %d: net %v/%v losses %v/%v, want %v/%v %v/%v", i, net[i], netMWh[i], loss[i], lossMWh[i], wantNet, wantNet*hours[i], wantLoss, wantLoss*hours[i])
		}
	}

	ps := &PumpingStationsRows{
		StageID: []int32{3, 3}, BlockID: NullInt32{Values: []int32{0, 1}, Valid: []bool{true, false}},
		PumpingStationID: []int32{1, 1}, PumpedFlowM3s: []float64{10, 20}, PowerConsumptionMW: []float64{5, 8},
		PumpingCost: []float64{0, 0}, OperativeStateCode: []int8{0, 0},
	}
	buf.Reset()
	if _, err := NewEncoder().Encode(&buf, TableRows{PumpingStations, ps}, testParams{}); err != nil {
		t.Fatal(err)
	}
	tbl = readBack(t, buf.Bytes())
	vol, mwh := floats(t, tbl, "pumped_volume_hm3"), floats(t, tbl, "energy_consumption_mwh")
	// Row 1 has a null block: stage-level rows count one hour.
	if vol[0] != 10*100*3600/1e6 || vol[1] != 20*1*3600/1e6 || mwh[0] != 500 || mwh[1] != 8 {
		t.Errorf("pumping derived: volume %v energy %v", vol, mwh)
	}
	if blk := column(t, tbl, "block_id"); blk.NullN() != 1 || !blk.IsNull(1) {
		t.Errorf("block_id nulls: %d", blk.NullN())
	}

	h := &HydrosRows{}
	fillHydros(h, 4)
	buf.Reset()
	if _, err := NewEncoder().Encode(&buf, TableRows{Hydros, h}, testParams{}); err != nil {
		t.Fatal(err)
	}
	tbl = readBack(t, buf.Bytes())
	out, gen := floats(t, tbl, "outflow_m3s"), floats(t, tbl, "generation_mwh")
	for i := range 4 {
		if out[i] != h.TurbinedM3s[i]+h.SpillageM3s[i] {
			t.Errorf("outflow[%d] = %v", i, out[i])
		}
		hr, _ := testParams{}.BlockHours(h.StageID[i], h.BlockID.Values[i])
		if gen[i] != h.GenerationMW[i]*hr {
			t.Errorf("generation_mwh[%d] = %v", i, gen[i])
		}
	}
	if ev := column(t, tbl, "evaporation_m3s"); ev.NullN() != 4 {
		t.Errorf("evaporation_m3s: %d nulls, want all 4 (Values nil)", ev.NullN())
	}
	if sb := column(t, tbl, "storage_binding_code").(*array.Int8); sb.Value(2) != 2 {
		t.Errorf("storage_binding_code[2] = %d", sb.Value(2))
	}
}

func fillHydros(h *HydrosRows, n int) {
	f := func(k float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = k*float64(i) + 0.25
		}
		return s
	}
	h.StageID = make([]int32, n)
	h.BlockID = NullInt32{Values: make([]int32, n)}
	h.HydroID = make([]int32, n)
	h.StorageBindingCode = make([]int8, n)
	h.OperativeStateCode = make([]int8, n)
	for i := range n {
		h.StageID[i] = int32(i / 30)
		h.BlockID.Values[i] = int32(i % 3)
		h.HydroID[i] = int32(i % 10)
		h.StorageBindingCode[i] = int8(i % 3)
	}
	h.TurbinedM3s, h.SpillageM3s, h.IncrementalInflowM3s, h.InflowM3s = f(1.5), f(0.5), f(2), f(3)
	h.StorageInitialHm3, h.StorageFinalHm3, h.GenerationMW = f(10), f(10.5), f(0.9)
	h.ProductivityMWPerM3s = NullFloat64{Values: f(0.001)}
	h.SpillageCost, h.WaterValuePerHm3 = f(0), f(4)
	h.TurbinedSlackM3s, h.OutflowSlackBelowM3s, h.OutflowSlackAboveM3s, h.GenerationSlackMW = f(0), f(0), f(0), f(0)
	h.StorageViolationBelowHm3, h.FillingTargetViolationHm3 = f(0), f(0)
	h.EvaporationViolationPosM3s, h.EvaporationViolationNegM3s, h.InflowNonnegativitySlackM3s = f(0), f(0), f(0)
	h.WaterWithdrawalViolationPosM3s, h.WaterWithdrawalViolationNegM3s = f(0), f(0)
}

func TestEncodeErrors(t *testing.T) {
	short := &HydrosRows{}
	fillHydros(short, 6)
	short.SpillageM3s = short.SpillageM3s[:5]
	badBlock := &HydrosRows{}
	fillHydros(badBlock, 6)
	badBlock.BlockID.Values[4] = 9
	nullInNonNull := &CostsRows{StageID: []int32{0}}
	badLine := &ExchangesRows{StageID: []int32{0}, BlockID: NullInt32{Values: []int32{0}}, LineID: []int32{3},
		DirectFlowMW: []float64{1}, ReverseFlowMW: []float64{0}, ExchangeCost: []float64{0}, OperativeStateCode: []int8{0}}
	cases := []struct {
		name string
		tr   TableRows
		want string
	}{
		{"short column", TableRows{Hydros, short}, "simulation/hydros.spillage_m3s: column has 5 rows, want 6 (the length of stage_id)"},
		{"block not in case", TableRows{Hydros, badBlock}, "simulation/hydros row 4: stage 0 block 9 is not in the case"},
		{"missing columns", TableRows{Costs, nullInNonNull}, "simulation/costs.total_cost: column is missing (its field is empty), want 1 rows"},
		{"unknown line", TableRows{Exchanges, badLine}, "simulation/exchanges row 0: line 3 is not in the case"},
		{"wrong rows type", TableRows{Hydros, &CostsRows{}}, "simulation/hydros has no column \"total_cost\""},
		{"nil rows", TableRows{Hydros, (*HydrosRows)(nil)}, "non-nil pointer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := NewEncoder().Encode(&buf, tc.tr, testParams{})
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestEncodeDeterministic: the same rows give the same bytes, through fresh
// and reused encoders alike (scratch reuse must not leak between calls).
func TestEncodeDeterministic(t *testing.T) {
	h := &HydrosRows{}
	fillHydros(h, 3000)
	enc := NewEncoder()
	var a, b, c bytes.Buffer
	if _, err := enc.Encode(&a, TableRows{Hydros, h}, testParams{}); err != nil {
		t.Fatal(err)
	}
	other := &HydrosRows{}
	fillHydros(other, 500)
	other.TurbinedM3s[0] = math.Pi
	if _, err := enc.Encode(&b, TableRows{Hydros, other}, testParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Encode(&c, TableRows{Hydros, h}, testParams{}); err != nil {
		t.Fatal(err)
	}
	var d bytes.Buffer
	if _, err := NewEncoder().Encode(&d, TableRows{Hydros, h}, testParams{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), c.Bytes()) || !bytes.Equal(a.Bytes(), d.Bytes()) {
		t.Fatal("same rows encoded to different bytes")
	}
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("different rows encoded to the same bytes")
	}
}

// TestParquetSettings reads the footer: zstd, statistics, created_by,
// no dictionary encoding, row groups capped.
func TestParquetSettings(t *testing.T) {
	n := MaxRowGroupRows + 1234
	h := &HydrosRows{}
	fillHydros(h, n)
	for i := range h.StageID {
		h.StageID[i] = int32(i % 10)
	}
	var buf bytes.Buffer
	if _, err := NewEncoder().Encode(&buf, TableRows{Hydros, h}, testParams{}); err != nil {
		t.Fatal(err)
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	md := rdr.MetaData()
	if md.GetCreatedBy() != CreatedBy {
		t.Errorf("created_by %q", md.GetCreatedBy())
	}
	if md.NumRowGroups() != 2 || md.RowGroup(0).NumRows() != MaxRowGroupRows {
		t.Errorf("row groups: %d, first %d rows", md.NumRowGroups(), md.RowGroup(0).NumRows())
	}
	rg := md.RowGroup(0)
	for i, c := range Hydros.Columns {
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Compression().String() != "ZSTD" {
			t.Errorf("%s: compression %s", c.Name, cc.Compression())
		}
		if ok, _ := cc.StatsSet(); !ok {
			t.Errorf("%s: no statistics", c.Name)
		}
		if cc.HasDictionaryPage() {
			t.Errorf("%s: has a dictionary page; the writer uses no dictionary encoding", c.Name)
		}
	}
}
