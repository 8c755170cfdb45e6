package merge

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
)

// The dictionaries are Cobre's (cobre-io 0.5.x, the files its output
// writer emits under training/dictionaries/; docs/cobre.md): the same
// headers, row orders, type names, unit strings, code tables and JSON
// shapes, so that a notebook written against Cobre's output reads
// hydroshard's and gets the same answers. The differences that remain are
// listed in the README ("Differences from Cobre").

// dictVersion is the "version" of codes.json and state_dictionary.json:
// Cobre writes the string "1.0".
const dictVersion = "1.0"

// entitiesHeader is the header of entities.csv.
var entitiesHeader = []string{"entity_type_code", "entity_id", "name", "bus_id", "system_id"}

// variablesHeader is the header of variables.csv.
var variablesHeader = []string{"file", "column", "type", "unit", "description", "nullable"}

// dictFile is one dictionary file: its name relative to layout.DictDir
// and its complete contents.
type dictFile struct {
	Name string
	Data []byte
}

// buildDictionaries builds the five files of OUT/training/dictionaries/
// from the case the ranks recorded and returns them in a fixed order
// (codes.json, entities.csv, variables.csv, bounds.parquet,
// state_dictionary.json). It writes nothing: the caller writes each file
// atomically (replaceAll), and since the bytes depend only on (c,
// generatedAt), re-merging rewrites nothing.
//
// generatedAt is the time recorded in codes.json; it must come from the
// journals (never the clock) and must not be empty.
//
// Errors: a nil or invalid case; an entity name that cannot round-trip
// through CSV readers (invalid UTF-8, a carriage return, a NUL byte); a
// registry inconsistency (a column type with no variables.csv spelling, a
// bound type with no case value).
func buildDictionaries(c *manifest.Case, generatedAt string) ([]dictFile, error) {
	if c == nil {
		return nil, errors.New("dictionaries: no case")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("dictionaries: case %q: %w", c.Name, err)
	}
	if generatedAt == "" {
		return nil, errors.New("dictionaries: empty generated_at (it comes from the journals)")
	}
	codes, err := manifest.Marshal(codesDoc{generatedAt: generatedAt})
	if err != nil {
		return nil, fmt.Errorf("dictionaries: %s: %w", layout.DictCodesName, err)
	}
	entities, err := entitiesCSV(c)
	if err != nil {
		return nil, fmt.Errorf("dictionaries: %s: %w", layout.DictEntitiesName, err)
	}
	variables, err := variablesCSV()
	if err != nil {
		return nil, fmt.Errorf("dictionaries: %s: %w", layout.DictVariablesName, err)
	}
	bounds, err := boundsParquet(c)
	if err != nil {
		return nil, fmt.Errorf("dictionaries: %s: %w", layout.DictBoundsName, err)
	}
	state, err := manifest.Marshal(stateDictionary(c))
	if err != nil {
		return nil, fmt.Errorf("dictionaries: %s: %w", layout.DictStateName, err)
	}
	return []dictFile{
		{layout.DictCodesName, codes},
		{layout.DictEntitiesName, entities},
		{layout.DictVariablesName, variables},
		{layout.DictBoundsName, bounds},
		{layout.DictStateName, state},
	}, nil
}

// ---------------------------------------------------------------------------
// codes.json

// codesDoc marshals codes.json: version, generated_at, then every code set
// of shard.CodeSets in registry order, each an object from the code (as a
// decimal string) to its label, keys in numeric order.
type codesDoc struct{ generatedAt string }

func (d codesDoc) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	str := func(s string) {
		v, _ := json.Marshal(s) // a string always encodes
		b.Write(v)
	}
	b.WriteString(`{"version":`)
	str(dictVersion)
	b.WriteString(`,"generated_at":`)
	str(d.generatedAt)
	for _, set := range shard.CodeSets {
		b.WriteByte(',')
		str(set.Name)
		b.WriteString(":{")
		codes := slices.Clone(set.Codes)
		slices.SortFunc(codes, func(x, y shard.Code) int { return int(x.Value) - int(y.Value) })
		for i, code := range codes {
			if i > 0 {
				if code.Value == codes[i-1].Value {
					return nil, fmt.Errorf("code set %s: value %d appears twice", set.Name, code.Value)
				}
				b.WriteByte(',')
			}
			str(strconv.Itoa(int(code.Value)))
			b.WriteByte(':')
			str(code.Label)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ---------------------------------------------------------------------------
// entities.csv

// entity is one row of entities.csv.
type entity struct {
	typ  int8
	id   int32
	name string
	bus  int32
}

// caseEntities lists the entities of entities.csv ordered by entity type
// code, then id, as Cobre does: hydros (0), thermals (1), buses (2), lines
// (3), pumping stations (4), contracts (5), non-controllable sources (7).
// A bus carries its own id as bus_id; a line -1 (it joins two buses);
// every other entity its bus. Generic constraints have no entity type
// code, in Cobre or here, and no row.
func caseEntities(c *manifest.Case) ([]entity, error) {
	var out []entity
	var err error
	add := func(typ int8, id int32, name string, bus int32) {
		if e := checkName(name); e != nil {
			label, _ := codeLabel(shard.CodeSetEntityType, typ)
			err = errors.Join(err, fmt.Errorf("%s %d: name %q: %w", label, id, name, e))
			return
		}
		out = append(out, entity{typ: typ, id: id, name: name, bus: bus})
	}
	for _, h := range c.Hydros {
		add(shard.EntityHydro, h.ID, h.Name, h.BusID)
	}
	for _, t := range c.Thermals {
		add(shard.EntityThermal, t.ID, t.Name, t.BusID)
	}
	for _, b := range c.Buses {
		add(shard.EntityBus, b.ID, b.Name, b.ID)
	}
	for _, l := range c.Lines {
		add(shard.EntityLine, l.ID, l.Name, -1)
	}
	for _, p := range c.PumpingStations {
		add(shard.EntityPumpingStation, p.ID, p.Name, p.BusID)
	}
	for _, k := range c.Contracts {
		add(shard.EntityContract, k.ID, k.Name, k.BusID)
	}
	for _, n := range c.NonControllables {
		add(shard.EntityNonControllable, n.ID, n.Name, n.BusID)
	}
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b entity) int {
		if a.typ != b.typ {
			return int(a.typ) - int(b.typ)
		}
		return cmpInt32(a.id, b.id)
	})
	return out, nil
}

func cmpInt32(a, b int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkName rejects the names CSV readers cannot give back unchanged:
// invalid UTF-8 (DuckDB refuses the file), a carriage return (Go's and
// others' readers turn a quoted \r\n into \n) and NUL.
func checkName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(name, '\r'):
		return errors.New("contains a carriage return, which CSV readers do not preserve")
	case strings.ContainsRune(name, 0):
		return errors.New("contains a NUL byte")
	}
	return nil
}

func codeLabel(set string, v int8) (string, bool) {
	s, ok := shard.CodeSetByName(set)
	if !ok {
		return "", false
	}
	return s.Label(v)
}

// cobreSystemID is entities.csv's system_id: Cobre models one system and
// writes 0 on every row (the case's per-bus system_id is not written).
const cobreSystemID = "0"

func entitiesCSV(c *manifest.Case) ([]byte, error) {
	ents, err := caseEntities(c)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(entitiesHeader) // a bytes.Buffer never fails; Flush reports errors
	for _, e := range ents {
		_ = w.Write([]string{strconv.Itoa(int(e.typ)), strconv.FormatInt(int64(e.id), 10), e.name,
			strconv.FormatInt(int64(e.bus), 10), cobreSystemID})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ---------------------------------------------------------------------------
// variables.csv

// variablesFiles are the schemas variables.csv lists, in Cobre's order,
// each under Cobre's short name (its "file" column). bounds.parquet, the
// dictionary's own table, is not listed, as in Cobre (its schema is in
// docs/tables.md).
var variablesFiles = []struct {
	file  string
	table *shard.Table
}{
	{"costs", shard.Costs},
	{"hydros", shard.Hydros},
	{"thermals", shard.Thermals},
	{"exchanges", shard.Exchanges},
	{"buses", shard.Buses},
	{"pumping_stations", shard.PumpingStations},
	{"contracts", shard.Contracts},
	{"non_controllables", shard.NonControllables},
	{"inflow_lags", shard.InflowLags},
	{"generic_violations", shard.GenericViolations},
	{"convergence", shard.Convergence},
	{"iteration_timing", shard.TimingIterations},
	{"rank_timing", shard.TimingMPIRanks},
}

// variablesTypeNames spells Arrow types as Cobre's variables.csv does
// (Rust's names).
var variablesTypeNames = map[arrow.Type]string{
	arrow.INT8:    "i8",
	arrow.INT32:   "i32",
	arrow.INT64:   "i64",
	arrow.FLOAT64: "f64",
	arrow.BOOL:    "bool",
}

// cobreUnits holds Cobre's unit string where it differs from the
// registry's (shard.Column.Unit, the physical unit documented in
// docs/tables.md): variables.csv carries Cobre's strings
// (docs/cobre-units.csv), so that a notebook labels and filters columns
// as it does on Cobre's output. Several of Cobre's strings are empty where
// the column has a unit, and three look wrong (spot_price and
// pumped_flow_m3s in MW, price_per_mwh in $); they are copied as they are.
// One is not: Cobre labels pumped_volume_hm3 m3/s, evidently wrong for a
// volume (it is pumped_flow_m3s x hours x 3600 / 1e6), and variables.csv
// says hm3 there, the registry's unit.
var cobreUnits = map[[2]string]string{
	{"costs", "discount_factor"}:             "",
	{"buses", "spot_price"}:                  "MW",
	{"pumping_stations", "pumped_flow_m3s"}:  "MW",
	{"contracts", "price_per_mwh"}:           "$",
	{"convergence", "lower_bound"}:           "",
	{"convergence", "upper_bound_mean"}:      "",
	{"convergence", "upper_bound_std"}:       "",
	{"convergence", "gap_percent"}:           "",
	{"iteration_timing", "forward_wall_ms"}:  "",
	{"iteration_timing", "backward_wall_ms"}: "",
	{"iteration_timing", "cut_sync_ms"}:      "",
	{"iteration_timing", "lower_bound_ms"}:   "",
}

// variableUnit is the unit variables.csv gives a column of a file.
func variableUnit(file string, col shard.Column) string {
	if u, ok := cobreUnits[[2]string{file, col.Name}]; ok {
		return u
	}
	return col.Unit
}

// variablesCSV lists every column of every schema of variablesFiles,
// schemas in that order and columns in file order.
func variablesCSV() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(variablesHeader)
	for _, f := range variablesFiles {
		for _, col := range f.table.Columns {
			typ, ok := variablesTypeNames[col.Type.ID()]
			if !ok {
				return nil, fmt.Errorf("%s.%s: Arrow type %s has no variables.csv spelling", f.table.Name, col.Name, col.Type)
			}
			_ = w.Write([]string{f.file, col.Name, typ, variableUnit(f.file, col), col.Doc, strconv.FormatBool(col.Nullable)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ---------------------------------------------------------------------------
// bounds.parquet

// boundedEntity is one entity of bounds.parquet and the value of each of
// its entity type's bounds (shard.EntityBounds) from the case. The case's
// limits do not vary by stage or block: every stage gets the same value
// and block_id is null.
type boundedEntity struct {
	typ    int8
	id     int32
	values map[int8]float64 // bound type code -> value
}

// caseBoundedEntities lists the entities that have bounds, with their
// values, in no particular order.
func caseBoundedEntities(c *manifest.Case) []boundedEntity {
	var out []boundedEntity
	add := func(typ int8, id int32, kv ...float64) {
		e := boundedEntity{typ: typ, id: id, values: map[int8]float64{}}
		for i := 0; i+1 < len(kv); i += 2 {
			e.values[int8(kv[i])] = kv[i+1]
		}
		out = append(out, e)
	}
	for _, h := range c.Hydros {
		add(shard.EntityHydro, h.ID,
			float64(shard.BoundStorageMin), h.StorageMinHm3,
			float64(shard.BoundStorageMax), h.StorageMaxHm3,
			float64(shard.BoundTurbinedMin), 0,
			float64(shard.BoundTurbinedMax), h.TurbinedMaxM3s,
			float64(shard.BoundOutflowMin), 0,
			float64(shard.BoundGenerationMin), 0,
			float64(shard.BoundGenerationMax), h.Productivity*h.TurbinedMaxM3s)
	}
	for _, t := range c.Thermals {
		add(shard.EntityThermal, t.ID, float64(shard.BoundGenerationMin), 0, float64(shard.BoundGenerationMax), t.CapacityMW)
	}
	for _, l := range c.Lines {
		add(shard.EntityLine, l.ID, float64(shard.BoundFlowMin), 0, float64(shard.BoundFlowMax), l.CapacityMW)
	}
	for _, p := range c.PumpingStations {
		add(shard.EntityPumpingStation, p.ID, float64(shard.BoundFlowMin), 0, float64(shard.BoundFlowMax), p.MaxFlowM3s)
	}
	for _, k := range c.Contracts {
		add(shard.EntityContract, k.ID, float64(shard.BoundFlowMin), 0, float64(shard.BoundFlowMax), k.MaxMW)
	}
	return out
}

// caseBounds returns the rows of bounds.parquet, as Cobre writes them:
// every bound of shard.EntityBounds for every entity of its type and every
// stage, defaults included; ordered by entity type (in the order of
// shard.EntityBounds: hydro, thermal, line, pumping station, contract),
// entity id, stage, bound type.
func caseBounds(c *manifest.Case) (*shard.BoundsRows, error) {
	var typeOrder []int8
	byType := map[int8][]shard.EntityBound{}
	for _, eb := range shard.EntityBounds {
		if byType[eb.EntityType] == nil {
			typeOrder = append(typeOrder, eb.EntityType)
		}
		byType[eb.EntityType] = append(byType[eb.EntityType], eb)
	}
	ents := caseBoundedEntities(c)
	slices.SortStableFunc(ents, func(a, b boundedEntity) int {
		if a.typ != b.typ {
			return slices.Index(typeOrder, a.typ) - slices.Index(typeOrder, b.typ)
		}
		return cmpInt32(a.id, b.id)
	})
	n := 0
	for _, e := range ents {
		if len(e.values) != len(byType[e.typ]) {
			return nil, fmt.Errorf("entity type %d: %d bound values for %d bound types", e.typ, len(e.values), len(byType[e.typ]))
		}
		for _, eb := range byType[e.typ] {
			if _, ok := e.values[eb.BoundType]; !ok {
				return nil, fmt.Errorf("bound type %d: no case value for entity %d of type %d", eb.BoundType, e.id, e.typ)
			}
		}
		n += len(byType[e.typ]) * c.Stages
	}
	rows := &shard.BoundsRows{
		EntityTypeCode: make([]int8, 0, n), EntityID: make([]int32, 0, n), StageID: make([]int32, 0, n),
		BoundTypeCode: make([]int8, 0, n), BoundValue: make([]float64, 0, n),
	}
	for _, e := range ents {
		for stage := range int32(c.Stages) {
			for _, eb := range byType[e.typ] {
				rows.EntityTypeCode = append(rows.EntityTypeCode, e.typ)
				rows.EntityID = append(rows.EntityID, e.id)
				rows.StageID = append(rows.StageID, stage)
				rows.BoundTypeCode = append(rows.BoundTypeCode, eb.BoundType)
				rows.BoundValue = append(rows.BoundValue, e.values[eb.BoundType])
			}
		}
	}
	// BlockID stays {Values: nil}: every bound applies to the whole stage
	// (null block_id).
	return rows, nil
}

func boundsParquet(c *manifest.Case) ([]byte, error) {
	rows, err := caseBounds(c)
	if err != nil {
		return nil, err
	}
	tr := shard.TableRows{Table: shard.Bounds, Rows: rows}
	if err := shard.CheckValues(c, tr); err != nil { // the registry's own codes and finite values
		return nil, err
	}
	var b bytes.Buffer
	if _, err := shard.NewEncoder().Encode(&b, tr, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ---------------------------------------------------------------------------
// state_dictionary.json

// stateVariable is one entry of state_dictionary.json's state_variables:
// Cobre's keys, in Cobre's order; lag_index only on inflow lags.
type stateVariable struct {
	Type       string `json:"type"`        // "storage" or "inflow_lag"
	EntityType string `json:"entity_type"` // "hydro"
	EntityID   int32  `json:"entity_id"`
	LagIndex   *int   `json:"lag_index,omitempty"`
	Unit       string `json:"unit"` // "hm3" or "m3/s"
}

// stateDictionaryDoc is state_dictionary.json: which hydro quantity each
// dimension of the policy's state vector (the cut coefficients) is. The
// array index of an entry is its dimension.
type stateDictionaryDoc struct {
	Version        string          `json:"version"`
	StateVariables []stateVariable `json:"state_variables"`
}

// stateDictionary lays out the state vector as Cobre does: one storage per
// hydro (hydros in id order, dimensions 0..H-1), then each hydro's inflow
// lags 1..InflowLagOrder, hydro-major (dimensions H..N-1). Its length is
// c.StateDimension(), the policy's state_dimension; policy.Open checks it.
func stateDictionary(c *manifest.Case) stateDictionaryDoc {
	ids := make([]int32, len(c.Hydros))
	for i, h := range c.Hydros {
		ids[i] = h.ID
	}
	slices.Sort(ids)
	d := stateDictionaryDoc{Version: dictVersion, StateVariables: make([]stateVariable, 0, c.StateDimension())}
	for _, id := range ids {
		d.StateVariables = append(d.StateVariables, stateVariable{Type: "storage", EntityType: "hydro", EntityID: id, Unit: "hm3"})
	}
	for _, id := range ids {
		for lag := 1; lag <= c.InflowLagOrder; lag++ {
			d.StateVariables = append(d.StateVariables, stateVariable{Type: "inflow_lag", EntityType: "hydro", EntityID: id, LagIndex: &lag, Unit: "m3/s"})
		}
	}
	return d
}
