// Package layout names everything under a study's output directory (OUT)
// and parses those names back. It is the only place that spells a path
// under OUT: the rank writer, the merge, the policy codec and the tools ask
// it for names, and the merge asks it whether a name found on disk or in a
// journal is one of ours. Parsing is strict on purpose: a path that does not
// parse is refused, whatever wrote it.
//
// The tree (paths relative to OUT, always with forward slashes):
//
//	simulation/<entity>/scenario_id=N/data.parquet   committed data (N unpadded, or zero-padded to Pad digits)
//	simulation/{_manifest.json,_files.csv,metadata.json,summary.json,_SUCCESS}
//	training/{convergence.parquet,timing/*.parquet,metadata.json,_manifest.json,_SUCCESS}
//	training/dictionaries/{codes.json,entities.csv,variables.csv,bounds.parquet,state_dictionary.json}
//	policy/{cuts,basis,states}/stage_NNN.bin, policy/metadata.json
//	compacted/<entity>/part-NNNNN.parquet, compacted/_manifest.json   merge-shards compact
//	_shards/journal/<writer>.jsonl                    one journal per writer
//	_shards/tmp/<name>.tmp                            writes in progress
//	_shards/policy/iter-NNNNNN/<writer>/<kind>_stage_NNN.bin   committed checkpoint fragments
//	_shards/superseded/<writer>/<path>                committed copies that lost a conflict
//	_shards/merge.lock                                held while a merge runs
//
// Invariants the names keep:
//   - Nothing but committed data.parquet files sits under an entity
//     directory: DuckDB's **/*.parquet glob skips neither "_" nor "."
//     names, so temp files live under _shards/tmp and end in TempSuffix,
//     never in ".parquet".
//   - A writer id is unique per writer (it ends in a random token), so two
//     writers never share a journal or a temp name.
//   - Every name is relative, clean, and below OUT: Check refuses "..",
//     absolute paths, empty elements and backslashes.
//
// The package imports only the standard library.
package layout

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Directories under OUT.
const (
	ShardsDir      = "_shards"            // rank-side state, never read by analysts
	JournalDir     = "_shards/journal"    // one journal per writer
	TempDir        = "_shards/tmp"        // temp files of writes in progress
	PolicyShardDir = "_shards/policy"     // committed checkpoint fragments
	SupersededDir  = "_shards/superseded" // committed copies that lost a conflict
	SimDir         = "simulation"         // the simulation dataset
	TrainingDir    = "training"           // training outputs
	PolicyDir      = "policy"             // the assembled policy checkpoint
	DictDir        = "training/dictionaries"
)

// Files under OUT.
const (
	LockFile             = "_shards/merge.lock"
	ConvergenceFile      = "training/convergence.parquet"
	TimingIterationsFile = "training/timing/iterations.parquet"
	TimingMPIRanksFile   = "training/timing/mpi_ranks.parquet"
	PolicyMetadataFile   = "policy/metadata.json"
)

// Base names of the merge's outputs, found in SimDir and TrainingDir.
const (
	ManifestName = "_manifest.json"
	IndexName    = "_files.csv"
	MetadataName = "metadata.json"
	SummaryName  = "summary.json"
	SuccessName  = "_SUCCESS"
)

// Base names of the dictionaries in DictDir.
const (
	DictCodesName     = "codes.json"
	DictEntitiesName  = "entities.csv"
	DictVariablesName = "variables.csv"
	DictBoundsName    = "bounds.parquet"
	DictStateName     = "state_dictionary.json"
)

// Suffixes.
const (
	JournalSuffix = ".jsonl"
	// TempSuffix ends every temp file name. It must never be ".parquet".
	TempSuffix = ".tmp"
	// DataFileName is the one file of a partition directory.
	DataFileName = "data.parquet"
)

// MaxPad is the widest zero padding of a partition name.
const MaxPad = 12

// ErrName is wrapped by every error of this package about a name that is
// not one of ours.
var ErrName = errors.New("layout: not a hydroshard name")

func nameErr(what, name string, format string, args ...any) error {
	return fmt.Errorf("%w: %s %q: %s", ErrName, what, name, fmt.Sprintf(format, args...))
}

// Check reports whether rel is a clean relative path below OUT: no "..",
// no ".", no empty element, not absolute, no backslash or NUL. Every path
// read from a journal passes Check before it is joined to OUT.
func Check(rel string) error {
	switch {
	case rel == "":
		return nameErr("path", rel, "empty")
	case strings.HasPrefix(rel, "/"):
		return nameErr("path", rel, "absolute, want a path relative to the output directory")
	case strings.ContainsAny(rel, "\\\x00"):
		return nameErr("path", rel, "contains a backslash or NUL")
	}
	for _, e := range strings.Split(rel, "/") {
		if e == "" || e == "." || e == ".." {
			return nameErr("path", rel, "element %q: want a clean path below the output directory", e)
		}
	}
	return nil
}

// Join returns the operating-system path of rel under out. rel must have
// passed Check (or have been made by this package).
func Join(out, rel string) string { return filepath.Join(out, filepath.FromSlash(rel)) }

// Under reports whether rel is dir itself or below it (both clean and
// slash-separated).
func Under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// safeElem reports whether s is a non-empty name of letters, digits, '_'
// and '-' only: the alphabet of every element this package makes from
// outside input (job ids, entities, kinds).
func safeElem(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseUint parses a decimal of at most maxDigits digits without sign; a
// leading zero is accepted only when zeros is true (a padded number) or
// the number is 0.
func parseUint(s string, maxDigits int, zeros bool) (int, bool) {
	if s == "" || len(s) > maxDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	if !zeros && len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Entity tables are one or two elements ("hydros", "violations/generic").
func checkEntity(entity string) error {
	parts := strings.Split(entity, "/")
	if len(parts) > 2 {
		return nameErr("entity", entity, "more than two elements")
	}
	for _, p := range parts {
		if !safeElem(p) {
			return nameErr("entity", entity, "want letters, digits, '_' or '-'")
		}
	}
	return nil
}

// Partition returns a scenario's partition directory name: scenario_id=7,
// or scenario_id=0007 with pad 4 (Cobre's naming).
func Partition(pad, scenario int) string { return fmt.Sprintf("scenario_id=%0*d", pad, scenario) }

// ParsePartition parses a partition directory name made with pad: the
// number must have exactly the width Partition gives it.
func ParsePartition(name string, pad int) (int, error) {
	num, ok := strings.CutPrefix(name, "scenario_id=")
	if !ok {
		return 0, nameErr("partition", name, "want scenario_id=N")
	}
	n, ok := parseUint(num, max(pad, 10), pad > 0)
	if !ok || Partition(pad, n) != name {
		return 0, nameErr("partition", name, "want scenario_id=N with padding %d", pad)
	}
	return n, nil
}

// DataFile returns the committed path of an entity table of a scenario.
func DataFile(entity string, pad, scenario int) string {
	return path.Join(SimDir, entity, Partition(pad, scenario), DataFileName)
}

// ParseDataFile parses a committed data file path made with pad.
func ParseDataFile(rel string, pad int) (entity string, scenario int, err error) {
	if err := Check(rel); err != nil {
		return "", 0, err
	}
	rest, ok := strings.CutPrefix(rel, SimDir+"/")
	dir, file := path.Split(rest)
	if !ok || file != DataFileName || dir == "" {
		return "", 0, nameErr("data file", rel, "want %s/<entity>/scenario_id=N/%s", SimDir, DataFileName)
	}
	dir = strings.TrimSuffix(dir, "/")
	entity, part := path.Split(dir)
	entity = strings.TrimSuffix(entity, "/")
	if err := checkEntity(entity); err != nil {
		return "", 0, fmt.Errorf("data file %q: %w", rel, err)
	}
	scenario, err = ParsePartition(part, pad)
	if err != nil {
		return "", 0, fmt.Errorf("data file %q: %w", rel, err)
	}
	return entity, scenario, nil
}

// StageFileName is a policy stage file's base name: stage_NNN.bin.
func StageFileName(stage int) string { return fmt.Sprintf("stage_%03d.bin", stage) }

// ParseStageFileName parses a base name made by StageFileName.
func ParseStageFileName(name string) (int, error) {
	num, ok := strings.CutPrefix(name, "stage_")
	num, ok2 := strings.CutSuffix(num, ".bin")
	n, ok3 := parseUint(num, 9, true)
	if !ok || !ok2 || !ok3 || StageFileName(n) != name {
		return 0, nameErr("stage file", name, "want stage_NNN.bin")
	}
	return n, nil
}

// PolicyStageFile returns the assembled policy's file of a kind (cuts,
// basis, states) and stage.
func PolicyStageFile(kind string, stage int) string {
	return path.Join(PolicyDir, kind, StageFileName(stage))
}

// Fragment returns the committed path of a writer's checkpoint fragment.
func Fragment(iteration int, writer, kind string, stage int) string {
	return path.Join(PolicyShardDir, fmt.Sprintf("iter-%06d", iteration), writer, kind+"_"+StageFileName(stage))
}

// ParseFragment parses a path made by Fragment.
func ParseFragment(rel string) (iteration int, writer WriterID, kind string, stage int, err error) {
	if err = Check(rel); err != nil {
		return
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 5 || parts[0]+"/"+parts[1] != PolicyShardDir {
		err = nameErr("policy fragment", rel, "want %s/iter-NNNNNN/<writer>/<kind>_stage_NNN.bin", PolicyShardDir)
		return
	}
	num, ok := strings.CutPrefix(parts[2], "iter-")
	iteration, ok2 := parseUint(num, 9, true)
	if !ok || !ok2 || fmt.Sprintf("iter-%06d", iteration) != parts[2] {
		err = nameErr("policy fragment", rel, "element %q: want iter-NNNNNN", parts[2])
		return
	}
	if writer, err = ParseWriterID(parts[3]); err != nil {
		err = fmt.Errorf("policy fragment %q: %w", rel, err)
		return
	}
	kind, file, ok := strings.Cut(parts[4], "_")
	if !ok || !safeElem(kind) {
		err = nameErr("policy fragment", rel, "want <kind>_stage_NNN.bin")
		return
	}
	if stage, err = ParseStageFileName(file); err != nil {
		err = fmt.Errorf("policy fragment %q: %w", rel, err)
	}
	return
}

// Superseded returns where the merge keeps a committed copy of final that
// lost a conflict to another writer's copy.
func Superseded(writer, final string) string { return path.Join(SupersededDir, writer, final) }

// StageKinds are the subdirectories of PolicyDir (and the kinds of
// checkpoint fragments): Benders cuts, LP bases, visited states.
var StageKinds = [...]string{"cuts", "basis", "states"}

// LeaseDir holds one lease file per open writer (see package lease).
const LeaseDir = "_shards/lease"

// LeaseSuffix ends every lease file name.
const LeaseSuffix = ".lease"

// Lease returns the path of a writer's lease.
func Lease(writer string) string { return path.Join(LeaseDir, writer+LeaseSuffix) }

// LeaseTemp is where a writer prepares its next lease before renaming it
// over the lease: a dot name, so no reader takes it for a lease.
func LeaseTemp(writer string) string { return path.Join(LeaseDir, "."+writer+LeaseSuffix+TempSuffix) }

// ParseLeaseName parses a lease's base name into its writer id.
func ParseLeaseName(name string) (WriterID, error) {
	id, ok := strings.CutSuffix(name, LeaseSuffix)
	if !ok {
		return WriterID{}, nameErr("lease", name, "want <writer>%s", LeaseSuffix)
	}
	return ParseWriterID(id)
}

// ClockProbe is a file a reader creates, stats and removes to learn the
// file system's clock: leases are judged against it, never against the
// clocks of two hosts. pid and token keep concurrent readers apart.
func ClockProbe(pid int, token string) string {
	return path.Join(ShardsDir, fmt.Sprintf(".clock.%d.%s", pid, token))
}

// UnclaimedDir holds data files that no commit claims, moved out of the
// dataset by the merge (never deleted but by merge-shards --gc), under
// their original paths.
const UnclaimedDir = "_shards/unclaimed"

// Unclaimed returns where the merge keeps a stray file found at rel.
func Unclaimed(rel string) string { return path.Join(UnclaimedDir, rel) }

// LinkDirs are the directories directly under OUT that may be symbolic
// links (to another disk, common on clusters): everything is read and
// written through them as if they were OUT's own. A symbolic link
// anywhere else under OUT is not part of the layout: the merge reports it
// and never writes, renames or removes through it.
var LinkDirs = [...]string{SimDir, TrainingDir, PolicyDir, CompactDir}

// trainingOutputs are the files the merge writes under TrainingDir.
var trainingOutputs = map[string]bool{
	ConvergenceFile:                       true,
	TimingIterationsFile:                  true,
	TimingMPIRanksFile:                    true,
	path.Join(TrainingDir, MetadataName):  true,
	path.Join(TrainingDir, ManifestName):  true,
	path.Join(TrainingDir, SuccessName):   true,
	path.Join(DictDir, DictCodesName):     true,
	path.Join(DictDir, DictEntitiesName):  true,
	path.Join(DictDir, DictVariablesName): true,
	path.Join(DictDir, DictBoundsName):    true,
	path.Join(DictDir, DictStateName):     true,
}

// IsTrainingOutput reports whether rel (relative to OUT) is one of the
// files the merge writes under TrainingDir: any other file there is not
// the merge's, and a .parquet among them would be read by a table glob.
func IsTrainingOutput(rel string) bool { return trainingOutputs[rel] }

// The compacted tree (merge-shards compact): a complete study's simulation
// tables as a few large files per table, scenario_id a column, beside
// (or, after compact --replace, instead of) the partition tree.
const (
	// CompactDir holds CompactDir/<entity>/part-NNNNN.parquet and the
	// compaction's manifest. Only part files sit under an entity
	// directory, so the glob compacted/<entity>/*.parquet reads exactly
	// the table (temp files live under TempDir).
	CompactDir = "compacted"
	// CompactManifestFile is written last: compacted files without it
	// are an interrupted compaction, which no reader may use.
	CompactManifestFile = CompactDir + "/" + ManifestName
	// compactPartDigits is the zero padding of a part number.
	compactPartDigits = 5
	// MaxCompactParts bounds a part number (and so an entity's parts).
	MaxCompactParts = 99999
)

// CompactPart returns the path of an entity table's n-th compacted file:
// compacted/hydros/part-00000.parquet.
func CompactPart(entity string, n int) string {
	return path.Join(CompactDir, entity, fmt.Sprintf("part-%0*d.parquet", compactPartDigits, n))
}

// ParseCompactPart parses a path made by CompactPart (canonical form
// only), as read from a compaction manifest.
func ParseCompactPart(rel string) (entity string, n int, err error) {
	if err := Check(rel); err != nil {
		return "", 0, err
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	entity, ok := strings.CutPrefix(dir, CompactDir+"/")
	if !ok {
		return "", 0, nameErr("compacted file", rel, "want %s/<entity>/part-NNNNN.parquet", CompactDir)
	}
	if err := checkEntity(entity); err != nil {
		return "", 0, nameErr("compacted file", rel, "%v", err)
	}
	num, ok := strings.CutPrefix(base, "part-")
	num, ok2 := strings.CutSuffix(num, ".parquet")
	n, ok3 := parseUint(num, compactPartDigits, true)
	if !ok || !ok2 || !ok3 || len(num) != compactPartDigits {
		return "", 0, nameErr("compacted file", rel, "want part-NNNNN.parquet (5 digits)")
	}
	return entity, n, nil
}

// CompactTag begins the name of every compaction temp file.
const CompactTag = "compact"

// CompactTemp is the temp file a compacted file (or the compaction
// manifest) is written to before it is published: directly in TempDir, so
// that a merge removes it as garbage if a crash leaves it there. pid and
// seq make it unique among the compaction's own temps; the merge lock
// keeps other compactions out.
func CompactTemp(pid, seq int, final string) string {
	tag := strings.ReplaceAll(strings.TrimPrefix(final, CompactDir+"/"), "/", "-")
	return path.Join(TempDir, fmt.Sprintf("%s.%d.%d.%s%s", CompactTag, pid, seq, tag, TempSuffix))
}
