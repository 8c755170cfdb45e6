package shard

import "fmt"

// This file is the single registry of the integer codes that data files
// hold (the *_code columns of the Parquet tables and entities.csv) and of
// their labels. The merge writes it as training/dictionaries/codes.json;
// writers (cmd/simrank's synth, a solver embedding rank/) must use the
// constants below rather than literals, so that what the data says and
// what the dictionary explains cannot drift apart.
//
// Codes never change meaning once released: a new meaning gets a new
// value, and a retired value is never reused.

// Code is one value of a code set and its label.
type Code struct {
	Value int8
	// Label is what codes.json maps the value to: lower snake case, unique
	// within its set.
	Label string
	// Doc says what the value means (Go documentation only; not written
	// to codes.json).
	Doc string
}

// CodeSet is a named set of codes: its Name is the key of the set in
// codes.json, Columns the data columns (of any Parquet table, and of
// entities.csv) whose values are codes of the set.
type CodeSet struct {
	Name    string
	Columns []string
	Codes   []Code
}

// Label returns the label of value v and whether v is a code of the set.
func (s CodeSet) Label(v int8) (string, bool) {
	for _, c := range s.Codes {
		if c.Value == v {
			return c.Label, true
		}
	}
	return "", false
}

// Value returns the code whose label is label, and whether there is one.
func (s CodeSet) Value(label string) (int8, bool) {
	for _, c := range s.Codes {
		if c.Label == label {
			return c.Value, true
		}
	}
	return 0, false
}

// Operative state codes: operative_state_code of every entity table.
const (
	// OperativeNormal: the entity operates normally.
	OperativeNormal int8 = 0
	// OperativeMaintenance: the entity is out for maintenance for the whole
	// stage and produces nothing.
	OperativeMaintenance int8 = 1
)

// Storage binding codes: storage_binding_code of simulation/hydros. The code
// describes the final storage of the block.
const (
	// StorageBindingNone: storage strictly between its minimum and maximum.
	StorageBindingNone int8 = 0
	// StorageBindingMin: storage at its minimum, or below it (then
	// storage_violation_below_hm3 > 0). Takes precedence over
	// StorageBindingMax when minimum and maximum coincide.
	StorageBindingMin int8 = 1
	// StorageBindingMax: storage at its maximum.
	StorageBindingMax int8 = 2
)

// Contract type codes: the direction of an energy contract (the case's
// contract "type" field, "import" or "export").
const (
	// ContractImport: energy bought from outside the system (positive power_mw).
	ContractImport int8 = 0
	// ContractExport: energy sold outside the system (negative power_mw).
	ContractExport int8 = 1
)

// Entity type codes: entity_type_code of entities.csv and of
// training/dictionaries/bounds; one per entity kind of the case.
const (
	EntityBus               int8 = 0
	EntityHydro             int8 = 1
	EntityThermal           int8 = 2
	EntityLine              int8 = 3
	EntityPumpingStation    int8 = 4
	EntityContract          int8 = 5
	EntityNonControllable   int8 = 6
	EntityGenericConstraint int8 = 7
)

// Bound type codes: bound_type_code of training/dictionaries/bounds. See
// BoundTypes for the entity, unit and default of each.
const (
	BoundStorageMin              int8 = 0
	BoundStorageMax              int8 = 1
	BoundTurbinedMax             int8 = 2
	BoundThermalGenerationMax    int8 = 3
	BoundLineCapacity            int8 = 4
	BoundPumpedFlowMax           int8 = 5
	BoundContractPowerMax        int8 = 6
	BoundNonControllableCapacity int8 = 7
)

// BoundType describes one bound type of training/dictionaries/bounds.
//
// The default rule: bounds.parquet lists a bound only where it carries
// information. A bound type with a default (HasDefault; only lower bounds
// have one, and it is 0) is listed only where its value differs from the
// default, so a reader fills every absent (entity, stage) of that type
// with Default. A bound type without a default (every upper bound: there
// is no neutral value, an absent maximum would read as either 0 or
// unbounded) is always listed, for every entity of its type and every
// stage.
type BoundType struct {
	Code       int8
	Label      string
	EntityType int8   // the entity type code the bound applies to
	Unit       string // unit of bound_value for this bound type
	HasDefault bool
	Default    float64
	Doc        string
}

// Listed reports whether a bound of value v is written to bounds.parquet
// under the default rule (see BoundType).
func (b BoundType) Listed(v float64) bool { return !b.HasDefault || v != b.Default }

// BoundTypes lists every bound type in code order.
var BoundTypes = []BoundType{
	{Code: BoundStorageMin, Label: "storage_min_hm3", EntityType: EntityHydro, Unit: "hm3", HasDefault: true, Default: 0,
		Doc: "Minimum stored volume of the reservoir (hydro storage_min_hm3)"},
	{Code: BoundStorageMax, Label: "storage_max_hm3", EntityType: EntityHydro, Unit: "hm3",
		Doc: "Maximum stored volume of the reservoir (hydro storage_max_hm3)"},
	{Code: BoundTurbinedMax, Label: "turbined_max_m3s", EntityType: EntityHydro, Unit: "m3/s",
		Doc: "Maximum turbined flow (hydro turbined_max_m3s)"},
	{Code: BoundThermalGenerationMax, Label: "generation_max_mw", EntityType: EntityThermal, Unit: "MW",
		Doc: "Maximum thermal generation (thermal capacity_mw)"},
	{Code: BoundLineCapacity, Label: "flow_max_mw", EntityType: EntityLine, Unit: "MW",
		Doc: "Maximum flow in each direction (line capacity_mw)"},
	{Code: BoundPumpedFlowMax, Label: "pumped_flow_max_m3s", EntityType: EntityPumpingStation, Unit: "m3/s",
		Doc: "Maximum pumped flow (pumping station max_flow_m3s)"},
	{Code: BoundContractPowerMax, Label: "power_max_mw", EntityType: EntityContract, Unit: "MW",
		Doc: "Maximum contracted power (contract max_mw)"},
	{Code: BoundNonControllableCapacity, Label: "capacity_mw", EntityType: EntityNonControllable, Unit: "MW",
		Doc: "Installed capacity of the non-controllable source (capacity_mw)"},
}

// BoundTypeByCode returns the bound type of a code.
func BoundTypeByCode(code int8) (BoundType, bool) {
	for _, b := range BoundTypes {
		if b.Code == code {
			return b, true
		}
	}
	return BoundType{}, false
}

// Names of the code sets: the keys of codes.json.
const (
	CodeSetOperativeState = "operative_state"
	CodeSetStorageBinding = "storage_binding"
	CodeSetContractType   = "contract_type"
	CodeSetEntityType     = "entity_type"
	CodeSetBoundType      = "bound_type"
)

// CodeSets lists every code set, in the order codes.json lists them.
var CodeSets = []CodeSet{
	{Name: CodeSetOperativeState, Columns: []string{"operative_state_code"}, Codes: []Code{
		{OperativeNormal, "normal", "The entity operates normally"},
		{OperativeMaintenance, "maintenance", "Out for maintenance for the whole stage; produces nothing"},
	}},
	{Name: CodeSetStorageBinding, Columns: []string{"storage_binding_code"}, Codes: []Code{
		{StorageBindingNone, "none", "Final storage strictly between its minimum and maximum"},
		{StorageBindingMin, "min", "Final storage at (or below) its minimum"},
		{StorageBindingMax, "max", "Final storage at its maximum"},
	}},
	{Name: CodeSetContractType, Codes: []Code{
		{ContractImport, "import", "Energy bought from outside the system"},
		{ContractExport, "export", "Energy sold outside the system"},
	}},
	{Name: CodeSetEntityType, Columns: []string{"entity_type_code"}, Codes: []Code{
		{EntityBus, "bus", "Electrical bus (subsystem); simulation/buses"},
		{EntityHydro, "hydro", "Hydro plant and its reservoir; simulation/hydros"},
		{EntityThermal, "thermal", "Thermal plant; simulation/thermals"},
		{EntityLine, "line", "Transmission line; simulation/exchanges"},
		{EntityPumpingStation, "pumping_station", "Pumping station; simulation/pumping_stations"},
		{EntityContract, "contract", "Energy contract; simulation/contracts"},
		{EntityNonControllable, "non_controllable", "Non-controllable source; simulation/non_controllables"},
		{EntityGenericConstraint, "generic_constraint", "Generic constraint; simulation/violations/generic"},
	}},
	{Name: CodeSetBoundType, Columns: []string{"bound_type_code"}, Codes: boundCodes()},
}

func boundCodes() []Code {
	out := make([]Code, len(BoundTypes))
	for i, b := range BoundTypes {
		out[i] = Code{Value: b.Code, Label: b.Label, Doc: b.Doc}
	}
	return out
}

// Codes maps each code set name to its codes (the same slices as
// CodeSets).
var Codes = func() map[string][]Code {
	m := make(map[string][]Code, len(CodeSets))
	for _, s := range CodeSets {
		m[s.Name] = s.Codes
	}
	return m
}()

// CodeSetByName returns the named code set.
func CodeSetByName(name string) (CodeSet, bool) {
	for _, s := range CodeSets {
		if s.Name == name {
			return s, true
		}
	}
	return CodeSet{}, false
}

// ContractTypeCode returns the code of a case contract type ("import" or
// "export").
func ContractTypeCode(typ string) (int8, error) {
	s, _ := CodeSetByName(CodeSetContractType)
	if v, ok := s.Value(typ); ok {
		return v, nil
	}
	return 0, fmt.Errorf("contract type %q, want import or export", typ)
}
