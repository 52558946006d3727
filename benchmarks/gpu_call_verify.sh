#!/usr/bin/env bash
# Short nvidia-h200 call (2026-11-30, fourth round): the SSD fixes on the GPU, most important first:
#   1. benchmarks/debug_ssd_gpu.py: the demo-shaped SSD cases (each in a child process) and the demo-shaped
#      Mamba2 with fla's conv feeding our SSD kernels (the illegal memory access of call f);
#   2. tests/kernels/test_gpu_ssd.py (incl. the demo-shaped case that gave NaN in call e);
#   3. kernels.py --sections ssd: the state walk vs the split path (the timing call f lost to the op alias bug).
# The split path (`triton/split`) was removed after this call (7a56c71): kernels.py now refuses it, so its SSD
# step fails with that message; check out an earlier commit to repeat the call as it ran.
# usage: benchmarks/gpu_call_verify.sh OUT [DEADLINE_S]      (repo root; statex_dist, fla importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_verify.sh OUT [DEADLINE_S]}
DEADLINE=${2:-250}
RES=${RES:-/tmp/verify}
mkdir -p "$RES"/{diag,ssd}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
lim() { local l=$((DEADLINE - SECONDS - 5)); l=$((l > 1 ? l : 1)); echo $(($1 < l ? $1 : l)); }
note() { echo "[$(date +%T)] $* (at ${SECONDS}s)" | tee -a "$RES/steps.log"; cp "$RES"/diag/*.json "$RES/steps.log" "$OUT"/ 2>/dev/null; }
timeout "$(lim 90)" $PY benchmarks/debug_ssd_gpu.py "$RES/diag" matrix > "$RES/diag/log_matrix" 2>&1
note "matrix exit $?"
timeout "$(lim 45)" $PY benchmarks/debug_ssd_gpu.py "$RES/diag" fusedmodel > "$RES/diag/log_model" 2>&1
note "fused model exit $?"
timeout "$(lim 80)" $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py -rA -s > "$RES/test_gpu_ssd.log" 2>&1
note "test_gpu_ssd exit $?"
timeout "$(lim 100)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd --ssd-backends triton,triton/split \
  --ssd-lengths 4096 > "$RES/ssd/log" 2>&1
note "ssd walk/split exit $?"
cp "$RES/test_gpu_ssd.log" "$RES/ssd/log" "$OUT"/ 2>/dev/null
cp "$RES/ssd/kernels_h200.md" "$OUT/ssd_walk.md" 2>/dev/null
cat "$RES/steps.log"
