#!/usr/bin/env bash
# Submits a hydroshard study: the ranks (run.sbatch), then the merge
# (merge.sbatch), which reruns missing scenarios itself. Prints the job ids.
# Usage and options: usage() below, or scripts/slurm/submit.sh --help.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPTS=$ROOT/scripts/slurm

ntasks=4 array= sweep= max_rounds=${MAX_ROUNDS:-3} program= lead= timelimit= extra=() out= dashes=

usage() {
  cat <<'USAGE'
usage: scripts/slurm/submit.sh [options] OUT -- RANK_ARGS...

Submits a hydroshard study as two SLURM jobs: the ranks (run.sbatch), then
the merge (merge.sbatch, --dependency=afterany:<run> --kill-on-invalid-dep=yes),
which reruns missing scenarios itself (up to --max-rounds merges).
Everything after "--" is passed to every rank; "--" is required, even with
no rank arguments ("submit.sh -n 4 OUT --").

  submit.sh -n 4 /scratch/run1 -- --case demo --scenarios 16 --seed 42
  submit.sh -n 4 --array 0-2 --sweep seeds.txt /scratch/sweep -- --case demo --scenarios 16
      (a job array: task i writes /scratch/sweep/task_i with the arguments of
       line i+1 of seeds.txt appended, e.g. "--seed 7"; one merge task per run task)

Options:
  -n, --ntasks N       ranks per run (default 4)
  --array SPEC         job array (sbatch --array SPEC); OUT is then the base directory
  --sweep FILE         per-task extra rank arguments, one line per array task (line i+1 = task i)
  --max-rounds N       merges (1 + reruns) before giving up (default $MAX_ROUNDS or 3)
  --program PATH       rank program (default bin/simrank of this repository, or $RANK_PROGRAM)
  --signal-lead SEC    SIGTERM lead time before the time limit (default 60, run.sbatch)
  --time T             time limit of the run job (sbatch --time)
  --sbatch ARG         extra sbatch argument for both jobs (repeatable), e.g. --sbatch=--partition=big
  -h, --help           this help

Logs and rerun lists go to OUT.slurm/ (OUT.slurm/ of the base with --array).
Output: "run JOBID" and "merge JOBID" on stdout.
Exit codes: 0 both jobs submitted; 2 usage error (nothing submitted); other:
sbatch failed.
USAGE
}
# die prints a one-line usage error and exits 2, before anything is submitted.
die() { echo "submit.sh: $* (see scripts/slurm/submit.sh --help)" >&2; exit 2; }
# value OPTION [VALUE...]: the option must have a value.
value() { [ $# -ge 2 ] || die "$1 needs a value"; }
# integer OPTION VALUE MIN: VALUE must be an integer >= MIN.
integer() { case $2 in ''|*[!0-9]*) die "$1 $2: want an integer >= $3" ;; esac; [ "$2" -ge "$3" ] || die "$1 $2: want an integer >= $3"; }

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --) shift; dashes=1; break ;;
    --sbatch=*) extra+=("${1#--sbatch=}"); shift; continue ;;
    -n|--ntasks|--array|--sweep|--max-rounds|--program|--signal-lead|--time|--sbatch) value "$@" ;;
  esac
  case $1 in
    -n|--ntasks) integer "$1" "$2" 1; ntasks=$2; shift 2 ;;
    --array) array=$2; shift 2 ;;
    --sweep) [ -f "$2" ] || die "--sweep $2: no such file"; sweep=$(realpath "$2"); shift 2 ;;
    --max-rounds) integer "$1" "$2" 1; max_rounds=$2; shift 2 ;;
    --program) [ -e "$2" ] || die "--program $2: no such file"; program=$(realpath "$2"); shift 2 ;;
    --signal-lead) integer "$1" "$2" 0; lead=$2; shift 2 ;;
    --time) timelimit=$2; shift 2 ;;
    --sbatch) extra+=("$2"); shift 2 ;;
    -*)
      if [ -n "$out" ]; then
        die "$1 after OUT: the rank program's arguments go after \"--\": submit.sh [options] $out -- $*"
      fi
      die "unknown option $1 (the rank program's arguments go after OUT and \"--\")" ;;
    *)
      if [ -n "$out" ]; then
        die "$1: one OUT only (have $out); the rank program's arguments go after \"--\": submit.sh [options] $out -- ${*}"
      fi
      out=$1; shift ;;
  esac
done
[ -n "$out" ] || die "want the output directory OUT: submit.sh [options] OUT -- RANK_ARGS..."
[ -n "$dashes" ] || die "missing \"--\" after OUT: submit.sh [options] $out -- RANK_ARGS... (\"--\" is required, even with no rank arguments)"
[ -n "$sweep" ] && [ -z "$array" ] && die "--sweep needs --array"
rank_args="$*"
mkdir -p "$out"
out=$(realpath "$out")
work=${out%/}.slurm
mkdir -p "$work"

common=(--parsable --export=ALL "${extra[@]}")
export HYDROSHARD_ROOT=$ROOT SLURM_SCRIPTS=$SCRIPTS RANK_ARGS=$rank_args MAX_ROUNDS=$max_rounds ROUND=1 RUN_NTASKS=$ntasks
[ -n "$program" ] && export RANK_PROGRAM=$program
run_opts=(-n "$ntasks")
[ -n "$lead" ] && run_opts+=(--signal="B:TERM@$lead")
[ -n "$timelimit" ] && run_opts+=(--time="$timelimit")

if [ -n "$array" ]; then
  # One output directory per array task: OUT_BASE/task_$SLURM_ARRAY_TASK_ID.
  export OUT_BASE=$out SWEEP_FILE=$sweep WORK_DIR=
  unset OUT
  run_id=$(timeout 30 sbatch "${common[@]}" "${run_opts[@]}" --array="$array" \
    -o "$work/run-%A_%a.out" "$SCRIPTS/run.sbatch")
  run_id=${run_id%%;*}
  # afterany on the whole run array: every merge task waits for all run tasks
  # (aftercorr would only fire on success, and a failed rank is exactly the case to merge).
  merge_id=$(timeout 30 sbatch "${common[@]}" --array="$array" \
    --dependency="afterany:$run_id" --kill-on-invalid-dep=yes \
    -o "$work/merge-%A_%a.out" "$SCRIPTS/merge.sbatch")
else
  export OUT=$out WORK_DIR=$work
  unset OUT_BASE SWEEP_FILE
  run_id=$(timeout 30 sbatch "${common[@]}" "${run_opts[@]}" -o "$work/run-%j.out" "$SCRIPTS/run.sbatch")
  run_id=${run_id%%;*}
  merge_id=$(timeout 30 sbatch "${common[@]}" --dependency="afterany:$run_id" --kill-on-invalid-dep=yes \
    -o "$work/merge-round-1-%j.out" "$SCRIPTS/merge.sbatch")
fi
merge_id=${merge_id%%;*}
echo "run $run_id"
echo "merge $merge_id"
echo "logs: $work/ (the merge resubmits reruns itself; the last merge job's log says COMPLETE)" >&2
