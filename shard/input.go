package shard

// The input types below are what a solver hands to the writer: one Go slice
// per column, all of the same length, no derived columns. The writer wraps
// the slices as Arrow buffers without copying, so the caller must not modify
// them until the call that receives them returns.
//
// Each field's `col` tag names its column in the registry; a test checks
// that every non-derived column of every table has exactly one field.
//
// Meaning and units: each column's unit is the suffix of its name and of
// its field (_mw: MW, _mwh: MWh, _m3s: m3/s, _hm3: hm3, _per_mwh: per MWh;
// costs are in the case's currency, per stage or block as the row says),
// and docs/tables.md describes every column (the registry's Column.Doc
// and Column.Unit say the same, and variables.csv is built from them).
// Ids: StageID and BlockID count from 0 (stages 0..Case.Stages-1, blocks
// 0..len(Case.Hours)-1; a null BlockID is a stage-level row); entity
// ids (HydroID, LineID, ...) are the ids the case gives its entities, not
// positions, and must be ids of the case (CheckValues refuses others).
//
// Code fields hold the constants of codes.go, Cobre's tables, and nothing
// else (CheckValues refuses another value): OperativeStateCode one of
// OperativeDeactivated, OperativeMaintenance, OperativeOperating (the
// ordinary row: a zero-filled slice says "deactivated") and
// OperativeSaturated; StorageBindingCode one of StorageBindingNone,
// StorageBindingBelowMinimum, StorageBindingAboveMaximum and
// StorageBindingBoth.

// NullInt32 is a nullable int32 column. Valid == nil means every row is
// valid; Values == nil means every row is null.
type NullInt32 struct {
	Values []int32
	Valid  []bool
}

// NullFloat64 is a nullable float64 column. Valid == nil means every row is
// valid; Values == nil means every row is null.
type NullFloat64 struct {
	Values []float64
	Valid  []bool
}

// CostsRows holds the costs table of one scenario (normally one row per
// stage with a null BlockID).
type CostsRows struct {
	StageID                   []int32   `col:"stage_id"`
	BlockID                   NullInt32 `col:"block_id"`
	TotalCost                 []float64 `col:"total_cost"`
	ImmediateCost             []float64 `col:"immediate_cost"`
	FutureCost                []float64 `col:"future_cost"`
	DiscountFactor            []float64 `col:"discount_factor"`
	ThermalCost               []float64 `col:"thermal_cost"`
	ContractCost              []float64 `col:"contract_cost"`
	DeficitCost               []float64 `col:"deficit_cost"`
	ExcessCost                []float64 `col:"excess_cost"`
	StorageViolationCost      []float64 `col:"storage_violation_cost"`
	FillingTargetCost         []float64 `col:"filling_target_cost"`
	HydroViolationCost        []float64 `col:"hydro_violation_cost"`
	OutflowViolationBelowCost []float64 `col:"outflow_violation_below_cost"`
	OutflowViolationAboveCost []float64 `col:"outflow_violation_above_cost"`
	TurbinedViolationCost     []float64 `col:"turbined_violation_cost"`
	GenerationViolationCost   []float64 `col:"generation_violation_cost"`
	EvaporationViolationCost  []float64 `col:"evaporation_violation_cost"`
	WithdrawalViolationCost   []float64 `col:"withdrawal_violation_cost"`
	InflowPenaltyCost         []float64 `col:"inflow_penalty_cost"`
	GenericViolationCost      []float64 `col:"generic_violation_cost"`
	SpillageCost              []float64 `col:"spillage_cost"`
	FphaTurbinedCost          []float64 `col:"fpha_turbined_cost"`
	CurtailmentCost           []float64 `col:"curtailment_cost"`
	ExchangeCost              []float64 `col:"exchange_cost"`
	PumpingCost               []float64 `col:"pumping_cost"`
}

// HydrosRows holds the hydros table of one scenario.
type HydrosRows struct {
	StageID                        []int32     `col:"stage_id"`
	BlockID                        NullInt32   `col:"block_id"`
	HydroID                        []int32     `col:"hydro_id"`
	TurbinedM3s                    []float64   `col:"turbined_m3s"`
	SpillageM3s                    []float64   `col:"spillage_m3s"`
	EvaporationM3s                 NullFloat64 `col:"evaporation_m3s"`
	DivertedInflowM3s              NullFloat64 `col:"diverted_inflow_m3s"`
	DivertedOutflowM3s             NullFloat64 `col:"diverted_outflow_m3s"`
	IncrementalInflowM3s           []float64   `col:"incremental_inflow_m3s"`
	InflowM3s                      []float64   `col:"inflow_m3s"`
	StorageInitialHm3              []float64   `col:"storage_initial_hm3"`
	StorageFinalHm3                []float64   `col:"storage_final_hm3"`
	GenerationMW                   []float64   `col:"generation_mw"`
	ProductivityMWPerM3s           NullFloat64 `col:"productivity_mw_per_m3s"`
	SpillageCost                   []float64   `col:"spillage_cost"`
	WaterValuePerHm3               []float64   `col:"water_value_per_hm3"`
	StorageBindingCode             []int8      `col:"storage_binding_code"`
	OperativeStateCode             []int8      `col:"operative_state_code"`
	TurbinedSlackM3s               []float64   `col:"turbined_slack_m3s"`
	OutflowSlackBelowM3s           []float64   `col:"outflow_slack_below_m3s"`
	OutflowSlackAboveM3s           []float64   `col:"outflow_slack_above_m3s"`
	GenerationSlackMW              []float64   `col:"generation_slack_mw"`
	StorageViolationBelowHm3       []float64   `col:"storage_violation_below_hm3"`
	FillingTargetViolationHm3      []float64   `col:"filling_target_violation_hm3"`
	EvaporationViolationPosM3s     []float64   `col:"evaporation_violation_pos_m3s"`
	EvaporationViolationNegM3s     []float64   `col:"evaporation_violation_neg_m3s"`
	InflowNonnegativitySlackM3s    []float64   `col:"inflow_nonnegativity_slack_m3s"`
	WaterWithdrawalViolationPosM3s []float64   `col:"water_withdrawal_violation_pos_m3s"`
	WaterWithdrawalViolationNegM3s []float64   `col:"water_withdrawal_violation_neg_m3s"`
}

// ThermalsRows holds the thermals table of one scenario.
type ThermalsRows struct {
	StageID            []int32     `col:"stage_id"`
	BlockID            NullInt32   `col:"block_id"`
	ThermalID          []int32     `col:"thermal_id"`
	GenerationMW       []float64   `col:"generation_mw"`
	GenerationCost     []float64   `col:"generation_cost"`
	IsGNL              []bool      `col:"is_gnl"`
	GNLCommittedMW     NullFloat64 `col:"gnl_committed_mw"`
	GNLDecisionMW      NullFloat64 `col:"gnl_decision_mw"`
	OperativeStateCode []int8      `col:"operative_state_code"`
}

// ExchangesRows holds the exchanges table of one scenario. Net flow and
// losses are derived from the flows and the line's loss fraction.
type ExchangesRows struct {
	StageID            []int32   `col:"stage_id"`
	BlockID            NullInt32 `col:"block_id"`
	LineID             []int32   `col:"line_id"`
	DirectFlowMW       []float64 `col:"direct_flow_mw"`
	ReverseFlowMW      []float64 `col:"reverse_flow_mw"`
	ExchangeCost       []float64 `col:"exchange_cost"`
	OperativeStateCode []int8    `col:"operative_state_code"`
}

// BusesRows holds the buses table of one scenario.
type BusesRows struct {
	StageID   []int32   `col:"stage_id"`
	BlockID   NullInt32 `col:"block_id"`
	BusID     []int32   `col:"bus_id"`
	LoadMW    []float64 `col:"load_mw"`
	DeficitMW []float64 `col:"deficit_mw"`
	ExcessMW  []float64 `col:"excess_mw"`
	SpotPrice []float64 `col:"spot_price"`
}

// PumpingStationsRows holds the pumping_stations table of one scenario.
type PumpingStationsRows struct {
	StageID            []int32   `col:"stage_id"`
	BlockID            NullInt32 `col:"block_id"`
	PumpingStationID   []int32   `col:"pumping_station_id"`
	PumpedFlowM3s      []float64 `col:"pumped_flow_m3s"`
	PowerConsumptionMW []float64 `col:"power_consumption_mw"`
	PumpingCost        []float64 `col:"pumping_cost"`
	OperativeStateCode []int8    `col:"operative_state_code"`
}

// ContractsRows holds the contracts table of one scenario.
type ContractsRows struct {
	StageID            []int32   `col:"stage_id"`
	BlockID            NullInt32 `col:"block_id"`
	ContractID         []int32   `col:"contract_id"`
	PowerMW            []float64 `col:"power_mw"`
	PricePerMWh        []float64 `col:"price_per_mwh"`
	TotalCost          []float64 `col:"total_cost"`
	OperativeStateCode []int8    `col:"operative_state_code"`
}

// NonControllablesRows holds the non_controllables table of one scenario.
type NonControllablesRows struct {
	StageID            []int32   `col:"stage_id"`
	BlockID            NullInt32 `col:"block_id"`
	NonControllableID  []int32   `col:"non_controllable_id"`
	GenerationMW       []float64 `col:"generation_mw"`
	AvailableMW        []float64 `col:"available_mw"`
	CurtailmentMW      []float64 `col:"curtailment_mw"`
	CurtailmentCost    []float64 `col:"curtailment_cost"`
	OperativeStateCode []int8    `col:"operative_state_code"`
}

// InflowLagsRows holds the inflow_lags table of one scenario (stage level,
// no block).
type InflowLagsRows struct {
	StageID   []int32   `col:"stage_id"`
	HydroID   []int32   `col:"hydro_id"`
	LagIndex  []int32   `col:"lag_index"`
	InflowM3s []float64 `col:"inflow_m3s"`
}

// GenericViolationsRows holds the violations/generic table of one scenario.
type GenericViolationsRows struct {
	StageID      []int32   `col:"stage_id"`
	BlockID      NullInt32 `col:"block_id"`
	ConstraintID []int32   `col:"constraint_id"`
	SlackValue   []float64 `col:"slack_value"`
	SlackCost    []float64 `col:"slack_cost"`
}

// Scenario is every table of one simulated scenario. A nil table is not
// written (its entity type is absent from the case); Costs is required.
type Scenario struct {
	ID                int
	Costs             *CostsRows
	Hydros            *HydrosRows
	Thermals          *ThermalsRows
	Exchanges         *ExchangesRows
	Buses             *BusesRows
	PumpingStations   *PumpingStationsRows
	Contracts         *ContractsRows
	NonControllables  *NonControllablesRows
	InflowLags        *InflowLagsRows
	GenericViolations *GenericViolationsRows
}

// Tables returns the tables present in the scenario paired with their
// registry entries, in registry order.
func (s *Scenario) Tables() []TableRows {
	var out []TableRows
	add := func(t *Table, rows any, present bool) {
		if present {
			out = append(out, TableRows{Table: t, Rows: rows})
		}
	}
	add(Costs, s.Costs, s.Costs != nil)
	add(Hydros, s.Hydros, s.Hydros != nil)
	add(Thermals, s.Thermals, s.Thermals != nil)
	add(Exchanges, s.Exchanges, s.Exchanges != nil)
	add(Buses, s.Buses, s.Buses != nil)
	add(PumpingStations, s.PumpingStations, s.PumpingStations != nil)
	add(Contracts, s.Contracts, s.Contracts != nil)
	add(NonControllables, s.NonControllables, s.NonControllables != nil)
	add(InflowLags, s.InflowLags, s.InflowLags != nil)
	add(GenericViolations, s.GenericViolations, s.GenericViolations != nil)
	return out
}

// TableRows pairs a table with a pointer to its rows struct (*HydrosRows...).
type TableRows struct {
	Table *Table
	Rows  any
}
