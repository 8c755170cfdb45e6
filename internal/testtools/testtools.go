// Package testtools is shared by the tests that drive external tools
// (node with DuckDB and hyparquet, SLURM, OpenMPI): where the tools are,
// the rule for a missing tool (a loud skip, or a failure with CI=true), and
// a DuckDB query runner. It is imported only by _test.go files.
package testtools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// CI reports whether the tests run with CI=true, where a missing tool is a
// failure: in CI a skip would mean a check silently stopped running.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test loudly, or fails it when CI=true.
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s\nCI=true: a missing test tool is a failure (%s)", what, hint)
	}
	t.Skipf("\n"+
		"********************************************************************\n"+
		"* SKIPPED, NOT TESTED: %s\n"+
		"* %s   (with CI=true this is a failure)\n"+
		"********************************************************************", what, hint)
}

// RepoRoot is the repository's root directory: the nearest parent of the
// working directory (a test's package directory) holding go.mod.
func RepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("go.mod not found above the working directory")
		}
		d = parent
	}
}

// NodeDir is where scripts/install-test-tools.sh installs the node packages.
func NodeDir() string {
	if d := os.Getenv("HYDROSHARD_NODE_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "hydroshard", "node")
}

// NodeScripts is a directory holding copies of scripts from
// scripts/interop next to a node_modules symlink to NodeDir's packages:
// node resolves bare imports relative to the script's own location.
type NodeScripts struct {
	Node string // the node executable
	Dir  string // the scripts' directory (also their working directory)
}

// InstallHint says how to get the node tools.
const InstallHint = "install the tools with scripts/install-test-tools.sh"

// SetupNodeScripts checks node and the packages, and copies the scripts
// into a new directory under parent. A missing tool is reported through
// Missing; a setup failure fails the test.
func SetupNodeScripts(t testing.TB, parent string, packages, scripts []string) NodeScripts {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node is not on PATH", InstallHint)
	}
	nd := NodeDir()
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(nd, "node_modules", p, "package.json")); err != nil {
			Missing(t, fmt.Sprintf("node package %s is not installed under %s (HYDROSHARD_NODE_DIR)", p, nd), InstallHint)
		}
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mods, err := filepath.Abs(filepath.Join(nd, "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(parent, "node")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mods, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		b, err := os.ReadFile(filepath.Join(root, "scripts", "interop", s))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, s), b, 0o644)
		}
		if err != nil {
			t.Fatalf("setting up node script %s: %v", s, err)
		}
	}
	return NodeScripts{Node: node, Dir: dir}
}

// Run runs one of the scripts (bounded by ctx) and returns its stdout.
func (ns NodeScripts) Run(t testing.TB, ctx context.Context, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, ns.Node, append([]string{script}, args...)...)
	cmd.Dir = ns.Dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v (after %v)\nstderr:\n%s", script, err, time.Since(start).Round(time.Millisecond), stderr.String())
	}
	t.Logf("node %s: %v, %d bytes of output", script, time.Since(start).Round(time.Millisecond), stdout.Len())
	return stdout.Bytes()
}

// DuckResult is one statement's result as scripts/interop/duckdb-query.mjs
// prints it: DuckDB's column types, and values in @duckdb/node-api's JSON
// rendering (BIGINT as decimal strings).
type DuckResult struct {
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows [][]any `json:"rows"`
}

var (
	duckMu   sync.Mutex
	duckDirs = map[string]NodeScripts{}
)

// DuckQuery runs SQL statements in one in-memory DuckDB session and
// returns one result each. The script directory is made once per parent
// directory (pass a directory that outlives the tests, e.g. one removed by
// TestMain).
func DuckQuery(t testing.TB, ctx context.Context, parent string, sqls ...string) []DuckResult {
	t.Helper()
	ns := duckScripts(t, parent)
	out := ns.Run(t, ctx, "duckdb-query.mjs", sqls...)
	var doc struct {
		Version string       `json:"duckdb_version"`
		Results []DuckResult `json:"results"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("duckdb-query.mjs output: %v\n%s", err, out)
	}
	if len(doc.Results) != len(sqls) {
		t.Fatalf("duckdb-query.mjs: %d results for %d statements", len(doc.Results), len(sqls))
	}
	t.Logf("DuckDB %s ran %d statements", doc.Version, len(sqls))
	return doc.Results
}

func duckScripts(t testing.TB, parent string) NodeScripts {
	t.Helper()
	duckMu.Lock()
	defer duckMu.Unlock() // also when Missing ends the test
	ns, ok := duckDirs[parent]
	if !ok {
		ns = SetupNodeScripts(t, parent, []string{"@duckdb/node-api"}, []string{"duckdb-query.mjs"})
		duckDirs[parent] = ns
	}
	return ns
}

// SQLQuote quotes a string literal for SQL.
func SQLQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// CleanEnv is the test process's environment without what would tell a
// child rank who it is (SLURM, OpenMPI, PMI/PMIx variables: the suite
// itself may run inside a job or under mpirun) or arm a fault
// (HYDROSHARD_FAULT), plus extra.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "SLURM"), strings.HasPrefix(k, "SBATCH_"), strings.HasPrefix(k, "SRUN_"),
			strings.HasPrefix(k, "OMPI_"), strings.HasPrefix(k, "PMI"), strings.HasPrefix(k, "HYDROSHARD_FAULT"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
