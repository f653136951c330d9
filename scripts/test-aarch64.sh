#!/usr/bin/env bash
# Cross-builds lutra for aarch64 (CLI, static library, tests) and runs every test under
# qemu-user: ctest starts each test binary through the toolchain file's emulator.
#
#   bash scripts/test-aarch64.sh       # build folder: build-aarch64 (the sysroot lives inside)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-aarch64
bash scripts/setup-aarch64.sh "$build/sysroot"
cmake -S . -B "$build" --toolchain cmake/toolchain-aarch64.cmake \
  -DCMAKE_BUILD_TYPE=Release -DLUTRA_AARCH64_SYSROOT="$PWD/$build/sysroot" >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
