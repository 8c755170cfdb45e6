package report_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/hydroshard/hydroshard/report"
)

// Build a report of an output directory and render it. The directory here
// is empty, so every section says why it has no data; on a study, the
// same two calls give the charts (merge-shards report --html FILE OUT is
// this, written atomically).
func Example() {
	out, err := os.MkdirTemp("", "report-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)

	r, err := report.Build(context.Background(), out, report.Options{})
	if err != nil {
		log.Fatal(err) // only when out cannot be read at all
	}
	fmt.Println(r.Status)
	fmt.Println(r.Banner)
	fmt.Println(r.Convergence.Reason != "", r.Costs.Reason != "")

	var page bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		log.Fatal(err)
	}
	first, _ := bufio.NewReader(&page).ReadString('\n')
	fmt.Print(first)
	// Output:
	// empty
	// EMPTY: no hydroshard outputs in this directory
	// true true
	// <!DOCTYPE html>
}
