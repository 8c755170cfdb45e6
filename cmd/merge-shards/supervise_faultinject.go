//go:build faultinject

package main

// superviseDefault: test builds run in one process unless
// HYDROSHARD_MERGE_SUPERVISE=1. Their crash tests kill the merging process
// at an exact step (HYDROSHARD_FAULT ...:kill, a SIGKILL to itself) and
// expect that death, and freeze it by the pid its lock records; the
// supervision's own tests (memlimit_test.go) use a release build and a
// test build with HYDROSHARD_MERGE_SUPERVISE=1.
const superviseDefault = false
