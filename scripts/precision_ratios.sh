#!/usr/bin/env bash
# The CPU and how each precision's latency compares with float32 on it: for Large and
# Small, one thread, `mnv3-bench --precision fp32,P` alternates the two run for run, so
# whatever else the machine does hits both alike. Prints one table (the ratio of the
# median latencies, and of the fastest runs) and the command that reproduces each row.
# Usage: scripts/precision_ratios.sh [--runs N] [--warmup N] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=300
warmup=30
threads=1
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "precision_ratios.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
jobs=$(nproc 2>/dev/null || echo 2)
make -s -j"$jobs" bench >/dev/null
bench=build/mnv3-bench

# What the ratios depend on: the model name and the instruction sets the kernels use.
cpu=$(sed -n 's/^model name[[:space:]]*: //p;s/^CPU part[[:space:]]*: /ARM part /p' /proc/cpuinfo \
      2>/dev/null | head -n 1)
flags=$(sed -n 's/^\(flags\|Features\)[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
have=""
for f in avx2 fma f16c avx512f avx512_vnni avx512_bf16 avx512vbmi avx_vnni asimd asimddp fphp asimdhp i8mm bf16; do
    case " $flags " in *" $f "*) have="$have $f" ;; esac
done
echo "CPU: ${cpu:-unknown} ($(uname -m)); kernel-relevant features:${have:- none}"
echo "mnv3 $(git rev-parse --short HEAD 2>/dev/null || echo '(no git)'), $(date -u +%Y-%m-%d)," \
     "$threads thread(s), $runs runs after $warmup warm-up, alternated with fp32"
echo
echo "| model | precision | P / fp32, medians | P / fp32, fastest runs | P runs as |"
echo "|---|---|---:|---:|---|"
for arch in large small; do
    for p in int8 relaxed fp16-weights; do
        out=$("$bench" --arch "$arch" --threads "$threads" --runs "$runs" --warmup "$warmup" \
                       --no-layers --precision "fp32,$p")
        ratio=$(sed -n "s|^$p / fp32 latency, interleaved: min \([0-9.]*\)  median \([0-9.]*\)|\2 \1|p" <<<"$out")
        kernels=$(sed -n 's/^mnv3-bench: .*isa \([a-z0-9]*\), [0-9]* threads*, /\1 set, /p' <<<"$out" | tail -n 1)
        echo "| $arch | $p | ${ratio% *} | ${ratio#* } | $kernels |"
    done
done
echo
echo "Each row: $bench --arch ARCH --threads $threads --runs $runs --warmup $warmup --no-layers --precision fp32,P"
