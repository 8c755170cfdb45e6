package rank

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/shard"
	"github.com/hydroshard/hydroshard/vfs"
)

// DefaultQueue is the default Options.Queue: how many accepted scenarios
// may wait for their commit before WriteScenario blocks.
const DefaultQueue = 64

// A scenario accepted by WriteScenario goes through three stages, so that
// a solver's simulation workers only pay for validation and the encoding
// runs on Options.Workers goroutines:
//
//   - the dispatcher takes jobs off the queue in acceptance order, hands
//     each to the committer (same order) and splits it into table tasks;
//   - the workers encode table tasks into temp files: the tables of one
//     scenario and of consecutive scenarios in parallel, each worker with
//     its own long-lived encoder; each file is fsynced on a goroutine of
//     its own while the workers go on encoding (the fsyncs of a
//     scenario's tables run at once, and the file system commits them
//     together);
//   - the committer, in acceptance order, waits for a job's tables, appends
//     its commit record (the commit point), publishes the files (their new
//     partition directories made all at once, then the renames one by
//     one), and frees the job's slot. The fsync of _shards/tmp (the
//     protocol's step 2) runs once the job's temp files exist, while
//     their own fsyncs are still in flight.
//
// The slots bound accepted-but-uncommitted scenarios (Options.Queue): that
// is the backpressure, and what keeps memory independent of the number of
// scenarios. Commit order is acceptance order, and the write-ahead rule is
// unchanged: a commit record is appended only after every file it names is
// durable, and files are renamed only after the record is.

// job is one accepted scenario on its way to the journal.
type job struct {
	s       *shard.Scenario
	tables  []shard.TableRows
	cost    manifest.CostSummary
	files   []manifest.FileRecord // per table, set by the workers
	errs    []error               // per table, set by the workers
	pending sync.WaitGroup        // one count per table still encoding or syncing
	written sync.WaitGroup        // one count per table whose temp file is not written yet
	dropped bool                  // not encoded: the writer was interrupted
}

type task struct {
	j *job
	i int // index into j.tables
}

// maxSyncs is how many written files may wait for their fsync at once
// (open descriptors, each with a goroutine): 32 per worker, the tables of
// about three production scenarios, so that a scenario's fsyncs are in
// flight together and a worker rarely waits for a slot.
func maxSyncs(workers int) int { return 32 * workers }

// pipeline is the Writer's background machinery.
type pipeline struct {
	slots   chan struct{} // one per accepted, uncommitted scenario
	queue   chan *job     // closed by Close (under the Writer's lock)
	drained chan struct{} // closed when every accepted job is finished

	accepted, finished int           // under the Writer's lock
	progress           chan struct{} // closed and replaced at each finished job
	inflight           map[int]bool  // accepted, not finished
	dropped            int           // accepted, finished uncommitted after a signal or CloseContext's ctx
	// unreported are bad-input errors found while encoding (the scenario
	// was not committed; the writer stays usable), returned once by the
	// next WriteScenario, Flush or Close.
	unreported []error
}

func (w *Writer) startPipeline() {
	q := w.opts.Queue
	w.pipe = pipeline{
		slots:    make(chan struct{}, q),
		queue:    make(chan *job, q),
		drained:  make(chan struct{}),
		progress: make(chan struct{}),
		inflight: map[int]bool{},
	}
	order := make(chan *job, q) // never blocks: at most q jobs exist
	tasks := make(chan task)
	go func() { // dispatcher
		defer close(tasks)
		defer close(order)
		for j := range w.pipe.queue {
			// After SIGTERM the clock is running (SLURM's lead time before
			// the kill): scenarios not started yet are dropped, uncommitted,
			// for the requeued job to redo, so that Close waits for at most
			// the scenarios already being encoded.
			// CloseContext's ctx ending does the same.
			if w.Interrupted() || w.abandon.Load() {
				j.dropped = true
				j.pending.Add(-len(j.tables))
				order <- j
				continue
			}
			j.written.Add(len(j.tables))
			order <- j
			for i := range j.tables {
				tasks <- task{j, i}
			}
		}
	}()
	// Each written file's fsync runs on a goroutine of its own while the
	// worker goes on encoding the next table; a table is done (for the
	// committer) once its file is durable. Many fsyncs in flight at once
	// cost about one: the file system commits them together (a scenario's
	// ten small tables would otherwise pay ten fsync latencies in a row).
	// syncSlots bounds the open, not yet durable files.
	syncSlots := make(chan struct{}, maxSyncs(w.opts.Workers))
	var workers sync.WaitGroup
	for range w.opts.Workers {
		workers.Go(func() {
			enc := shard.NewEncoder()
			for t := range tasks {
				pf := w.encodeTable(enc, t)
				t.j.written.Done()
				if pf == nil {
					t.j.pending.Done()
					continue
				}
				syncSlots <- struct{}{}
				go func() {
					if err := pf.Sync(); err != nil {
						t.j.errs[t.i] = err
						t.j.files[t.i] = manifest.FileRecord{} // removed by Sync
					}
					<-syncSlots
					t.j.pending.Done()
				}()
			}
		})
	}
	go func() { // committer
		defer close(w.pipe.drained)
		for j := range order {
			// Step 2 of the protocol, the fsync of _shards/tmp, needs
			// only the job's temp files created: it runs while their own
			// fsyncs are still in flight, and the commit record waits
			// for both. It follows the previous job's publish, which
			// this goroutine finished (the fsync makes the removal of
			// that job's temp names durable: their final names must
			// be already).
			j.written.Wait()
			var dirErr error
			if !j.dropped && !w.broken.Load() {
				dirErr = w.dirs.SyncDir(layout.Join(w.out, layout.TempDir))
			}
			j.pending.Wait()
			w.commit(j, dirErr)
			<-w.pipe.slots
		}
	}()
}

// encodeTable writes one table of a job to its temp file and returns it,
// not yet durable (nil on error). After the writer broke, remaining work
// is skipped: nothing more will be committed.
func (w *Writer) encodeTable(enc *shard.Encoder, t task) *vfs.Pending {
	j := t.j
	if w.testHookEncode != nil {
		w.testHookEncode(j.s.ID)
	}
	if w.broken.Load() {
		j.errs[t.i] = errBroken
		return nil
	}
	if w.abandon.Load() {
		j.errs[t.i] = errDropped
		return nil
	}
	tr := j.tables[t.i]
	tmp := layout.SimTemp(w.name, j.s.ID, tr.Table.Entity)
	var rows int64
	info, pf, err := vfs.WriteNew(w.fsys, layout.Join(w.out, tmp), func(out io.Writer) (err error) {
		rows, err = enc.Encode(out, tr, w.cas)
		return err
	})
	if err != nil {
		j.errs[t.i] = err
		return nil
	}
	j.files[t.i] = manifest.FileRecord{
		Entity: tr.Table.Entity,
		Temp:   tmp,
		Path:   layout.DataFile(tr.Table.Entity, w.layout.ScenarioPad, j.s.ID),
		Rows:   rows,
		Bytes:  info.Bytes,
		XXH64:  manifest.FormatXXH64(info.XXH64),
	}
	return pf
}

// Reasons a job is finished without a commit that are not errors of the
// job itself.
var (
	errBroken  = errors.New("writer failed earlier")
	errDropped = errors.New("dropped after a signal, or when CloseContext's ctx ended")
)

// commit makes one encoded job durable, or discards it. dirErr is the
// error of the fsync of _shards/tmp after the job's files were created.
func (w *Writer) commit(j *job, dirErr error) {
	id := j.s.ID
	err := errors.Join(j.errs...)
	if err == nil && w.broken.Load() {
		err = errBroken
	}
	if j.dropped {
		err = errDropped
	}
	if err != nil {
		for _, f := range j.files {
			if f.Temp != "" {
				_ = w.fsys.Remove(layout.Join(w.out, f.Temp))
			}
		}
		w.finish(id, false, err)
		return
	}
	// The temp files' own fsyncs made their bytes durable, not their
	// names: without the fsync of the temp directory (done by the
	// committer once the files were created) a power cut could leave a
	// durable commit record naming files that are gone.
	if dirErr != nil {
		w.finish(id, false, dirErr)
		return
	}
	rec := &manifest.Record{Type: manifest.RecordCommit, Commit: &manifest.CommitInfo{Scenario: id, Files: j.files, Cost: j.cost}}
	if err := appendRecord(w.journal, w.lease, rec); err != nil {
		// The line may be half written: the journal can take no more.
		w.finish(id, false, err)
		return
	}
	if err := publish(w.dirs, w.out, j.files); err != nil {
		w.finish(id, true, fmt.Errorf("committed, but %w (the merge will finish it)", err))
		return
	}
	w.finish(id, true, nil)
}

// finish records a job's outcome. Bad input (a column or row the encoder
// refused) leaves the writer usable and is reported once; any other error
// breaks it: it is returned by every later call.
func (w *Writer) finish(id int, committed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := &w.pipe
	delete(p.inflight, id)
	if committed {
		w.committed[id] = true
		w.mine++
	}
	var ce *shard.ColumnError
	var be *shard.BadRowError
	if !committed && errors.Is(err, errDropped) {
		p.dropped++
	}
	switch {
	case err == nil, errors.Is(err, errBroken), errors.Is(err, errDropped):
	case !committed && (errors.As(err, &ce) || errors.As(err, &be)):
		p.unreported = append(p.unreported, &ScenarioError{Scenario: id, Err: err})
	case w.err == nil:
		w.err = &ScenarioError{Scenario: id, Err: err}
		w.broken.Store(true)
	}
	p.finished++
	close(p.progress)
	p.progress = make(chan struct{})
}

// takeUnreported returns (once) the bad-input errors found since the last
// call. Callers hold w.mu.
func (w *Writer) takeUnreported() error {
	err := errors.Join(w.pipe.unreported...)
	w.pipe.unreported = nil
	return err
}

// Flush waits until every scenario accepted so far is committed (or
// failed) and returns what went wrong since the last report: the writer's
// error when it broke, or the bad-input errors of scenarios that were not
// committed. It is how a caller learns that the scenarios it handed over
// are durable, and when it may reuse their slices. After Close it returns
// an error matching ErrClosed (Close has waited for everything).
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed("Flush")
	}
	target := w.pipe.accepted
	for w.pipe.finished < target {
		ch := w.pipe.progress
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.takeUnreported()
}

// publish is journal.Publish of a commit's files, with the partition
// directories made first, all at once: each new directory costs an fsync
// of its parent, and fsyncs in flight together cost about one. The
// renames and their partition directories' fsyncs stay one file at a
// time, as journal.Publish does them: a file renamed out of the shared
// _shards/tmp is in the window where another writer's fsync of
// _shards/tmp could make its temp name's removal durable before its final
// name is (internal/ordertest's TestSharedTmpDirHole), and renaming the
// files together would put every file of the scenario in that window at
// once.
func publish(dirs *vfs.Dirs, out string, files []manifest.FileRecord) error {
	if len(files) > 1 {
		errs := make([]error, len(files))
		var wg sync.WaitGroup
		for i, f := range files {
			wg.Go(func() {
				final := layout.Join(out, f.Path)
				if err := dirs.Ensure(filepath.Dir(final)); err != nil {
					errs[i] = fmt.Errorf("publishing %s: %w", final, err)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	}
	return journal.Publish(dirs, out, files)
}
