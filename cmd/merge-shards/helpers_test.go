package main

// Helpers of the merge-shards process tests: building simrank and
// merge-shards once, running them as real child processes, and reading
// journals and output directories independently of the merge package.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

var (
	binDir     string // 0755, so that a non-root child can run the binaries
	simrankBin string
	mergeBin   string
	tinyDir    string // absolute path of testdata/cases/tiny
	demoDir    string // absolute path of testdata/cases/demo
)

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func testMain(m *testing.M) (int, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "merge-shards-test-bin"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(binDir)
	if err := os.Chmod(binDir, 0o755); err != nil {
		return 0, err
	}
	simrankBin = filepath.Join(binDir, "simrank")
	mergeBin = filepath.Join(binDir, "merge-shards")
	// Both are built with the faultinject tag: the tests arm
	// HYDROSHARD_FAULT, which release builds never read.
	for _, b := range []struct{ out, pkg, tags string }{{simrankBin, "../simrank", "faultinject"}, {mergeBin, ".", "faultinject"}} {
		build := exec.Command("go", "build", "-tags", b.tags, "-o", b.out, b.pkg)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return 0, fmt.Errorf("building %s: %w", b.pkg, err)
		}
	}
	if tinyDir, err = filepath.Abs("../../testdata/cases/tiny"); err != nil {
		return 0, err
	}
	if demoDir, err = filepath.Abs("../../testdata/cases/demo"); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// testCtx bounds every child process of a test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// simrankCmd prepares a simrank child process for the tiny case (unless
// args name another --case; the last --case wins).
func simrankCmd(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, simrankBin, append([]string{"--case", tinyDir, "--quiet"}, args...)...)
	cmd.Env = append(testtools.CleanEnv(), env...)
	return cmd
}

// runSimrank runs one simrank process and fails the test unless it exits 0.
func runSimrank(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := simrankCmd(testCtx(t), env, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("simrank %v %v: %v\n%s", env, args, err, stderr.String())
	}
}

// runRanks runs a whole SLURM-style job: ranks processes at once, each with
// SLURM_PROCID/SLURM_NTASKS/SLURM_JOB_ID, and waits for all of them.
func runRanks(t *testing.T, ranks int, job string, args ...string) {
	t.Helper()
	_, _, errs, done := startRanks(t, ranks, job, args...)
	<-done
	for r, err := range errs {
		if err != nil {
			t.Fatalf("job %s rank %d: %v", job, r, err)
		}
	}
}

// startRanks starts a job of ranks simrank processes; exited[r] is set
// once rank r's process has been waited for, and done closes when all have.
func startRanks(t *testing.T, ranks int, job string, args ...string) (cmds []*exec.Cmd, exited []atomic.Bool, errs []error, done chan struct{}) {
	t.Helper()
	ctx := testCtx(t)
	cmds = make([]*exec.Cmd, ranks)
	exited = make([]atomic.Bool, ranks)
	errs = make([]error, ranks)
	stderr := make([]bytes.Buffer, ranks)
	for r := range ranks {
		cmds[r] = simrankCmd(ctx, slurmEnv(r, ranks, job), args...)
		cmds[r].Stderr = &stderr[r]
		if err := cmds[r].Start(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for r, c := range cmds {
		wg.Go(func() {
			if err := c.Wait(); err != nil {
				errs[r] = &rankError{err: err, stderr: stderr[r].String()}
			}
			exited[r].Store(true)
		})
	}
	done = make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		<-done
	})
	return cmds, exited, errs, done
}

type rankError struct {
	err    error
	stderr string
}

func (e *rankError) Error() string { return e.err.Error() + "\n" + e.stderr }

// referenceIndex runs a job of ranks uninterrupted into a new directory,
// merges it (complete) and returns its integrity index: what an
// interrupted, damaged or relinked run of the same arguments must end
// byte-identical to.
func referenceIndex(t *testing.T, ranks int, job string, args ...string) []byte {
	t.Helper()
	ref := t.TempDir()
	runRanks(t, ranks, job, append([]string{"--out", ref}, args...)...)
	wantExit(t, mergeShards(t, ref), 0)
	return readFile(t, simPath(ref, layout.IndexName))
}

func slurmEnv(r, n int, job string) []string {
	return []string{"SLURM_PROCID=" + strconv.Itoa(r), "SLURM_NTASKS=" + strconv.Itoa(n), "SLURM_JOB_ID=" + job}
}

// result is what a merge-shards process did.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) output() string { return r.stdout + r.stderr }

func (r result) String() string {
	return fmt.Sprintf("merge-shards %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// mergeShards runs merge-shards as a child process.
func mergeShards(t *testing.T, args ...string) result {
	t.Helper()
	return mergeShardsAs(t, nil, args...)
}

// mergeShardsAs runs merge-shards with the given credentials (nil: ours).
func mergeShardsAs(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(testCtx(t), mergeBin, args...)
	cmd.Env = testtools.CleanEnv()
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return runCmd(t, cmd, args, fmt.Sprintf("merge-shards %v", args))
}

// runCmd runs cmd, capturing its output; a process that does not exit
// normally (killed by a signal) fails the test, naming it what.
func runCmd(t *testing.T, cmd *exec.Cmd, args []string, what string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s did not exit normally: %v\n%s", what, err, stderr.String())
	}
	return r
}

// wantExit fails the test unless r exited with code. A Go panic also
// exits 2, the code of corrupt input: it never counts as one.
func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("merge-shards panicked:\n%s", r)
	}
	if r.code != code {
		t.Fatalf("want exit %d, got\n%s", code, r)
	}
}

// mergeJSON runs merge-shards --json with args and decodes its report.
func mergeJSON(t *testing.T, code int, args ...string) map[string]any {
	t.Helper()
	r := mergeShards(t, append([]string{"--json"}, args...)...)
	wantExit(t, r, code)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, r)
	}
	return m
}

// num reads a JSON number of a decoded report.
func num(t *testing.T, m map[string]any, key string) int {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok {
		t.Fatalf("report key %q is %T (%v), want a number", key, m[key], m[key])
	}
	return int(v)
}

// ints reads a JSON array of numbers.
func ints(t *testing.T, v any) []int {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is %T, want an array", v, v)
	}
	out := []int{}
	for _, x := range arr {
		out = append(out, int(x.(float64)))
	}
	return out
}

func readJSONFile(t *testing.T, p string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return m
}

func simPath(out, name string) string { return filepath.Join(out, layout.SimDir, name) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if exists(p) {
		t.Fatalf("%s exists, want it absent", p)
	}
}

func mustExist(t *testing.T, p string) {
	t.Helper()
	if !exists(p) {
		t.Fatalf("%s is missing", p)
	}
}

func writeIDs(t *testing.T, p string, ids ...int) {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintln(&b, id)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readIDFile reads a --rerun-list file: one id per line.
func readIDFile(t *testing.T, p string) []int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := []int{}
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		v, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("%s: line %q is not an id", p, l)
		}
		out = append(out, v)
	}
	return out
}

// snapshot describes every entry under root, excluding nothing: each
// directory, each file's size, XXH64 and modification time, each
// symlink's target. Two equal snapshots mean no byte and no name changed,
// and no file was rewritten, not even with the same bytes.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "symlink " + target
		case d.IsDir():
			m[rel] = "dir"
		case !d.Type().IsRegular(): // a FIFO would block a read
			m[rel] = "special " + d.Type().String()
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("file %d %016x mtime %d", len(b), xxhash.Sum64(b), info.ModTime().UnixNano())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// diffSnapshots lists what differs between two snapshots, ignoring the
// paths in allow (relative to the snapshot root).
func diffSnapshots(a, b map[string]string, allow ...string) []string {
	skip := map[string]bool{}
	for _, p := range allow {
		skip[filepath.FromSlash(p)] = true
	}
	var d []string
	for k, v := range a {
		if skip[k] {
			continue
		}
		if w, ok := b[k]; !ok {
			d = append(d, "removed "+k)
		} else if v != w {
			d = append(d, fmt.Sprintf("changed %s: %s -> %s", k, v, w))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && !skip[k] {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return d
}

func sameSnapshot(t *testing.T, what string, a, b map[string]string, allow ...string) {
	t.Helper()
	if d := diffSnapshots(a, b, allow...); len(d) > 0 {
		t.Fatalf("%s changed the output directory:\n  %s", what, strings.Join(d, "\n  "))
	}
}

// mergeOutputs are the merge's own files directly under simulation/.
var mergeOutputs = map[string]bool{layout.ManifestName: true, layout.IndexName: true, layout.MetadataName: true, layout.SummaryName: true, layout.SuccessName: true}

// dataHashes maps every data file under simulation/ (everything but the
// merge's own outputs) to its size and XXH64.
func dataHashes(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for rel, v := range snapshot(t, filepath.Join(out, layout.SimDir)) {
		if v == "dir" || (filepath.Dir(rel) == "." && mergeOutputs[rel]) {
			continue
		}
		content, _, _ := strings.Cut(v, " mtime ") // content only
		m[filepath.ToSlash(filepath.Join(layout.SimDir, rel))] = content
	}
	return m
}

func sameData(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var d []string
	for k, v := range want {
		if got[k] != v {
			d = append(d, fmt.Sprintf("%s: want %q, got %q", k, v, got[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, k+": unexpected")
		}
	}
	if len(d) > 0 {
		sort.Strings(d)
		t.Fatalf("%s: data files differ:\n  %s", what, strings.Join(d, "\n  "))
	}
}

// fileHash is the size and XXH64 of a file as a journal records them.
func fileHash(t *testing.T, p string) (int64, string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b)), manifest.FormatXXH64(xxhash.Sum64(b))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies a directory of regular files to a new temp directory.
func copyTree(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// ---- journals, read independently of the merge package ----

// jcommit is one durable commit record.
type jcommit struct {
	journal string // base name of its journal file
	writer  string
	time    time.Time
	seq     int64
	info    manifest.CommitInfo
}

// jstate is everything the journals of an output directory say.
type jstate struct {
	opens   map[string]manifest.OpenInfo // by journal base name
	commits []jcommit
	torn    []string
	times   []time.Time // of every record
}

func journalPaths(t *testing.T, out string) []string {
	t.Helper()
	ps, err := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+layout.JournalSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ps)
	return ps
}

// readJournals reads every journal with manifest.ReadJournalFile (which
// tolerates a torn last line and nothing else).
func readJournals(t *testing.T, out string) jstate {
	t.Helper()
	st := jstate{opens: map[string]manifest.OpenInfo{}}
	for _, p := range journalPaths(t, out) {
		base := filepath.Base(p)
		var writer string
		torn, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
			tm, err := time.Parse(time.RFC3339Nano, r.Time)
			if err != nil {
				return err
			}
			st.times = append(st.times, tm)
			switch {
			case r.Open != nil:
				st.opens[base] = *r.Open
				writer = r.Open.Writer
			case r.Commit != nil:
				st.commits = append(st.commits, jcommit{journal: base, writer: writer, time: tm, seq: r.Seq, info: *r.Commit})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("journal %s: %v", p, err)
		}
		if torn {
			st.torn = append(st.torn, base)
		}
	}
	return st
}

// latest picks the winning commit of each scenario as the contract says:
// the latest by commit time (as an instant, not as a string), then writer
// id, then sequence number.
func (st jstate) latest() map[int]jcommit {
	win := map[int]jcommit{}
	for _, c := range st.commits {
		w, ok := win[c.info.Scenario]
		if !ok || c.time.After(w.time) || (c.time.Equal(w.time) && (c.writer > w.writer || (c.writer == w.writer && c.seq > w.seq))) {
			win[c.info.Scenario] = c
		}
	}
	return win
}

// missing lists the scenarios of 0..n-1 without a durable commit.
func (st jstate) missing(n int) []int {
	have := map[int]bool{}
	for _, c := range st.commits {
		have[c.info.Scenario] = true
	}
	out := []int{}
	for s := range n {
		if !have[s] {
			out = append(out, s)
		}
	}
	return out
}

// commitsOf returns the commits of one journal, by base-name substring.
func (st jstate) commitsOf(t *testing.T, journalPart string) []jcommit {
	t.Helper()
	var out []jcommit
	for _, c := range st.commits {
		if strings.Contains(c.journal, journalPart) {
			out = append(out, c)
		}
	}
	return out
}

// readRecords decodes every record of a journal (no torn tail allowed).
func readRecords(t *testing.T, p string) []*manifest.Record {
	t.Helper()
	var recs []*manifest.Record
	torn, err := journal.ReadFile(vfs.OS(), p, func(r *manifest.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil || torn {
		t.Fatalf("journal %s: %v (torn %v)", p, err, torn)
	}
	return recs
}

// writeRecords writes a journal by hand with journal.Encode.
func writeRecords(t *testing.T, p string, recs []*manifest.Record) {
	t.Helper()
	var b bytes.Buffer
	for _, r := range recs {
		line, err := journal.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---- statistics, computed independently (no gonum) ----

type stats struct {
	count               int
	mean, std, min, max float64
	ci                  [2]float64
	hasCI               bool
	p5, p50, p95        float64
}

// describe computes the summary statistics the contract asks for.
func describe(x []float64) stats {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	n := len(s)
	st := stats{count: n, min: s[0], max: s[n-1]}
	var sum float64
	for _, v := range s {
		sum += v
	}
	st.mean = sum / float64(n)
	if n > 1 {
		var ss float64
		for _, v := range s {
			ss += (v - st.mean) * (v - st.mean)
		}
		st.std = math.Sqrt(ss / float64(n-1))
		half := studentT975(n-1) * st.std / math.Sqrt(float64(n))
		st.ci, st.hasCI = [2]float64{st.mean - half, st.mean + half}, true
	}
	st.p5, st.p50, st.p95 = quantile(s, 5), quantile(s, 50), quantile(s, 95)
	return st
}

// quantile is the empirical quantile of sorted s at pct percent: the
// smallest value v such that at least pct% of the samples are <= v, i.e.
// the k-th smallest with k = ceil(pct*n/100), computed in integers.
func quantile(s []float64, pct int) float64 {
	n := len(s)
	k := (pct*n + 99) / 100
	return s[max(k, 1)-1]
}

// studentT975 is the 0.975 quantile of Student's t with df degrees of
// freedom, by bisection on the CDF written with the regularized incomplete
// beta function.
func studentT975(df int) float64 {
	nu := float64(df)
	cdf := func(t float64) float64 { return 1 - 0.5*betaInc(nu/2, 0.5, nu/(nu+t*t)) }
	lo, hi := 0.0, 1e4
	for range 200 {
		mid := (lo + hi) / 2
		if cdf(mid) < 0.975 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// betaInc is the regularized incomplete beta function I_x(a, b), by the
// continued fraction (modified Lentz).
func betaInc(a, b, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log(1-x))
	if x > (a+1)/(a+b+2) {
		return 1 - betaInc(b, a, 1-x)
	}
	const tiny = 1e-300
	f, c, d := 1.0, 1.0, 0.0
	for i := 0; i <= 400; i++ {
		m := float64(i / 2)
		var num float64
		switch {
		case i == 0:
			num = 1
		case i%2 == 0:
			num = m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		default:
			num = -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		}
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		d = 1 / d
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		cd := c * d
		f *= cd
		if math.Abs(1-cd) < 1e-15 {
			break
		}
	}
	return front * (f - 1) / a
}

func close9(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// checkStats compares one summary.json statistics object with st.
func checkStats(t *testing.T, what string, got map[string]any, st stats) {
	t.Helper()
	f := func(k string) float64 {
		v, ok := got[k].(float64)
		if !ok {
			t.Fatalf("%s: %q is %T (%v), want a number", what, k, got[k], got[k])
		}
		return v
	}
	if c := int(f("count")); c != st.count {
		t.Errorf("%s: count %d, want %d", what, c, st.count)
	}
	for _, c := range []struct {
		k    string
		want float64
	}{{"mean", st.mean}, {"std", st.std}, {"min", st.min}, {"max", st.max}, {"p5", st.p5}, {"p50", st.p50}, {"p95", st.p95}} {
		if g := f(c.k); !close9(g, c.want) {
			t.Errorf("%s: %s = %.17g, independent computation gives %.17g", what, c.k, g, c.want)
		}
	}
	ci, has := got["ci95_mean"].([]any)
	if has != st.hasCI {
		t.Fatalf("%s: ci95_mean present %v, want %v (%v)", what, has, st.hasCI, got["ci95_mean"])
	}
	if has {
		if len(ci) != 2 || !close9(ci[0].(float64), st.ci[0]) || !close9(ci[1].(float64), st.ci[1]) {
			t.Errorf("%s: ci95_mean %v, independent computation gives %.17g", what, ci, st.ci)
		}
	}
}

// checkSummary checks simulation/summary.json against statistics computed
// from the journals' cost summaries of the winning commits.
func checkSummary(t *testing.T, out string) {
	t.Helper()
	win := readJournals(t, out).latest()
	var totals []float64
	var stages [][]float64
	ids := make([]int, 0, len(win))
	for s := range win {
		ids = append(ids, s)
	}
	sort.Ints(ids)
	for _, s := range ids {
		c := win[s].info.Cost
		totals = append(totals, c.Total)
		for i, v := range c.Stages {
			for len(stages) <= i {
				stages = append(stages, nil)
			}
			stages[i] = append(stages[i], v)
		}
	}
	sum := readJSONFile(t, simPath(out, layout.SummaryName))
	if got := int(sum["scenarios"].(float64)); got != len(ids) {
		t.Errorf("summary.json scenarios %d, want %d", got, len(ids))
	}
	checkStats(t, "total_cost", sum["total_cost"].(map[string]any), describe(totals))
	sc, _ := sum["stage_costs"].([]any)
	if len(sc) != len(stages) {
		t.Fatalf("summary.json has %d stage_costs, want %d", len(sc), len(stages))
	}
	for i, v := range sc {
		m := v.(map[string]any)
		if int(m["stage_id"].(float64)) != i {
			t.Errorf("stage_costs[%d] has stage_id %v", i, m["stage_id"])
		}
		checkStats(t, fmt.Sprintf("stage_costs[%d]", i), m, describe(stages[i]))
	}
}

// entityCount is the number of entity tables (files per scenario) of tiny.
var entityCount = sync.OnceValue(func() int {
	c, err := manifest.LoadCase(tinyDir)
	if err != nil {
		panic(err)
	}
	return len(c.Entities())
})

// countInJournals counts occurrences of needle in the journals whose
// names contain part: a poll of the condition a test awaits, not a timing
// guess.
func countInJournals(out, part, needle string) int {
	ps, _ := filepath.Glob(filepath.Join(out, layout.JournalDir, "*"+part+"*"+layout.JournalSuffix))
	n := 0
	for _, p := range ps {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(f)
		f.Close()
		n += bytes.Count(b, []byte(needle))
	}
	return n
}

// readFile returns a file's bytes or fails the test.
func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
