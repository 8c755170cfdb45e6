#!/usr/bin/env bash
# The whole test suite: installs the test-only tools when missing (DuckDB and
# hyparquet from npm into a cache directory; flatc, SLURM, munge and OpenMPI
# from apt when root), then vets and tests every
# package. With CI=true a missing tool fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

# shellcheck source=scripts/install-test-tools.sh
source scripts/install-test-tools.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
# The launcher tests (internal/launch) start a private SLURM cluster (on free
# ports they choose) in this directory, fresh for this run so that another
# run at the same time has its own, and stop it themselves; the trap stops
# this run's cluster again should the test binary be killed (go test's
# timeout kills it without running its cleanup), and removes the directory.
HYDROSHARD_TEST_SLURM_DIR=$(mktemp -d /tmp/hydroshard-test-slurm.XXXXXX)
export HYDROSHARD_TEST_SLURM_DIR
trap 'HYDROSHARD_SLURM_DIR=$HYDROSHARD_TEST_SLURM_DIR bash scripts/slurm/local-cluster.sh down >/dev/null 2>&1 || true; rm -rf "$HYDROSHARD_TEST_SLURM_DIR"' EXIT
echo "== go test"
# Every package but the crash points, which run next with their counts shown.
go test -count=1 -timeout 20m "$@" $(go list ./... | grep -v /internal/crashtest)
echo "== crash points: a rank and the merge crashed after every file-system operation"
go test -count=1 -timeout 20m -v "$@" ./internal/crashtest | grep -E "crash points|^(--- |ok|FAIL|panic)|_test.go" \
  || { echo "crash tests failed"; exit 1; }
echo "== the fault-injection hook, which only binaries built with -tags faultinject have"
go test -count=1 -tags faultinject ./vfs
echo "== race detector on the rank writer (concurrent WriteScenario, queue, workers)"
go test -race -count=1 -timeout 10m ./rank
echo "== the benchmark's parquet-go contestant (a module of its own: go vet/test ./... above skip it)"
(cd cmd/shardbench/parquetgo && go vet ./... && go test -count=1 ./...)
echo "== benchmark, short run: it must run and write its JSON (figures are printed, not asserted)"
bench_json=$(mktemp /tmp/shardbench.XXXXXX)
go run ./cmd/shardbench --quick --json "$bench_json"
for key in writer_1w_mbps writer_2w_mbps raw_zstd_mbps parquet_go_mbps duckdb_1t_mbps bytes_writer bytes_duckdb rss_200_mb rss_2000_mb compact_mbps cp_mbps compact_cp_ratio compact_rss_small_mb compact_rss_large_mb compact_rss_ratio duckdb_agg_hive_ms duckdb_agg_compacted_ms duckdb_agg_ratio duckdb_filter_hive_ms duckdb_filter_compacted_ms duckdb_filter_ratio polars_agg_hive_ms polars_agg_compacted_ms polars_agg_ratio polars_filter_hive_ms polars_filter_compacted_ms polars_filter_ratio merge_20k_s merge_60k_s merge_per_file_ratio merge_heap_mb_60k policy_merge_mbps policy_cp_ratio policy_rss_stage_ratio policy_open_readfile_ratio capi_go_mbps capi_arrays_ratio capi_borrow_ratio capi_arrow_ratio; do
  grep -q "\"$key\": *[0-9]" "$bench_json" || { echo "shardbench --quick: $bench_json has no $key"; cat "$bench_json"; exit 1; }
done
rm -f "$bench_json"
echo "== fuzz the decoders (brief)"
go test -run XXX -fuzz FuzzJournalReader -fuzztime 10s ./journal
go test -run XXX -fuzz FuzzParseDataFile -fuzztime 5s ./layout
go test -run XXX -fuzz FuzzParseWriterID -fuzztime 5s ./layout
go test -run XXX -fuzz FuzzParseCompactPart -fuzztime 5s ./layout
go test -run XXX -fuzz FuzzCheckCommit -fuzztime 20000x ./merge
go test -run XXX -fuzz FuzzReadStageCuts -fuzztime 10s ./policy
