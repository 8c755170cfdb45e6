#!/usr/bin/env bash
# Builds the C library: DIR/lib/libhydroshard.so (go build -buildmode=c-shared),
# DIR/lib/libhydroshard.a (c-archive), DIR/include/hydroshard.h, the header
# of C and C++ programs, and DIR/include/hydroshard.f90, the Fortran module
# (compile it with the program: mpifort DIR/include/hydroshard.f90 prog.f90).
# DIR defaults to build/.
#   scripts/build-lib.sh [DIR]
# Link with -L DIR/lib -lhydroshard (and -Wl,-rpath,DIR/lib, or set
# LD_LIBRARY_PATH), or with DIR/lib/libhydroshard.a -lpthread -lm.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
dir=${1:-build}
mkdir -p "$dir/lib" "$dir/include"
go build -buildmode=c-shared -o "$dir/lib/libhydroshard.so" ./cmd/libhydroshard
go build -buildmode=c-archive -o "$dir/lib/libhydroshard.a" ./cmd/libhydroshard
# cgo writes its own header beside each library; C users include ours.
rm -f "$dir/lib/libhydroshard.h"
cp include/hydroshard.h include/hydroshard.f90 "$dir/include/"
echo "built $dir/lib/libhydroshard.so, $dir/lib/libhydroshard.a, $dir/include/hydroshard.h and hydroshard.f90 (the Fortran module's source)"
