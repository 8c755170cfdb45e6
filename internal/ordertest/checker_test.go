package ordertest

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hydroshard/hydroshard/journal"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/vfs"
)

// script is a commit protocol in miniature, written by hand on a
// Recorder: a journal, two scenarios of one file each committed, a close
// record, then a merge's outputs: a manifest and _SUCCESS. Each mutation
// leaves out or moves one step, at one scenario.
type script struct {
	t   *testing.T
	r   *vfs.Recorder
	j   vfs.File
	seq int64
	mut mutation
}

type mutation struct {
	what     string
	scenario int // the scenario whose commit it changes
}

func (s *script) is(what string, scenario int) bool {
	return s.mut.what == what && s.mut.scenario == scenario
}

func (s *script) ok(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *script) path(rel string) string { return layout.Join(out, rel) }

// write creates name and writes data, leaving it open.
func (s *script) write(name, data string) vfs.File {
	s.t.Helper()
	f, err := s.r.Create(name)
	s.ok(err)
	_, err = io.WriteString(f, data)
	s.ok(err)
	return f
}

func (s *script) append(r *manifest.Record, sync bool) {
	s.t.Helper()
	r.Seq = s.seq
	s.seq++
	b, err := journal.Encode(r)
	s.ok(err)
	_, err = s.j.Write(b)
	s.ok(err)
	if sync {
		s.ok(s.j.Sync())
	}
}

// mkdirs makes the study's directories, each with its parent fsynced,
// by hand: the Checker's own tests do not lean on vfs.Dirs, which the
// protocol tests check.
func (s *script) mkdirs() {
	s.t.Helper()
	for _, dir := range []string{"/study", out, s.path(layout.ShardsDir), s.path(layout.JournalDir), s.path(layout.TempDir), s.path(layout.SimDir), s.path(layout.SimDir + "/costs")} {
		s.ok(s.r.Mkdir(dir))
		s.ok(s.r.SyncDir(filepath.Dir(dir)))
	}
}

func (s *script) run() {
	s.t.Helper()
	s.mkdirs()
	var err error
	s.j, err = s.r.Create(s.path(layout.Journal("w")))
	s.ok(err)
	s.append(&manifest.Record{Type: manifest.RecordOpen, Open: &manifest.OpenInfo{Writer: "w"}}, !s.is("no open record fsync", 0))
	if !s.is("no journal directory fsync", 0) {
		s.ok(s.r.SyncDir(s.path(layout.JournalDir)))
	}
	for sc := range 2 {
		s.commit(sc)
	}
	s.append(&manifest.Record{Type: manifest.RecordClose, Close: &manifest.CloseInfo{Status: manifest.StatusClean, Committed: 2}}, !s.is("no close record fsync", 0))
	s.r.Mark("Close returned")
	s.outputs()
	s.r.Mark("merge returned")
}

func (s *script) commit(sc int) {
	tmp := s.path(fmt.Sprintf("%s/w.s%d.costs.tmp", layout.TempDir, sc))
	final := s.path(layout.DataFile("costs", 0, sc))
	rec := &manifest.Record{Type: manifest.RecordCommit, Commit: &manifest.CommitInfo{Scenario: sc, Files: []manifest.FileRecord{{
		Entity: "costs", Temp: s.rel(tmp), Path: s.rel(final), Rows: 1, Bytes: 4, XXH64: "0000000000000000",
	}}}}
	f := s.write(tmp, "data")
	early := s.is("commit before temp fsync", sc)
	if early {
		s.append(rec, true)
	}
	if !s.is("no temp fsync", sc) {
		s.ok(f.Sync())
	}
	s.ok(f.Close())
	if !s.is("no tmp directory fsync", sc) {
		s.ok(s.r.SyncDir(s.path(layout.TempDir)))
	}
	if !early {
		s.append(rec, !s.is("no commit record fsync", sc))
	}
	part := filepath.Dir(final)
	s.ok(s.r.Mkdir(part))
	if !s.is("no new partition's parent fsync", sc) {
		s.ok(s.r.SyncDir(filepath.Dir(part)))
	}
	s.ok(s.r.RenameNoReplace(tmp, final))
	if !s.is("no partition fsync", sc) {
		s.ok(s.r.SyncDir(part))
	}
}

func (s *script) rel(p string) string {
	r, err := filepath.Rel(out, p)
	s.ok(err)
	return filepath.ToSlash(r)
}

// outputs stages, renames and syncs simulation/_manifest.json, then
// _SUCCESS, as the merge does.
func (s *script) outputs() {
	sim := s.path(layout.SimDir)
	place := func(name string, sync bool) {
		tmp := s.path(layout.TempDir + "/merge.1." + name + ".tmp")
		f := s.write(tmp, "{}")
		if sync {
			s.ok(f.Sync())
		}
		s.ok(f.Close())
		s.ok(s.r.Rename(tmp, filepath.Join(sim, name)))
	}
	place(layout.ManifestName, !s.is("no staged output fsync", 0))
	late := s.is("_SUCCESS before the manifest's directory fsync", 0)
	if !late && !s.is("no output directory fsync, no _SUCCESS", 0) {
		s.ok(s.r.SyncDir(sim))
	}
	if s.is("no output directory fsync, no _SUCCESS", 0) {
		return
	}
	// What simulation/_SUCCESS must find (the index, metadata, summary):
	// written the same way.
	for _, name := range []string{layout.IndexName, layout.MetadataName, layout.SummaryName} {
		place(name, true)
	}
	if !late {
		s.ok(s.r.SyncDir(sim))
	}
	place(layout.SuccessName, true)
	s.ok(s.r.SyncDir(sim))
}

// TestCheckerCatches: the hand-written protocol passes as documented, and
// leaving out or moving any one of its steps is caught, first, by the
// rule that step serves.
func TestCheckerCatches(t *testing.T) {
	tests := []struct {
		mut  mutation
		want string // the first rule broken; "" for none
	}{
		{mutation{}, ""},
		{mutation{"no temp fsync", 0}, "temp-durable"},
		{mutation{"no temp fsync", 1}, "temp-durable"},
		{mutation{"no tmp directory fsync", 0}, "temp-durable"},
		{mutation{"commit before temp fsync", 1}, "temp-durable"},
		{mutation{"no commit record fsync", 0}, "journal-sync"},
		{mutation{"no commit record fsync", 1}, "journal-sync"},
		{mutation{"no open record fsync", 0}, "journal-durable"},
		{mutation{"no journal directory fsync", 0}, "journal-durable"},
		// The next commit's fsync of _shards/tmp makes the temp name's
		// removal durable while the final name is not.
		{mutation{"no partition fsync", 0}, "durable-name"},
		// The last commit: the close record comes before the fsync.
		{mutation{"no partition fsync", 1}, "published"},
		{mutation{"no new partition's parent fsync", 1}, "published"},
		{mutation{"no close record fsync", 0}, "journal-sync"},
		{mutation{"no staged output fsync", 0}, "staged-durable"},
		{mutation{"_SUCCESS before the manifest's directory fsync", 0}, "success"},
		{mutation{"no output directory fsync, no _SUCCESS", 0}, "outputs-durable"},
	}
	for _, tc := range tests {
		name := "as documented"
		if tc.mut.what != "" {
			name = fmt.Sprintf("%s at scenario %d", tc.mut.what, tc.mut.scenario)
		}
		t.Run(name, func(t *testing.T) {
			s := &script{t: t, r: vfs.Record(vfs.NewMem()), mut: tc.mut}
			s.run()
			c := New(out)
			c.Run(s.r.Ops())
			v := c.Violations()
			switch {
			case tc.want == "" && len(v) > 0:
				t.Fatalf("violations: %v", v)
			case tc.want != "" && len(v) == 0:
				t.Fatalf("no violation, want %s", tc.want)
			case tc.want != "" && v[0].Rule != tc.want:
				t.Fatalf("first violation %v, want rule %s; all: %v", v[0], tc.want, v)
			}
			if tc.want != "" {
				t.Logf("%v", v[0])
			}
			st := c.Stats()
			if st.Records["commit"] != 2 || st.Publishes != 2 || st.Marks != 2 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestCheckerPowerCut: a record whose line was not durable is gone after
// a power cut, and so is everything else not durable: renaming the temp
// files it named is no violation then.
func TestCheckerPowerCut(t *testing.T) {
	m := vfs.NewMem()
	s := &script{t: t, r: vfs.Record(m), mut: mutation{"no commit record fsync", 0}}
	// Only the open record and the first commit, not fsynced.
	s.mkdirs()
	var err error
	s.j, err = s.r.Create(s.path(layout.Journal("w")))
	s.ok(err)
	s.append(&manifest.Record{Type: manifest.RecordOpen, Open: &manifest.OpenInfo{Writer: "w"}}, true)
	s.ok(s.r.SyncDir(s.path(layout.JournalDir)))
	tmp := s.path(layout.TempDir + "/w.s0.costs.tmp")
	f := s.write(tmp, "data")
	s.ok(f.Sync())
	s.ok(f.Close())
	s.ok(s.r.SyncDir(s.path(layout.TempDir)))
	s.append(&manifest.Record{Type: manifest.RecordCommit, Commit: &manifest.CommitInfo{Files: []manifest.FileRecord{{Temp: s.rel(tmp), Path: layout.DataFile("costs", 0, 0)}}}}, false)

	c := New(out)
	c.Run(s.r.Ops())
	c.PowerCut()
	after := m.CrashClone(vfs.CrashOptions{})
	r := vfs.Record(after)
	final := s.path(layout.DataFile("costs", 0, 0))
	s.ok(r.Mkdir(filepath.Dir(final)))
	s.ok(r.RenameNoReplace(tmp, final))
	c.Run(r.Ops())
	if v := c.Violations(); len(v) > 0 {
		t.Fatalf("violations after the power cut: %v", v)
	}
	if len(c.recs) != 0 {
		t.Fatalf("the commit record outlived the power cut that took its line")
	}
}

// TestModelAgreesWithMem replays a rank's and a merge's log and, at
// crash points along it, compares the model with vfs.Mem: a file the
// model calls durable is in Mem's power-cut state with its current
// bytes, and after a power cut both hold the same files.
func TestModelAgreesWithMem(t *testing.T) {
	st := study{c: tinyCase(t), scenarios: 2, iterations: 2, checkpoint: 2}
	ctx := context.Background()
	for k := 1; ; k += 23 {
		m := vfs.NewMem()
		m.CrashAfter(k) // counted from the start: in the rank, or in the merge after it
		r := vfs.Record(m)
		if err := st.run(ctx, r, 0, nil); err == nil {
			_, _ = merge.Run(ctx, out, mergeOptions(r))
		}
		mod := newModel()
		for _, o := range r.Ops() {
			mod.apply(o)
		}
		cut := m.CrashClone(vfs.CrashOptions{})
		for _, p := range mod.files("/") {
			if ok, _ := mod.durable(p); !ok {
				continue
			}
			cur, err1 := m.ReadFile(p)
			got, err2 := cut.ReadFile(p)
			if err1 != nil || err2 != nil || string(cur) != string(got) {
				t.Fatalf("crash after %d: the model calls %s durable; after a power cut: %d bytes of %d, %v %v", k, p, len(got), len(cur), err1, err2)
			}
		}
		mod.powerCut()
		if got, want := mod.files("/"), cut.Paths(); !slices.Equal(got, want) {
			t.Fatalf("crash after %d: after a power cut the model has\n%v\nMem has\n%v", k, got, want)
		}
		if !m.Crashed() {
			return // the rank and the merge ran to their end
		}
	}
}
