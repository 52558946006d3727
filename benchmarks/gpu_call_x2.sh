#!/usr/bin/env bash
# One nvidia-h200-x2 call, two phases (issues 5 and 7):
#   A, side by side: GPU 0 checks our SSD kernels against float64 (tests/kernels/test_gpu_ssd.py), times the
#      GLA-1.3B and Mamba2-1.3B training steps (original and StateX) in one process and profiles one Mamba2
#      step; GPU 1 runs the small Mamba2 GPU demo (pre-train, LPT vs StateX, recall eval; configs/demo/gpu-mamba2.json).
#   B, both GPUs: benchmarks/gpu_train.sh at world size 2 (FSDP with checkpoints, resume, export + from_pretrained,
#      ZeRO-3, ZeRO-2), each step skipped when it cannot finish before DEADLINE.
# usage: benchmarks/gpu_call_x2.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla, deepspeed importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_x2.sh OUT [DEADLINE_S]}
DEADLINE=${2:-565}
RES=${RES:-/tmp/statex_x2}
mkdir -p "$RES"/{a,demo,train}
export PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
PY=${PYTHON:-python3}
(
  CUDA_VISIBLE_DEVICES=0 timeout 60 $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py -rA \
    > "$RES/a/test_gpu_ssd.log" 2>&1
  echo "[gpu0] test_gpu_ssd exit $? at ${SECONDS}s" | tee -a "$RES/a/test_gpu_ssd.log"
  CUDA_VISIBLE_DEVICES=0 timeout "${SPEED_LIMIT:-120}" $PY benchmarks/gpu_e2e.py --parts speed,profile \
    --speed-variants ours,ours-mamba2 --profile-models mamba2 --steps 4 --warmup 2 \
    --out "$RES/a/gpu_e2e.md" > "$RES/a/log_e2e" 2>&1
  echo "[gpu0] e2e exit $? at ${SECONDS}s" | tee -a "$RES/a/log_e2e"
) &
(
  CUDA_VISIBLE_DEVICES=1 timeout "${DEMO_LIMIT:-170}" $PY -m statex_dist.cli demo --config configs/demo/gpu-mamba2.json \
    --out "$RES/demo/run" --overwrite > "$RES/demo/log" 2>&1
  echo "[gpu1] demo exit $? at ${SECONDS}s" | tee -a "$RES/demo/log"
) &
wait
echo "phase B at ${SECONDS}s"
RUNS=${RUNS:-"fsdp resume export zero3 zero2"} DEADLINE=$DEADLINE RUN_TIMEOUT=${RUN_TIMEOUT:-140} \
  bash benchmarks/gpu_train.sh "$RES/train" 2
cp "$RES"/a/gpu_e2e.md "$RES"/train/gpu_train.md "$OUT"/ 2>/dev/null
cp "$RES"/demo/run/report.md "$OUT"/demo_report.md 2>/dev/null
tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*/data/*' --exclude='*/corpus/*' \
  --exclude='*.pt' --exclude='*/checkpoints/*' -C "$RES" .
echo "done at ${SECONDS}s"
