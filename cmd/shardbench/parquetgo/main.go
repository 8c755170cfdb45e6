// Command parquetgo is shardbench's parquet-go contestant. It lives in a
// module of its own so that the hydroshard module, which solvers import,
// does not require parquet-go; it does not import hydroshard either.
//
// shardbench builds it (go build in this directory) and runs it as one
// long-lived child process, as it runs DuckDB's node process: one JSON
// request per line on stdin, one JSON reply per line on stdout, the time
// measured in here (so neither process start-up nor the pipe is timed).
//
//	{"cmd":"info"}
//	  -> {"ok":true,"go":"go1.26.0","parquet_go":"v0.32.0","compress":"v1.20.4"}
//	{"cmd":"load","zstd_level":3,"max_rows_per_row_group":100000,"inputs":["a.cols",...]}
//	  -> {"ok":true,"rows":[28800,...],"sums":["89ab...",...]}
//	{"cmd":"write","paths":["round/s0.parquet",...],"gc_headroom":230000000}
//	  -> {"ok":true,"sec":0.0123,"bytes":3727084}
//	a failure: {"ok":false,"error":"..."}
//
// load reads one input file per scenario (the format is in cols.go),
// converts it to rows and replaces the previous scale's rows and writer;
// sums are the rows' checksums (hex), which shardbench checks against its
// own. write writes scenario i's rows to paths[i] (new files); sec is the
// time from opening the first file to the last file's fsync, and bytes
// their total size. gc_headroom (optional) is how many bytes shardbench's
// heap may grow before its next GC: the Go contestants inside shardbench
// run next to hundreds of MB of benchmark data, so they get that much room
// before a collection, and this one gets the same (see write). End of
// input ends the process.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
)

// hydroRow is one hydros row in parquet-go's idiomatic form (a struct per
// row for GenericWriter), columns in the writer's on-disk order. Nullable
// columns are pointers: parquet-go's "optional" on a plain field would
// turn every 0.0 into a null, which is not the same data. toRows checks
// this type against the input's columns, so a schema change fails loudly
// instead of comparing different tables.
type hydroRow struct {
	StageID                        int32    `parquet:"stage_id"`
	BlockID                        *int32   `parquet:"block_id,optional"`
	HydroID                        int32    `parquet:"hydro_id"`
	TurbinedM3s                    float64  `parquet:"turbined_m3s"`
	SpillageM3s                    float64  `parquet:"spillage_m3s"`
	OutflowM3s                     float64  `parquet:"outflow_m3s"`
	EvaporationM3s                 *float64 `parquet:"evaporation_m3s,optional"`
	DivertedInflowM3s              *float64 `parquet:"diverted_inflow_m3s,optional"`
	DivertedOutflowM3s             *float64 `parquet:"diverted_outflow_m3s,optional"`
	IncrementalInflowM3s           float64  `parquet:"incremental_inflow_m3s"`
	InflowM3s                      float64  `parquet:"inflow_m3s"`
	StorageInitialHm3              float64  `parquet:"storage_initial_hm3"`
	StorageFinalHm3                float64  `parquet:"storage_final_hm3"`
	GenerationMW                   float64  `parquet:"generation_mw"`
	GenerationMWh                  float64  `parquet:"generation_mwh"`
	ProductivityMWPerM3s           *float64 `parquet:"productivity_mw_per_m3s,optional"`
	SpillageCost                   float64  `parquet:"spillage_cost"`
	WaterValuePerHm3               float64  `parquet:"water_value_per_hm3"`
	StorageBindingCode             int8     `parquet:"storage_binding_code"`
	OperativeStateCode             int8     `parquet:"operative_state_code"`
	TurbinedSlackM3s               float64  `parquet:"turbined_slack_m3s"`
	OutflowSlackBelowM3s           float64  `parquet:"outflow_slack_below_m3s"`
	OutflowSlackAboveM3s           float64  `parquet:"outflow_slack_above_m3s"`
	GenerationSlackMW              float64  `parquet:"generation_slack_mw"`
	StorageViolationBelowHm3       float64  `parquet:"storage_violation_below_hm3"`
	FillingTargetViolationHm3      float64  `parquet:"filling_target_violation_hm3"`
	EvaporationViolationPosM3s     float64  `parquet:"evaporation_violation_pos_m3s"`
	EvaporationViolationNegM3s     float64  `parquet:"evaporation_violation_neg_m3s"`
	InflowNonnegativitySlackM3s    float64  `parquet:"inflow_nonnegativity_slack_m3s"`
	WaterWithdrawalViolationPosM3s float64  `parquet:"water_withdrawal_violation_pos_m3s"`
	WaterWithdrawalViolationNegM3s float64  `parquet:"water_withdrawal_violation_neg_m3s"`
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: parquetgo (requests on stdin; run by cmd/shardbench, see its doc)")
		os.Exit(2)
	}
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "parquetgo: %v\n", err)
		os.Exit(1)
	}
}

type request struct {
	Cmd       string   `json:"cmd"`
	ZstdLevel int      `json:"zstd_level"`
	MaxRows   int64    `json:"max_rows_per_row_group"`
	Inputs    []string `json:"inputs"`
	Paths     []string `json:"paths"`
	Headroom  int64    `json:"gc_headroom"`
}

// serve answers requests until in ends. A failed request gets an error
// reply and the next one is served; only an unreadable request or a
// broken stdout ends it with an error.
func serve(in io.Reader, out io.Writer) error {
	var st state
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		var req request
		var resp map[string]any
		var err error
		if err = json.Unmarshal(sc.Bytes(), &req); err == nil {
			resp, err = st.handle(req)
		}
		if err != nil {
			resp = map[string]any{"error": err.Error()}
		}
		resp["ok"] = err == nil
		b, merr := json.Marshal(resp)
		if merr != nil {
			return merr
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}

// state is the loaded scale: its rows, one per input file, and the
// writer, long-lived (Reset per file: parquet-go's cheapest way to write
// many files).
type state struct {
	rows [][]hydroRow
	w    *parquet.GenericWriter[hydroRow]
}

func (st *state) handle(req request) (map[string]any, error) {
	switch req.Cmd {
	case "info":
		return map[string]any{"go": runtime.Version(), "parquet_go": moduleVersion("github.com/parquet-go/parquet-go"),
			"compress": moduleVersion("github.com/klauspost/compress")}, nil
	case "load":
		rows, sums, err := st.load(req.Inputs, req.ZstdLevel, req.MaxRows)
		if err != nil {
			return nil, err
		}
		return map[string]any{"rows": rows, "sums": sums}, nil
	case "write":
		sec, n, err := st.write(req.Paths, req.Headroom)
		if err != nil {
			return nil, err
		}
		return map[string]any{"sec": sec, "bytes": n}, nil
	}
	return nil, fmt.Errorf("unknown command %q", req.Cmd)
}

// moduleVersion is the version of a module linked into this binary, ""
// when the binary has no build information.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}

// load replaces the rows and the writer. The writer is configured as the
// project's writer writes: zstd at the given level through parquet-go's
// own codec (klauspost's encoder at the level klauspost maps the zstd
// level to, the same encoder settings as the writer), at most maxRows
// rows per row group; no dictionary (parquet-go only builds dictionaries
// for fields tagged "dict").
func (st *state) load(inputs []string, level int, maxRows int64) (rows []int, sums []string, err error) {
	if len(inputs) == 0 || level <= 0 || maxRows <= 0 {
		return nil, nil, fmt.Errorf("load: %d inputs, zstd level %d, %d rows per row group", len(inputs), level, maxRows)
	}
	st.rows, st.w = nil, nil
	runtime.GC() // the previous scale's rows
	for _, p := range inputs {
		n, cols, err := readColumns(p)
		if err != nil {
			return nil, nil, err
		}
		r, err := toRows(n, cols)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		st.rows = append(st.rows, r)
		rows = append(rows, n)
		sums = append(sums, fmt.Sprintf("%016x", rowsSum(r)))
	}
	st.w = parquet.NewGenericWriter[hydroRow](io.Discard,
		parquet.Compression(&pqzstd.Codec{Level: zstd.EncoderLevelFromZstd(level)}),
		parquet.MaxRowsPerRowGroup(maxRows),
		parquet.CreatedBy("shardbench", "", ""),
	)
	return rows, sums, nil
}

// write writes the loaded rows, file i to paths[i], each one fsynced, and
// times it. A GC first gives it a clean heap, as shardbench gives every
// contestant in its own process. With headroom > 0, the GC percent is set
// so that the heap may grow by headroom bytes before the next collection,
// as it may in shardbench: this process's small heap would otherwise
// collect after a few MB of garbage (GOGC=100 of the live rows), which the
// contestant did not pay when it ran inside shardbench.
func (st *state) write(paths []string, headroom int64) (sec float64, bytes int64, err error) {
	if st.w == nil {
		return 0, 0, fmt.Errorf("write before load")
	}
	if len(paths) != len(st.rows) {
		return 0, 0, fmt.Errorf("write: %d paths for %d loaded inputs", len(paths), len(st.rows))
	}
	runtime.GC()
	if headroom > 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		debug.SetGCPercent(int(max(100, headroom*100/int64(max(ms.HeapAlloc, 1)))))
	}
	t0 := time.Now()
	for i, rows := range st.rows {
		n, err := writeFile(st.w, paths[i], rows)
		if err != nil {
			return 0, 0, err
		}
		bytes += n
	}
	return time.Since(t0).Seconds(), bytes, nil
}

func writeFile(w *parquet.GenericWriter[hydroRow], path string, rows []hydroRow) (n int64, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	w.Reset(f)
	if _, err := w.Write(rows); err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("closing the writer of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
