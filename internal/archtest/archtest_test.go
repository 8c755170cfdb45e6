package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Package is what the rules read of one package of "go list -json".
type Package struct {
	ImportPath   string
	Dir          string
	Imports      []string // of the non-test Go files only
	TestImports  []string
	XTestImports []string
}

// onlyRule limits the module packages a package may import to allowed.
type onlyRule struct {
	pkg     string
	allowed []string
}

// The rules, with package paths relative to the module.
var (
	onlyRules = []onlyRule{
		{"layout", nil},
		{"vfs", nil},
		{"manifest", []string{"layout"}},
		{"journal", []string{"manifest", "layout", "vfs"}},
		// The analysts' reader sits beside the merge: it reads what the
		// merge vouched for, and never writes.
		{"reader", []string{"layout", "manifest", "shard", "vfs"}},
	}
	// noRankNoCmd are the packages that reach neither the rank writer
	// nor a command, directly or through another package of the module.
	noRankNoCmd = []string{"merge", "policy", "reader"}
	// gone are packages nothing of the module may import (tests
	// included): they no longer exist.
	gone = []string{"internal/faults"}
	// noFileIO is the package whose non-test files make no file-system
	// call of package os: its bytes reach the disk through vfs.
	noFileIO = "shard"
)

// fileCalls are the functions of package os that touch the file system.
var fileCalls = map[string]bool{
	"Create": true, "CreateTemp": true, "Open": true, "OpenFile": true, "OpenRoot": true,
	"WriteFile": true, "ReadFile": true, "Rename": true, "Remove": true, "RemoveAll": true,
	"Mkdir": true, "MkdirAll": true, "MkdirTemp": true, "ReadDir": true, "Stat": true,
	"Lstat": true, "Link": true, "Symlink": true, "Truncate": true,
}

// checkImports returns a message for every breach of the import rules in
// pkgs, the packages of module mod.
func checkImports(mod string, pkgs []Package) []string {
	rel := func(p string) (string, bool) {
		if p == mod {
			return ".", true
		}
		r, ok := strings.CutPrefix(p, mod+"/")
		return r, ok
	}
	imports := map[string][]string{} // relative path -> module imports (relative)
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		var mine []string
		for _, i := range p.Imports {
			if ri, ok := rel(i); ok {
				mine = append(mine, ri)
			}
		}
		imports[r] = mine
	}
	var bad []string
	for _, r := range onlyRules {
		if _, ok := imports[r.pkg]; !ok {
			bad = append(bad, fmt.Sprintf("%s: a rule names it, but go list does not list it", r.pkg))
			continue
		}
		for _, i := range imports[r.pkg] {
			if !slices.Contains(r.allowed, i) {
				allowed := "no package of the module"
				if len(r.allowed) > 0 {
					allowed = "only " + strings.Join(r.allowed, ", ")
				}
				bad = append(bad, fmt.Sprintf("%s imports %s: it may import %s", r.pkg, i, allowed))
			}
		}
	}
	forbidden := func(i string) bool { return i == "rank" || under(i, "rank") || under(i, "cmd") }
	for _, p := range noRankNoCmd {
		if _, ok := imports[p]; !ok {
			bad = append(bad, fmt.Sprintf("%s: a rule names it, but go list does not list it", p))
			continue
		}
		for _, chain := range reach(imports, p, forbidden) {
			bad = append(bad, fmt.Sprintf("%s imports %s (%s): it may import neither rank nor a command", p, chain[len(chain)-1], strings.Join(chain, " -> ")))
		}
	}
	for _, p := range sortedKeys(imports) {
		// The commands and the module's root package (hydroshard.OpenRank
		// and hydroshard.Merge, the two doors of the API) wire rank and
		// merge together; no other package does.
		if p == "cmd" || under(p, "cmd") || p == "." {
			continue
		}
		if slices.Contains(imports[p], "rank") && slices.Contains(imports[p], "merge") {
			bad = append(bad, fmt.Sprintf("%s imports both rank and merge: only a command (cmd/...) or the root package may wire the two together", p))
		}
	}
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, i := range list {
				if ri, ok := rel(i); ok && slices.Contains(gone, ri) {
					bad = append(bad, fmt.Sprintf("%s imports %s, which no longer exists", r, ri))
				}
			}
		}
	}
	if _, ok := imports[noFileIO]; !ok {
		bad = append(bad, fmt.Sprintf("%s: a rule names it, but go list does not list it", noFileIO))
	}
	return bad
}

func under(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// reach returns, for every package matching target that from reaches
// through the import graph, one shortest import chain from "from" to it.
func reach(imports map[string][]string, from string, target func(string) bool) [][]string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	var found [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, i := range imports[p] {
			if _, seen := prev[i]; seen {
				continue
			}
			prev[i] = p
			if target(i) {
				chain := []string{i}
				for q := p; q != ""; q = prev[q] {
					chain = append([]string{q}, chain...)
				}
				found = append(found, chain)
				continue // what a forbidden package imports is its own business
			}
			queue = append(queue, i)
		}
	}
	return found
}

// checkNoFileIO returns a message for every call of a file-system function
// of package os (fileCalls) in the non-test Go files of dir; fsys names
// messages name files as "<pkg>/<file>:<line>".
func checkNoFileIO(pkg, dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	sort.Strings(names)
	var bad []string
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		where := func(pos token.Pos) string {
			return fmt.Sprintf("%s/%s:%d", pkg, filepath.Base(name), fset.Position(pos).Line)
		}
		osName := ""
		for _, spec := range f.Imports {
			if p, _ := strconv.Unquote(spec.Path.Value); p != "os" {
				continue
			}
			osName = "os"
			if spec.Name != nil {
				osName = spec.Name.Name
			}
			if osName == "." {
				bad = append(bad, fmt.Sprintf("%s: %s dot-imports os", where(spec.Pos()), pkg))
			}
		}
		if osName == "" || osName == "_" || osName == "." {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == osName && fileCalls[sel.Sel.Name] {
				bad = append(bad, fmt.Sprintf("%s: %s uses os.%s: it does no file I/O of its own (use vfs)", where(sel.Pos()), pkg, sel.Sel.Name))
			}
			return true
		})
	}
	return bad, nil
}

// goList returns the module's path and the packages "go list -e -json
// ./..." reports, run at the module's root.
func goList(t *testing.T) (string, []Package) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}\n{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v%s", err, stderr(err))
	}
	mod, root, ok := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if !ok || mod == "" || root == "" {
		t.Fatalf("go list -m: %q, want the module's path and directory", out)
	}
	cmd := exec.Command("go", "list", "-e", "-json", "./...")
	cmd.Dir = root
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list -e -json ./...: %v%s", err, stderr(err))
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list -json: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list -json ./... listed no package")
	}
	return mod, pkgs
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return "\n" + string(ee.Stderr)
	}
	return ""
}

func TestImportRules(t *testing.T) {
	mod, pkgs := goList(t)
	for _, msg := range checkImports(mod, pkgs) {
		t.Error(msg)
	}
}

func TestShardDoesNoFileIO(t *testing.T) {
	mod, pkgs := goList(t)
	i := slices.IndexFunc(pkgs, func(p Package) bool { return p.ImportPath == mod+"/"+noFileIO })
	if i < 0 {
		t.Fatalf("go list does not list %s/%s", mod, noFileIO)
	}
	bad, err := checkNoFileIO(noFileIO, pkgs[i].Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range bad {
		t.Error(msg)
	}
}

// TestCheckImports shows the checker failing: a clean import graph passes,
// and each breach of a rule, planted in a copy of it, is named with the
// package and the forbidden import.
func TestCheckImports(t *testing.T) {
	const mod = "example.com/m"
	good := map[string][]string{
		"layout":           {"errors", "path"},
		"vfs":              {"os"},
		"manifest":         {"layout"},
		"journal":          {"manifest", "layout", "vfs"},
		"shard":            {"layout"},
		"policy":           {"layout", "vfs", "policy/internal/fb"},
		"merge":            {"journal", "layout", "manifest", "policy", "shard", "vfs"},
		"rank":             {"journal", "layout", "manifest", "policy", "shard", "vfs"},
		"reader":           {"layout", "manifest", "shard", "vfs"},
		"cmd/merge-shards": {"merge", "policy", "vfs"},
		"cmd/simrank":      {"rank", "merge", "manifest"},
		".":                {"rank", "merge", "manifest", "vfs"},
	}
	tests := []struct {
		name string
		edit func(map[string][]string)
		want []string // every breach reported, by a substring
	}{
		{"clean", func(map[string][]string) {}, nil},
		{"layout imports vfs", add("layout", "vfs"), []string{"layout imports vfs: it may import no package of the module"}},
		{"vfs imports layout", add("vfs", "layout"), []string{"vfs imports layout"}},
		{"manifest imports vfs", add("manifest", "vfs"), []string{"manifest imports vfs: it may import only layout"}},
		{"journal imports shard", add("journal", "shard"), []string{"journal imports shard: it may import only manifest, layout, vfs"}},
		{"merge imports rank", add("merge", "rank"), []string{"merge imports rank (merge -> rank): it may import neither rank nor a command"}},
		{"policy imports a command", add("policy", "cmd/simrank"), []string{"policy imports cmd/simrank (policy -> cmd/simrank)", "merge imports cmd/simrank (merge -> policy -> cmd/simrank)"}},
		{"merge reaches rank through shard", add("shard", "rank"), []string{"merge imports rank (merge -> shard -> rank)", "reader imports rank (reader -> shard -> rank)"}},
		{"policy reaches rank under it", add("policy/internal/fb", "rank/x"), []string{"policy imports rank/x (policy -> policy/internal/fb -> rank/x)", "merge imports rank/x (merge -> policy -> policy/internal/fb -> rank/x)"}},
		{"a library wires rank and merge", add("internal/synth", "rank", "merge"), []string{"internal/synth imports both rank and merge"}},
		{"a package under the root wires rank and merge", add("hydro", "rank", "merge"), []string{"hydro imports both rank and merge"}},
		{"merge reaches rank through the root package", add("merge", "."), []string{"merge imports rank (merge -> . -> rank)"}},
		{"reader imports merge", add("reader", "merge"), []string{"reader imports merge: it may import only layout, manifest, shard, vfs"}},
		{"a test imports faults", func(m map[string][]string) { m["test:vfs"] = []string{"internal/faults"} }, []string{"vfs imports internal/faults, which no longer exists"}},
		{"faults imported", add("shard", "internal/faults"), []string{"shard imports internal/faults, which no longer exists"}},
		{"layout is gone", func(m map[string][]string) { delete(m, "layout") }, []string{"layout: a rule names it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string][]string{}
			for k, v := range good {
				m[k] = slices.Clone(v)
			}
			tt.edit(m)
			got := checkImports(mod, fake(mod, m))
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
					t.Errorf("checkImports does not report %q; it reports %q", w, got)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("checkImports reports %d breaches, want %d: %q", len(got), len(tt.want), got)
			}
		})
	}
}

// add returns an edit that adds imports to pkg.
func add(pkg string, imports ...string) func(map[string][]string) {
	return func(m map[string][]string) { m[pkg] = append(m[pkg], imports...) }
}

// fake turns a map of relative package paths to imports into go list's
// packages of mod (standard-library imports stay as they are); a key
// "test:<pkg>" gives pkg's test imports.
func fake(mod string, m map[string][]string) []Package {
	abs := func(p string) string {
		if p == "." {
			return mod
		}
		if slices.Contains([]string{"errors", "os", "path"}, p) {
			return p
		}
		return mod + "/" + p
	}
	byPath := map[string]*Package{}
	var order []string
	get := func(p string) *Package {
		if byPath[p] == nil {
			byPath[p] = &Package{ImportPath: abs(p)}
			order = append(order, p)
		}
		return byPath[p]
	}
	for _, k := range sortedKeys(m) {
		if p, ok := strings.CutPrefix(k, "test:"); ok {
			for _, i := range m[k] {
				get(p).TestImports = append(get(p).TestImports, abs(i))
			}
			continue
		}
		pkg := get(k)
		for _, i := range m[k] {
			pkg.Imports = append(pkg.Imports, abs(i))
		}
	}
	pkgs := make([]Package, 0, len(order))
	for _, p := range order {
		pkgs = append(pkgs, *byPath[p])
	}
	return pkgs
}

// TestCheckNoFileIO shows the shard check failing on planted os calls,
// under the os name or an alias, and passing on os uses that touch no
// file, on an Open that is not os's, and on test files.
func TestCheckNoFileIO(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"clean.go": `package p

import "os"

func f() { _ = os.Getpid(); _ = os.ErrNotExist; var _ *os.File }
`,
		"writes.go": `package p

import "os"

func g() {
	os.WriteFile("x", nil, 0o644)
	_, _ = os.Stat("x")
	_ = os.MkdirAll("d", 0o755)
}
`,
		"alias.go": `package p

import xos "os"

func h() { _, _ = xos.Open("x") }
`,
		"noos.go": `package p

import "strings"

type fs struct{}

func (fs) Open(string) {}

func k() { var os fs; os.Open("x"); _ = strings.ToLower("x") }
`,
		"writes_test.go": `package p

import "os"

func TestX() { os.Remove("x") }
`,
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := checkNoFileIO("p", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"p/alias.go:5: p uses os.Open",
		"p/writes.go:6: p uses os.WriteFile",
		"p/writes.go:7: p uses os.Stat",
		"p/writes.go:8: p uses os.MkdirAll",
	}
	if len(got) != len(want) {
		t.Fatalf("checkNoFileIO = %q, want %d breaches %q", got, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("checkNoFileIO[%d] = %q, want %q...", i, got[i], want[i])
		}
	}
}
