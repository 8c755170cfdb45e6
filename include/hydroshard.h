/*
 * hydroshard.h: the C API of hydroshard's rank writer.
 *
 * A solver rank written in C, C++, Fortran (iso_c_binding), Rust or Julia
 * writes its simulation scenarios and its training history through this
 * API; the files, the journal and the guarantees are exactly those of the Go
 * package rank (docs/format.md), and `merge-shards OUT` merges them after the
 * job. docs/capi.md is the guide; examples/c and examples/fortran are
 * complete programs.
 *
 * Link: -lhydroshard (libhydroshard.so, built by scripts/build-lib.sh, or
 * libhydroshard.a with -lpthread). Everything here is plain C: opaque
 * handles, int return codes, no Go type.
 *
 * ERRORS. Every function that can fail returns an int: HYDROSHARD_OK (0) or
 * one of the HYDROSHARD_E* codes below. The message of the last failure on a
 * handle, naming the table, column, scenario or file and what was expected,
 * is hydroshard_errmsg(h); it stays valid until the next call on h. Functions
 * that return a count return -1 on failure instead. Bad input is never fatal:
 * it is refused, the handle stays usable and the host process is never
 * crashed (a Go panic is caught at the boundary and returned as
 * HYDROSHARD_EINTERNAL).
 *
 * THREADS. A handle may be used from several threads at once: different
 * scenarios may be built and written concurrently (the writer encodes them on
 * its own threads and commits them in the order hydroshard_write_scenario
 * accepted them). One scenario's tables must come from one thread, or be
 * ordered by the caller. When threads share a handle, hydroshard_errmsg
 * holds the most recent failure of any of them; the return codes are exact.
 *
 * BUFFERS. hydroshard_table reads the caller's arrays before it returns, and
 * the caller may reuse them at once (the default: the arrays are copied).
 * With hydroshard_set_int(h, "borrow", 1) nothing is copied: the writer
 * reads the caller's arrays until the scenario is committed, so they must
 * stay valid and unchanged until hydroshard_flush or a close returns. Arrow
 * arrays (hydroshard_table_arrow) are always borrowed: the library owns the
 * moved ArrowArray and calls its release callback once the scenario is
 * committed or discarded (at the latest when the handle is closed or freed).
 * Checkpoint and iteration data are read, never kept.
 *
 * SIGNALS AND MPI. Loading the library starts the Go runtime (a few threads)
 * but takes over no signal the host handles: it installs no SIGTERM or
 * SIGINT handler unless hydroshard_handle_signals is called (and then only
 * for those two). The Go runtime does install handlers for SIGSEGV, SIGBUS,
 * SIGFPE and SIGPIPE (a fault in Go code is a Go panic; the same signal
 * arising in the host's code goes to the handler the host had installed
 * before, or to the default action) and for SIGURG, which it sends its own
 * threads to preempt goroutines; all with SA_ONSTACK|SA_RESTART, so the
 * host's blocking calls are restarted, not failed with EINTR. A handler the
 * host installs later for those signals must leave them to Go. This works
 * inside an MPI process (docs/capi.md; tested under mpirun with OpenMPI).
 */
#ifndef HYDROSHARD_H
#define HYDROSHARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. hydroshard_abi_version() returns the
 * library's; a program should refuse to run when they differ. Adding a
 * function does not change it; changing or removing one does. */
#define HYDROSHARD_ABI_VERSION 1

/* Return codes. */
#define HYDROSHARD_OK 0
/* Bad argument: a NULL pointer, an unknown table or column, a column of the
 * wrong type or length, a value out of range, a call before its
 * prerequisites (hydroshard_open before the case is set). */
#define HYDROSHARD_EINVAL 1
/* The case could not be read or is invalid. */
#define HYDROSHARD_ECASE 2
/* The identity was not given and could not be detected from the launcher,
 * or disagrees with the run's earlier attempts (world size, case, options). */
#define HYDROSHARD_EIDENTITY 3
/* The scenario is already durable (an earlier attempt committed it): skip
 * it. Also: the iteration or checkpoint is already durable. */
#define HYDROSHARD_ECOMMITTED 4
/* The handle is closed (or its writer was closed). */
#define HYDROSHARD_ECLOSED 5
/* An I/O error: the writer is broken, every later write fails; close it
 * (hydroshard_close_interrupted) and let the job be requeued. */
#define HYDROSHARD_EIO 6
/* A signal (hydroshard_handle_signals) or hydroshard_interrupt stopped the
 * call: finish nothing more, call hydroshard_close_interrupted. */
#define HYDROSHARD_EINTERRUPTED 7
/* A bug in hydroshard (a Go panic caught at the boundary); the message says
 * where. The handle should be closed. */
#define HYDROSHARD_EINTERNAL 8

/* One rank's door to the output layer: identity, case, and the simulation
 * and training writers, opened on first use. */
typedef struct hydroshard_rank hydroshard_rank;

/* The Arrow C Data Interface structs. */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4
/* https://arrow.apache.org/docs/format/CDataInterface.html */
struct ArrowSchema {
  const char *format;
  const char *name;
  const char *metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema **children;
  struct ArrowSchema *dictionary;
  void (*release)(struct ArrowSchema *);
  void *private_data;
};
struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void **buffers;
  struct ArrowArray **children;
  struct ArrowArray *dictionary;
  void (*release)(struct ArrowArray *);
  void *private_data;
};
#endif /* ARROW_C_DATA_INTERFACE */

/* The library itself is built with HYDROSHARD_BUILDING defined: the
 * prototypes below then come from its own generated declarations. */
#ifndef HYDROSHARD_BUILDING

/* The library's version ("0.1.0"), a static string. */
const char *hydroshard_version(void);
/* The library's ABI version: compare with HYDROSHARD_ABI_VERSION. */
int hydroshard_abi_version(void);

/* ---- Lifetime ---------------------------------------------------------- */

/* A new handle, not yet open. NULL only when memory is exhausted. Free it
 * with hydroshard_free. */
hydroshard_rank *hydroshard_new(void);
/* The message of the last failure on h ("" when none). h may be NULL (the
 * message then says so). Valid until the next call on h. */
const char *hydroshard_errmsg(const hydroshard_rank *h);
/* Closes what is still open (as interrupted: "freed without close"),
 * releases every borrowed Arrow array and frees h. NULL is ignored. It must
 * be the last call on h: no other thread may be using h, or use it after. */
void hydroshard_free(hydroshard_rank *h);

/* ---- Before hydroshard_open -------------------------------------------- */

/* This process's rank (0..world-1) and the world size. Without it,
 * hydroshard_open detects them from the launcher's environment (OpenMPI,
 * PMI, PMIx, then SLURM), never assuming rank 0. */
int hydroshard_set_identity(hydroshard_rank *h, int rank, int world);
/* The case: a case.json file, a directory holding one, or an example case
 * name ("tiny", "demo"). */
int hydroshard_set_case(hydroshard_rank *h, const char *path);
/* The case as JSON text (NUL-terminated), strictly parsed. */
int hydroshard_set_case_json(hydroshard_rank *h, const char *json);
/* Integer options:
 *   "scenarios"       the run's scenario count (required by the simulation)
 *   "scenario_pad"    zero-padding of partition names (4: scenario_id=0007)
 *   "workers"         encoding threads (default: cores, at most 4)
 *   "queue"           scenarios accepted ahead of their commit (default 64)
 *   "threads"         solver threads per rank (recorded)
 *   "borrow"          1: hydroshard_table borrows the arrays (see BUFFERS)
 *   "forward_passes", "max_iterations", "seed"   training configuration */
int hydroshard_set_int(hydroshard_rank *h, const char *name, int64_t value);
/* String options:
 *   "ownership"       "contiguous" (default) or "round-robin"
 *   "rerun_file"      the rerun list of a rerun job (--scenarios-from FILE)
 *   "solver"          the solver's name (recorded in metadata.json)
 *   "stopping_mode", "policy_mode"   training configuration */
int hydroshard_set_string(hydroshard_rank *h, const char *name, const char *value);
/* Floating-point options: "gap_tolerance_percent" (training). */
int hydroshard_set_double(hydroshard_rank *h, const char *name, double value);

/* Opens the rank in the output directory out: loads and checks the case,
 * works out the identity. The writers open on first use. */
int hydroshard_open(hydroshard_rank *h, const char *out);
/* This rank and the world size; -1 before hydroshard_open succeeded. */
int hydroshard_rank_id(const hydroshard_rank *h);
int hydroshard_world(const hydroshard_rank *h);

/* ---- The case and the tables, for programs that fill tables generically - */

/* A number of the case (after hydroshard_set_case*): "stages", "blocks"
 * (blocks per stage), "inflow_lag_order", "state_dimension"; -1 on
 * failure. */
int64_t hydroshard_case_int(hydroshard_rank *h, const char *what);
/* The ids of the case's entities of a table ("hydros": the hydro ids,
 * "exchanges": the line ids, "inflow_lags": the hydro ids, "costs": none),
 * in case order; same convention as hydroshard_owned. */
int64_t hydroshard_case_ids(hydroshard_rank *h, const char *entity, int32_t *ids, int64_t cap);
/* The columns a caller gives for a table, in table order, as one static
 * string: "name:type" separated by commas, type one of int32, int8, double,
 * bool (uint8_t 0/1), with "?" after the type of a nullable column:
 * "stage_id:int32,block_id:int32?,hydro_id:int32,turbined_m3s:double,...".
 * NULL for an unknown table. Needs no handle. */
const char *hydroshard_table_columns(const char *entity);

/* ---- Signals ------------------------------------------------------------ */

/* From now on SIGTERM and SIGINT (as SLURM sends before a preemption)
 * interrupt the writers: blocked calls return HYDROSHARD_EINTERRUPTED and
 * hydroshard_interrupted returns 1; the solver then stops and calls
 * hydroshard_close_interrupted. Without this call the library never touches
 * the host's signal handling. */
int hydroshard_handle_signals(hydroshard_rank *h);
/* 1 when a signal or hydroshard_interrupt interrupted the rank, else 0. */
int hydroshard_interrupted(const hydroshard_rank *h);
/* Interrupts the writers as a signal would (for a solver that handles
 * signals itself). */
int hydroshard_interrupt(hydroshard_rank *h);

/* ---- Simulation: which scenarios --------------------------------------- */

/* The scenarios this rank owns (its share under the ownership rule, or of
 * the rerun list), in order: writes up to cap ids to ids and returns how
 * many there are (call again with a larger array when that is > cap); -1 on
 * failure. ids may be NULL when cap is 0. */
int64_t hydroshard_owned(hydroshard_rank *h, int32_t *ids, int64_t cap);
/* The owned scenarios no attempt has committed yet: what a resumed rank
 * still has to simulate. Same convention as hydroshard_owned. */
int64_t hydroshard_remaining(hydroshard_rank *h, int32_t *ids, int64_t cap);
/* 1 when the scenario is durable (by any attempt of this run), 0 when not,
 * -1 on failure. */
int hydroshard_is_committed(hydroshard_rank *h, int scenario);

/* ---- Simulation: a scenario's tables ----------------------------------- */

/* One table of a scenario, as plain arrays. entity is the table
 * ("costs", "hydros", "thermals", "exchanges", "buses", "pumping_stations",
 * "contracts", "non_controllables", "inflow_lags", "violations/generic");
 * rows its row count; columns a comma-separated list of column names of
 * that table (docs/tables.md; the derived columns are computed, never
 * given); data[i] points at rows values of column i, of the column's type:
 * int32_t (Int32), int8_t (Int8) or double (Float64). valid may be NULL
 * (every value valid); else valid[i] is NULL or points at rows bytes, 1 for
 * a value and 0 for a null, for a nullable column (0 on a column that is
 * not nullable is refused). A nullable column left out of the list is all
 * null; any other column left out is refused. Giving a table twice for one
 * scenario is refused. Nothing is written before hydroshard_write_scenario. */
int hydroshard_table(hydroshard_rank *h, int scenario, const char *entity, int64_t rows,
                     const char *columns, const void *const *data, const uint8_t *const *valid);


/* One table of a scenario as an Arrow record batch: a struct array whose
 * children are the table's columns by name (any order, any subset that
 * hydroshard_table would accept), Int32 ("i"), Int8 ("c") or Float64 ("g"),
 * with the validity bitmap as Arrow defines it. The schema is checked
 * against the table's with the same errors as hydroshard_table. The value
 * buffers are used where they are, not copied. The library always takes
 * both structs, as the C Data Interface's consumer (their release is NULL
 * when the call returns): it releases the schema at once, and the array at
 * once on failure, else once the scenario is committed or discarded (at the
 * latest when the handle is closed or freed). The caller must not change
 * the buffers before that release. */
int hydroshard_table_arrow(hydroshard_rank *h, int scenario, const char *entity,
                           struct ArrowArray *array, struct ArrowSchema *schema);

/* Writes the scenario given by its tables (costs is required): checks it
 * and puts it on the writer's queue; it is committed in the background, in
 * the order scenarios were written (hydroshard_flush waits for that). Blocks
 * while the queue is full. HYDROSHARD_ECOMMITTED: an earlier attempt
 * committed it (the tables given are dropped). On any failure the tables
 * given stay pending, to be given again or discarded. */
int hydroshard_write_scenario(hydroshard_rank *h, int scenario);
/* Drops the tables given for a scenario not written. */
int hydroshard_discard_scenario(hydroshard_rank *h, int scenario);
/* Waits until every written scenario is committed (durable, renamed). */
int hydroshard_flush(hydroshard_rank *h);

/* ---- Training ----------------------------------------------------------- */

/* The last iteration this rank made durable in any attempt of the run (0:
 * none): a resumed rank continues after it. -1 on failure. Opens the
 * training writer (rank 0 needs "forward_passes" set). */
int64_t hydroshard_last_iteration(hydroshard_rank *h);
/* Makes one completed iteration durable: the JSON object of the iteration
 * record (docs/capi.md), with the columns of training/convergence (root
 * rank only), training/timing/iterations and training/timing/mpi_ranks:
 *   {"iteration": 3, "convergence": {...}, "timing": [{...}], "mpi_rank": {...}}
 * Unknown fields are refused. Only the iteration after
 * hydroshard_last_iteration is accepted. */
int hydroshard_write_iteration_json(hydroshard_rank *h, const char *json);
/* One stage's cuts of this rank's checkpoint at iteration: ncuts cuts of
 * dimension dim (the case's state dimension), coefficients row-major
 * ncuts x dim; states_at_generation may be NULL, else ncuts x dim. active
 * holds one byte per cut (1: active). Read before the call returns. Every
 * stage of the case must be given (ncuts may be 0) before
 * hydroshard_write_checkpoint. */
int hydroshard_checkpoint_stage(hydroshard_rank *h, int iteration, int stage, uint32_t capacity,
                                uint32_t warm_start_count, int64_t ncuts, int dim,
                                const uint64_t *cut_ids, const uint32_t *slot_indices,
                                const uint32_t *iterations, const uint32_t *forward_pass_indices,
                                const double *intercepts, const double *coefficients,
                                const double *states_at_generation, const uint8_t *active);
/* The root rank's (rank 0) checkpoint metadata as JSON (docs/capi.md):
 * {"iteration":..., "lower_bound":..., "num_stages":..., "state_dimension":...,
 *  "capacity":[...], "warm_start_counts":[...], ...}. */
int hydroshard_checkpoint_meta_json(hydroshard_rank *h, int iteration, const char *json);
/* Root rank only, optional: one stage's LP basis and visited states. */
int hydroshard_checkpoint_basis(hydroshard_rank *h, int iteration, int stage, uint32_t basis_iteration,
                                int64_t ncolumns, const uint8_t *column_status, int64_t nrows,
                                const uint8_t *row_status, uint32_t num_cut_rows);
int hydroshard_checkpoint_states(hydroshard_rank *h, int iteration, int stage, int64_t count, int dim,
                                 const double *data);
/* Commits the checkpoint given for iteration (durable when it returns). */
int hydroshard_write_checkpoint(hydroshard_rank *h, int iteration);

/* ---- Closing ------------------------------------------------------------ */

/* Commits what is queued and closes every writer cleanly: the rank's work
 * is complete. The handle must still be freed. */
int hydroshard_close(hydroshard_rank *h);
/* Closes as interrupted (preempted, killed, failed), recording reason
 * (NULL: "interrupted"):
 * scenarios still queued are committed when they can be; a later attempt
 * resumes. */
int hydroshard_close_interrupted(hydroshard_rank *h, const char *reason);
/* Root rank: closes the training writer recording why training stopped
 * ("converged", "iteration_limit", "time_limit", ...), then closes the rest
 * as hydroshard_close. */
int hydroshard_close_terminated(hydroshard_rank *h, const char *termination);

#endif /* HYDROSHARD_BUILDING */

#ifdef __cplusplus
}
#endif

#endif /* HYDROSHARD_H */
