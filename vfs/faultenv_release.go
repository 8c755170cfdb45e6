//go:build !faultinject

package vfs

// faultWrap is the identity in a build without the faultinject tag:
// nothing reads HYDROSHARD_FAULT, so a release binary cannot be made to
// fail by its environment.
func faultWrap(base FS) FS { return base }
