package main

// merge-shards status beside real simrank processes.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hydroshard/hydroshard/merge"
)

// statusJSON runs "merge-shards status --json" and decodes its report.
func statusJSON(t *testing.T, out string, args ...string) *merge.StatusReport {
	t.Helper()
	r := mergeShards(t, append(append([]string{"status", "--json"}, args...), out)...)
	wantExit(t, r, 0)
	var rep merge.StatusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json is not a status report: %v\n%s", err, r)
	}
	return &rep
}

// TestStatusDuringRun: status --json polled beside 4 live ranks never
// counts more than a rank owns nor calls a running rank dead, reports all
// four live at some poll and a rank whose process has exited closed, and
// at the end agrees with the merge's committed count.
func TestStatusDuringRun(t *testing.T) {
	t.Parallel()
	const ranks, scenarios = 4, 40
	out := t.TempDir()
	_, exited, errs, done := startRanks(t, ranks, "7101", "--out", out, "--scenarios", strconv.Itoa(scenarios), "--scenario-delay", "50ms", "--lease-interval", "200ms")
	polls, allLive, last := 0, false, 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		var before [ranks]bool
		for r := range ranks {
			before[r] = exited[r].Load()
		}
		rep := statusJSON(t, out)
		polls++
		if rep.Totals.Committed > scenarios || rep.Totals.Committed < last {
			t.Fatalf("poll %d: committed %d (the poll before: %d) of %d", polls, rep.Totals.Committed, last, scenarios)
		}
		last = rep.Totals.Committed
		if rep.Totals.Live == ranks {
			allLive = true
		}
		for _, rs := range rep.Ranks {
			if rs.Owned >= 0 && (rs.Committed > rs.Owned || rs.CommittedAny > rs.Owned) {
				t.Fatalf("poll %d: rank %d committed %d (any %d) of %d owned", polls, rs.Rank, rs.Committed, rs.CommittedAny, rs.Owned)
			}
			if rs.State == merge.StateDead || rs.Owned != -1 && rs.Owned != scenarios/ranks {
				t.Fatalf("poll %d: rank %d: state %s, owned %d, with no rank killed", polls, rs.Rank, rs.State, rs.Owned)
			}
			if before[rs.Rank] && (rs.State != merge.StateClosed || rs.CloseStatus != "clean") {
				t.Fatalf("poll %d: rank %d has exited, state %s (%s), want closed (clean)", polls, rs.Rank, rs.State, rs.CloseStatus)
			}
		}
	}
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	if polls < 3 || !allLive {
		t.Fatalf("%d polls while the ranks ran, all four live in one: %v", polls, allLive)
	}
	rep := statusJSON(t, out)
	if tt := rep.Totals; tt.Committed != scenarios || tt.Closed != ranks || tt.WritersClosed != ranks || tt.Live+tt.Dead+tt.WritersLive+tt.WritersDead != 0 {
		t.Fatalf("after the run: %+v", tt)
	}
	for _, rs := range rep.Ranks {
		if rs.Committed != scenarios/ranks || rs.ETASeconds == nil || *rs.ETASeconds != 0 || rs.RatePerMin == nil || *rs.RatePerMin <= 0 {
			t.Fatalf("rank %d after the run: %+v", rs.Rank, rs)
		}
	}
	m := mergeJSON(t, 0, out)
	if got := num(t, m, "committed"); got != rep.Totals.Committed {
		t.Fatalf("the merge committed %d, status said %d", got, rep.Totals.Committed)
	}
	t.Logf("%d polls beside the run", polls)
}

// summaryLine is one plain line of status --watch without a terminal.
var summaryLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ committed \d+/20 scenarios; ranks: (\d+) live, (\d+) dead, (\d+) closed; writers: \d+ live, \d+ dead, \d+ closed(; eta \S+)?$`)

// TestStatusKilledRankAndWatch: a rank killed with SIGKILL is dead at once
// (same host: its pid is gone) while the other stays live; status --watch
// without a terminal prints one plain line per refresh and ends by itself
// once the live rank has closed; the final status agrees with the merge.
func TestStatusKilledRankAndWatch(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	cmds, exited, errs, done := startRanks(t, 2, "7102", "--out", out, "--scenarios", "20", "--scenario-delay", "150ms", "--lease-interval", "200ms")
	for deadline := time.Now().Add(30 * time.Second); countInJournals(out, "rank-00001", `"type":"commit"`) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("rank 1 committed nothing in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmds[1].Process.Signal(syscall.SIGKILL)
	for !exited[1].Load() {
		time.Sleep(5 * time.Millisecond) // waited for: no zombie keeps its pid
	}
	rep := statusJSON(t, out) // the default grace, 45 s: dead by its pid alone
	r0, r1 := rep.Ranks[0], rep.Ranks[1]
	if r1.State != merge.StateDead || len(r1.Writers) != 1 || r1.Writers[0].LeaseAgeSeconds == nil || r1.Committed < 2 || r1.Committed >= 10 {
		t.Fatalf("killed rank 1: %+v", r1)
	}
	if r0.State != merge.StateLive || exited[0].Load() {
		t.Fatalf("rank 0: %s (process exited: %v), want live: the test is too slow for its delays", r0.State, exited[0].Load())
	}

	watch := exec.CommandContext(testCtx(t), mergeBin, "status", "--watch", "--interval", "100ms", out)
	var stdout, stderr bytes.Buffer
	watch.Stdout, watch.Stderr = &stdout, &stderr
	if err := watch.Run(); err != nil {
		t.Fatalf("status --watch: %v\n%s", err, stderr.String())
	}
	if !exited[0].Load() {
		<-done // the watch ended on rank 0's close record; its exit follows
	}
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if len(lines) < 3 || strings.Contains(stdout.String(), "\x1b") {
		t.Fatalf("status --watch without a terminal: %d lines:\n%s", len(lines), stdout.String())
	}
	for i, l := range lines {
		m := summaryLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d is not a summary line: %q", i+1, l)
		}
		if i == len(lines)-1 && (m[1] != "0" || m[2] != "1" || m[3] != "1") {
			t.Fatalf("last line: %q, want 0 live, 1 dead, 1 closed", l)
		}
	}

	rep = statusJSON(t, out)
	if r0 := rep.Ranks[0]; r0.State != merge.StateClosed || r0.CloseStatus != "clean" || r0.Committed != 10 {
		t.Fatalf("rank 0 after the run: %+v", r0)
	}
	if rep.Ranks[1].State != merge.StateDead || rep.Totals.Dead != 1 || rep.Totals.Closed != 1 {
		t.Fatalf("after the run: %+v", rep.Totals)
	}
	human := mergeShards(t, "status", out)
	wantExit(t, human, 0)
	for _, s := range []string{"closed (clean)", "dead", "RANK", "committed " + strconv.Itoa(rep.Totals.Committed) + "/20"} {
		if !strings.Contains(human.stdout, s) {
			t.Fatalf("status does not say %q:\n%s", s, human)
		}
	}
	m := mergeJSON(t, 3, out) // partial: the killed rank's share is missing
	if got := num(t, m, "committed"); got != rep.Totals.Committed {
		t.Fatalf("the merge committed %d, status said %d", got, rep.Totals.Committed)
	}
}

// TestStatusUsage: status exits 0 on any readable directory, one without
// journals included, and 1 on usage and environment errors.
func TestStatusUsage(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	r := mergeShards(t, "status", empty)
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, "no rank has started") {
		t.Fatalf("status of an empty directory:\n%s", r)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("status created %d entries in an empty directory", len(entries))
	}
	for _, args := range [][]string{{"status"}, {"status", empty + "/nope"}, {"status", "--watch", "--interval", "0s", empty}, {"status", "--bogus", empty}} {
		wantExit(t, mergeShards(t, args...), 1)
	}
}

// TestStatusWatchTerminal: on a terminal, --watch clears the screen and
// draws the table at each refresh, and ends once every writer is closed.
func TestStatusWatchTerminal(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	runRanks(t, 2, "7103", "--out", out, "--scenarios", "4")
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() { defer close(read); _, _ = screen.ReadFrom(master) }()
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"status", "--watch", "--interval", "50ms", out}, slave, &stderr)
	slave.Close()
	<-read
	if code != 0 || ctx.Err() != nil {
		t.Fatalf("status --watch on a terminal: exit %d (%v)\n%s", code, ctx.Err(), stderr.String())
	}
	s := screen.String()
	if n := strings.Count(s, clearScreen); n != 2 || strings.Count(s, "RANK") != 2 || !strings.Contains(s, "closed (clean)") {
		t.Fatalf("terminal output: %d redraws, want 2 (the second confirms nothing is live):\n%q", n, s)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlock the slave
		m.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}
