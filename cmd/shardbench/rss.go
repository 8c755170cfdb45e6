package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// builtTools are the programs shardbench builds before the first timed round.
type builtTools struct {
	simrank, wrap string // cmd/simrank and rsswrap
	mergeShards   string // cmd/merge-shards: merges and compacts the analyst section's studies
	parquetGo     string // the parquet-go contestant (parquetgo.go)
}

// buildTools builds cmd/simrank, cmd/merge-shards, rsswrap and the
// parquet-go contestant into dir. A child process is the only honest way
// to read a rank's (or a compaction's) peak RSS (inside this process the
// benchmark's own data would dominate it), and rsswrap is what keeps this
// process's RSS out of the child's figure (see rsswrap's doc). The
// parquet-go contestant is a module of its own, hence a build of its own.
func buildTools(ctx context.Context, root, dir string) (builtTools, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goBin); serr != nil {
			return builtTools{}, fmt.Errorf("building simrank: no go command on PATH or in GOROOT: %w", err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, goBin, "build", "-o", dir+string(filepath.Separator), "./cmd/simrank", "./cmd/merge-shards", "./cmd/shardbench/rsswrap")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return builtTools{}, fmt.Errorf("go build ./cmd/simrank ./cmd/merge-shards ./cmd/shardbench/rsswrap: %w\n%s", err, out)
	}
	pg, err := buildParquetGo(ctx, goBin, root, dir)
	if err != nil {
		return builtTools{}, err
	}
	return builtTools{simrank: filepath.Join(dir, "simrank"), mergeShards: filepath.Join(dir, "merge-shards"), wrap: filepath.Join(dir, "rsswrap"), parquetGo: pg}, nil
}

// childEnv is the environment minus what would make simrank misbehave on
// purpose (fault injection) or take another identity than --rank/--world.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HYDROSHARD_FAULT=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// peakRSS runs one rank (under rsswrap) writing n scenarios of caseName
// into a fresh directory under dir and returns its peak RSS in KiB
// (getrusage's ru_maxrss, which Linux reports in KiB). The output is
// deleted afterwards: 2,000 production scenarios are several GB.
func peakRSS(ctx context.Context, wrap, simrank, caseName string, n int, dir string, timeout time.Duration) (int64, time.Duration, error) {
	out, err := os.MkdirTemp(dir, fmt.Sprintf("simrank-%d-", n))
	if err != nil {
		return 0, 0, fmt.Errorf("simrank output: %w", err)
	}
	defer os.RemoveAll(out)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	what := fmt.Sprintf("simrank --case %s --scenarios %d", caseName, n)
	cmd := exec.CommandContext(cctx, wrap, simrank, "--rank", "0", "--world", "1", "--case", caseName,
		"--scenarios", strconv.Itoa(n), "--out", out, "--quiet")
	cmd.Env = childEnv()
	cmd.WaitDelay = 5 * time.Second
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	t0 := time.Now()
	stdout, err := cmd.Output()
	el := time.Since(t0)
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return 0, 0, fmt.Errorf("%s: no exit within %v: %w", what, timeout, err)
		}
		return 0, 0, fmt.Errorf("%s: rsswrap: %w%s", what, err, stderr.suffix())
	}
	var res struct {
		MaxRSS int64 `json:"maxrss_kib"`
		Exit   int   `json:"exit"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		return 0, 0, fmt.Errorf("%s: rsswrap output %q: %w", what, stdout, err)
	}
	if res.Exit != 0 {
		return 0, 0, fmt.Errorf("%s: exit status %d%s", what, res.Exit, stderr.suffix())
	}
	if res.MaxRSS <= 0 {
		return 0, 0, fmt.Errorf("%s: no peak RSS reported", what)
	}
	return res.MaxRSS, el, nil
}

// rssDir is where the RSS children write. A full run writes to the scratch
// directory on disk, as a rank does. A quick run writes to tmpfs when
// there is one: 2,000 demo scenarios cost ~30 fsyncs each, ~50 s on this
// kind of machine's disk against ~10 s in memory, and peak RSS does not
// depend on fsync (tmpfs pages are not charged to the writer's RSS).
func rssDir(quick bool, scratch string) (dir, fs string, cleanup func()) {
	if quick {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			if d, err := os.MkdirTemp("/dev/shm", "shardbench-rss-"); err == nil {
				return d, "tmpfs", func() { os.RemoveAll(d) }
			}
		}
	}
	return scratch, "disk", func() {}
}
