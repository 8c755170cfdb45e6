//go:build !faultinject

package vfs_test

import (
	"path/filepath"
	"testing"

	"github.com/hydroshard/hydroshard/vfs"
)

// TestReleaseIgnoresFaultEnv: without the faultinject tag, OS() never
// reads HYDROSHARD_FAULT, not even a spec that would fail everything or
// one that would end the process.
func TestReleaseIgnoresFaultEnv(t *testing.T) {
	for _, spec := range []string{"sync@*:error:1,create@*:kill:1", "bogus"} {
		t.Setenv(vfs.FaultEnv, spec)
		if _, ok := vfs.OS().(*vfs.Injector); ok {
			t.Fatal("OS() is an Injector in a release build")
		}
		if _, err := vfs.WriteNewSync(vfs.OS(), filepath.Join(t.TempDir(), "f"), writeString("x")); err != nil {
			t.Fatal(err)
		}
	}
}
