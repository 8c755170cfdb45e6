package main

// The capi section: the C API's write path against the Go API's, on the
// production case, 1 worker. The library is built as a C shared library
// (cmd/libhydroshard) and examples/c/simulate.c is compiled against it;
// it runs as a child process (--bench: scenario 0's values computed once
// before the clock, every scenario written from them; it prints the seconds
// from hydroshard_open to the return of hydroshard_close) through each way
// in: plain arrays copied, plain arrays borrowed, Arrow C Data Interface.
// The Go contestant does the same through hydroshard.OpenRank, in a child
// process too (this program, re-run with SHARDBENCH_CAPI_GO_CHILD=1), so
// that every contestant starts as cold: the same values (internal/cstudy),
// timed from OpenRank to the return of Close.
// Contestants alternate in a fresh order each round; MB/s is Parquet bytes
// written per second, and every contestant writes the same bytes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/internal/cstudy"
	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// capiTarget is the bound: the C paths at least this fraction of
// the Go API's MB/s.
const capiTarget = 0.95

// capiContestants are the section's ways in, in report order.
var capiContestants = []struct{ key, label, flag string }{
	{"go", "Go API (hydroshard.OpenRank, rank.Writer)", ""},
	{"arrays", "C, plain arrays (copied)", ""},
	{"borrow", "C, plain arrays borrowed (\"borrow\" 1)", "--borrow"},
	{"arrow", "C, Arrow C Data Interface", "--arrow"},
}

// capiResult holds the section's samples on two file systems: the
// scratch disk, where every contestant waits on the same fsyncs (the
// ratio a solver sees), and tmpfs when there is one, where fsync is almost
// free and the C path's own CPU cost shows (the stricter ratio).
type capiResult struct {
	scenarios int
	bytes     int64 // Parquet bytes of one run (every contestant: the same)
	fs        []string
	mbps      map[string][]float64 // by fs + "/" + contestant, per round
}

func (r *capiResult) median(fs, key string) float64 { return median(r.mbps[fs+"/"+key]) }

func (r *capiResult) ratio(fs, key string) float64 { return r.median(fs, key) / r.median(fs, "go") }

// roundRatios are the contestant's per-round ratios to the Go API's run
// of the same round: the spread machine noise leaves.
func (r *capiResult) roundRatios(fs, key string) (lo, hi float64) {
	g, c := r.mbps[fs+"/go"], r.mbps[fs+"/"+key]
	var rs []float64
	for i := range min(len(g), len(c)) {
		rs = append(rs, c[i]/g[i])
	}
	if len(rs) == 0 {
		return 0, 0
	}
	return slices.Min(rs), slices.Max(rs)
}

// capiTools finds the C compiler the section needs; CI=true makes a
// missing one an error (as for every tool of the suite).
func capiTools() error {
	for _, tool := range []string{"gcc", "mpicc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("capi section: %s is not installed (scripts/install-test-tools.sh installs gcc and libopenmpi-dev)", tool)
		}
	}
	return nil
}

func runCAPISection(ctx context.Context, cfg config, root, scratch string, progress io.Writer) (*capiResult, error) {
	if err := capiTools(); err != nil {
		return nil, err
	}
	dir := filepath.Join(scratch, "capi")
	lib := filepath.Join(dir, "lib")
	fmt.Fprintln(progress, "shardbench: capi: building libhydroshard (c-shared) and examples/c/simulate.c")
	build := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("capi section: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := build("go", "build", "-buildmode=c-shared", "-o", filepath.Join(lib, "libhydroshard.so"), "./cmd/libhydroshard"); err != nil {
		return nil, err
	}
	sim := filepath.Join(dir, "simulate")
	if err := build("mpicc", "-O2", "-ffp-contract=off", "-I", filepath.Join(root, "include"), "examples/c/simulate.c",
		"-L", lib, "-lhydroshard", "-Wl,-rpath,"+lib, "-o", sim); err != nil {
		return nil, err
	}
	c := synth.Production()
	caseJSON, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	casePath := filepath.Join(dir, "case.json")
	if err := os.WriteFile(casePath, caseJSON, 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// 120 scenarios: more than the writer's queue (64), so the copied
	// arrays' buffers are reused, as in a long run.
	n := 120
	if cfg.quick {
		n = 4
	}
	res := &capiResult{scenarios: n, mbps: map[string][]float64{}}
	dirs := map[string]string{"disk": dir}
	res.fs = []string{"disk"}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "shardbench-capi-"); err == nil {
			defer os.RemoveAll(d)
			dirs["tmpfs"] = d
			res.fs = append(res.fs, "tmpfs")
		}
	}
	run := 0
	for r := range cfg.warmup + cfg.reps {
		fmt.Fprintf(progress, "shardbench: capi: round %d/%d (%d production scenarios, 1 worker, on %s)\n", r+1, cfg.warmup+cfg.reps, n, strings.Join(res.fs, " and "))
		for _, i := range rand.New(rand.NewPCG(uint64(r), 0xca91)).Perm(len(capiContestants) * len(res.fs)) {
			ct := capiContestants[i%len(capiContestants)]
			fs := res.fs[i/len(capiContestants)]
			run++
			out := filepath.Join(dirs[fs], fmt.Sprintf("run%d-%s", run, ct.key))
			runtime.GC()
			var secs float64
			if ct.key == "go" {
				secs, err = capiChild(ctx, self, []string{capiGoChildEnv + "=1"}, out, casePath, n, "")
			} else {
				// --identity env: no MPI_Init (a singleton starts OpenMPI's
				// orted beside it), the identity from OpenMPI's variables.
				secs, err = capiChild(ctx, sim, []string{"OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=1"}, out, casePath, n, ct.flag, "--identity", "env")
			}
			if err != nil {
				return nil, fmt.Errorf("capi section: %s: %w", ct.label, err)
			}
			b, err := parquetBytes(filepath.Join(out, "simulation"))
			if err != nil {
				return nil, err
			}
			if res.bytes == 0 {
				res.bytes = b
			} else if b != res.bytes {
				return nil, fmt.Errorf("capi section: %s wrote %d Parquet bytes, another contestant %d: the same values must make the same files", ct.label, b, res.bytes)
			}
			if err := os.RemoveAll(out); err != nil {
				return nil, err
			}
			if r >= cfg.warmup {
				res.mbps[fs+"/"+ct.key] = append(res.mbps[fs+"/"+ct.key], float64(b)/1e6/secs)
			}
		}
	}
	return res, nil
}

// capiGo writes n scenarios with the Go API, all from base's values.
func capiGo(ctx context.Context, out string, c *manifest.Case, base *shard.Scenario, n int) (float64, error) {
	id, err := rank.Explicit(0, 1)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	r, err := hydroshard.OpenRank(ctx, out, hydroshard.RankOptions{Identity: &id, Case: c, Scenarios: n, Workers: 1, Solver: "simulate.c"})
	if err != nil {
		return 0, err
	}
	w, err := r.Simulation(ctx)
	if err != nil {
		return 0, err
	}
	for s := 0; s < n; s++ {
		sc := *base
		sc.ID = s
		if err := w.WriteScenario(ctx, &sc); err != nil {
			return 0, err
		}
	}
	if err := r.Close(ctx); err != nil {
		return 0, err
	}
	return time.Since(t0).Seconds(), nil
}

// capiGoChildEnv makes this program the Go contestant's child process
// (main checks it first).
const capiGoChildEnv = "SHARDBENCH_CAPI_GO_CHILD"

// capiGoChild is the Go contestant's process: the same arguments as the C
// program's (--out DIR --case FILE --scenarios N ...); it prints the
// seconds from OpenRank to the return of Close as the C program does.
func capiGoChild(args []string, stdout, stderr io.Writer) int {
	var out, casePath string
	n := 0
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--out":
			out = args[i+1]
		case "--case":
			casePath = args[i+1]
		case "--scenarios":
			n, _ = strconv.Atoi(args[i+1])
		}
	}
	c, err := manifest.LoadCase(casePath)
	if err == nil && (out == "" || n <= 0) {
		err = fmt.Errorf("want --out DIR --case FILE --scenarios N, got %q", args)
	}
	var base *shard.Scenario
	if err == nil {
		base, err = cstudy.Scenario(c, 0)
	}
	var secs float64
	if err == nil {
		secs, err = capiGo(context.Background(), out, c, base, n)
	}
	if err != nil {
		fmt.Fprintf(stderr, "shardbench capi Go child: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "bench_seconds %.6f\n", secs)
	return 0
}

// capiChild runs one contestant's process once and returns the seconds it
// measured.
func capiChild(ctx context.Context, sim string, extraEnv []string, out, casePath string, n int, flags ...string) (float64, error) {
	args := []string{"--out", out, "--case", casePath, "--scenarios", strconv.Itoa(n), "--bench", "--workers", "1"}
	for _, f := range flags {
		if f != "" {
			args = append(args, f)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sim, args...)
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "OMPI_") && !strings.HasPrefix(k, "PMI") && !strings.HasPrefix(k, "SLURM") && k != capiGoChildEnv {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, extraEnv...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v\n%s", sim, strings.Join(args, " "), err, b)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "bench_seconds "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no bench_seconds line in its output:\n%s", b)
}

func (r *capiResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nC API vs Go API: production case, %d scenarios, 1 worker, %.1f MB of Parquet per run (every contestant the same bytes); each a child process, %d rounds, alternated\n",
		r.scenarios, float64(r.bytes)/1e6, len(r.mbps["disk/go"]))
	for _, fs := range r.fs {
		what := "the scratch disk: every contestant waits on the same fsyncs"
		if fs == "tmpfs" {
			what = "tmpfs: fsync almost free, the C path's own cost shows"
		}
		fmt.Fprintf(w, "   on %s\n", what)
		for _, c := range capiContestants {
			line := fmt.Sprintf("     %-45s %7.1f MB/s", c.label, r.median(fs, c.key))
			if c.key != "go" {
				verdict := "met"
				if r.ratio(fs, c.key) < capiTarget {
					verdict = "MISSED"
				}
				lo, hi := r.roundRatios(fs, c.key)
				line += fmt.Sprintf("   %.3f of the Go API (per round %.2f-%.2f; target >= %.2f: %s)", r.ratio(fs, c.key), lo, hi, capiTarget, verdict)
			}
			fmt.Fprintln(w, line)
		}
	}
}

// capiKey is the JSON key prefix of a file system: the disk's keys are
// unprefixed.
func capiKey(fs string) string {
	if fs == "disk" {
		return "capi_"
	}
	return "capi_" + fs + "_"
}

func (r *capiResult) addJSON(m map[string]any) {
	m["capi_scenarios"] = r.scenarios
	m["capi_bytes"] = r.bytes
	for _, fs := range r.fs {
		for _, c := range capiContestants {
			m[capiKey(fs)+c.key+"_mbps"] = r.median(fs, c.key)
			if c.key != "go" {
				m[capiKey(fs)+c.key+"_ratio"] = r.ratio(fs, c.key)
			}
		}
	}
}

func (r *capiResult) targetDocs() []map[string]any {
	var out []map[string]any
	for _, fs := range r.fs {
		for _, c := range capiContestants[1:] {
			out = append(out, map[string]any{"scale": "capi", "name": c.label + " / Go API, on " + fs, "key": capiKey(fs) + c.key + "_ratio",
				"value": r.ratio(fs, c.key), "target": fmt.Sprintf(">= %g", capiTarget), "pass": r.ratio(fs, c.key) >= capiTarget})
		}
	}
	return out
}
