package journal

import (
	"fmt"
	"path"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/vfs"
)

// Writer is one writer's journal: created with O_EXCL (a writer never
// appends to another's journal), one checksummed line per record, each
// appended and fsynced before Append returns. It is not safe for
// concurrent use: its owner serialises calls.
type Writer struct {
	f    vfs.File
	path string
	now  func() time.Time
	seq  int64
	// broken: a failed append may have left a partial line (or a line
	// whose durability is unknown): nothing more may be appended, not even
	// a close record.
	broken bool
}

// Create creates the journal of writer under out (it must not exist),
// appends the open record and fsyncs the file and the journal directory,
// so that the journal is found after a crash. On failure the file is
// removed again.
func Create(dirs *vfs.Dirs, out, writer string, now func() time.Time, open *manifest.OpenInfo) (*Writer, error) {
	fsys := dirs.FS()
	rel := layout.Journal(writer)
	p := layout.Join(out, rel)
	if err := dirs.Ensure(layout.Join(out, layout.JournalDir)); err != nil {
		return nil, fmt.Errorf("journal: creating %s: %w", p, err)
	}
	f, err := fsys.Create(p)
	if err != nil {
		return nil, fmt.Errorf("journal: creating %s: %w", p, err)
	}
	w := &Writer{f: f, path: p, now: now}
	err = w.Append(&manifest.Record{Type: manifest.RecordOpen, Open: open})
	if err == nil {
		err = dirs.SyncDir(layout.Join(out, path.Dir(rel)))
	}
	if err != nil {
		_ = f.Close()
		_ = fsys.Remove(p)
		return nil, fmt.Errorf("journal: starting %s: %w", p, err)
	}
	return w, nil
}

// Path returns the journal's file path.
func (w *Writer) Path() string { return w.path }

// Append writes one record, numbering and timestamping it, and fsyncs the
// journal: when it returns nil the record is durable. A failure after
// bytes may have reached the file marks the journal broken.
func (w *Writer) Append(r *manifest.Record) error {
	if w.broken {
		return fmt.Errorf("journal %s: an earlier append failed, the journal takes no more records", w.path)
	}
	r.Seq = w.seq
	r.Time = w.now().UTC().Format(manifest.TimeFormat)
	b, err := Encode(r)
	if err != nil {
		return err
	}
	if _, err := w.f.Write(b); err != nil {
		w.broken = true
		return fmt.Errorf("appending to journal %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		w.broken = true
		return fmt.Errorf("fsync journal %s: %w", w.path, err)
	}
	w.seq++
	return nil
}

// Close appends the close record (unless the journal is broken) and
// closes the file; it returns the append's and the close's errors.
func (w *Writer) Close(info *manifest.CloseInfo) (appendErr, closeErr error) {
	if !w.broken {
		appendErr = w.Append(&manifest.Record{Type: manifest.RecordClose, Close: info})
	}
	return appendErr, w.f.Close()
}
