#!/usr/bin/env bash
# nvidia-h200 calls, eighth round (2026-11-30, issue 5): launch settings of our Triton GLA kernels (call w: the walks
# and whole-chunk kernels; call x: the pair kernels, prep and dg; benchmarks/gla_launch_sweep.py, one process per
# setting, checked against float64, per-kernel profile at the original and merged shapes), then under the best
# candidate per (class, kernel): tests/kernels/test_gpu.py, ours fwd+bwd at both shapes with a per-kernel profile
# (kernels.py --sections time,profile) and the GLA-1.3B training step, original and StateX (gpu_e2e.py --parts speed
# --speed-variants ours). RES is /tmp/gla_launch: a reused machine can hold an earlier run's files there.
# usage: [SWEEP_S=300] benchmarks/gpu_call_gla_launch.sh OUT [DEADLINE_S]     (repo root; statex_dist importable)
source "$(dirname "$0")/gpu_call_common.sh" gla_launch "$@"
rm -rf "${RES:?}"/*
mkdir -p "$RES"/{sweep,kernels,e2e}
SWEEP_S=${SWEEP_S:-300}
timeout "$(lim $((SWEEP_S + 80)))" $PY benchmarks/gla_launch_sweep.py --out "$RES/sweep" --budget-s "$SWEEP_S" \
  > "$RES/sweep/log" 2>&1
note "launch sweep exit $?"
if [ -f "$RES/sweep/best.json" ]; then
  cp "$RES/sweep/best.json" "$OUT/"
  APPLY="$PY benchmarks/gla_launch_sweep.py --apply $RES/sweep/best.json"
  timeout "$(lim 150)" $APPLY pytest -q -p no:cacheprovider -rA tests/kernels/test_gpu.py \
    > "$RES/test_gpu_best.log" 2>&1
  note "GLA GPU tests under the best setting exit $?"
  timeout "$(lim 60)" $APPLY benchmarks/kernels.py --out "$RES/kernels" --sections time,profile \
    > "$RES/kernels/log" 2>&1
  note "kernels.py time,profile under the best setting exit $?"
  grep "time {" "$RES/kernels/log" | tee -a "$RES/steps.log"
  timeout "$(lim 120)" $APPLY benchmarks/gpu_e2e.py --parts speed --speed-variants ours --steps 6 --warmup 2 \
    --out "$RES/e2e/speed_best.md" > "$RES/e2e/log" 2>&1
  note "GLA-1.3B step under the best setting exit $?"
fi
pack
cat "$RES/steps.log"
