#!/usr/bin/env bash
# Prepares an aarch64 cross build on a Debian 12 x86-64 host: Debian's cross compiler and
# qemu-user on the host, and the arm64 builds of lutra's library dependencies unpacked into a
# sysroot folder (build-aarch64/sysroot) that cmake/toolchain-aarch64.cmake points at.
#
# The arm64 -dev packages are unpacked, not installed: libcpuinfo-dev:arm64 (and oneDNN's) cannot
# be installed beside their amd64 versions, dpkg refuses the shared files (design.md §9).
# Safe to run twice: it installs, downloads and unpacks only what is missing.
#
#   bash scripts/setup-aarch64.sh [sysroot folder]
set -euo pipefail
repo="$(realpath "$(dirname "$0")/..")"
sysroot="$(realpath -m "${1:-$repo/build-aarch64/sysroot}")"
debs="$(dirname "$sysroot")/arm64-debs"

# The library, CLI and tests need these (perf/ wants oneDNN and Google Benchmark too, which the
# cross build leaves out). Each -dev package's .so link points into its runtime package, listed
# beside it; libc and libstdc++ come with the cross compiler (/usr/aarch64-linux-gnu).
arm64_packages=(
  libsentencepiece-dev libsentencepiece0
  libcpuinfo-dev libcpuinfo0
  libpcre2-dev libpcre2-8-0
  libxxhash-dev libxxhash0
)
# Header-only libraries are the same on every architecture ("Architecture: all").
header_packages=(nlohmann-json3-dev libcxxopts-dev doctest-dev)
host_packages=(cmake pkg-config g++-aarch64-linux-gnu qemu-user)

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-aarch64: need root or sudo to install packages" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# apt can only download arm64 packages once arm64 is one of dpkg's architectures (multiarch).
apt_lists_stale=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${sudo[@]}" dpkg --add-architecture arm64
  apt_lists_stale=1
fi
missing=()
for p in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ $apt_lists_stale -eq 1 ] || ! apt-cache show libcpuinfo0:arm64 >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup-aarch64: installed ${missing[*]}"
fi

# Download into $debs (apt-get download writes to the current folder; as root, not through the
# _apt user, who cannot write there), then unpack each .deb not unpacked yet: a stamp per
# package file remembers which ones are.
mkdir -p "$debs" "$sysroot"
wanted=()
for p in "${arm64_packages[@]}"; do wanted+=("$p:arm64"); done
wanted+=("${header_packages[@]}")
to_download=()
for p in "${wanted[@]}"; do
  name="${p%%:*}" arch="${p#*:}"
  [ "$arch" = "$p" ] && arch=all
  # apt-get download names files name_version_arch.deb. A Debian point release does not replace
  # a file already here: delete the folder to fetch the current versions.
  compgen -G "$debs/${name}_*_${arch}.deb" >/dev/null || to_download+=("$p")
done
if [ ${#to_download[@]} -gt 0 ]; then
  (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "${to_download[@]}")
  echo "setup-aarch64: downloaded ${to_download[*]}"
fi
mkdir -p "$sysroot/.unpacked"
for deb in "$debs"/*.deb; do
  stamp="$sysroot/.unpacked/$(basename "$deb")"
  [ -e "$stamp" ] && continue
  dpkg-deb -x "$deb" "$sysroot"
  touch "$stamp"
done
echo "setup-aarch64: sysroot ready at $sysroot"
