// Package hydroshard is the output layer of a distributed SDDP solver:
// each solver rank writes its own Parquet shard and journal with no
// coordination, and after the job a merge reconciles the journals,
// verifies every file, finishes interrupted commits and writes the
// manifests, dictionaries and the policy checkpoint.
//
// This package is the one door on each side:
//
//   - OpenRank, in each solver rank: the identity (detected from the
//     launcher, or given), the case, and one handle whose Simulation and
//     Training writers share one set of options, one signal handling and
//     one Close.
//   - Merge (and Verify), after the job: dictionaries, manifests,
//     metadata, summary and policy, with the rerun list of what is
//     missing.
//
// Both are thin over the packages that do the work, which stay usable
// directly: rank (the writers), merge, shard (tables and encoding),
// manifest (the documents), policy (the checkpoint), journal, layout and
// vfs. docs/api.md explains why the API is shaped this way. Cases holds
// the example study cases, so that the binaries find them from any
// directory.
package hydroshard
