// Package hydroshard is the output layer of a distributed SDDP solver; see
// README.md. The packages that do the work are rank (embedded in each
// solver rank), shard, manifest and merge. This root package only carries
// the example cases, so that the binaries find them from any directory.
package hydroshard

import "embed"

// Cases holds testdata/cases/<name>/case.json, the example study cases
// (tiny, demo) that cmd/simrank accepts by name.
//
//go:embed testdata/cases
var Cases embed.FS
