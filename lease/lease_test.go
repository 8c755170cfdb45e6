package lease_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/vfs"
)

const out = "/study/out"

func writerID(rank int, tag string) string {
	return layout.NewWriterID("77", rank, 0, tag, []byte{1, 2, 3, 4, 5, byte(rank)}).String()
}

func alive(int) bool { return true }

// TestJudge: a lease is live while its renewal is younger than the grace
// by the file system's clock, and dead once older, or once its process of
// this host is gone; a released lease is gone.
func TestJudge(t *testing.T) {
	m := vfs.NewMem()
	w := writerID(3, "")
	l, err := lease.Acquire(vfs.NewDirs(m, out), out, w, 3, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now, fromFS, err := lease.Now(context.Background(), m, out)
	if err != nil || !fromFS {
		t.Fatalf("Now: %v (from the file system: %v)", err, fromFS)
	}
	grace := 6 * time.Hour // the least grace for a one-hour interval
	host, _ := os.Hostname()
	cases := []struct {
		name  string
		now   time.Time
		opts  lease.Options
		live  bool
		found bool
	}{
		{"renewed just now", now, lease.Options{Alive: alive}, true, true},
		{"inside the grace", now.Add(grace - time.Minute), lease.Options{Alive: alive}, true, true},
		{"past the grace", now.Add(grace + time.Minute), lease.Options{Alive: alive}, false, true},
		{"the reader's grace is longer", now.Add(grace + time.Minute), lease.Options{Grace: 7 * time.Hour, Alive: alive}, true, true},
		{"its process is gone", now, lease.Options{Alive: func(int) bool { return false }}, false, true},
	}
	for _, c := range cases {
		states, err := lease.Judge(m, out, c.now, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		st, ok := states[w]
		if ok != c.found || st.Live != c.live {
			t.Errorf("%s: %+v found %v, want live %v", c.name, st, ok, c.live)
		}
		if ok && (st.Rank != 3 || st.PID != os.Getpid() || st.Host != host || st.IntervalMS != time.Hour.Milliseconds()) {
			t.Errorf("%s: lease content %+v", c.name, st.Info)
		}
	}
	if err := l.Fresh(); err != nil {
		t.Errorf("a lease renewed just now: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	states, err := lease.Judge(m, out, now, lease.Options{Alive: alive})
	if err != nil || len(states) != 0 {
		t.Fatalf("after Release: %+v, %v", states, err)
	}
}

// TestRenewalKeepsTheLease: the renewing goroutine moves the lease's
// modification time forward on its own, and a writer whose renewals fail
// learns that it must stop committing.
func TestRenewalKeepsTheLease(t *testing.T) {
	m := vfs.NewMem()
	w := writerID(0, layout.TrainingTag)
	interval := 20 * time.Millisecond
	l, err := lease.Acquire(vfs.NewDirs(m, out), out, w, 0, interval)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	p := layout.Join(out, layout.Lease(w))
	first, err := m.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := m.Stat(p)
		if err == nil && st.ModTime().After(first.ModTime()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease was not renewed in 10 s")
		}
		time.Sleep(interval)
	}

	// Renewals that fail (here the lease directory is gone): after
	// FreshIntervals intervals the writer must stop committing.
	m2 := vfs.NewMem()
	l2, err := lease.Acquire(vfs.NewDirs(m2, out), out, w, 0, interval)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	if err := l2.Fresh(); err != nil {
		t.Fatalf("fresh lease: %v", err)
	}
	if err := m2.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := m2.Remove(layout.Join(out, layout.LeaseDir)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := l2.Fresh()
		if errors.Is(err, lease.ErrExpired) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewals failing for 10 s, Fresh still says %v", err)
		}
		time.Sleep(interval)
	}
}

// TestAcquireFails: a lease that cannot be created is an error, and
// nothing is left behind.
func TestAcquireFails(t *testing.T) {
	m := vfs.NewMem()
	w := writerID(1, "")
	fsys := vfs.Inject(m, vfs.Rule{Op: vfs.OpCreate, Path: "." + w + ".lease.tmp", Err: syscall.ENOSPC})
	if _, err := lease.Acquire(vfs.NewDirs(fsys, out), out, w, 1, time.Second); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Acquire on a full disk: %v", err)
	}
	states, err := lease.Judge(m, out, time.Now(), lease.Options{Alive: alive})
	if err != nil || len(states) != 0 {
		t.Fatalf("leases after a failed Acquire: %+v, %v", states, err)
	}
}
