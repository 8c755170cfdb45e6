package shard

import (
	"encoding/csv"
	"os"
	"reflect"
	"strconv"
	"testing"
)

// TestSchemasMatchColumnsCSV checks every table against the contract in
// testdata/columns.csv: same tables, same columns in the same order, same
// Arrow types and nullability.
func TestSchemasMatchColumnsCSV(t *testing.T) {
	f, err := os.Open("../testdata/columns.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0]; !reflect.DeepEqual(got, []string{"table", "column", "arrow_type", "nullable"}) {
		t.Fatalf("columns.csv header %v", got)
	}
	want := map[string][][3]string{}
	var order []string
	for _, r := range rows[1:] {
		if _, ok := want[r[0]]; !ok {
			order = append(order, r[0])
		}
		want[r[0]] = append(want[r[0]], [3]string{r[1], r[2], r[3]})
	}
	if len(order) != len(AllTables) {
		t.Errorf("columns.csv has %d tables, registry has %d", len(order), len(AllTables))
	}
	for _, tbl := range AllTables {
		cols, ok := want[tbl.Name]
		if !ok {
			t.Errorf("table %s not in columns.csv", tbl.Name)
			continue
		}
		fields := tbl.Schema().Fields()
		if len(fields) != len(cols) {
			t.Errorf("%s: %d columns, columns.csv has %d", tbl.Name, len(fields), len(cols))
			continue
		}
		for i, fld := range fields {
			if fld.Name != cols[i][0] {
				t.Errorf("%s column %d: %s, want %s", tbl.Name, i, fld.Name, cols[i][0])
			}
			if got := arrowTypeName(fld.Type.String()); got != cols[i][1] {
				t.Errorf("%s.%s: type %s, want %s", tbl.Name, fld.Name, got, cols[i][1])
			}
			if got := strconv.FormatBool(fld.Nullable); got != cols[i][2] {
				t.Errorf("%s.%s: nullable %s, want %s", tbl.Name, fld.Name, got, cols[i][2])
			}
		}
	}
	for i, tbl := range SimulationTables {
		if tbl.Name != order[i] {
			t.Errorf("simulation table %d is %s, columns.csv order says %s", i, tbl.Name, order[i])
		}
	}
}

func arrowTypeName(s string) string {
	switch s {
	case "int8":
		return "Int8"
	case "int32":
		return "Int32"
	case "int64":
		return "Int64"
	case "float64":
		return "Float64"
	case "bool":
		return "Boolean"
	}
	return s
}

// TestColumnDocs: every column has a description (variables.csv needs it),
// and every Float64 measure has a unit.
func TestColumnDocs(t *testing.T) {
	for _, tbl := range AllTables {
		for _, c := range tbl.Columns {
			if c.Doc == "" {
				t.Errorf("%s.%s has no description", tbl.Name, c.Name)
			}
			if c.Type == f64 && c.Unit == "" && tbl != GenericViolations && tbl != Bounds {
				t.Errorf("%s.%s (float) has no unit", tbl.Name, c.Name)
			}
		}
	}
}

// TestRowsStructsCoverColumns: each rows struct supplies exactly the
// non-derived columns of its table, with the Go type the column needs.
func TestRowsStructsCoverColumns(t *testing.T) {
	s := &Scenario{Costs: &CostsRows{}, Hydros: &HydrosRows{}, Thermals: &ThermalsRows{}, Exchanges: &ExchangesRows{},
		Buses: &BusesRows{}, PumpingStations: &PumpingStationsRows{}, Contracts: &ContractsRows{},
		NonControllables: &NonControllablesRows{}, InflowLags: &InflowLagsRows{}, GenericViolations: &GenericViolationsRows{}}
	tables := s.Tables()
	if len(tables) != len(SimulationTables) {
		t.Fatalf("Scenario.Tables() gives %d tables, want %d", len(tables), len(SimulationTables))
	}
	tables = append(tables, TableRows{Convergence, &ConvergenceRows{}}, TableRows{TimingIterations, &TimingIterationsRows{}},
		TableRows{TimingMPIRanks, &TimingMPIRanksRows{}}, TableRows{Bounds, &BoundsRows{}})
	if len(tables) != len(AllTables) {
		t.Fatalf("Scenario.Tables() gives %d tables, want %d", len(tables), len(SimulationTables))
	}
	for i, tr := range tables {
		if tr.Table != AllTables[i] {
			t.Errorf("table %d is %s, want %s", i, tr.Table.Name, AllTables[i].Name)
		}
		typ := reflect.TypeOf(tr.Rows).Elem()
		binds, err := bind(tr.Table, typ)
		if err != nil {
			t.Errorf("%s: %v", tr.Table.Name, err)
			continue
		}
		covered := map[int]int{}
		for _, b := range binds {
			covered[b.col]++
		}
		for j, c := range tr.Table.Columns {
			switch {
			case c.Derived && covered[j] > 0:
				t.Errorf("%s.%s is derived but %s supplies it", tr.Table.Name, c.Name, typ.Name())
			case !c.Derived && covered[j] != 1:
				t.Errorf("%s.%s supplied by %d fields of %s, want 1", tr.Table.Name, c.Name, covered[j], typ.Name())
			}
		}
	}
}
