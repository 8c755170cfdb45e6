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

// codesVersion is the "version" of codes.json.
const codesVersion = 1

// entitiesHeader is the header of entities.csv.
var entitiesHeader = []string{"entity_type_code", "entity_id", "name", "bus_id", "system_id"}

// variablesHeader is the header of variables.csv.
var variablesHeader = []string{"schema", "column_name", "arrow_type", "nullable", "unit", "description"}

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
	b.WriteString(strconv.Itoa(codesVersion))
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

// entity is one row of entities.csv; bus and system are empty for entities
// attached to no bus (generic constraints).
type entity struct {
	typ         int8
	id          int32
	name        string
	bus, system string
}

// caseEntities lists every entity of the case ordered by entity type code,
// then id. Buses carry their own id and system; hydros, thermals, pumping
// stations, contracts and non-controllables their bus and its system;
// lines their source bus (direct flow runs source -> target) and its
// system; generic constraints neither (empty fields, which DuckDB reads as
// NULL; so would it read an empty name).
func caseEntities(c *manifest.Case) ([]entity, error) {
	system := make(map[int32]int32, len(c.Buses))
	for _, b := range c.Buses {
		system[b.ID] = b.SystemID
	}
	itoa := func(v int32) string { return strconv.FormatInt(int64(v), 10) }
	var out []entity
	add := func(typ int8, id int32, name string, bus int32, hasBus bool) error {
		if err := checkName(name); err != nil {
			label, _ := codeLabel(shard.CodeSetEntityType, typ)
			return fmt.Errorf("%s %d: name %q: %w", label, id, name, err)
		}
		e := entity{typ: typ, id: id, name: name}
		if hasBus {
			sys, ok := system[bus]
			if !ok {
				return fmt.Errorf("entity %d refers to bus %d, which is not in the case", id, bus)
			}
			e.bus, e.system = itoa(bus), itoa(sys)
		}
		out = append(out, e)
		return nil
	}
	var err error
	for _, b := range c.Buses {
		err = errors.Join(err, add(shard.EntityBus, b.ID, b.Name, b.ID, true))
	}
	for _, h := range c.Hydros {
		err = errors.Join(err, add(shard.EntityHydro, h.ID, h.Name, h.BusID, true))
	}
	for _, t := range c.Thermals {
		err = errors.Join(err, add(shard.EntityThermal, t.ID, t.Name, t.BusID, true))
	}
	for _, l := range c.Lines {
		err = errors.Join(err, add(shard.EntityLine, l.ID, l.Name, l.SourceBusID, true))
	}
	for _, p := range c.PumpingStations {
		err = errors.Join(err, add(shard.EntityPumpingStation, p.ID, p.Name, p.BusID, true))
	}
	for _, k := range c.Contracts {
		err = errors.Join(err, add(shard.EntityContract, k.ID, k.Name, k.BusID, true))
	}
	for _, n := range c.NonControllables {
		err = errors.Join(err, add(shard.EntityNonControllable, n.ID, n.Name, n.BusID, true))
	}
	for _, g := range c.GenericConstraints {
		err = errors.Join(err, add(shard.EntityGenericConstraint, g.ID, g.Name, 0, false))
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

func entitiesCSV(c *manifest.Case) ([]byte, error) {
	ents, err := caseEntities(c)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(entitiesHeader) // a bytes.Buffer never fails; Flush reports errors
	for _, e := range ents {
		_ = w.Write([]string{strconv.Itoa(int(e.typ)), strconv.FormatInt(int64(e.id), 10), e.name, e.bus, e.system})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ---------------------------------------------------------------------------
// variables.csv

// arrowTypeNames spells Arrow types as testdata/columns.csv does.
var arrowTypeNames = map[arrow.Type]string{
	arrow.INT8:    "Int8",
	arrow.INT32:   "Int32",
	arrow.INT64:   "Int64",
	arrow.FLOAT64: "Float64",
	arrow.BOOL:    "Boolean",
}

// variablesCSV lists every column of every Parquet table of
// shard.AllTables, tables in registry order and columns in file order.
func variablesCSV() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(variablesHeader)
	for _, t := range shard.AllTables {
		for _, col := range t.Columns {
			typ, ok := arrowTypeNames[col.Type.ID()]
			if !ok {
				return nil, fmt.Errorf("%s.%s: Arrow type %s has no variables.csv spelling", t.Name, col.Name, col.Type)
			}
			_ = w.Write([]string{t.Name, col.Name, typ, strconv.FormatBool(col.Nullable), col.Unit, col.Doc})
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

// boundValues returns, per bound type code, the case's static value of
// that bound for each entity id of its entity type. The case's limits do
// not vary by stage or block: every stage gets the same value and
// block_id is null.
func boundValues(c *manifest.Case) map[int8]map[int32]float64 {
	m := map[int8]map[int32]float64{}
	set := func(code int8, id int32, v float64) {
		if m[code] == nil {
			m[code] = map[int32]float64{}
		}
		m[code][id] = v
	}
	for _, h := range c.Hydros {
		set(shard.BoundStorageMin, h.ID, h.StorageMinHm3)
		set(shard.BoundStorageMax, h.ID, h.StorageMaxHm3)
		set(shard.BoundTurbinedMax, h.ID, h.TurbinedMaxM3s)
	}
	for _, t := range c.Thermals {
		set(shard.BoundThermalGenerationMax, t.ID, t.CapacityMW)
	}
	for _, l := range c.Lines {
		set(shard.BoundLineCapacity, l.ID, l.CapacityMW)
	}
	for _, p := range c.PumpingStations {
		set(shard.BoundPumpedFlowMax, p.ID, p.MaxFlowM3s)
	}
	for _, k := range c.Contracts {
		set(shard.BoundContractPowerMax, k.ID, k.MaxMW)
	}
	for _, n := range c.NonControllables {
		set(shard.BoundNonControllableCapacity, n.ID, n.CapacityMW)
	}
	return m
}

// caseBounds returns the rows of bounds.parquet: for every entity (by
// entity type code, then id), every stage and every bound type of the
// entity's type (in code order), the bound if shard.BoundType.Listed says
// it differs from its type's default.
func caseBounds(c *manifest.Case) (*shard.BoundsRows, error) {
	values := boundValues(c)
	byEntity := map[int8][]shard.BoundType{}
	for _, bt := range shard.BoundTypes {
		byEntity[bt.EntityType] = append(byEntity[bt.EntityType], bt)
	}
	for _, bts := range byEntity {
		slices.SortFunc(bts, func(a, b shard.BoundType) int { return int(a.Code) - int(b.Code) })
	}
	ents, err := caseEntities(c)
	if err != nil {
		return nil, err
	}
	rows := &shard.BoundsRows{}
	for _, e := range ents {
		for _, bt := range byEntity[e.typ] {
			if _, ok := values[bt.Code][e.id]; !ok {
				return nil, fmt.Errorf("bound type %d (%s): no case value for entity %d of type %d", bt.Code, bt.Label, e.id, e.typ)
			}
		}
		for stage := range int32(c.Stages) {
			for _, bt := range byEntity[e.typ] {
				v := values[bt.Code][e.id]
				if !bt.Listed(v) {
					continue
				}
				rows.EntityTypeCode = append(rows.EntityTypeCode, e.typ)
				rows.EntityID = append(rows.EntityID, e.id)
				rows.StageID = append(rows.StageID, stage)
				rows.BoundTypeCode = append(rows.BoundTypeCode, bt.Code)
				rows.BoundValue = append(rows.BoundValue, v)
			}
		}
	}
	if rows.EntityTypeCode == nil { // zero rows: every column must still be a (empty) slice
		rows.EntityTypeCode, rows.EntityID, rows.StageID = []int8{}, []int32{}, []int32{}
		rows.BoundTypeCode, rows.BoundValue = []int8{}, []float64{}
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
	var b bytes.Buffer
	if _, err := shard.NewEncoder().Encode(&b, shard.TableRows{Table: shard.Bounds, Rows: rows}, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ---------------------------------------------------------------------------
// state_dictionary.json

// storageState is one storage entry of state_dictionary.json.
type storageState struct {
	HydroID        int32  `json:"hydro_id"`
	DimensionIndex int    `json:"dimension_index"`
	Unit           string `json:"unit"`
}

// inflowLagState is one inflow-lag entry of state_dictionary.json.
type inflowLagState struct {
	HydroID        int32  `json:"hydro_id"`
	LagIndex       int    `json:"lag_index"`
	DimensionIndex int    `json:"dimension_index"`
	Unit           string `json:"unit"`
}

// stateDictionaryDoc is state_dictionary.json: which hydro quantity each
// dimension of the policy's state vector (the cut coefficients) is.
type stateDictionaryDoc struct {
	StateDimension  int              `json:"state_dimension"`
	StorageStates   []storageState   `json:"storage_states"`
	InflowLagStates []inflowLagState `json:"inflow_lag_states"`
}

// stateDictionary lays out the state vector: storages first (hydros in id
// order, dimensions 0..H-1), then inflow lags hydro-major (hydros in id
// order, lags 1..InflowLagOrder), dimensions H..N-1.
func stateDictionary(c *manifest.Case) stateDictionaryDoc {
	ids := make([]int32, len(c.Hydros))
	for i, h := range c.Hydros {
		ids[i] = h.ID
	}
	slices.Sort(ids)
	d := stateDictionaryDoc{
		StateDimension:  c.StateDimension(),
		StorageStates:   make([]storageState, 0, len(ids)),
		InflowLagStates: make([]inflowLagState, 0, len(ids)*c.InflowLagOrder),
	}
	dim := 0
	for _, id := range ids {
		d.StorageStates = append(d.StorageStates, storageState{HydroID: id, DimensionIndex: dim, Unit: "hm3"})
		dim++
	}
	for _, id := range ids {
		for lag := 1; lag <= c.InflowLagOrder; lag++ {
			d.InflowLagStates = append(d.InflowLagStates, inflowLagState{HydroID: id, LagIndex: lag, DimensionIndex: dim, Unit: "m3s"})
			dim++
		}
	}
	return d
}
