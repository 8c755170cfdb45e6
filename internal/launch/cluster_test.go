package launch

// The package's fixtures: the binaries, the local SLURM cluster, and the
// helpers that drive SLURM's clients (each call bounded by a timeout).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/internal/testtools"
)

// Bounds of the external commands: only there to keep a hung daemon or
// process from hanging the suite (the package runs in about a minute).
const (
	buildTimeout  = 5 * time.Minute // a cold build compiles arrow-go
	clientTimeout = 30 * time.Second
	upTimeout     = 3 * time.Minute // may include apt-get install
	downTimeout   = 90 * time.Second
	jobTimeout    = 3 * time.Minute // one job from submission to its end
	runTimeout    = 2 * time.Minute // one mpirun or simrank run
)

const (
	clusterCPU = "12" // the node claims 12 CPUs on 2 cores (config_overrides)
	// upAttempts bounds the starts of the cluster: a port found free may be
	// taken by another process before the daemon binds it; local-cluster.sh
	// up then exits portTaken, and the next attempt uses other ports.
	upAttempts = 5
	portTaken  = 75
)

var (
	root       string // repository root
	workDir    string // the package's scratch directory
	binDir     string
	simrankBin string
	mergeBin   string

	clusterDir  string // HYDROSHARD_SLURM_DIR of the test cluster
	clusterName string // its ClusterName, unique per test process
	// Its ports, free when chosen (freePorts): never fixed, so that two
	// test runs on one host, or a cluster a user started with
	// local-cluster.sh, do not collide.
	ctldPort, slurmdPort string
	slurmConf            string // its slurm.conf, once up

	// clusterMu serializes starting and stopping the cluster, so that the
	// signal handler's stop does not race a start (cancelUp ends the start
	// first: every daemon it started is in the state file by then).
	clusterMu sync.Mutex
	upCtx     context.Context
	cancelUp  context.CancelFunc
	// clusterMissing is why the cluster cannot exist here (a loud skip,
	// or a failure with CI=true); clusterErr is a failure to start it.
	clusterMissing string
	clusterErr     error
)

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
		code = 1
	}
	os.Exit(code)
}

func testMain(m *testing.M) (int, error) {
	var err error
	if root, err = testtools.RepoRoot(); err != nil {
		return 0, err
	}
	if workDir, err = os.MkdirTemp("", "hs-launch-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(workDir)
	// munged (the munge user) must traverse into the cluster's socket dir.
	if err := os.Chmod(workDir, 0o755); err != nil {
		return 0, err
	}
	binDir = filepath.Join(workDir, "bin")
	simrankBin = filepath.Join(binDir, "simrank")
	mergeBin = filepath.Join(binDir, "merge-shards")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	// simrank with the faultinject tag: only such a binary obeys
	// HYDROSHARD_FAULT (TestSubmitRankKilled kills a rank with it).
	for _, b := range []struct {
		out, pkg string
		flags    []string
	}{{simrankBin, "./cmd/simrank", []string{"-tags", "faultinject"}}, {mergeBin, "./cmd/merge-shards", nil}} {
		args := append(append([]string{"build"}, b.flags...), "-o", b.out, b.pkg)
		build := exec.CommandContext(ctx, "go", args...)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}

	// The cluster's directory: the one scripts/test.sh made for this run
	// (mktemp -d; its EXIT trap stops the cluster there should this binary
	// be killed), else one in workDir. Either way no other run uses it.
	clusterDir = os.Getenv("HYDROSHARD_TEST_SLURM_DIR")
	if clusterDir == "" {
		clusterDir = filepath.Join(workDir, "slurm")
	} else if err := os.Chmod(clusterDir, 0o755); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err // mktemp -d makes it 0700: munged could not reach its socket
	}
	clusterName = fmt.Sprintf("hydroshard-test-%d", os.Getpid())
	if clusterMissing = clusterPrerequisites(); clusterMissing == "" {
		// Stop the daemons however this process ends: normally (below), or
		// by SIGINT/SIGTERM (go test's own timeout kills without running
		// deferred code; scripts/test.sh's trap covers that case).
		upCtx, cancelUp = context.WithCancel(context.Background())
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			s := <-sigs
			fmt.Fprintf(os.Stderr, "launch: %v: stopping the test cluster\n", s)
			cancelUp()
			clusterMu.Lock()
			clusterDown()
			os.RemoveAll(workDir)
			os.Exit(1)
		}()
		defer func() {
			clusterMu.Lock()
			defer clusterMu.Unlock()
			clusterDown()
		}()
		clusterMu.Lock()
		slurmConf, clusterErr = clusterUp()
		clusterMu.Unlock()
	}
	return m.Run(), nil
}

// clusterPrerequisites says why no cluster can run here, or "".
func clusterPrerequisites() string {
	if os.Geteuid() != 0 {
		return "the local SLURM cluster needs root (its daemons run as root; munged as the munge user)"
	}
	for _, tool := range []string{"slurmctld", "slurmd", "sbatch", "munged"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := exec.LookPath("apt-get"); err != nil {
				return fmt.Sprintf("%s is not installed and apt-get is not available", tool)
			}
			// local-cluster.sh up installs slurm-wlm and munge itself.
		}
	}
	return ""
}

// clusterEnv is the environment of local-cluster.sh for the test cluster.
func clusterEnv() []string {
	return append(cleanEnv(),
		"HYDROSHARD_SLURM_DIR="+clusterDir, "SLURM_CLUSTER_NAME="+clusterName,
		"SLURMCTLD_PORT="+ctldPort, "SLURMD_PORT="+slurmdPort, "SLURM_CPUS="+clusterCPU)
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago: the kernel's choice for port 0, the listeners held open
// together so that the ports differ, then closed for the daemons to bind.
func freePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("choosing a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

var exportConf = regexp.MustCompile(`(?m)^export SLURM_CONF=(\S+)$`)

// clusterUp starts the cluster on free ports, with other ports again
// (after stopping what the failed start left) when a daemon found its
// port taken, at most upAttempts times.
func clusterUp() (string, error) {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return "", err
		}
		ctldPort, slurmdPort = ports[0], ports[1]
		conf, err := clusterUpOnce()
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || ee.ExitCode() != portTaken || attempt == upAttempts || upCtx.Err() != nil {
			return conf, err
		}
		fmt.Fprintf(os.Stderr, "launch: attempt %d: a port of %s/%s was taken before its daemon bound it; again with other ports\n", attempt, ctldPort, slurmdPort)
		clusterDown()
	}
}

func clusterUpOnce() (string, error) {
	ctx, cancel := context.WithTimeout(upCtx, upTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "slurm", "local-cluster.sh"), "up")
	cmd.Env = clusterEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		logs, _ := exec.Command("sh", "-c", "tail -n 20 "+filepath.Join(clusterDir, "log")+"/*").CombinedOutput()
		return "", fmt.Errorf("local-cluster.sh up: %w\n%s%s\nlogs:\n%s", err, stdout.String(), stderr.String(), logs)
	}
	m := exportConf.FindStringSubmatch(stdout.String())
	if m == nil {
		return "", fmt.Errorf("local-cluster.sh up printed no SLURM_CONF:\n%s", stdout.String())
	}
	fmt.Fprintf(os.Stderr, "launch: test cluster %s up in %v (%s, ports %s/%s)\n", clusterName, time.Since(start).Round(time.Millisecond), clusterDir, ctldPort, slurmdPort)
	return m[1], nil
}

func clusterDown() {
	ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "slurm", "local-cluster.sh"), "down")
	cmd.Env = clusterEnv()
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "launch: local-cluster.sh down: %v\n%s", err, out)
	}
}

// needCluster skips or fails the test when the cluster is not up.
func needCluster(t *testing.T) {
	t.Helper()
	if clusterMissing != "" {
		testtools.Missing(t, clusterMissing, "run the tests as root; scripts/install-test-tools.sh installs slurm-wlm and munge")
	}
	if clusterErr != nil {
		t.Fatalf("the test cluster did not start: %v", clusterErr)
	}
}

// cleanEnv is testtools.CleanEnv without the variables the scripts under
// test read (another cluster, another study).
func cleanEnv() []string {
	var env []string
	for _, kv := range testtools.CleanEnv() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "HYDROSHARD_SLURM_DIR", "RANK_ARGS", "RANK_PROGRAM", "MERGE_PROGRAM", "OUT", "OUT_BASE":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// jobEnv is the environment of the SLURM clients and, through
// --export=ALL, of the jobs: the test cluster and the test's binaries.
func jobEnv(extra ...string) []string {
	return append(append(cleanEnv(), "SLURM_CONF="+slurmConf, "MERGE_PROGRAM="+mergeBin, "RANK_PROGRAM="+simrankBin), extra...)
}

// slurm runs one SLURM client command (or a script that calls them) with
// a timeout and returns its stdout; a failure fails the test.
func slurm(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := slurmTry(env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func slurmTry(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

var jobField = regexp.MustCompile(`(\w+)=(\S*)`)

// jobInfo is `scontrol show job -o ID` as key=value pairs (JobState,
// ExitCode, Restarts, ...). The controller keeps ended jobs for
// MinJobAge (300 s), longer than any test waits.
func jobInfo(t *testing.T, id string) map[string]string {
	t.Helper()
	out := slurm(t, jobEnv(), "scontrol", "show", "job", "-o", id)
	info := map[string]string{}
	for _, m := range jobField.FindAllStringSubmatch(out, -1) {
		if _, dup := info[m[1]]; !dup {
			info[m[1]] = m[2]
		}
	}
	if info["JobId"] != id {
		t.Fatalf("scontrol show job %s: no such job:\n%s", id, out)
	}
	return info
}

var endStates = map[string]bool{
	"COMPLETED": true, "FAILED": true, "CANCELLED": true, "TIMEOUT": true, "NODE_FAIL": true,
	"PREEMPTED": true, "OUT_OF_MEMORY": true, "BOOT_FAIL": true, "DEADLINE": true,
}

// awaitJob polls the job until its state is one of want (by default any
// end state) and returns its info. It fails the test after jobTimeout, or
// when the job ends in a state not wanted.
func awaitJob(t *testing.T, id string, want ...string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(jobTimeout)
	for {
		info := jobInfo(t, id)
		st := info["JobState"]
		if len(want) == 0 && endStates[st] {
			return info
		}
		for _, w := range want {
			if st == w {
				return info
			}
		}
		if len(want) > 0 && endStates[st] {
			t.Fatalf("job %s ended %s (exit %s) while waiting for %v; reason %s", id, st, info["ExitCode"], want, info["Reason"])
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s (reason %s) after %v", id, st, info["Reason"], jobTimeout)
		}
		time.Sleep(200 * time.Millisecond) // polling the controller: there is nothing to block on
	}
}

// daemonLog is what slurmctld and slurmd logged about a job, for failure
// messages.
func daemonLog(id string) string {
	var b strings.Builder
	for _, f := range []string{"slurmctld.log", "slurmd.log"} {
		data, err := os.ReadFile(filepath.Join(clusterDir, "log", f))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", f, err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "error") || strings.Contains(line, "JobId="+id+" ") || strings.Contains(line, "job "+id+" ") || strings.Contains(line, "["+id+"]") || strings.Contains(line, "job_id "+id) || strings.Contains(line, "StepId="+id+".") {
				fmt.Fprintf(&b, "%s: %s\n", f, line)
			}
		}
	}
	return b.String()
}

// readLog returns a job's output file (there is exactly one per job id).
func readLog(t *testing.T, pattern string) string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) != 1 {
		t.Fatalf("job log %s: want one file, found %v (%v)", pattern, files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
