/*
 * check.c: bad input, signals and panics through the C API, for
 * cmd/libhydroshard's tests. Each check prints one line
 *   CHECK <name> <return code> <message>
 * and the Go test holds what each must say; the program itself only
 * exits non-zero when the library crashed it (it never should).
 *
 *   check errors OUT          bad input of every kind
 *   check signals OUT         the host's SIGTERM handler is left alone,
 *                             until hydroshard_handle_signals
 *   check panic OUT           (library built with -tags capitest) a Go
 *                             panic comes back as HYDROSHARD_EINTERNAL
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hydroshard.h"

#ifdef HYDROSHARD_WITH_MPI
/* Built with mpicc -DHYDROSHARD_WITH_MPI and run under mpirun: the same
 * checks inside an MPI process (OpenMPI's runtime and its signal handling
 * beside Go's), each rank in OUT/rank-N. */
#include <mpi.h>
#endif

static void report(const char *name, int rc, hydroshard_rank *h) {
  const char *msg = hydroshard_errmsg(h);
  printf("CHECK %s %d %s\n", name, rc, rc ? msg : "");
  fflush(stdout);
}

static hydroshard_rank *opened(const char *out, int scenarios) {
  hydroshard_rank *h = hydroshard_new();
  int rc = hydroshard_set_identity(h, 0, 1);
  if (!rc) rc = hydroshard_set_case(h, "tiny");
  if (!rc) rc = hydroshard_set_int(h, "scenarios", scenarios);
  if (!rc) rc = hydroshard_set_int(h, "forward_passes", 2);
  if (!rc) rc = hydroshard_open(h, out);
  if (rc) {
    fprintf(stderr, "check: open %s: %s\n", out, hydroshard_errmsg(h));
    exit(1);
  }
  return h;
}

/* A valid costs table for the tiny case (3 stages). */
static int32_t stage[3] = {0, 1, 2};
static double zeros[64][3];

static int costs(hydroshard_rank *h, int scenario) {
  const char *cols = hydroshard_table_columns("costs");
  /* every column but block_id (left out: null) */
  static char names[4096];
  static const void *data[64];
  int n = 0;
  names[0] = 0;
  for (const char *p = cols; *p;) {
    const char *colon = strchr(p, ':'), *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    if (strncmp(p, "block_id:", 9)) {
      if (n) strcat(names, ",");
      strncat(names, p, (size_t)(colon - p));
      data[n] = n == 0 ? (const void *)stage : (const void *)zeros[n];
      n++;
    }
    p = *end ? end + 1 : end;
  }
  return hydroshard_table(h, scenario, "costs", 3, names, data, NULL);
}

/* A costs table of 3 rows as an Arrow struct array built by hand; column
 * short_col (when >= 0) has 2 rows. released counts the release calls. */
static int released;
static const void *arrow_pbufs[1];
static const void *arrow_cbufs[64][2];
static struct ArrowArray arrow_child[64], *arrow_children[64];
static struct ArrowSchema arrow_cschema[64], *arrow_cschildren[64];
static char arrow_names[64][64];
static double arrow_f64[3] = {1, 2, 3};
static void release_costs(struct ArrowArray *a) {
  released++;
  a->release = NULL;
}
static void release_schema(struct ArrowSchema *s) { s->release = NULL; }
static void release_noop(struct ArrowArray *a) { a->release = NULL; }
static void arrow_costs(struct ArrowArray *a, struct ArrowSchema *s, int short_col) {
  const char *cols = hydroshard_table_columns("costs");
  int n = 0;
  for (const char *p = cols; *p;) {
    const char *colon = strchr(p, ':'), *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    if (strncmp(p, "block_id:", 9)) {
      snprintf(arrow_names[n], sizeof arrow_names[n], "%.*s", (int)(colon - p), p);
      int is_stage = !strcmp(arrow_names[n], "stage_id");
      arrow_cbufs[n][0] = NULL;
      arrow_cbufs[n][1] = is_stage ? (const void *)stage : (const void *)arrow_f64;
      arrow_child[n] = (struct ArrowArray){.length = n == short_col ? 2 : 3, .n_buffers = 2, .buffers = arrow_cbufs[n], .release = release_noop};
      arrow_children[n] = &arrow_child[n];
      arrow_cschema[n] = (struct ArrowSchema){.format = is_stage ? "i" : "g", .name = arrow_names[n], .release = release_schema};
      arrow_cschildren[n] = &arrow_cschema[n];
      n++;
    }
    p = *end ? end + 1 : end;
  }
  *a = (struct ArrowArray){.length = 3, .n_buffers = 1, .buffers = arrow_pbufs, .n_children = n, .children = arrow_children, .release = release_costs};
  *s = (struct ArrowSchema){.format = "+s", .name = "", .n_children = n, .children = arrow_cschildren, .release = release_schema};
}

static void errors(const char *out) {
  char dir[8192];
  int rc;

  /* Handles and options. */
  report("null_handle", hydroshard_open(NULL, out), NULL);
  hydroshard_rank *fresh = hydroshard_new();
  report("open_without_case", hydroshard_open(fresh, out), fresh);
  report("bad_identity", hydroshard_set_identity(fresh, 4, 4), fresh);
  report("unknown_case", hydroshard_set_case(fresh, "/nonexistent/case.json"), fresh);
  report("bad_case_json", hydroshard_set_case_json(fresh, "{\"version\": 1, \"stages\": -3}"), fresh);
  report("null_case", hydroshard_set_case(fresh, NULL), fresh);
  report("unknown_int_option", hydroshard_set_int(fresh, "wrokers", 2), fresh);
  report("negative_option", hydroshard_set_int(fresh, "queue", -1), fresh);
  report("bad_ownership", hydroshard_set_string(fresh, "ownership", "diagonal"), fresh);
  report("table_before_open", hydroshard_table(fresh, 0, "costs", 0, "", NULL, NULL), fresh);
  hydroshard_free(fresh);

  snprintf(dir, sizeof dir, "%s/study", out);
  hydroshard_rank *h = opened(dir, 4);
  report("set_after_open", hydroshard_set_int(h, "workers", 2), h);

  /* Tables. */
  int32_t ids[3] = {1, 2, 3};
  double vals[3] = {1, 2, 3};
  static int32_t zero32[3] = {0, 0, 0};
  const void *one[1] = {vals};
  report("unknown_table", hydroshard_table(h, 0, "hydro", 3, "stage_id", one, NULL), h);
  report("null_entity", hydroshard_table(h, 0, NULL, 3, "stage_id", one, NULL), h);
  report("null_columns", hydroshard_table(h, 0, "buses", 3, NULL, one, NULL), h);
  report("null_data", hydroshard_table(h, 0, "buses", 3, "stage_id", NULL, NULL), h);
  const void *nullcol[1] = {NULL};
  report("null_column_pointer", hydroshard_table(h, 0, "buses", 3, "stage_id", nullcol, NULL), h);
  report("unknown_column", hydroshard_table(h, 0, "buses", 3, "stage_id,load_gw", one, NULL), h);
  report("derived_column", hydroshard_table(h, 0, "thermals", 3, "generation_mwh", one, NULL), h);
  report("duplicate_column", hydroshard_table(h, 0, "buses", 3, "stage_id,stage_id", one, NULL), h);
  report("missing_column", hydroshard_table(h, 0, "buses", 3, "stage_id", one, NULL), h);
  report("negative_rows", hydroshard_table(h, 0, "costs", -1, "stage_id", one, NULL), h);
  report("huge_rows", hydroshard_table(h, 0, "costs", (int64_t)1 << 40, "stage_id", one, NULL), h);

  /* A whole buses table, then broken variants of it. */
  const char *bcols = hydroshard_table_columns("buses");
  static char bnames[4096];
  static const void *bdata[64];
  static const uint8_t *bvalid[64];
  int nb = 0, block_col = -1, deficit_col = -1;
  bnames[0] = 0;
  for (const char *p = bcols; *p;) {
    const char *colon = strchr(p, ':'), *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    if (nb) strcat(bnames, ",");
    strncat(bnames, p, (size_t)(colon - p));
    if (!strncmp(p, "stage_id:", 9)) bdata[nb] = stage;
    else if (!strncmp(p, "block_id:", 9)) bdata[nb] = zero32, block_col = nb;
    else if (!strncmp(p, "bus_id:", 7)) bdata[nb] = ids;
    else bdata[nb] = vals, deficit_col = nb;
    nb++;
    p = *end ? end + 1 : end;
  }
  (void)block_col;
  static uint8_t bad_valid[3] = {1, 2, 1};
  bvalid[deficit_col] = bad_valid;
  report("validity_on_not_nullable", hydroshard_table(h, 0, "buses", 3, bnames, bdata, bvalid), h);
  bvalid[deficit_col] = NULL;

  /* costs given, then a second time; a write without tables; an id out of
   * range; a bad value (NaN) found by the writer's checks. */
  report("costs_ok", costs(h, 0), h);
  report("costs_twice", costs(h, 0), h);
  report("write_without_tables", hydroshard_write_scenario(h, 3), h);
  report("write_missing_tables", hydroshard_write_scenario(h, 0), h);
  report("discard", hydroshard_discard_scenario(h, 0), h);
  report("discard_again", hydroshard_discard_scenario(h, 0), h);
  report("costs_out_of_range", costs(h, 9), h);
  report("write_out_of_range", hydroshard_write_scenario(h, 9), h);
  hydroshard_discard_scenario(h, 9);

  /* Wrong length: an Arrow column shorter than stage_id. */
  {
    struct ArrowArray a;
    struct ArrowSchema s;
    arrow_costs(&a, &s, 2);
    report("arrow_short_column", hydroshard_table_arrow(h, 1, "costs", &a, &s), h);
    printf("CHECK arrow_taken_on_failure %d -\n", a.release == NULL && s.release == NULL && released == 1);
    arrow_costs(&a, &s, -1);
    report("arrow_costs_ok", hydroshard_table_arrow(h, 1, "costs", &a, &s), h);
    report("arrow_discard", hydroshard_discard_scenario(h, 1), h);
    printf("CHECK arrow_released_on_discard %d -\n", released == 2);
  }

  /* Arrow: a NULL array, an array that is not a struct, a column of the
   * wrong type. The library takes the structs whatever happens. */
  report("arrow_null", hydroshard_table_arrow(h, 2, "costs", NULL, NULL), h);
  {
    static const void *bufs[2] = {NULL, NULL};
    static double col[3] = {1, 2, 3};
    bufs[1] = col;
    struct ArrowArray a = {.length = 3, .n_buffers = 2, .buffers = bufs, .release = release_noop};
    struct ArrowSchema s = {.format = "g", .name = "x", .release = release_schema};
    report("arrow_not_struct", hydroshard_table_arrow(h, 2, "costs", &a, &s), h);
  }
  {
    /* a struct of one column, stage_id, declared as float64 */
    static const void *pbufs[1] = {NULL}, *cbufs[2] = {NULL, NULL};
    static double col[3] = {0, 1, 2};
    cbufs[1] = col;
    static struct ArrowArray child, *children[1];
    child = (struct ArrowArray){.length = 3, .n_buffers = 2, .buffers = cbufs, .release = release_noop};
    children[0] = &child;
    struct ArrowArray a = {.length = 3, .n_buffers = 1, .buffers = pbufs, .n_children = 1, .children = children, .release = release_noop};
    static struct ArrowSchema cs, *cschildren[1];
    cs = (struct ArrowSchema){.format = "g", .name = "stage_id", .release = release_schema};
    cschildren[0] = &cs;
    struct ArrowSchema s = {.format = "+s", .name = "", .n_children = 1, .children = cschildren, .release = release_schema};
    report("arrow_wrong_type", hydroshard_table_arrow(h, 2, "costs", &a, &s), h);
  }

  /* Counts and queries. */
  int64_t n = hydroshard_owned(h, NULL, 5);
  printf("CHECK owned_null_array %lld %s\n", (long long)n, n < 0 ? hydroshard_errmsg(h) : "");
  n = hydroshard_case_int(h, "hours");
  printf("CHECK case_unknown %lld %s\n", (long long)n, hydroshard_errmsg(h));
  printf("CHECK columns_unknown %d -\n", hydroshard_table_columns("nope") == NULL);

  /* Training input. */
  rc = hydroshard_write_iteration_json(h, "{\"iteration\": 1, \"timing\": [], \"bogus\": 1}");
  report("iteration_unknown_field", rc, h);
  rc = hydroshard_checkpoint_stage(h, 1, 7, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  report("checkpoint_bad_stage", rc, h);
  rc = hydroshard_checkpoint_stage(h, 1, 0, 0, 0, 2, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  report("checkpoint_null_arrays", rc, h);
  rc = hydroshard_checkpoint_stage(h, 1, 0, 0, 0, 0, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  report("checkpoint_stage_empty", rc, h);
  rc = hydroshard_checkpoint_stage(h, 1, 0, 0, 0, 0, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  report("checkpoint_stage_twice", rc, h);
  report("checkpoint_missing_stages", hydroshard_write_checkpoint(h, 1), h);

  report("close", hydroshard_close(h), h);
  report("write_after_close", hydroshard_write_scenario(h, 0), h);
  report("close_twice", hydroshard_close(h), h);
  hydroshard_free(h);
  printf("CHECK done 0 -\n");
}

static volatile sig_atomic_t host_saw;
static void on_term(int sig) {
  (void)sig;
  host_saw++;
}

static void signals(const char *out) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);

  hydroshard_rank *h = opened(out, 4);
  report("costs", costs(h, 0), h);
  /* Without hydroshard_handle_signals the host's handler gets SIGTERM. */
  raise(SIGTERM);
  printf("CHECK host_handler %d -\n", (int)host_saw);
  printf("CHECK interrupted_before %d -\n", hydroshard_interrupted(h));
  report("handle_signals", hydroshard_handle_signals(h), h);
  kill(getpid(), SIGTERM);
  /* The library sees it on its own thread: wait for it, bounded. */
  int seen = 0;
  for (int i = 0; i < 2000 && !(seen = hydroshard_interrupted(h)); i++) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  printf("CHECK interrupted_after %d -\n", seen);
  printf("CHECK host_handler_after %d -\n", (int)host_saw);
  report("write_interrupted", hydroshard_write_scenario(h, 0), h);
  report("close_interrupted", hydroshard_close_interrupted(h, "signal"), h);
  hydroshard_free(h);
  printf("CHECK done 0 -\n");
}

#ifdef HYDROSHARD_CAPITEST
int hydroshard_test_panic(hydroshard_rank *h);
#endif

static void panics(const char *out) {
#ifdef HYDROSHARD_CAPITEST
  hydroshard_rank *h = opened(out, 4);
  report("panic", hydroshard_test_panic(h), h);
  /* The handle and the process carry on. */
  report("costs_after_panic", costs(h, 0), h);
  report("close_after_panic", hydroshard_close(h), h);
  hydroshard_free(h);
  printf("CHECK done 0 -\n");
#else
  (void)out;
  fprintf(stderr, "check: built without HYDROSHARD_CAPITEST\n");
  exit(2);
#endif
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: check errors|signals|panic OUT\n");
    return 2;
  }
  const char *out = argv[2];
#ifdef HYDROSHARD_WITH_MPI
  MPI_Init(&argc, &argv);
  int me;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  static char dir[4096];
  snprintf(dir, sizeof dir, "%s/rank-%d", argv[2], me);
  out = dir;
#endif
  if (!strcmp(argv[1], "errors")) errors(out);
  else if (!strcmp(argv[1], "signals")) signals(out);
  else if (!strcmp(argv[1], "panic")) panics(out);
  else return 2;
#ifdef HYDROSHARD_WITH_MPI
  MPI_Finalize();
#endif
  return 0;
}
