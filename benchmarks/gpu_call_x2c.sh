#!/usr/bin/env bash
# nvidia-h200-x2 call, 2026-11-30 (fifth round): issue 7's 2-GPU scaling with the world-size-1 baseline in the
# same call, 12 steps each, no checkpoint writes in any of them (call h's world-size-2 run wrote one every 3 steps):
#   GPU 1 first: the 64K-context steps of GLA-1.3B StateX and Mamba2-1.3B StateX (fused norms; gpu_e2e.py --parts
#   long) and on GPU 0 the per-kernel profile of our SSD at d_state 128 / 512 (kernels.py --sections ssdprofile),
#   while the CPU writes the GLA-1.3B checkpoint and corpus; then benchmarks/gpu_train.sh: world size 1
#   (StateX on GPU 0, the original on GPU 1), FSDP world size 2 as shipped, and with
#   parallel.reshard_after_forward=false (the blocks stay gathered from forward to backward, as ZeRO-2).
# usage: benchmarks/gpu_call_x2c.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" x2c "$@"
mkdir -p "$RES"/{e2e,train,ssd}
(
  CUDA_VISIBLE_DEVICES=1 timeout "$(lim 200)" $PY benchmarks/gpu_e2e.py --parts long --steps 4 \
    --out "$RES/e2e/long.md" > "$RES/e2e/log_long" 2>&1
  note "gpu1 64K exit $?"
) &
(
  CUDA_VISIBLE_DEVICES=0 timeout "$(lim 120)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssdprofile \
    > "$RES/ssd/log" 2>&1
  note "gpu0 SSD per-kernel profile exit $?"
) &
RUNS=prep bash benchmarks/gpu_train.sh "$RES/prep" 2 > "$RES/prep.log" 2>&1
note "prep exit $?"
wait
RUNS="ws1 fsdp-nockpt fsdp-noreshard" EXTRA="steps=12" DEADLINE=$((DEADLINE - SECONDS - 10)) FIRST_TIMEOUT=160 \
  RUN_TIMEOUT=120 bash benchmarks/gpu_train.sh "$RES/train" 2 > "$RES/train/console.log" 2>&1
note "trainer runs exit $?"
pack
cat "$RES/steps.log"
