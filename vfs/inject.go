package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Op names a kind of file-system operation, for Rule.
type Op int

// The operations an Injector can fail. The zero Op is invalid, so a Rule
// that forgets its Op is refused rather than matching creates.
const (
	OpCreate          Op = iota + 1 // FS.Create
	OpOpen                          // FS.Open
	OpWrite                         // File.Write
	OpSync                          // File.Sync
	OpClose                         // File.Close
	OpRemove                        // FS.Remove
	OpRename                        // FS.Rename (replacing)
	OpRenameNoReplace               // FS.RenameNoReplace
	OpMkdir                         // FS.Mkdir
	OpReadDir                       // FS.ReadDir
	OpStat                          // FS.Stat, FS.Lstat and File.Stat
	OpSyncDir                       // FS.SyncDir
	OpRead                          // File.Read
)

var opNames = [...]string{
	OpCreate:          "create",
	OpOpen:            "open",
	OpWrite:           "write",
	OpSync:            "sync",
	OpClose:           "close",
	OpRemove:          "remove",
	OpRename:          "rename",
	OpRenameNoReplace: "rename-noreplace",
	OpMkdir:           "mkdir",
	OpReadDir:         "read-dir",
	OpStat:            "stat",
	OpSyncDir:         "sync-dir",
	OpRead:            "read",
}

func (op Op) valid() bool { return op > 0 && int(op) < len(opNames) }

// String returns the name ParseOp accepts: "create", "write", "sync",
// "rename", "rename-noreplace", "sync-dir", ...
func (op Op) String() string {
	if !op.valid() {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return opNames[op]
}

// ParseOp returns the Op that String names.
func ParseOp(s string) (Op, error) {
	for op := OpCreate; op.valid(); op++ {
		if opNames[op] == s {
			return op, nil
		}
	}
	return 0, fmt.Errorf("unknown operation %q", s)
}

// ErrInjected is the default error of a Rule, and every error an Injector
// makes up matches it, so a test can tell an injected fault from a real
// one.
var ErrInjected = errors.New("vfs: injected fault")

// InjectedError is the error of an operation a Rule failed. It matches
// both the rule's Err and ErrInjected.
type InjectedError struct {
	Op   Op
	Path string
	Err  error
}

// Error reads like "injected fault: sync /x/y: input/output error".
func (e *InjectedError) Error() string {
	s := "injected fault: " + e.Op.String() + " " + e.Path
	if e.Err != ErrInjected {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the rule's error and ErrInjected.
func (e *InjectedError) Unwrap() []error {
	if e.Err == ErrInjected {
		return []error{ErrInjected}
	}
	return []error{e.Err, ErrInjected}
}

// Rule says which operations of an Injector fail, and how.
type Rule struct {
	// Op is the kind of operation.
	Op Op
	// Path is a path.Match pattern, matched against every trailing run of
	// slash-separated elements of the operation's path, and the whole
	// path: "_shards/tmp/*" matches /x/out/_shards/tmp/a.tmp, "*.jsonl"
	// any journal, "" and "*" every path. A rename is matched by its
	// target (new) path, a File method by the path the file was opened
	// with.
	Path string
	// Nth is the 1-based count, among the operations of this Injector
	// that match Op and Path, of the one that fails; 0 fails every match.
	Nth int
	// Err is the error the operation returns, wrapped in an
	// *InjectedError; nil means ErrInjected.
	Err error
	// Short makes a failing Write write about half of its bytes before
	// returning the error: a short write, as on a full disk.
	Short bool
	// Kill makes the process send itself SIGKILL instead of returning:
	// a real crash in which no deferred code runs, for tests that run the
	// writer in a child process.
	Kill bool
	// Exhaust makes the process allocate (and touch) memory until the Go
	// runtime dies of "fatal error: out of memory": for tests, under a
	// real address-space limit, of how a program reports running out of
	// memory once every input is bounded and nothing else can make it.
	Exhaust bool
}

// validRule reports what is wrong with r, if anything.
func validRule(r Rule) error {
	if !r.Op.valid() {
		return fmt.Errorf("invalid operation %v", r.Op)
	}
	if _, err := path.Match(r.Path, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", r.Path, err)
	}
	if r.Nth < 0 {
		return fmt.Errorf("negative Nth %d", r.Nth)
	}
	return nil
}

// Injector is an FS that passes every operation to another FS except
// those its rules fail. Its counts are its own (there is no global
// state), so tests with their own Injectors can run in parallel. It is
// safe for concurrent use.
type Injector struct {
	fsys  FS
	rules []Rule

	mu    sync.Mutex
	hits  []int
	fired []bool
}

// Inject returns an Injector that fails the operations on fsys that rules
// describe. When several rules fail one operation, the first one's error
// is returned (every matching rule counts the hit). It panics on an
// invalid rule (an unknown Op, a malformed pattern, a negative Nth): that
// is a bug in the test.
func Inject(fsys FS, rules ...Rule) *Injector {
	for i, r := range rules {
		if err := validRule(r); err != nil {
			panic(fmt.Sprintf("vfs.Inject: rule %d: %v", i, err))
		}
	}
	return &Injector{fsys: fsys, rules: rules, hits: make([]int, len(rules)), fired: make([]bool, len(rules))}
}

// Hits returns how many operations have matched rule r (its index in
// Inject's arguments) so far.
func (in *Injector) Hits(r int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.hits[r]
}

// Fired reports whether rule r has failed an operation.
func (in *Injector) Fired(r int) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fired[r]
}

// matchPath reports whether pattern matches name or one of its trailing
// runs of elements.
func matchPath(pattern, name string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	p := filepath.ToSlash(filepath.Clean(name))
	if ok, _ := path.Match(pattern, p); ok {
		return true
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if ok, _ := path.Match(pattern, p[i+1:]); ok {
				return true
			}
		}
	}
	return false
}

// hit counts op on name against the rules and returns the rule that fails
// it, with its error, or nil.
func (in *Injector) hit(op Op, name string) (*Rule, error) {
	in.mu.Lock()
	var fire *Rule
	for i := range in.rules {
		r := &in.rules[i]
		if r.Op != op || !matchPath(r.Path, name) {
			continue
		}
		in.hits[i]++
		if fire == nil && (r.Nth == 0 || in.hits[i] == r.Nth) {
			fire = r
			in.fired[i] = true
		}
	}
	in.mu.Unlock()
	if fire == nil {
		return nil, nil
	}
	if fire.Kill {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		for {
			time.Sleep(time.Hour) // the signal is fatal; never return
		}
	}
	if fire.Exhaust {
		exhaust()
	}
	err := fire.Err
	if err == nil {
		err = ErrInjected
	}
	return fire, &InjectedError{Op: op, Path: name, Err: err}
}

// Create implements FS.
func (in *Injector) Create(name string) (File, error) {
	if _, err := in.hit(OpCreate, name); err != nil {
		return nil, err
	}
	f, err := in.fsys.Create(name)
	if err != nil {
		return nil, err
	}
	return &injFile{in: in, f: f, name: name}, nil
}

// Open implements FS.
func (in *Injector) Open(name string) (File, error) {
	if _, err := in.hit(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := in.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	return &injFile{in: in, f: f, name: name}, nil
}

// Remove implements FS.
func (in *Injector) Remove(name string) error {
	if _, err := in.hit(OpRemove, name); err != nil {
		return err
	}
	return in.fsys.Remove(name)
}

// Rename implements FS; rules match newname.
func (in *Injector) Rename(oldname, newname string) error {
	if _, err := in.hit(OpRename, newname); err != nil {
		return err
	}
	return in.fsys.Rename(oldname, newname)
}

// RenameNoReplace implements FS; rules match newname.
func (in *Injector) RenameNoReplace(oldname, newname string) error {
	if _, err := in.hit(OpRenameNoReplace, newname); err != nil {
		return err
	}
	return in.fsys.RenameNoReplace(oldname, newname)
}

// Mkdir implements FS.
func (in *Injector) Mkdir(name string) error {
	if _, err := in.hit(OpMkdir, name); err != nil {
		return err
	}
	return in.fsys.Mkdir(name)
}

// ReadDir implements FS.
func (in *Injector) ReadDir(name string) ([]fs.DirEntry, error) {
	if _, err := in.hit(OpReadDir, name); err != nil {
		return nil, err
	}
	return in.fsys.ReadDir(name)
}

// Stat implements FS.
func (in *Injector) Stat(name string) (fs.FileInfo, error) {
	if _, err := in.hit(OpStat, name); err != nil {
		return nil, err
	}
	return in.fsys.Stat(name)
}

// Lstat implements FS; rules for OpStat apply.
func (in *Injector) Lstat(name string) (fs.FileInfo, error) {
	if _, err := in.hit(OpStat, name); err != nil {
		return nil, err
	}
	return in.fsys.Lstat(name)
}

// SyncDir implements FS.
func (in *Injector) SyncDir(name string) error {
	if _, err := in.hit(OpSyncDir, name); err != nil {
		return err
	}
	return in.fsys.SyncDir(name)
}

// injFile is a File of an Injector.
type injFile struct {
	in   *Injector
	f    File
	name string
}

func (f *injFile) Read(p []byte) (int, error) {
	if _, err := f.in.hit(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.f.Read(p)
}

// ReadAt reads at an offset when the underlying file can (OpenReaderAt);
// OpRead rules fail it as they fail Read.
func (f *injFile) ReadAt(p []byte, off int64) (int, error) {
	if _, err := f.in.hit(OpRead, f.name); err != nil {
		return 0, err
	}
	ra, ok := f.f.(io.ReaderAt)
	if !ok {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.ErrUnsupported}
	}
	return ra.ReadAt(p, off)
}

// Write writes nothing when a rule fails it, or, with Rule.Short, the
// first half of p.
func (f *injFile) Write(p []byte) (int, error) {
	r, err := f.in.hit(OpWrite, f.name)
	if err == nil {
		return f.f.Write(p)
	}
	if r.Short && len(p) > 0 {
		n, werr := f.f.Write(p[:len(p)/2])
		if werr != nil {
			return n, werr
		}
		return n, err
	}
	return 0, err
}

// Sync fails without syncing when a rule says so: the bytes are then not
// known to be durable, which is the point.
func (f *injFile) Sync() error {
	if _, err := f.in.hit(OpSync, f.name); err != nil {
		return err
	}
	return f.f.Sync()
}

// Close closes the underlying file even when a rule fails it, as close(2)
// releases the descriptor whatever it reports, so fault tests leak no
// descriptors.
func (f *injFile) Close() error {
	_, err := f.in.hit(OpClose, f.name)
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *injFile) Stat() (fs.FileInfo, error) {
	if _, err := f.in.hit(OpStat, f.name); err != nil {
		return nil, err
	}
	return f.f.Stat()
}

// hog keeps exhaust's allocations reachable.
var hog [][]byte

// exhaust allocates and touches 64 MiB blocks until the runtime fails.
func exhaust() {
	for {
		b := make([]byte, 64<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hog = append(hog, b)
	}
}
