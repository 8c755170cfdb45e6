package shard

import "fmt"

// This file is the single registry of the integer codes that data files
// hold (the *_code columns of the Parquet tables and entities.csv) and of
// their labels. The merge writes it as training/dictionaries/codes.json;
// writers (cmd/simrank's synth, a solver embedding rank/) must use the
// constants below rather than literals, so that what the data says and
// what the dictionary explains cannot drift apart.
//
// The tables are Cobre's, value for value and label for label (cobre-io
// 0.5.x, the codes.json its output writer emits; docs/cobre.md): a Cobre
// notebook joining codes.json with the data reads the same answers from
// either solver's output. Earlier hydroshard releases numbered every
// table differently (0 was "normal" for operative_state, bus for
// entity_type); data written by them must be re-read with their own
// codes.json. Codes never change meaning again: a new meaning would get a
// new value, and a value Cobre does not have is never written.

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

// Operative state codes: operative_state_code of every entity table
// (hydros, thermals, exchanges, pumping_stations, contracts,
// non_controllables). One value per row: the state of the entity in that
// stage and block. rank.Writer refuses any other value (shard.CheckValues).
const (
	// OperativeDeactivated (0): the entity is not in service in the block:
	// before its entry stage, after its exit stage, or switched off by the
	// study. It produces, consumes and carries nothing.
	OperativeDeactivated int8 = 0
	// OperativeMaintenance (1): in the system but out for maintenance; it
	// produces, consumes and carries nothing.
	OperativeMaintenance int8 = 1
	// OperativeOperating (2): in service and dispatched normally, its
	// decision within its limits. The code of an ordinary row: a solver
	// that tracks no state writes 2, never 0 (0 says "deactivated").
	OperativeOperating int8 = 2
	// OperativeSaturated (3): in service and held at its upper limit
	// (generation, flow, pumping or contracted power at capacity).
	// Cobre's code has the label and no definition; this is hydroshard's
	// reading of it, and what cmd/simrank writes for a thermal plant
	// dispatched at full capacity.
	OperativeSaturated int8 = 3
)

// Storage binding codes: storage_binding_code of simulation/hydros. The code
// describes the final storage of the block against the reservoir's bounds.
const (
	// StorageBindingNone (0): final storage strictly between its minimum
	// and maximum.
	StorageBindingNone int8 = 0
	// StorageBindingBelowMinimum (1): final storage at its minimum, or
	// below it (then storage_violation_below_hm3 > 0): the lower bound
	// binds.
	StorageBindingBelowMinimum int8 = 1
	// StorageBindingAboveMaximum (2): final storage at its maximum (the
	// plant spills or turbines to stay there): the upper bound binds.
	StorageBindingAboveMaximum int8 = 2
	// StorageBindingBoth (3): both bounds bind at once: a reservoir whose
	// minimum equals its maximum (run-of-river), with its storage there.
	StorageBindingBoth int8 = 3
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
// training/dictionaries/bounds; one per entity kind of the case. Code 6 is
// reserved by Cobre (battery) and unused; generic constraints have no code
// (they are not in entities.csv), as in Cobre.
const (
	EntityHydro           int8 = 0
	EntityThermal         int8 = 1
	EntityBus             int8 = 2
	EntityLine            int8 = 3
	EntityPumpingStation  int8 = 4
	EntityContract        int8 = 5
	EntityNonControllable int8 = 7
)

// Bound type codes: bound_type_code of training/dictionaries/bounds. A
// bound type may apply to several entity types (generation_min to hydros
// and thermals, flow_max to lines, pumping stations and contracts); see
// EntityBounds for which, and in which unit.
const (
	BoundStorageMin    int8 = 0
	BoundStorageMax    int8 = 1
	BoundTurbinedMin   int8 = 2
	BoundTurbinedMax   int8 = 3
	BoundOutflowMin    int8 = 4
	BoundOutflowMax    int8 = 5
	BoundGenerationMin int8 = 6
	BoundGenerationMax int8 = 7
	BoundFlowMin       int8 = 8
	BoundFlowMax       int8 = 9
)

// BoundType is one code of the bound_type set.
type BoundType struct {
	Code  int8
	Label string
	Doc   string
}

// BoundTypes lists every bound type in code order.
var BoundTypes = []BoundType{
	{BoundStorageMin, "storage_min", "Minimum stored volume of a reservoir"},
	{BoundStorageMax, "storage_max", "Maximum stored volume of a reservoir"},
	{BoundTurbinedMin, "turbined_min", "Minimum turbined flow"},
	{BoundTurbinedMax, "turbined_max", "Maximum turbined flow"},
	{BoundOutflowMin, "outflow_min", "Minimum total outflow (turbined plus spilled)"},
	{BoundOutflowMax, "outflow_max", "Maximum total outflow (turbined plus spilled)"},
	{BoundGenerationMin, "generation_min", "Minimum generation"},
	{BoundGenerationMax, "generation_max", "Maximum generation"},
	{BoundFlowMin, "flow_min", "Minimum flow: power on a line or contract, water through a pumping station"},
	{BoundFlowMax, "flow_max", "Maximum flow: power on a line or contract, water through a pumping station"},
}

// EntityBound is one bound that bounds.parquet lists for every entity of
// an entity type and every stage.
type EntityBound struct {
	EntityType int8
	BoundType  int8
	Unit       string // unit of bound_value
	// Source says where the value comes from in the case (Go
	// documentation only).
	Source string
}

// EntityBounds lists the bounds of bounds.parquet: by entity type in the
// order the file lists them (hydro, thermal, line, pumping station,
// contract: Cobre's), and within an entity type in bound type order. Every
// bound is listed for every entity and stage, defaults included, as Cobre
// does. Buses and non-controllable sources have none. Cobre also lists a
// hydro's outflow_max where the plant has a maximum outflow; the case has
// no such field, so hydroshard never writes one.
var EntityBounds = []EntityBound{
	{EntityHydro, BoundStorageMin, "hm3", "storage_min_hm3"},
	{EntityHydro, BoundStorageMax, "hm3", "storage_max_hm3"},
	{EntityHydro, BoundTurbinedMin, "m3/s", "0 (the case has no minimum turbined flow)"},
	{EntityHydro, BoundTurbinedMax, "m3/s", "turbined_max_m3s"},
	{EntityHydro, BoundOutflowMin, "m3/s", "0 (the case has no minimum outflow)"},
	{EntityHydro, BoundGenerationMin, "MW", "0 (the case has no minimum generation)"},
	{EntityHydro, BoundGenerationMax, "MW", "productivity_mw_per_m3s x turbined_max_m3s"},
	{EntityThermal, BoundGenerationMin, "MW", "0 (the case has no minimum generation)"},
	{EntityThermal, BoundGenerationMax, "MW", "capacity_mw"},
	{EntityLine, BoundFlowMin, "MW", "0 (direct direction, as Cobre)"},
	{EntityLine, BoundFlowMax, "MW", "capacity_mw (direct direction)"},
	{EntityPumpingStation, BoundFlowMin, "m3/s", "0 (the case has no minimum pumped flow)"},
	{EntityPumpingStation, BoundFlowMax, "m3/s", "max_flow_m3s"},
	{EntityContract, BoundFlowMin, "MW", "0 (the case has no minimum contracted power)"},
	{EntityContract, BoundFlowMax, "MW", "max_mw"},
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

// CodeSets lists every code set, in the order codes.json lists them
// (Cobre's).
var CodeSets = []CodeSet{
	{Name: CodeSetOperativeState, Columns: []string{"operative_state_code"}, Codes: []Code{
		{OperativeDeactivated, "deactivated", "Not in service in the block (before entry, after exit, switched off); produces nothing"},
		{OperativeMaintenance, "maintenance", "Out for maintenance; produces nothing"},
		{OperativeOperating, "operating", "In service, dispatched within its limits (the ordinary row)"},
		{OperativeSaturated, "saturated", "In service and held at its upper limit (hydroshard's reading of Cobre's label)"},
	}},
	{Name: CodeSetStorageBinding, Columns: []string{"storage_binding_code"}, Codes: []Code{
		{StorageBindingNone, "none", "Final storage strictly between its minimum and maximum"},
		{StorageBindingBelowMinimum, "below_minimum", "Final storage at (or below) its minimum"},
		{StorageBindingAboveMaximum, "above_maximum", "Final storage at its maximum"},
		{StorageBindingBoth, "both", "Minimum equals maximum and final storage is there: both bounds bind"},
	}},
	{Name: CodeSetContractType, Codes: []Code{
		{ContractImport, "import", "Energy bought from outside the system"},
		{ContractExport, "export", "Energy sold outside the system"},
	}},
	{Name: CodeSetEntityType, Columns: []string{"entity_type_code"}, Codes: []Code{
		{EntityHydro, "hydro", "Hydro plant and its reservoir; simulation/hydros"},
		{EntityThermal, "thermal", "Thermal plant; simulation/thermals"},
		{EntityBus, "bus", "Electrical bus (subsystem); simulation/buses"},
		{EntityLine, "line", "Transmission line; simulation/exchanges"},
		{EntityPumpingStation, "pumping_station", "Pumping station; simulation/pumping_stations"},
		{EntityContract, "contract", "Energy contract; simulation/contracts"},
		{EntityNonControllable, "non_controllable", "Non-controllable source; simulation/non_controllables"},
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
