package vfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/hydroshard/hydroshard/vfs"
)

// A rank commits a table: the bytes go to a temp file, which is synced,
// then published under its final name with the directory entries made
// durable. A second publish to the same name is refused.
func ExampleWriteNewSync() {
	out, err := os.MkdirTemp("", "vfs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)

	fsys := vfs.OS()
	dirs := vfs.NewDirs(fsys, out)
	tmp := filepath.Join(out, "_shards", "tmp", "costs-0.tmp")
	final := filepath.Join(out, "simulation", "costs", "scenario_id=0", "data.parquet")

	if err := dirs.Ensure(filepath.Dir(tmp)); err != nil {
		log.Fatal(err)
	}
	w, err := vfs.WriteNewSync(fsys, tmp, func(wr io.Writer) error {
		_, err := io.WriteString(wr, "PAR1...PAR1")
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := dirs.Publish(tmp, final); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("published %d bytes, xxh64 %016x\n", w.Bytes, w.XXH64)

	// The journal records w; the merge checks the file against it.
	if h, err := vfs.HashFile(fsys, final); err == nil && h == w {
		fmt.Println("verified")
	}

	// Committed data is never replaced.
	vfs.WriteNewSync(fsys, tmp, func(wr io.Writer) error { return nil })
	err = dirs.Publish(tmp, final)
	fmt.Println("second publish refused:", errors.Is(err, fs.ErrExist))
	// Output:
	// published 11 bytes, xxh64 cf0c15ffbfbe654b
	// verified
	// second publish refused: true
}
