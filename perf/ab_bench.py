#!/usr/bin/env python3
"""A/B prefill speed of several lutra binaries on one model, alternated so the machine's drift
hits each alike: every round runs `lutra bench` once per binary for pp128 (-r 3) and pp512
(-b 512, one batch, -r 2), at 1 and 2 threads, --int8-bq; prints the median of all samples.

  perf/ab_bench.py MODEL ROUNDS BINARY...      e.g. perf/ab_bench.py /tmp/hp/m.lutra 4 old/lutra build/lutra

`lutra convert` drops the file it wrote from the page cache, so the first run reads it back in
large folios (2 MiB pages); a model copied or written by another program may sit there in
4 KiB folios, which slows weight streaming 2-3x on this VM: evict it first with
os.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) (`lutra bench` says how much is in 2 MiB pages).
"""
import collections
import json
import statistics
import subprocess
import sys

model, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
tests = [["-p", "128", "-r", "3"], ["-p", "512", "-b", "512", "-r", "2"]]
samples = collections.defaultdict(list)
for r in range(rounds):
    for args in tests:
        for b in bins:
            cmd = [b, "bench", "-m", model, "-n", "0", "-t", "1,2", "--int8-bq", "--no-bandwidth", "--json"] + args
            for j in json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout):
                samples[(b, j["test"], j["threads"])] += j["samples"]
    print(f"round {r + 1} of {rounds} done", file=sys.stderr, flush=True)
print("| binary | test | threads | median tok/s | samples |")
print("|---|---|---:|---:|---|")
for (b, t, th), s in sorted(samples.items(), key=lambda kv: (kv[0][1], kv[0][2], bins.index(kv[0][0]))):
    print(f"| {b} | {t} | {th} | {statistics.median(s):.1f} | {' '.join(f'{x:.0f}' for x in s)} |")
