package layout_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
)

// The fuzzers below hold the parsers to three promises, for any input:
// parsing never panics; a refusal wraps layout.ErrName; and a name that
// parses is canonical (making it again from its parts gives back exactly
// the input) and passes layout.Check.

func FuzzParseDataFile(f *testing.F) {
	for _, pad := range []int{0, 4, layout.MaxPad} {
		for _, entity := range []string{"hydros", "violations/generic", "a-b/C_9"} {
			for _, s := range []int{0, 7, 1234, 2147483647} {
				f.Add(layout.DataFile(entity, pad, s), uint8(pad))
			}
		}
	}
	f.Add("simulation/hydros/scenario_id=01/data.parquet", uint8(0))
	f.Add("simulation/hydros/scenario_id=7/data.parquet", uint8(4))
	f.Add("simulation/../hydros/scenario_id=1/data.parquet", uint8(0))
	f.Fuzz(func(t *testing.T, rel string, p uint8) {
		pad := int(p) % (layout.MaxPad + 1)
		entity, scenario, err := layout.ParseDataFile(rel, pad)
		if err != nil {
			if !errors.Is(err, layout.ErrName) {
				t.Fatalf("ParseDataFile(%q, %d) = %v, not wrapping ErrName", rel, pad, err)
			}
			return
		}
		if again := layout.DataFile(entity, pad, scenario); again != rel {
			t.Fatalf("ParseDataFile(%q, %d) = %q, %d; DataFile gives %q", rel, pad, entity, scenario, again)
		}
		if err := layout.Check(rel); err != nil {
			t.Fatalf("ParseDataFile accepts %q, Check refuses it: %v", rel, err)
		}
		if strings.HasSuffix(rel, layout.TempSuffix) {
			t.Fatalf("ParseDataFile accepts a temp name %q", rel)
		}
	})
}

func writerSeeds() []string {
	var seeds []string
	for _, job := range []string{"", "123_4", "a/b c", "日本", strings.Repeat("x", 70)} {
		for _, tag := range []string{"", layout.TrainingTag} {
			for _, rank := range []int{0, 3, 123456} {
				seeds = append(seeds, layout.NewWriterID(job, rank, rank%5, tag, tokenBytes).String())
			}
		}
	}
	return append(seeds,
		"job-123.rank-00003.attempt-1.0123456789AB",
		"job-123.rank-3.attempt-1.0123456789ab",
		"job-123.rank-00003.attempt-01.0123456789ab",
		"job-123.rank-00003.attempt-1.train.0123456789ab",
	)
}

func FuzzParseWriterID(f *testing.F) {
	for _, s := range writerSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := layout.ParseWriterID(s)
		if err != nil {
			if !errors.Is(err, layout.ErrName) {
				t.Fatalf("ParseWriterID(%q) = %v, not wrapping ErrName", s, err)
			}
			return
		}
		if again := w.String(); again != s {
			t.Fatalf("ParseWriterID(%q) = %+v; String gives %q", s, w, again)
		}
		if err := layout.Check(s); err != nil || strings.Contains(s, "/") {
			t.Fatalf("ParseWriterID accepts %q, not a single clean element: %v", s, err)
		}
		if w.Tag != "" && w.Tag != layout.TrainingTag {
			t.Fatalf("ParseWriterID(%q): tag %q", s, w.Tag)
		}
		// Its journal and temp names are ours too.
		if j, err := layout.ParseJournalName(s + layout.JournalSuffix); err != nil || j != w {
			t.Fatalf("ParseJournalName(%q) = %+v, %v, want %+v", s+layout.JournalSuffix, j, err, w)
		}
		if err := layout.Check(layout.Journal(s)); err != nil {
			t.Fatalf("Check(Journal(%q)) = %v", s, err)
		}
		if err := layout.CheckTemp(layout.SimTemp(s, 1, "violations/generic")); err != nil {
			t.Fatalf("CheckTemp(SimTemp(%q)) = %v", s, err)
		}
	})
}

// FuzzWriterIDMake goes the other way: whatever job id the launcher gives,
// the writer id made from it parses back to itself.
func FuzzWriterIDMake(f *testing.F) {
	for _, job := range []string{"", "123_4", "a/b c", "日本", "\x00", strings.Repeat("x", 70)} {
		f.Add(job, uint32(3), uint32(1), false)
		f.Add(job, uint32(123456), uint32(0), true)
	}
	f.Fuzz(func(t *testing.T, job string, rank, attempt uint32, training bool) {
		// Ranks and attempts have at most nine digits in a writer id.
		rank, attempt = rank%1e9, attempt%1e9
		tag := ""
		if training {
			tag = layout.TrainingTag
		}
		w := layout.NewWriterID(job, int(rank), int(attempt), tag, tokenBytes)
		got, err := layout.ParseWriterID(w.String())
		if err != nil || got != w {
			t.Fatalf("NewWriterID(%q, %d, %d, %q) = %q; ParseWriterID gives %+v, %v", job, rank, attempt, tag, w, got, err)
		}
	})
}

func FuzzParseFragment(f *testing.F) {
	for i, w := range writerSeeds()[:12] {
		for _, kind := range layout.StageKinds {
			f.Add(layout.Fragment(i*1000, w, kind, i))
		}
	}
	f.Add("_shards/policy/iter-1/job-123.rank-00003.attempt-1.0123456789ab/cuts_stage_001.bin")
	f.Add("policy/iter-000001/job-123.rank-00003.attempt-1.0123456789ab/cuts_stage_001.bin")
	f.Fuzz(func(t *testing.T, rel string) {
		iteration, w, kind, stage, err := layout.ParseFragment(rel)
		if err != nil {
			if !errors.Is(err, layout.ErrName) {
				t.Fatalf("ParseFragment(%q) = %v, not wrapping ErrName", rel, err)
			}
			return
		}
		if again := layout.Fragment(iteration, w.String(), kind, stage); again != rel {
			t.Fatalf("ParseFragment(%q) = %d, %+v, %q, %d; Fragment gives %q", rel, iteration, w, kind, stage, again)
		}
		if err := layout.Check(rel); err != nil || !layout.Under(rel, layout.PolicyShardDir) {
			t.Fatalf("ParseFragment accepts %q, not clean or not under %s: %v", rel, layout.PolicyShardDir, err)
		}
	})
}
