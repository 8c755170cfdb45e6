package vfs

import (
	"fmt"
	"io"
)

// OpenReaderAt opens name for random-access reading (a Parquet footer is
// read before the row groups it describes) and returns the file as an
// io.ReaderAt, its size when opened, and the file to close. Files of OS()
// and of Beneath over it are *os.File; a Mem's files read at an offset
// too. A File of an FS that cannot read at an offset is an error.
func OpenReaderAt(fsys FS, name string) (io.ReaderAt, int64, io.Closer, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		_ = f.Close()
		return nil, 0, nil, fmt.Errorf("reading %s: its file system cannot read at an offset (%T)", name, f)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, nil, err
	}
	return ra, st.Size(), f, nil
}
