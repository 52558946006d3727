#!/usr/bin/env bash
# One nvidia-h200 call (one GPU), in order of value, each job with its own limit inside DEADLINE:
#   1. our SSD kernels vs float64 (tests/kernels/test_gpu_ssd.py);
#   2. GLA-1.3B and Mamba2-1.3B training steps (original and StateX) in one process, and a profile of one
#      Mamba2 step;
#   3. the small Mamba2 GPU demo (pre-train, LPT vs StateX, recall eval; configs/demo/gpu-mamba2.json);
#   4. the 64K-context Mamba2-1.3B StateX step;
#   5. the trainer's `single` backend at world size 1, StateX then the original (benchmarks/gpu_train.sh).
# usage: benchmarks/gpu_call_h200.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_h200.sh OUT [DEADLINE_S]}
DEADLINE=${2:-560}
RES=${RES:-/tmp/statex_h200}
mkdir -p "$RES"/{a,demo,train}
export PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
PY=${PYTHON:-python3}
left() { local l=$((DEADLINE - SECONDS - ${1:-0})); echo $((l > 1 ? l : 1)); }
lim() { local l; l=$(left 10); echo $(($1 < l ? $1 : l)); }
save() {  # what has come out so far goes to $OUT after every job (a call cut at its limit keeps it)
  cp "$RES"/a/*.md "$RES/steps.log" "$OUT"/ 2>/dev/null
  cp "$RES"/train/gpu_train.md "$OUT"/ 2>/dev/null
  cp "$RES"/demo/run/report.md "$OUT"/demo_report.md 2>/dev/null
  tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*/data/*' --exclude='*/corpus/*' \
    --exclude='*.pt' --exclude='*/checkpoints/*' --exclude='*/model/*' --exclude='*/work/*' -C "$RES" . 2>/dev/null
}
step() { echo "[$(date +%T)] $* (at ${SECONDS}s)" | tee -a "$RES/steps.log"; save; }
timeout "$(lim 60)" $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py -rA -s > "$RES/a/test_gpu_ssd.log" 2>&1
step "test_gpu_ssd exit $?"
timeout "$(lim 150)" $PY benchmarks/gpu_e2e.py --parts speed,profile --speed-variants ours,ours-mamba2 \
  --profile-models mamba2 --steps 4 --warmup 2 --out "$RES/a/gpu_e2e.md" > "$RES/a/log_e2e" 2>&1
step "e2e speed+profile exit $?"
timeout "$(lim 180)" $PY -m statex_dist.cli demo --config configs/demo/gpu-mamba2.json --out "$RES/demo/run" \
  --overwrite > "$RES/demo/log" 2>&1
step "demo exit $?"
timeout "$(lim 60)" $PY benchmarks/gpu_e2e.py --parts long --long-models mamba2 --steps 2 \
  --out "$RES/a/gpu_e2e_long.md" > "$RES/a/log_long" 2>&1
step "long exit $?"
RUNS=single DEADLINE=$(left 5) RUN_TIMEOUT=100 timeout "$(left 5)" bash benchmarks/gpu_train.sh "$RES/train" 1 \
  > "$RES/train/console.log" 2>&1
step "single exit $?"
cat "$RES/steps.log"
