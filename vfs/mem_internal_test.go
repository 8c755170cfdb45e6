package vfs

import (
	"math/rand/v2"
	"testing"
)

// TestCrashCloneSharesInode: a file durable under two names is one inode
// in the crash clone, as on disk, not two copies.
func TestCrashCloneSharesInode(t *testing.T) {
	m := NewMem()
	m.WriteFile("/a/f", []byte("data"))
	m.WriteFile("/b/keep", nil)
	if err := m.Rename("/a/f", "/b/g"); err != nil {
		t.Fatal(err)
	}
	m.SyncDir("/b")
	for _, opts := range []CrashOptions{{}, {Rand: rand.New(rand.NewPCG(1, 1))}} {
		c := m.CrashClone(opts)
		a, b := c.root.ents["a"].ents["f"], c.root.ents["b"].ents["g"]
		if b == nil || a != nil && a != b {
			t.Errorf("rand=%v: /a/f %p and /b/g %p", opts.Rand != nil, a, b)
		}
	}
	c := m.Clone()
	if c.root.ents["a"].dents["f"] != c.root.ents["b"].ents["g"] {
		t.Error("Clone split the shared inode")
	}
}

// TestSyncDirDropsPending: a directory sync drops exactly that directory's
// pending changes.
func TestSyncDirDropsPending(t *testing.T) {
	m := NewMem()
	m.Mkdir("/a")
	m.Mkdir("/b")
	m.Rename("/a", "/b/a")
	if len(m.pending) != 4 || m.pending[2].seq != m.pending[3].seq {
		t.Fatalf("pending %+v", m.pending)
	}
	m.SyncDir("/b")
	if len(m.pending) != 3 {
		t.Errorf("pending after SyncDir(/b): %+v", m.pending)
	}
	m.SyncDir("/")
	if len(m.pending) != 0 {
		t.Errorf("pending after SyncDir(/): %+v", m.pending)
	}
}
