#!/usr/bin/env bash
# nvidia-h200-x2 call (issue 7 run 3): GLA-1.3B StateX through `statex train`, 12 steps, no checkpoint writes, every
# run on one machine so each efficiency has its one-GPU figure from the same host (ZeRO-3's speed follows the
# host's: it was host-bound, 2026-11-30 seventh round): world size 1 (StateX and the original side by side), FSDP2,
# DeepSpeed ZeRO-3 (blocks gathered as units, parallel.zero3_leaf_blocks), ZeRO-2, ZeRO-3 with DeepSpeed's
# per-submodule hooks (zero3-hooks), and ZeRO-3 prefetching about two blocks ahead (zero3-prefetch: a 50M-element
# prefetch bucket holds about one GLA-1.3B block of 51M, and 115 ms a step of ZeRO-3's collectives were not hidden
# behind compute in the seventh round, against FSDP2's 82). PROFILE=1 also profiles steps 4-5 of every run on both
# ranks (the profiler's host overhead then slows those steps; the medians skip steps 1-2 only).
# Ran once as call s of the seventh round with RUNS="prep zero3 fsdp-nockpt" PROFILE=1.
# REPEATS=N runs the list N times in turn (gpu_train.sh), each round against its own one-GPU run.
# NGPU=1 on one GPU: only the one-GPU steps (ws1x, zero2-ws1, ...) then mean anything.
# usage: [PROFILE=1] [RUNS=...] [REPEATS=N] benchmarks/gpu_call_x2_profile.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla,
# deepspeed importable)
source "$(dirname "$0")/gpu_call_common.sh" x2_profile "$@"
mkdir -p "$RES/train"
: "${RUNS:=prep ws1 fsdp-nockpt zero3 zero2 zero3-hooks zero3-prefetch}"
RUNS=$RUNS PROFILE=${PROFILE:-0} EXTRA="steps=12" \
  FIRST_TIMEOUT="$(lim 240)" RUN_TIMEOUT=90 DEADLINE=$((DEADLINE - SECONDS - 10)) \
  bash benchmarks/gpu_train.sh "$RES/train" "${NGPU:-2}" > "$RES/train/console.log" 2>&1
note "trainer runs ($RUNS) exit $?"
pack
cat "$RES/steps.log"
