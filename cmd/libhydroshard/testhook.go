//go:build capitest

package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#define HYDROSHARD_BUILDING 1
#include "hydroshard.h"
*/
import "C"

// hydroshard_test_panic panics inside the boundary, as a bug in the
// library would: the tests check the host gets HYDROSHARD_EINTERNAL and
// carries on. Built only with -tags capitest.
//
//export hydroshard_test_panic
func hydroshard_test_panic(ch *C.hydroshard_rank) C.int {
	return with(ch, func(h *handle) error {
		var m map[string]int
		m["boom"]++ // a nil-map write: a runtime panic
		return nil
	})
}
