/*
 * simulate.c: a solver rank in C that writes its simulation scenarios with
 * hydroshard, under mpirun (or srun).
 *
 *   scripts/build-lib.sh
 *   mpicc -O2 -ffp-contract=off -I build/include examples/c/simulate.c \
 *         -L build/lib -lhydroshard -Wl,-rpath,$PWD/build/lib -o simulate
 *   mpirun -np 4 ./simulate --out OUT --case CASE --scenarios N
 *   merge-shards OUT
 *
 * Flags: --out DIR, --case CASE (a case.json, its directory, or "tiny",
 * "demo"), --scenarios N (the run's count), --scenarios-from FILE (a rerun
 * list, as merge-shards --rerun-list writes it and scripts/slurm passes to
 * a rerun job), --identity mpi|env (mpi, the default: the rank and world
 * size MPI gives; env: detected by hydroshard from the launcher's
 * environment, as under srun, where OpenMPI may not be wired to SLURM),
 * --workers N (the library's encoding threads), --threads T (solver threads
 * sharing the one handle, each writing every T-th scenario), --arrow,
 * --borrow, --mutate, --bench (below).
 *
 * Each rank asks hydroshard which scenarios it still owns (a requeued rank
 * gets only what its earlier attempts did not commit), "simulates" each one
 * and writes every table of the case through the plain-array API
 * (hydroshard_table) or, with --arrow, as Arrow record batches through the
 * C Data Interface (hydroshard_table_arrow), built here by hand.
 *
 * The values are a fixed function of (scenario, row, column), the one
 * cmd/libhydroshard's tests compute in Go, so that the study written here
 * can be compared byte for byte with the same study written through the Go
 * API:
 *   rows: costs one per stage (block_id null); inflow_lags one per (stage,
 *         hydro, lag 1..order); the others one per (stage, block, entity),
 *         entities in case order;
 *   stage_id, block_id, lag_index, the entity id: what the row is;
 *   int8 columns (codes): 0; bool columns: (row + scenario) % 2;
 *   double column j (its index among the table's input columns):
 *         ((scenario*7919 + row*131 + j*17) % 100003) / 8.0,
 *         null when nullable and (row + j) % 5 == 0.
 *
 * --bench times the writing alone (shardbench's capi section): every
 * scenario gets scenario 0's values, computed once before the clock starts,
 * and the program prints the seconds from hydroshard_open to the return of
 * hydroshard_close.
 *
 * --mutate changes costs.total_cost of the first row of every scenario
 * after handing the table over: with the default (copied) arrays the file
 * must not show it, with --borrow or --arrow it must (the buffers are read
 * in place). The tests use it to prove both.
 */
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hydroshard.h"

#define MAXCOLS 64

static const char *tables[] = {"costs", "hydros", "thermals", "exchanges", "buses", "pumping_stations",
                               "contracts", "non_controllables", "inflow_lags", "violations/generic"};
#define NTABLES (sizeof tables / sizeof tables[0])

static void die(hydroshard_rank *h, const char *what, int rc) {
  fprintf(stderr, "simulate: %s: error %d: %s\n", what, rc, hydroshard_errmsg(h));
  exit(1);
}

/* One input column of a table, as hydroshard_table_columns describes it. */
struct column {
  char name[64];
  char type[8]; /* int32, int8, double, bool */
  int nullable;
};

static int parse_columns(const char *text, struct column *cols) {
  int n = 0;
  const char *p = text;
  while (*p && n < MAXCOLS) {
    const char *colon = strchr(p, ':');
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    struct column *c = &cols[n++];
    snprintf(c->name, sizeof c->name, "%.*s", (int)(colon - p), p);
    int tl = (int)(end - colon - 1);
    c->nullable = colon[tl] == '?';
    snprintf(c->type, sizeof c->type, "%.*s", tl - c->nullable, colon + 1);
    p = *end ? end + 1 : end;
  }
  return n;
}

/* One table of one scenario: its columns' buffers, filled by fill(). */
struct table {
  const char *entity;
  int64_t rows;
  int ncols;
  struct column cols[MAXCOLS];
  void *data[MAXCOLS];
  uint8_t *valid[MAXCOLS];
};

static size_t width(const struct column *c) {
  if (!strcmp(c->type, "double")) return 8;
  if (!strcmp(c->type, "int32")) return 4;
  return 1;
}

/* fill computes the table's rows for scenario s (see the top comment). */
static void fill(struct table *t, hydroshard_rank *h, int s) {
  int64_t stages = hydroshard_case_int(h, "stages"), blocks = hydroshard_case_int(h, "blocks");
  int64_t lags = hydroshard_case_int(h, "inflow_lag_order");
  int32_t ids[4096];
  int64_t nids = hydroshard_case_ids(h, t->entity, ids, 4096);
  if (nids < 0 || nids > 4096) die(h, "hydroshard_case_ids", HYDROSHARD_EINVAL);
  int costs = !strcmp(t->entity, "costs"), lagt = !strcmp(t->entity, "inflow_lags");
  t->rows = costs ? stages : lagt ? stages * nids * lags : stages * blocks * nids;
  for (int j = 0; j < t->ncols; j++) {
    struct column *c = &t->cols[j];
    t->data[j] = malloc((size_t)t->rows * width(c) + 1);
    /* A validity byte-map only where a value can be null: a nullable int32
     * column (block_id) always has its value here, so it gets none (NULL:
     * every value valid). */
    t->valid[j] = c->nullable && !strcmp(c->type, "double") ? malloc((size_t)t->rows + 1) : NULL;
  }
  for (int64_t r = 0; r < t->rows; r++) {
    int64_t stage, block = 0, entity = 0, lag = 0;
    if (costs) {
      stage = r;
    } else if (lagt) {
      stage = r / (nids * lags);
      entity = (r / lags) % nids;
      lag = r % lags + 1;
    } else {
      stage = r / (blocks * nids);
      block = (r / nids) % blocks;
      entity = r % nids;
    }
    for (int j = 0; j < t->ncols; j++) {
      struct column *c = &t->cols[j];
      if (!strcmp(c->type, "double")) {
        ((double *)t->data[j])[r] = (double)((s * 7919LL + r * 131 + j * 17) % 100003) / 8.0;
        if (c->nullable) t->valid[j][r] = (r + j) % 5 != 0;
      } else if (!strcmp(c->type, "int32")) {
        int32_t v;
        if (!strcmp(c->name, "stage_id")) v = (int32_t)stage;
        else if (!strcmp(c->name, "block_id")) v = (int32_t)block;
        else if (!strcmp(c->name, "lag_index")) v = (int32_t)lag;
        else v = ids[entity]; /* the entity id column */
        ((int32_t *)t->data[j])[r] = v;
      } else if (!strcmp(c->type, "int8")) {
        ((int8_t *)t->data[j])[r] = 0;
      } else { /* bool */
        ((uint8_t *)t->data[j])[r] = (uint8_t)((r + s) % 2);
      }
    }
  }
}

static void free_table(struct table *t) {
  for (int j = 0; j < t->ncols; j++) {
    free(t->data[j]);
    free(t->valid[j]);
  }
}

/* ---- Arrow C Data Interface, by hand ------------------------------------ */

static long arrays_made, arrays_released;

struct child_private {
  const void *buffers[2];
  int shared; /* the buffers belong to someone else (--bench) */
};

static void release_child(struct ArrowArray *a) {
  struct child_private *p = a->private_data;
  if (!p->shared) {
    free((void *)p->buffers[0]);
    free((void *)p->buffers[1]);
  }
  free(p);
  a->release = NULL;
}

struct parent_private {
  const void *buffers[1];
  struct ArrowArray *children[MAXCOLS];
  struct ArrowArray child_structs[MAXCOLS];
};

static void release_parent(struct ArrowArray *a) {
  struct parent_private *p = a->private_data;
  for (int64_t i = 0; i < a->n_children; i++)
    if (p->children[i]->release) p->children[i]->release(p->children[i]);
  free(p);
  a->release = NULL;
  __atomic_add_fetch(&arrays_released, 1, __ATOMIC_SEQ_CST);
}

struct schema_private {
  struct ArrowSchema *children[MAXCOLS];
  struct ArrowSchema child_structs[MAXCOLS];
  char names[MAXCOLS][64];
};

static void release_child_schema(struct ArrowSchema *s) { s->release = NULL; }

static void release_schema(struct ArrowSchema *s) {
  struct schema_private *p = s->private_data;
  for (int64_t i = 0; i < s->n_children; i++)
    if (p->children[i]->release) p->children[i]->release(p->children[i]);
  free(p);
  s->release = NULL;
}

/* to_arrow moves the table's buffers into an ArrowArray (the table no
 * longer owns them): values as they are, validity bytes packed to bits.
 * With shared set, the table's buffers (already in Arrow's layout: see
 * arrow_layout) are only pointed at and stay the table's. */
static void to_arrow(struct table *t, struct ArrowArray *out, struct ArrowSchema *schema, int shared) {
  struct parent_private *pp = calloc(1, sizeof *pp);
  struct schema_private *sp = calloc(1, sizeof *sp);
  for (int j = 0; j < t->ncols; j++) {
    struct column *c = &t->cols[j];
    struct ArrowArray *ch = &pp->child_structs[j];
    struct child_private *cp = calloc(1, sizeof *cp);
    int64_t nulls = 0;
    uint8_t *bits = NULL;
    if (shared) {
      cp->shared = 1;
      cp->buffers[0] = t->valid[j];
      cp->buffers[1] = t->data[j];
      for (int64_t r = 0; t->valid[j] && r < t->rows; r++) nulls += !(t->valid[j][r / 8] >> (r % 8) & 1);
      *ch = (struct ArrowArray){.length = t->rows, .null_count = nulls, .n_buffers = 2, .buffers = cp->buffers,
                                .release = release_child, .private_data = cp};
      pp->children[j] = ch;
      goto schema;
    }
    if (t->valid[j]) {
      bits = calloc((size_t)(t->rows + 7) / 8 + 1, 1);
      for (int64_t r = 0; r < t->rows; r++) {
        if (t->valid[j][r]) bits[r / 8] |= (uint8_t)(1u << (r % 8));
        else nulls++;
      }
      free(t->valid[j]);
      t->valid[j] = NULL;
    }
    void *values = t->data[j];
    if (!strcmp(c->type, "bool")) { /* Arrow booleans are bits too */
      uint8_t *vb = calloc((size_t)(t->rows + 7) / 8 + 1, 1);
      for (int64_t r = 0; r < t->rows; r++)
        if (((uint8_t *)values)[r]) vb[r / 8] |= (uint8_t)(1u << (r % 8));
      free(values);
      values = vb;
    }
    t->data[j] = NULL;
    cp->buffers[0] = bits;
    cp->buffers[1] = values;
    *ch = (struct ArrowArray){.length = t->rows, .null_count = nulls, .n_buffers = 2, .buffers = cp->buffers,
                              .release = release_child, .private_data = cp};
    pp->children[j] = ch;

  schema:;
    struct ArrowSchema *cs = &sp->child_structs[j];
    snprintf(sp->names[j], sizeof sp->names[j], "%s", c->name);
    const char *format = !strcmp(c->type, "double") ? "g" : !strcmp(c->type, "int32") ? "i" : !strcmp(c->type, "int8") ? "c" : "b";
    *cs = (struct ArrowSchema){.format = format, .name = sp->names[j], .flags = c->nullable ? ARROW_FLAG_NULLABLE : 0,
                               .release = release_child_schema};
    sp->children[j] = cs;
  }
  *out = (struct ArrowArray){.length = t->rows, .n_buffers = 1, .buffers = pp->buffers, .n_children = t->ncols,
                             .children = pp->children, .release = release_parent, .private_data = pp};
  *schema = (struct ArrowSchema){.format = "+s", .name = "", .n_children = t->ncols, .children = sp->children,
                                 .release = release_schema, .private_data = sp};
  __atomic_add_fetch(&arrays_made, 1, __ATOMIC_SEQ_CST);
}

/* arrow_layout packs a table's validity bytes and bool values to bits in
 * place of the bytes, once, for to_arrow(shared). */
static void arrow_layout(struct table *t) {
  for (int j = 0; j < t->ncols; j++) {
    uint8_t *bytes[2] = {t->valid[j], !strcmp(t->cols[j].type, "bool") ? t->data[j] : NULL};
    for (int k = 0; k < 2; k++) {
      if (!bytes[k]) continue;
      uint8_t *bits = calloc((size_t)(t->rows + 7) / 8 + 1, 1);
      for (int64_t r = 0; r < t->rows; r++)
        if (bytes[k][r]) bits[r / 8] |= (uint8_t)(1u << (r % 8));
      free(bytes[k]);
      if (k == 0) t->valid[j] = bits;
      else t->data[j] = bits;
    }
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* prepare drops costs.block_id (costs rows are per stage: it is left out,
 * all null) and joins the column names for hydroshard_table. */
static void prepare(struct table *t, char *names) {
  for (int j = 0; j < t->ncols; j++) {
    if (!strcmp(t->entity, "costs") && !strcmp(t->cols[j].name, "block_id")) {
      memmove(&t->cols[j], &t->cols[j + 1], sizeof(struct column) * (size_t)(t->ncols - j - 1));
      t->ncols--;
      j--;
    }
  }
  names[0] = 0;
  for (int j = 0; j < t->ncols; j++) {
    if (j) strcat(names, ",");
    strcat(names, t->cols[j].name);
  }
}

/* What the solver threads share (set once before they start). */
static struct shared {
  hydroshard_rank *h;
  struct table *proto;
  int ntab;
  struct table *bt;
  char **bnames;
  int32_t *todo;
  int64_t n;
  int threads, arrow, borrow, mutate, bench;
} g;
static struct table *kept;
static int64_t nkept;

/* worker writes scenarios todo[k] for k = t, t + threads, ...: one solver
 * thread (t = 0 when arg is NULL). */
static void *worker(void *arg) {
  long t = arg ? *(long *)arg : 0;
  hydroshard_rank *h = g.h;
  int rc;
  for (int64_t k = t; k < g.n && !hydroshard_interrupted(h); k += g.threads) {
    int s = g.todo[k];
    for (int i = 0; i < g.ntab; i++) {
      if (g.bench) {
        if (g.arrow) {
          struct ArrowArray a;
          struct ArrowSchema sc;
          to_arrow(&g.bt[i], &a, &sc, 1);
          if ((rc = hydroshard_table_arrow(h, s, g.bt[i].entity, &a, &sc))) die(h, "hydroshard_table_arrow", rc);
        } else if ((rc = hydroshard_table(h, s, g.bt[i].entity, g.bt[i].rows, g.bnames[i], (const void *const *)g.bt[i].data,
                                          (const uint8_t *const *)g.bt[i].valid))) {
          die(h, "hydroshard_table", rc);
        }
        continue;
      }
      struct table tb = g.proto[i];
      char *names = malloc(MAXCOLS * 64);
      prepare(&tb, names);
      fill(&tb, h, s);
      if (g.arrow) {
        struct ArrowArray a;
        struct ArrowSchema sc;
        double *total = !strcmp(tb.entity, "costs") ? tb.data[1] : NULL; /* total_cost follows stage_id */
        to_arrow(&tb, &a, &sc, 0);
        if ((rc = hydroshard_table_arrow(h, s, tb.entity, &a, &sc))) die(h, "hydroshard_table_arrow", rc);
        if (a.release || sc.release) {
          fprintf(stderr, "simulate: the library did not take the Arrow structs\n");
          exit(1);
        }
        if (g.mutate && total) total[0] = -1.5; /* read in place: the file shows it */
      } else {
        if ((rc = hydroshard_table(h, s, tb.entity, tb.rows, names, (const void *const *)tb.data,
                                   (const uint8_t *const *)tb.valid)))
          die(h, "hydroshard_table", rc);
        if (g.mutate && !strcmp(tb.entity, "costs")) ((double *)tb.data[1])[0] = -1.5;
        if (g.borrow) kept[__atomic_fetch_add(&nkept, 1, __ATOMIC_SEQ_CST)] = tb;
        else free_table(&tb);
      }
      free(names);
    }
    rc = hydroshard_write_scenario(h, s);
    if (rc == HYDROSHARD_ECOMMITTED) continue; /* an earlier attempt did it */
    if (rc == HYDROSHARD_EINTERRUPTED) break;
    if (rc) die(h, "hydroshard_write_scenario", rc);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *out = NULL, *casepath = NULL, *rerun = NULL, *identity = "mpi";
  int scenarios = 0, arrow = 0, borrow = 0, workers = 1, mutate = 0, bench = 0, threads = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--arrow")) arrow = 1;
    else if (!strcmp(a, "--borrow")) borrow = 1;
    else if (!strcmp(a, "--mutate")) mutate = 1;
    else if (!strcmp(a, "--bench")) bench = 1;
    else if (v && !strcmp(a, "--out")) out = v, i++;
    else if (v && !strcmp(a, "--case")) casepath = v, i++;
    else if (v && !strcmp(a, "--scenarios")) scenarios = atoi(v), i++;
    else if (v && !strcmp(a, "--scenarios-from")) rerun = v, i++;
    else if (v && !strcmp(a, "--identity")) identity = v, i++;
    else if (v && !strcmp(a, "--workers")) workers = atoi(v), i++;
    else if (v && !strcmp(a, "--threads")) threads = atoi(v), i++;
    else {
      fprintf(stderr, "simulate: unknown argument %s\n", a);
      return 2;
    }
  }
  if (!out || !casepath || scenarios <= 0 || threads < 1 || threads > 64 || (strcmp(identity, "mpi") && strcmp(identity, "env"))) {
    fprintf(stderr, "usage: simulate --out DIR --case CASE --scenarios N [--scenarios-from FILE] [--identity mpi|env]\n"
                    "                [--workers N] [--threads T] [--arrow] [--borrow] [--mutate] [--bench]\n");
    return 2;
  }
  /* --identity env runs without MPI: under srun, Debian's OpenMPI (built
   * without SLURM's PMI) cannot initialise, and hydroshard reads SLURM's
   * variables itself. */
  int use_mpi = !strcmp(identity, "mpi"), me = 0, world = 1;
  if (use_mpi) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
  }
  if (hydroshard_abi_version() != HYDROSHARD_ABI_VERSION) {
    fprintf(stderr, "simulate: libhydroshard ABI %d, this program was built for %d\n", hydroshard_abi_version(),
            HYDROSHARD_ABI_VERSION);
    return 1;
  }

  hydroshard_rank *h = hydroshard_new();
  int rc;
  if (use_mpi && (rc = hydroshard_set_identity(h, me, world))) die(h, "hydroshard_set_identity", rc);
  if (rerun && (rc = hydroshard_set_string(h, "rerun_file", rerun))) die(h, "rerun_file", rc);
  if ((rc = hydroshard_set_case(h, casepath))) die(h, "hydroshard_set_case", rc);
  if ((rc = hydroshard_set_int(h, "scenarios", scenarios))) die(h, "scenarios", rc);
  if ((rc = hydroshard_set_int(h, "workers", workers))) die(h, "workers", rc);
  if ((rc = hydroshard_set_int(h, "borrow", borrow))) die(h, "borrow", rc);
  if ((rc = hydroshard_set_string(h, "solver", "simulate.c"))) die(h, "solver", rc);
  /* The tables of the case and their columns, once. */
  struct table proto[NTABLES];
  int ntab = 0;
  int64_t lags = hydroshard_case_int(h, "inflow_lag_order");
  for (size_t i = 0; i < NTABLES; i++) {
    int64_t nids = hydroshard_case_ids(h, tables[i], NULL, 0);
    if (strcmp(tables[i], "costs") && (nids <= 0 || (!strcmp(tables[i], "inflow_lags") && lags == 0))) continue;
    struct table *t = &proto[ntab++];
    memset(t, 0, sizeof *t);
    t->entity = tables[i];
    t->ncols = parse_columns(hydroshard_table_columns(tables[i]), t->cols);
  }

  /* --bench: scenario 0's values, once, before the clock starts. */
  struct table bt[NTABLES];
  char *bnames[NTABLES];
  for (int i = 0; bench && i < ntab; i++) {
    bt[i] = proto[i];
    bnames[i] = malloc(MAXCOLS * 64);
    prepare(&bt[i], bnames[i]);
    fill(&bt[i], h, 0);
    if (arrow) arrow_layout(&bt[i]);
  }
  double t0 = now();
  if ((rc = hydroshard_open(h, out))) die(h, "hydroshard_open", rc);
  if ((rc = hydroshard_handle_signals(h))) die(h, "hydroshard_handle_signals", rc);

  int64_t n = hydroshard_remaining(h, NULL, 0);
  if (n < 0) die(h, "hydroshard_remaining", HYDROSHARD_EINVAL);
  int32_t *todo = malloc(sizeof(int32_t) * (size_t)(n + 1));
  if (hydroshard_remaining(h, todo, n) != n) die(h, "hydroshard_remaining", HYDROSHARD_EINVAL);

  /* With borrowed buffers the tables must live until the flush. */
  kept = borrow ? calloc((size_t)(n * ntab + 1), sizeof *kept) : NULL;
  g = (struct shared){h, proto, ntab, bt, bnames, todo, n, threads, arrow, borrow, mutate, bench};
  if (threads == 1) {
    worker(NULL);
  } else {
    /* Several solver threads on one handle, each its own scenarios. */
    pthread_t tid[64];
    long ids[64];
    for (long i = 0; i < threads; i++) {
      ids[i] = i;
      pthread_create(&tid[i], NULL, worker, &ids[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
  }
  if (!hydroshard_interrupted(h) && (rc = hydroshard_flush(h)) && rc != HYDROSHARD_EINTERRUPTED) die(h, "hydroshard_flush", rc);
  if (hydroshard_interrupted(h)) {
    fprintf(stderr, "simulate: rank %d interrupted\n", me);
    hydroshard_close_interrupted(h, "signal");
    hydroshard_free(h);
    if (use_mpi) MPI_Finalize();
    return 3;
  }
  if (arrow && arrays_released != arrays_made) {
    fprintf(stderr, "simulate: %ld Arrow arrays handed over, %ld released after the flush\n", arrays_made,
            arrays_released);
    return 1;
  }
  for (int64_t i = 0; i < nkept; i++) free_table(&kept[i]);
  int rank_id = hydroshard_rank_id(h), world_size = hydroshard_world(h);
  if ((rc = hydroshard_close(h))) die(h, "hydroshard_close", rc);
  if (bench) printf("bench_seconds %.6f\n", now() - t0);
  hydroshard_free(h);
  printf("rank %d of %d: %lld scenarios written (%s%s), %ld Arrow arrays released\n", rank_id, world_size, (long long)n,
         arrow ? "arrow" : "arrays", borrow ? ", borrowed" : "", arrays_released);
  free(todo);
  free(kept);
  if (use_mpi) MPI_Finalize();
  return 0;
}
