package vfs

// RenameByLink exposes the no-replace rename fallback, which a file system
// with renameat2 never takes.
var RenameByLink = renameByLink

// BeneathGeneric is Beneath always taking the check-then-act
// implementation, as on a kernel without openat2 or over a wrapped OS.
func BeneathGeneric(inner FS, root string, follow ...string) (FS, error) {
	b, err := newBeneath(inner, root, follow)
	if err != nil {
		return nil, err // not b: a nil *beneath in an FS is not a nil FS
	}
	return b, nil
}

// BeneathNoRenameat2 is Beneath over the operating-system file system as
// on a file system without RENAME_NOREPLACE, so that RenameNoReplace takes
// its link-and-unlink fallback; nil when the kernel lacks openat2.
func BeneathNoRenameat2(root string, follow ...string) (FS, error) {
	b, err := newBeneath(osFS{}, root, follow)
	if err != nil {
		return nil, err
	}
	b.noRenameat2 = true
	return beneathAtFS(b), nil
}

// UsesOpenat2 reports whether fsys is Beneath's openat2 implementation.
var UsesOpenat2 = usesOpenat2
