package hydroshard

import "embed"

// Cases holds testdata/cases/<name>/case.json, the example study cases
// (tiny, demo) that cmd/simrank accepts by name.
//
//go:embed testdata/cases
var Cases embed.FS
