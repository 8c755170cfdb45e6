/*
 * train.c: replays a training run through the C API, for
 * cmd/libhydroshard's tests. Under mpirun each rank reads SCRIPT.<rank>,
 * written by the Go test from the same synthetic run the Go API writes, and
 * makes every call it lists:
 *
 *   iteration JSON                                   hydroshard_write_iteration_json
 *   stage IT STAGE CAP WARM NCUTS DIM SAT            hydroshard_checkpoint_stage, with NCUTS lines
 *   cut ID SLOT ITER FWD INTERCEPT ACTIVE COEF... [STATE...]   (SAT = 1: states at generation follow)
 *   basis IT STAGE BASIS_IT NCOLS NROWS NCUTROWS STATUS...     hydroshard_checkpoint_basis
 *   states IT STAGE COUNT DIM VALUE...               hydroshard_checkpoint_states
 *   meta IT JSON                                     hydroshard_checkpoint_meta_json
 *   checkpoint IT                                    hydroshard_write_checkpoint
 *   terminated REASON | close                        how the rank closes
 *
 * Floating-point values are C99 hexadecimal (%a), exact both ways.
 *
 *   train OUT CASE SCRIPT FORWARD_PASSES MAX_ITERATIONS SEED THREADS
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hydroshard.h"

static void die(hydroshard_rank *h, const char *what, int rc) {
  fprintf(stderr, "train: %s: error %d: %s\n", what, rc, hydroshard_errmsg(h));
  exit(1);
}

static char *line;
static size_t cap;

static char *next_line(FILE *f) {
  if (getline(&line, &cap, f) < 0) return NULL;
  line[strcspn(line, "\n")] = 0;
  return line;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int me, world;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (argc != 8) {
    fprintf(stderr, "usage: train OUT CASE SCRIPT FORWARD_PASSES MAX_ITERATIONS SEED THREADS\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s.%d", argv[3], me);
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return 1;
  }
  hydroshard_rank *h = hydroshard_new();
  int rc;
  if ((rc = hydroshard_set_identity(h, me, world))) die(h, "identity", rc);
  if ((rc = hydroshard_set_case(h, argv[2]))) die(h, "case", rc);
  if ((rc = hydroshard_set_int(h, "forward_passes", atoi(argv[4])))) die(h, "forward_passes", rc);
  if ((rc = hydroshard_set_int(h, "max_iterations", atoi(argv[5])))) die(h, "max_iterations", rc);
  if ((rc = hydroshard_set_int(h, "seed", atoll(argv[6])))) die(h, "seed", rc);
  if ((rc = hydroshard_set_int(h, "threads", atoi(argv[7])))) die(h, "threads", rc);
  if ((rc = hydroshard_set_string(h, "stopping_mode", "iteration_limit"))) die(h, "stopping_mode", rc);
  if ((rc = hydroshard_set_string(h, "policy_mode", "fresh"))) die(h, "policy_mode", rc);
  if ((rc = hydroshard_set_string(h, "solver", "train.c"))) die(h, "solver", rc);
  if ((rc = hydroshard_open(h, argv[1]))) die(h, "open", rc);
  if (hydroshard_last_iteration(h) != 0) die(h, "a fresh run has no durable iteration", HYDROSHARD_EINVAL);

  char *l;
  int closed = 0;
  while ((l = next_line(f))) {
    if (!strncmp(l, "iteration ", 10)) {
      if ((rc = hydroshard_write_iteration_json(h, l + 10))) die(h, "iteration", rc);
    } else if (!strncmp(l, "stage ", 6)) {
      int it, stage, dim, sat;
      unsigned cap_, warm;
      long long n;
      if (sscanf(l + 6, "%d %d %u %u %lld %d %d", &it, &stage, &cap_, &warm, &n, &dim, &sat) != 7) die(h, l, 1);
      uint64_t *ids = calloc((size_t)n + 1, 8);
      uint32_t *slots = calloc((size_t)n + 1, 4), *iters = calloc((size_t)n + 1, 4), *fwd = calloc((size_t)n + 1, 4);
      double *icpt = calloc((size_t)n + 1, 8), *coef = calloc((size_t)(n * dim) + 1, 8);
      double *states = sat ? calloc((size_t)(n * dim) + 1, 8) : NULL;
      uint8_t *active = calloc((size_t)n + 1, 1);
      for (long long i = 0; i < n; i++) {
        char *c = next_line(f), *end;
        if (!c || strncmp(c, "cut ", 4)) die(h, "cut line expected", 1);
        c += 4;
        ids[i] = strtoull(c, &end, 10);
        slots[i] = (uint32_t)strtoul(end, &end, 10);
        iters[i] = (uint32_t)strtoul(end, &end, 10);
        fwd[i] = (uint32_t)strtoul(end, &end, 10);
        icpt[i] = strtod(end, &end);
        active[i] = (uint8_t)strtoul(end, &end, 10);
        for (int d = 0; d < dim; d++) coef[i * dim + d] = strtod(end, &end);
        for (int d = 0; sat && d < dim; d++) states[i * dim + d] = strtod(end, &end);
      }
      if ((rc = hydroshard_checkpoint_stage(h, it, stage, cap_, warm, n, dim, ids, slots, iters, fwd, icpt, coef, states,
                                            active)))
        die(h, "checkpoint_stage", rc);
      /* The library copied what it keeps: free at once. */
      free(ids), free(slots), free(iters), free(fwd), free(icpt), free(coef), free(states), free(active);
    } else if (!strncmp(l, "basis ", 6)) {
      char *end;
      int it = (int)strtol(l + 6, &end, 10), stage = (int)strtol(end, &end, 10);
      unsigned bit = (unsigned)strtoul(end, &end, 10);
      long long nc = strtoll(end, &end, 10), nr = strtoll(end, &end, 10);
      unsigned ncut = (unsigned)strtoul(end, &end, 10);
      uint8_t *cs = calloc((size_t)nc + 1, 1), *rs = calloc((size_t)nr + 1, 1);
      for (long long i = 0; i < nc; i++) cs[i] = (uint8_t)strtoul(end, &end, 10);
      for (long long i = 0; i < nr; i++) rs[i] = (uint8_t)strtoul(end, &end, 10);
      if ((rc = hydroshard_checkpoint_basis(h, it, stage, bit, nc, cs, nr, rs, ncut))) die(h, "checkpoint_basis", rc);
      free(cs), free(rs);
    } else if (!strncmp(l, "states ", 7)) {
      char *end;
      int it = (int)strtol(l + 7, &end, 10), stage = (int)strtol(end, &end, 10);
      long long count = strtoll(end, &end, 10);
      int dim = (int)strtol(end, &end, 10);
      double *v = calloc((size_t)(count * dim) + 1, 8);
      for (long long i = 0; i < count * dim; i++) v[i] = strtod(end, &end);
      if ((rc = hydroshard_checkpoint_states(h, it, stage, count, dim, v))) die(h, "checkpoint_states", rc);
      free(v);
    } else if (!strncmp(l, "meta ", 5)) {
      char *end;
      int it = (int)strtol(l + 5, &end, 10);
      if ((rc = hydroshard_checkpoint_meta_json(h, it, end + 1))) die(h, "checkpoint_meta_json", rc);
    } else if (!strncmp(l, "checkpoint ", 11)) {
      if ((rc = hydroshard_write_checkpoint(h, atoi(l + 11)))) die(h, "write_checkpoint", rc);
    } else if (!strncmp(l, "terminated ", 11)) {
      if ((rc = hydroshard_close_terminated(h, l + 11))) die(h, "close_terminated", rc);
      closed = 1;
    } else if (!strcmp(l, "close")) {
      if ((rc = hydroshard_close(h))) die(h, "close", rc);
      closed = 1;
    } else {
      fprintf(stderr, "train: %s: unknown line %.40s\n", path, l);
      return 1;
    }
  }
  fclose(f);
  if (!closed) die(h, "the script does not close the rank", 1);
  printf("rank %d of %d: training replayed\n", me, world);
  hydroshard_free(h);
  free(line);
  MPI_Finalize();
  return 0;
}
