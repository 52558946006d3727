#!/usr/bin/env bash
# The shortest useful device call (one H200, ~4 minutes): our Triton GLA kernels checked against float64 and
# timed per layer, then the GLA-1.3B training step (original vs StateX) and the 64K-context StateX step.
# usage: benchmarks/gpu_call_short.sh OUT        (repo root; statex_dist and fla importable)
set -uo pipefail
OUT=${1:?usage: gpu_call_short.sh OUT}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
timeout "${KERNELS_LIMIT:-110}" $PY benchmarks/kernels.py --out "$OUT" --sections check,time,profile \
  --variants-merged "${VARIANTS_MERGED:-default}" > "$OUT/kernels.log" 2>&1
echo "kernels exit $? at ${SECONDS}s"
grep -E "^\| |ok|error" "$OUT/kernels_h200.md" | head -60
timeout "${E2E_LIMIT:-150}" $PY benchmarks/gpu_e2e.py --parts speed,long --speed-variants ours --long-models gla \
  --steps 4 --warmup 2 --out "$OUT/gpu_e2e.md" > "$OUT/gpu_e2e.log" 2>&1
echo "e2e exit $? at ${SECONDS}s"
cat "$OUT/gpu_e2e.md"
