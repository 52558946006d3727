#!/usr/bin/env bash
# nvidia-h200-x2 call of 2026-11-30's fourth round:
#   in parallel  GPU 0: the SSD NaN diagnosis (benchmarks/debug_ssd_gpu.py), then our SSD kernels with the state
#                       walk vs the split path (kernels.py --sections ssd, d_state 128 / 512, T 4096 / 8192);
#                GPU 1: the Mamba2 GPU demo with the SSD on the PyTorch path (everything else as in
#                       configs/demo/gpu-mamba2.json), to see whether the GPU path learns without our SSD kernels;
#   then         both GPUs: GLA-1.3B StateX under ZeRO-3 with NVLink-sized buckets (benchmarks/deepspeed/zero3-nvlink.json).
# The split path (`triton/split`) was removed after this call (7a56c71): kernels.py now refuses it, so its SSD
# step fails with that message; check out an earlier commit to repeat the call as it ran.
# usage: benchmarks/gpu_call_round4.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla, deepspeed importable)
source "$(dirname "$0")/gpu_call_common.sh" round4 "${1:-}" "${2:-500}"
mkdir -p "$RES"/{diag,ssd,demo,train}
(
  CUDA_VISIBLE_DEVICES=0 timeout 150 $PY benchmarks/debug_ssd_gpu.py "$RES/diag" > "$RES/diag/log" 2>&1
  note "gpu0 diag exit $?"
  CUDA_VISIBLE_DEVICES=0 timeout 120 $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd \
    --ssd-backends triton,triton/split --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
  note "gpu0 ssd walk/split exit $?"
) &
RUNS=prep bash benchmarks/gpu_train.sh "$RES/prep" 2 > "$RES/prep.log" 2>&1 &  # GLA-1.3B checkpoint + corpus (CPU)
(
  CUDA_VISIBLE_DEVICES=1 timeout 270 $PY -m statex_dist.cli demo --config configs/demo/gpu-mamba2.json \
    --set kernel_backend=torch --out "$RES/demo/run" --overwrite > "$RES/demo/log" 2>&1
  note "gpu1 demo (torch SSD) exit $?"
) &
wait
LEFT=$((DEADLINE - SECONDS - 10))
RUNS="zero3-nvlink" EXTRA="steps=10" DEADLINE=$LEFT FIRST_TIMEOUT=$((LEFT - 15)) timeout "$LEFT" \
  bash benchmarks/gpu_train.sh "$RES/train" 2 \
  > "$RES/train/console.log" 2>&1
note "zero3-nvlink exit $?"
cp "$RES"/demo/run/report.md "$OUT"/demo_report.md 2>/dev/null
cp "$RES"/ssd/kernels_h200.md "$OUT"/ssd_walk.md 2>/dev/null
cp "$RES"/diag/*.json "$RES"/train/gpu_train.md "$RES/steps.log" "$OUT"/ 2>/dev/null
tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*/data/*' --exclude='*/corpus/*' --exclude='*.pt' \
  --exclude='*/checkpoints/*' --exclude='*/model/*' --exclude='*/work/*' --exclude='*/runs/*' -C "$RES" . 2>/dev/null
cat "$RES/steps.log"
