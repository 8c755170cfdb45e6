// Package crashtest proves the commit protocol on the crash-simulating
// file system of package vfs: a rank (simulation commits, training
// iterations, a policy checkpoint) and the merge's apply phase are each
// crashed after every one of their file-system operations, in turn, and
// what a crash leaves is merged and checked:
//
//   - every scenario the merge reports committed is, byte for byte, the
//     uninterrupted run's, and stays so after a power cut that follows the
//     merge (the merge made it durable);
//   - every other scenario is listed missing, and the outcome is never
//     corrupt;
//   - a second merge changes no byte;
//   - a resumed rank completes the study, byte-identical to an
//     uninterrupted one.
//
// A crash is either the process dying (what it wrote stays in the page
// cache: vfs.Mem.Clone) or a power cut (only what was fsynced, and only
// directory entries whose directory was fsynced, survive:
// vfs.Mem.CrashClone), and in a second pass a power cut that also keeps a
// random subset of the operations not yet synced. The package holds tests
// only.
package crashtest
