#!/usr/bin/env bash
# The whole test suite: installs the test-only tools when missing (DuckDB and
# hyparquet from npm into a cache directory), then vets and tests every
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
echo "== go test"
go test -count=1 -timeout 20m "$@" ./...
echo "== fuzz the decoders (brief)"
go test -run XXX -fuzz FuzzJournalReader -fuzztime 10s ./manifest
go test -run XXX -fuzz FuzzReadStageCuts -fuzztime 10s ./policy
