// Package shard owns the Parquet side of hydroshard: the Arrow schema of
// every table, the documentation and unit of every column, the derived
// columns the writer computes, and the Parquet encoding settings. It
// encodes to an io.Writer and does no file I/O of its own: durable files
// are package vfs's (internal/archtest checks).
package shard

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Column describes one column of a table. The registry below is the single
// source of truth: Arrow schemas, the Parquet dictionary settings and
// variables.csv are all generated from it, so they cannot drift apart.
// Unit is the column's physical unit; variables.csv writes Cobre's unit
// string, which differs on a few columns (merge's cobreUnits,
// docs/cobre.md).
type Column struct {
	Name     string
	Type     arrow.DataType
	Nullable bool
	Unit     string
	Doc      string
	// Derived columns are computed by the writer from other columns and the
	// case (block hours, line losses); callers never supply them.
	Derived bool
	derive  derivation
	// Dict marks id/code columns (few distinct values), the only ones
	// where dictionary encoding was ever worth trying; the writer uses
	// none (see defaultEncOptions), and on float columns it cost ~40%.
	Dict bool
	// Plain keeps a float64 column PLAIN instead of BYTE_STREAM_SPLIT: its
	// values recur at a distance (a block's initial storage is the previous
	// block's final storage), which zstd finds as 8-byte matches in PLAIN
	// and cannot once the bytes are split into streams. Measured on
	// production hydros: storage_initial/final and inflow are 6-20% smaller
	// PLAIN; the other dense float columns are 1-11% smaller split, and
	// compress faster. Mostly-zero columns are detected per file (see
	// floatLayout in encode.go). The writer does not follow this flag any
	// more (speed over 2.9% of bytes, see defaultEncOptions); it stays as
	// the record of the measurement, used by the exploration harness.
	Plain bool
}

// Table is one Parquet table: its path relative to the output directory
// (for simulation tables, the directory that holds the scenario partitions)
// and its columns in on-disk order.
type Table struct {
	Name    string // e.g. "simulation/hydros"
	Entity  string // e.g. "hydros", "violations/generic"; empty for non-simulation tables
	Columns []Column
	schema  *arrow.Schema
}

// Schema returns the Arrow schema of the table.
func (t *Table) Schema() *arrow.Schema { return t.schema }

// Column returns the named column and whether it exists.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

var (
	i8  = arrow.PrimitiveTypes.Int8
	i32 = arrow.PrimitiveTypes.Int32
	i64 = arrow.PrimitiveTypes.Int64
	f64 = arrow.PrimitiveTypes.Float64
	bln = arrow.FixedWidthTypes.Boolean
)

func col(name string, t arrow.DataType, unit, doc string) Column {
	return Column{Name: name, Type: t, Unit: unit, Doc: doc}
}

func (c Column) null() Column { c.Nullable = true; return c }
func (c Column) derived(op deriveOp, args ...string) Column {
	c.Derived = true
	c.derive = derivation{op: op, args: args}
	return c
}
func (c Column) dict() Column  { c.Dict = true; return c }
func (c Column) plain() Column { c.Plain = true; return c }

var (
	stageID = col("stage_id", i32, "", "Stage index (0-based) of the planning horizon").dict()
	blockID = col("block_id", i32, "", "Load block within the stage; null for stage-level rows").null().dict()
	opState = col("operative_state_code", i8, "", "Operative state code (see codes.json operative_state)").dict()
)

func entityID(name, what string) Column {
	return col(name, i32, "", "Identifier of the "+what+" (see entities.csv)").dict()
}

// Simulation tables, in the order Cobre writes them.
var (
	Costs = newTable("simulation/costs", "costs",
		stageID, blockID,
		col("total_cost", f64, "$", "Immediate plus future cost of the stage"),
		col("immediate_cost", f64, "$", "Sum of the stage's cost components (undiscounted)"),
		col("future_cost", f64, "$", "Expected cost-to-go at the end of the stage (future cost function value)"),
		col("discount_factor", f64, "1", "Discount factor applied to the stage's immediate cost"),
		col("thermal_cost", f64, "$", "Thermal generation cost"),
		col("contract_cost", f64, "$", "Net cost of energy contracts"),
		col("deficit_cost", f64, "$", "Cost of unserved load"),
		col("excess_cost", f64, "$", "Cost of excess generation"),
		col("storage_violation_cost", f64, "$", "Penalty for storage below its minimum"),
		col("filling_target_cost", f64, "$", "Penalty for missing the filling target"),
		col("hydro_violation_cost", f64, "$", "Penalty for other hydro operating violations"),
		col("outflow_violation_below_cost", f64, "$", "Penalty for outflow below its minimum"),
		col("outflow_violation_above_cost", f64, "$", "Penalty for outflow above its maximum"),
		col("turbined_violation_cost", f64, "$", "Penalty for turbined flow outside its bounds"),
		col("generation_violation_cost", f64, "$", "Penalty for hydro generation outside its bounds"),
		col("evaporation_violation_cost", f64, "$", "Penalty for evaporation balance violations"),
		col("withdrawal_violation_cost", f64, "$", "Penalty for water withdrawal violations"),
		col("inflow_penalty_cost", f64, "$", "Penalty for negative-inflow slack"),
		col("generic_violation_cost", f64, "$", "Penalty for generic constraint violations"),
		col("spillage_cost", f64, "$", "Spillage cost"),
		col("fpha_turbined_cost", f64, "$", "Regularisation cost on turbined flow in the hydro production function"),
		col("curtailment_cost", f64, "$", "Cost of curtailed non-controllable generation"),
		col("exchange_cost", f64, "$", "Cost of power exchanges between buses"),
		col("pumping_cost", f64, "$", "Pumping cost"),
	)
	Hydros = newTable("simulation/hydros", "hydros",
		stageID, blockID, entityID("hydro_id", "hydro plant"),
		col("turbined_m3s", f64, "m3/s", "Turbined flow"),
		col("spillage_m3s", f64, "m3/s", "Spilled flow"),
		col("outflow_m3s", f64, "m3/s", "Total outflow = turbined + spillage").derived(opSum, "turbined_m3s", "spillage_m3s"),
		col("evaporation_m3s", f64, "m3/s", "Evaporated flow; null where evaporation is not modelled").null(),
		col("diverted_inflow_m3s", f64, "m3/s", "Flow diverted into the reservoir; null without diversion").null(),
		col("diverted_outflow_m3s", f64, "m3/s", "Flow diverted out of the reservoir; null without diversion").null(),
		col("incremental_inflow_m3s", f64, "m3/s", "Natural incremental inflow of the scenario"),
		col("inflow_m3s", f64, "m3/s", "Total inflow: incremental plus upstream outflows").plain(),
		col("storage_initial_hm3", f64, "hm3", "Stored volume at the start of the block").plain(),
		col("storage_final_hm3", f64, "hm3", "Stored volume at the end of the block").plain(),
		col("generation_mw", f64, "MW", "Hydro generation"),
		col("generation_mwh", f64, "MWh", "Hydro energy = generation_mw x block hours").derived(opEnergy, "generation_mw"),
		col("productivity_mw_per_m3s", f64, "MW/(m3/s)", "Productivity used in the block; null where the production function is not linear").null(),
		col("spillage_cost", f64, "$", "Cost of the spilled flow"),
		col("water_value_per_hm3", f64, "$/hm3", "Marginal value of stored water (dual of the water balance)"),
		col("storage_binding_code", i8, "", "Which storage bound binds (see codes.json storage_binding)").dict(),
		opState,
		col("turbined_slack_m3s", f64, "m3/s", "Slack on the turbined flow bounds"),
		col("outflow_slack_below_m3s", f64, "m3/s", "Slack below the minimum outflow"),
		col("outflow_slack_above_m3s", f64, "m3/s", "Slack above the maximum outflow"),
		col("generation_slack_mw", f64, "MW", "Slack on the generation bounds"),
		col("storage_violation_below_hm3", f64, "hm3", "Storage below its minimum"),
		col("filling_target_violation_hm3", f64, "hm3", "Shortfall from the filling target"),
		col("evaporation_violation_pos_m3s", f64, "m3/s", "Positive evaporation balance slack"),
		col("evaporation_violation_neg_m3s", f64, "m3/s", "Negative evaporation balance slack"),
		col("inflow_nonnegativity_slack_m3s", f64, "m3/s", "Slack that keeps the inflow non-negative"),
		col("water_withdrawal_violation_pos_m3s", f64, "m3/s", "Withdrawal above its target"),
		col("water_withdrawal_violation_neg_m3s", f64, "m3/s", "Withdrawal below its target"),
	)
	Thermals = newTable("simulation/thermals", "thermals",
		stageID, blockID, entityID("thermal_id", "thermal plant"),
		col("generation_mw", f64, "MW", "Thermal generation"),
		col("generation_mwh", f64, "MWh", "Thermal energy = generation_mw x block hours").derived(opEnergy, "generation_mw"),
		col("generation_cost", f64, "$", "Generation cost in the block"),
		col("is_gnl", bln, "", "Whether the plant is LNG-dispatched with commitment lead time"),
		col("gnl_committed_mw", f64, "MW", "Generation committed in advance (LNG plants only)").null(),
		col("gnl_decision_mw", f64, "MW", "Commitment decided for future stages (LNG plants only)").null(),
		opState,
	)
	Exchanges = newTable("simulation/exchanges", "exchanges",
		stageID, blockID, entityID("line_id", "transmission line"),
		col("direct_flow_mw", f64, "MW", "Flow from the line's source bus to its target bus"),
		col("reverse_flow_mw", f64, "MW", "Flow from the target bus to the source bus"),
		col("net_flow_mw", f64, "MW", "direct - reverse").derived(opDiff, "direct_flow_mw", "reverse_flow_mw"),
		col("net_flow_mwh", f64, "MWh", "net_flow_mw x block hours").derived(opEnergy, "net_flow_mw"),
		col("losses_mw", f64, "MW", "Loss fraction x (direct + reverse)").derived(opLosses, "direct_flow_mw", "reverse_flow_mw"),
		col("losses_mwh", f64, "MWh", "losses_mw x block hours").derived(opEnergy, "losses_mw"),
		col("exchange_cost", f64, "$", "Cost of the exchange in the block"),
		opState,
	)
	Buses = newTable("simulation/buses", "buses",
		stageID, blockID, entityID("bus_id", "bus"),
		col("load_mw", f64, "MW", "Load to be served"),
		col("load_mwh", f64, "MWh", "load_mw x block hours").derived(opEnergy, "load_mw"),
		col("deficit_mw", f64, "MW", "Unserved load"),
		col("deficit_mwh", f64, "MWh", "deficit_mw x block hours").derived(opEnergy, "deficit_mw"),
		col("excess_mw", f64, "MW", "Generation above load that had to be absorbed"),
		col("excess_mwh", f64, "MWh", "excess_mw x block hours").derived(opEnergy, "excess_mw"),
		col("spot_price", f64, "$/MWh", "Marginal cost of load (dual of the bus balance)"),
	)
	PumpingStations = newTable("simulation/pumping_stations", "pumping_stations",
		stageID, blockID, entityID("pumping_station_id", "pumping station"),
		col("pumped_flow_m3s", f64, "m3/s", "Pumped flow"),
		col("pumped_volume_hm3", f64, "hm3", "pumped_flow_m3s x block hours x 3600 / 1e6").derived(opVolume, "pumped_flow_m3s"),
		col("power_consumption_mw", f64, "MW", "Electric power drawn by the pumps"),
		col("energy_consumption_mwh", f64, "MWh", "power_consumption_mw x block hours").derived(opEnergy, "power_consumption_mw"),
		col("pumping_cost", f64, "$", "Pumping cost in the block"),
		opState,
	)
	Contracts = newTable("simulation/contracts", "contracts",
		stageID, blockID, entityID("contract_id", "energy contract"),
		col("power_mw", f64, "MW", "Contracted power (positive import, negative export)"),
		col("energy_mwh", f64, "MWh", "power_mw x block hours").derived(opEnergy, "power_mw"),
		col("price_per_mwh", f64, "$/MWh", "Contract price"),
		col("total_cost", f64, "$", "Net cost of the contract in the block"),
		opState,
	)
	NonControllables = newTable("simulation/non_controllables", "non_controllables",
		stageID, blockID, entityID("non_controllable_id", "non-controllable source"),
		col("generation_mw", f64, "MW", "Generation dispatched"),
		col("generation_mwh", f64, "MWh", "generation_mw x block hours").derived(opEnergy, "generation_mw"),
		col("available_mw", f64, "MW", "Generation available in the scenario"),
		col("curtailment_mw", f64, "MW", "Available generation not used"),
		col("curtailment_mwh", f64, "MWh", "curtailment_mw x block hours").derived(opEnergy, "curtailment_mw"),
		col("curtailment_cost", f64, "$", "Cost of the curtailment"),
		opState,
	)
	InflowLags = newTable("simulation/inflow_lags", "inflow_lags",
		stageID, entityID("hydro_id", "hydro plant"),
		col("lag_index", i32, "", "Lag of the autoregressive inflow model (1 = previous stage)").dict(),
		col("inflow_m3s", f64, "m3/s", "Inflow of the lagged stage carried as state"),
	)
	GenericViolations = newTable("simulation/violations/generic", "violations/generic",
		stageID, blockID, entityID("constraint_id", "generic constraint"),
		col("slack_value", f64, "", "Violation of the generic constraint (constraint units)"),
		col("slack_cost", f64, "$", "Penalty paid for the violation"),
	)
)

// Training tables and the bounds dictionary. variables.csv lists the
// training tables; the bounds dictionary is in the registry for its schema
// and encoding, and, as in Cobre, is not listed there.
var (
	Convergence = newTable("training/convergence", "",
		col("iteration", i32, "", "Training iteration (1-based)"),
		col("lower_bound", f64, "$", "Lower bound: first-stage objective with the current cuts"),
		col("upper_bound_mean", f64, "$", "Mean total cost over the iteration's forward passes"),
		col("upper_bound_std", f64, "$", "Standard deviation of the forward-pass total costs"),
		col("gap_percent", f64, "%", "(upper_bound_mean - lower_bound) / |upper_bound_mean| x 100; null when undefined").null(),
		col("cuts_added", i32, "", "Cuts added in the iteration"),
		col("cuts_removed", i32, "", "Cuts removed by cut selection in the iteration"),
		col("cuts_active", i64, "", "Cuts active after the iteration"),
		col("time_forward_ms", i64, "ms", "Wall time of the forward pass"),
		col("time_backward_ms", i64, "ms", "Wall time of the backward pass"),
		col("time_total_ms", i64, "ms", "Wall time of the iteration"),
		col("forward_passes", i32, "", "Forward passes (scenarios) in the iteration"),
		col("lp_solves", i64, "", "LP solves in the iteration, all ranks"),
	)
	TimingIterations = newTable("training/timing/iterations", "",
		col("iteration", i32, "", "Training iteration"),
		col("rank", i32, "", "Rank; null for job-level rows").null(),
		col("worker_id", i32, "", "Worker thread within the rank; null for rank-level rows").null(),
		col("forward_wall_ms", i64, "ms", "Forward pass wall time"),
		col("backward_wall_ms", i64, "ms", "Backward pass wall time"),
		col("cut_selection_ms", i64, "ms", "Cut selection time"),
		col("mpi_allreduce_ms", i64, "ms", "Time in allreduce collectives"),
		col("cut_sync_ms", i64, "ms", "Time synchronising cuts between ranks"),
		col("lower_bound_ms", i64, "ms", "Time evaluating the lower bound"),
		col("state_exchange_ms", i64, "ms", "Time exchanging trial states"),
		col("cut_batch_build_ms", i64, "ms", "Time building cut batches"),
		col("bwd_setup_ms", i64, "ms", "Backward pass setup time"),
		col("bwd_load_imbalance_ms", i64, "ms", "Backward pass time waiting on other workers"),
		col("bwd_scheduling_overhead_ms", i64, "ms", "Backward pass scheduling overhead"),
		col("fwd_setup_ms", i64, "ms", "Forward pass setup time"),
		col("fwd_load_imbalance_ms", i64, "ms", "Forward pass time waiting on other workers"),
		col("fwd_scheduling_overhead_ms", i64, "ms", "Forward pass scheduling overhead"),
		col("overhead_ms", i64, "ms", "Other overhead"),
	)
	TimingMPIRanks = newTable("training/timing/mpi_ranks", "",
		col("iteration", i32, "", "Training iteration"),
		col("rank", i32, "", "Rank"),
		col("forward_time_ms", i64, "ms", "Forward pass time on the rank"),
		col("backward_time_ms", i64, "ms", "Backward pass time on the rank"),
		col("communication_time_ms", i64, "ms", "Time in communication"),
		col("idle_time_ms", i64, "ms", "Time idle waiting for other ranks"),
		col("lp_solves", i64, "", "LP solves on the rank"),
		col("scenarios_processed", i32, "", "Forward scenarios processed by the rank"),
	)
	Bounds = newTable("training/dictionaries/bounds", "",
		col("entity_type_code", i8, "", "Entity type code (see codes.json entity_type)").dict(),
		col("entity_id", i32, "", "Entity identifier (see entities.csv)").dict(),
		col("stage_id", i32, "", "Stage index").dict(),
		col("block_id", i32, "", "Load block; null when the bound applies to the whole stage").null().dict(),
		col("bound_type_code", i8, "", "Bound type code (see codes.json bound_type)").dict(),
		col("bound_value", f64, "", "Bound value in the unit of the bounded variable"),
	)
)

// SimulationTables lists the ten per-scenario tables in Cobre's order.
var SimulationTables = []*Table{Costs, Hydros, Thermals, Exchanges, Buses, PumpingStations, Contracts, NonControllables, InflowLags, GenericViolations}

// AllTables lists every Parquet table the project writes.
var AllTables = append(append([]*Table{}, SimulationTables...), Convergence, TimingIterations, TimingMPIRanks, Bounds)

// TableByEntity returns the simulation table of an entity directory name
// such as "hydros" or "violations/generic".
func TableByEntity(entity string) (*Table, error) {
	for _, t := range SimulationTables {
		if t.Entity == entity {
			return t, nil
		}
	}
	return nil, fmt.Errorf("shard: unknown entity table %q", entity)
}

func newTable(name, entity string, cols ...Column) *Table {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Type, Nullable: c.Nullable}
	}
	return &Table{Name: name, Entity: entity, Columns: cols, schema: arrow.NewSchema(fields, nil)}
}
