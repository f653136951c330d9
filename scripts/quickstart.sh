#!/usr/bin/env bash
# Installs the dependencies, builds lutra and chats with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "A short generation, then chat (/exit or Ctrl-D to leave):"
build/lutra run -p "It was a dark and stormy night" -n 48 --seed 1
exec build/lutra chat "$@"
