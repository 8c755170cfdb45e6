package ordertest

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hydroshard/hydroshard/vfs"
)

// model replays logged operations and knows, after each one, what a power
// cut would keep: the rules of vfs.Mem and of docs/format.md, "Durability
// rules". A file's bytes are durable when no Write came after its last
// Sync; a directory entry (a create, a rename's target or source, a
// removal, a new subdirectory) is durable once the directory holding it
// has been synced after the change. A path is durable when every entry on
// the way from "/" is.
//
// Paths the log never created (an FS that held files before the Recorder
// was put on it) are taken to have existed, durably: the model learns them
// from the first operation that uses them.
type model struct {
	root    *node
	handles map[int]*node // open files of the current log, by handle
}

// node is a file or a directory.
type node struct {
	dir   bool
	ents  map[string]*node // directory: current entries
	dents map[string]*node // directory: durable entries
	dirty bool             // file: written since its last sync
}

func newDirNode() *node { return &node{dir: true, ents: map[string]*node{}, dents: map[string]*node{}} }

func newModel() *model { return &model{root: newDirNode(), handles: map[int]*node{}} }

// split returns the elements of a cleaned absolute path ("/" has none).
// Relative paths are taken from "/", as vfs.Mem does.
func split(p string) []string {
	p = filepath.ToSlash(filepath.Clean("/" + p))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// lookup returns the node at p in the current tree, or nil.
func (m *model) lookup(p string) *node {
	n := m.root
	for _, e := range split(p) {
		if n == nil || !n.dir {
			return nil
		}
		n = n.ents[e]
	}
	return n
}

// parent returns the directory holding p and p's last element, making
// missing directories on the way up as existing durably (see model).
func (m *model) parent(p string) (*node, string) {
	elems := split(p)
	if len(elems) == 0 {
		return nil, ""
	}
	d := m.root
	for _, e := range elems[:len(elems)-1] {
		c := d.ents[e]
		if c == nil || !c.dir {
			c = newDirNode()
			d.ents[e], d.dents[e] = c, c
		}
		d = c
	}
	return d, elems[len(elems)-1]
}

// known returns the node at p, making it (a durable file) when the log
// never showed it: an operation on it succeeded, so it existed.
func (m *model) known(p string) *node {
	if n := m.lookup(p); n != nil {
		return n
	}
	d, base := m.parent(p)
	if d == nil {
		return m.root
	}
	n := &node{}
	d.ents[base], d.dents[base] = n, n
	return n
}

// apply changes the model as o changed the file system. Failed operations
// change nothing, except a write that wrote some bytes before failing.
func (m *model) apply(o vfs.RecordedOp) {
	if o.IsMark() {
		return
	}
	if o.Err != nil {
		if o.Op == vfs.OpWrite && o.N > 0 {
			if n := m.handles[o.Handle]; n != nil {
				n.dirty = true
			}
		}
		return
	}
	switch o.Op {
	case vfs.OpCreate:
		d, base := m.parent(o.Path)
		n := &node{}
		d.ents[base] = n
		m.handles[o.Handle] = n
	case vfs.OpOpen:
		m.handles[o.Handle] = m.known(o.Path)
	case vfs.OpWrite:
		n := m.handles[o.Handle]
		if n == nil {
			n = m.known(o.Path)
			m.handles[o.Handle] = n
		}
		if o.N > 0 {
			n.dirty = true
		}
	case vfs.OpSync:
		n := m.handles[o.Handle]
		if n == nil {
			n = m.known(o.Path)
		}
		m.sync(n)
	case vfs.OpClose:
		delete(m.handles, o.Handle)
	case vfs.OpRemove:
		m.known(o.Path)
		d, base := m.parent(o.Path)
		delete(d.ents, base)
	case vfs.OpRename, vfs.OpRenameNoReplace:
		n := m.known(o.Path)
		od, obase := m.parent(o.Path)
		nd, nbase := m.parent(o.New)
		if nd.ents[nbase] == n {
			return // two names of one file: rename(2) does nothing
		}
		delete(od.ents, obase)
		nd.ents[nbase] = n
	case vfs.OpMkdir:
		d, base := m.parent(o.Path)
		d.ents[base] = newDirNode()
	case vfs.OpSyncDir:
		n := m.known(o.Path)
		if !n.dir {
			n.dir, n.ents, n.dents = true, map[string]*node{}, map[string]*node{}
		}
		m.sync(n)
	}
}

// sync is fsync(2): a file's bytes, or a directory's entries, become
// durable.
func (m *model) sync(n *node) {
	if n.dir {
		n.dents = maps.Clone(n.ents)
		return
	}
	n.dirty = false
}

// powerCut leaves what a power cut keeps: every directory reachable from
// "/" through durable entries keeps only its durable entries, every file
// its durable bytes; open files are gone.
func (m *model) powerCut() {
	seen := map[*node]bool{}
	var walk func(*node)
	walk = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			n.dirty = false // its bytes are the durable bytes now
			return
		}
		n.ents = maps.Clone(n.dents)
		for _, name := range slices.Sorted(maps.Keys(n.ents)) {
			walk(n.ents[name])
		}
	}
	walk(m.root)
	m.handles = map[int]*node{}
}

// durable says whether the file or directory at p would survive a power
// cut as it is now: every entry from "/" down to it durable and pointing
// at the same file, and, for a file, its bytes durable. why says what is
// not ("" when durable).
func (m *model) durable(p string) (ok bool, why string) {
	n := m.root
	cur := "/"
	for _, e := range split(p) {
		if !n.dir {
			return false, fmt.Sprintf("%s is not a directory", cur)
		}
		c := n.ents[e]
		if c == nil {
			return false, fmt.Sprintf("%s does not exist", filepath.Join(cur, e))
		}
		if n.dents[e] != c {
			what := "its entry"
			if n.dents[e] != nil {
				what = "its current entry (another file's entry is the durable one)"
			}
			return false, fmt.Sprintf("%s of %s is not durable: %s was not fsynced since", what, filepath.Join(cur, e), cur)
		}
		n, cur = c, filepath.Join(cur, e)
	}
	if !n.dir && n.dirty {
		return false, fmt.Sprintf("the bytes of %s are not durable: written and not fsynced since", cur)
	}
	return true, ""
}

// survives says whether a power cut now would leave a file at p with
// durable bytes: p reached from "/" through durable entries only, whatever
// the current tree holds.
func (m *model) survives(p string) bool {
	n := m.root
	for _, e := range split(p) {
		if !n.dir {
			return false
		}
		if n = n.dents[e]; n == nil {
			return false
		}
	}
	return !n.dir && !n.dirty
}

// files lists the files (not directories) under dir in the current tree,
// sorted.
func (m *model) files(dir string) []string {
	d := m.lookup(dir)
	if d == nil || !d.dir {
		return nil
	}
	var out []string
	var walk func(string, *node)
	walk = func(p string, n *node) {
		for _, name := range slices.Sorted(maps.Keys(n.ents)) {
			c, cp := n.ents[name], filepath.Join(p, name)
			if c.dir {
				walk(cp, c)
			} else {
				out = append(out, cp)
			}
		}
	}
	walk(filepath.Clean(dir), d)
	return out
}
