package rank_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hydroshard/hydroshard/rank"
)

// envOf turns a map into the lookup function DetectIdentity takes, so tests
// never depend on (or disturb) the real process environment.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func osHostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatalf("os.Hostname: %v", err)
	}
	return h
}

func TestDetectIdentity(t *testing.T) {
	host := osHostname(t)
	tests := []struct {
		name string
		env  map[string]string
		want rank.Identity // Host "" means "expect os.Hostname()"
	}{
		// Each launcher on its own.
		{
			name: "openmpi",
			env:  map[string]string{"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "1"},
			want: rank.Identity{Rank: 3, World: 8, LocalRank: 1, Launcher: "openmpi"},
		},
		{
			name: "openmpi without local rank defaults to 0",
			env:  map[string]string{"OMPI_COMM_WORLD_RANK": "7", "OMPI_COMM_WORLD_SIZE": "8"},
			want: rank.Identity{Rank: 7, World: 8, LocalRank: 0, Launcher: "openmpi"},
		},
		{
			name: "openmpi single process",
			env:  map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"},
			want: rank.Identity{Rank: 0, World: 1, Launcher: "openmpi"},
		},
		{
			name: "pmi",
			env:  map[string]string{"PMI_RANK": "2", "PMI_SIZE": "4", "MPI_LOCALRANKID": "2"},
			want: rank.Identity{Rank: 2, World: 4, LocalRank: 2, Launcher: "pmi"},
		},
		{
			name: "pmi without MPI_LOCALRANKID defaults to 0",
			env:  map[string]string{"PMI_RANK": "3", "PMI_SIZE": "4"},
			want: rank.Identity{Rank: 3, World: 4, LocalRank: 0, Launcher: "pmi"},
		},
		{
			name: "pmix borrows OMPI_COMM_WORLD_SIZE and its local rank",
			env:  map[string]string{"PMIX_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1"},
			want: rank.Identity{Rank: 1, World: 4, LocalRank: 1, Launcher: "pmix"},
		},
		{
			name: "pmix borrows PMI_SIZE and MPI_LOCALRANKID",
			env:  map[string]string{"PMIX_RANK": "5", "PMI_SIZE": "6", "MPI_LOCALRANKID": "2"},
			want: rank.Identity{Rank: 5, World: 6, LocalRank: 2, Launcher: "pmix"},
		},
		{
			name: "pmix borrows SLURM_NTASKS and SLURM_LOCALID",
			env:  map[string]string{"PMIX_RANK": "2", "SLURM_NTASKS": "3", "SLURM_LOCALID": "1"},
			want: rank.Identity{Rank: 2, World: 3, LocalRank: 1, Launcher: "pmix"},
		},
		{
			name: "pmix size source order: OMPI before PMI before SLURM",
			env:  map[string]string{"PMIX_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "PMI_SIZE": "6", "SLURM_NTASKS": "8"},
			want: rank.Identity{Rank: 1, World: 4, Launcher: "pmix"},
		},
		{
			name: "pmix size source order: PMI before SLURM",
			env:  map[string]string{"PMIX_RANK": "5", "PMI_SIZE": "6", "SLURM_NTASKS": "8", "SLURM_LOCALID": "3"},
			want: rank.Identity{Rank: 5, World: 6, LocalRank: 0, Launcher: "pmix"},
		},
		{
			name: "slurm",
			env:  map[string]string{"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"},
			want: rank.Identity{Rank: 5, World: 8, LocalRank: 1, Launcher: "slurm"},
		},
		{
			name: "slurm without SLURM_LOCALID defaults to 0",
			env:  map[string]string{"SLURM_PROCID": "1", "SLURM_NTASKS": "2"},
			want: rank.Identity{Rank: 1, World: 2, Launcher: "slurm"},
		},

		// Precedence.
		{
			name: "openmpi beats pmi, pmix and slurm",
			env: map[string]string{
				"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
				"PMI_RANK": "1", "PMI_SIZE": "4", "MPI_LOCALRANKID": "3",
				"PMIX_RANK":    "1",
				"SLURM_PROCID": "1", "SLURM_NTASKS": "4", "SLURM_LOCALID": "2",
			},
			want: rank.Identity{Rank: 1, World: 4, LocalRank: 1, Launcher: "openmpi"},
		},
		{
			name: "pmi beats pmix and slurm (srun --mpi=pmi2 sets both consistently)",
			env: map[string]string{
				"PMI_RANK": "2", "PMI_SIZE": "4", "MPI_LOCALRANKID": "0",
				"PMIX_RANK":    "2",
				"SLURM_PROCID": "2", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1",
			},
			want: rank.Identity{Rank: 2, World: 4, LocalRank: 0, Launcher: "pmi"},
		},
		{
			name: "pmix beats slurm",
			env:  map[string]string{"PMIX_RANK": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "4"},
			want: rank.Identity{Rank: 2, World: 4, Launcher: "pmix"},
		},
		{
			name: "mpirun inside single-task sbatch: OMPI wins over SLURM_PROCID=0",
			env: map[string]string{
				"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "3",
				"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0",
			},
			want: rank.Identity{Rank: 3, World: 4, LocalRank: 3, Launcher: "openmpi"},
		},
		{
			name: "mpiexec (PMI) inside single-task sbatch: PMI wins over SLURM_PROCID=0",
			env:  map[string]string{"PMI_RANK": "2", "PMI_SIZE": "4", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
			want: rank.Identity{Rank: 2, World: 4, Launcher: "pmi"},
		},
		{
			name: "mpirun -np 4 inside an 8-task allocation: MPI wins over SLURM_NTASKS",
			env:  map[string]string{"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "SLURM_PROCID": "0", "SLURM_NTASKS": "8"},
			want: rank.Identity{Rank: 2, World: 4, Launcher: "openmpi"},
		},
		{
			name: "openmpi agreeing with a multi-task slurm step",
			env:  map[string]string{"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "SLURM_PROCID": "3", "SLURM_NTASKS": "4"},
			want: rank.Identity{Rank: 3, World: 4, Launcher: "openmpi"},
		},

		// Job context.
		{
			name: "job id, attempt and node name from slurm",
			env: map[string]string{
				"SLURM_PROCID": "0", "SLURM_NTASKS": "2",
				"SLURM_JOB_ID": "1234", "SLURM_RESTART_COUNT": "2", "SLURMD_NODENAME": "n01",
			},
			want: rank.Identity{Rank: 0, World: 2, Launcher: "slurm", JobID: "1234", Attempt: 2, Host: "n01"},
		},
		{
			name: "job context applies to other launchers too",
			env: map[string]string{
				"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2",
				"SLURM_JOB_ID": "77", "SLURM_RESTART_COUNT": "0", "SLURMD_NODENAME": "gpu-07",
			},
			want: rank.Identity{Rank: 1, World: 2, Launcher: "openmpi", JobID: "77", Host: "gpu-07"},
		},
		{
			name: "no slurm job: empty job id, attempt 0, os hostname",
			env:  map[string]string{"PMI_RANK": "0", "PMI_SIZE": "1"},
			want: rank.Identity{Rank: 0, World: 1, Launcher: "pmi"},
		},
		{
			name: "empty SLURMD_NODENAME falls back to os hostname",
			env:  map[string]string{"PMI_RANK": "0", "PMI_SIZE": "1", "SLURMD_NODENAME": ""},
			want: rank.Identity{Rank: 0, World: 1, Launcher: "pmi"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rank.DetectIdentity(envOf(tc.env))
			if err != nil {
				t.Fatalf("DetectIdentity: unexpected error: %v", err)
			}
			want := tc.want
			if want.Host == "" {
				want.Host = host
			}
			if got != want {
				t.Errorf("DetectIdentity =\n  %+v\nwant\n  %+v", got, want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("detected identity does not validate: %v", err)
			}
		})
	}
}

func TestDetectIdentityErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantVal string
		want    []string // substrings of the message
		absent  []string // not in the message
	}{
		{
			name:    "no launcher",
			env:     map[string]string{},
			wantVar: "",
			want:    []string{"no launcher environment found", "set the launcher's environment", "rank.Explicit"},
			absent:  []string{"--rank", "--world"}, // flags of simrank, not of an embedding program
		},
		{
			name:    "only job variables (inside sbatch, not launched)",
			env:     map[string]string{"SLURM_JOB_ID": "1234", "SLURMD_NODENAME": "n01", "SLURM_NTASKS": "4"},
			wantVar: "",
			want:    []string{"no launcher environment found", "set the launcher's environment", "rank.Explicit"},
			absent:  []string{"--rank", "--world"}, // flags of simrank, not of an embedding program
		},

		// Malformed OpenMPI values.
		{
			name:    "OMPI rank not an integer",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "abc", "OMPI_COMM_WORLD_SIZE": "4"},
			wantVar: "OMPI_COMM_WORLD_RANK", wantVal: "abc",
			want: []string{`rank identity: OMPI_COMM_WORLD_RANK="abc" is not an integer`},
		},
		{
			name:    "OMPI rank empty",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "", "OMPI_COMM_WORLD_SIZE": "4"},
			wantVar: "OMPI_COMM_WORLD_RANK", wantVal: "",
			want: []string{`OMPI_COMM_WORLD_RANK="" is not an integer`},
		},
		{
			name:    "OMPI rank negative",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "-1", "OMPI_COMM_WORLD_SIZE": "4"},
			wantVar: "OMPI_COMM_WORLD_RANK", wantVal: "-1",
			want: []string{"OMPI_COMM_WORLD_RANK=-1 is negative"},
		},
		{
			name:    "OMPI rank out of range",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "4", "OMPI_COMM_WORLD_SIZE": "4"},
			wantVar: "OMPI_COMM_WORLD_RANK", wantVal: "4",
			want: []string{"rank identity: OMPI_COMM_WORLD_RANK=4 is out of range for OMPI_COMM_WORLD_SIZE=4 (want 0..3)"},
		},
		{
			name:    "OMPI size missing",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "0"},
			wantVar: "OMPI_COMM_WORLD_SIZE", wantVal: "",
			want: []string{"OMPI_COMM_WORLD_SIZE is not set", "OMPI_COMM_WORLD_RANK"},
		},
		{
			name:    "OMPI size zero",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "0"},
			wantVar: "OMPI_COMM_WORLD_SIZE", wantVal: "0",
			want: []string{"OMPI_COMM_WORLD_SIZE=0", "want a positive integer"},
		},
		{
			name:    "OMPI size negative",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "-3"},
			wantVar: "OMPI_COMM_WORLD_SIZE", wantVal: "-3",
			want: []string{"OMPI_COMM_WORLD_SIZE=-3", "want a positive integer"},
		},
		{
			name:    "OMPI size not an integer",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "4.0"},
			wantVar: "OMPI_COMM_WORLD_SIZE", wantVal: "4.0",
			want: []string{`OMPI_COMM_WORLD_SIZE="4.0" is not an integer`},
		},
		{
			name:    "OMPI local rank not an integer",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "x"},
			wantVar: "OMPI_COMM_WORLD_LOCAL_RANK", wantVal: "x",
			want: []string{`OMPI_COMM_WORLD_LOCAL_RANK="x" is not an integer`},
		},
		{
			name:    "OMPI local rank out of range",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "4"},
			wantVar: "OMPI_COMM_WORLD_LOCAL_RANK", wantVal: "4",
			want: []string{"OMPI_COMM_WORLD_LOCAL_RANK=4 is out of range for OMPI_COMM_WORLD_SIZE=4 (want 0..3)"},
		},

		// Malformed PMI values.
		{
			name:    "PMI rank not an integer",
			env:     map[string]string{"PMI_RANK": "abc", "PMI_SIZE": "4"},
			wantVar: "PMI_RANK", wantVal: "abc",
			want: []string{`rank identity: PMI_RANK="abc" is not an integer`},
		},
		{
			name:    "PMI size missing",
			env:     map[string]string{"PMI_RANK": "0"},
			wantVar: "PMI_SIZE", wantVal: "",
			want: []string{"PMI_SIZE is not set", "PMI_RANK"},
		},
		{
			name:    "PMI size empty",
			env:     map[string]string{"PMI_RANK": "0", "PMI_SIZE": ""},
			wantVar: "PMI_SIZE", wantVal: "",
			want: []string{`PMI_SIZE="" is not an integer`},
		},
		{
			name:    "PMI rank out of range",
			env:     map[string]string{"PMI_RANK": "5", "PMI_SIZE": "5"},
			wantVar: "PMI_RANK", wantVal: "5",
			want: []string{"PMI_RANK=5 is out of range for PMI_SIZE=5 (want 0..4)"},
		},
		{
			name:    "MPI_LOCALRANKID negative",
			env:     map[string]string{"PMI_RANK": "0", "PMI_SIZE": "2", "MPI_LOCALRANKID": "-1"},
			wantVar: "MPI_LOCALRANKID", wantVal: "-1",
			want: []string{"MPI_LOCALRANKID=-1 is negative"},
		},

		// PMIx.
		{
			name:    "PMIx with no world size anywhere",
			env:     map[string]string{"PMIX_RANK": "0"},
			wantVar: "PMIX_RANK", wantVal: "0",
			want:   []string{"PMIX_RANK=0", "world size is unknown", "set by the launcher", "rank.Explicit"},
			absent: []string{"--rank", "--world"},
		},
		{
			name:    "PMIx rank not an integer",
			env:     map[string]string{"PMIX_RANK": "one", "SLURM_NTASKS": "4"},
			wantVar: "PMIX_RANK", wantVal: "one",
			want: []string{`PMIX_RANK="one" is not an integer`},
		},
		{
			name:    "PMIx rank out of range of borrowed size",
			env:     map[string]string{"PMIX_RANK": "4", "SLURM_NTASKS": "4"},
			wantVar: "PMIX_RANK", wantVal: "4",
			want: []string{"PMIX_RANK=4 is out of range for SLURM_NTASKS=4 (want 0..3)"},
		},
		{
			name:    "PMIx borrowed size malformed",
			env:     map[string]string{"PMIX_RANK": "0", "PMI_SIZE": "many"},
			wantVar: "PMI_SIZE", wantVal: "many",
			want: []string{`PMI_SIZE="many" is not an integer`},
		},
		{
			name:    "PMIx borrowed local rank out of range",
			env:     map[string]string{"PMIX_RANK": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "2"},
			wantVar: "SLURM_LOCALID", wantVal: "2",
			want: []string{"SLURM_LOCALID=2 is out of range for SLURM_NTASKS=2 (want 0..1)"},
		},

		// Malformed SLURM values.
		{
			name:    "SLURM_PROCID not an integer",
			env:     map[string]string{"SLURM_PROCID": "0x1", "SLURM_NTASKS": "4"},
			wantVar: "SLURM_PROCID", wantVal: "0x1",
			want: []string{`SLURM_PROCID="0x1" is not an integer`},
		},
		{
			name:    "SLURM_NTASKS missing",
			env:     map[string]string{"SLURM_PROCID": "0"},
			wantVar: "SLURM_NTASKS", wantVal: "",
			want: []string{"SLURM_NTASKS is not set", "SLURM_PROCID"},
		},
		{
			name:    "SLURM_NTASKS zero",
			env:     map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "0"},
			wantVar: "SLURM_NTASKS", wantVal: "0",
			want: []string{"SLURM_NTASKS=0"},
		},
		{
			name:    "SLURM_PROCID out of range",
			env:     map[string]string{"SLURM_PROCID": "8", "SLURM_NTASKS": "8"},
			wantVar: "SLURM_PROCID", wantVal: "8",
			want: []string{"SLURM_PROCID=8 is out of range for SLURM_NTASKS=8 (want 0..7)"},
		},
		{
			name:    "SLURM_LOCALID out of range",
			env:     map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_LOCALID": "9"},
			wantVar: "SLURM_LOCALID", wantVal: "9",
			want: []string{"SLURM_LOCALID=9 is out of range for SLURM_NTASKS=8 (want 0..7)"},
		},
		{
			name:    "SLURM_RESTART_COUNT not an integer",
			env:     map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_RESTART_COUNT": "once"},
			wantVar: "SLURM_RESTART_COUNT", wantVal: "once",
			want: []string{`SLURM_RESTART_COUNT="once" is not an integer`},
		},
		{
			name:    "SLURM_RESTART_COUNT negative",
			env:     map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1", "SLURM_RESTART_COUNT": "-1"},
			wantVar: "SLURM_RESTART_COUNT", wantVal: "-1",
			want: []string{"SLURM_RESTART_COUNT=-1 is negative"},
		},

		// Contradictions.
		{
			name: "OMPI and PMI disagree on rank",
			env: map[string]string{
				"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4",
				"PMI_RANK": "2", "PMI_SIZE": "4",
			},
			wantVar: "PMI_RANK", wantVal: "2",
			want: []string{"PMI_RANK=2", "OMPI_COMM_WORLD_RANK=1"},
		},
		{
			name: "OMPI and PMI disagree on size",
			env: map[string]string{
				"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4",
				"PMI_RANK": "1", "PMI_SIZE": "8",
			},
			wantVar: "PMI_SIZE", wantVal: "8",
			want: []string{"PMI_SIZE=8", "OMPI_COMM_WORLD_SIZE=4"},
		},
		{
			name: "malformed PMI_RANK alongside OMPI is not ignored",
			env: map[string]string{
				"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4",
				"PMI_RANK": "x",
			},
			wantVar: "PMI_RANK", wantVal: "x",
			want: []string{`PMI_RANK="x" is not an integer`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rank.DetectIdentity(envOf(tc.env))
			if err == nil {
				t.Fatalf("DetectIdentity = %+v, want an error", got)
			}
			if got != (rank.Identity{}) {
				t.Errorf("DetectIdentity returned %+v alongside an error, want the zero Identity", got)
			}
			var ie *rank.IdentityError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is not an *IdentityError", err, err)
			}
			if ie.Var != tc.wantVar {
				t.Errorf("IdentityError.Var = %q, want %q (error: %v)", ie.Var, tc.wantVar, err)
			}
			if ie.Value != tc.wantVal {
				t.Errorf("IdentityError.Value = %q, want %q (error: %v)", ie.Value, tc.wantVal, err)
			}
			if ie.Want == "" {
				t.Errorf("IdentityError.Want is empty (error: %v)", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "rank identity: ") {
				t.Errorf("error %q lacks the \"rank identity: \" prefix", msg)
			}
			if tc.wantVar != "" && !strings.Contains(msg, tc.wantVar) {
				t.Errorf("error %q does not name %s", msg, tc.wantVar)
			}
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains %q", msg, s)
				}
			}
		})
	}
}

func TestExplicit(t *testing.T) {
	// Explicit must not read the environment: flags mean exactly what they say.
	t.Setenv("SLURM_JOB_ID", "999")
	t.Setenv("SLURM_RESTART_COUNT", "4")
	t.Setenv("SLURMD_NODENAME", "not-this-one")
	host := osHostname(t)

	got, err := rank.Explicit(3, 8)
	if err != nil {
		t.Fatalf("Explicit(3, 8): %v", err)
	}
	want := rank.Identity{Rank: 3, World: 8, LocalRank: 0, Host: host, Launcher: "explicit"}
	if got != want {
		t.Errorf("Explicit(3, 8) = %+v, want %+v", got, want)
	}

	bad := []struct {
		rank, world int
		wantVar     string
		want        string
	}{
		{-1, 4, "Rank", "Rank=-1 is negative"},
		{4, 4, "Rank", "Rank=4 is out of range for World=4 (want 0..3)"},
		{0, 0, "World", "World=0"},
		{0, -2, "World", "World=-2"},
	}
	for _, tc := range bad {
		t.Run(fmt.Sprintf("rank=%d,world=%d", tc.rank, tc.world), func(t *testing.T) {
			got, err := rank.Explicit(tc.rank, tc.world)
			if err == nil {
				t.Fatalf("Explicit = %+v, want an error", got)
			}
			var ie *rank.IdentityError
			if !errors.As(err, &ie) || ie.Var != tc.wantVar {
				t.Fatalf("error %v: want *IdentityError with Var %q", err, tc.wantVar)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := rank.Identity{Rank: 1, World: 2, LocalRank: 1, Attempt: 3, Launcher: "slurm"}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v, want nil", ok, err)
	}
	tests := []struct {
		name    string
		id      rank.Identity
		wantVar string
	}{
		{"zero value", rank.Identity{}, "World"},
		{"negative rank", rank.Identity{Rank: -1, World: 2}, "Rank"},
		{"rank = world", rank.Identity{Rank: 2, World: 2}, "Rank"},
		{"negative local rank", rank.Identity{World: 2, LocalRank: -1}, "LocalRank"},
		{"local rank = world", rank.Identity{World: 2, LocalRank: 2}, "LocalRank"},
		{"negative attempt", rank.Identity{World: 2, Attempt: -1}, "Attempt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.Validate()
			var ie *rank.IdentityError
			if !errors.As(err, &ie) {
				t.Fatalf("Validate(%+v) = %v, want an *IdentityError", tc.id, err)
			}
			if ie.Var != tc.wantVar {
				t.Errorf("Var = %q, want %q (error: %v)", ie.Var, tc.wantVar, err)
			}
		})
	}
}

func TestIdentityString(t *testing.T) {
	tests := []struct {
		id   rank.Identity
		want string
	}{
		{
			rank.Identity{Rank: 3, World: 8, Host: "n01", JobID: "1234", Launcher: "slurm"},
			"rank 3/8 (slurm job 1234, attempt 0, host n01)",
		},
		{
			rank.Identity{Rank: 0, World: 4, Host: "n02", JobID: "1234", Attempt: 1, Launcher: "openmpi"},
			"rank 0/4 (openmpi, slurm job 1234, attempt 1, host n02)",
		},
		{
			rank.Identity{Rank: 1, World: 2, Host: "laptop", Launcher: "explicit"},
			"rank 1/2 (explicit, host laptop)",
		},
		{
			rank.Identity{Rank: 1, World: 2, Host: "n03", Launcher: "slurm"},
			"rank 1/2 (slurm, host n03)",
		},
		{
			rank.Identity{Rank: 0, World: 1},
			"rank 0/1",
		},
	}
	for _, tc := range tests {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestIdentityErrorBuiltByCaller(t *testing.T) {
	// Callers may construct the error themselves (e.g. for their own flags);
	// the message must still name the variable, value and expectation.
	e := &rank.IdentityError{Var: "--rank", Value: "x", Want: "an integer"}
	if got, want := e.Error(), `rank identity: --rank="x" is invalid (want an integer)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func ExampleDetectIdentity() {
	// mpirun inside a one-task sbatch allocation: every process also sees
	// SLURM_PROCID=0, which must not win over the OpenMPI rank.
	env := map[string]string{
		"OMPI_COMM_WORLD_RANK":       "3",
		"OMPI_COMM_WORLD_SIZE":       "8",
		"OMPI_COMM_WORLD_LOCAL_RANK": "3",
		"SLURM_PROCID":               "0",
		"SLURM_NTASKS":               "1",
		"SLURM_JOB_ID":               "1234",
		"SLURMD_NODENAME":            "n01",
	}
	id, err := rank.DetectIdentity(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id)

	// Outside any launcher the embedding program is told to set the
	// launcher's environment or to use rank.Explicit.
	_, err = rank.DetectIdentity(func(string) (string, bool) { return "", false })
	var ie *rank.IdentityError
	if errors.As(err, &ie) && ie.Var == "" {
		fmt.Println(err)
	}
	// Output:
	// rank 3/8 (openmpi, slurm job 1234, attempt 0, host n01)
	// rank identity: no launcher environment found (none of OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK, SLURM_PROCID is set); set the launcher's environment (launch the rank under srun or mpirun) or use rank.Explicit(rank, world)
}
