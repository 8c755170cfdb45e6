package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// writePolicyDir writes a small policy directory the way the solver will:
// stage files through vfs.WriteNewSync, metadata.json last, with the
// project's "files" integrity map when withFiles.
func writePolicyDir(t *testing.T, nStages, dim int, withFiles bool) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"cuts", "basis", "states"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(21, 22))
	w := NewWriter(0)
	files := map[string]FileEntry{}
	put := func(rel string, buf []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		info, err := writeStageFile(filepath.Join(dir, rel), buf)
		if err != nil {
			t.Fatal(err)
		}
		files[rel] = FileEntry{Bytes: info.Bytes, XXH64: fmt.Sprintf("%016x", info.XXH64)}
	}
	for st := 0; st < nStages; st++ {
		// File names deliberately do not follow stage order for stage 0/1:
		// readers order by the stage_id inside.
		name := layout.StageFileName(st)
		if nStages > 1 && st < 2 {
			name = layout.StageFileName(1 - st)
		}
		buf, err := w.EncodeStageCuts(genStage(r, uint32(st), 4+st, dim, st%2 == 0))
		put("cuts/"+name, buf, err)
		if st != 1 { // a stage without basis is allowed
			buf, err = w.EncodeStageBasis(&StageBasis{StageID: uint32(st), ColumnStatus: []byte{1, 2, 3}, RowStatus: []byte{0, 1}, NumCutRows: 1})
			put("basis/"+name, buf, err)
		}
		buf, err = w.EncodeStageStates(&StageStates{StageID: uint32(st), StateDimension: uint32(dim), Data: make([]float64, 2*dim)})
		put("states/"+name, buf, err)
	}
	md := map[string]any{
		"cobre_version": "hydroshard-test", "created_at": "2026-01-02T03:04:05Z",
		"completed_iterations": 10, "final_lower_bound": 1.5, "best_upper_bound": nil,
		"state_dimension": dim, "num_stages": nStages, "max_iterations": 100, "forward_passes": 4,
		"warm_start_cuts": 0, "warm_start_counts": make([]int, nStages), "rng_seed": 42,
		"total_visited_states": 2 * nStages,
	}
	if withFiles {
		md["files"] = files
	}
	writeJSON(t, filepath.Join(dir, "metadata.json"), md)
	return dir
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func editMetadata(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	writeJSON(t, filepath.Join(dir, "metadata.json"), m)
}

func TestOpenValid(t *testing.T) {
	for _, withFiles := range []bool{true, false} {
		dir := writePolicyDir(t, 3, 5, withFiles)
		p, err := Open(dir, Expect{StateDimension: 5, NumStages: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Stages) != 3 {
			t.Fatalf("%d stages", len(p.Stages))
		}
		for i, st := range p.Stages {
			if st.StageID != uint32(i) || st.PopulatedCount != uint32(4+i) || st.StatesFile == "" || (st.BasisFile == "") != (i == 1) {
				t.Fatalf("stage %d: %+v", i, st)
			}
			v, err := p.LoadCuts(st.StageID)
			if err != nil || v.StageID != st.StageID || len(v.Cuts) != 4+i || !v.ZeroCopy {
				t.Fatalf("LoadCuts(%d): %v", i, err)
			}
			b, err := p.LoadBasis(st.StageID)
			if err != nil || (b == nil) != (i == 1) {
				t.Fatalf("LoadBasis(%d): %v %v", i, b, err)
			}
			s, err := p.LoadStates(st.StageID)
			if err != nil || s.Count != 2 {
				t.Fatalf("LoadStates(%d): %v", i, err)
			}
		}
		// file names are swapped for stages 0 and 1
		if p.Stages[0].CutsFile != "cuts/stage_001.bin" {
			t.Errorf("stage 0 read from %s", p.Stages[0].CutsFile)
		}
		if p.Metadata.CobreVersion != "hydroshard-test" || p.Metadata.BestUpperBound != nil {
			t.Errorf("metadata %+v", p.Metadata)
		}
	}
	// zero Expect fields are not checked; states/ is optional
	dir := writePolicyDir(t, 2, 3, false)
	os.RemoveAll(filepath.Join(dir, "states"))
	if _, err := Open(dir, Expect{}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	cases := []struct {
		name   string
		expect Expect
		mutate func(t *testing.T, dir string)
		want   error
		words  []string
	}{
		{"state dimension expected", Expect{StateDimension: 6, NumStages: 3}, nil, ErrStateDimension,
			[]string{"state_dimension", "6", "5"}},
		{"stage count expected", Expect{StateDimension: 5, NumStages: 4}, nil, ErrStageCount,
			[]string{"4 stages", "num_stages 3"}},
		{"metadata dimension vs files", Expect{}, func(t *testing.T, dir string) {
			editMetadata(t, dir, func(m map[string]any) { m["state_dimension"] = 7 })
		}, ErrStateDimension, []string{"cuts/stage_", "state_dimension 5", "says 7"}},
		{"missing cuts file", Expect{}, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "cuts", "stage_002.bin"))
		}, ErrStageCount, []string{"num_stages 3", "2 stage files"}},
		{"missing basis dir", Expect{}, func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, "basis"))
		}, ErrLayout, []string{"basis/ must exist"}},
		{"missing metadata", Expect{}, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "metadata.json"))
		}, ErrMetadata, []string{"metadata.json"}},
		{"metadata without num_stages", Expect{}, func(t *testing.T, dir string) {
			editMetadata(t, dir, func(m map[string]any) { delete(m, "num_stages") })
		}, ErrMetadata, []string{"num_stages"}},
		{"stray file", Expect{}, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "cuts", "stage_003.bin.tmp"), nil, 0o644)
		}, ErrLayout, []string{"stage_003.bin.tmp"}},
		{"checksum", Expect{}, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "cuts", "stage_002.bin")
			b, _ := os.ReadFile(p)
			b[len(b)-3] ^= 1
			os.WriteFile(p, b, 0o644)
		}, ErrChecksum, []string{"cuts/stage_002.bin", "xxh64"}},
		{"size", Expect{}, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "states", "stage_002.bin")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, 0, 0, 0, 0, 0, 0, 0, 0), 0o644)
		}, ErrChecksum, []string{"states/stage_002.bin", "bytes"}},
		{"listed file missing", Expect{}, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "basis", "stage_002.bin"))
		}, ErrChecksum, []string{"basis/stage_002.bin", "missing"}},
		{"unlisted file", Expect{}, func(t *testing.T, dir string) {
			editMetadata(t, dir, func(m map[string]any) { delete(m["files"].(map[string]any), "states/stage_000.bin") })
		}, ErrChecksum, []string{"states/stage_000.bin", "not listed"}},
		{"duplicate stage id", Expect{}, func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "cuts", "stage_002.bin"))
			os.WriteFile(filepath.Join(dir, "cuts", "stage_001.bin"), b, 0o644)
			editMetadata(t, dir, func(m map[string]any) { delete(m, "files") })
		}, ErrLayout, []string{"stage_id 2"}},
		{"corrupt stage without files map", Expect{}, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "cuts", "stage_002.bin")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
			editMetadata(t, dir, func(m map[string]any) { delete(m, "files") })
		}, ErrCorrupt, []string{"cuts/stage_002.bin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicyDir(t, 3, 5, true)
			if tc.mutate != nil {
				tc.mutate(t, dir)
			}
			_, err := Open(dir, tc.expect)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// writeStageFile makes buf durable at path, as the rank writer does.
func writeStageFile(path string, buf []byte) (vfs.Written, error) {
	return vfs.WriteNewSync(vfs.OS(), path, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	})
}
