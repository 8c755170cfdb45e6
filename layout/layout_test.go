package layout_test

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/layout"
)

// token is a canonical writer-id token (TokenLen lowercase hex digits).
const token = "0123456789ab"

var tokenBytes = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab}

// wantNameErr fails t unless err is non-nil and wraps layout.ErrName.
func wantNameErr(t *testing.T, what, name string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s(%q) = nil error, want an error wrapping layout.ErrName", what, name)
	} else if !errors.Is(err, layout.ErrName) {
		t.Errorf("%s(%q) = %v, want an error wrapping layout.ErrName", what, name, err)
	}
}

func TestPartitionRoundTrip(t *testing.T) {
	tests := []struct {
		pad, scenario int
		want          string
	}{
		{0, 0, "scenario_id=0"},
		{0, 7, "scenario_id=7"},
		{0, 10, "scenario_id=10"},
		{0, 2147483647, "scenario_id=2147483647"},
		{0, 9999999999, "scenario_id=9999999999"},
		{4, 0, "scenario_id=0000"},
		{4, 7, "scenario_id=0007"},
		{4, 9999, "scenario_id=9999"},
		{4, 123456, "scenario_id=123456"}, // wider than the padding
		{4, 9999999999, "scenario_id=9999999999"},
		{12, 0, "scenario_id=000000000000"},
		{12, 7, "scenario_id=000000000007"},
		{12, 999999999999, "scenario_id=999999999999"},
	}
	for _, tt := range tests {
		got := layout.Partition(tt.pad, tt.scenario)
		if got != tt.want {
			t.Errorf("Partition(%d, %d) = %q, want %q", tt.pad, tt.scenario, got, tt.want)
		}
		n, err := layout.ParsePartition(got, tt.pad)
		if err != nil || n != tt.scenario {
			t.Errorf("ParsePartition(%q, %d) = %d, %v, want %d, nil", got, tt.pad, n, err, tt.scenario)
		}
	}
}

func TestParsePartitionRefuses(t *testing.T) {
	tests := []struct {
		name string
		pad  int
	}{
		{"scenario_id=01", 0},          // padded, want unpadded
		{"scenario_id=00", 0},          // padded zero
		{"scenario_id=7", 4},           // unpadded, want 4 digits
		{"scenario_id=007", 4},         // short padding
		{"scenario_id=00007", 4},       // over-padded
		{"scenario_id=0007", 0},        // padded with pad 0
		{"scenario_id=+7", 0},          // sign
		{"scenario_id=-7", 0},          // sign
		{"scenario_id=+007", 4},        // sign inside the padding
		{"scenario_id=-007", 4},        // sign inside the padding
		{"scenario_id=", 0},            // no number
		{"scenario_id=7a", 0},          // trailing junk
		{"scenario_id= 7", 0},          // space
		{"scenario_id=0x7", 0},         // hex
		{"scenario_id=1_000", 0},       // underscore
		{"Scenario_id=7", 0},           // case
		{"scenario=7", 0},              // foreign key
		{"scenario_id=7/", 0},          // trailing slash
		{"scenario_id=12345678901", 0}, // wider than ten digits
	}
	for _, tt := range tests {
		n, err := layout.ParsePartition(tt.name, tt.pad)
		wantNameErr(t, fmt.Sprintf("ParsePartition(pad %d)", tt.pad), tt.name, err)
		if err == nil {
			t.Errorf("  ... parsed as %d", n)
		}
	}
}

func TestDataFileRoundTrip(t *testing.T) {
	tests := []struct {
		entity        string
		pad, scenario int
		want          string
	}{
		{"hydros", 0, 0, "simulation/hydros/scenario_id=0/data.parquet"},
		{"hydros", 0, 7, "simulation/hydros/scenario_id=7/data.parquet"},
		{"hydros", 4, 7, "simulation/hydros/scenario_id=0007/data.parquet"},
		{"hydros", 12, 7, "simulation/hydros/scenario_id=000000000007/data.parquet"},
		{"hydros", 4, 2000000000, "simulation/hydros/scenario_id=2000000000/data.parquet"},
		{"violations/generic", 0, 3, "simulation/violations/generic/scenario_id=3/data.parquet"},
		{"violations/generic", 4, 3, "simulation/violations/generic/scenario_id=0003/data.parquet"},
		{"exchange_flows", 0, 1, "simulation/exchange_flows/scenario_id=1/data.parquet"},
		{"a-b/C_9", 0, 1, "simulation/a-b/C_9/scenario_id=1/data.parquet"},
	}
	for _, tt := range tests {
		got := layout.DataFile(tt.entity, tt.pad, tt.scenario)
		if got != tt.want {
			t.Errorf("DataFile(%q, %d, %d) = %q, want %q", tt.entity, tt.pad, tt.scenario, got, tt.want)
		}
		entity, scenario, err := layout.ParseDataFile(got, tt.pad)
		if err != nil || entity != tt.entity || scenario != tt.scenario {
			t.Errorf("ParseDataFile(%q, %d) = %q, %d, %v, want %q, %d, nil", got, tt.pad, entity, scenario, err, tt.entity, tt.scenario)
		}
		if err := layout.Check(got); err != nil {
			t.Errorf("Check(%q) = %v", got, err)
		}
	}
}

func TestParseDataFileRefuses(t *testing.T) {
	tests := []struct {
		rel string
		pad int
	}{
		// Not clean, not relative.
		{"../x", 0},
		{"/abs", 0},
		{"/simulation/hydros/scenario_id=1/data.parquet", 0},
		{"simulation//hydros/scenario_id=1/data.parquet", 0},
		{"simulation/./hydros/scenario_id=1/data.parquet", 0},
		{"simulation/../hydros/scenario_id=1/data.parquet", 0},
		{"simulation/hydros/../hydros/scenario_id=1/data.parquet", 0},
		{"simulation\\hydros\\scenario_id=1\\data.parquet", 0},
		{"simulation/hydros/scenario_id=1/data.parquet\x00", 0},
		{"simulation/hydros/scenario_id=1/data.parquet/", 0},
		{"", 0},
		// Wrong padding or number.
		{"simulation/hydros/scenario_id=01/data.parquet", 0},
		{"simulation/hydros/scenario_id=7/data.parquet", 4},
		{"simulation/hydros/scenario_id=+7/data.parquet", 0},
		{"simulation/hydros/scenario_id=-7/data.parquet", 0},
		{"simulation/hydros/scenario_id=-007/data.parquet", 4},
		// Not a data file of ours.
		{"simulation/hydros/scenario_id=1/data.parquet.tmp", 0},
		{"simulation/hydros/scenario_id=1/part-0.parquet", 0},
		{"simulation/hydros/scenario_id=1/.data.parquet", 0},
		{"simulation/hydros/data.parquet", 0},
		{"simulation/scenario_id=1/data.parquet", 0},
		{"simulation/data.parquet", 0},
		{"data.parquet", 0},
		{"training/hydros/scenario_id=1/data.parquet", 0},
		{"simulation/a/b/c/scenario_id=1/data.parquet", 0}, // three-element entity
		{"simulation/hydro.s/scenario_id=1/data.parquet", 0},
		{"simulation/hydros x/scenario_id=1/data.parquet", 0},
		{"simulation/hydrös/scenario_id=1/data.parquet", 0},
		{"simulation/hydros/scenario_id=1/extra/data.parquet", 0},
		{"_shards/tmp/simulation/hydros/scenario_id=1/data.parquet", 0},
	}
	for _, tt := range tests {
		entity, scenario, err := layout.ParseDataFile(tt.rel, tt.pad)
		wantNameErr(t, fmt.Sprintf("ParseDataFile(pad %d)", tt.pad), tt.rel, err)
		if err == nil {
			t.Errorf("  ... parsed as %q, %d", entity, scenario)
		}
	}
}

func TestSanitizeJob(t *testing.T) {
	tests := []struct{ job, want string }{
		{"", "local"},
		{"123", "123"},
		{"123_4", "123_4"},
		{"a/b c", "a_b_c"},
		{"12345.server.example", "12345_server_example"},
		{"job-1", "job-1"},
		{"é", "__"}, // one byte per byte
		{"日本", "______"},
		{"..", "__"},
		{"\x00", "_"},
		{strings.Repeat("9", 64), strings.Repeat("9", 64)},
		{strings.Repeat("9", 65), strings.Repeat("9", 64)}, // cut to MaxJobLen
		{strings.Repeat("é", 40), strings.Repeat("_", 64)},
	}
	for _, tt := range tests {
		if got := layout.SanitizeJob(tt.job); got != tt.want {
			t.Errorf("SanitizeJob(%q) = %q, want %q", tt.job, got, tt.want)
		}
	}
}

func TestWriterIDRoundTrip(t *testing.T) {
	tests := []struct {
		job           string
		rank, attempt int
		tag           string
		want          string
	}{
		{"", 0, 0, "", "job-local.rank-00000.attempt-0." + token},
		{"", 0, 0, layout.TrainingTag, "job-local.rank-00000.attempt-0.training." + token},
		{"123_4", 3, 1, "", "job-123_4.rank-00003.attempt-1." + token},
		{"123_4", 3, 1, layout.TrainingTag, "job-123_4.rank-00003.attempt-1.training." + token},
		{"a/b c", 12345, 10, "", "job-a_b_c.rank-12345.attempt-10." + token},
		{"日本", 123456, 0, "", "job-______.rank-123456.attempt-0." + token},
		{"x.y", 999999999, 999999999, layout.TrainingTag, "job-x_y.rank-999999999.attempt-999999999.training." + token},
		{strings.Repeat("7", 64), 1, 2, "", "job-" + strings.Repeat("7", 64) + ".rank-00001.attempt-2." + token},
		// Job ids longer than a writer id's job element are cut.
		{strings.Repeat("7", 100), 1, 2, "", "job-" + strings.Repeat("7", 64) + ".rank-00001.attempt-2." + token},
		{strings.Repeat("é", 40), 1, 2, "", "job-" + strings.Repeat("_", 64) + ".rank-00001.attempt-2." + token},
	}
	for _, tt := range tests {
		w := layout.NewWriterID(tt.job, tt.rank, tt.attempt, tt.tag, tokenBytes)
		s := w.String()
		if s != tt.want {
			t.Errorf("NewWriterID(%q, %d, %d, %q).String() = %q, want %q", tt.job, tt.rank, tt.attempt, tt.tag, s, tt.want)
		}
		got, err := layout.ParseWriterID(s)
		if err != nil || got != w {
			t.Errorf("ParseWriterID(%q) = %+v, %v, want %+v, nil", s, got, err, w)
		}
		if err := layout.Check(s); err != nil {
			t.Errorf("Check(%q) = %v", s, err)
		}
	}
}

func TestParseWriterIDRefuses(t *testing.T) {
	ok := "job-123.rank-00003.attempt-1." + token
	if _, err := layout.ParseWriterID(ok); err != nil {
		t.Fatalf("ParseWriterID(%q) = %v, the base of the cases below must parse", ok, err)
	}
	tests := []string{
		"",
		"job-123.rank-00003.attempt-1.0123456789AB",                         // uppercase hex token
		"job-123.rank-00003.attempt-1.0123456789aB",                         // mixed case token
		"job-123.rank-00003.attempt-1.0123456789a",                          // short token
		"job-123.rank-00003.attempt-1.0123456789abc",                        // long token
		"job-123.rank-00003.attempt-1.0123456789ag",                         // not hex
		"job-123.rank-00003.attempt-1.",                                     // no token
		"job-123.rank-3.attempt-1." + token,                                 // rank without 5 digits
		"job-123.rank-0003.attempt-1." + token,                              // rank with 4 digits
		"job-123.rank-000003.attempt-1." + token,                            // rank with 6 digits
		"job-123.rank-+0003.attempt-1." + token,                             // signed rank
		"job-123.rank--0003.attempt-1." + token,                             // signed rank
		"job-123.rank-1234567890.attempt-1." + token,                        // rank too wide
		"job-123.rank-00003.attempt-01." + token,                            // padded attempt
		"job-123.rank-00003.attempt-+1." + token,                            // signed attempt
		"job-123.rank-00003.attempt--1." + token,                            // signed attempt
		"job-123.rank-00003.attempt-." + token,                              // empty attempt
		"job-123.rank-00003.attempt-1.Training." + token,                    // unknown tag
		"job-123.rank-00003.attempt-1.simulation." + token,                  // unknown tag
		"job-123.rank-00003.attempt-1..." + token,                           // empty tag
		"job-123.rank-00003.attempt-1.training.x." + token,                  // extra element
		"job-123.rank-00003.attempt-1." + token + ".jsonl",                  // extra element
		"job-123.rank-00003." + token,                                       // missing element
		"job-.rank-00003.attempt-1." + token,                                // empty job
		"job-a/b.rank-00003.attempt-1." + token,                             // slash in the job
		"job-a b.rank-00003.attempt-1." + token,                             // space in the job
		"job-é.rank-00003.attempt-1." + token,                               // unicode in the job
		"job-" + strings.Repeat("1", 65) + ".rank-00003.attempt-1." + token, // job too long
		"Job-123.rank-00003.attempt-1." + token,                             // case
		"123.rank-00003.attempt-1." + token,                                 // no job- prefix
		"job-123.r-00003.attempt-1." + token,                                // wrong prefix
		"job-123.rank-00003.try-1." + token,                                 // wrong prefix
		"job-123.attempt-1.rank-00003." + token,                             // order
		"job-123.rank-00003.attempt-1." + token + "\x00",                    // NUL
		" job-123.rank-00003.attempt-1." + token,                            // space
	}
	for _, s := range tests {
		w, err := layout.ParseWriterID(s)
		wantNameErr(t, "ParseWriterID", s, err)
		if err == nil {
			t.Errorf("  ... parsed as %+v", w)
		}
	}
}

func TestJournalRoundTrip(t *testing.T) {
	for _, tag := range []string{"", layout.TrainingTag} {
		w := layout.NewWriterID("123_4", 7, 2, tag, tokenBytes)
		j := layout.Journal(w.String())
		dir, name := path.Split(j)
		if dir != layout.JournalDir+"/" {
			t.Errorf("Journal(%q) = %q, want it directly in %s", w, j, layout.JournalDir)
		}
		if !layout.IsJournalName(name) {
			t.Errorf("IsJournalName(%q) = false", name)
		}
		got, err := layout.ParseJournalName(name)
		if err != nil || got != w {
			t.Errorf("ParseJournalName(%q) = %+v, %v, want %+v, nil", name, got, err, w)
		}
		if err := layout.Check(j); err != nil {
			t.Errorf("Check(%q) = %v", j, err)
		}
	}
	for _, name := range []string{
		"job-123.rank-00003.attempt-1." + token,           // no suffix
		"job-123.rank-00003.attempt-1." + token + ".json", // wrong suffix
		"job-123.rank-3.attempt-1." + token + ".jsonl",    // bad writer
		".jsonl",
		"x.jsonl",
	} {
		w, err := layout.ParseJournalName(name)
		wantNameErr(t, "ParseJournalName", name, err)
		if err == nil {
			t.Errorf("  ... parsed as %+v", w)
		}
	}
}

func TestStageFileNameRoundTrip(t *testing.T) {
	tests := []struct {
		stage int
		want  string
	}{
		{0, "stage_000.bin"},
		{7, "stage_007.bin"},
		{120, "stage_120.bin"},
		{1000, "stage_1000.bin"},
		{999999999, "stage_999999999.bin"},
	}
	for _, tt := range tests {
		got := layout.StageFileName(tt.stage)
		if got != tt.want {
			t.Errorf("StageFileName(%d) = %q, want %q", tt.stage, got, tt.want)
		}
		n, err := layout.ParseStageFileName(got)
		if err != nil || n != tt.stage {
			t.Errorf("ParseStageFileName(%q) = %d, %v, want %d, nil", got, n, err, tt.stage)
		}
	}
	for _, name := range []string{
		"stage_7.bin", "stage_07.bin", "stage_0007.bin", "stage_+07.bin", "stage_-07.bin",
		"stage_007.bin.tmp", "stage_007", "stage_.bin", "Stage_007.bin", "stage007.bin",
		"stage_007.BIN", "stage_0120.bin", "stage_1234567890.bin", "x/stage_007.bin",
	} {
		n, err := layout.ParseStageFileName(name)
		wantNameErr(t, "ParseStageFileName", name, err)
		if err == nil {
			t.Errorf("  ... parsed as %d", n)
		}
	}
}

func TestPolicyStageFile(t *testing.T) {
	for _, kind := range layout.StageKinds {
		p := layout.PolicyStageFile(kind, 3)
		if want := "policy/" + kind + "/stage_003.bin"; p != want {
			t.Errorf("PolicyStageFile(%q, 3) = %q, want %q", kind, p, want)
		}
		if err := layout.Check(p); err != nil {
			t.Errorf("Check(%q) = %v", p, err)
		}
	}
}

func TestFragmentRoundTrip(t *testing.T) {
	sim := layout.NewWriterID("123_4", 7, 2, "", tokenBytes)
	train := layout.NewWriterID("", 0, 0, layout.TrainingTag, tokenBytes)
	tests := []struct {
		iteration int
		writer    layout.WriterID
		kind      string
		stage     int
		want      string
	}{
		{0, sim, "cuts", 0, "_shards/policy/iter-000000/" + sim.String() + "/cuts_stage_000.bin"},
		{12, train, "basis", 7, "_shards/policy/iter-000012/" + train.String() + "/basis_stage_007.bin"},
		{1234567, train, "states", 1234, "_shards/policy/iter-1234567/" + train.String() + "/states_stage_1234.bin"},
		{999999999, sim, "my-kind", 999999999, "_shards/policy/iter-999999999/" + sim.String() + "/my-kind_stage_999999999.bin"},
	}
	for _, tt := range tests {
		got := layout.Fragment(tt.iteration, tt.writer.String(), tt.kind, tt.stage)
		if got != tt.want {
			t.Errorf("Fragment(%d, %q, %q, %d) = %q, want %q", tt.iteration, tt.writer, tt.kind, tt.stage, got, tt.want)
		}
		it, w, kind, stage, err := layout.ParseFragment(got)
		if err != nil || it != tt.iteration || w != tt.writer || kind != tt.kind || stage != tt.stage {
			t.Errorf("ParseFragment(%q) = %d, %+v, %q, %d, %v, want %d, %+v, %q, %d, nil",
				got, it, w, kind, stage, err, tt.iteration, tt.writer, tt.kind, tt.stage)
		}
		if err := layout.Check(got); err != nil {
			t.Errorf("Check(%q) = %v", got, err)
		}
	}
}

func TestParseFragmentRefuses(t *testing.T) {
	w := "job-123.rank-00003.attempt-1." + token
	ok := "_shards/policy/iter-000001/" + w + "/cuts_stage_001.bin"
	if _, _, _, _, err := layout.ParseFragment(ok); err != nil {
		t.Fatalf("ParseFragment(%q) = %v, the base of the cases below must parse", ok, err)
	}
	tests := []string{
		// Outside _shards/policy.
		"policy/iter-000001/" + w + "/cuts_stage_001.bin",
		"_shards/tmp/iter-000001/" + w + "/cuts_stage_001.bin",
		"_shards/superseded/iter-000001/" + w + "/cuts_stage_001.bin",
		"_shards/policy/../policy/iter-000001/" + w + "/cuts_stage_001.bin",
		"_shards/policy/iter-000001/../iter-000001/" + w + "/cuts_stage_001.bin",
		"x/_shards/policy/iter-000001/" + w + "/cuts_stage_001.bin",
		"/_shards/policy/iter-000001/" + w + "/cuts_stage_001.bin",
		"_shards//policy/iter-000001/" + w + "/cuts_stage_001.bin",
		"_shards\\policy/iter-000001/" + w + "/cuts_stage_001.bin",
		// Wrong depth.
		"_shards/policy/iter-000001/cuts_stage_001.bin",
		"_shards/policy/iter-000001/" + w + "/x/cuts_stage_001.bin",
		"_shards/policy/" + w + "/cuts_stage_001.bin",
		// Bad iteration.
		"_shards/policy/iter-1/" + w + "/cuts_stage_001.bin",
		"_shards/policy/iter-0000001/" + w + "/cuts_stage_001.bin",
		"_shards/policy/iter-+00001/" + w + "/cuts_stage_001.bin",
		"_shards/policy/iter--00001/" + w + "/cuts_stage_001.bin",
		"_shards/policy/iteration-000001/" + w + "/cuts_stage_001.bin",
		// Bad writer.
		"_shards/policy/iter-000001/job-123.rank-3.attempt-1." + token + "/cuts_stage_001.bin",
		"_shards/policy/iter-000001/job-123.rank-00003.attempt-1.0123456789AB/cuts_stage_001.bin",
		"_shards/policy/iter-000001/merge/cuts_stage_001.bin",
		// Bad file.
		"_shards/policy/iter-000001/" + w + "/cuts_stage_01.bin",
		"_shards/policy/iter-000001/" + w + "/cuts_stage_001.bin.tmp",
		"_shards/policy/iter-000001/" + w + "/stage_001.bin",
		"_shards/policy/iter-000001/" + w + "/_stage_001.bin",
		"_shards/policy/iter-000001/" + w + "/cu.ts_stage_001.bin",
		"_shards/policy/iter-000001/" + w + "/cuts-stage_001.bin",
		"_shards/policy/iter-000001/" + w + "/.cuts_stage_001.bin",
	}
	for _, rel := range tests {
		it, wr, kind, stage, err := layout.ParseFragment(rel)
		wantNameErr(t, "ParseFragment", rel, err)
		if err == nil {
			t.Errorf("  ... parsed as %d, %+v, %q, %d", it, wr, kind, stage)
		}
	}
}

func TestTempNames(t *testing.T) {
	sim := layout.NewWriterID("123_4", 7, 2, "", tokenBytes).String()
	train := layout.NewWriterID("a/b c", 0, 0, layout.TrainingTag, tokenBytes).String()
	tests := []string{
		layout.SimTemp(sim, 0, "hydros"),
		layout.SimTemp(sim, 1234567, "violations/generic"),
		layout.SimTemp(train, 7, "exchange_flows"),
		layout.CheckpointTemp(train, 0, "cuts", 0),
		layout.CheckpointTemp(train, 123456, "states", 1234),
		layout.MergeTemp(1, 0, "simulation/_manifest.json"),
		layout.MergeTemp(99999, 12, layout.DataFile("violations/generic", 4, 3)),
		layout.MergeTemp(4242, 1, layout.ConvergenceFile),
		layout.MergeTemp(4242, 2, layout.PolicyStageFile("cuts", 3)),
		layout.MergeTemp(4242, 3, layout.LockFile),
	}
	for _, rel := range tests {
		if err := layout.CheckTemp(rel); err != nil {
			t.Errorf("CheckTemp(%q) = %v", rel, err)
		}
		if err := layout.Check(rel); err != nil {
			t.Errorf("Check(%q) = %v", rel, err)
		}
		if strings.HasSuffix(rel, ".parquet") {
			t.Errorf("temp path %q ends in .parquet", rel)
		}
		if !layout.IsTempName(path.Base(rel)) {
			t.Errorf("IsTempName(%q) = false", path.Base(rel))
		}
	}
	// Writers keep their temp files apart: the same table of the same
	// scenario has a different temp name for each writer.
	other := layout.NewWriterID("123_4", 7, 3, "", tokenBytes).String()
	if a, b := layout.SimTemp(sim, 1, "hydros"), layout.SimTemp(other, 1, "hydros"); a == b {
		t.Errorf("SimTemp of two writers: both %q", a)
	}
}

func TestCheckTempRefuses(t *testing.T) {
	tests := []string{
		"",
		"x.tmp",                                 // not in _shards/tmp
		"_shards/x.tmp",                         // not in _shards/tmp
		"_shards/tmp/sub/x.tmp",                 // not directly in _shards/tmp
		"_shards/tmp/../tmp/x.tmp",              // not clean
		"_shards/tmp//x.tmp",                    // not clean
		"/_shards/tmp/x.tmp",                    // absolute
		"simulation/hydros/scenario_id=1/x.tmp", // beside the data
		"_shards/tmp/x.parquet",                 // ends in .parquet
		"_shards/tmp/data.parquet",              // ends in .parquet
		"_shards/tmp/x.tmp.parquet",             // ends in .parquet
		"_shards/tmp/x",                         // no suffix
		"_shards/tmp/x.TMP",                     // wrong suffix
		"_shards/tmp/.tmp",                      // dot name
		"_shards/tmp/.x.tmp",                    // dot name
		"_shards/tmp/a b.tmp",                   // space
		"_shards/tmp/a\\b.tmp",                  // backslash
		"_shards/tmp/é.tmp",                     // unicode
		"_shards/tmp/x.tmp\x00",                 // NUL
		"_shards/tmp",                           // the directory
		"_shards/tmp/",                          // the directory
	}
	for _, rel := range tests {
		wantNameErr(t, "CheckTemp", rel, layout.CheckTemp(rel))
	}
}

func TestReplaceTemp(t *testing.T) {
	tests := []struct{ final, want string }{
		{"policy/cuts/stage_003.bin", "policy/cuts/.stage_003.bin.tmp"},
		{"policy/metadata.json", "policy/.metadata.json.tmp"},
		{"x.bin", ".x.bin.tmp"},
	}
	for _, tt := range tests {
		got := layout.ReplaceTemp(tt.final)
		if got != tt.want {
			t.Errorf("ReplaceTemp(%q) = %q, want %q", tt.final, got, tt.want)
		}
		if err := layout.Check(got); err != nil {
			t.Errorf("Check(%q) = %v", got, err)
		}
		if path.Dir(got) != path.Dir(tt.final) {
			t.Errorf("ReplaceTemp(%q) = %q, not beside the final file", tt.final, got)
		}
		base := path.Base(got)
		if !strings.HasPrefix(base, ".") || !strings.HasSuffix(base, layout.TempSuffix) || strings.HasSuffix(got, ".parquet") {
			t.Errorf("ReplaceTemp(%q) = %q, want a dot name ending in %s", tt.final, got, layout.TempSuffix)
		}
		// A stage-file glob must not pick it up.
		if _, err := layout.ParseStageFileName(base); err == nil {
			t.Errorf("ParseStageFileName(%q) accepts a replace temp", base)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	tests := []string{
		"",
		"..",
		".",
		"../x",
		"x/..",
		"x/../y",
		"/abs",
		"/",
		"a//b",
		"a/./b",
		"./a",
		"a/.",
		"a/",
		"a\\b",
		"..\\x",
		"a\x00b",
		"simulation/../hydros/scenario_id=1/data.parquet",
	}
	for _, rel := range tests {
		wantNameErr(t, "Check", rel, layout.Check(rel))
	}
}

// TestCheckAcceptsMade checks that every path the makers produce is clean.
func TestCheckAcceptsMade(t *testing.T) {
	w := layout.NewWriterID("a/b c", 3, 1, "", tokenBytes).String()
	tw := layout.NewWriterID("123_4", 3, 1, layout.TrainingTag, tokenBytes).String()
	paths := []string{
		layout.ShardsDir, layout.JournalDir, layout.TempDir, layout.PolicyShardDir,
		layout.SupersededDir, layout.SimDir, layout.TrainingDir, layout.PolicyDir, layout.DictDir,
		layout.LockFile, layout.ConvergenceFile, layout.TimingIterationsFile,
		layout.TimingMPIRanksFile, layout.PolicyMetadataFile,
		layout.Partition(0, 7), layout.Partition(12, 7),
		layout.DataFile("hydros", 0, 1), layout.DataFile("violations/generic", 12, 123),
		layout.StageFileName(3), layout.PolicyStageFile("cuts", 3),
		layout.Fragment(3, w, "cuts", 4), layout.Fragment(3, tw, "states", 400),
		layout.Superseded(w, layout.DataFile("violations/generic", 4, 5)),
		layout.Superseded(tw, layout.Fragment(3, tw, "basis", 4)),
		layout.Journal(w), layout.Journal(tw),
		layout.SimTemp(w, 3, "violations/generic"), layout.CheckpointTemp(tw, 3, "cuts", 4),
		layout.MergeTemp(1, 2, layout.DataFile("hydros", 0, 1)),
		layout.ReplaceTemp(layout.PolicyStageFile("basis", 2)),
		layout.ReplaceTemp(layout.PolicyMetadataFile),
		w, tw,
	}
	for _, d := range []string{layout.SimDir, layout.TrainingDir} {
		for _, n := range []string{layout.ManifestName, layout.IndexName, layout.MetadataName, layout.SummaryName, layout.SuccessName} {
			paths = append(paths, path.Join(d, n))
		}
	}
	for _, n := range []string{layout.DictCodesName, layout.DictEntitiesName, layout.DictVariablesName, layout.DictBoundsName, layout.DictStateName} {
		paths = append(paths, path.Join(layout.DictDir, n))
	}
	for _, p := range paths {
		if err := layout.Check(p); err != nil {
			t.Errorf("Check(%q) = %v", p, err)
		}
	}
}

func TestJoinUnder(t *testing.T) {
	rel := layout.DataFile("violations/generic", 0, 1)
	if got, want := layout.Join("/out", rel), "/out/simulation/violations/generic/scenario_id=1/data.parquet"; path.Clean(strings.ReplaceAll(got, "\\", "/")) != want {
		t.Errorf("Join(/out, %q) = %q, want %q", rel, got, want)
	}
	tests := []struct {
		rel, dir string
		want     bool
	}{
		{"_shards/tmp/x.tmp", layout.TempDir, true},
		{"_shards/tmp", layout.TempDir, true},
		{"_shards/tmpx/y", layout.TempDir, false},
		{"_shards", layout.TempDir, false},
		{rel, layout.SimDir, true},
		{"simulationx/a", layout.SimDir, false},
	}
	for _, tt := range tests {
		if got := layout.Under(tt.rel, tt.dir); got != tt.want {
			t.Errorf("Under(%q, %q) = %v, want %v", tt.rel, tt.dir, got, tt.want)
		}
	}
}

// TestTempSuffix pins the invariant TempSuffix documents.
func TestTempSuffix(t *testing.T) {
	if layout.TempSuffix == ".parquet" || strings.HasSuffix(layout.TempSuffix, ".parquet") {
		t.Fatalf("TempSuffix = %q: DuckDB's **/*.parquet glob would read temp files", layout.TempSuffix)
	}
}

func ExampleDataFile() {
	fmt.Println(layout.DataFile("hydros", 0, 7))
	fmt.Println(layout.DataFile("violations/generic", 4, 7))
	entity, scenario, err := layout.ParseDataFile("simulation/violations/generic/scenario_id=0007/data.parquet", 4)
	fmt.Println(entity, scenario, err)
	_, _, err = layout.ParseDataFile("simulation/hydros/scenario_id=7/data.parquet", 4)
	fmt.Println(errors.Is(err, layout.ErrName))
	// Output:
	// simulation/hydros/scenario_id=7/data.parquet
	// simulation/violations/generic/scenario_id=0007/data.parquet
	// violations/generic 7 <nil>
	// true
}

func ExampleParseWriterID() {
	w, err := layout.ParseWriterID("job-123_4.rank-00003.attempt-1.training.0123456789ab")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("job %s, rank %d, attempt %d, tag %q, token %s\n", w.Job, w.Rank, w.Attempt, w.Tag, w.Token)
	fmt.Println(w)
	_, err = layout.ParseWriterID("job-123_4.rank-3.attempt-1.0123456789ab")
	fmt.Println(err)
	// Output:
	// job 123_4, rank 3, attempt 1, tag "training", token 0123456789ab
	// job-123_4.rank-00003.attempt-1.training.0123456789ab
	// layout: not a hydroshard name: writer id "job-123_4.rank-3.attempt-1.0123456789ab": bad rank element
}
