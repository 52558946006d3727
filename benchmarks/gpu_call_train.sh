#!/usr/bin/env bash
# Device call on nvidia-h200-x2 for issue 7 runs 1 and 3 through the trainer (benchmarks/gpu_train.sh): FSDP at
# world size 2 with a checkpoint, resume from it, export + from_pretrained, DeepSpeed ZeRO-3 and ZeRO-2, then
# StateX and the original GLA-1.3B at world size 1 (FSDP, side by side on the two GPUs);
# steps that cannot finish before DEADLINE are skipped. Logs and metrics come back in one archive.
# usage: benchmarks/gpu_call_train.sh OUT [DEADLINE_S]    (repo root; statex_dist, fla, deepspeed importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_train.sh OUT [DEADLINE_S]}
RES=${RES:-/tmp/statex_train}
# The world-size-2 runs first: world size 1 was measured on 2026-11-30 (call a), the 2-GPU runs not yet.
RUNS=${RUNS:-"fsdp resume export zero3 zero2 ws1"} DEADLINE=${2:-560} FIRST_TIMEOUT=${FIRST_TIMEOUT:-220} \
  RUN_TIMEOUT=${RUN_TIMEOUT:-130} bash benchmarks/gpu_train.sh "$RES" 2
cp "$RES/gpu_train.md" "$RES/gpu_train.log" "$OUT"/ 2>/dev/null
tar czf "$OUT/train_results.tgz" -C "$RES" .
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.csv" 2>&1
