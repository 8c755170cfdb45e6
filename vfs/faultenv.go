//go:build faultinject

package vfs

import (
	"fmt"
	"os"
	"sync"
)

var (
	faultOnce sync.Once
	faultFS   FS
)

// faultWrap returns base wrapped by the one Injector that HYDROSHARD_FAULT
// describes. There is one Injector per process, so "n" counts the
// matching operations of the whole process, as the old fault points did.
// A bad spec ends the process: a crash test that silently ran without its
// fault would prove nothing.
func faultWrap(base FS) FS {
	faultOnce.Do(func() {
		rules, err := ParseFaultSpec(os.Getenv(FaultEnv))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", FaultEnv, err)
			os.Exit(1)
		}
		faultFS = base
		if len(rules) > 0 {
			faultFS = Inject(base, rules...)
		}
	})
	return faultFS
}
