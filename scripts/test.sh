#!/usr/bin/env bash
# Installs the dependencies, builds lutra and runs every test: natively, then the same suite
# cross-built for 64-bit ARM under qemu-user. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
# On aarch64, tests/test_cross_arch.cpp generates from the model file converted above on x86.
LUTRA_CROSS_MODEL="$PWD/build/default.lutra" bash scripts/test-aarch64.sh
