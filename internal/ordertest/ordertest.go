// Package ordertest checks the commit protocol as an order of file-system
// operations. The rank writer and the merge run on a vfs.Recorder; the
// Checker replays the log with a model of what a power cut keeps (a
// file's bytes are durable after its fsync, a directory entry after its
// directory's fsync, a path when every entry on the way down is) and
// reports each operation at which the protocol vouches for something that
// is not durable yet.
//
// Why, beside internal/crashtest: a crash test that kills the process
// cannot see a missing fsync, because the kernel keeps what a killed
// process wrote; and the power cuts of vfs.Mem.CrashClone find a missing
// fsync only when a crash point and a lost write happen to meet in a way
// the checks after it notice. An audit deleted single fsyncs and reordered
// the commit, and every test stayed green. Here each rule of
// docs/format.md ("Durability rules", "Committing a scenario", the
// merge's "Apply" and "Outputs") is asserted at the operation where it
// must hold:
//
//   - temp-durable: when a commit or checkpoint record is written to a
//     journal, every temp file it names has durable bytes (fsynced after
//     its last write) and a durable name (_shards/tmp fsynced after the
//     create).
//   - journal-durable: when a record after the open record is written,
//     the journal's earlier lines and its own name are durable.
//   - journal-sync: a record's line is fsynced before anything acts on it:
//     before a rename of a file it names (the publish, or the merge's roll
//     forward), before the next record of its journal, and before a call
//     returns (a mark).
//   - published: the files of a commit or checkpoint record are durable
//     at their final paths (renamed, the partition directory fsynced, new
//     directories' parents fsynced) before the journal's next record,
//     the point after which the record counts as published in full (a
//     failed close record excepted: its writer broke while publishing),
//     and when a call returns.
//   - durable-name: from the moment a commit or checkpoint record is
//     durable, every file it names has, after every operation, a durable
//     name (its temp or its final path) with durable bytes: a power cut at
//     any point finds it. (The fsync of _shards/tmp that makes a temp
//     name's removal durable must come after the fsync that makes the
//     final name durable.)
//   - staged-durable: a file renamed out of _shards/tmp has durable bytes
//     at the rename.
//   - success: when simulation/_SUCCESS or training/_SUCCESS appears,
//     every file under its directory (and, for training, under policy/)
//     and every journal is durable, and the outputs it vouches for exist.
//   - outputs-durable: when a call returns (a mark), every file under
//     simulation/, training/ and policy/ is durable.
//
// A test marks the moments calls return with vfs.Recorder.Mark, only
// after calls that succeeded (Flush, WriteIteration, WriteCheckpoint,
// Close, merge.Run): a mark asserts that what the call promised is
// durable.
package ordertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/vfs"
)

// Violation is one breach of the protocol: the rule, the operation at
// which it was seen (a mark, for the rules checked when a call returns)
// and what was not durable.
type Violation struct {
	Rule string
	Op   vfs.RecordedOp
	Msg  string
}

func (v Violation) String() string { return fmt.Sprintf("%s at [%v]: %s", v.Rule, v.Op, v.Msg) }

// Stats counts what a Checker saw, so that a test can make sure the rules
// had something to check.
type Stats struct {
	Records     map[string]int // journal records written, by type
	Files       int            // files named by commit and checkpoint records
	Publishes   int            // renames of a file a record names to its final path
	Successes   []string       // _SUCCESS files that appeared, relative to out
	Marks       int
	Operations  int
	StagedMoves int // renames out of _shards/tmp
}

// Checker replays logs of a vfs.Recorder and collects violations.
type Checker struct {
	out   string
	m     *model
	stats Stats
	viol  []Violation
	seen  map[string]bool // rule + subject already reported

	recs    []*record            // every record with files, in order
	byTemp  map[string][]*record // absolute temp path -> records naming it
	byPath  map[string][]*record // absolute final path -> records naming it
	journal map[*node]*jstate    // journals by file
}

// jstate is one journal's state.
type jstate struct {
	path     string
	unsynced []*record // records whose line is not durable yet
	last     *record   // the last record written
}

// record is one journal record as written.
type record struct {
	typ     string
	status  string // close records
	j       *node
	jpath   string
	op      vfs.RecordedOp
	synced  bool
	files   []fileRef
	checked bool // "published" checked (at the next record)
}

type fileRef struct{ temp, final string } // absolute

// New returns a Checker for the study in out (as the writers were given
// it), starting from an empty file system.
func New(out string) *Checker {
	return &Checker{
		out:     filepath.Clean(out),
		m:       newModel(),
		stats:   Stats{Records: map[string]int{}},
		seen:    map[string]bool{},
		byTemp:  map[string][]*record{},
		byPath:  map[string][]*record{},
		journal: map[*node]*jstate{},
	}
}

// Violations returns what the logs replayed so far broke, in order.
func (c *Checker) Violations() []Violation { return slices.Clone(c.viol) }

// Stats returns what the Checker saw.
func (c *Checker) Stats() Stats { return c.stats }

// Rules returns the names of the rules broken, sorted, each once.
func (c *Checker) Rules() []string {
	var out []string
	for _, v := range c.viol {
		if !slices.Contains(out, v.Rule) {
			out = append(out, v.Rule)
		}
	}
	slices.Sort(out)
	return out
}

// PowerCut applies a power cut between two logs: what was not durable is
// gone, records whose line was not durable included. Use it between the
// log of a process and the log of the next one on the state
// vfs.Mem.CrashClone (without Rand) made.
func (c *Checker) PowerCut() {
	c.m.powerCut()
	for _, js := range c.journal {
		for _, r := range js.unsynced {
			c.forget(r)
			if js.last == r {
				js.last = nil
			}
		}
		js.unsynced = nil
	}
}

// forget drops a record a power cut took.
func (c *Checker) forget(r *record) {
	drop := func(rs []*record) []*record { return slices.DeleteFunc(rs, func(x *record) bool { return x == r }) }
	c.recs = drop(c.recs)
	for _, f := range r.files {
		c.byTemp[f.temp] = drop(c.byTemp[f.temp])
		c.byPath[f.final] = drop(c.byPath[f.final])
	}
}

// Run replays a Recorder's log, or the next part of it. Logs of
// successive processes (a killed rank, then the merge on vfs.Mem.Clone's
// copy) are replayed one after the other on one Checker. (Handle numbers
// of different Recorders may repeat; each file's operations follow its
// Create or Open in the log, which rebinds the number.)
func (c *Checker) Run(ops []vfs.RecordedOp) {
	for _, o := range ops {
		c.step(o)
	}
}

func (c *Checker) fail(rule, subject string, o vfs.RecordedOp, format string, args ...any) {
	key := rule + "\x00" + subject
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.viol = append(c.viol, Violation{Rule: rule, Op: o, Msg: fmt.Sprintf(format, args...)})
}

func (c *Checker) rel(p string) string {
	r, err := filepath.Rel(c.out, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

func (c *Checker) abs(rel string) string { return layout.Join(c.out, rel) }

// isJournal reports whether p is a journal of the study.
func (c *Checker) isJournal(p string) bool {
	return filepath.Dir(filepath.Clean(p)) == c.abs(layout.JournalDir) && strings.HasSuffix(p, layout.JournalSuffix)
}

func (c *Checker) step(o vfs.RecordedOp) {
	if o.IsMark() {
		c.stats.Marks++
		c.atMark(o)
		return
	}
	c.stats.Operations++
	c.before(o)
	c.m.apply(o)
	if o.Err != nil {
		return
	}
	switch o.Op {
	case vfs.OpSync:
		if n := c.m.handles[o.Handle]; n != nil {
			if js := c.journal[n]; js != nil {
				for _, r := range js.unsynced {
					r.synced = true
				}
				js.unsynced = nil
			}
		}
	case vfs.OpRename, vfs.OpRenameNoReplace:
		if len(c.byPath[filepath.Clean(o.New)]) > 0 {
			c.stats.Publishes++
		}
		if filepath.Dir(filepath.Clean(o.Path)) == c.abs(layout.TempDir) {
			c.stats.StagedMoves++
		}
	}
	switch o.Op {
	case vfs.OpSync, vfs.OpSyncDir, vfs.OpRemove, vfs.OpRename, vfs.OpRenameNoReplace:
		c.checkNames(o)
	}
}

// before checks the rules that hold at the moment o is made, on the state
// before it.
func (c *Checker) before(o vfs.RecordedOp) {
	switch o.Op {
	case vfs.OpWrite:
		if c.isJournal(o.Path) && o.N > 0 {
			c.journalWrite(o)
		}
	case vfs.OpRename, vfs.OpRenameNoReplace:
		if o.Err != nil {
			return
		}
		src := filepath.Clean(o.Path)
		for _, r := range c.byTemp[src] {
			if !r.synced {
				c.fail("journal-sync", src, o, "%s is renamed, but the %s record naming it (%s, written at [%v]) is not fsynced yet", c.rel(src), r.typ, c.rel(r.jpath), r.op)
			}
		}
		if filepath.Dir(src) == c.abs(layout.TempDir) {
			if n := c.m.lookup(src); n != nil && !n.dir && n.dirty {
				c.fail("staged-durable", src, o, "%s is renamed into place, but its bytes are not fsynced", c.rel(src))
			}
		}
		c.successAppears(o, o.New)
	case vfs.OpCreate:
		if o.Err == nil {
			c.successAppears(o, o.Path)
		}
	}
}

// journalLine is what the Checker reads of a journal line.
type journalLine struct {
	Record struct {
		Type   string `json:"type"`
		Commit *struct {
			Files []jfile `json:"files"`
		} `json:"commit"`
		Checkpoint *struct {
			Files []jfile `json:"files"`
		} `json:"checkpoint"`
		Close *struct {
			Status string `json:"status"`
		} `json:"close"`
	} `json:"record"`
}

type jfile struct {
	Temp string `json:"temp"`
	Path string `json:"path"`
}

// journalWrite checks an append to a journal and notes its records.
func (c *Checker) journalWrite(o vfs.RecordedOp) {
	n := c.m.handles[o.Handle]
	if n == nil {
		n = c.m.known(o.Path)
	}
	js := c.journal[n]
	if js == nil {
		js = &jstate{path: filepath.Clean(o.Path)}
		c.journal[n] = js
	}
	for line := range bytes.Lines(o.Data) {
		var jl journalLine
		if !bytes.HasSuffix(line, []byte("\n")) || json.Unmarshal(line, &jl) != nil || jl.Record.Type == "" {
			continue // not a whole record: a torn append is no commit
		}
		r := &record{typ: jl.Record.Type, j: n, jpath: js.path, op: o}
		var files []jfile
		switch {
		case jl.Record.Commit != nil:
			files = jl.Record.Commit.Files
		case jl.Record.Checkpoint != nil:
			files = jl.Record.Checkpoint.Files
		case jl.Record.Close != nil:
			r.status = jl.Record.Close.Status
		}
		for _, f := range files {
			r.files = append(r.files, fileRef{temp: c.abs(f.Temp), final: c.abs(f.Path)})
		}
		c.stats.Records[r.typ]++
		c.stats.Files += len(r.files)
		c.record(o, js, r)
	}
}

// record checks the rules at the write of r.
func (c *Checker) record(o vfs.RecordedOp, js *jstate, r *record) {
	if r.typ != "open" {
		if ok, why := c.m.durable(js.path); !ok {
			c.fail("journal-durable", js.path, o, "a %s record is appended to %s, but the journal is not durable: %s", r.typ, c.rel(js.path), why)
		}
	}
	if p := js.last; p != nil && !p.synced {
		c.fail("journal-sync", js.path+"\x00next", o, "a %s record is appended to %s before the %s record written at [%v] was fsynced", r.typ, c.rel(js.path), p.typ, p.op)
	}
	// The records before r were published in full before r was written,
	// unless r says the writer broke.
	if !(r.typ == "close" && r.status == "failed") {
		for _, p := range c.recs {
			if p.j == r.j && !p.checked {
				p.checked = true
				c.published(o, p, fmt.Sprintf("before the next record (%s) of %s", r.typ, c.rel(js.path)))
			}
		}
	}
	for _, f := range r.files {
		if ok, why := c.m.durable(f.temp); !ok {
			c.fail("temp-durable", f.temp, o, "the %s record names %s, which is not durable: %s", r.typ, c.rel(f.temp), why)
		}
	}
	js.last = r
	js.unsynced = append(js.unsynced, r)
	if len(r.files) > 0 {
		c.recs = append(c.recs, r)
		for _, f := range r.files {
			c.byTemp[f.temp] = append(c.byTemp[f.temp], r)
			c.byPath[f.final] = append(c.byPath[f.final], r)
		}
	}
}

// published checks that r's files are durable at their final paths.
func (c *Checker) published(o vfs.RecordedOp, r *record, when string) {
	for _, f := range r.files {
		if ok, why := c.m.durable(f.final); !ok {
			c.fail("published", f.final, o, "%s of the %s record written at [%v] is not durable at its final path %s: %s", c.rel(f.temp), r.typ, r.op, when, why)
		}
	}
}

// checkNames checks after o that every file of every durable record has
// a durable name.
func (c *Checker) checkNames(o vfs.RecordedOp) {
	for _, r := range c.recs {
		if !r.synced {
			continue
		}
		for _, f := range r.files {
			if c.m.survives(f.temp) || c.m.survives(f.final) {
				continue
			}
			_, whyT := c.m.durable(f.temp)
			_, whyF := c.m.durable(f.final)
			c.fail("durable-name", f.final, o, "the %s record written at [%v] is durable, but a power cut now would find its file under neither name: temp: %s; final: %s", r.typ, r.op, whyT, whyF)
		}
	}
}

// vouched lists, by directory of a _SUCCESS file, the outputs that must
// exist when it appears, and the directories whose every file it vouches
// for.
var vouched = map[string]struct{ must, dirs []string }{
	layout.SimDir: {
		must: []string{
			layout.SimDir + "/" + layout.ManifestName, layout.SimDir + "/" + layout.IndexName,
			layout.SimDir + "/" + layout.MetadataName, layout.SimDir + "/" + layout.SummaryName,
		},
		dirs: []string{layout.SimDir},
	},
	layout.TrainingDir: {
		must: []string{
			layout.TrainingDir + "/" + layout.ManifestName, layout.TrainingDir + "/" + layout.MetadataName,
			layout.ConvergenceFile, layout.TimingIterationsFile, layout.TimingMPIRanksFile,
		},
		dirs: []string{layout.TrainingDir, layout.PolicyDir},
	},
}

// successAppears checks the "success" rule when o makes name appear.
func (c *Checker) successAppears(o vfs.RecordedOp, name string) {
	name = filepath.Clean(name)
	if filepath.Base(name) != layout.SuccessName {
		return
	}
	dir := c.rel(filepath.Dir(name))
	v, ok := vouched[dir]
	if !ok {
		return
	}
	c.stats.Successes = append(c.stats.Successes, c.rel(name))
	for _, rel := range v.must {
		if c.m.lookup(c.abs(rel)) == nil {
			c.fail("success", name+"\x00"+rel, o, "%s appears, but %s, which it vouches for, does not exist", c.rel(name), rel)
		}
	}
	var all []string
	for _, d := range v.dirs {
		all = append(all, c.m.files(c.abs(d))...)
	}
	all = append(all, c.m.files(c.abs(layout.JournalDir))...)
	for _, p := range all {
		if p == name || filepath.Base(p) == layout.SuccessName {
			continue
		}
		if ok, why := c.m.durable(p); !ok {
			c.fail("success", name+"\x00"+p, o, "%s appears, but %s, which it vouches for, is not durable: %s", c.rel(name), c.rel(p), why)
		}
	}
}

// atMark checks what must be durable when a call returns.
func (c *Checker) atMark(o vfs.RecordedOp) {
	for _, js := range c.journal {
		for _, r := range js.unsynced {
			c.fail("journal-sync", js.path+"\x00mark", o, "the call returned, but the %s record written to %s at [%v] is not fsynced", r.typ, c.rel(js.path), r.op)
		}
	}
	for _, r := range c.recs {
		c.published(o, r, "when the call returned")
	}
	for _, d := range []string{layout.SimDir, layout.TrainingDir, layout.PolicyDir} {
		for _, p := range c.m.files(c.abs(d)) {
			if ok, why := c.m.durable(p); !ok {
				c.fail("outputs-durable", p, o, "the call returned, but %s is not durable: %s", c.rel(p), why)
			}
		}
	}
}
