// Package journal owns the write-ahead journals: their line framing, the
// writer that appends and fsyncs records, the reader, the scan of a
// study's journal directory, and the publishing of committed files (which
// the rank does right after a commit and the merge does again to roll an
// interrupted commit forward). The record types themselves live in
// manifest, like etcd's wal and walpb.
//
// # Format
//
// A journal is a file _shards/journal/<writer>.jsonl (names: package
// layout) of newline-terminated lines, each
//
//	{"xxh64":"<16 lowercase hex digits>","record":<record JSON>}
//
// where the checksum is XXH64 of the record's exact bytes. The first record
// is an open record (who wrote the journal, for which case and run);
// sequence numbers count up from 0. The checksum finds damage, not forgery:
// anyone who can write the file can write a valid line.
//
// # Invariants
//
//   - A record is durable exactly when Writer.Append returns nil: the line
//     is written and the file fsynced before it returns.
//   - A damaged or unterminated LAST line (an append cut short by a crash,
//     possibly followed by NUL bytes) is a torn tail: the reader stops
//     there quietly and reports it. Damage on any earlier line is an
//     *Error naming the file and line.
//   - Commit point: a commit record lists files whose temp copies were
//     written, fsynced, and whose temp directory was fsynced before the
//     record was appended. After the record is durable the files are the
//     scenario's result: Publish renames them into place (never replacing
//     a file), and it is idempotent, so the merge finishes what a crashed
//     rank began.
package journal
