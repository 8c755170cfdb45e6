// Package manifest holds the types of the JSON documents hydroshard reads
// and writes, each beside its version constant: the study case
// (CaseVersion), the journal records (JournalVersion; their line framing,
// reading and writing are package journal's), the simulation and training
// manifests (ManifestVersion), metadata and summaries. It touches no file
// under OUT (callers read bytes through a vfs.FS and decode them here); its
// one file read is LoadCase, of the solver's own case file. Decoding is
// strict: unknown fields are errors.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cespare/xxhash/v2"
)

// Limits of a case, checked by Validate before anything is sized from
// it: a case is input, and a writer or merge must never allocate for a
// dimension nobody could mean (a million stages, a billion lags).
const (
	MaxStages         = 10_000
	MaxBlocks         = 1_000
	MaxInflowLagOrder = 120
	MaxEntities       = 1_000_000 // per entity type
	// MaxScenarios bounds a run's scenario count: the rank writer and the
	// merge refuse more (a run of ten million scenarios is a hundred
	// million files).
	MaxScenarios = 10_000_000
)

// CaseVersion is the version of the case document format.
const CaseVersion = 1

// Case is the study a run simulates: its horizon and the entities whose
// results are written. It holds the few physical parameters needed to
// derive columns (block hours, line losses), to build dictionaries and to
// let cmd/simrank produce plausible numbers. A solver that embeds rank/
// fills it from its own input.
type Case struct {
	Version     int    `json:"version"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Stages is the number of stages; every stage has the blocks of
	// Hours (hours per block, the same for every stage).
	Stages int       `json:"stages"`
	Hours  []float64 `json:"block_hours"`
	// DiscountRate per stage: stage t's immediate cost is weighted by
	// 1/(1+rate)^t.
	DiscountRate float64 `json:"discount_rate"`
	// InflowLagOrder is the order of the autoregressive inflow model
	// (lags carried as state).
	InflowLagOrder int `json:"inflow_lag_order"`

	Buses              []Bus               `json:"buses"`
	Hydros             []Hydro             `json:"hydros,omitempty"`
	Thermals           []Thermal           `json:"thermals,omitempty"`
	Lines              []Line              `json:"lines,omitempty"`
	PumpingStations    []PumpingStation    `json:"pumping_stations,omitempty"`
	Contracts          []Contract          `json:"contracts,omitempty"`
	NonControllables   []NonControllable   `json:"non_controllables,omitempty"`
	GenericConstraints []GenericConstraint `json:"generic_constraints,omitempty"`
}

// Bus is an electrical bus (a subsystem) with its load.
type Bus struct {
	ID          int32   `json:"id"`
	Name        string  `json:"name"`
	SystemID    int32   `json:"system_id"`
	LoadMW      float64 `json:"load_mw"`
	DeficitCost float64 `json:"deficit_cost_per_mwh"`
	ExcessCost  float64 `json:"excess_cost_per_mwh"`
}

// Hydro is a hydro plant with its reservoir. DownstreamID < 0 means none.
type Hydro struct {
	ID                int32   `json:"id"`
	Name              string  `json:"name"`
	BusID             int32   `json:"bus_id"`
	DownstreamID      int32   `json:"downstream_id"`
	StorageMinHm3     float64 `json:"storage_min_hm3"`
	StorageMaxHm3     float64 `json:"storage_max_hm3"`
	StorageInitialHm3 float64 `json:"storage_initial_hm3"`
	TurbinedMaxM3s    float64 `json:"turbined_max_m3s"`
	Productivity      float64 `json:"productivity_mw_per_m3s"`
	MeanInflowM3s     float64 `json:"mean_inflow_m3s"`
	Evaporation       bool    `json:"evaporation"`
	SpillageCost      float64 `json:"spillage_cost_per_hm3"`
}

// Thermal is a thermal plant.
type Thermal struct {
	ID         int32   `json:"id"`
	Name       string  `json:"name"`
	BusID      int32   `json:"bus_id"`
	CapacityMW float64 `json:"capacity_mw"`
	CostPerMWh float64 `json:"cost_per_mwh"`
	GNL        bool    `json:"gnl"`
}

// Line is a transmission line between two buses.
type Line struct {
	ID           int32   `json:"id"`
	Name         string  `json:"name"`
	SourceBusID  int32   `json:"source_bus_id"`
	TargetBusID  int32   `json:"target_bus_id"`
	CapacityMW   float64 `json:"capacity_mw"`
	LossFraction float64 `json:"loss_fraction"`
	CostPerMWh   float64 `json:"cost_per_mwh"`
}

// PumpingStation pumps water between two reservoirs using power from a bus.
type PumpingStation struct {
	ID          int32   `json:"id"`
	Name        string  `json:"name"`
	BusID       int32   `json:"bus_id"`
	FromHydroID int32   `json:"from_hydro_id"`
	ToHydroID   int32   `json:"to_hydro_id"`
	MaxFlowM3s  float64 `json:"max_flow_m3s"`
	MWPerM3s    float64 `json:"mw_per_m3s"`
	CostPerMWh  float64 `json:"cost_per_mwh"`
}

// Contract is an energy import (Type "import") or export ("export").
type Contract struct {
	ID          int32   `json:"id"`
	Name        string  `json:"name"`
	BusID       int32   `json:"bus_id"`
	Type        string  `json:"type"`
	MaxMW       float64 `json:"max_mw"`
	PricePerMWh float64 `json:"price_per_mwh"`
}

// NonControllable is a wind/solar-like source that can only be curtailed.
type NonControllable struct {
	ID              int32   `json:"id"`
	Name            string  `json:"name"`
	BusID           int32   `json:"bus_id"`
	CapacityMW      float64 `json:"capacity_mw"`
	CurtailmentCost float64 `json:"curtailment_cost_per_mwh"`
}

// GenericConstraint is a user constraint whose violation is penalised.
type GenericConstraint struct {
	ID      int32   `json:"id"`
	Name    string  `json:"name"`
	Penalty float64 `json:"penalty"`
}

// LoadCase reads a case document: path may be the JSON file or a directory
// holding case.json.
func LoadCase(path string) (*Case, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "case.json")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("case: %w", err)
	}
	defer f.Close()
	c, err := DecodeCase(f)
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", path, err)
	}
	return c, nil
}

// DecodeCase strictly decodes and validates a case document.
func DecodeCase(r io.Reader) (*Case, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var c Case
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the case object")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the case for the mistakes that would otherwise produce
// wrong output silently: unknown versions, duplicate ids, dangling references.
func (c *Case) Validate() error {
	if c.Version != CaseVersion {
		return fmt.Errorf("case version %d, want %d", c.Version, CaseVersion)
	}
	if c.Name == "" {
		return errors.New("case has no name")
	}
	if c.Stages < 1 || c.Stages > MaxStages {
		return fmt.Errorf("stages = %d, want 1..%d", c.Stages, MaxStages)
	}
	if len(c.Hours) < 1 || len(c.Hours) > MaxBlocks {
		return fmt.Errorf("block_hours has %d blocks, want 1..%d", len(c.Hours), MaxBlocks)
	}
	if c.InflowLagOrder > MaxInflowLagOrder {
		return fmt.Errorf("inflow_lag_order = %d, want 0..%d", c.InflowLagOrder, MaxInflowLagOrder)
	}
	for kind, n := range map[string]int{"buses": len(c.Buses), "hydros": len(c.Hydros), "thermals": len(c.Thermals), "lines": len(c.Lines),
		"pumping stations": len(c.PumpingStations), "contracts": len(c.Contracts), "non-controllables": len(c.NonControllables)} {
		if n > MaxEntities {
			return fmt.Errorf("%d %s, want at most %d", n, kind, MaxEntities)
		}
	}
	for i, h := range c.Hours {
		if !(h > 0) {
			return fmt.Errorf("block_hours[%d] = %v, want > 0", i, h)
		}
	}
	if len(c.Buses) == 0 {
		return errors.New("case has no buses")
	}
	if c.InflowLagOrder < 0 {
		return fmt.Errorf("inflow_lag_order = %d, want >= 0", c.InflowLagOrder)
	}
	buses := map[int32]bool{}
	for _, b := range c.Buses {
		if buses[b.ID] {
			return fmt.Errorf("bus id %d appears twice", b.ID)
		}
		buses[b.ID] = true
	}
	hydros := map[int32]bool{}
	ids := func(kind string, n int, get func(int) (int32, []int32)) error {
		seen := map[int32]bool{}
		for i := 0; i < n; i++ {
			id, refs := get(i)
			if seen[id] {
				return fmt.Errorf("%s id %d appears twice", kind, id)
			}
			seen[id] = true
			for _, b := range refs {
				if !buses[b] {
					return fmt.Errorf("%s %d refers to bus %d, which is not in the case", kind, id, b)
				}
			}
		}
		return nil
	}
	for _, h := range c.Hydros {
		hydros[h.ID] = true
	}
	if err := ids("hydro", len(c.Hydros), func(i int) (int32, []int32) { return c.Hydros[i].ID, []int32{c.Hydros[i].BusID} }); err != nil {
		return err
	}
	for _, h := range c.Hydros {
		if h.DownstreamID >= 0 && !hydros[h.DownstreamID] {
			return fmt.Errorf("hydro %d: downstream hydro %d is not in the case", h.ID, h.DownstreamID)
		}
		if h.StorageMaxHm3 < h.StorageMinHm3 || h.StorageInitialHm3 < h.StorageMinHm3 || h.StorageInitialHm3 > h.StorageMaxHm3 {
			return fmt.Errorf("hydro %d: want storage_min <= storage_initial <= storage_max", h.ID)
		}
	}
	if err := ids("thermal", len(c.Thermals), func(i int) (int32, []int32) { return c.Thermals[i].ID, []int32{c.Thermals[i].BusID} }); err != nil {
		return err
	}
	if err := ids("line", len(c.Lines), func(i int) (int32, []int32) {
		return c.Lines[i].ID, []int32{c.Lines[i].SourceBusID, c.Lines[i].TargetBusID}
	}); err != nil {
		return err
	}
	for _, l := range c.Lines {
		if l.LossFraction < 0 || l.LossFraction >= 1 {
			return fmt.Errorf("line %d: loss_fraction %v, want in [0, 1)", l.ID, l.LossFraction)
		}
	}
	if err := ids("pumping station", len(c.PumpingStations), func(i int) (int32, []int32) {
		return c.PumpingStations[i].ID, []int32{c.PumpingStations[i].BusID}
	}); err != nil {
		return err
	}
	for _, p := range c.PumpingStations {
		if !hydros[p.FromHydroID] || !hydros[p.ToHydroID] {
			return fmt.Errorf("pumping station %d: hydros %d and %d must both be in the case", p.ID, p.FromHydroID, p.ToHydroID)
		}
	}
	if err := ids("contract", len(c.Contracts), func(i int) (int32, []int32) { return c.Contracts[i].ID, []int32{c.Contracts[i].BusID} }); err != nil {
		return err
	}
	for _, k := range c.Contracts {
		if k.Type != "import" && k.Type != "export" {
			return fmt.Errorf("contract %d: type %q, want import or export", k.ID, k.Type)
		}
	}
	if err := ids("non-controllable", len(c.NonControllables), func(i int) (int32, []int32) {
		return c.NonControllables[i].ID, []int32{c.NonControllables[i].BusID}
	}); err != nil {
		return err
	}
	return ids("generic constraint", len(c.GenericConstraints), func(i int) (int32, []int32) { return c.GenericConstraints[i].ID, nil })
}

// Hash identifies the case: XXH64 of its canonical JSON encoding, as 16 hex
// digits. Every rank of a run records it; the merge refuses to mix cases.
func (c *Case) Hash() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	_ = enc.Encode(c) // a Case always encodes
	return fmt.Sprintf("%016x", xxhash.Sum64(buf.Bytes()))
}

// BlockHours implements shard.Params.
func (c *Case) BlockHours(stage, block int32) (float64, bool) {
	if stage < 0 || int(stage) >= c.Stages || block < 0 || int(block) >= len(c.Hours) {
		return 0, false
	}
	return c.Hours[block], true
}

// LineLossFraction implements shard.Params.
func (c *Case) LineLossFraction(line int32) (float64, bool) {
	for _, l := range c.Lines {
		if l.ID == line {
			return l.LossFraction, true
		}
	}
	return 0, false
}

// StateDimension is the length of the policy's state vector for the case:
// one storage per hydro plus InflowLagOrder inflow lags per hydro. The
// state dictionary and the policy checkpoint must both agree with it.
func (c *Case) StateDimension() int {
	return len(c.Hydros) * (1 + c.InflowLagOrder)
}

// Entities lists which simulation entity tables the case has; "costs" is
// always present, the others only when the case has entities of that kind
// (as Cobre does). Names are shard table entity names.
func (c *Case) Entities() []string {
	out := []string{"costs"}
	add := func(name string, n int) {
		if n > 0 {
			out = append(out, name)
		}
	}
	add("hydros", len(c.Hydros))
	add("thermals", len(c.Thermals))
	add("exchanges", len(c.Lines))
	add("buses", len(c.Buses))
	add("pumping_stations", len(c.PumpingStations))
	add("contracts", len(c.Contracts))
	add("non_controllables", len(c.NonControllables))
	add("inflow_lags", min(len(c.Hydros), c.InflowLagOrder))
	add("violations/generic", len(c.GenericConstraints))
	return out
}

// IDs lists the ids of the entities whose rows go to the table of entity
// (a name of Entities), in case order: the hydro ids for "hydros" and
// "inflow_lags", the line ids for "exchanges", the constraint ids for
// "violations/generic"; none for "costs". ok is false for a name that is
// no simulation table. It lets a program that fills tables generically (the
// C API's callers) know the rows without parsing the case itself.
func (c *Case) IDs(entity string) (ids []int32, ok bool) {
	collect := func(n int, id func(i int) int32) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	switch entity {
	case "costs":
		return []int32{}, true
	case "hydros", "inflow_lags":
		return collect(len(c.Hydros), func(i int) int32 { return c.Hydros[i].ID }), true
	case "thermals":
		return collect(len(c.Thermals), func(i int) int32 { return c.Thermals[i].ID }), true
	case "exchanges":
		return collect(len(c.Lines), func(i int) int32 { return c.Lines[i].ID }), true
	case "buses":
		return collect(len(c.Buses), func(i int) int32 { return c.Buses[i].ID }), true
	case "pumping_stations":
		return collect(len(c.PumpingStations), func(i int) int32 { return c.PumpingStations[i].ID }), true
	case "contracts":
		return collect(len(c.Contracts), func(i int) int32 { return c.Contracts[i].ID }), true
	case "non_controllables":
		return collect(len(c.NonControllables), func(i int) int32 { return c.NonControllables[i].ID }), true
	case "violations/generic":
		return collect(len(c.GenericConstraints), func(i int) int32 { return c.GenericConstraints[i].ID }), true
	}
	return nil, false
}
