#!/usr/bin/env bash
# The main job: build the release CLI, check the fastest kernels on this CPU against the
# scalar reference, then benchmark MobileNetV3-Large and -Small in every precision: float32,
# float16 weights, relaxed (float16 or bf16 arithmetic where the CPU has it, else float32)
# and int8 (the built-in networks, 1 thread and all cores); last, the CPU and each
# precision's latency against float32 in alternated runs (scripts/precision_ratios.sh).
# Extra arguments go to `mnv3 bench` (e.g. --runs 200 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product mnv3
bin="$(swift build -c release --show-bin-path)/mnv3"
"$bin" selfcheck
cores=$(nproc 2>/dev/null || echo 1)
for precision in fp32 fp16-weights relaxed int8; do
    for arch in large small; do
        "$bin" bench --arch "$arch" --precision "$precision" --threads 1 "$@"
        if [ "$cores" -gt 1 ]; then
            "$bin" bench --arch "$arch" --precision "$precision" --threads "$cores" "$@"
        fi
    done
done
scripts/precision_ratios.sh
