#!/usr/bin/env bash
# Fetches the public-domain English text lutra's tiny model is trained on, from Debian's
# own packages (no other network source): Project Gutenberg's "The Adventures of Sherlock
# Holmes" (shipped as test data by golang-github-jdkato-prose-dev) and "Moby Dick"
# (shipped by golang-github-colinmarc-hdfs-dev).
# Usage: scripts/fetch-training-text.sh [DEST]   (default build/training-text)
# Leaves DEST/sherlock.txt and DEST/mobydick.txt; safe to run twice.
set -euo pipefail

dest=${1:-build/training-text}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ -s "$dest/sherlock.txt" ] && [ -s "$dest/mobydick.txt" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # lets apt's _apt user write the download
cd "$work"
apt-get download golang-github-jdkato-prose-dev golang-github-colinmarc-hdfs-dev >/dev/null
for deb in ./*.deb; do
  dpkg-deb -x "$deb" unpacked
done
for name in sherlock.txt mobydick.txt; do
  found=$(find unpacked -name "$name" -type f | head -n 1)
  [ -n "$found" ] || { echo "fetch-training-text: $name not found in the Debian packages" >&2; exit 1; }
  cp "$found" "$dest/$name"
done
echo "fetch-training-text: wrote $dest/sherlock.txt and $dest/mobydick.txt"
