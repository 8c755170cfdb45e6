package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSizeLabel(t *testing.T) {
	for n, want := range map[int]string{20_000: "20k", 60_000: "60k", 100_000: "100k", 300_000: "300k", 1_000_000: "1m", 2_000_000: "2m", 1500: "1500", 1_500_000: "1500k"} {
		if got := mergeSizeLabel(n); got != want {
			t.Errorf("mergeSizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestMergeScaleSection runs the section at two small sizes and checks its
// figures, JSON keys and targets (not their values: a speed is what the
// command reports, not what it tests).
func TestMergeScaleSection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	var progress bytes.Buffer
	r, err := measureMergeScale(context.Background(), []int{2000, 6000}, 16, root, scratch, &progress)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.points) != 2 || r.points[0].files != 2000 || r.points[1].files != 6000 {
		t.Fatalf("points %+v", r.points)
	}
	for _, p := range r.points {
		if p.first.wall <= 0 || p.remerge.wall <= 0 || p.first.peakHeap == 0 || p.bytes <= 0 || p.first.written == 0 || p.remerge.written != 0 {
			t.Errorf("%d files: %+v", p.files, p)
		}
	}
	// Every tree is removed once measured.
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch holds %d entries after the section, want none", len(left))
	}
	m := map[string]any{}
	r.doc(m)
	for _, l := range []string{"2k", "6k"} {
		for _, k := range []string{"merge_%s_s", "remerge_%s_s", "merge_us_per_file_%s", "remerge_us_per_file_%s", "merge_cpu_%s_s", "merge_heap_mb_%s", "merge_gen_%s_s"} {
			key := strings.Replace(k, "%s", l, 1)
			if v, ok := m[key].(float64); !ok || v <= 0 {
				t.Errorf("%s = %v, want a positive number", key, m[key])
			}
		}
	}
	if v, ok := m["merge_per_file_ratio"].(float64); !ok || v <= 0 {
		t.Errorf("merge_per_file_ratio = %v", m["merge_per_file_ratio"])
	}
	var keys []string
	for _, tg := range r.targets() {
		keys = append(keys, tg.key)
	}
	if got := strings.Join(keys, ","); got != "merge_per_file_ratio,merge_heap_mb_6k" {
		t.Errorf("targets %s, want merge_per_file_ratio,merge_heap_mb_6k (no 1M target below a million files)", got)
	}
	var out bytes.Buffer
	r.print(&out)
	if !strings.Contains(out.String(), "journal merge scaling") || !strings.Contains(out.String(), "6,000") {
		t.Errorf("print:\n%s", out.String())
	}
}

// TestMergeScaleRun runs the section at its real sizes when
// HYDROSHARD_MERGESCALE is "quick" (20k and 60k files, seconds) or "full"
// (100k, 300k and 1M files: several minutes, about 8 GB of scratch space
// at 1M), or at the sizes it lists (100000,300000), printing its table and JSON keys: the figures for the README
// until shardbench runs the section itself. HYDROSHARD_MERGESCALE_DIR
// sets the scratch directory (default: the test's temporary directory).
func TestMergeScaleRun(t *testing.T) {
	mode := os.Getenv("HYDROSHARD_MERGESCALE")
	sizes, journals := mergeScaleShape(mode == "quick")
	switch mode {
	case "quick", "full":
	case "":
		t.Skip("set HYDROSHARD_MERGESCALE=quick, full or a list of sizes (100000,300000) to run the merge scaling section")
	default:
		sizes = nil
		for _, f := range strings.Split(mode, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("HYDROSHARD_MERGESCALE=%s: %v", mode, err)
			}
			sizes = append(sizes, n)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	scratch := os.Getenv("HYDROSHARD_MERGESCALE_DIR")
	if scratch == "" {
		scratch = t.TempDir()
	}
	r, err := measureMergeScale(context.Background(), sizes, journals, root, scratch, &testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(scratch, "/dev/shm/") {
		r.fs = "tmpfs"
	}
	var out bytes.Buffer
	r.print(&out)
	for _, tg := range r.targets() {
		fmt.Fprintf(&out, "   %s: %.2f, target %s: %s\n", tg.name, tg.value, tg.cond(), passWord(tg.pass()))
	}
	m := map[string]any{}
	r.doc(m)
	b, _ := json.MarshalIndent(m, "", "  ")
	t.Logf("\n%s\n%s", out.String(), b)
}

// testWriter logs each write (a progress line) through t.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
