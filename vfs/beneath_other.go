//go:build !linux

package vfs

// beneathAtFS returns nil: without openat2, Beneath is always the
// check-then-act implementation.
func beneathAtFS(*beneath) FS { return nil }

// usesOpenat2 reports false: there is no openat2 implementation here.
func usesOpenat2(FS) bool { return false }
