package vfs

// RenameByLink exposes the no-replace rename fallback, which a file system
// with renameat2 never takes.
var RenameByLink = renameByLink
