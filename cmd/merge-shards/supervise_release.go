//go:build !faultinject

package main

// superviseDefault: release builds run the work in a supervised child
// process (supervise.go).
const superviseDefault = true
