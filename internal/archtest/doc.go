// Package archtest holds the architecture's rules as a test: which
// packages of the module may import which, and that package shard does no
// file I/O of its own. The rules are what the package comments promise
// (layout and vfs stand on the standard library alone, the journal sits on
// manifest, layout and vfs, the merge and the policy codec never reach
// into the rank writer or a command, only a command wires a rank writer
// and the merge together); the test reads the import graph with
// "go list -json ./..." and the shard sources with go/parser, and names
// the package and the forbidden import of every breach. The package holds
// tests only.
package archtest
