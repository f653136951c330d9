#!/usr/bin/env bash
# Runs the kernel benchmarks (perf/bench_kernels.cpp) and prints one Markdown table per shape
# and m: each kernel's median time and effective weight bandwidth, hot and cold, and its time
# as a multiple of the fastest multiply-add ternary kernel (t2-qs8-gemm-*) of the same run.
#
# Usage: perf/run_kernels.sh [--quick] [--repetitions N] [--min-time S] [--filter REGEX]
#                            [--bin PATH] [--json PATH] [--from-json PATH]
#   --quick          1 repetition, 0.05 s minimum time per benchmark (a smoke test)
#   --repetitions N  repetitions of each benchmark, interleaved at random (default 5)
#   --min-time S     minimum seconds per repetition (default 0.1)
#   --filter REGEX   passed to --benchmark_filter, e.g. '2560x2560/m1/' or 'onednn|t2-'
#   --bin PATH       the benchmark binary (default build/perf/lutra_bench_kernels, or
#                    $LUTRA_BENCH_KERNELS); this script builds nothing
#   --json PATH      also keep Google Benchmark's JSON output there
#   --from-json PATH run nothing: print the tables of a run kept with --json
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LUTRA_BENCH_KERNELS:-$root/build/perf/lutra_bench_kernels}
reps=5
min_time=0.1
filter=""
json_out=""
from_json=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) reps=1; min_time=0.05 ;;
    --repetitions) reps=${2:?}; shift ;;
    --min-time) min_time=${2:?}; shift ;;
    --filter) filter=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    --json) json_out=${2:?}; shift ;;
    --from-json) from_json=${2:?}; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "run_kernels: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
tmp=$(mktemp "${TMPDIR:-/tmp}/lutra-kernels.XXXXXX.json")
trap 'rm -f "$tmp"' EXIT

run_benchmarks() {
  if [ ! -x "$bin" ]; then
    echo "run_kernels: no $bin; build it first: cmake --build build --target lutra_bench_kernels" >&2
    exit 1
  fi
  local args=(--benchmark_repetitions="$reps" --benchmark_min_time="$min_time" --benchmark_format=json)
  [ -n "$filter" ] && args+=(--benchmark_filter="$filter")
  # Interleaving spreads each benchmark's repetitions over the run, so a burst of load from the
  # machine's other users lands on several kernels a little instead of on one kernel a lot.
  if [ "$reps" -gt 1 ] && "$bin" --help 2>&1 | grep -q benchmark_enable_random_interleaving; then
    args+=(--benchmark_enable_random_interleaving=true)
  fi
  export OMP_NUM_THREADS=1  # the binary pins oneDNN to one thread too; this covers other runtimes
  local start=$SECONDS
  "$bin" "${args[@]}" >"$tmp"
  elapsed=$((SECONDS - start))
  if [ ! -s "$tmp" ]; then
    echo "run_kernels: no results (does --filter '$filter' match any benchmark?)" >&2
    exit 1
  fi
  [ -z "$json_out" ] || cp "$tmp" "$json_out"
}

if [ -n "$from_json" ]; then
  cp "$from_json" "$tmp"
  elapsed="" min_time=""  # not recorded in the JSON
else
  run_benchmarks
fi

/usr/bin/python3 - "$tmp" "$elapsed" "$min_time" <<'PY'
import json, statistics, sys

path, elapsed, min_time = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path) as f:
    data = json.load(f)
ctx = data.get("context", {})
to_us = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}

# (shape, m) -> kernel -> temperature -> [(time_us, GB/s, GOPS)], in the order of registration
# Interleaved repetitions come out in run order: sort by registration order (family_index).
benchmarks = sorted(data.get("benchmarks", []), key=lambda b: b.get("family_index", 0))
groups, errors, labels = {}, [], {}
for b in benchmarks:
    if b.get("run_type", "iteration") != "iteration":
        continue
    name = b.get("run_name", b["name"])
    parts = [p for p in name.split("/") if p != "real_time"]
    if len(parts) != 5 or parts[0] != "gemm":  # gemm/<kernel>/<N>x<K>/m<m>/<hot|cold>
        continue
    _, kernel, shape, m, temp = parts
    if b.get("error_occurred"):
        errors.append(f"{name}: {b.get('error_message', '?')}")
        continue
    t = b["real_time"] * to_us[b.get("time_unit", "ns")]
    groups.setdefault((shape, m), {}).setdefault(kernel, {}).setdefault(temp, []).append(
        (t, b.get("weight_bw", 0.0) / 1e9, b.get("ops", 0.0) / 1e9))
    if kernel.startswith("onednn") and b.get("label"):
        labels.setdefault((shape, m), {})[kernel] = b["label"].split(" copies=")[0]

def fmt_time(us):
    return f"{us:.0f}" if us >= 100 else f"{us:.1f}" if us >= 10 else f"{us:.2f}"

def med(samples, i):
    return statistics.median(s[i] for s in samples)

def cv(samples):
    ts = [s[0] for s in samples]
    return 100 * statistics.stdev(ts) / statistics.mean(ts) if len(ts) > 1 else None

print(f"# lutra kernel benchmarks\n")
load = " ".join(f"{x:.2f}" for x in ctx.get("load_avg", [])) or "?"
print(f"{ctx.get('date', '?')}, {ctx.get('host_name', '?')}: {ctx.get('num_cpus', '?')} CPUs at "
      f"{ctx.get('mhz_per_cpu', '?')} MHz, load average {load}; lutra ISAs "
      f"{ctx.get('lutra_isas', '?')}; oneDNN {ctx.get('onednn_version', '?')}; Google Benchmark "
      f"library built as {ctx.get('library_build_type', '?')}.")
reps = max((b.get("repetitions", 1) for b in benchmarks), default=0)
print(f"{reps} repetition(s)" + (f" of at least {min_time} s each" if min_time else "") +
      ", single-threaded" + (f"; {elapsed} s in all" if elapsed else "") + ". "
      "Medians over repetitions; ×t2 = time / the fastest t2-qs8-gemm variant's time in the same "
      "shape, m and weight set; cv = coefficient of variation of the time over repetitions.\n")

temps = ["hot", "cold"]
for (shape, m), kernels in groups.items():
    prefill = m != "m1"
    present = [t for t in temps if any(t in k for k in kernels.values())]
    base = {}
    for t in present:
        cands = [(med(k[t], 0), name) for name, k in kernels.items()
                 if name.startswith("t2-qs8-gemm-") and t in k]
        if cands:
            base[t] = min(cands)
    title = ", ".join(f"{t}: {base[t][1]}" for t in present if t in base) or "none in this run"
    print(f"## {shape}, m={m[1:]}\n")
    print(f"t2 baseline ({title})\n")
    head, rule = ["kernel"], ["---"]
    for t in present:
        cols = [f"{t} µs", f"{t} GB/s"] + ([f"{t} GOPS"] if prefill else []) + [f"{t} ×t2", f"{t} cv%"]
        head += cols
        rule += ["---:"] * len(cols)
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(rule) + "|")
    for name, k in kernels.items():
        row = [name]
        for t in present:
            if t not in k:
                row += ["–"] * (5 if prefill else 4)
                continue
            tm = med(k[t], 0)
            bw = med(k[t], 1)
            row += [fmt_time(tm), f"{bw:.1f}" if bw >= 10 else f"{bw:.2f}"]
            if prefill:
                row.append(f"{med(k[t], 2):.1f}")
            row.append(f"{tm / base[t][0]:.2f}" if t in base else "–")
            c = cv(k[t])
            row.append(f"{c:.0f}" if c is not None else "–")
        print("| " + " | ".join(row) + " |")
    if (shape, m) in labels:
        print("\noneDNN implementations: " + ", ".join(f"{k} = {v}" for k, v in labels[(shape, m)].items()))
    print()

if errors:
    print("## Benchmarks that reported an error\n")
    for e in errors:
        print(f"- {e}")
if not groups:
    print("No benchmark results (does the filter match anything?).")
    sys.exit(1)
PY
