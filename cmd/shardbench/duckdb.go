package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// duckScript is the DuckDB contestant's script, relative to the module root.
const duckScript = "scripts/bench/duckdb-copy.mjs"

// duckPackage is what scripts/install-test-tools.sh installs.
const duckPackage = "@duckdb/node-api@1.5.6-r.1"

// duckTools says where node and the DuckDB package are, or what is missing:
// DuckDB is an optional contestant on a developer machine, not in CI.
type duckTools struct {
	node, modules string
	missing       string
}

func findDuckTools() duckTools {
	node, err := exec.LookPath("node")
	if err != nil {
		return duckTools{missing: "node is not on PATH"}
	}
	nd := nodeDir()
	if _, err := os.Stat(filepath.Join(nd, "node_modules", "@duckdb", "node-api", "package.json")); err != nil {
		return duckTools{missing: fmt.Sprintf("node package %s is not installed under %s (HYDROSHARD_NODE_DIR)", duckPackage, nd)}
	}
	mods, err := filepath.Abs(filepath.Join(nd, "node_modules"))
	if err != nil {
		return duckTools{missing: fmt.Sprintf("node_modules under %s: %v", nd, err)}
	}
	return duckTools{node: node, modules: mods}
}

// nodeDir is the npm prefix scripts/install-test-tools.sh installs into.
func nodeDir() string {
	if nd := os.Getenv("HYDROSHARD_NODE_DIR"); nd != "" {
		return nd
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "hydroshard", "node")
}

// duck is a long-lived node process running duckdb-copy.mjs. Keeping it
// alive lets its COPYs interleave with the Go contestants, round by round,
// without paying node start-up and the data load in every round. There is
// one per thread count: switching DuckDB's thread count between COPYs
// makes the next COPY 2-4x slower, a cost a real DuckDB user does not pay.
type duck struct {
	*child
	version string
}

// startDuck copies the script next to a node_modules symlink (node
// resolves bare imports relative to the script, not to the working
// directory) and starts it. The process lives at most life.
func startDuck(ctx context.Context, t duckTools, root, scratch string, life, timeout time.Duration) (*duck, error) {
	dir := filepath.Join(scratch, "duckdb")
	script := filepath.Join(dir, filepath.Base(duckScript))
	if _, err := os.Stat(script); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("duckdb: %w", err)
		}
		if err := os.Symlink(t.modules, filepath.Join(dir, "node_modules")); err != nil {
			return nil, fmt.Errorf("duckdb: %w", err)
		}
		src, err := os.ReadFile(filepath.Join(root, duckScript))
		if err != nil {
			return nil, fmt.Errorf("duckdb: %w", err)
		}
		if err := os.WriteFile(script, src, 0o644); err != nil {
			return nil, fmt.Errorf("duckdb: %w", err)
		}
	}
	c, err := startChild(ctx, "duckdb", "node", dir, life, timeout, t.node, script)
	if err != nil {
		return nil, err
	}
	return &duck{child: c}, nil
}

// load (re)creates tables t0..tk-1, table k from files[k].
func (d *duck) load(files []string) error {
	tables := make([][]string, len(files))
	for i, f := range files {
		tables[i] = []string{f}
	}
	var resp struct {
		Version string `json:"duckdb_version"`
		Rows    []int  `json:"rows"`
	}
	if err := d.request(map[string]any{"cmd": "load", "tables": tables}, &resp); err != nil {
		return err
	}
	if len(resp.Rows) != len(files) {
		return fmt.Errorf("duckdb: loaded %d tables, want %d", len(resp.Rows), len(files))
	}
	d.version = resp.Version
	return nil
}

// duckContestant times DuckDB's COPY of every loaded table to its own
// Parquet file (one file per scenario, as the writer writes), with the
// given thread count. The time is measured inside node around the COPYs
// only. DuckDB does not fsync its files, which favours it.
func duckContestant(d *duck, ds *dataset, dir string, threads int) func(context.Context, int) (sample, error) {
	name := fmt.Sprintf("duckdb-%dt", threads)
	return func(ctx context.Context, round int) (sample, error) {
		sub, err := roundDir(dir, name, round)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(sub)
		paths := make([]string, len(ds.parquetFiles))
		for i := range paths {
			paths[i] = filepath.Join(sub, fmt.Sprintf("s%d.parquet", i))
		}
		var resp struct {
			MS    float64 `json:"ms"`
			Bytes int64   `json:"bytes"`
		}
		if err := d.request(map[string]any{"cmd": "copy", "threads": threads, "paths": paths}, &resp); err != nil {
			return sample{}, err
		}
		if resp.MS <= 0 {
			return sample{}, fmt.Errorf("duckdb: COPY took %v ms", resp.MS)
		}
		return sample{sec: resp.MS / 1e3, in: sum(ds.hydrosIn), out: resp.Bytes, scen: len(paths)}, ctx.Err()
	}
}
