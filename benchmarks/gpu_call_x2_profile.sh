#!/usr/bin/env bash
# nvidia-h200-x2 call, scripted 2026-11-30 (sixth round) for the next device time (issue 7: why ZeRO-3 keeps 0.64
# of one GPU while FSDP keeps 1.005): GLA-1.3B StateX through `statex train` at world size 2, 12 steps, no
# checkpoint writes, steps 4-5 profiled on both ranks (profiling.enabled: kernel time per step, NCCL share, the
# ops table; the traces stay on the machine): DeepSpeed ZeRO-3, then FSDP2 as shipped.
# usage: benchmarks/gpu_call_x2_profile.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla, deepspeed importable)
source "$(dirname "$0")/gpu_call_common.sh" x2_profile "$@"
mkdir -p "$RES/train"
RUNS="prep zero3 fsdp-nockpt" PROFILE=1 EXTRA="steps=12" FIRST_TIMEOUT="$(lim 240)" RUN_TIMEOUT=150 \
  DEADLINE=$((DEADLINE - SECONDS - 10)) bash benchmarks/gpu_train.sh "$RES/train" 2 > "$RES/train/console.log" 2>&1
note "trainer runs (ZeRO-3, FSDP; profiled) exit $?"
pack
cat "$RES/steps.log"
