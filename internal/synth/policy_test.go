package synth

import (
	"reflect"
	"testing"

	"github.com/hydroshard/hydroshard/policy"
)

func TestCheckpointCuts(t *testing.T) {
	c := Production()
	const it, fp, world = 5, 7, 3
	all := CheckpointCuts(c, 9, it, fp, 0, 1, true)
	if !reflect.DeepEqual(all, CheckpointCuts(c, 9, it, fp, 0, 1, true)) {
		t.Fatal("not deterministic")
	}
	if len(all) != c.Stages {
		t.Fatalf("%d stages", len(all))
	}
	byID := map[uint64]policy.Cut{}
	enc := policy.NewWriter(1 << 10)
	inactive := 0
	for s, sc := range all {
		want := it * fp
		if s == c.Stages-1 {
			want = 0
		}
		if len(sc.Cuts) != want || int(sc.StateDimension) != c.StateDimension() {
			t.Fatalf("stage %d: %d cuts (want %d), dim %d", s, len(sc.Cuts), want, sc.StateDimension)
		}
		if _, err := enc.EncodeStageCuts(&sc); err != nil {
			t.Fatal(err)
		}
		for _, cut := range sc.Cuts {
			if _, dup := byID[cut.CutID]; dup {
				t.Fatalf("cut_id %d twice", cut.CutID)
			}
			if cut.Coefficients[0] >= 0 {
				t.Fatalf("storage water value %v >= 0", cut.Coefficients[0])
			}
			if !cut.IsActive {
				inactive++
			}
			byID[cut.CutID] = cut
		}
	}
	if inactive == 0 || inactive == len(byID) {
		t.Errorf("%d of %d cuts inactive", inactive, len(byID))
	}
	// Ranks: same id, same content; the union is the full set.
	union := map[uint64]bool{}
	for r := range world {
		for _, sc := range CheckpointCuts(c, 9, it, fp, r, world, false) {
			for _, cut := range sc.Cuts {
				if union[cut.CutID] {
					t.Fatalf("cut_id %d on two ranks", cut.CutID)
				}
				union[cut.CutID] = true
				if !reflect.DeepEqual(cut, byID[cut.CutID]) {
					t.Fatalf("rank %d cut_id %d differs from the allCuts set", r, cut.CutID)
				}
			}
		}
		if !reflect.DeepEqual(CheckpointCuts(c, 9, it, fp, r, world, true), all) {
			t.Fatalf("rank %d allCuts differs", r)
		}
	}
	if len(union) != len(byID) {
		t.Fatalf("union over ranks has %d cuts, allCuts %d", len(union), len(byID))
	}
	m := CheckpointMeta(c, 9, it, 10, fp, 0)
	if m.NumStages != c.Stages || m.Capacity[0] != 10*fp || m.SystemHash != c.Hash() || m.BestUpperBound == nil {
		t.Fatalf("meta %+v", m)
	}
}
