#!/usr/bin/env bash
# nvidia-h200 call, sixth round (2026-11-30): launch settings of our Triton SSD kernels (warps, pipeline stages,
# d_state block; benchmarks/ssd_launch_sweep.py, one process per setting, checked against float64), then, under
# the best setting per kernel: tests/kernels/test_gpu_ssd.py and the Mamba2-1.3B training step (original and StateX).
# Ran again as call y of the eighth round (with walks of 2 and 4 heads per program, since removed); its test run
# hit the 60 s limit, now 120 s.
# usage: benchmarks/gpu_call_ssd_launch.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" ssd_launch "$@"
mkdir -p "$RES"/{sweep,e2e}
timeout "$(lim 280)" $PY benchmarks/ssd_launch_sweep.py --out "$RES/sweep" --budget-s 200 > "$RES/sweep/log" 2>&1
note "launch sweep exit $?"
if [ -f "$RES/sweep/best.json" ]; then
  cp "$RES/sweep/best.json" "$OUT/"
  timeout "$(lim 120)" $PY benchmarks/ssd_launch_sweep.py --apply "$RES/sweep/best.json" pytest -q -p no:cacheprovider \
    -rA tests/kernels/test_gpu_ssd.py > "$RES/test_gpu_ssd_best.log" 2>&1
  note "ssd tests under the best setting exit $?"
  timeout "$(lim 100)" $PY benchmarks/ssd_launch_sweep.py --apply "$RES/sweep/best.json" benchmarks/gpu_e2e.py \
    --parts speed --speed-variants ours-mamba2 --steps 4 --warmup 2 --out "$RES/e2e/speed_best.md" > "$RES/e2e/log" 2>&1
  note "Mamba2 training step under the best setting exit $?"
fi
pack
cat "$RES/steps.log"
