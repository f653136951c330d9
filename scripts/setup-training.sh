#!/usr/bin/env bash
# Installs what training/train_bitnet.py needs, from Debian's packages.
# Only for training lutra's tiny model: building, testing and using lutra never need torch.
# libopenblas0-pthread matters: without it Debian's torch falls back to the reference BLAS,
# which makes training about 40x slower. Safe to run twice: apt-get skips what is installed.
set -euo pipefail

packages=(python3 python3-torch python3-sentencepiece python3-numpy libopenblas0-pthread)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-training: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-training: installed ${missing[*]}"
