package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/hydroshard/hydroshard/policy/internal/fb"
)

// requireFlatc returns flatc's path; without it the test skips loudly, or
// fails when CI=true.
func requireFlatc(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("flatc")
	if err != nil {
		msg := "flatc not found: install it with scripts/install-test-tools.sh (apt flatbuffers-compiler); SKIPPING flatc interop"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("WARNING: " + msg)
	}
	return p
}

func genStage(r *rand.Rand, stage uint32, nCuts, dim int, withState bool) *StageCuts {
	s := &StageCuts{StageID: stage, StateDimension: uint32(dim), Capacity: uint32(nCuts + 7), WarmStartCount: 3}
	for i := 0; i < nCuts; i++ {
		c := Cut{
			CutID:            uint64(i)*1_000_003 + 1<<40,
			SlotIndex:        uint32(2*i + 1),
			Iteration:        uint32(i / 3),
			ForwardPassIndex: uint32(i % 3),
			Intercept:        r.NormFloat64() * 1e6,
			Coefficients:     make([]float64, dim),
			IsActive:         i%4 != 1,
		}
		if i == 0 {
			c.CutID, c.SlotIndex, c.Intercept = 0, 0, 0 // defaults: fields omitted on the wire
		}
		for j := range c.Coefficients {
			c.Coefficients[j] = r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10))
		}
		if withState && i%2 == 0 {
			c.StateAtGeneration = make([]float64, dim)
			for j := range c.StateAtGeneration {
				c.StateAtGeneration[j] = r.Float64() * 1000
			}
		}
		s.Cuts = append(s.Cuts, c)
	}
	return s
}

func activeOf(s *StageCuts) []uint32 {
	out := []uint32{}
	for i, c := range s.Cuts {
		if c.IsActive {
			out = append(out, uint32(i))
		}
	}
	return out
}

func eqF(a, b []float64) bool {
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

// checkGenerated compares buf against s through the flatc-generated
// accessors.
func checkGenerated(t *testing.T, buf []byte, s *StageCuts) {
	t.Helper()
	root := fb.GetRootAsStageCuts(buf, 0)
	if root.StageId() != s.StageID || root.StateDimension() != s.StateDimension || root.Capacity() != s.Capacity ||
		root.WarmStartCount() != s.WarmStartCount || root.PopulatedCount() != uint32(len(s.Cuts)) {
		t.Fatalf("header mismatch via generated accessors")
	}
	act := activeOf(s)
	if root.ActiveCutIndicesLength() != len(act) {
		t.Fatalf("active length %d want %d", root.ActiveCutIndicesLength(), len(act))
	}
	for k, a := range act {
		if root.ActiveCutIndices(k) != a {
			t.Fatalf("active[%d]", k)
		}
	}
	if root.CutsLength() != len(s.Cuts) {
		t.Fatalf("cuts length %d", root.CutsLength())
	}
	var c fb.Cut
	for i, w := range s.Cuts {
		if !root.Cuts(&c, i) {
			t.Fatal("Cuts accessor")
		}
		if c.CutId() != w.CutID || c.SlotIndex() != w.SlotIndex || c.Iteration() != w.Iteration ||
			c.ForwardPassIndex() != w.ForwardPassIndex || math.Float64bits(c.Intercept()) != math.Float64bits(w.Intercept) ||
			c.IsActive() != w.IsActive {
			t.Fatalf("cut %d scalars mismatch", i)
		}
		if c.CoefficientsLength() != len(w.Coefficients) || c.StateAtGenerationLength() != len(w.StateAtGeneration) {
			t.Fatalf("cut %d vector lengths", i)
		}
		for j, x := range w.Coefficients {
			if math.Float64bits(c.Coefficients(j)) != math.Float64bits(x) {
				t.Fatalf("cut %d coef %d", i, j)
			}
		}
		for j, x := range w.StateAtGeneration {
			if math.Float64bits(c.StateAtGeneration(j)) != math.Float64bits(x) {
				t.Fatalf("cut %d state %d", i, j)
			}
		}
	}
}

func checkView(t *testing.T, v *StageCutsView, s *StageCuts) {
	t.Helper()
	if v.StageID != s.StageID || v.StateDimension != s.StateDimension || v.Capacity != s.Capacity ||
		v.WarmStartCount != s.WarmStartCount || v.PopulatedCount != uint32(len(s.Cuts)) || len(v.Cuts) != len(s.Cuts) {
		t.Fatalf("view header mismatch: %+v", v)
	}
	act := activeOf(s)
	if fmt.Sprint(v.ActiveCutIndices) != fmt.Sprint(act) {
		t.Fatalf("active %v want %v", v.ActiveCutIndices, act)
	}
	for i, w := range s.Cuts {
		c := &v.Cuts[i]
		if c.CutID != w.CutID || c.SlotIndex != w.SlotIndex || c.Iteration != w.Iteration ||
			c.ForwardPassIndex != w.ForwardPassIndex || math.Float64bits(c.Intercept) != math.Float64bits(w.Intercept) ||
			c.IsActive != w.IsActive || !eqF(c.Coefficients(), w.Coefficients) || !eqF(c.StateAtGeneration(), w.StateAtGeneration) {
			t.Fatalf("cut %d mismatch", i)
		}
	}
}

func TestStageCutsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w := NewWriter(16)
	for _, tc := range []struct {
		cuts, dim int
		state     bool
	}{{0, 5, false}, {1, 1, false}, {7, 3, true}, {50, 17, true}, {200, 64, false}} {
		s := genStage(r, 4, tc.cuts, tc.dim, tc.state)
		buf, err := w.EncodeStageCuts(s)
		if err != nil {
			t.Fatal(err)
		}
		checkGenerated(t, buf, s)
		v, err := ReadStageCuts(buf)
		if err != nil {
			t.Fatal(err)
		}
		checkView(t, v, s)
		if !v.ZeroCopy {
			t.Errorf("%d cuts: expected zero-copy views over the builder's buffer", tc.cuts)
		}
		// Reverse serialisation: index order walks memory forward.
		for i := 1; i < len(v.Cuts); i++ {
			a := uintptr(unsafe.Pointer(&v.Cuts[i-1].Coefficients()[0]))
			b := uintptr(unsafe.Pointer(&v.Cuts[i].Coefficients()[0]))
			if b <= a {
				t.Fatalf("cut %d coefficients at %#x not after cut %d's at %#x", i, b, i-1, a)
			}
		}
		// Same buffer at an odd address: still correct, copied.
		odd := make([]byte, len(buf)+1)
		copy(odd[1:], buf)
		v2, err := ReadStageCuts(odd[1:])
		if err != nil {
			t.Fatal(err)
		}
		checkView(t, v2, s)
		if v2.ZeroCopy && tc.cuts > 0 {
			t.Error("misaligned buffer reported zero-copy")
		}
	}
	// The free function with a caller's builder gives the same bytes.
	s := genStage(r, 9, 10, 4, true)
	a, _ := NewWriter(0).EncodeStageCuts(s)
	b, err := EncodeStageCuts(flatbuffers.NewBuilder(0), s)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("EncodeStageCuts differs from Writer: %v", err)
	}
}

func TestEncodeRejectsInconsistentInput(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	w := NewWriter(0)
	s := genStage(r, 1, 3, 4, false)
	s.Cuts[1].Coefficients = s.Cuts[1].Coefficients[:3]
	if _, err := w.EncodeStageCuts(s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "coefficients") {
		t.Errorf("short coefficients: %v", err)
	}
	s = genStage(r, 1, 3, 4, false)
	s.Cuts[1].StateAtGeneration = []float64{1}
	if _, err := w.EncodeStageCuts(s); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad state_at_generation: %v", err)
	}
	s = genStage(r, 1, 3, 4, false)
	s.Cuts[2].SlotIndex = s.Cuts[1].SlotIndex
	if _, err := w.EncodeStageCuts(s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "slot_index") {
		t.Errorf("unordered slots: %v", err)
	}
	if _, err := w.EncodeStageStates(&StageStates{StateDimension: 3, Data: make([]float64, 4)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ragged states: %v", err)
	}
	if _, err := w.EncodeStageBasis(&StageBasis{RowStatus: []byte{1}, NumCutRows: 2}); !errors.Is(err, ErrInvalid) {
		t.Errorf("num_cut_rows: %v", err)
	}
}

func TestStageBasisRoundTrip(t *testing.T) {
	w := NewWriter(0)
	for _, s := range []*StageBasis{
		{StageID: 3, Iteration: 41, ColumnStatus: []byte{0, 1, 2, 3, 1}, RowStatus: []byte{1, 1, 0, 2, 3, 0, 1}, NumCutRows: 3},
		{StageID: 0},
	} {
		buf, err := w.EncodeStageBasis(s)
		if err != nil {
			t.Fatal(err)
		}
		g := fb.GetRootAsStageBasis(buf, 0)
		if g.StageId() != s.StageID || g.Iteration() != s.Iteration || g.NumColumns() != uint32(len(s.ColumnStatus)) ||
			g.NumRows() != uint32(len(s.RowStatus)) || g.NumCutRows() != s.NumCutRows ||
			!bytes.Equal(g.ColumnStatusBytes(), s.ColumnStatus) || !bytes.Equal(g.RowStatusBytes(), s.RowStatus) {
			t.Fatalf("generated accessors disagree for %+v", s)
		}
		v, err := ReadStageBasis(buf)
		if err != nil {
			t.Fatal(err)
		}
		if v.StageID != s.StageID || v.Iteration != s.Iteration || v.NumCutRows != s.NumCutRows ||
			!bytes.Equal(v.ColumnStatus, s.ColumnStatus) || !bytes.Equal(v.RowStatus, s.RowStatus) {
			t.Fatalf("view %+v want %+v", v, s)
		}
	}
}

func TestStageStatesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w := NewWriter(0)
	for _, n := range []int{0, 1, 13} {
		s := &StageStates{StageID: 2, StateDimension: 6, Data: make([]float64, n*6)}
		for i := range s.Data {
			s.Data[i] = r.NormFloat64()
		}
		buf, err := w.EncodeStageStates(s)
		if err != nil {
			t.Fatal(err)
		}
		g := fb.GetRootAsStageStates(buf, 0)
		if g.StageId() != 2 || g.StateDimension() != 6 || g.Count() != uint32(n) || g.DataLength() != len(s.Data) {
			t.Fatal("generated header")
		}
		for i, x := range s.Data {
			if g.Data(i) != x {
				t.Fatal("generated data")
			}
		}
		v, err := ReadStageStates(buf)
		if err != nil {
			t.Fatal(err)
		}
		if v.Count != uint32(n) || !eqF(v.Data, s.Data) || !v.ZeroCopy {
			t.Fatalf("view %+v", v)
		}
		if n > 0 && !eqF(v.State(n-1), s.Data[(n-1)*6:]) {
			t.Fatal("State()")
		}
	}
}

// A Cut carrying the retired field id 4 (written by an old producer) is
// read with the field ignored, by our reader and the generated code.
func TestDeprecatedFieldIgnored(t *testing.T) {
	b := flatbuffers.NewBuilder(0)
	coef := CreateFloat64Vector(b, []float64{1.5, -2.5})
	b.StartObject(9)
	b.PrependUint64Slot(cutCutID, 99, 0)
	b.PrependFloat64Slot(cutIntercept, 7.25, 0)
	b.PrependUOffsetTSlot(cutCoefficients, coef, 0)
	b.PrependUint32Slot(cutSlotIndex, 5, 0)
	b.PrependUint32Slot(cutDominationCount, 12345, 0) // retired id 4
	b.PrependBoolSlot(cutIsActive, true, false)
	cut := b.EndObject()
	active := CreateUint32Vector(b, []uint32{0})
	cuts := b.CreateVectorOfTables([]flatbuffers.UOffsetT{cut})
	fb.StageCutsStart(b)
	fb.StageCutsAddCuts(b, cuts)
	fb.StageCutsAddActiveCutIndices(b, active)
	fb.StageCutsAddStageId(b, 1)
	fb.StageCutsAddStateDimension(b, 2)
	fb.StageCutsAddPopulatedCount(b, 1)
	b.Finish(fb.StageCutsEnd(b))
	buf := b.FinishedBytes()

	var c fb.Cut
	fb.GetRootAsStageCuts(buf, 0).Cuts(&c, 0)
	tab := c.Table()
	if tab.Offset(flatbuffers.VOffsetT(4+2*cutDominationCount)) == 0 {
		t.Fatal("test buffer does not carry field id 4")
	}
	v, err := ReadStageCuts(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := v.Cuts[0]
	if got.CutID != 99 || got.SlotIndex != 5 || got.Intercept != 7.25 || !got.IsActive ||
		!eqF(got.Coefficients(), []float64{1.5, -2.5}) || got.StateAtGeneration() != nil {
		t.Fatalf("cut read wrong: %+v", got)
	}
	// The generated code has no accessor for the deprecated field.
	src, err := os.ReadFile("internal/fb/Cut.go")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(src, []byte("DominationCount")) {
		t.Error("generated Cut exposes the deprecated domination_count")
	}
}

func TestGeneratedCodeUpToDate(t *testing.T) {
	flatc := requireFlatc(t)
	tmp := t.TempDir()
	out, err := exec.Command(flatc, "--go", "--go-namespace", "fb", "-o", tmp, "policy.fbs").CombinedOutput()
	if err != nil {
		t.Fatalf("flatc: %v\n%s", err, out)
	}
	gen, _ := filepath.Glob(filepath.Join(tmp, "fb", "*"))
	have, _ := filepath.Glob("internal/fb/*")
	if len(gen) != len(have) {
		t.Errorf("flatc generates %d files, internal/fb holds %d: run go generate ./policy", len(gen), len(have))
	}
	for _, g := range gen {
		want, _ := os.ReadFile(g)
		got, err := os.ReadFile(filepath.Join("internal/fb", filepath.Base(g)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("internal/fb/%s is stale or missing: run go generate ./policy", filepath.Base(g))
		}
	}
}

// relClose compares a double printed by flatc with the value written.
// flatc 2.0.8 prints doubles in fixed notation with 12 decimal places
// (trailing zeros trimmed), e.g. -4.0230686219e-05 as -0.000040230686:
// large values keep all their digits, small ones keep only 12 decimals.
// Hence relative tolerance 1e-11 plus an absolute 1e-12 (half a unit of
// the 12th decimal, with slack). Bit-exactness is checked in Go through
// the generated accessors.
func relClose(got, want float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= 1e-11*math.Abs(want)+1e-12
}

// flatcDump runs flatc's JSON dump of file with the given root type.
func flatcDump(t *testing.T, flatc, root, file string) map[string]any {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(flatc, "--raw-binary", "-t", "--strict-json", "-o", dir,
		"--root-type", "Cobre.IO.Policy."+root, "policy.fbs", "--", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("flatc: %v\n%s", err, out)
	}
	js, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(filepath.Base(file), ".bin")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("flatc JSON: %v\n%s", err, js)
	}
	return m
}

func num(t *testing.T, m map[string]any, key string) json.Number {
	t.Helper()
	v, ok := m[key]
	if !ok {
		return "0" // flatc omits fields at their default
	}
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%s: %T", key, v)
	}
	return n
}

func u(t *testing.T, m map[string]any, key string) uint64 {
	t.Helper()
	var x uint64
	if _, err := fmt.Sscan(num(t, m, key).String(), &x); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return x
}

func floats(t *testing.T, m map[string]any, key string) []float64 {
	t.Helper()
	arr, _ := m[key].([]any)
	out := make([]float64, len(arr))
	for i, e := range arr {
		f, err := e.(json.Number).Float64()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = f
	}
	return out
}

func TestFlatcDumpInterop(t *testing.T) {
	flatc := requireFlatc(t)
	r := rand.New(rand.NewPCG(7, 8))
	s := genStage(r, 12, 20, 9, true)
	s.Cuts[3].Coefficients[2] = -0.0
	s.Cuts[5].Coefficients[1] = 1e-300
	s.Cuts[5].Coefficients[2] = math.MaxFloat64
	w := NewWriter(0)
	buf, err := w.EncodeStageCuts(s)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "stage_012.bin")
	if _, err := writeStageFile(file, buf); err != nil {
		t.Fatal(err)
	}
	m := flatcDump(t, flatc, "StageCuts", file)
	if u(t, m, "stage_id") != 12 || u(t, m, "state_dimension") != 9 || u(t, m, "capacity") != uint64(s.Capacity) ||
		u(t, m, "warm_start_count") != 3 || u(t, m, "populated_count") != 20 {
		t.Fatalf("flatc header: %v", m)
	}
	act, _ := m["active_cut_indices"].([]any)
	if fmt.Sprint(act) != fmt.Sprint(activeOf(s)) {
		t.Fatalf("active_cut_indices %v want %v", act, activeOf(s))
	}
	cuts, _ := m["cuts"].([]any)
	if len(cuts) != len(s.Cuts) {
		t.Fatalf("flatc sees %d cuts", len(cuts))
	}
	for i, e := range cuts {
		c := e.(map[string]any)
		want := s.Cuts[i]
		if _, ok := c["domination_count"]; ok {
			t.Errorf("cut %d: flatc shows the deprecated field", i)
		}
		active, _ := c["is_active"].(bool)
		if u(t, c, "cut_id") != want.CutID || u(t, c, "slot_index") != uint64(want.SlotIndex) ||
			u(t, c, "iteration") != uint64(want.Iteration) || u(t, c, "forward_pass_index") != uint64(want.ForwardPassIndex) ||
			active != want.IsActive {
			t.Fatalf("cut %d scalars: %v want %+v", i, c, want)
		}
		ic, _ := num(t, c, "intercept").Float64()
		if !relClose(ic, want.Intercept) {
			t.Fatalf("cut %d intercept %v want %v", i, ic, want.Intercept)
		}
		for _, pair := range []struct {
			key  string
			want []float64
		}{{"coefficients", want.Coefficients}, {"state_at_generation", want.StateAtGeneration}} {
			got := floats(t, c, pair.key)
			if len(got) != len(pair.want) {
				t.Fatalf("cut %d %s: %d values want %d", i, pair.key, len(got), len(pair.want))
			}
			for j := range got {
				if !relClose(got[j], pair.want[j]) {
					t.Fatalf("cut %d %s[%d] = %v want %v", i, pair.key, j, got[j], pair.want[j])
				}
			}
		}
	}

	// Basis and states through flatc too.
	bbuf, _ := w.EncodeStageBasis(&StageBasis{StageID: 12, Iteration: 8, ColumnStatus: []byte{1, 0, 2}, RowStatus: []byte{3, 1}, NumCutRows: 1})
	bfile := filepath.Join(t.TempDir(), "basis.bin")
	os.WriteFile(bfile, bbuf, 0o644)
	bm := flatcDump(t, flatc, "StageBasis", bfile)
	if u(t, bm, "stage_id") != 12 || u(t, bm, "iteration") != 8 || u(t, bm, "num_columns") != 3 || u(t, bm, "num_rows") != 2 ||
		u(t, bm, "num_cut_rows") != 1 || fmt.Sprint(bm["column_status"]) != "[1 0 2]" || fmt.Sprint(bm["row_status"]) != "[3 1]" {
		t.Fatalf("flatc basis: %v", bm)
	}
	data := []float64{1.25, -3e10, 7e-8, 0.1}
	sbuf, _ := w.EncodeStageStates(&StageStates{StageID: 12, StateDimension: 2, Data: data})
	sfile := filepath.Join(t.TempDir(), "states.bin")
	os.WriteFile(sfile, sbuf, 0o644)
	sm := flatcDump(t, flatc, "StageStates", sfile)
	got := floats(t, sm, "data")
	if u(t, sm, "count") != 2 || u(t, sm, "state_dimension") != 2 || len(got) != 4 {
		t.Fatalf("flatc states: %v", sm)
	}
	for i := range got {
		if !relClose(got[i], data[i]) {
			t.Fatalf("states data[%d] %v want %v", i, got[i], data[i])
		}
	}
}

// readAll parses buf with every reader and touches every value a view
// exposes; it must never panic.
func readAll(buf []byte) {
	if v, err := ReadStageCuts(buf); err == nil {
		var s float64
		for i := range v.Cuts {
			for _, x := range v.Cuts[i].Coefficients() {
				s += x
			}
			for _, x := range v.Cuts[i].StateAtGeneration() {
				s += x
			}
		}
		_ = s
	}
	if v, err := ReadStageBasis(buf); err == nil {
		n := 0
		for _, x := range v.ColumnStatus {
			n += int(x)
		}
		for _, x := range v.RowStatus {
			n += int(x)
		}
	}
	if v, err := ReadStageStates(buf); err == nil {
		for i := 0; i < int(v.Count); i++ {
			_ = v.State(i)
		}
	}
}

// seedKinds is the root type of each buffer seedBuffers returns.
var seedKinds = []stageKind{kindCuts, kindCuts, kindCuts, kindBasis, kindStates}

func seedBuffers(t testing.TB) [][]byte {
	r := rand.New(rand.NewPCG(9, 10))
	var out [][]byte
	w := NewWriter(0)
	for _, s := range []*StageCuts{genStage(r, 0, 0, 2, false), genStage(r, 1, 3, 2, true), genStage(r, 2, 5, 4, false)} {
		b, err := w.EncodeStageCuts(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(b))
	}
	b, _ := w.EncodeStageBasis(&StageBasis{StageID: 1, ColumnStatus: []byte{1, 2}, RowStatus: []byte{0, 3, 1}, NumCutRows: 1})
	out = append(out, bytes.Clone(b))
	b, _ = w.EncodeStageStates(&StageStates{StageID: 1, StateDimension: 2, Data: []float64{1, 2, 3, 4}})
	out = append(out, bytes.Clone(b))
	return out
}

func TestHostileBuffersNeverPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	seeds := seedBuffers(t)
	if len(seeds) != len(seedKinds) {
		t.Fatalf("%d seeds, %d seed kinds", len(seeds), len(seedKinds))
	}
	for si, seed := range seeds {
		// No truncation panics any reader; its own reader refuses every
		// one that cuts a byte the buffer refers to, and reads one that
		// only cut trailing padding as the whole buffer (checkTruncations
		// says which cut points may verify, and why).
		for n := 0; n < len(seed); n++ {
			readAll(seed[:n])
		}
		checkTruncations(t, fmt.Sprintf("seed %d", si), seedKinds[si], seed)
		// every single-bit flip
		for i := 0; i < len(seed); i++ {
			for bit := 0; bit < 8; bit++ {
				b := bytes.Clone(seed)
				b[i] ^= 1 << bit
				readAll(b)
			}
		}
		// random multi-byte corruption, including large offsets
		for k := 0; k < 2000; k++ {
			b := bytes.Clone(seed)
			for j := 0; j < 1+r.IntN(4); j++ {
				p := r.IntN(len(b))
				b[p] = byte(r.Uint32())
				if p+4 <= len(b) && r.IntN(3) == 0 {
					v := []uint32{0, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffc, uint32(len(b))}[r.IntN(6)]
					b[p], b[p+1], b[p+2], b[p+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
				}
			}
			readAll(b)
		}
	}
	for k := 0; k < 5000; k++ {
		b := make([]byte, r.IntN(256))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		readAll(b)
	}
}

func TestTruncatedIsError(t *testing.T) {
	seed := seedBuffers(t)[2]
	for _, n := range []int{0, 3, 7, 8, len(seed) / 2, len(seed) - 1} {
		if _, err := ReadStageCuts(seed[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d/%d bytes: err = %v, want ErrCorrupt", n, len(seed), err)
		}
	}
}

func FuzzReadStageCuts(f *testing.F) {
	for _, s := range seedBuffers(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		readAll(buf)
	})
}
