package main

// Process tests of the merge's training outputs: real simrank ranks run a
// training phase (and, unless killed, a simulation), a real merge-shards
// merges them, and every expectation is computed here, from the training
// journals (read with manifest.ReadJournalFile), from the Parquet files
// (read with arrow-go's file/pqarrow reader) and, where node and DuckDB are
// installed, from DuckDB SQL over the same files.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/vfs"
)

// The training runs of these tests: K iterations of F forward passes, W
// solver threads per rank, on the tiny case.
const (
	trainK         = 8
	trainF         = 6
	trainW         = 2
	trainWorld     = 3
	trainScenarios = 6
	trainSeed      = 7
)

// The training tables, as testdata/columns.csv names them; each is the
// file <name>.parquet under the output directory.
var trainingTables = []string{"training/convergence", "training/timing/iterations", "training/timing/mpi_ranks"}

func trainingFile(out, table string) string {
	return filepath.Join(out, filepath.FromSlash(table)+".parquet")
}

func trainingSuccess(out string) string {
	return filepath.Join(out, layout.TrainingDir, layout.SuccessName)
}

// trainArgs are simrank's flags for a training run of k iterations.
func trainArgs(out string, k int) []string {
	return []string{"--out", out, "--scenarios", strconv.Itoa(trainScenarios), "--seed", strconv.Itoa(trainSeed),
		"--iterations", strconv.Itoa(k), "--forward-passes", strconv.Itoa(trainF), "--threads", strconv.Itoa(trainW)}
}

// launchJob runs a SLURM-style job of world simrank processes at once. The
// ranks in faults get HYDROSHARD_FAULT=faults[r] and must die by SIGKILL
// (the fault's kill); every other rank must exit 0.
func launchJob(t *testing.T, world int, job string, faults map[int]string, args ...string) {
	t.Helper()
	ctx := testCtx(t)
	cmds := make([]*exec.Cmd, world)
	stderr := make([]bytes.Buffer, world)
	for r := range world {
		env := slurmEnv(r, world, job)
		if f, ok := faults[r]; ok {
			env = append(env, "HYDROSHARD_FAULT="+f)
		}
		cmds[r] = simrankCmd(ctx, env, args...)
		cmds[r].Stderr = &stderr[r]
		if err := cmds[r].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for r, cmd := range cmds {
		err := cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if f, victim := faults[r]; victim {
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("job %s rank %d was not killed by its fault %s: %v\n%s", job, r, f, err, stderr[r].String())
			}
		} else if err != nil {
			t.Fatalf("job %s rank %d: %v\n%s", job, r, err, stderr[r].String())
		}
	}
}

// ---- training journals, read independently of the merge package ----

// tjournal is one training journal.
type tjournal struct {
	base  string
	open  manifest.OpenInfo
	iters []manifest.IterationInfo
	times []time.Time // of every record
	close *manifest.CloseInfo
}

// readTrainingJournals reads every journal of phase "training".
func readTrainingJournals(t *testing.T, out string) []tjournal {
	t.Helper()
	var js []tjournal
	for _, p := range journalPaths(t, out) {
		j := tjournal{base: filepath.Base(p)}
		var open *manifest.OpenInfo
		_, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			tm, err := time.Parse(time.RFC3339Nano, r.Time)
			if err != nil {
				return err
			}
			j.times = append(j.times, tm)
			switch {
			case r.Open != nil:
				open = r.Open
			case r.Iteration != nil:
				j.iters = append(j.iters, *r.Iteration)
			case r.Close != nil:
				j.close = r.Close
			}
			return nil
		})
		if err != nil {
			t.Fatalf("journal %s: %v", p, err)
		}
		if open == nil || open.Phase != manifest.PhaseTraining {
			continue
		}
		j.open = *open
		js = append(js, j)
	}
	return js
}

// recordedIterations maps (rank, iteration) to its record, failing the
// test if any is recorded twice (a resumed rank must never repeat one).
func recordedIterations(t *testing.T, js []tjournal) map[[2]int]manifest.IterationInfo {
	t.Helper()
	m := map[[2]int]manifest.IterationInfo{}
	for _, j := range js {
		for _, it := range j.iters {
			k := [2]int{j.open.Rank, it.Iteration}
			if _, dup := m[k]; dup {
				t.Fatalf("rank %d iteration %d is recorded twice in the journals", k[0], k[1])
			}
			m[k] = it
		}
	}
	return m
}

// lastIteration is the highest iteration rank recorded (0 if none).
func lastIteration(rec map[[2]int]manifest.IterationInfo, r int) int {
	last := 0
	for k := range rec {
		if k[0] == r {
			last = max(last, k[1])
		}
	}
	return last
}

// fmtRanges renders sorted ids as 1-4,7,9-10.
func fmtRanges(ids []int) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		} else {
			parts = append(parts, strconv.Itoa(ids[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// ---- Parquet, read with arrow-go ----

// prow is one table row: int64 (for INT32 and INT64), float64 or nil.
type prow map[string]any

// pcol is one column of a Parquet file as the file declares it.
type pcol struct {
	name, typ string // typ as testdata/columns.csv names Arrow types
	nullable  bool   // the Arrow field's
	required  bool   // the Parquet repetition is REQUIRED
}

var arrowTypeNames = map[arrow.Type]string{arrow.INT8: "Int8", arrow.INT32: "Int32", arrow.INT64: "Int64", arrow.FLOAT64: "Float64", arrow.BOOL: "Boolean"}

// readParquet reads a Parquet file's schema and rows.
func readParquet(t *testing.T, p string) ([]pcol, []prow) {
	t.Helper()
	pf, err := file.OpenParquetFile(p, false)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	sch, err := fr.Schema()
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	psch := pf.MetaData().Schema
	if psch.NumColumns() != sch.NumFields() {
		t.Fatalf("%s: %d Parquet columns, %d Arrow fields", p, psch.NumColumns(), sch.NumFields())
	}
	var cols []pcol
	for i, f := range sch.Fields() {
		cols = append(cols, pcol{name: f.Name, typ: arrowTypeNames[f.Type.ID()], nullable: f.Nullable,
			required: psch.Column(i).SchemaNode().RepetitionType() == parquet.Repetitions.Required})
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer tbl.Release()
	rows := make([]prow, tbl.NumRows())
	for i := range rows {
		rows[i] = prow{}
	}
	for c := range int(tbl.NumCols()) {
		name := tbl.Schema().Field(c).Name
		i := 0
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			for k := range chunk.Len() {
				var v any
				if !chunk.IsNull(k) {
					switch a := chunk.(type) {
					case *array.Int32:
						v = int64(a.Value(k))
					case *array.Int64:
						v = a.Value(k)
					case *array.Float64:
						v = a.Value(k)
					default:
						t.Fatalf("%s: column %s has unexpected type %s", p, name, chunk.DataType())
					}
				}
				rows[i][name] = v
				i++
			}
		}
	}
	return cols, rows
}

// columnsCSV reads testdata/columns.csv: columns of each table, in order.
func columnsCSV(t *testing.T) map[string][]pcol {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "columns.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || !reflect.DeepEqual(recs[0], []string{"table", "column", "arrow_type", "nullable"}) {
		t.Fatalf("columns.csv: unexpected header")
	}
	out := map[string][]pcol{}
	for _, r := range recs[1:] {
		n, err := strconv.ParseBool(r[3])
		if err != nil {
			t.Fatalf("columns.csv: %v: %v", r, err)
		}
		out[r[0]] = append(out[r[0]], pcol{name: r[1], typ: r[2], nullable: n, required: !n})
	}
	return out
}

// ---- expected rows, built from the journals ----

func i32p(p *int32) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func convRow(c *manifest.ConvergenceRow) prow {
	var gap any
	if c.GapPercent != nil {
		gap = *c.GapPercent
	}
	return prow{"iteration": int64(c.Iteration), "lower_bound": c.LowerBound, "upper_bound_mean": c.UpperBoundMean,
		"upper_bound_std": c.UpperBoundStd, "gap_percent": gap, "cuts_added": int64(c.CutsAdded),
		"cuts_removed": int64(c.CutsRemoved), "cuts_active": c.CutsActive, "time_forward_ms": c.TimeForwardMs,
		"time_backward_ms": c.TimeBackwardMs, "time_total_ms": c.TimeTotalMs, "forward_passes": int64(c.ForwardPasses),
		"lp_solves": c.LPSolves}
}

func timingRow(r manifest.TimingRow) prow {
	return prow{"iteration": int64(r.Iteration), "rank": i32p(r.Rank), "worker_id": i32p(r.WorkerID),
		"forward_wall_ms": r.ForwardWallMs, "backward_wall_ms": r.BackwardWallMs, "cut_selection_ms": r.CutSelectionMs,
		"mpi_allreduce_ms": r.MPIAllreduceMs, "cut_sync_ms": r.CutSyncMs, "lower_bound_ms": r.LowerBoundMs,
		"state_exchange_ms": r.StateExchangeMs, "cut_batch_build_ms": r.CutBatchBuildMs, "bwd_setup_ms": r.BwdSetupMs,
		"bwd_load_imbalance_ms": r.BwdLoadImbalanceMs, "bwd_scheduling_overhead_ms": r.BwdSchedulingOverheadMs,
		"fwd_setup_ms": r.FwdSetupMs, "fwd_load_imbalance_ms": r.FwdLoadImbalanceMs,
		"fwd_scheduling_overhead_ms": r.FwdSchedulingOverheadMs, "overhead_ms": r.OverheadMs}
}

func mpiRow(m *manifest.MPIRankRow) prow {
	return prow{"iteration": int64(m.Iteration), "rank": int64(m.Rank), "forward_time_ms": m.ForwardTimeMs,
		"backward_time_ms": m.BackwardTimeMs, "communication_time_ms": m.CommunicationTimeMs, "idle_time_ms": m.IdleTimeMs,
		"lp_solves": m.LPSolves, "scenarios_processed": int64(m.ScenariosProcessed)}
}

// expectedTables builds the three tables from the recorded iterations:
// convergence from the root's gap-free prefix 1..n, timing and mpi_ranks
// from every recorded (rank, iteration), ordered by iteration, rank and
// worker (the rank-level row, worker_id null, first).
func expectedTables(rec map[[2]int]manifest.IterationInfo) map[string][]prow {
	var conv, tim, mpi []prow
	for it := 1; ; it++ {
		r, ok := rec[[2]int{0, it}]
		if !ok || r.Convergence == nil {
			break
		}
		conv = append(conv, convRow(r.Convergence))
	}
	keys := make([][2]int, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][1] != keys[j][1] {
			return keys[i][1] < keys[j][1]
		}
		return keys[i][0] < keys[j][0]
	})
	for _, k := range keys {
		info := rec[k]
		rows := append([]manifest.TimingRow(nil), info.Timing...)
		sort.SliceStable(rows, func(i, j int) bool {
			wi, wj := int32(-1), int32(-1)
			if rows[i].WorkerID != nil {
				wi = *rows[i].WorkerID
			}
			if rows[j].WorkerID != nil {
				wj = *rows[j].WorkerID
			}
			return wi < wj
		})
		for _, r := range rows {
			tim = append(tim, timingRow(r))
		}
		mpi = append(mpi, mpiRow(info.MPIRank))
	}
	return map[string][]prow{trainingTables[0]: conv, trainingTables[1]: tim, trainingTables[2]: mpi}
}

// checkTrainingFiles reads the three training tables, checks their schema
// against testdata/columns.csv and their rows against the journals, and
// returns the rows by table.
func checkTrainingFiles(t *testing.T, out string, rec map[[2]int]manifest.IterationInfo) map[string][]prow {
	t.Helper()
	golden := columnsCSV(t)
	want := expectedTables(rec)
	got := map[string][]prow{}
	for _, tb := range trainingTables {
		cols, rows := readParquet(t, trainingFile(out, tb))
		if !reflect.DeepEqual(cols, golden[tb]) {
			t.Errorf("%s: schema differs from testdata/columns.csv:\n  file   %v\n  golden %v", tb, cols, golden[tb])
		}
		w := want[tb]
		if len(rows) != len(w) {
			t.Errorf("%s: %d rows, the journals give %d", tb, len(rows), len(w))
		}
		bad := 0
		for i := range min(len(rows), len(w)) {
			if d := diffRow(rows[i], w[i]); len(d) > 0 && bad < 5 {
				bad++
				t.Errorf("%s row %d (iteration %v, rank %v, worker %v), file vs journals: %s", tb, i, w[i]["iteration"], w[i]["rank"], w[i]["worker_id"], strings.Join(d, "; "))
			}
		}
		got[tb] = rows
	}
	if t.Failed() {
		t.FailNow()
	}
	return got
}

// diffRow lists the columns where two rows differ.
func diffRow(got, want prow) []string {
	var d []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			d = append(d, k+": missing")
		} else if !reflect.DeepEqual(g, v) {
			d = append(d, fmt.Sprintf("%s: %v, want %v", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, k+": unexpected")
		}
	}
	sort.Strings(d)
	return d
}

func asInt(t *testing.T, v any) int64 {
	t.Helper()
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		if x == math.Trunc(x) {
			return int64(x)
		}
	case string: // DuckDB's BIGINT in JSON
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n
		}
	}
	t.Fatalf("%v (%T) is not an integer", v, v)
	return 0
}

func asFloat(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f
		}
	}
	t.Fatalf("%v (%T) is not a number", v, v)
	return 0
}

// checkTrainingInvariants checks the identities of a complete training
// history of k iterations, world ranks and workers threads per rank, on
// the rows read from the files.
func checkTrainingInvariants(t *testing.T, tables map[string][]prow, k, world, workers, passes int) {
	t.Helper()
	conv, tim, mpi := tables[trainingTables[0]], tables[trainingTables[1]], tables[trainingTables[2]]
	if len(conv) != k {
		t.Fatalf("convergence has %d rows, want %d (one per iteration)", len(conv), k)
	}
	sp, lp := map[int64]int64{}, map[int64]int64{}
	for _, m := range mpi {
		it := asInt(t, m["iteration"])
		sp[it] += asInt(t, m["scenarios_processed"])
		lp[it] += asInt(t, m["lp_solves"])
	}
	var active int64
	for i, c := range conv {
		it := asInt(t, c["iteration"])
		if it != int64(i+1) {
			t.Fatalf("convergence row %d has iteration %d, want %d (iterations 1..%d in order)", i, it, i+1, k)
		}
		if fp := asInt(t, c["forward_passes"]); fp != int64(passes) || sp[it] != fp {
			t.Errorf("iteration %d: forward_passes %d, sum of mpi_ranks scenarios_processed %d, want both %d", it, fp, sp[it], passes)
		}
		if l := asInt(t, c["lp_solves"]); l != lp[it] || l <= 0 {
			t.Errorf("iteration %d: lp_solves %d, sum of mpi_ranks lp_solves %d", it, l, lp[it])
		}
		want := active + asInt(t, c["cuts_added"]) - asInt(t, c["cuts_removed"])
		if a := asInt(t, c["cuts_active"]); a != want {
			t.Errorf("iteration %d: cuts_active %d, want cuts_active(it-1) %d + added - removed = %d", it, a, active, want)
		}
		active = asInt(t, c["cuts_active"])
		lb, ub := asFloat(t, c["lower_bound"]), asFloat(t, c["upper_bound_mean"])
		if c["gap_percent"] == nil {
			t.Errorf("iteration %d: gap_percent is null with upper bound %v", it, ub)
		} else if g, wg := asFloat(t, c["gap_percent"]), (ub-lb)/math.Abs(ub)*100; math.Abs(g-wg) > 1e-9*math.Abs(wg) {
			t.Errorf("iteration %d: gap_percent %.17g, (ub-lb)/|ub|*100 = %.17g", it, g, wg)
		}
	}
	// timing/iterations: per iteration and rank, the rank-level row, then
	// one row per worker, in this order.
	var wantKeys, gotKeys []string
	for it := 1; it <= k; it++ {
		for r := range world {
			wantKeys = append(wantKeys, fmt.Sprintf("%d/%d/null", it, r))
			for w := range workers {
				wantKeys = append(wantKeys, fmt.Sprintf("%d/%d/%d", it, r, w))
			}
		}
	}
	for _, row := range tim {
		w := "null"
		if row["worker_id"] != nil {
			w = strconv.FormatInt(asInt(t, row["worker_id"]), 10)
		}
		gotKeys = append(gotKeys, fmt.Sprintf("%d/%d/%s", asInt(t, row["iteration"]), asInt(t, row["rank"]), w))
	}
	if !reflect.DeepEqual(gotKeys, wantKeys) {
		t.Errorf("timing/iterations (iteration/rank/worker) in file order:\n  got  %v\n  want %v", gotKeys, wantKeys)
	}
	wantKeys, gotKeys = nil, nil
	for it := 1; it <= k; it++ {
		for r := range world {
			wantKeys = append(wantKeys, fmt.Sprintf("%d/%d", it, r))
		}
	}
	for _, row := range mpi {
		gotKeys = append(gotKeys, fmt.Sprintf("%d/%d", asInt(t, row["iteration"]), asInt(t, row["rank"])))
	}
	if !reflect.DeepEqual(gotKeys, wantKeys) {
		t.Errorf("mpi_ranks (iteration/rank) in file order:\n  got  %v\n  want %v", gotKeys, wantKeys)
	}
}

// ---- DuckDB, through node ----

// duckQuery runs SQL statements in one DuckDB session; one result each.
// Without node or DuckDB it skips the test loudly, or fails it when CI=true.
func duckQuery(t *testing.T, sqls ...string) []testtools.DuckResult {
	t.Helper()
	return testtools.DuckQuery(t, testCtx(t), binDir, sqls...)
}

var sqlQuote = testtools.SQLQuote

// duckTypes are the DuckDB types of columns.csv's Arrow types.
var duckTypes = map[string]string{"Int8": "TINYINT", "Int32": "INTEGER", "Int64": "BIGINT", "Float64": "DOUBLE", "Boolean": "BOOLEAN"}

// checkTrainingWithDuckDB reads the three tables with DuckDB: column names,
// order and types (DESCRIBE), nullability (the Parquet repetition DuckDB
// reads), and the identities of a complete k-iteration history in SQL.
func checkTrainingWithDuckDB(t *testing.T, out string, k, world, workers, passes int) {
	t.Helper()
	golden := columnsCSV(t)
	var sqls []string
	for _, tb := range trainingTables {
		f := sqlQuote(trainingFile(out, tb))
		sqls = append(sqls,
			"DESCRIBE SELECT * FROM read_parquet("+f+")",
			"SELECT name, repetition_type FROM parquet_schema("+f+") WHERE num_children IS NULL")
	}
	views := []string{"conv", "tim", "mpi"}
	for i, tb := range trainingTables {
		sqls = append(sqls, fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet(%s, file_row_number=true)", views[i], sqlQuote(trainingFile(out, tb))))
	}
	checks := []struct {
		what, sql string
		want      []any // the one row expected
	}{
		{"convergence iterations 1..k in file order",
			"SELECT count(*), min(iteration), max(iteration), count(*) FILTER (WHERE iteration <> file_row_number + 1) FROM conv",
			[]any{k, 1, k, 0}},
		{"iterations where sum(mpi_ranks.scenarios_processed) <> forward_passes or sum(lp_solves) <> lp_solves",
			`SELECT count(*), count(*) FILTER (WHERE sp IS DISTINCT FROM forward_passes OR lp IS DISTINCT FROM lp_solves OR forward_passes <> ` + strconv.Itoa(passes) + `)
			 FROM (SELECT c.iteration, c.forward_passes, c.lp_solves, (SELECT sum(m.scenarios_processed) FROM mpi m WHERE m.iteration = c.iteration) AS sp,
			              (SELECT sum(m.lp_solves) FROM mpi m WHERE m.iteration = c.iteration) AS lp FROM conv c)`,
			[]any{k, 0}},
		{"iterations where cuts_active <> cuts_active(it-1) + cuts_added - cuts_removed",
			`SELECT count(*) FILTER (WHERE cuts_active <> prev + cuts_added - cuts_removed) FROM (SELECT *, coalesce(lag(cuts_active) OVER (ORDER BY iteration), 0) AS prev FROM conv)`,
			[]any{0}},
		{"iterations where gap_percent is not (ub-lb)/|ub|*100 within 1e-9 relative",
			`SELECT count(*) FILTER (WHERE gap_percent IS NULL OR abs(gap_percent - (upper_bound_mean - lower_bound) / abs(upper_bound_mean) * 100) > 1e-9 * abs((upper_bound_mean - lower_bound) / abs(upper_bound_mean) * 100)) FROM conv`,
			[]any{0}},
		{"timing rows out of (iteration, rank, worker_id NULLS FIRST) order",
			`SELECT count(*), count(*) FILTER (WHERE file_row_number <> pos) FROM (SELECT file_row_number, row_number() OVER (ORDER BY iteration, rank, worker_id NULLS FIRST) - 1 AS pos FROM tim)`,
			[]any{k * world * (1 + workers), 0}},
		{"timing groups (iteration, rank) and the bad ones (not one rank-level row plus workers 0..W-1)",
			`SELECT count(*), count(*) FILTER (WHERE nrank <> 1 OR nw <> ` + strconv.Itoa(workers) + ` OR nd <> ` + strconv.Itoa(workers) + ` OR coalesce(lo, 0) <> 0 OR coalesce(hi, -1) <> ` + strconv.Itoa(workers-1) + `)
			 FROM (SELECT iteration, rank, count(*) FILTER (WHERE worker_id IS NULL) AS nrank, count(worker_id) AS nw, count(DISTINCT worker_id) AS nd, min(worker_id) AS lo, max(worker_id) AS hi FROM tim GROUP BY iteration, rank)`,
			[]any{k * world, 0}},
		{"timing rows with a null rank, and mpi_ranks rows, distinct (iteration, rank), out of order",
			`SELECT (SELECT count(*) FROM tim WHERE rank IS NULL), count(*), count(DISTINCT (iteration, rank)), count(*) FILTER (WHERE file_row_number <> pos)
			 FROM (SELECT *, row_number() OVER (ORDER BY iteration, rank) - 1 AS pos FROM mpi)`,
			[]any{0, k * world, k * world, 0}},
	}
	base := len(sqls)
	for _, c := range checks {
		sqls = append(sqls, c.sql)
	}
	res := duckQuery(t, sqls...)
	for i, tb := range trainingTables {
		desc, schema := res[2*i], res[2*i+1]
		var got, want []string
		for _, r := range desc.Rows {
			got = append(got, fmt.Sprint(r[0], " ", r[1]))
		}
		for _, c := range golden[tb] {
			want = append(want, c.name+" "+duckTypes[c.typ])
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DuckDB reads %s as\n  %v\nwant\n  %v", tb, got, want)
		}
		got, want = nil, nil
		for _, r := range schema.Rows {
			got = append(got, fmt.Sprint(r[0], " ", r[1]))
		}
		for _, c := range golden[tb] {
			rep := "REQUIRED"
			if c.nullable {
				rep = "OPTIONAL"
			}
			want = append(want, c.name+" "+rep)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DuckDB's parquet_schema of %s (nullability):\n  %v\nwant\n  %v", tb, got, want)
		}
	}
	for i, c := range checks {
		r := res[base+i]
		if len(r.Rows) != 1 || len(r.Rows[0]) != len(c.want) {
			t.Errorf("DuckDB %s: result %v", c.what, r.Rows)
			continue
		}
		got := make([]any, len(c.want))
		for j, v := range r.Rows[0] {
			got[j] = int(asInt(t, v))
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("DuckDB %s: %v, want %v", c.what, got, c.want)
		}
	}
}

// ---- the tests ----

// TestTrainingTables: a 3-rank training run then a merge: exit 0 and
// training/_SUCCESS; the three training tables conform to columns.csv
// (arrow-go schema, Parquet repetition), hold exactly the journals' rows in
// the contract's order, satisfy the training identities, and DuckDB reads
// them with the right types and finds the same identities in SQL.
func TestTrainingTables(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	launchJob(t, trainWorld, "3100", nil, trainArgs(out, trainK)...)
	rep := mergeJSON(t, 0, out)
	mustExist(t, trainingSuccess(out))
	mustExist(t, simPath(out, layout.SuccessName))
	if tr, _ := rep["training"].(map[string]any); tr == nil || tr["status"] != merge.TrainingComplete || num(t, tr, "iterations") != trainK {
		t.Fatalf("report training section %v, want status complete and %d iterations", rep["training"], trainK)
	}
	rec := recordedIterations(t, readTrainingJournals(t, out))
	if len(rec) != trainK*trainWorld {
		t.Fatalf("test setup: the journals hold %d (rank, iteration) records, want %d", len(rec), trainK*trainWorld)
	}
	tables := checkTrainingFiles(t, out, rec)
	checkTrainingInvariants(t, tables, trainK, trainWorld, trainW, trainF)
	// A subtest: without node and DuckDB only this part is skipped.
	t.Run("duckdb", func(t *testing.T) {
		checkTrainingWithDuckDB(t, out, trainK, trainWorld, trainW, trainF)
	})
}

// TestTrainingRankKilledThenResumed kills one rank inside training (SIGKILL
// at a journal fsync, so it never simulates): the merge is partial (exit 3)
// and names exactly that rank and the iterations it lacks, with no
// training/_SUCCESS. Rerunning the rank (a new job, the same arguments)
// continues after its last durable iteration, and the next merge completes
// with a gap-free history. The root rank is killed too: its missing
// iterations must be named although the convergence history stops with it.
func TestTrainingRankKilledThenResumed(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		victim, hit int // journal-fsync hit 1 is the open record, iteration i is hit i+1
	}{{1, 4}, {0, 6}} {
		t.Run(fmt.Sprintf("rank %d", c.victim), func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			job, rerunJob := strconv.Itoa(3200+c.victim), strconv.Itoa(3300+c.victim)
			launchJob(t, trainWorld, job, map[int]string{c.victim: fmt.Sprintf("journal-fsync:kill:%d", c.hit)}, trainArgs(out, trainK)...)

			js := readTrainingJournals(t, out)
			rec := recordedIterations(t, js)
			last := lastIteration(rec, c.victim)
			if last < 1 || last >= trainK {
				t.Fatalf("test setup: the victim recorded up to iteration %d, want it killed mid-training", last)
			}
			horizon := 0
			for r := range trainWorld {
				horizon = max(horizon, lastIteration(rec, r))
			}
			var lacks []int
			for it := 1; it <= horizon; it++ {
				if _, ok := rec[[2]int{c.victim, it}]; !ok {
					lacks = append(lacks, it)
				}
			}
			for r := range trainWorld {
				if r == c.victim {
					continue
				}
				if n := lastIteration(rec, r); n != trainK {
					t.Fatalf("test setup: surviving rank %d recorded up to %d, want %d", r, n, trainK)
				}
			}
			if len(lacks) == 0 || lacks[0] != last+1 {
				t.Fatalf("test setup: the victim lacks %v after recording up to %d", lacks, last)
			}
			wantMissing := []any{fmt.Sprintf("rank %d: iterations %s", c.victim, fmtRanges(lacks))}

			before := snapshot(t, out)
			r := mergeShards(t, "report", out)
			wantExit(t, r, 3)
			if want := "MISSING      training " + wantMissing[0].(string); !strings.Contains(r.stdout, want) {
				t.Errorf("report does not say %q:\n%s", want, r)
			}
			sameSnapshot(t, "merge-shards report", before, snapshot(t, out))

			rep := mergeJSON(t, 3, out)
			tr, _ := rep["training"].(map[string]any)
			if tr == nil {
				t.Fatalf("no training section in the report: %v", rep)
			}
			if !reflect.DeepEqual(tr["missing"], wantMissing) {
				t.Errorf("training.missing %v, the journals say %v", tr["missing"], wantMissing)
			}
			if tr["status"] != merge.TrainingPartial {
				t.Errorf("training status %v, want %s", tr["status"], merge.TrainingPartial)
			}
			mustNotExist(t, trainingSuccess(out))
			mustNotExist(t, simPath(out, layout.SuccessName))
			checkTrainingFiles(t, out, rec) // what was recorded, nothing invented
			if t.Failed() {
				t.FailNow()
			}

			// The rerun: a new job, the same arguments.
			runSimrank(t, slurmEnv(c.victim, trainWorld, rerunJob), trainArgs(out, trainK)...)
			var rerun []tjournal
			for _, j := range readTrainingJournals(t, out) {
				if j.open.JobID == rerunJob {
					rerun = append(rerun, j)
				}
			}
			if len(rerun) != 1 {
				t.Fatalf("the rerun wrote %d training journals, want 1", len(rerun))
			}
			var wrote []int
			for _, it := range rerun[0].iters {
				wrote = append(wrote, it.Iteration)
			}
			var wantWrote []int
			for it := last + 1; it <= trainK; it++ {
				wantWrote = append(wantWrote, it)
			}
			if !reflect.DeepEqual(wrote, wantWrote) {
				t.Fatalf("the rerun recorded iterations %v, want %d..%d (the first after the last durable %d)", wrote, last+1, trainK, last)
			}

			rep = mergeJSON(t, 0, out)
			tr, _ = rep["training"].(map[string]any)
			if tr == nil || tr["status"] != merge.TrainingComplete || tr["missing"] != nil || num(t, tr, "iterations") != trainK ||
				num(t, tr, "duplicate_iterations") != 0 || num(t, tr, "conflicting_iterations") != 0 {
				t.Fatalf("training after the rerun: %v, want complete, %d iterations, nothing missing or duplicated", tr, trainK)
			}
			mustExist(t, trainingSuccess(out))
			mustExist(t, simPath(out, layout.SuccessName))

			// Gap-free: each (rank, iteration) exactly once across the
			// chosen rows, in both timing tables.
			rec = recordedIterations(t, readTrainingJournals(t, out))
			tables := checkTrainingFiles(t, out, rec)
			mpiCount, timCount := map[[2]int64]int{}, map[[2]int64]int{}
			for _, row := range tables[trainingTables[2]] {
				mpiCount[[2]int64{asInt(t, row["rank"]), asInt(t, row["iteration"])}]++
			}
			for _, row := range tables[trainingTables[1]] {
				timCount[[2]int64{asInt(t, row["rank"]), asInt(t, row["iteration"])}]++
			}
			for r := range trainWorld {
				for it := 1; it <= trainK; it++ {
					k := [2]int64{int64(r), int64(it)}
					if mpiCount[k] != 1 || timCount[k] != 1+trainW {
						t.Errorf("rank %d iteration %d: %d mpi_ranks rows (want 1), %d timing rows (want %d)", r, it, mpiCount[k], timCount[k], 1+trainW)
					}
				}
			}
			if len(mpiCount) != trainWorld*trainK || len(timCount) != trainWorld*trainK {
				t.Errorf("rows for %d and %d (rank, iteration) pairs, want %d", len(mpiCount), len(timCount), trainWorld*trainK)
			}
			checkTrainingInvariants(t, tables, trainK, trainWorld, trainW, trainF)
		})
	}
}

// TestTrainingOnlyDirectory: every rank killed in training, before
// simulating (iteration 3 of 20). The merge is partial (exit 3, not an
// environment error), writes the training outputs with the recorded
// iterations and no simulation outputs, and says the simulation has not
// started. Merging again changes nothing.
func TestTrainingOnlyDirectory(t *testing.T) {
	t.Parallel()
	const k = 20
	out := t.TempDir()
	kill := map[int]string{}
	for r := range trainWorld {
		kill[r] = "journal-fsync:kill:4"
	}
	launchJob(t, trainWorld, "3400", kill, trainArgs(out, k)...)
	rec := recordedIterations(t, readTrainingJournals(t, out))
	root := lastIteration(rec, 0)
	if root < 1 || root >= k {
		t.Fatalf("test setup: the root recorded %d iterations", root)
	}

	r := mergeShards(t, out)
	wantExit(t, r, 3)
	if !strings.Contains(r.stdout, "none yet: the ranks have not simulated") {
		t.Errorf("the merge does not say the simulation has not started:\n%s", r)
	}
	mustNotExist(t, simPath(out, layout.ManifestName))
	mustNotExist(t, simPath(out, layout.SuccessName))
	mustNotExist(t, trainingSuccess(out))
	for _, tb := range trainingTables {
		mustExist(t, trainingFile(out, tb))
	}
	checkTrainingFiles(t, out, rec)
	md := readJSONFile(t, filepath.Join(out, layout.TrainingDir, "metadata.json"))
	if it := md["iterations"].(map[string]any); num(t, it, "completed") != root {
		t.Errorf("metadata.json iterations.completed %v, want %d", it["completed"], root)
	}
	if s := md["status"]; s == merge.TrainingComplete || s == merge.TrainingConverged {
		t.Errorf("metadata.json status %v for a training killed at iteration %d of %d", s, root, k)
	}

	before := snapshot(t, out)
	rep := mergeJSON(t, 3, out)
	sameSnapshot(t, "a second merge of a training-only directory", before, snapshot(t, out))
	if num(t, rep, "scenarios") != 0 || num(t, rep, "committed") != 0 {
		t.Errorf("report scenarios %v committed %v, want 0 and 0", rep["scenarios"], rep["committed"])
	}
	if tr, _ := rep["training"].(map[string]any); tr == nil || num(t, tr, "iterations") != root {
		t.Errorf("report training %v, want %d iterations", rep["training"], root)
	}
	r = mergeShards(t, "report", out)
	wantExit(t, r, 3)
	if !strings.Contains(r.stdout, "none yet: the ranks have not simulated") {
		t.Errorf("report does not say the simulation has not started:\n%s", r)
	}
}

// Cobre's training metadata.json. Every field is a pointer, so that an
// absent key decodes to nil; fields tagged cobre:"optional" may be absent.
type cobreTrainingMetadata struct {
	CobreVersion      *string             `json:"cobre_version"`
	Hostname          *string             `json:"hostname"`
	Solver            *string             `json:"solver"`
	StartedAt         *string             `json:"started_at"`
	CompletedAt       *string             `json:"completed_at"`
	DurationSeconds   *float64            `json:"duration_seconds"`
	Status            *string             `json:"status"`
	Configuration     *cobreConfiguration `json:"configuration"`
	ProblemDimensions *cobreDimensions    `json:"problem_dimensions"`
	Iterations        *cobreIterations    `json:"iterations"`
	Convergence       *cobreConvergence   `json:"convergence"`
	RowPool           *cobreRowPool       `json:"row_pool"`
	Distribution      *cobreDistribution  `json:"distribution"`
	DataIntegrity     *cobreDataIntegrity `json:"data_integrity"`
}

type cobreConfiguration struct {
	Seed          *uint64 `json:"seed"`
	MaxIterations *int    `json:"max_iterations"`
	ForwardPasses *int    `json:"forward_passes"`
	StoppingMode  *string `json:"stopping_mode"`
	PolicyMode    *string `json:"policy_mode"`
}

type cobreDimensions struct {
	NumStages   *int `json:"num_stages"`
	NumHydros   *int `json:"num_hydros"`
	NumThermals *int `json:"num_thermals"`
	NumBuses    *int `json:"num_buses"`
	NumLines    *int `json:"num_lines"`
}

type cobreIterations struct {
	Completed   *int `json:"completed"`
	ConvergedAt *int `json:"converged_at" cobre:"optional"`
}

type cobreConvergence struct {
	Achieved          *bool    `json:"achieved"`
	FinalGapPercent   *float64 `json:"final_gap_percent" cobre:"optional"`
	TerminationReason *string  `json:"termination_reason"`
}

type cobreRowPool struct {
	TotalGenerated *int64 `json:"total_generated"`
	TotalActive    *int64 `json:"total_active"`
	PeakActive     *int64 `json:"peak_active"`
}

type cobreDistribution struct {
	Backend           *string `json:"backend"`
	WorldSize         *int    `json:"world_size"`
	RanksParticipated *int    `json:"ranks_participated"`
	NumNodes          *int    `json:"num_nodes"`
	ThreadsPerRank    *int    `json:"threads_per_rank" cobre:"optional"`
	SlurmJobID        *string `json:"slurm_job_id" cobre:"optional"`
}

type cobreDataIntegrity struct {
	ConvergenceSHA256 *string           `json:"convergence_sha256"`
	CaseSHA256        *string           `json:"case_sha256"`
	PolicySHA256      map[string]string `json:"policy_sha256" cobre:"optional"`
}

// absentKeys lists the required keys (dotted paths) that decoded to nil.
func absentKeys(v reflect.Value, prefix string) []string {
	var out []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		key := prefix + strings.Split(f.Tag.Get("json"), ",")[0]
		fv := v.Field(i)
		if fv.IsNil() {
			if f.Tag.Get("cobre") != "optional" {
				out = append(out, key)
			}
			continue
		}
		if fv.Kind() == reflect.Pointer && fv.Elem().Kind() == reflect.Struct {
			out = append(out, absentKeys(fv.Elem(), key+".")...)
		}
	}
	return out
}

// readTrainingMetadata decodes training/metadata.json strictly (no key
// outside the Cobre set plus data_integrity, no null) and fails the test
// if a required key is absent.
func readTrainingMetadata(t *testing.T, out string) (*cobreTrainingMetadata, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, layout.TrainingDir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Cobre always writes iterations.converged_at, null when the
	// training did not converge; any other null is an unknown optional key
	// that must be omitted.
	if bytes.Contains(bytes.ReplaceAll(b, []byte(`"converged_at": null`), nil), []byte("null")) {
		t.Fatalf("training/metadata.json has a null other than converged_at's (unknown optional keys must be omitted):\n%s", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var md cobreTrainingMetadata
	if err := dec.Decode(&md); err != nil {
		t.Fatalf("training/metadata.json does not decode into the Cobre key set: %v\n%s", err, b)
	}
	if miss := absentKeys(reflect.ValueOf(md), ""); len(miss) > 0 {
		t.Fatalf("training/metadata.json lacks required keys %v:\n%s", miss, b)
	}
	return &md, b
}

// TestTrainingMetadata: training/metadata.json has every Cobre-required
// key (converged_at always, null without convergence; stopping_mode "any"
// or "all" as in Cobre), omits unknown optional ones (no slurm_job_id
// without SLURM), and its values agree with the journals,
// the case, the convergence table (row_pool) and the convergence.parquet
// bytes on disk (data_integrity).
func TestTrainingMetadata(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	cs, err := manifest.LoadCase(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	// check verifies the values of a merged directory's metadata.json.
	check := func(t *testing.T, out, status, termination, job string, world int) *cobreTrainingMetadata {
		t.Helper()
		md, raw := readTrainingMetadata(t, out)
		js := readTrainingJournals(t, out)
		var first, last time.Time
		var root *tjournal
		for i, j := range js {
			for _, tm := range j.times {
				if first.IsZero() || tm.Before(first) {
					first = tm
				}
				if tm.After(last) {
					last = tm
				}
			}
			if j.open.Rank == 0 {
				root = &js[i]
			}
		}
		if root == nil {
			t.Fatal("no training journal of rank 0")
		}
		_, rows := readParquet(t, trainingFile(out, "training/convergence"))
		var generated, active, peak int64
		for _, r := range rows {
			generated += asInt(t, r["cuts_added"])
			active = asInt(t, r["cuts_active"])
			peak = max(peak, active)
		}
		convBytes, err := os.ReadFile(trainingFile(out, "training/convergence"))
		if err != nil {
			t.Fatal(err)
		}
		convSum := sha256.Sum256(convBytes)
		caseJSON, err := json.Marshal(root.open.Case)
		if err != nil {
			t.Fatal(err)
		}
		caseSum := sha256.Sum256(caseJSON)
		lastGap := asFloat(t, rows[len(rows)-1]["gap_percent"])
		checks := []struct {
			what      string
			got, want any
		}{
			{"hostname", *md.Hostname, host},
			{"solver", *md.Solver, root.open.Solver},
			{"status", *md.Status, status},
			{"configuration", *md.Configuration, cobreConfiguration{ptrTo(uint64(trainSeed)), ptrTo(trainK), ptrTo(trainF), ptrTo("any"), ptrTo("fresh")}},
			{"problem_dimensions", *md.ProblemDimensions, cobreDimensions{ptrTo(cs.Stages), ptrTo(len(cs.Hydros)), ptrTo(len(cs.Thermals)), ptrTo(len(cs.Buses)), ptrTo(len(cs.Lines))}},
			{"iterations.completed", *md.Iterations.Completed, trainK},
			{"convergence.termination_reason", *md.Convergence.TerminationReason, termination},
			{"convergence.final_gap_percent", md.Convergence.FinalGapPercent, &lastGap},
			{"row_pool", *md.RowPool, cobreRowPool{&generated, &active, &peak}},
			{"distribution.world_size", *md.Distribution.WorldSize, world},
			{"distribution.ranks_participated", *md.Distribution.RanksParticipated, world},
			{"distribution.num_nodes", *md.Distribution.NumNodes, 1},
			{"distribution.backend", *md.Distribution.Backend, root.open.Launcher},
			{"distribution.threads_per_rank", md.Distribution.ThreadsPerRank, ptrTo(trainW)},
			{"data_integrity.convergence_sha256", *md.DataIntegrity.ConvergenceSHA256, hex.EncodeToString(convSum[:])},
			{"data_integrity.case_sha256", *md.DataIntegrity.CaseSHA256, hex.EncodeToString(caseSum[:])},
		}
		if job != "" {
			checks = append(checks, struct {
				what      string
				got, want any
			}{"distribution.slurm_job_id", md.Distribution.SlurmJobID, &job})
		} else if md.Distribution.SlurmJobID != nil {
			t.Errorf("distribution.slurm_job_id is %q without SLURM, want it omitted:\n%s", *md.Distribution.SlurmJobID, raw)
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("metadata %s = %s, want %s", c.what, show(c.got), show(c.want))
			}
		}
		if *md.CobreVersion == "" {
			t.Error("cobre_version is empty")
		}
		for _, c := range []struct {
			key  string
			got  string
			want time.Time
		}{{"started_at", *md.StartedAt, first}, {"completed_at", *md.CompletedAt, last}} {
			if got, err := time.Parse(time.RFC3339Nano, c.got); err != nil || !got.Equal(c.want) {
				t.Errorf("metadata %s = %s, want the training journals' %s record time %s", c.key, c.got, strings.TrimSuffix(c.key, "_at"), c.want.Format(time.RFC3339Nano))
			}
		}
		if d := *md.DurationSeconds; !close9(d, last.Sub(first).Seconds()) {
			t.Errorf("duration_seconds %v, want %v", d, last.Sub(first).Seconds())
		}
		return md
	}

	t.Run("slurm, iteration limit", func(t *testing.T) {
		t.Parallel()
		out := t.TempDir()
		launchJob(t, trainWorld, "3500", nil, trainArgs(out, trainK)...)
		wantExit(t, mergeShards(t, out), 0)
		md := check(t, out, merge.TrainingComplete, "iteration_limit", "3500", trainWorld)
		if *md.Convergence.Achieved || md.Iterations.ConvergedAt != nil {
			t.Errorf("convergence.achieved %v, iterations.converged_at %v: want false and null (stopped by the iteration limit)", *md.Convergence.Achieved, show(md.Iterations.ConvergedAt))
		}
	})

	t.Run("no slurm, then converged", func(t *testing.T) {
		t.Parallel()
		out := t.TempDir()
		for r := range 2 {
			runSimrank(t, nil, append(trainArgs(out, trainK), "--rank", strconv.Itoa(r), "--world", "2")...)
		}
		wantExit(t, mergeShards(t, out), 0)
		check(t, out, merge.TrainingComplete, "iteration_limit", "", 2)

		// The root's journal says the training stopped because the gap
		// closed: converged_at appears, achieved turns true.
		var rootJournal string
		for _, j := range readTrainingJournals(t, out) {
			if j.open.Rank == 0 {
				rootJournal = filepath.Join(out, layout.JournalDir, j.base)
			}
		}
		recs := readRecords(t, rootJournal)
		closeRec := recs[len(recs)-1].Close
		if closeRec == nil || closeRec.Termination != "iteration_limit" {
			t.Fatalf("test setup: the root journal's last record is not its close: %+v", recs[len(recs)-1])
		}
		closeRec.Termination = "converged"
		writeRecords(t, rootJournal, recs)
		wantExit(t, mergeShards(t, out), 0)
		mustExist(t, trainingSuccess(out))
		md := check(t, out, merge.TrainingConverged, "converged", "", 2)
		if !*md.Convergence.Achieved || md.Iterations.ConvergedAt == nil || *md.Iterations.ConvergedAt != trainK {
			t.Errorf("convergence.achieved %v, iterations.converged_at %s: want true and %d", *md.Convergence.Achieved, show(md.Iterations.ConvergedAt), trainK)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

// show renders a value for a message, dereferencing pointers (nested too,
// through JSON).
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// TestTrainingRemergeChangesNothing: merging a merged directory with
// training outputs again rewrites no file, not even with the same bytes.
func TestTrainingRemergeChangesNothing(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	launchJob(t, trainWorld, "3600", nil, trainArgs(out, trainK)...)
	wantExit(t, mergeShards(t, out), 0)
	before := snapshot(t, out)
	for _, p := range []string{"training/convergence.parquet", "training/timing/iterations.parquet", "training/timing/mpi_ranks.parquet",
		"training/metadata.json", "training/_manifest.json", "training/_SUCCESS", "training/dictionaries/codes.json"} {
		if !strings.HasPrefix(before[filepath.FromSlash(p)], "file ") {
			t.Fatalf("test setup: %s is not in the merged directory", p)
		}
	}
	rep := mergeJSON(t, 0, out)
	if rep["written"] != nil {
		t.Errorf("the second merge wrote %v", rep["written"])
	}
	sameSnapshot(t, "a second merge with training outputs", before, snapshot(t, out))
}

// TestReportShowsTraining: `merge-shards report OUT` changes nothing and
// shows the training section: status, iterations, termination, ranks, and
// the final bounds and gap of the root's last recorded iteration.
func TestReportShowsTraining(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	launchJob(t, trainWorld, "3700", nil, trainArgs(out, trainK)...)
	var final *manifest.ConvergenceRow
	for _, j := range readTrainingJournals(t, out) {
		for _, it := range j.iters {
			if j.open.Rank == 0 && it.Iteration == trainK {
				final = it.Convergence
			}
		}
	}
	if final == nil || final.GapPercent == nil {
		t.Fatalf("test setup: no convergence row of iteration %d with a gap in the root's journal", trainK)
	}

	before := snapshot(t, out)
	r := mergeShards(t, "report", out)
	wantExit(t, r, 0)
	sameSnapshot(t, "merge-shards report", before, snapshot(t, out))
	head := regexp.MustCompile(`(?m)^\s+training\s+(\S+): (\d+) iterations, stopped by (\S+); ranks (\d+) of (\d+)$`).FindStringSubmatch(r.stdout)
	if head == nil {
		t.Fatalf("report has no training line:\n%s", r)
	}
	if want := []string{"COMPLETE", strconv.Itoa(trainK), "iteration_limit", strconv.Itoa(trainWorld), strconv.Itoa(trainWorld)}; !reflect.DeepEqual(head[1:], want) {
		t.Errorf("report training line %q, want status, iterations, termination, ranks %v", head[0], want)
	}
	bounds := regexp.MustCompile(`(?m)^\s+final lower bound (\S+), upper bound mean (\S+), gap (\S+)%$`).FindStringSubmatch(r.stdout)
	if bounds == nil {
		t.Fatalf("report has no final bounds line:\n%s", r)
	}
	for i, c := range []struct {
		what string
		want float64
		tol  float64 // relative: the report prints 6 and 3 significant digits
	}{{"lower bound", final.LowerBound, 1e-5}, {"upper bound mean", final.UpperBoundMean, 1e-5}, {"gap", *final.GapPercent, 1e-2}} {
		got, err := strconv.ParseFloat(bounds[i+1], 64)
		if err != nil || math.Abs(got-c.want) > c.tol*math.Abs(c.want) {
			t.Errorf("report final %s %q, the root's journal says %v", c.what, bounds[i+1], c.want)
		}
	}

	// report --json carries the exact values.
	r = mergeShards(t, "report", "--json", out)
	wantExit(t, r, 0)
	var rep struct {
		Training *merge.TrainingReport `json:"training"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Training == nil {
		t.Fatalf("report --json: %v\n%s", err, r)
	}
	tr := rep.Training
	if tr.Status != merge.TrainingComplete || tr.Iterations != trainK || tr.Termination != "iteration_limit" || tr.WorldSize != trainWorld ||
		tr.LowerBound != final.LowerBound || tr.UpperBound != final.UpperBoundMean || tr.GapPercent == nil || *tr.GapPercent != *final.GapPercent {
		t.Errorf("report --json training %s, the root's journal ends with %s", show(tr), show(final))
	}
	sameSnapshot(t, "merge-shards report --json", before, snapshot(t, out))
}

// forgeAttempt writes into out the training journal of a second attempt
// of rank a.open.Rank, as if it had run there too: a copy of a's records
// (open, iterations, close; checkpoints left out) by another writer,
// attempt 1 of job, with every record's time moved by shift and iteration
// k's rows changed by edit. It returns the forged iteration k.
func forgeAttempt(t *testing.T, out string, a tjournal, job string, shift time.Duration, k int, edit func(*manifest.IterationInfo)) manifest.IterationInfo {
	t.Helper()
	writer := layout.NewWriterID(job, a.open.Rank, 1, layout.TrainingTag, []byte{0xf0, 0x0d, 0xca, 0xfe, 0x00, byte(a.open.Rank)}).String()
	var recs []*manifest.Record
	var forged *manifest.IterationInfo
	for _, r := range readRecords(t, filepath.Join(out, layout.JournalDir, a.base)) {
		if r.Checkpoint != nil {
			continue
		}
		tm, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil {
			t.Fatal(err)
		}
		r.Time = tm.Add(shift).UTC().Format(manifest.TimeFormat)
		r.Seq = int64(len(recs))
		switch {
		case r.Open != nil:
			r.Open.Writer, r.Open.Attempt, r.Open.JobID = writer, 1, job
		case r.Iteration != nil && r.Iteration.Iteration == k:
			edit(r.Iteration)
			forged = r.Iteration
		}
		recs = append(recs, r)
	}
	if forged == nil {
		t.Fatalf("test setup: %s has no iteration %d", a.base, k)
	}
	writeRecords(t, layout.Join(out, layout.Journal(writer)), recs)
	return *forged
}

// TestTrainingConflictKeepsTheLatest: two attempts of one rank recorded
// the same iteration with different rows (the other iterations alike).
// The merge must keep the copy recorded later (by journal time, whatever
// the order of the journal files' names) in every training table, count
// the other iterations as duplicates and this one as a conflict, and say
// so in the report.
func TestTrainingConflictKeepsTheLatest(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		rank, k   int
		job       string        // the forged attempt's job: "3800" sorts after attempt 0 of job 3800, "10000" before it
		shift     time.Duration // of the forged attempt's records against the first attempt's
		forgedWon bool
	}{
		{"root, later attempt named after", 0, trainK, "3800", time.Hour, true},
		{"root, later attempt named before", 0, trainK, "10000", time.Hour, true},
		{"root, earlier copy named after", 0, trainK, "3800", -time.Hour, false},
		{"non-root, later attempt named after", 1, 3, "3800", time.Hour, true},
		{"non-root, earlier copy named before", 1, 3, "10000", -time.Hour, false},
		// Recorded at the same instant: the writer id decides, as for
		// simulation commits (never the order the journals were read in).
		{"tie, forged writer id sorts after", 0, trainK, "3800", 0, true},
		{"tie, forged writer id sorts before", 1, 3, "10000", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			launchJob(t, trainWorld, "3800", nil, trainArgs(out, trainK)...)
			js := readTrainingJournals(t, out)
			rec := recordedIterations(t, js)
			if len(rec) != trainK*trainWorld {
				t.Fatalf("test setup: %d (rank, iteration) records, want %d", len(rec), trainK*trainWorld)
			}
			var first *tjournal
			for i := range js {
				if js[i].open.Rank == c.rank {
					first = &js[i]
				}
			}
			if first == nil {
				t.Fatalf("test setup: no training journal of rank %d", c.rank)
			}
			forged := forgeAttempt(t, out, *first, c.job, c.shift, c.k, func(it *manifest.IterationInfo) {
				if cv := it.Convergence; cv != nil {
					cv.LowerBound += 1234.5
					cv.UpperBoundMean += 99.25
					cv.CutsActive += 7
					if cv.GapPercent != nil {
						g := *cv.GapPercent / 2
						cv.GapPercent = &g
					}
				}
				it.Timing[0].ForwardWallMs += 777
				it.Timing[len(it.Timing)-1].BackwardWallMs += 555
				it.MPIRank.LPSolves += 5
				it.MPIRank.IdleTimeMs += 3
			})
			key := [2]int{c.rank, c.k}
			if reflect.DeepEqual(forged, rec[key]) {
				t.Fatal("test setup: the forged iteration equals the first attempt's")
			}
			want := map[[2]int]manifest.IterationInfo{}
			for k, v := range rec {
				want[k] = v
			}
			if c.forgedWon {
				want[key] = forged
			}

			rep := mergeJSON(t, 0, out)
			tr, _ := rep["training"].(map[string]any)
			if tr == nil {
				t.Fatalf("no training section in the report: %v", rep)
			}
			if got := num(t, tr, "conflicting_iterations"); got != 1 {
				t.Errorf("conflicting_iterations %d, want 1 (rank %d iteration %d)", got, c.rank, c.k)
			}
			cs, _ := tr["conflicts"].([]any)
			if len(cs) != 1 {
				t.Fatalf("conflicts %v, want one naming rank %d iteration %d", tr["conflicts"], c.rank, c.k)
			}
			named, _ := cs[0].(map[string]any)
			if num(t, named, "rank") != c.rank || num(t, named, "iteration") != c.k || (named["winner"] != first.open.Writer) == !c.forgedWon ||
				(named["loser"] == first.open.Writer) == !c.forgedWon {
				t.Errorf("conflict %v: want rank %d iteration %d, the forged attempt winning: %v (first attempt %s)", named, c.rank, c.k, c.forgedWon, first.open.Writer)
			}
			if got := num(t, tr, "duplicate_iterations"); got != trainK-1 {
				t.Errorf("duplicate_iterations %d, want %d (the forged attempt's identical iterations)", got, trainK-1)
			}
			if tr["status"] != merge.TrainingComplete || num(t, tr, "iterations") != trainK {
				t.Errorf("training %v, want complete with %d iterations", tr, trainK)
			}
			mustExist(t, trainingSuccess(out))
			// Every row of the three tables: the winner's for (rank, k),
			// the only copy for the rest.
			checkTrainingFiles(t, out, want)
			if c.rank == 0 {
				final := want[[2]int{0, trainK}].Convergence
				if tr["final_lower_bound"] != final.LowerBound || tr["final_upper_bound_mean"] != final.UpperBoundMean {
					t.Errorf("report final bounds %v / %v, the kept iteration %d has %v / %v", tr["final_lower_bound"], tr["final_upper_bound_mean"], trainK, final.LowerBound, final.UpperBoundMean)
				}
			}
			r := mergeShards(t, "report", out)
			wantExit(t, r, 0)
			if want := fmt.Sprintf("rank %d iteration %d: kept %s", c.rank, c.k, named["winner"]); !strings.Contains(r.stdout, want) {
				t.Errorf("report does not say %q:\n%s", want, r)
			}
			if want := "CONFLICT     1 training iterations recorded twice with different rows; kept the latest"; !strings.Contains(r.stdout, want) {
				t.Errorf("report does not say %q:\n%s", want, r)
			}
		})
	}
}
