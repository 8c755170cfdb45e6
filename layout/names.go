package layout

import (
	"encoding/hex"
	"fmt"
	"path"
	"strings"
)

// TrainingTag marks the writer ids (and journals) of training writers, so
// the simulation and training phases of one attempt never share a file.
const TrainingTag = "training"

// MergeTag marks the writer id of a merge's own journal (revocations).
const MergeTag = "merge"

// TokenLen is the number of hex digits of a writer id's random token.
const TokenLen = 12

// MaxJobLen is the longest job element of a writer id; SanitizeJob cuts a
// longer job id (the random token keeps writer ids apart).
const MaxJobLen = 64

// WriterID names one writer: one rank's one phase of one attempt of a job.
// Its string form, job-<job>.rank-<rrrrr>.attempt-<a>[.training].<token>,
// is the journal's base name and prefixes the writer's temp files.
type WriterID struct {
	Job     string // the launcher's job id, "local" without one
	Rank    int
	Attempt int
	Tag     string // "" (simulation) or TrainingTag
	Token   string // TokenLen lowercase hex digits
}

// SanitizeJob maps a launcher's job id to the job element of a writer id:
// every byte outside letters, digits, '_' and '-' becomes '_' (SLURM array
// jobs are 123_4 already), an empty id is "local", and the result is cut
// to MaxJobLen bytes.
func SanitizeJob(job string) string {
	if job == "" {
		return "local"
	}
	b := []byte(job[:min(len(job), MaxJobLen)])
	for i, c := range b {
		if !safeElem(string(c)) {
			b[i] = '_'
		}
	}
	return string(b)
}

// NewWriterID makes a writer id from its parts; token is the raw random
// bytes (TokenLen/2 of them).
func NewWriterID(job string, rank, attempt int, tag string, token []byte) WriterID {
	return WriterID{Job: SanitizeJob(job), Rank: rank, Attempt: attempt, Tag: tag, Token: hex.EncodeToString(token)}
}

func (w WriterID) String() string {
	tag := ""
	if w.Tag != "" {
		tag = w.Tag + "."
	}
	return fmt.Sprintf("job-%s.rank-%05d.attempt-%d.%s%s", w.Job, w.Rank, w.Attempt, tag, w.Token)
}

// ParseWriterID parses a writer id made by WriterID.String.
func ParseWriterID(s string) (WriterID, error) {
	bad := func(why string) (WriterID, error) { return WriterID{}, nameErr("writer id", s, "%s", why) }
	parts := strings.Split(s, ".")
	if len(parts) != 4 && len(parts) != 5 {
		return bad("want job-<job>.rank-<r>.attempt-<a>[.training].<token>")
	}
	var w WriterID
	var ok bool
	if w.Job, ok = strings.CutPrefix(parts[0], "job-"); !ok || !safeElem(w.Job) || len(w.Job) > MaxJobLen {
		return bad("bad job element")
	}
	r, ok := strings.CutPrefix(parts[1], "rank-")
	if w.Rank, ok = parseUintOK(r, ok, 9); !ok || len(r) < 5 {
		return bad("bad rank element")
	}
	a, ok := strings.CutPrefix(parts[2], "attempt-")
	if w.Attempt, ok = parseUintOK(a, ok, 9); !ok {
		return bad("bad attempt element")
	}
	if len(parts) == 5 {
		if parts[3] != TrainingTag && parts[3] != MergeTag {
			return bad("unknown tag")
		}
		w.Tag = parts[3]
	}
	w.Token = parts[len(parts)-1]
	if len(w.Token) != TokenLen || strings.ToLower(w.Token) != w.Token {
		return bad("bad token")
	}
	if _, err := hex.DecodeString(w.Token); err != nil {
		return bad("bad token")
	}
	if w.String() != s {
		return bad("not in canonical form")
	}
	return w, nil
}

func parseUintOK(s string, ok bool, digits int) (int, bool) {
	if !ok {
		return 0, false
	}
	return parseUint(s, digits, true)
}

// Journal returns the path of a writer's journal.
func Journal(writer string) string { return path.Join(JournalDir, writer+JournalSuffix) }

// IsJournalName reports whether a base name found in JournalDir is a
// journal's (ends in JournalSuffix); ParseJournalName says whether it is a
// well-formed one.
func IsJournalName(name string) bool { return strings.HasSuffix(name, JournalSuffix) }

// ParseJournalName parses a journal's base name into its writer id.
func ParseJournalName(name string) (WriterID, error) {
	id, ok := strings.CutSuffix(name, JournalSuffix)
	if !ok {
		return WriterID{}, nameErr("journal", name, "want <writer>%s", JournalSuffix)
	}
	return ParseWriterID(id)
}

// entityTag flattens an entity table name for a temp file name.
func entityTag(entity string) string { return strings.ReplaceAll(entity, "/", "-") }

// SimTemp is the temp file of a scenario's entity table.
func SimTemp(writer string, scenario int, entity string) string {
	return path.Join(TempDir, fmt.Sprintf("%s.s%d.%s%s", writer, scenario, entityTag(entity), TempSuffix))
}

// CheckpointTemp is the temp file of a checkpoint fragment.
func CheckpointTemp(writer string, iteration int, kind string, stage int) string {
	return path.Join(TempDir, fmt.Sprintf("%s.ckpt%d.%s_stage_%03d%s", writer, iteration, kind, stage, TempSuffix))
}

// MergeTemp is where the merge stages an output file before renaming it
// into place: pid and a sequence number keep concurrent stages apart.
func MergeTemp(pid, seq int, final string) string {
	return path.Join(TempDir, fmt.Sprintf("merge.%d.%d.%s%s", pid, seq, path.Base(final), TempSuffix))
}

// IsTempName reports whether a base name found in TempDir is a temp
// file's.
func IsTempName(name string) bool { return strings.HasSuffix(name, TempSuffix) && safeTempName(name) }

// CheckTemp reports whether rel is a temp file path: directly in TempDir,
// ending in TempSuffix, made of safe bytes.
func CheckTemp(rel string) error {
	if err := Check(rel); err != nil {
		return err
	}
	dir, name := path.Split(rel)
	if dir != TempDir+"/" || !IsTempName(name) {
		return nameErr("temp file", rel, "want %s/<name>%s", TempDir, TempSuffix)
	}
	return nil
}

func safeTempName(name string) bool {
	for _, e := range strings.Split(name, ".") {
		if e != "" && !safeElem(e) {
			return false
		}
	}
	return !strings.HasPrefix(name, ".")
}

// ReplaceTemp is the temp file beside final that a replace-in-place
// (policy pack/unpack) writes first: a dot name, so no glob of stage
// files picks it up.
func ReplaceTemp(final string) string {
	dir, base := path.Split(final)
	return dir + "." + base + TempSuffix
}
