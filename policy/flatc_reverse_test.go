package policy

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"unsafe"
)

// flatcEncode writes js to DIR/name.json, has flatc encode it with the
// given root type and returns the binary.
func flatcEncode(t *testing.T, flatc, root, name, js string) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, name+".json")
	if err := os.WriteFile(src, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(flatc, "-b", "--root-type", "Cobre.IO.Policy."+root, "-o", dir, "policy.fbs", src).CombinedOutput()
	if err != nil {
		t.Fatalf("flatc -b: %v\n%s", err, out)
	}
	buf, err := os.ReadFile(filepath.Join(dir, name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// layouts returns buf at an 8-aligned address and at an odd one, so both
// the zero-copy and the copy path of the reader are exercised whatever
// alignment flatc chose for its vectors.
func layouts(buf []byte) map[string][]byte {
	aligned := make([]float64, (len(buf)+7)/8)
	a := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(aligned))), len(aligned)*8)[:len(buf)]
	copy(a, buf)
	odd := make([]byte, len(buf)+1)[1:]
	copy(odd, buf)
	return map[string][]byte{"aligned": a, "misaligned": odd}
}

// TestFlatcReverseStageCuts: a StageCuts written by hand in JSON and
// encoded by flatc reads back with exactly the values written.
func TestFlatcReverseStageCuts(t *testing.T) {
	flatc := requireFlatc(t)
	const js = `{
  "stage_id": 7,
  "state_dimension": 3,
  "capacity": 10,
  "warm_start_count": 1,
  "cuts": [
    {"cut_id": 9007199254740993, "slot_index": 0, "iteration": 2, "forward_pass_index": 5,
     "intercept": -1234.5, "coefficients": [0.1, -2.5e-300, 1.7976931348623157e308],
     "state_at_generation": [1.0, 2.0, 3.0], "is_active": true},
    {"cut_id": 18446744073709551615, "slot_index": 4, "iteration": 3, "forward_pass_index": 0,
     "intercept": 3.141592653589793, "coefficients": [5e-324, 0.0, -0.0], "is_active": false}
  ],
  "active_cut_indices": [0],
  "populated_count": 2
}`
	for name, buf := range layouts(flatcEncode(t, flatc, "StageCuts", "cuts", js)) {
		s, err := ReadStageCuts(buf)
		if err != nil {
			t.Fatalf("%s: ReadStageCuts of flatc's binary: %v", name, err)
		}
		if s.StageID != 7 || s.StateDimension != 3 || s.Capacity != 10 || s.WarmStartCount != 1 || s.PopulatedCount != 2 {
			t.Fatalf("%s: header %+v", name, s)
		}
		if !reflect.DeepEqual(s.ActiveCutIndices, []uint32{0}) || len(s.Cuts) != 2 {
			t.Fatalf("%s: active %v, %d cuts", name, s.ActiveCutIndices, len(s.Cuts))
		}
		c0, c1 := s.Cuts[0], s.Cuts[1]
		if c0.CutID != 9007199254740993 || c0.SlotIndex != 0 || c0.Iteration != 2 || c0.ForwardPassIndex != 5 ||
			c0.Intercept != -1234.5 || !c0.IsActive {
			t.Fatalf("%s: cut 0 %+v", name, c0)
		}
		if !reflect.DeepEqual(c0.Coefficients(), []float64{0.1, -2.5e-300, 1.7976931348623157e308}) ||
			!reflect.DeepEqual(c0.StateAtGeneration(), []float64{1, 2, 3}) {
			t.Fatalf("%s: cut 0 vectors %v %v", name, c0.Coefficients(), c0.StateAtGeneration())
		}
		if c1.CutID != 18446744073709551615 || c1.SlotIndex != 4 || c1.Iteration != 3 || c1.ForwardPassIndex != 0 ||
			c1.Intercept != 3.141592653589793 || c1.IsActive {
			t.Fatalf("%s: cut 1 %+v", name, c1)
		}
		co := c1.Coefficients()
		if len(co) != 3 || co[0] != 5e-324 || co[1] != 0 || co[2] != 0 || len(c1.StateAtGeneration()) != 0 {
			t.Fatalf("%s: cut 1 vectors %v %v", name, co, c1.StateAtGeneration())
		}
		if name == "misaligned" && s.ZeroCopy {
			t.Fatalf("misaligned buffer reported zero-copy")
		}
	}
}

// TestFlatcReverseStageBasis: the same for StageBasis.
func TestFlatcReverseStageBasis(t *testing.T) {
	flatc := requireFlatc(t)
	const js = `{"stage_id": 3, "iteration": 11, "num_columns": 4, "num_rows": 2,
  "column_status": [0, 1, 2, 255], "row_status": [3, 0], "num_cut_rows": 1}`
	for name, buf := range layouts(flatcEncode(t, flatc, "StageBasis", "basis", js)) {
		b, err := ReadStageBasis(buf)
		if err != nil {
			t.Fatalf("%s: ReadStageBasis of flatc's binary: %v", name, err)
		}
		want := StageBasisView{StageID: 3, Iteration: 11, NumColumns: 4, NumRows: 2,
			ColumnStatus: []byte{0, 1, 2, 255}, RowStatus: []byte{3, 0}, NumCutRows: 1}
		if !reflect.DeepEqual(*b, want) {
			t.Fatalf("%s: got %+v, want %+v", name, *b, want)
		}
	}
}
