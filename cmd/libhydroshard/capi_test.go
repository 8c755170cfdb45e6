package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/internal/cstudy"
	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/reader"
	"github.com/hydroshard/hydroshard/shard"
)

// built is what the tests build once: the library (c-shared, with the
// capitest hook), the C programs linked to it, and the Fortran example.
type built struct {
	dir, lib, include string
	simulate, check   string
	checkMPI, train   string
	err               error
}

var (
	buildOnce sync.Once
	progs     built
)

// build compiles the library and the programs once per test binary, in a
// directory of the binary's own, so that two runs of the suite at once do
// not share it.
func build(t *testing.T) built {
	t.Helper()
	for _, tool := range []string{"gcc", "mpicc", "mpirun"} {
		if _, err := exec.LookPath(tool); err != nil {
			testtools.Missing(t, tool+" is not installed", "scripts/install-test-tools.sh installs gcc, libopenmpi-dev and openmpi-bin (as root)")
		}
	}
	buildOnce.Do(func() {
		progs.err = func() error {
			root, err := testtools.RepoRoot()
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "hydroshard-capi-")
			if err != nil {
				return err
			}
			progs.dir = dir
			progs.lib = filepath.Join(dir, "lib")
			progs.include = filepath.Join(root, "include")
			run := func(name string, args ...string) error {
				cmd := exec.Command(name, args...)
				cmd.Dir = root
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
				}
				return nil
			}
			if err := run("go", "build", "-tags", "capitest", "-buildmode=c-shared", "-o", filepath.Join(progs.lib, "libhydroshard.so"), "."+string(filepath.Separator)+filepath.Join("cmd", "libhydroshard")); err != nil {
				return err
			}
			link := []string{"-I", progs.include, "-L", progs.lib, "-lhydroshard", "-Wl,-rpath," + progs.lib}
			progs.simulate = filepath.Join(dir, "simulate")
			// -ffp-contract=off: no fused multiply-add, so C computes the
			// values bit for bit as Go does.
			if err := run("mpicc", append([]string{"-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "examples/c/simulate.c", "-o", progs.simulate}, link...)...); err != nil {
				return err
			}
			progs.train = filepath.Join(dir, "train")
			if err := run("mpicc", append([]string{"-O2", "-Wall", "-Wextra", "-Werror", "cmd/libhydroshard/testdata/train.c", "-o", progs.train}, link...)...); err != nil {
				return err
			}
			progs.checkMPI = filepath.Join(dir, "check_mpi")
			if err := run("mpicc", append([]string{"-O2", "-Wall", "-Wextra", "-Werror", "-DHYDROSHARD_CAPITEST", "-DHYDROSHARD_WITH_MPI", "cmd/libhydroshard/testdata/check.c", "-o", progs.checkMPI}, link...)...); err != nil {
				return err
			}
			progs.check = filepath.Join(dir, "check")
			if err := run("gcc", append([]string{"-O2", "-Wall", "-Wextra", "-Werror", "-DHYDROSHARD_CAPITEST", "cmd/libhydroshard/testdata/check.c", "-o", progs.check}, link...)...); err != nil {
				return err
			}
			return nil
		}()
	})
	if progs.err != nil {
		t.Fatal(progs.err)
	}
	return progs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if progs.dir != "" {
		os.RemoveAll(progs.dir)
	}
	os.Exit(code)
}

// mpirun runs n copies of a program under OpenMPI, outside any SLURM
// allocation the tests may run in.
func mpirun(t *testing.T, n int, prog string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mpirun", append([]string{"--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(n), prog}, args...)...)
	cmd.Env = testtools.CleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun -np %d %s %s: %v\n%s", n, filepath.Base(prog), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mergeComplete(t *testing.T, out string) {
	t.Helper()
	rep, err := hydroshard.Merge(context.Background(), out, hydroshard.MergeOptions{})
	if err != nil {
		t.Fatalf("merge %s: %v", out, err)
	}
	if rep.Outcome != merge.Complete || rep.Committed != rep.Scenarios {
		t.Fatalf("merge %s: %s, %d of %d committed, problems %v", out, rep.Status, rep.Committed, rep.Scenarios, rep.Problems)
	}
}

// goStudy writes the study the examples write, through the Go API: world
// ranks one after the other, each its owned scenarios, then the merge.
// With openMPI the identity is detected from OpenMPI's variables, as the
// Fortran example's is; else it is given, as the C example's is.
func goStudy(t *testing.T, out, caseName string, scenarios, world int, solver string, openMPI bool) {
	t.Helper()
	ctx := context.Background()
	for me := 0; me < world; me++ {
		id, err := rank.Explicit(me, world)
		if err != nil {
			t.Fatal(err)
		}
		opts := hydroshard.RankOptions{Identity: &id, CasePath: caseName, Scenarios: scenarios, Workers: 1, Solver: solver}
		if openMPI {
			env := map[string]string{"OMPI_COMM_WORLD_RANK": strconv.Itoa(me), "OMPI_COMM_WORLD_SIZE": strconv.Itoa(world)}
			opts.Identity, opts.Env = nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		}
		r, err := hydroshard.OpenRank(ctx, out, opts)
		if err != nil {
			t.Fatal(err)
		}
		w, err := r.Simulation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range w.Remaining() {
			sc, err := cstudy.Scenario(r.Case(), s)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteScenario(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mergeComplete(t, out)
}

// timeKeys are the JSON fields that hold when a run happened: the only
// thing two writes of the same study may differ in (created_at: when the
// policy's checkpoint was recorded).
var timeKeys = []string{"started_at", "completed_at", "generated_at", "duration_seconds", "created_at"}

func dropTimes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range timeKeys {
			delete(x, k)
		}
		// The SHA-256 of policy/metadata.json covers its created_at; the
		// stage files' hashes stay compared.
		if sums, ok := x["policy_sha256"].(map[string]any); ok {
			delete(sums, "metadata.json")
		}
		for k, e := range x {
			x[k] = dropTimes(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropTimes(e)
		}
	}
	return v
}

// sameStudy compares two merged studies file by file: every file the
// merge made (not _shards, the ranks' working state: journals and
// fragments named by random attempt ids) must be byte-identical, JSON
// documents after removing their timestamps.
func sameStudy(t *testing.T, got, want string) {
	t.Helper()
	files := func(root string) map[string]string {
		m := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() && rel == "_shards" {
				return fs.SkipDir
			}
			if !d.IsDir() {
				m[filepath.ToSlash(rel)] = p
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	g, w := files(got), files(want)
	var names []string
	for n := range w {
		names = append(names, n)
		if _, ok := g[n]; !ok {
			t.Errorf("%s: missing (the Go API wrote it)", n)
		}
	}
	for n := range g {
		if _, ok := w[n]; !ok {
			t.Errorf("%s: extra (the Go API did not write it)", n)
		}
	}
	slices.Sort(names)
	parquet := 0
	for _, n := range names {
		if _, ok := g[n]; !ok {
			continue
		}
		a, err := os.ReadFile(g[n])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(w[n])
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(n, ".json") {
			var x, y any
			if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
				t.Errorf("%s: not JSON", n)
				continue
			}
			if !reflect.DeepEqual(dropTimes(x), dropTimes(y)) {
				t.Errorf("%s differs beyond its timestamps:\n%s\nwant\n%s", n, a, b)
			}
			continue
		}
		if strings.HasSuffix(n, ".parquet") {
			parquet++
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: %d bytes differ from the Go API's %d", n, len(a), len(b))
		}
	}
	if parquet == 0 {
		t.Fatalf("no Parquet file compared under %s", want)
	}
	t.Logf("%d files compared, %d of them Parquet", len(names), parquet)
}

// goStudies caches the Go API's study per (case, scenarios, solver).
var goStudies sync.Map

func goReference(t *testing.T, caseName string, scenarios int, solver string, openMPI bool) string {
	t.Helper()
	key := fmt.Sprint(caseName, scenarios, solver, openMPI)
	if dir, ok := goStudies.Load(key); ok {
		return dir.(string)
	}
	dir := filepath.Join(build(t).dir, "go-"+strings.NewReplacer("/", "_", " ", "_").Replace(key))
	goStudy(t, dir, caseName, scenarios, 4, solver, openMPI)
	goStudies.Store(key, dir)
	return dir
}

// TestCStudyMatchesGoAPI: 4 C processes under mpirun write a study through
// each way in (plain arrays copied, plain arrays borrowed, Arrow), with one
// solver thread or several sharing the handle; it is merged, and every
// file is the one the Go API writes for the same values.
func TestCStudyMatchesGoAPI(t *testing.T) {
	b := build(t)
	for _, tc := range []struct {
		name, caseName string
		scenarios      int
		args           []string
	}{
		{"arrays/tiny", "tiny", 12, nil},
		{"borrowed/tiny", "tiny", 12, []string{"--borrow"}},
		{"arrow/tiny", "tiny", 12, []string{"--arrow"}},
		{"arrays/demo", "demo", 8, []string{"--workers", "2"}},
		{"arrow/demo", "demo", 8, []string{"--arrow", "--workers", "2"}},
		// Solver threads sharing one handle (hydroshard.h THREADS): every
		// rank's scenarios built and written by 3 threads at once.
		{"threads/tiny", "tiny", 24, []string{"--threads", "3", "--workers", "2"}},
		{"threads-arrow/demo", "demo", 16, []string{"--threads", "3", "--arrow"}},
		{"threads-borrowed/tiny", "tiny", 24, []string{"--threads", "3", "--borrow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "study")
			log := mpirun(t, 4, b.simulate, append([]string{"--out", out, "--case", tc.caseName, "--scenarios", strconv.Itoa(tc.scenarios)}, tc.args...)...)
			if got := strings.Count(log, "scenarios written"); got != 4 {
				t.Fatalf("%d of 4 ranks finished:\n%s", got, log)
			}
			mergeComplete(t, out)
			sameStudy(t, out, goReference(t, tc.caseName, tc.scenarios, "simulate.c", false))
		})
	}
}

// TestFortranStudyMatchesGoAPI: the same through the Fortran module, the
// identity detected from OpenMPI's environment.
func TestFortranStudyMatchesGoAPI(t *testing.T) {
	b := build(t)
	for _, tool := range []string{"gfortran", "mpifort"} {
		if _, err := exec.LookPath(tool); err != nil {
			testtools.Missing(t, tool+" is not installed", "scripts/install-test-tools.sh installs gfortran and libopenmpi-dev (as root)")
		}
	}
	root, err := testtools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	fortran := filepath.Join(t.TempDir(), "simulate_f")
	cmd := exec.Command("mpifort", "-O2", "-ffp-contract=off", "-J", t.TempDir(), "include/hydroshard.f90", "examples/fortran/simulate.f90",
		"-o", fortran, "-L", b.lib, "-lhydroshard", "-Wl,-rpath,"+b.lib)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	for _, tc := range []struct {
		name, caseName string
		scenarios      int
		args           []string
	}{
		{"arrays/tiny", "tiny", 12, nil},
		{"borrowed/demo", "demo", 8, []string{"--borrow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "study")
			mpirun(t, 4, fortran, append([]string{"--out", out, "--case", tc.caseName, "--scenarios", strconv.Itoa(tc.scenarios)}, tc.args...)...)
			mergeComplete(t, out)
			sameStudy(t, out, goReference(t, tc.caseName, tc.scenarios, "simulate.f90", true))
		})
	}
}

// TestCBufferOwnership: what the header promises about the caller's
// buffers. Copied arrays may be changed as soon as hydroshard_table
// returns (the file keeps the value given); borrowed arrays and Arrow
// buffers are read in place until the commit (a change shows), which is
// what makes those paths copy-free.
func TestCBufferOwnership(t *testing.T) {
	b := build(t)
	for _, tc := range []struct {
		name    string
		args    []string
		inPlace bool
	}{
		{"copied", nil, false},
		{"borrowed", []string{"--borrow"}, true},
		{"arrow", []string{"--arrow"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "study")
			mpirun(t, 2, b.simulate, append([]string{"--out", out, "--case", "tiny", "--scenarios", "4", "--mutate"}, tc.args...)...)
			mergeComplete(t, out)
			st, err := reader.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st.Scenarios() {
				var rows shard.CostsRows
				if err := st.ReadRows(context.Background(), "costs", s, &rows); err != nil {
					t.Fatal(err)
				}
				want := cstudy.Value(s, 0, 1) // total_cost is column 1 once block_id is left out
				if tc.inPlace {
					want = -1.5
				}
				if got := rows.TotalCost[0]; got != want {
					t.Errorf("scenario %d: costs.total_cost[0] = %v, want %v", s, got, want)
				}
			}
		})
	}
}

var checkLine = regexp.MustCompile(`^CHECK (\S+) (-?\d+) ?(.*)$`)

// runCheck runs testdata/check.c in a mode and returns its CHECK lines by
// name: the return code and the message.
func runCheck(t *testing.T, mode string) map[string]struct {
	rc  int
	msg string
} {
	t.Helper()
	b := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.check, mode, t.TempDir())
	cmd.Env = testtools.CleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check %s: %v (the host process must never crash)\n%s", mode, err, out)
	}
	return checkLines(t, mode, out)
}

func checkLines(t *testing.T, mode string, out []byte) map[string]struct {
	rc  int
	msg string
} {
	t.Helper()
	got := map[string]struct {
		rc  int
		msg string
	}{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := checkLine.FindStringSubmatch(sc.Text()); m != nil {
			rc, _ := strconv.Atoi(m[2])
			got[m[1]] = struct {
				rc  int
				msg string
			}{rc, m[3]}
		}
	}
	if _, ok := got["done"]; !ok {
		t.Fatalf("check %s did not finish:\n%s", mode, out)
	}
	return got
}

// TestCBadInput: bad input through the C API gets a return code and a
// message naming what is wrong, never a crash; the handle stays usable.
func TestCBadInput(t *testing.T) {
	got := runCheck(t, "errors")
	for _, tc := range []struct {
		name string
		rc   int
		msg  string
	}{
		{"null_handle", codeInval, "the handle is NULL"},
		{"open_without_case", codeInval, "no case"},
		{"bad_identity", codeIdentity, "Rank=4 is out of range for World=4"},
		{"unknown_case", codeCase, `"/nonexistent/case.json"`},
		{"bad_case_json", codeCase, "case JSON"},
		{"null_case", codeInval, "path is NULL"},
		{"unknown_int_option", codeInval, `unknown option "wrokers"`},
		{"negative_option", codeInval, "queue = -1"},
		{"bad_ownership", codeInval, `"diagonal"`},
		{"table_before_open", codeInval, "not open"},
		{"set_after_open", codeInval, "already open"},
		{"unknown_table", codeInval, `unknown table "hydro"`},
		{"null_entity", codeInval, "entity is NULL"},
		{"null_columns", codeInval, "columns is NULL"},
		{"null_data", codeInval, "data is NULL"},
		{"null_column_pointer", codeInval, "simulation/buses.bus_id: missing"},
		{"unknown_column", codeInval, "simulation/buses.load_gw: no such column"},
		{"derived_column", codeInval, "simulation/thermals.generation_mwh: is derived"},
		{"duplicate_column", codeInval, "simulation/buses.stage_id: given twice"},
		{"missing_column", codeInval, "simulation/buses.bus_id: missing"},
		{"negative_rows", codeInval, "-1 rows"},
		{"huge_rows", codeInval, "1099511627776 rows"},
		{"validity_on_not_nullable", codeInval, "is not nullable: its validity pointer must be NULL"},
		{"costs_ok", codeOK, ""},
		{"costs_twice", codeInval, "scenario 0: table costs given twice"},
		{"write_without_tables", codeInval, "scenario 3: no table was given"},
		{"write_missing_tables", codeInval, "scenario 0: has no hydros table"},
		{"discard", codeOK, ""},
		{"discard_again", codeInval, "no table is pending"},
		{"costs_out_of_range", codeOK, ""},
		{"write_out_of_range", codeInval, "scenario 9: id out of range"},
		{"arrow_short_column", codeInval, `column "immediate_cost" has 2 rows, want 3`},
		{"arrow_taken_on_failure", 1, ""},
		{"arrow_costs_ok", codeOK, ""},
		{"arrow_discard", codeOK, ""},
		{"arrow_released_on_discard", 1, ""},
		{"arrow_null", codeInval, "ArrowArray or ArrowSchema is NULL"},
		{"arrow_not_struct", codeInval, "must be of struct type"},
		{"arrow_wrong_type", codeInval, `simulation/costs.stage_id: is float64 (format "g"): want int32 (format "i"`},
		{"owned_null_array", -1, "id array is NULL"},
		{"case_unknown", -1, `unknown "hours"`},
		{"columns_unknown", 1, ""},
		{"iteration_unknown_field", codeInval, `unknown field "bogus"`},
		{"checkpoint_bad_stage", codeInval, "stage 7: the case has stages 0..2"},
		{"checkpoint_null_arrays", codeInval, "a NULL array for 2 cuts"},
		{"checkpoint_stage_empty", codeOK, ""},
		{"checkpoint_stage_twice", codeInval, "checkpoint 1: stage 0 given twice"},
		{"checkpoint_missing_stages", codeInval, "no cuts given for stage 1, 2"},
		{"close", codeOK, ""},
		{"write_after_close", codeClosed, "closed"},
		{"close_twice", codeClosed, "closed"},
	} {
		g, ok := got[tc.name]
		switch {
		case !ok:
			t.Errorf("%s: no result", tc.name)
		case g.rc != tc.rc || !strings.Contains(g.msg, tc.msg):
			t.Errorf("%s: %d %q, want %d and a message with %q", tc.name, g.rc, g.msg, tc.rc, tc.msg)
		}
	}
}

// TestCSignals: the library leaves the host's SIGTERM handler alone until
// hydroshard_handle_signals; then SIGTERM interrupts the writers and the
// journal records it.
//
// The same checks run inside MPI processes too (mpirun -np 2, each rank
// after MPI_Init): OpenMPI's runtime beside Go's changes none of it.
func TestCSignals(t *testing.T) {
	want := []struct {
		name string
		rc   int
	}{
		{"costs", 0}, {"host_handler", 1}, {"interrupted_before", 0}, {"handle_signals", 0},
		{"interrupted_after", 1}, {"host_handler_after", 1}, {"write_interrupted", codeInterrupted}, {"close_interrupted", 0},
	}
	t.Run("process", func(t *testing.T) {
		got := runCheck(t, "signals")
		for _, tc := range want {
			if g := got[tc.name]; g.rc != tc.rc {
				t.Errorf("%s: %d (%s), want %d", tc.name, g.rc, g.msg, tc.rc)
			}
		}
	})
	t.Run("mpirun", func(t *testing.T) {
		b := build(t)
		log := mpirun(t, 2, b.checkMPI, "signals", t.TempDir())
		for _, tc := range want {
			line := fmt.Sprintf("CHECK %s %d ", tc.name, tc.rc)
			if n := strings.Count(log, line); n != 2 {
				t.Errorf("%q: %d of the 2 ranks, want both:\n%s", line, n, log)
			}
		}
	})
}

// TestCPanic: a Go panic inside a call comes back as HYDROSHARD_EINTERNAL
// with a message, and the host and the handle carry on.
func TestCPanic(t *testing.T) {
	got := runCheck(t, "panic")
	if g := got["panic"]; g.rc != codeInternal || !strings.Contains(g.msg, "internal error") {
		t.Errorf("panic: %d %q, want %d and an internal error", g.rc, g.msg, codeInternal)
	}
	for _, n := range []string{"costs_after_panic", "close_after_panic"} {
		if g := got[n]; g.rc != 0 {
			t.Errorf("%s: %d %q, want 0", n, g.rc, g.msg)
		}
	}
}

var (
	protoRE = regexp.MustCompile(`(?m)^(?:extern\s+)?([A-Za-z_][\w\s\*]*?[\s\*])(hydroshard_\w+)\s*\(([^)]*)\);`)
	abiRE   = regexp.MustCompile(`#define HYDROSHARD_ABI_VERSION (\d+)`)
	codeRE  = regexp.MustCompile(`#define (HYDROSHARD_E?[A-Z]+) (\d+)`)
)

// signature reduces a C prototype to what the ABI sees: the return and
// parameter types without const, names or spacing, every pointer "ptr".
func signature(ret, params string) string {
	norm := func(s string) string {
		s = strings.TrimSpace(strings.ReplaceAll(s, "const", ""))
		if strings.Contains(s, "*") {
			return "ptr"
		}
		f := strings.Fields(s)
		return strings.Join(f, " ")
	}
	var ps []string
	for _, p := range strings.Split(params, ",") {
		p = strings.TrimSpace(p)
		if p == "void" || p == "" {
			continue
		}
		if !strings.Contains(p, "*") {
			f := strings.Fields(p)
			p = strings.Join(f[:len(f)-1], " ") // drop the parameter name
		}
		ps = append(ps, norm(p))
	}
	return norm(ret) + "(" + strings.Join(ps, ", ") + ")"
}

func prototypes(t *testing.T, text string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range protoRE.FindAllStringSubmatch(text, -1) {
		m[p[2]] = signature(p[1], p[3])
	}
	return m
}

// TestHeaderMatchesLibrary: include/hydroshard.h, written for C users,
// declares exactly the functions the library exports, with the same
// types (const aside), and the ABI version and return codes the Go side
// uses.
func TestHeaderMatchesLibrary(t *testing.T) {
	b := build(t)
	hdr, err := os.ReadFile(filepath.Join(b.include, "hydroshard.h"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := os.ReadFile(filepath.Join(b.lib, "libhydroshard.h"))
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := prototypes(t, string(hdr)), prototypes(t, string(gen))
	delete(theirs, "hydroshard_test_panic") // the capitest hook, not part of the API
	if len(ours) < 30 {
		t.Fatalf("only %d prototypes found in hydroshard.h", len(ours))
	}
	for name, sig := range theirs {
		if o, ok := ours[name]; !ok {
			t.Errorf("%s is exported but not declared in hydroshard.h", name)
		} else if o != sig {
			t.Errorf("%s: hydroshard.h says %s, the library %s", name, o, sig)
		}
	}
	for name := range ours {
		if _, ok := theirs[name]; !ok {
			t.Errorf("%s is declared in hydroshard.h but not exported", name)
		}
	}
	if m := abiRE.FindSubmatch(hdr); m == nil || string(m[1]) != strconv.Itoa(abiVersion) {
		t.Errorf("HYDROSHARD_ABI_VERSION in hydroshard.h is %q, the library's %d", m, abiVersion)
	}
	codes := map[string]int{"HYDROSHARD_OK": codeOK, "HYDROSHARD_EINVAL": codeInval, "HYDROSHARD_ECASE": codeCase,
		"HYDROSHARD_EIDENTITY": codeIdentity, "HYDROSHARD_ECOMMITTED": codeCommitted, "HYDROSHARD_ECLOSED": codeClosed,
		"HYDROSHARD_EIO": codeIO, "HYDROSHARD_EINTERRUPTED": codeInterrupted, "HYDROSHARD_EINTERNAL": codeInternal}
	found := 0
	for _, m := range codeRE.FindAllStringSubmatch(string(hdr), -1) {
		want, ok := codes[m[1]]
		if !ok {
			continue
		}
		found++
		if m[2] != strconv.Itoa(want) {
			t.Errorf("%s is %s in hydroshard.h, %d in the library", m[1], m[2], want)
		}
	}
	if found != len(codes) {
		t.Errorf("%d of %d return codes found in hydroshard.h", found, len(codes))
	}

	// The Fortran module binds every function but the Arrow one, by its C
	// name, and defines the same return codes.
	f90, err := os.ReadFile(filepath.Join(b.include, "hydroshard.f90"))
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string]bool{}
	for _, m := range bindRE.FindAllStringSubmatch(string(f90), -1) {
		bound[m[1]] = true
	}
	for name := range ours {
		if want := name != "hydroshard_table_arrow"; bound[name] != want {
			t.Errorf("%s: bound in hydroshard.f90 %v, want %v", name, bound[name], want)
		}
	}
	for name := range bound {
		if _, ok := ours[name]; !ok && name != "strlen" {
			t.Errorf("hydroshard.f90 binds %s, which hydroshard.h does not declare", name)
		}
	}
	for name, want := range codes {
		re := regexp.MustCompile(`(?i)` + name + `\s*=\s*(\d+)`)
		if m := re.FindSubmatch(f90); m == nil || string(m[1]) != strconv.Itoa(want) {
			t.Errorf("hydroshard.f90: %s is %q, want %d", name, m, want)
		}
	}
}

var bindRE = regexp.MustCompile(`bind\(c,\s*name\s*=\s*'(\w+)'\)`)

// trainingConfig is the replayed run's: 4 ranks, 3 iterations of 3
// forward passes, a checkpoint at the last one.
const (
	trainPasses  = 3
	trainIters   = 3
	trainSeed    = 11
	trainThreads = 2
)

// trainingSteps is rank me's part of the run, as cmd/simrank writes it:
// its iteration records, its checkpoint fragment (the root adds the bases,
// visited states and metadata), and how it closes.
type trainingSteps struct {
	iterations []manifest.IterationInfo
	cuts       []policy.StageCuts
	basis      []policy.StageBasis
	states     []policy.StageStates
	meta       *manifest.PolicyMeta
}

func trainingRun(cs *manifest.Case, me, world int) trainingSteps {
	var st trainingSteps
	for it := 1; it <= trainIters; it++ {
		st.iterations = append(st.iterations, synth.TrainingIteration(cs, trainSeed, it, trainPasses, me, world, trainThreads))
	}
	st.cuts = synth.CheckpointCutsCap(cs, trainSeed, trainIters, trainIters, trainPasses, me, world, false)
	if me == 0 {
		all := synth.CheckpointCutsCap(cs, trainSeed, trainIters, trainIters, trainPasses, 0, 1, true)
		active := make([]int, len(all))
		for s := range all {
			for _, c := range all[s].Cuts {
				if c.IsActive {
					active[s]++
				}
			}
		}
		st.basis = synth.CheckpointBasis(cs, trainSeed, trainIters, active)
		st.states = synth.CheckpointStates(cs, trainSeed, trainIters, trainPasses)
		visited := 0
		for _, s := range st.states {
			if s.StateDimension > 0 {
				visited += len(s.Data) / int(s.StateDimension)
			}
		}
		st.meta = synth.CheckpointMeta(cs, trainSeed, trainIters, trainIters, trainPasses, visited)
	}
	return st
}

// script writes the steps in testdata/train.c's format.
func (st trainingSteps) script(t *testing.T, path string, me int) {
	t.Helper()
	var b strings.Builder
	hex := func(v float64) string { return strconv.FormatFloat(v, 'x', -1, 64) }
	for _, info := range st.iterations {
		j, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "iteration %s\n", j)
	}
	for s, sc := range st.cuts {
		sat := 0
		for i, c := range sc.Cuts {
			has := len(c.StateAtGeneration) > 0
			if i == 0 && has {
				sat = 1
			} else if has != (sat == 1) {
				t.Fatalf("stage %d: cuts with and without states at generation", s)
			}
		}
		fmt.Fprintf(&b, "stage %d %d %d %d %d %d %d\n", trainIters, sc.StageID, sc.Capacity, sc.WarmStartCount, len(sc.Cuts), sc.StateDimension, sat)
		for _, c := range sc.Cuts {
			active := 0
			if c.IsActive {
				active = 1
			}
			fmt.Fprintf(&b, "cut %d %d %d %d %s %d", c.CutID, c.SlotIndex, c.Iteration, c.ForwardPassIndex, hex(c.Intercept), active)
			for _, v := range append(slices.Clone(c.Coefficients), c.StateAtGeneration...) {
				b.WriteString(" " + hex(v))
			}
			b.WriteString("\n")
		}
	}
	for _, bs := range st.basis {
		fmt.Fprintf(&b, "basis %d %d %d %d %d %d", trainIters, bs.StageID, bs.Iteration, len(bs.ColumnStatus), len(bs.RowStatus), bs.NumCutRows)
		for _, v := range append(slices.Clone(bs.ColumnStatus), bs.RowStatus...) {
			fmt.Fprintf(&b, " %d", v)
		}
		b.WriteString("\n")
	}
	for _, ss := range st.states {
		count := 0
		if ss.StateDimension > 0 {
			count = len(ss.Data) / int(ss.StateDimension)
		}
		fmt.Fprintf(&b, "states %d %d %d %d", trainIters, ss.StageID, count, ss.StateDimension)
		for _, v := range ss.Data {
			b.WriteString(" " + hex(v))
		}
		b.WriteString("\n")
	}
	if st.meta != nil {
		j, err := json.Marshal(st.meta)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "meta %d %s\n", trainIters, j)
	}
	fmt.Fprintf(&b, "checkpoint %d\n", trainIters)
	if me == 0 {
		fmt.Fprintf(&b, "terminated %s\n", rank.TerminationIterationLimit)
	} else {
		b.WriteString("close\n")
	}
	if err := os.WriteFile(fmt.Sprintf("%s.%d", path, me), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCTrainingMatchesGoAPI: a training run (iterations with convergence
// and timing rows, a checkpoint with every rank's cuts and the root's
// bases, visited states and metadata) made through the C API by 4
// processes under mpirun merges to the same files as through the Go API.
func TestCTrainingMatchesGoAPI(t *testing.T) {
	b := build(t)
	cs, err := hydroshard.LoadCase("tiny")
	if err != nil {
		t.Fatal(err)
	}
	const world = 4
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	for me := 0; me < world; me++ {
		trainingRun(cs, me, world).script(t, script, me)
	}
	out := filepath.Join(dir, "c")
	mpirun(t, world, b.train, out, "tiny", script, strconv.Itoa(trainPasses), strconv.Itoa(trainIters), strconv.Itoa(trainSeed), strconv.Itoa(trainThreads))
	mergeTraining(t, out)

	ref := filepath.Join(dir, "go")
	ctx := context.Background()
	for me := 0; me < world; me++ {
		id, err := rank.Explicit(me, world)
		if err != nil {
			t.Fatal(err)
		}
		cfg := manifest.TrainingConfig{Seed: trainSeed, MaxIterations: trainIters, ForwardPasses: trainPasses, StoppingMode: "iteration_limit", PolicyMode: "fresh"}
		r, err := hydroshard.OpenRank(ctx, ref, hydroshard.RankOptions{Identity: &id, CasePath: "tiny", Training: cfg, Threads: trainThreads, Solver: "train.c"})
		if err != nil {
			t.Fatal(err)
		}
		tw, err := r.Training(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st := trainingRun(cs, me, world)
		for _, info := range st.iterations {
			if err := tw.WriteIteration(ctx, info); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.WriteCheckpoint(ctx, trainIters, st.cuts, st.basis, st.states, st.meta); err != nil {
			t.Fatal(err)
		}
		if me == 0 {
			if err := tw.CloseTerminated(rank.TerminationIterationLimit); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mergeTraining(t, ref)
	sameStudy(t, out, ref)
	if _, err := os.Stat(filepath.Join(out, "policy", "metadata.json")); err != nil {
		t.Errorf("no merged policy: %v", err)
	}
}

// mergeTraining merges a training-only study and checks the policy came
// from the checkpoint.
func mergeTraining(t *testing.T, out string) {
	t.Helper()
	rep, err := hydroshard.Merge(context.Background(), out, hydroshard.MergeOptions{})
	if err != nil {
		t.Fatalf("merge %s: %v", out, err)
	}
	if rep.Training == nil || rep.Training.Policy == nil || rep.Training.Policy.Iteration != trainIters {
		t.Fatalf("merge %s: %s, training %+v: want the policy of iteration %d", out, rep.Status, rep.Training, trainIters)
	}
}

// TestStaticArchive: the c-archive build (libhydroshard.a) links into a C
// program with no shared library at run time, and writes the same study.
func TestStaticArchive(t *testing.T) {
	b := build(t)
	root, err := testtools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "libhydroshard.a")
	prog := filepath.Join(dir, "simulate_static")
	for _, args := range [][]string{
		{"go", "build", "-buildmode=c-archive", "-o", archive, "./cmd/libhydroshard"},
		{"mpicc", "-O2", "-ffp-contract=off", "-I", b.include, "examples/c/simulate.c", archive, "-lpthread", "-lm", "-o", prog},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := exec.Command("ldd", prog).CombinedOutput(); err == nil && strings.Contains(string(out), "libhydroshard") {
		t.Fatalf("%s still needs the shared library:\n%s", prog, out)
	}
	out := filepath.Join(dir, "study")
	mpirun(t, 4, prog, "--out", out, "--case", "tiny", "--scenarios", "12", "--arrow")
	mergeComplete(t, out)
	sameStudy(t, out, goReference(t, "tiny", 12, "simulate.c", false))
}
