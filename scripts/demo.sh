#!/usr/bin/env bash
# The demo: runs 4 ranks of simrank on the demo case the way srun would
# (4 processes, each with its own SLURM_PROCID/SLURM_NTASKS), into a fresh
# directory, then prints where the output is and how to query it.
#   usage: scripts/demo.sh [OUT]        (default: a new directory under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

out=${1:-$(mktemp -d /tmp/hydroshard-demo.XXXXXX)}
ranks=4 scenarios=16 seed=42
mkdir -p bin
go build -o bin/simrank ./cmd/simrank
[ -x bin/merge-shards ] && rm -f bin/merge-shards
if [ -d cmd/merge-shards ]; then go build -o bin/merge-shards ./cmd/merge-shards; fi

echo "== running $ranks ranks of simrank (demo case, $scenarios scenarios, seed $seed) into $out"
pids=()
for r in $(seq 0 $((ranks - 1))); do
  SLURM_PROCID=$r SLURM_NTASKS=$ranks SLURM_LOCALID=$r SLURM_JOB_ID=demo \
    bin/simrank --case demo --out "$out" --scenarios $scenarios --seed $seed --quiet &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status = 0 ] || { echo "a rank failed" >&2; exit 1; }

# Hook for the merge step: once cmd/merge-shards exists, the demo merges.
if [ -x bin/merge-shards ]; then
  echo "== merging"
  bin/merge-shards "$out" || true
fi

echo
echo "== output in $out"
( cd "$out" && find simulation -maxdepth 1 -mindepth 1 -type d | sort | sed 's/^/   /' )
echo "   journals: $(ls "$out/_shards/journal" | wc -l) files under $out/_shards/journal"
cat <<MSG

Query it, for example with DuckDB:
  SELECT scenario_id, stage_id, sum(generation_mwh) AS hydro_mwh
  FROM read_parquet('$out/simulation/hydros/**/*.parquet', hive_partitioning = true)
  GROUP BY ALL ORDER BY ALL;
or with Polars:  pl.scan_parquet('$out/simulation/hydros/**/*.parquet', hive_partitioning=True)
MSG
