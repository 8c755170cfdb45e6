package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// child is a long-lived helper process that times a contestant inside
// itself (DuckDB's node process, the parquet-go contestant): one JSON
// request per line on its stdin, one JSON reply per line on its stdout,
// {"ok":true,...} or {"ok":false,"error":"..."}; it exits when its stdin
// closes. Only what it measures counts, not its start-up or the pipe.
type child struct {
	name    string // the contestant, prefixing errors: duckdb, parquet-go
	prog    string // the process, in errors: node, parquetgo
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	stdin   io.WriteCloser
	lines   chan []byte
	stderr  *tailBuffer
	timeout time.Duration
	dead    error // set once a request timed out: later replies cannot be matched
}

// startChild starts bin with args in dir. The process lives at most life;
// a request gets at most timeout.
func startChild(ctx context.Context, name, prog, dir string, life, timeout time.Duration, bin string, args ...string) (*child, error) {
	cctx, cancel := context.WithTimeout(ctx, life)
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	c := &child{name: name, prog: prog, cmd: cmd, cancel: cancel, lines: make(chan []byte, 1), stderr: &tailBuffer{max: 8 << 10}, timeout: timeout}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err = cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("%s: starting %s: %w", name, prog, err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case c.lines <- append([]byte(nil), sc.Bytes()...):
			case <-cctx.Done():
				return
			}
		}
	}()
	return c, nil
}

// request sends one command and decodes its one-line reply into resp.
func (c *child) request(req, resp any) error {
	if c.dead != nil {
		return c.dead
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: writing to %s: %w%s", c.name, c.prog, err, c.stderr.suffix())
	}
	select {
	case line, ok := <-c.lines:
		if !ok {
			return fmt.Errorf("%s: %s exited%s", c.name, c.prog, c.stderr.suffix())
		}
		var status struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(line, &status); err != nil {
			return fmt.Errorf("%s: reply %q: %w", c.name, line, err)
		}
		if !status.OK {
			return fmt.Errorf("%s: %s", c.name, status.Error)
		}
		if err := json.Unmarshal(line, resp); err != nil {
			return fmt.Errorf("%s: reply %q: %w", c.name, line, err)
		}
		return nil
	case <-time.After(c.timeout):
		c.cancel()
		c.dead = fmt.Errorf("%s: no reply within %v (%s killed)%s", c.name, c.timeout, c.prog, c.stderr.suffix())
		return c.dead
	}
}

// close ends the process by closing its stdin.
func (c *child) close() error {
	defer c.cancel()
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %s: %w%s", c.name, c.prog, err, c.stderr.suffix())
		}
		return nil
	case <-time.After(10 * time.Second):
		c.cancel()
		<-done
		return fmt.Errorf("%s: %s did not exit after its stdin closed; killed", c.name, c.prog)
	}
}

// tailBuffer keeps the last max bytes written to it: enough of a child's
// stderr to explain a failure without holding an unbounded log.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// suffix renders the captured stderr for an error message.
func (t *tailBuffer) suffix() string {
	if s := t.String(); s != "" {
		return "\nstderr:\n" + s
	}
	return ""
}
