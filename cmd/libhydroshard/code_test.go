package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/shard"
)

// TestCodeOf: each kind of error the Go API returns maps to the return
// code hydroshard.h gives it; in particular a write that fails inside a
// scenario's or a checkpoint's error is an I/O error, not bad input.
func TestCodeOf(t *testing.T) {
	pathErr := &fs.PathError{Op: "rename", Path: "simulation/costs/scenario_id=3/data.parquet", Err: syscall.ENOENT}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, codeOK},
		{"api error", inval("bad"), codeInval},
		{"case", &apiError{codeCase, errors.New("no case")}, codeCase},
		{"committed", &rank.ScenarioError{Scenario: 3, Err: rank.ErrCommitted}, codeCommitted},
		{"closed", fmt.Errorf("x: %w", rank.ErrClosed), codeClosed},
		{"signal", context.Canceled, codeInterrupted},
		{"identity", &rank.IdentityError{Var: "OMPI_COMM_WORLD_RANK", Value: "x"}, codeIdentity},
		{"column", &shard.ColumnError{Table: "simulation/costs", Column: "x", What: "y"}, codeInval},
		{"value", &shard.ValueError{Table: "simulation/hydros", Column: "hydro_id"}, codeInval},
		{"scenario input", &rank.ScenarioError{Scenario: 9, Err: errors.New("id out of range")}, codeInval},
		{"scenario publish", &rank.ScenarioError{Scenario: 3, Err: fmt.Errorf("committed, but publishing: %w", pathErr)}, codeIO},
		{"checkpoint write", &rank.CheckpointError{Iteration: 2, Err: &os.SyscallError{Syscall: "fsync", Err: syscall.EIO}}, codeIO},
		{"rerun list missing", &rank.RerunListError{File: "missing.txt", Err: pathErr}, codeInval},
		{"disk full", fmt.Errorf("write: %w", syscall.ENOSPC), codeIO},
		{"anything else", errors.New("journal: torn"), codeIO},
	} {
		if got := codeOf(tc.err); got != tc.want {
			t.Errorf("%s: codeOf(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}
