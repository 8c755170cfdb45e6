#!/usr/bin/env bash
# Installs the test-only tools into a cache directory when missing and
# exports where they are. Sourced by scripts/test.sh; safe to run alone.
#   HYDROSHARD_NODE_DIR  npm prefix holding @duckdb/node-api, hyparquet,
#                        hyparquet-compressors, nodejs-polars (default
#                        ~/.cache/hydroshard/node)
set -euo pipefail
: "${HYDROSHARD_NODE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/hydroshard/node}"
export HYDROSHARD_NODE_DIR

# nodejs-polars' native binary is an optional dependency that npm skips on
# node 20 (it asks for node >= 22): name it explicitly, at the same version.
node_pkgs=("@duckdb/node-api@1.5.6-r.1" "hyparquet@1.33.0" "hyparquet-compressors@1.1.2"
  "nodejs-polars@0.25.2" "nodejs-polars-linux-x64-gnu@0.25.2")
need_npm=0
for p in @duckdb/node-api hyparquet hyparquet-compressors nodejs-polars nodejs-polars-linux-x64-gnu; do
  [ -f "$HYDROSHARD_NODE_DIR/node_modules/$p/package.json" ] || need_npm=1
done
if [ "$need_npm" = 1 ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "== installing ${node_pkgs[*]} into $HYDROSHARD_NODE_DIR"
    mkdir -p "$HYDROSHARD_NODE_DIR"
    # Two test runs at once share the cache: one installs, the other waits.
    (
      flock -w 600 9 || echo "warning: waited 600 s for $HYDROSHARD_NODE_DIR/.install.lock"
      [ -f "$HYDROSHARD_NODE_DIR/package.json" ] || echo '{"name":"hydroshard-test-tools","private":true}' > "$HYDROSHARD_NODE_DIR/package.json"
      npm install --prefix "$HYDROSHARD_NODE_DIR" --no-audit --no-fund --loglevel=error "${node_pkgs[@]}" \
        || echo "warning: npm install failed; interop tests will skip (or fail with CI=true)"
    ) 9>"$HYDROSHARD_NODE_DIR/.install.lock"
  else
    echo "warning: npm not found; interop tests will skip (or fail with CI=true)"
  fi
fi

# Debian packages, installed in one apt-get run when missing (root only):
#   flatbuffers-compiler  flatc 2.0.8: the policy package's generated-code and
#                         JSON-dump interop tests
#   slurm-wlm, munge      the local SLURM cluster of the launcher tests
#                         (scripts/slurm/local-cluster.sh; internal/launch)
#   openmpi-bin           mpirun for the launcher tests
#   chromium              headless rendering of merge-shards report --html
#                         (cmd/merge-shards/report_html_test.go)
#   gcc, libopenmpi-dev,  the C API's tests (cmd/libhydroshard): the C and
#   gfortran              Fortran examples, built with mpicc and mpifort
apt_missing=()
command -v flatc >/dev/null 2>&1 || apt_missing+=(flatbuffers-compiler)
{ command -v slurmctld && command -v slurmd && command -v sbatch; } >/dev/null 2>&1 || apt_missing+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || apt_missing+=(munge)
command -v mpirun >/dev/null 2>&1 || apt_missing+=(openmpi-bin)
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v gcc >/dev/null 2>&1 || apt_missing+=(gcc)
command -v gfortran >/dev/null 2>&1 || apt_missing+=(gfortran)
# mpicc comes with openmpi-bin, mpi.h (and the Fortran mpi module) with the -dev package.
echo '#include <mpi.h>' | mpicc -E -x c - >/dev/null 2>&1 || apt_missing+=(libopenmpi-dev)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${apt_missing[*]} with apt-get"
    # -o DPkg::Lock::Timeout: a second test run installing at the same time waits.
    { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null; } \
      || echo "warning: apt-get install ${apt_missing[*]} failed; the tests that need them will skip (or fail with CI=true)"
  else
    echo "warning: ${apt_missing[*]} missing and not root; the tests that need them will skip (or fail with CI=true)"
  fi
fi
