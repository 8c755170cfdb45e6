package manifest

// RecordRevoke is the record type of a revocation, written by
// `merge-shards --requeue-lost` in a journal of the merge's own (phase
// PhaseMerge): the commits it names are void, because a file they
// committed was lost or damaged after the commit. A rank that resumes
// treats a scenario whose every commit is revoked as not committed and
// writes it again; the merge ignores revoked commits.
const RecordRevoke = "revoke"

// PhaseMerge is the phase of a merge's own journal.
const PhaseMerge = "merge"

// RevokeInfo voids the named commits of one scenario.
type RevokeInfo struct {
	Scenario int         `json:"scenario"`
	Commits  []CommitRef `json:"commits"`
	// Reason says what was wrong ("simulation/hydros/scenario_id=7/
	// data.parquet: missing").
	Reason string `json:"reason"`
	// Moved lists the damaged copies moved aside (relative paths, under
	// _shards/superseded/), so nothing committed is ever deleted.
	Moved []string `json:"moved,omitempty"`
}

// CommitRef names one commit record: its writer and sequence number.
type CommitRef struct {
	Writer string `json:"writer"`
	Seq    int64  `json:"seq"`
}
