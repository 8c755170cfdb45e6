// Package interop holds only tests: they check that the Parquet output of
// a multi-rank run reads back correctly in readers that share no code with
// the Go writer — DuckDB (through @duckdb/node-api) and hyparquet (pure
// JavaScript) — driven by the node scripts in scripts/interop.
//
// The node packages are test-only tools installed by
// scripts/install-test-tools.sh into $HYDROSHARD_NODE_DIR (default
// ~/.cache/hydroshard/node). When node or the packages are missing the
// tests skip with a message, except with CI=true, where a missing tool is
// a failure.
package interop
