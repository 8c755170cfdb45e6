#!/usr/bin/env bash
# Submits a hydroshard study: the ranks (run.sbatch), then the merge
# (merge.sbatch, --dependency=afterany:<run> --kill-on-invalid-dep=yes), which
# reruns missing scenarios itself (up to MAX_ROUNDS merges). Prints the job ids.
#
#   scripts/slurm/submit.sh [options] OUT -- RANK_ARGS...
#   scripts/slurm/submit.sh -n 4 /scratch/run1 -- --case demo --scenarios 16 --seed 42
#   scripts/slurm/submit.sh -n 4 --array 0-2 --sweep seeds.txt /scratch/sweep -- --case demo --scenarios 16
#       (a job array: task i writes /scratch/sweep/task_i with the arguments of
#        line i+1 of seeds.txt appended, e.g. "--seed 7"; one merge task per run task)
# Options:
#   -n, --ntasks N       ranks per run (default 4)
#   --array SPEC         job array (sbatch --array SPEC); OUT is then the base directory
#   --sweep FILE         per-task extra rank arguments, one line per array task (line i+1 = task i)
#   --max-rounds N       merges (1 + reruns) before giving up (default $MAX_ROUNDS or 3)
#   --program PATH       rank program (default bin/simrank of this repository)
#   --signal-lead SEC    SIGTERM lead time before the time limit (default 60, run.sbatch)
#   --time T             time limit of the run job (sbatch --time)
#   --sbatch ARG         extra sbatch argument for both jobs (repeatable), e.g. --sbatch=--partition=big
# Logs and rerun lists go to OUT.slurm/ (OUT.slurm/ of the base with --array).
# Output lines: "run JOBID" and "merge JOBID" (stdout). Exit 0 when both were submitted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPTS=$ROOT/scripts/slurm

ntasks=4 array= sweep= max_rounds=${MAX_ROUNDS:-3} program= lead= timelimit= extra=()
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    -n|--ntasks) ntasks=$2; shift 2 ;;
    --array) array=$2; shift 2 ;;
    --sweep) sweep=$(realpath "$2"); shift 2 ;;
    --max-rounds) max_rounds=$2; shift 2 ;;
    --program) program=$(realpath "$2"); shift 2 ;;
    --signal-lead) lead=$2; shift 2 ;;
    --time) timelimit=$2; shift 2 ;;
    --sbatch) extra+=("$2"); shift 2 ;;
    --sbatch=*) extra+=("${1#--sbatch=}"); shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "submit.sh: unknown option $1" >&2; usage ;;
    *) [ -z "${out:-}" ] || { echo "submit.sh: two output directories ($out, $1)" >&2; usage; }; out=$1; shift ;;
  esac
done
[ -n "${out:-}" ] || usage
rank_args="$*"
[ -n "$sweep" ] && [ -z "$array" ] && { echo "submit.sh: --sweep needs --array" >&2; exit 2; }
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
