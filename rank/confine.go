package rank

import (
	"fmt"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// confine makes out exist (durably) and returns fsys confined to it: the
// writer then never creates, renames or removes through a symbolic link
// planted inside out (a link at a partition directory would make a
// publish land in the link's target), nor anywhere outside it. out itself
// and its simulation/, training/ and policy/ directories may be links to
// another disk (layout.LinkDirs).
func confine(fsys vfs.FS, out string) (vfs.FS, error) {
	if err := vfs.NewDirs(fsys, out).Ensure(out); err != nil {
		return nil, fmt.Errorf("rank: preparing %s: %w", out, err)
	}
	confined, err := vfs.Beneath(fsys, out, layout.LinkDirs[:]...)
	if err != nil {
		return nil, fmt.Errorf("rank: preparing %s: %w", out, err)
	}
	return confined, nil
}
