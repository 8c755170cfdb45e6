package hydroshard_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// readmePrelude declares what the README's Go snippets leave to the
// reader: the solver's own functions and the values they come from.
const readmePrelude = `package snippets

import (
	"context"
	"log"
	"os"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/hydroshard/hydroshard"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/policy"
	"github.com/hydroshard/hydroshard/rank"
	"github.com/hydroshard/hydroshard/reader"
	"github.com/hydroshard/hydroshard/shard"
)

var _ = reader.Open
var _ arrow.RecordBatch

var (
	ctx           context.Context
	out           string
	n             int
	cfg           manifest.TrainingConfig
	scenariosFrom string
	id            rank.Identity
	c             *manifest.Case
	x             []float64
)

func solve(scenario int) *shard.Scenario      { return nil }
func iterate(it int) manifest.IterationInfo    { return manifest.IterationInfo{} }
func dot(a, b []float64) float64               { return 0 }

var _ = log.Fatal
var _ = os.Exit
var _ = hydroshard.OpenRank
var _ = policy.Open
`

// TestReadmeSnippetsCompile type-checks every Go snippet of README.md
// against the packages as they are, each as the body of a function (with
// readmePrelude's declarations), so that an API change that leaves the
// README behind fails here, naming the README line. Variables a snippet
// declares and does not use are fine: a snippet shows calls, not a whole
// program.
func TestReadmeSnippetsCompile(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	// Export data of every package the prelude imports (and theirs), as
	// the go command builds it.
	cmd := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}",
		"context", "log", "os", ".", "./manifest", "./policy", "./rank", "./reader", "./shard")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	listing, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(listing))
	for sc.Scan() {
		if p, f, ok := strings.Cut(sc.Text(), "\t"); ok && f != "" {
			exports[p] = f
		}
	}
	lookup := func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	}

	var src strings.Builder
	src.WriteString(readmePrelude)
	type origin struct{ first, readmeLine int } // a snippet's first line in src, and in README.md
	var origins []origin
	re := regexp.MustCompile("(?s)```go\n(.*?)```")
	for i, m := range re.FindAllSubmatchIndex(readme, -1) {
		body := string(readme[m[2]:m[3]])
		fmt.Fprintf(&src, "\nfunc snippet%d() error {\n", i)
		origins = append(origins, origin{strings.Count(src.String(), "\n") + 1, bytes.Count(readme[:m[2]], []byte("\n")) + 1})
		src.WriteString(body)
		src.WriteString("return nil\n}\n")
	}
	if len(origins) == 0 {
		t.Fatal("README.md has no Go snippet")
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "snippets.go", src.String(), 0)
	if err != nil {
		t.Fatalf("the README's Go snippets do not parse: %v\n%s", err, src.String())
	}
	readmeLine := func(line int) int {
		o := origins[0]
		for _, x := range origins {
			if x.first <= line {
				o = x
			}
		}
		return o.readmeLine + line - o.first
	}
	var problems []string
	conf := types.Config{
		Importer: importer.ForCompiler(fset, "gc", lookup),
		Error: func(err error) {
			te, ok := err.(types.Error)
			if ok && (strings.Contains(te.Msg, "declared and not used") || strings.Contains(te.Msg, "imported and not used")) {
				return
			}
			if ok {
				problems = append(problems, fmt.Sprintf("README.md:%d: %s", readmeLine(fset.Position(te.Pos).Line), te.Msg))
				return
			}
			problems = append(problems, err.Error())
		},
	}
	conf.Check("snippets", fset, []*ast.File{f}, nil)
	if len(problems) > 0 {
		t.Fatalf("the README's Go snippets do not compile against the packages:\n  %s", strings.Join(problems, "\n  "))
	}
}
