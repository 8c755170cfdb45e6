package shard

import (
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

var codeLabelRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// TestCodeSetsWellFormed: every set has a unique name, values and labels
// unique within it, labels in lower snake case, and Codes agrees with
// CodeSets.
func TestCodeSetsWellFormed(t *testing.T) {
	want := []string{CodeSetOperativeState, CodeSetStorageBinding, CodeSetContractType, CodeSetEntityType, CodeSetBoundType}
	if len(CodeSets) != len(want) {
		t.Fatalf("%d code sets, want %d (%v)", len(CodeSets), len(want), want)
	}
	for i, s := range CodeSets {
		if s.Name != want[i] {
			t.Errorf("CodeSets[%d] = %s, want %s", i, s.Name, want[i])
		}
		if len(s.Codes) == 0 {
			t.Errorf("%s: no codes", s.Name)
		}
		values, labels := map[int8]bool{}, map[string]bool{}
		for _, c := range s.Codes {
			if values[c.Value] {
				t.Errorf("%s: value %d twice", s.Name, c.Value)
			}
			if labels[c.Label] {
				t.Errorf("%s: label %q twice", s.Name, c.Label)
			}
			values[c.Value], labels[c.Label] = true, true
			if !codeLabelRE.MatchString(c.Label) {
				t.Errorf("%s: label %q is not lower snake case", s.Name, c.Label)
			}
			if c.Doc == "" {
				t.Errorf("%s: code %d has no doc", s.Name, c.Value)
			}
			if got, ok := s.Label(c.Value); !ok || got != c.Label {
				t.Errorf("%s.Label(%d) = %q, %v", s.Name, c.Value, got, ok)
			}
			if got, ok := s.Value(c.Label); !ok || got != c.Value {
				t.Errorf("%s.Value(%q) = %d, %v", s.Name, c.Label, got, ok)
			}
		}
		if got, ok := CodeSetByName(s.Name); !ok || len(got.Codes) != len(s.Codes) {
			t.Errorf("CodeSetByName(%s) = %v, %v", s.Name, got, ok)
		}
		if len(Codes[s.Name]) != len(s.Codes) {
			t.Errorf("Codes[%s] has %d codes, CodeSets %d", s.Name, len(Codes[s.Name]), len(s.Codes))
		}
	}
	if len(Codes) != len(CodeSets) {
		t.Errorf("Codes has %d sets, CodeSets %d", len(Codes), len(CodeSets))
	}
	// Cobre's tables (docs/cobre.md; the conformance tests compare the
	// whole codes.json with testdata/cobre/codes.json).
	for _, c := range []struct {
		set   string
		value int8
		label string
	}{
		{CodeSetOperativeState, OperativeDeactivated, "deactivated"}, {CodeSetOperativeState, OperativeMaintenance, "maintenance"},
		{CodeSetOperativeState, OperativeOperating, "operating"}, {CodeSetOperativeState, OperativeSaturated, "saturated"},
		{CodeSetStorageBinding, StorageBindingNone, "none"}, {CodeSetStorageBinding, StorageBindingBelowMinimum, "below_minimum"},
		{CodeSetStorageBinding, StorageBindingAboveMaximum, "above_maximum"}, {CodeSetStorageBinding, StorageBindingBoth, "both"},
		{CodeSetContractType, 0, "import"}, {CodeSetContractType, 1, "export"},
	} {
		s, _ := CodeSetByName(c.set)
		if got, ok := s.Label(c.value); !ok || got != c.label {
			t.Errorf("%s %d = %q (%v), want %q", c.set, c.value, got, ok, c.label)
		}
	}
}

// TestCodeColumns: every column a code set claims exists as an Int8
// column, and every *_code column of every table is claimed by exactly one
// set, so a new code column cannot ship without a dictionary entry.
func TestCodeColumns(t *testing.T) {
	claimed := map[string]string{}
	for _, s := range CodeSets {
		for _, name := range s.Columns {
			if other, ok := claimed[name]; ok {
				t.Errorf("column %s claimed by %s and %s", name, other, s.Name)
			}
			claimed[name] = s.Name
		}
	}
	found := map[string]bool{}
	for _, tb := range AllTables {
		for _, c := range tb.Columns {
			if !strings.HasSuffix(c.Name, "_code") {
				continue
			}
			found[c.Name] = true
			if _, ok := claimed[c.Name]; !ok {
				t.Errorf("%s.%s is a code column that no code set claims", tb.Name, c.Name)
			}
			if c.Type.ID() != arrow.INT8 {
				t.Errorf("%s.%s is %s, want int8", tb.Name, c.Name, c.Type)
			}
		}
	}
	for name, set := range claimed {
		if !found[name] {
			t.Errorf("code set %s claims column %s, which no table has", set, name)
		}
	}
}

// TestCodeEntityTypes: Cobre's entity types, 6 (battery) reserved, no
// generic constraint.
func TestCodeEntityTypes(t *testing.T) {
	s, _ := CodeSetByName(CodeSetEntityType)
	want := map[int8]string{
		EntityHydro: "hydro", EntityThermal: "thermal", EntityBus: "bus", EntityLine: "line",
		EntityPumpingStation: "pumping_station", EntityContract: "contract", EntityNonControllable: "non_controllable",
	}
	if len(s.Codes) != len(want) {
		t.Fatalf("%d entity types, want %d", len(s.Codes), len(want))
	}
	for v, label := range want {
		if got, ok := s.Label(v); !ok || got != label {
			t.Errorf("entity type %d = %q (%v), want %q", v, got, ok, label)
		}
	}
	if _, ok := s.Label(6); ok {
		t.Error("entity type 6 is Cobre's reserved code (battery): it must stay unused")
	}
}

// TestCodeBoundTypes: codes unique and in order, labels in the code set;
// EntityBounds names real entity and bound types with a unit and a
// source, entity types grouped, bound types in code order within one.
func TestCodeBoundTypes(t *testing.T) {
	s, _ := CodeSetByName(CodeSetBoundType)
	ents, _ := CodeSetByName(CodeSetEntityType)
	if len(s.Codes) != len(BoundTypes) {
		t.Fatalf("bound_type set has %d codes, BoundTypes %d", len(s.Codes), len(BoundTypes))
	}
	for i, b := range BoundTypes {
		if i > 0 && b.Code <= BoundTypes[i-1].Code {
			t.Errorf("BoundTypes not in code order at %d", i)
		}
		if got, ok := s.Label(b.Code); !ok || got != b.Label {
			t.Errorf("bound type %d: codes label %q, BoundTypes %q", b.Code, got, b.Label)
		}
		if b.Doc == "" {
			t.Errorf("bound type %s: no doc", b.Label)
		}
		if got, ok := BoundTypeByCode(b.Code); !ok || got.Label != b.Label {
			t.Errorf("BoundTypeByCode(%d) = %v, %v", b.Code, got, ok)
		}
	}
	if _, ok := BoundTypeByCode(99); ok {
		t.Errorf("BoundTypeByCode(99) found a bound type")
	}
	done := map[int8]bool{}
	for i, eb := range EntityBounds {
		if _, ok := ents.Label(eb.EntityType); !ok {
			t.Errorf("EntityBounds[%d]: entity type %d is not a code", i, eb.EntityType)
		}
		if _, ok := BoundTypeByCode(eb.BoundType); !ok {
			t.Errorf("EntityBounds[%d]: bound type %d is not a code", i, eb.BoundType)
		}
		if eb.Unit == "" || eb.Source == "" {
			t.Errorf("EntityBounds[%d]: no unit or source", i)
		}
		if i > 0 && EntityBounds[i-1].EntityType != eb.EntityType {
			if done[eb.EntityType] {
				t.Errorf("EntityBounds[%d]: entity type %d is not grouped", i, eb.EntityType)
			}
			done[EntityBounds[i-1].EntityType] = true
		} else if i > 0 && eb.BoundType <= EntityBounds[i-1].BoundType {
			t.Errorf("EntityBounds[%d]: bound types not in code order", i)
		}
	}
}

func TestCodeContractType(t *testing.T) {
	for typ, want := range map[string]int8{"import": ContractImport, "export": ContractExport} {
		if got, err := ContractTypeCode(typ); err != nil || got != want {
			t.Errorf("ContractTypeCode(%q) = %d, %v; want %d", typ, got, err, want)
		}
	}
	if _, err := ContractTypeCode("Import"); err == nil || !strings.Contains(err.Error(), `"Import"`) {
		t.Errorf("ContractTypeCode(Import): %v, want an error naming it", err)
	}
}
