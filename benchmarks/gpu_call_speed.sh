#!/usr/bin/env bash
# One device call on nvidia-h200-x2 that answers the single-GPU questions of issues 5 and 7 in parallel:
#   GPU 0: GLA-1.3B training steps, ours (original, StateX) and stock fla's GLAForCausalLM in the same process;
#          a profile of one GLA-1.3B and one Mamba2-1.3B step (where Mamba2's time goes); the 64K-context
#          Mamba2-1.3B StateX step;
#   GPU 1: benchmarks/kernels.py: correctness vs float64, per-layer times, first call, 64K memory, per-kernel
#          profile, SSD check and timing, and fla's chunk_gla on the original shape (last: it autotunes).
# Every job has its own time limit inside DEADLINE seconds; results are packed into $OUT/results.tgz at the end.
# usage: benchmarks/gpu_call_speed.sh OUT [DEADLINE_S]     (repo root; statex_dist and fla importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_speed.sh OUT [DEADLINE_S]}
DEADLINE=${2:-540}
RES=${RES:-/tmp/statex_results}
mkdir -p "$RES"/{e2e,kernels}
export PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
PY=${PYTHON:-python3}
left() { echo $((DEADLINE - SECONDS - ${1:-0})); }
(
  CUDA_VISIBLE_DEVICES=0 timeout "${SPEED_LIMIT:-300}" $PY benchmarks/gpu_e2e.py --parts speed \
    --speed-variants "${SPEED_VARIANTS:-ours,fla}" --out "$RES/e2e/gpu_e2e_speed.md" > "$RES/e2e/log_speed" 2>&1
  echo "[gpu0] speed exit $? at ${SECONDS}s" | tee -a "$RES/e2e/log_speed"
  CUDA_VISIBLE_DEVICES=0 timeout "$(left 15)" $PY benchmarks/gpu_e2e.py --parts profile,long --long-models mamba2 \
    --steps 4 --out "$RES/e2e/gpu_e2e_profile.md" > "$RES/e2e/log_profile" 2>&1
  echo "[gpu0] profile+long exit $? at ${SECONDS}s" | tee -a "$RES/e2e/log_profile"
) &
(
  CUDA_VISIBLE_DEVICES=1 timeout "$(left 15)" $PY benchmarks/kernels.py --out "$RES/kernels" \
    --sections "${KERNEL_SECTIONS:-check,time,cold,memory,profile,ssd,fla}" --fla-timeout 200 \
    --ssd-backends triton,triton_gla,torch \
    --variants-original "${VARIANTS_ORIGINAL:-default}" --variants-merged "${VARIANTS_MERGED:-default}" \
    > "$RES/kernels/log" 2>&1
  echo "[gpu1] kernels exit $? at ${SECONDS}s" | tee -a "$RES/kernels/log"
) &
wait
cp "$RES"/e2e/*.md "$RES"/kernels/kernels_h200.md "$OUT"/ 2>/dev/null
tar czf "$OUT/results.tgz" -C "$RES" .
ls -la "$OUT"
