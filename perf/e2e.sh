#!/usr/bin/env bash
# End-to-end speed of `lutra run` on a synthetic BitNet b1.58 2B4T-shaped model: prefill of
# a 128-token prompt and decode of 64 tokens, for each thread count, runs interleaved so
# the machine's drift hits every configuration alike. Prints medians, the spread and the
# ratio to 1 thread, plus the bytes of weights read per token and the GB/s that implies.
#
# usage: perf/e2e.sh [MODEL] [REPS] [THREADS...]     (defaults: build/bitnet-2b4t.lutra 5 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
lutra=${LUTRA:-build/lutra}
model=${1:-build/bitnet-2b4t.lutra}
reps=${2:-5}
shift $(( $# > 2 ? 2 : $# ))
threads=("${@:-1 2}")
[ ${#threads[@]} -eq 1 ] && read -r -a threads <<<"${threads[0]}"

[ -f "$model" ] || "$lutra" convert --synthetic bitnet-2b4t -o "$model" -q
prompt=$(printf "the %.0s" $(seq 127))   # 127 words + BOS = 128 tokens
bytes=$("$lutra" info -m "$model" | awk '/^per token:/ {print $3}')

declare -A pp tg
for ((r = 0; r < reps; r++)); do
  for t in "${threads[@]}"; do
    line=$("$lutra" run -m "$model" -p "$prompt" -n 64 --temp 0 -t "$t" 2>&1 >/dev/null | grep '^prompt:')
    pp[$t]+="$(awk '{print $4}' <<<"$line") "
    tg[$t]+="$(awk '{print $10}' <<<"$line") "
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f %.2f %.2f", m, a[1], a[NR]}'; }
echo "model: $model ($bytes MB of weights read per token), $reps runs each, interleaved"
printf '| threads | prefill 128 tok/s (min-max) | decode tok/s (min-max) | decode vs 1 thread | weights read GB/s |\n|---|---|---|---|---|\n'
base=""
for t in "${threads[@]}"; do
  read -r pm plo phi <<<"$(median <<<"${pp[$t]}")"
  read -r tm tlo thi <<<"$(median <<<"${tg[$t]}")"
  [ -n "$base" ] || base=$tm
  awk -v t="$t" -v pm="$pm" -v plo="$plo" -v phi="$phi" -v tm="$tm" -v tlo="$tlo" -v thi="$thi" \
      -v base="$base" -v mb="$bytes" 'BEGIN {printf "| %s | %.1f (%.1f-%.1f) | %.2f (%.2f-%.2f) | %.2fx | %.1f |\n", t, pm, plo, phi, tm, tlo, thi, tm/base, tm*mb/1000}'
done
