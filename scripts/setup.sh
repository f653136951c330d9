#!/usr/bin/env bash
# Installs lutra's build and test dependencies from Debian's packages.
# Safe to run twice: apt-get skips what is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libdnnl-dev libxsimd-dev xtl-dev libsentencepiece-dev libcxxopts-dev doctest-dev
  libcpuinfo-dev libpcre2-dev nlohmann-json3-dev libxxhash-dev libbenchmark-dev
  ocl-icd-opencl-dev  # Debian's oneDNN CMake package requires OpenCL's, though lutra runs on CPU
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: installed ${missing[*]}"
