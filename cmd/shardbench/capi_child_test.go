package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the capi section's Go contestant
// too: the section re-runs its own executable (os.Executable: under go
// test, this binary) with SHARDBENCH_CAPI_GO_CHILD=1, as main does.
func TestMain(m *testing.M) {
	if os.Getenv(capiGoChildEnv) == "1" {
		os.Exit(capiGoChild(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
