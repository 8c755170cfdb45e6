package reader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/layout"
	"github.com/hydroshard/hydroshard/manifest"
	"github.com/hydroshard/hydroshard/merge"
	"github.com/hydroshard/hydroshard/reader"
)

// compacted writes a merged study and compacts it into small files of
// small row groups (so files hold several scenarios, and a scenario may
// span row groups), keeping or removing the partitions. It returns the
// batches ReadTable gave from the partition files before compaction, by
// entity and scenario.
func compacted(t *testing.T, replace bool) (string, map[string]map[int]arrow.RecordBatch) {
	t.Helper()
	out := fresh(t)
	ctx := context.Background()
	ps, err := reader.OpenWith(out, reader.Options{VerifyChecksum: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int]arrow.RecordBatch{}
	for _, e := range ps.Entities() {
		want[e] = map[int]arrow.RecordBatch{}
		for _, sc := range ps.Scenarios() {
			rec, err := ps.ReadTable(ctx, e, sc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rec.Release)
			want[e][sc] = rec
		}
	}
	rep, err := merge.Compact(ctx, out, merge.CompactOptions{TargetSize: 16 << 10, RowGroupRows: 7, Replace: replace})
	if err != nil {
		t.Fatal(err)
	}
	spans, shares := false, false
	for _, f := range rep.Files {
		for g, rg := range f.RowGroups {
			shares = shares || rg.LastScenario > rg.FirstScenario
			spans = spans || g > 0 && rg.FirstScenario == f.RowGroups[g-1].LastScenario
		}
	}
	if !spans || !shares || len(rep.Files) <= len(want) {
		t.Fatalf("the compaction has %d files for %d tables, a scenario spanning row groups %v, a row group of several scenarios %v: the test would not exercise the reader", len(rep.Files), len(want), spans, shares)
	}
	return out, want
}

func sameBatch(t *testing.T, what string, want, got arrow.RecordBatch) {
	t.Helper()
	if !want.Schema().Equal(got.Schema()) {
		t.Fatalf("%s: schema %v, want %v", what, got.Schema(), want.Schema())
	}
	if !array.RecordEqual(want, got) {
		t.Fatalf("%s: the batch read differs from the partition file's (%d rows, want %d)", what, got.NumRows(), want.NumRows())
	}
}

// TestCompactedRoundTrip: a Study reading the compacted files (kept
// beside the partitions and asked for, or alone after --replace) returns
// exactly the partition files' batches from ReadTable and Stream, and
// the written rows from ReadScenario.
func TestCompactedRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, replace := range []bool{false, true} {
		out, want := compacted(t, replace)
		_, c := shared(t)
		for _, verify := range []bool{false, true} {
			t.Run(fmt.Sprintf("replace=%v/verify=%v", replace, verify), func(t *testing.T) {
				src := reader.SourceCompacted
				if replace {
					src = reader.SourceAuto // the partitions are gone: auto reads compacted
				}
				s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: verify, Source: src})
				if err != nil {
					t.Fatal(err)
				}
				if !s.Compacted() {
					t.Fatal("the Study does not read the compacted files")
				}
				for e, byScenario := range want {
					for sc, w := range byScenario {
						got, err := s.ReadTable(ctx, e, sc)
						if err != nil {
							t.Fatal(err)
						}
						sameBatch(t, fmt.Sprintf("ReadTable(%s, %d)", e, sc), w, got)
						got.Release()
					}
					next := 0
					err := s.Stream(ctx, e, func(sc int, rec arrow.RecordBatch) error {
						if sc != next {
							return fmt.Errorf("scenario %d streamed, want %d", sc, next)
						}
						next++
						sameBatch(t, fmt.Sprintf("Stream(%s) scenario %d", e, sc), byScenario[sc], rec)
						return nil
					})
					if err != nil || next != len(byScenario) {
						t.Fatalf("Stream(%s): %v after %d scenarios of %d", e, err, next, len(byScenario))
					}
				}
				for sid := range scenarios {
					written, err := synth.Generate(c, seed, sid)
					if err != nil {
						t.Fatal(err)
					}
					read, err := s.ReadScenario(ctx, sid)
					if err != nil {
						t.Fatal(err)
					}
					for i, tr := range written.Tables() {
						sameColumns(t, tr.Table.Entity, tr.Rows, read.Tables()[i].Rows)
					}
				}
			})
		}
		// SourceAuto beside kept partitions reads the partitions;
		// SourcePartitions after --replace is refused.
		s, err := reader.OpenWith(out, reader.Options{Source: reader.SourcePartitions})
		if replace {
			if err == nil {
				t.Error("SourcePartitions after --replace: no error")
			}
		} else if err != nil || s.Compacted() {
			t.Errorf("SourcePartitions: %v, compacted %v", err, s != nil && s.Compacted())
		}
		if !replace {
			if s, err := reader.Open(out); err != nil || s.Compacted() {
				t.Errorf("SourceAuto beside the partitions: %v, compacted %v", err, s != nil && s.Compacted())
			}
		}
	}
}

// TestCompactedStreamPartitions: Stream over the partition files gives
// what ReadTable gives.
func TestCompactedStreamPartitions(t *testing.T) {
	out, _ := shared(t)
	s, err := reader.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	err = s.Stream(ctx, "hydros", func(sc int, rec arrow.RecordBatch) error {
		w, err := s.ReadTable(ctx, "hydros", sc)
		if err != nil {
			return err
		}
		defer w.Release()
		sameBatch(t, fmt.Sprint("scenario ", sc), w, rec)
		n++
		return nil
	})
	if err != nil || n != scenarios {
		t.Fatalf("Stream: %v after %d scenarios", err, n)
	}
	if err := s.Stream(ctx, "no-such", nil); err == nil {
		t.Error("Stream of an unknown entity: no error")
	}
	stop := errors.New("stop")
	if err := s.Stream(ctx, "hydros", func(int, arrow.RecordBatch) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Stream returned %v, want fn's error", err)
	}
}

// TestCompactedRefused: the reader refuses compacted files that are not
// what their manifest says, and a compaction of another dataset.
func TestCompactedRefused(t *testing.T) {
	ctx := context.Background()
	readAll := func(s *reader.Study) error {
		for _, e := range s.Entities() {
			if err := s.Stream(ctx, e, func(int, arrow.RecordBatch) error { return nil }); err != nil {
				return err
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, out string, cm *manifest.CompactManifest)
		verify bool
		// what the error must be
		integrity bool
		sentinel  error
	}{
		{"truncated", func(t *testing.T, out string, cm *manifest.CompactManifest) {
			if err := os.Truncate(filepath.Join(out, cm.Files[1].Path), cm.Files[1].Bytes-1); err != nil {
				t.Fatal(err)
			}
		}, false, true, nil},
		// The leading magic, which no decoder reads: only the checksum
		// (VerifyChecksum) can tell.
		{"altered", func(t *testing.T, out string, cm *manifest.CompactManifest) {
			if err := flipByte(filepath.Join(out, cm.Files[1].Path), 0); err != nil {
				t.Fatal(err)
			}
		}, true, true, nil},
		{"row count", func(t *testing.T, out string, cm *manifest.CompactManifest) {
			cm.Files[1].RowGroups[0].Rows++
			cm.Files[1].Rows++
			writeCompactManifest(t, out, cm)
		}, false, true, nil},
		{"other dataset", func(t *testing.T, out string, cm *manifest.CompactManifest) {
			cm.DatasetXXH64 = "0123456789abcdef"
			writeCompactManifest(t, out, cm)
		}, false, false, reader.ErrIndex},
		{"forged path", func(t *testing.T, out string, cm *manifest.CompactManifest) {
			cm.Files[0].Path = "simulation/_manifest.json"
			writeCompactManifest(t, out, cm)
		}, false, false, reader.ErrIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := compacted(t, true)
			cm := readCompact(t, out)
			tc.damage(t, out, cm)
			s, err := reader.OpenWith(out, reader.Options{VerifyChecksum: tc.verify})
			if err == nil {
				err = readAll(s)
			}
			var ie *reader.IntegrityError
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.integrity && (!errors.As(err, &ie) || !layout.Under(ie.Path, layout.CompactDir)):
				t.Fatalf("err = %v, want an IntegrityError naming a compacted file", err)
			case tc.sentinel != nil && !errors.Is(err, tc.sentinel):
				t.Fatalf("err = %v, want %v", err, tc.sentinel)
			}
		})
	}
	// SourceCompacted without a compaction.
	out, _ := shared(t)
	if _, err := reader.OpenWith(out, reader.Options{Source: reader.SourceCompacted}); !errors.Is(err, reader.ErrNotCompacted) {
		t.Errorf("SourceCompacted without a compaction: %v", err)
	}
}

func readCompact(t *testing.T, out string) *manifest.CompactManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, layout.CompactManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := manifest.ReadCompactManifest(layout.CompactManifestFile, raw)
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func writeCompactManifest(t *testing.T, out string, cm *manifest.CompactManifest) {
	t.Helper()
	b, err := manifest.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, layout.CompactManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
