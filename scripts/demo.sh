#!/usr/bin/env bash
# The demo: runs 4 ranks of simrank on the demo case the way srun would
# (4 processes, each with its own SLURM_PROCID/SLURM_NTASKS; training, then
# simulation) into a fresh directory, merges them with merge-shards, and
# prints where the output is and how to query it. Exits with merge-shards'
# exit code (0: complete).
#   usage: scripts/demo.sh [OUT]        (default: a new directory under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

out=${1:-$(mktemp -d /tmp/hydroshard-demo.XXXXXX)}
ranks=4 scenarios=16 seed=42 iterations=10
mkdir -p bin

# The first run on a fresh clone downloads and compiles the dependencies,
# which takes minutes: say so, and on a terminal show go's progress (the
# download or package it is at) on one line.
echo "== building (first run downloads and compiles dependencies, a few minutes)..."
if [ -t 1 ]; then
  log=$(mktemp)
  { go build -v -o bin/simrank ./cmd/simrank && go build -v -o bin/merge-shards ./cmd/merge-shards; } >"$log" 2>&1 &
  pid=$! spin='|/-\' i=0
  while kill -0 "$pid" 2>/dev/null; do
    last=$(tail -n 1 "$log" 2>/dev/null | cut -c1-70)
    printf '\r\033[K  %s %s' "${spin:i++%4:1}" "$last"
    sleep 0.2
  done
  printf '\r\033[K'
  if ! wait "$pid"; then cat "$log" >&2; rm -f "$log"; echo "demo.sh: go build failed" >&2; exit 1; fi
  rm -f "$log"
else
  go build -o bin/simrank ./cmd/simrank
  go build -o bin/merge-shards ./cmd/merge-shards
fi

echo "== running $ranks ranks of simrank (demo case: $iterations training iterations, then $scenarios scenarios; seed $seed) into $out"
pids=()
for r in $(seq 0 $((ranks - 1))); do
  SLURM_PROCID=$r SLURM_NTASKS=$ranks SLURM_LOCALID=$r SLURM_JOB_ID=demo \
    bin/simrank --case demo --out "$out" --iterations $iterations --forward-passes 8 --threads 2 --checkpoint-every 5 \
      --scenarios $scenarios --seed $seed &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status = 0 ] || { echo "a rank failed" >&2; exit 1; }

echo "== merging"
merge_status=0
bin/merge-shards "$out" || merge_status=$?

echo
echo "== output in $out"
( cd "$out" && find simulation training policy -maxdepth 2 -mindepth 1 \( -type d -o -name '*.parquet' \) 2>/dev/null | grep -v scenario_id= | sort | sed 's/^/   /' )
echo "   journals: $(ls "$out/_shards/journal" | wc -l) files under $out/_shards/journal"
cat <<MSG

Query it, for example with DuckDB:
  SELECT scenario_id, stage_id, sum(generation_mwh) AS hydro_mwh
  FROM read_parquet('$out/simulation/hydros/**/*.parquet', hive_partitioning = true)
  GROUP BY ALL ORDER BY ALL;
  SELECT iteration, lower_bound, upper_bound_mean, gap_percent FROM '$out/training/convergence.parquet';
or with Polars:  pl.scan_parquet('$out/simulation/hydros/**/*.parquet', hive_partitioning=True)
MSG
exit $merge_status
