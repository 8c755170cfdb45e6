// Identity detection is strict on purpose: two ranks that both believe they
// are rank 0 silently overwrite each other's shards, and a rank that believes
// the world is smaller than it is leaves scenarios unwritten. So everything
// here fails loudly, naming the environment variable that was wrong, instead
// of falling back to a default.

package rank

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Launcher names recorded in Identity.Launcher. They are plain strings rather
// than a dedicated type so that logs and manifests can carry them verbatim.
const (
	launcherOpenMPI  = "openmpi"
	launcherPMI      = "pmi"
	launcherPMIx     = "pmix"
	launcherSLURM    = "slurm"
	launcherExplicit = "explicit"
)

// Identity says who a rank is.
//
// It is a plain value so it can be logged, compared in tests and written into
// shard manifests; Validate is the single place that decides whether a
// hand-built Identity is usable.
type Identity struct {
	// Rank is this process's index in [0, World).
	Rank int
	// World is the number of cooperating processes; every rank must agree on it
	// or scenario ownership will overlap or leave gaps.
	World int
	// LocalRank is the index among processes on the same host; it lets callers
	// spread per-node work (scratch files, threads) without collisions.
	LocalRank int
	// Host is SLURMD_NODENAME when known (it matches what sacct reports), else
	// os.Hostname(); empty only if the hostname could not be read.
	Host string
	// JobID is SLURM_JOB_ID when known, else "". It is kept as text because
	// it is only ever used to label output, never computed with.
	JobID string
	// Attempt is SLURM_RESTART_COUNT (0 on the first run), else 0. A requeued
	// job reuses its JobID, so this is what tells a retry's output apart.
	Attempt int
	// Launcher records which environment the identity came from: "openmpi",
	// "pmi", "pmix", "slurm" or "explicit". When ranks disagree, this is the
	// first thing to check.
	Launcher string
}

// IdentityError reports an environment (or explicit value) that does not
// describe a usable rank. Its message speaks to the program embedding this
// package (set the launcher's environment, or use Explicit): it knows no
// command-line flags. It is a distinct type so that a command can, for
// example, react to "no launcher found" (Var "") by naming its own flags
// (simrank's --rank/--world) while treating a malformed variable as fatal.
type IdentityError struct {
	// Var is the offending variable (or field, for Explicit and Validate). It
	// is "" when no launcher environment was found at all.
	Var string
	// Value is the text the variable held, exactly as read.
	Value string
	// Want describes what would have been acceptable.
	Want string

	// problem is the middle of the message ("is not an integer", "is out of
	// range for X=4"); it is unexported because callers should branch on Var,
	// not on prose.
	problem string
	// unset means Var was missing, so there is no value to show.
	unset bool
}

// Error renders the problem so that an operator reading a job log can fix the
// launch without reading code: it names the variable and the value it held.
func (e *IdentityError) Error() string {
	var b strings.Builder
	b.WriteString("rank identity: ")
	if e.Var == "" {
		// Nothing to point at, so the advice is phrased as an instruction.
		if e.problem != "" {
			b.WriteString(e.problem)
		} else {
			b.WriteString("invalid identity")
		}
		if e.Want != "" {
			b.WriteString("; ")
			b.WriteString(e.Want)
		}
		return b.String()
	}
	b.WriteString(e.Var)
	if !e.unset {
		b.WriteString("=")
		b.WriteString(quoteValue(e.Value))
	}
	b.WriteString(" ")
	if e.problem != "" {
		b.WriteString(e.problem)
	} else {
		b.WriteString("is invalid")
	}
	if e.Want != "" {
		b.WriteString(" (want ")
		b.WriteString(e.Want)
		b.WriteString(")")
	}
	return b.String()
}

// quoteValue leaves integers bare, which reads naturally ("RANK=4"), and quotes
// everything else so that empty strings and stray whitespace are visible.
func quoteValue(v string) string {
	if _, err := strconv.Atoi(v); err == nil {
		return v
	}
	return strconv.Quote(v)
}

func identityErr(name, value, problem, want string) *IdentityError {
	return &IdentityError{Var: name, Value: value, Want: want, problem: problem}
}

// envReader wraps the lookup function so that every read of a variable goes
// through one place that produces the standard errors.
type envReader struct {
	lookup func(string) (string, bool)
}

func (r envReader) has(name string) bool {
	_, ok := r.lookup(name)
	return ok
}

// index reads name as an integer >= 0 (a rank, local rank or restart
// count). ok is false when the variable is absent, which callers decide
// whether to tolerate. A present but empty variable is an error, not
// "absent": something set it, and guessing what it meant is how two ranks end
// up writing the same shard.
func (r envReader) index(name string) (n int, ok bool, err error) {
	v, ok := r.lookup(name)
	if !ok {
		return 0, false, nil
	}
	n, err = atoi(name, v, "a non-negative integer")
	if err == nil && n < 0 {
		err = identityErr(name, v, "is negative", "a non-negative integer")
	}
	return n, true, err
}

// size reads name as a world size, which must be at least 1: a zero world
// would make every rank out of range and ownership undefined.
func (r envReader) size(name string) (n int, ok bool, err error) {
	v, ok := r.lookup(name)
	if !ok {
		return 0, false, nil
	}
	n, err = atoi(name, v, "a positive integer")
	if err == nil && n < 1 {
		err = identityErr(name, v, "is not a usable world size", "a positive integer")
	}
	return n, true, err
}

func atoi(name, v, want string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, identityErr(name, v, "is not an integer", want)
	}
	return n, nil
}

// requiredSize reads a world size that must accompany a rank variable; its
// absence is reported in terms of that rank variable, because that is what
// tells the operator which launcher was detected.
func (r envReader) requiredSize(name, because string) (int, error) {
	n, ok, err := r.size(name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, &IdentityError{
			Var:     name,
			problem: fmt.Sprintf("is not set, but %s is", because),
			Want:    "a positive integer",
			unset:   true,
		}
	}
	return n, nil
}

// checkInRange rejects an index that cannot exist in a world of the given
// size; it names both variables because either may be the wrong one.
func checkInRange(name string, v int, worldName string, world int) error {
	if v >= world {
		return identityErr(name, strconv.Itoa(v),
			fmt.Sprintf("is out of range for %s=%d", worldName, world),
			fmt.Sprintf("0..%d", world-1))
	}
	return nil
}

// source names one launcher's variables so that OpenMPI, PMI and SLURM,
// which differ only in naming, share a single reader.
type source struct {
	launcher string
	rankVar  string
	sizeVar  string
	localVar string // optional; "" if the launcher has none
}

var (
	srcOpenMPI = source{launcherOpenMPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"}
	srcPMI     = source{launcherPMI, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"}
	srcSLURM   = source{launcherSLURM, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}
)

// DetectIdentity works out this process's identity from the launcher's
// environment. env is os.LookupEnv in production; it is a parameter so tests
// (and wrappers that sanitise the environment) can supply their own.
//
// Launchers are tried in the order OpenMPI, PMI, PMIx, SLURM, and the first
// whose rank variable is present wins. The order matters: inside a SLURM
// allocation every process started by mpirun also inherits SLURM_PROCID=0, so
// trusting SLURM first would make every rank think it is rank 0. SLURM
// values that disagree with MPI's are not an error: an allocation of 8 tasks
// running "mpirun -np 4", or a multi-node mpirun whose daemons srun started,
// legitimately shows SLURM_NTASKS different from the MPI world size.
//
// If no launcher variables are present it returns an *IdentityError with an
// empty Var rather than assuming rank 0, because a single-process default
// would silently make every process of a misconfigured run write the same
// shard.
func DetectIdentity(env func(string) (string, bool)) (Identity, error) {
	r := envReader{lookup: env}
	var (
		id  Identity
		err error
	)
	switch {
	case r.has(srcOpenMPI.rankVar):
		id, err = fromSource(r, srcOpenMPI)
		if err == nil {
			err = checkOMPIvsPMI(r, id)
		}
	case r.has(srcPMI.rankVar):
		id, err = fromSource(r, srcPMI)
	case r.has("PMIX_RANK"):
		id, err = fromPMIx(r)
	case r.has(srcSLURM.rankVar):
		id, err = fromSource(r, srcSLURM)
	default:
		return Identity{}, &IdentityError{
			problem: "no launcher environment found (none of OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK, SLURM_PROCID is set)",
			Want:    "set the launcher's environment (launch the rank under srun or mpirun) or use rank.Explicit(rank, world)",
		}
	}
	if err != nil {
		return Identity{}, err
	}
	if err := fillJob(r, &id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// fromSource reads a launcher that provides rank, size and (optionally) local
// rank under its own names.
func fromSource(r envReader, s source) (Identity, error) {
	rank, _, err := r.index(s.rankVar)
	if err != nil {
		return Identity{}, err
	}
	world, err := r.requiredSize(s.sizeVar, s.rankVar)
	if err != nil {
		return Identity{}, err
	}
	local, _, err := r.index(s.localVar)
	if err != nil {
		return Identity{}, err
	}
	if err := checkRankWorld(s.rankVar, rank, s.localVar, local, s.sizeVar, world); err != nil {
		return Identity{}, err
	}
	return Identity{Rank: rank, World: world, LocalRank: local, Launcher: s.launcher}, nil
}

// fromPMIx handles PMIx, which (unlike the others) does not publish the world
// size in the environment. Borrowing the size from whichever other launcher
// variable exists is the best that can be done without linking a PMIx client;
// the local rank is taken from the same family so the two stay consistent.
func fromPMIx(r envReader) (Identity, error) {
	const rankVar = "PMIX_RANK"
	rank, _, err := r.index(rankVar)
	if err != nil {
		return Identity{}, err
	}
	var fam *source
	for _, s := range []*source{&srcOpenMPI, &srcPMI, &srcSLURM} {
		if r.has(s.sizeVar) {
			fam = s
			break
		}
	}
	if fam == nil {
		v, _ := r.lookup(rankVar)
		return Identity{}, identityErr(rankVar, v,
			"is set but the world size is unknown (PMIx does not export it)",
			"one of OMPI_COMM_WORLD_SIZE, PMI_SIZE or SLURM_NTASKS set by the launcher, or use rank.Explicit(rank, world)")
	}
	world, _, err := r.size(fam.sizeVar)
	if err != nil {
		return Identity{}, err
	}
	local, _, err := r.index(fam.localVar)
	if err != nil {
		return Identity{}, err
	}
	if err := checkRankWorld(rankVar, rank, fam.localVar, local, fam.sizeVar, world); err != nil {
		return Identity{}, err
	}
	return Identity{Rank: rank, World: world, LocalRank: local, Launcher: launcherPMIx}, nil
}

func checkRankWorld(rankVar string, rank int, localVar string, local int, sizeVar string, world int) error {
	if err := checkInRange(rankVar, rank, sizeVar, world); err != nil {
		return err
	}
	return checkInRange(localVar, local, sizeVar, world)
}

// checkOMPIvsPMI rejects an environment where OpenMPI and PMI variables both
// exist but describe different processes: one of them is stale (inherited
// from an outer launcher) and there is no safe way to tell which.
func checkOMPIvsPMI(r envReader, id Identity) error {
	pairs := []struct {
		pmiVar, ompiVar string
		ompi            int
		read            func(string) (int, bool, error)
	}{
		{"PMI_RANK", "OMPI_COMM_WORLD_RANK", id.Rank, r.index},
		{"PMI_SIZE", "OMPI_COMM_WORLD_SIZE", id.World, r.size},
	}
	for _, p := range pairs {
		v, ok, err := p.read(p.pmiVar)
		if err != nil {
			return err
		}
		if ok && v != p.ompi {
			return identityErr(p.pmiVar, strconv.Itoa(v),
				fmt.Sprintf("disagrees with %s=%d", p.ompiVar, p.ompi),
				fmt.Sprintf("%s to equal %s, or only one launcher's variables in the environment", p.pmiVar, p.ompiVar))
		}
	}
	return nil
}

// fillJob attaches the SLURM job context, which is meaningful whichever
// launcher started the process (mpirun inside sbatch is still a SLURM job).
func fillJob(r envReader, id *Identity) error {
	if v, ok := r.lookup("SLURM_JOB_ID"); ok {
		id.JobID = v
	}
	attempt, _, err := r.index("SLURM_RESTART_COUNT")
	if err != nil {
		return err
	}
	id.Attempt = attempt
	if v, ok := r.lookup("SLURMD_NODENAME"); ok && v != "" {
		id.Host = v
	} else {
		id.Host = hostname()
	}
	return nil
}

// hostname is informational only, so an unreadable hostname is not worth
// failing a run over; it is left empty instead.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// Explicit builds an identity from values the user supplied (e.g. --rank and
// --world), for launchers this package does not recognise. It deliberately
// reads no environment so that explicit flags always mean exactly what they
// say; LocalRank is 0 because nothing is known about co-located processes.
func Explicit(rank, world int) (Identity, error) {
	id := Identity{Rank: rank, World: world, Host: hostname(), Launcher: launcherExplicit}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// Validate reports whether id can safely drive scenario ownership. It exists
// for identities built by hand or decoded from a manifest, which did not pass
// through DetectIdentity's checks. Errors name the struct field in Var.
func (id Identity) Validate() error {
	if id.World < 1 {
		return identityErr("World", strconv.Itoa(id.World), "is not a usable world size", "at least 1")
	}
	if id.Rank < 0 {
		return identityErr("Rank", strconv.Itoa(id.Rank), "is negative", fmt.Sprintf("0..%d", id.World-1))
	}
	if err := checkInRange("Rank", id.Rank, "World", id.World); err != nil {
		return err
	}
	if id.LocalRank < 0 {
		return identityErr("LocalRank", strconv.Itoa(id.LocalRank), "is negative", fmt.Sprintf("0..%d", id.World-1))
	}
	if err := checkInRange("LocalRank", id.LocalRank, "World", id.World); err != nil {
		return err
	}
	if id.Attempt < 0 {
		return identityErr("Attempt", strconv.Itoa(id.Attempt), "is negative", "a non-negative integer")
	}
	return nil
}

// String gives a one-line description for logs, e.g.
// "rank 3/8 (slurm job 1234, attempt 0, host n01)". The launcher is shown
// first unless it is SLURM and a job id is shown, where it would be redundant;
// seeing "openmpi" or "explicit" there is what exposes a mis-detected launch.
func (id Identity) String() string {
	var parts []string
	if id.Launcher != "" && !(id.Launcher == launcherSLURM && id.JobID != "") {
		parts = append(parts, id.Launcher)
	}
	if id.JobID != "" {
		parts = append(parts, fmt.Sprintf("slurm job %s, attempt %d", id.JobID, id.Attempt))
	}
	if id.Host != "" {
		parts = append(parts, "host "+id.Host)
	}
	s := fmt.Sprintf("rank %d/%d", id.Rank, id.World)
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}
