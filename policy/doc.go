// Package policy writes and reads the trained policy (Benders cuts, LP
// bases, visited states) as FlatBuffers files that are byte-compatible with
// Cobre's wire layout (namespace Cobre.IO.Policy, see policy.fbs and
// docs/policy-wire.md).
//
// Writing: a Writer owns one reused, pre-sized flatbuffers.Builder and
// encodes one stage at a time; float vectors are copied in bulk and cuts are
// serialised in reverse index order so that reading them in index order
// walks memory forward. The rank writer makes an encoded buffer durable with
// vfs.WriteNewSync (streaming XXH64 + fsync); this package writes no file
// except in Pack and Unpack, through a vfs.FS.
//
// Reading: ReadStageCuts, ReadStageBasis and ReadStageStates verify every
// offset, vtable and vector length against the buffer before touching it
// (the generated accessors do no bounds checks), so a truncated or hostile
// buffer is an error, never a panic. Float vectors are exposed as zero-copy
// []float64 views when the data is 8-byte aligned in memory (copied
// otherwise). Open checks a policy directory against the directory contract
// and the caller's expectations.
//
// The generated Go code lives in policy/internal/fb; regenerate it with
// `go generate ./policy` (needs flatc 2.0.8, apt package
// flatbuffers-compiler). TestGeneratedCodeUpToDate checks it is current.
package policy

//go:generate flatc --go --go-namespace fb -o internal policy.fbs
