#!/usr/bin/env bash
# One nvidia-h200 call (one GPU): the jobs run in the order below, each with its own limit inside DEADLINE
# (JOBS picks a subset):
#   ssdtest  our SSD kernels vs float64 (tests/kernels/test_gpu_ssd.py) and the fused ops (incl. fla's conv) vs
#            the PyTorch modules in fp32 (tests/models/test_fused_ops.py);
#   demo     the small Mamba2 GPU demo (configs/demo/gpu-mamba2.json); if its StateX arm fails, the NaN probe
#            (benchmarks/debug_mamba2_nan.py) on the demo's own pre-trained model, config and first batch;
#   ssdchunk our SSD kernels with 64- and 128-token chunks (check vs float64, then time at d_state 128 / 512);
#   speed    Mamba2-1.3B training steps (original and StateX; SPEED_VARIANTS adds GLA) and a profile of one step;
#   long     the 64K-context Mamba2-1.3B StateX step;
#   single   the trainer's `single` backend at world size 1, StateX then the original (benchmarks/gpu_train.sh);
#   fla      stock fla anchors last (their first calls autotune for minutes): chunk_gla per layer, GLAForCausalLM.
# usage: benchmarks/gpu_call_h200.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_h200.sh OUT [DEADLINE_S]}
DEADLINE=${2:-560}
JOBS=${JOBS:-"ssdtest demo ssdchunk speed long fla"}
RES=${RES:-/tmp/statex_h200}
mkdir -p "$RES"/{a,demo,train,ssd}
export PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
PY=${PYTHON:-python3}
left() { local l=$((DEADLINE - SECONDS - ${1:-0})); echo $((l > 1 ? l : 1)); }
lim() { local l; l=$(left 10); echo $(($1 < l ? $1 : l)); }
save() {  # what has come out so far goes to $OUT after every job (a call cut at its limit keeps it)
  cp "$RES"/a/*.md "$RES"/a/*.json "$RES/steps.log" "$OUT"/ 2>/dev/null
  cp "$RES"/train/gpu_train.md "$OUT"/ 2>/dev/null
  cp "$RES"/ssd/kernels_h200.md "$OUT"/ssd_chunks.md 2>/dev/null
  cp "$RES"/demo/run/report.md "$OUT"/demo_report.md 2>/dev/null
  tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*/data/*' --exclude='*/corpus/*' \
    --exclude='*.pt' --exclude='*/checkpoints/*' --exclude='*/model/*' --exclude='*/work/*' -C "$RES" . 2>/dev/null
}
step() { echo "[$(date +%T)] $* (at ${SECONDS}s)" | tee -a "$RES/steps.log"; save; }
want() { [[ " $JOBS " == *" $1 "* ]]; }
if want ssdtest; then
  timeout "$(lim 150)" $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py tests/models/test_fused_ops.py \
    -rA -s > "$RES/a/test_gpu.log" 2>&1
  step "GPU tests exit $?"
fi
if want demo; then
  timeout "$(lim 240)" $PY -m statex_dist.cli demo --config configs/demo/gpu-mamba2.json --out "$RES/demo/run" \
    --overwrite > "$RES/demo/log" 2>&1
  rc=$?
  step "demo exit $rc"
  base=$(ls -d "$RES"/demo/run/*/export-base 2>/dev/null | head -n1)
  if [ "$rc" -ne 0 ] && [ -n "$base" ]; then
    timeout "$(lim 150)" $PY benchmarks/debug_mamba2_nan.py "$RES/a/nan_debug.json" "$(dirname "$base")" > "$RES/a/log_nan" 2>&1
    step "NaN probe exit $?"
  fi
fi
if want ssdchunk; then
  timeout "$(lim 150)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd --ssd-backends triton,triton@128 \
    --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
  step "ssd chunks exit $?"
fi
if want speed; then
  timeout "$(lim 200)" $PY benchmarks/gpu_e2e.py --parts speed,profile --speed-variants "${SPEED_VARIANTS:-ours-mamba2}" \
    --profile-models mamba2 --steps 4 --warmup 2 --out "$RES/a/gpu_e2e.md" > "$RES/a/log_e2e" 2>&1
  step "e2e speed+profile exit $?"
fi
if want long; then
  timeout "$(lim 60)" $PY benchmarks/gpu_e2e.py --parts long --long-models mamba2 --steps 2 \
    --out "$RES/a/gpu_e2e_long.md" > "$RES/a/log_long" 2>&1
  step "long exit $?"
fi
if want single; then
  RUNS=single DEADLINE=$(left 5) RUN_TIMEOUT=100 FIRST_TIMEOUT=100 timeout "$(left 5)" bash benchmarks/gpu_train.sh "$RES/train" 1 \
    > "$RES/train/console.log" 2>&1
  step "single exit $?"
fi
if want fla; then
  timeout "$(lim 400)" $PY benchmarks/kernels.py --out "$RES/a" --sections time,fla --fla-timeout "$(lim 380)" \
    > "$RES/a/log_kernels_fla" 2>&1
  step "kernels + fla chunk_gla exit $?"
fi
cat "$RES/steps.log"
