#!/usr/bin/env bash
# nvidia-h200-x2 call, 2026-11-30 (fifth round), the session's last device time:
#   GPU 0: the README's CPU demo (configs/demo/default.json: 2-layer Mamba2, which learns MQAR on CPU) on the GPU
#          with bf16 mixed precision and our Triton SSD kernels (issue 7 run 4: a GPU run that learns);
#   GPU 1: the 64K-context steps of GLA-1.3B StateX and Mamba2-1.3B StateX (gpu_e2e.py --parts long, fused norms);
#          then GLA-1.3B StateX through `statex train` at world size 1 (FSDP, 12 steps, no checkpoint writes: the
#          baseline of the scaling efficiency), then the per-kernel profile of our SSD layer at d_state 128 / 512;
#   CPU:   the GLA-1.3B checkpoint and corpus for the trainer runs;
#   then   both GPUs: FSDP world size 2 as shipped and with parallel.reshard_after_forward=false (blocks stay
#          gathered from forward to backward, as ZeRO-2), 12 steps each, no checkpoint writes.
# usage: benchmarks/gpu_call_x2c.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" x2c "$@"
mkdir -p "$RES"/{demo,e2e,train,ssd}
(
  CUDA_VISIBLE_DEVICES=0 timeout "$(lim 320)" $PY -m statex_dist.cli demo --set device=cuda precision=mixed_bf16 \
    kernel_backend=auto --out "$RES/demo/run" --overwrite > "$RES/demo/log" 2>&1
  note "gpu0 demo (default config on cuda) exit $?"
  cp "$RES/demo/run/report.md" "$RES/demo_report.md" 2>/dev/null
) &
(
  CUDA_VISIBLE_DEVICES=1 timeout "$(lim 160)" $PY benchmarks/gpu_e2e.py --parts long --steps 4 \
    --out "$RES/e2e/long.md" > "$RES/e2e/log_long" 2>&1
  note "gpu1 64K exit $?"
) &
LONG=$!
RUNS=prep bash benchmarks/gpu_train.sh "$RES/prep" 2 > "$RES/prep.log" 2>&1
note "prep exit $?"
wait "$LONG"
RUNS=ws1x WS1_GPU=1 EXTRA="steps=12" RUN_TIMEOUT="$(lim 150)" bash benchmarks/gpu_train.sh "$RES/train" 1 \
  > "$RES/train/console1.log" 2>&1
note "gpu1 ws1 exit $?"
CUDA_VISIBLE_DEVICES=1 timeout "$(lim 90)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssdprofile \
  > "$RES/ssd/log" 2>&1
note "gpu1 SSD per-kernel profile exit $?"
wait
RUNS="fsdp-nockpt fsdp-noreshard" EXTRA="steps=12" DEADLINE=$((DEADLINE - SECONDS - 10)) RUN_TIMEOUT=110 \
  bash benchmarks/gpu_train.sh "$RES/train" 2 > "$RES/train/console.log" 2>&1
note "trainer runs ws2 exit $?"
pack
cat "$RES/steps.log"
