#!/usr/bin/env bash
# One device call on nvidia-h200-x2 that answers the single-GPU questions of issues 5 and 7 in parallel:
#   GPU 0: whole-model training steps (ours: GLA-1.3B original / StateX, Mamba2-1.3B original / StateX) and the
#          64K-context runs, then benchmarks/kernels.py (correctness vs float64, ours vs fla per layer, SSD,
#          memory, first call, per-kernel profile);
#   GPU 1: the GPU demo (a small GLA pre-trained, LPT vs StateX post-training, recall eval), then the stock fla
#          anchors (GLAForCausalLM; Mamba2ForCausalLM's torch fallback), whose first call autotunes, for
#          whatever time is left.
# Every job has its own time limit inside DEADLINE seconds; results are packed into $OUT/results.tgz at the end.
# usage: benchmarks/gpu_call_speed.sh OUT [DEADLINE_S]     (repo root; statex_dist and fla importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_speed.sh OUT [DEADLINE_S]}
DEADLINE=${2:-540}
RES=${RES:-/tmp/statex_results}
mkdir -p "$RES"/{e2e,kernels,demo}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
left() { echo $((DEADLINE - SECONDS - ${1:-0})); }
(
  CUDA_VISIBLE_DEVICES=0 timeout "${E2E_LIMIT:-300}" $PY benchmarks/gpu_e2e.py --parts speed,long --speed-variants ours \
    --out "$RES/e2e/gpu_e2e.md" > "$RES/e2e/log" 2>&1
  echo "[gpu0] ours exit $? at ${SECONDS}s" | tee -a "$RES/e2e/log"
  CUDA_VISIBLE_DEVICES=0 timeout "$(left 15)" $PY benchmarks/kernels.py --out "$RES/kernels" \
    --sections "${KERNEL_SECTIONS:-check,time,profile,memory,cold,ssd,fla}" --fla-timeout 60 \
    --variants-original "${VARIANTS_ORIGINAL:-default}" --variants-merged "${VARIANTS_MERGED:-default}" \
    > "$RES/kernels/log" 2>&1
  echo "[gpu0] kernels exit $? at ${SECONDS}s" | tee -a "$RES/kernels/log"
) &
(
  CUDA_VISIBLE_DEVICES=1 timeout "${DEMO_LIMIT:-360}" $PY -m statex_dist.cli demo --config configs/demo/gpu.json \
    --out "$RES/demo/run" --overwrite > "$RES/demo/log" 2>&1
  echo "[gpu1] demo exit $? at ${SECONDS}s" | tee -a "$RES/demo/log"
  CUDA_VISIBLE_DEVICES=1 timeout "$(left 15)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants fla,fla-mamba2 \
    --steps 3 --warmup 2 --out "$RES/e2e/gpu_e2e_fla.md" > "$RES/e2e/log_fla" 2>&1
  echo "[gpu1] fla anchors exit $? at ${SECONDS}s" | tee -a "$RES/e2e/log_fla"
) &
wait
# what comes back: the tables as files, everything else (logs, demo report and plots) in one archive
cp "$RES"/e2e/*.md "$RES"/kernels/kernels_h200.md "$OUT"/ 2>/dev/null
cp "$RES"/demo/run/report.md "$OUT"/demo_report.md 2>/dev/null
tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*/data/*' --exclude='*/corpus/*' \
  --exclude='*.pt' --exclude='*/checkpoints/*' -C "$RES" .
ls -la "$OUT"
