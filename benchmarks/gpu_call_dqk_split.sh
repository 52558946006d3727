#!/usr/bin/env bash
# nvidia-h200-x2 call, eleventh round (2026-11-30, issues 5 and 7), about 6 minutes: the state terms of dq and dk
# in two launches of one accumulator each (LAUNCH's dqk "split"; gla_dqk_inter_kernel's TERMS), swept against the
# fused kernel with benchmarks/gla_launch_sweep.py, then under the best setting per (class, kernel) the GLA GPU
# tests and the GLA-1.3B step: ours, ours with kept states and stock fla in one process.
#   GPU 1: tests/kernels/test_gpu.py and tests/models/test_fused_ops.py under the shipped LAUNCH (the kept-states
#          opcheck on a packed row failed in call zo: its spare chunk rows were left unwritten), then
#          tests/kernels/test_gpu.py's GLA tests under the best setting;
#   GPU 0: the launch sweep, then gpu_e2e.py --parts speed (ours, ours-saved, fla; 10 timed steps) under the best
#          setting.
# usage: [SWEEP_S=240] benchmarks/gpu_call_dqk_split.sh OUT [DEADLINE_S]     (repo root; statex_dist importable)
source "$(dirname "$0")/gpu_call_common.sh" dqk_split "$@"
rm -rf "${RES:?}"/*
mkdir -p "$RES"/{sweep,tests,e2e}
SWEEP_S=${SWEEP_S:-240}
warm_triton_cache
(CUDA_VISIBLE_DEVICES=1 timeout "$(lim 300)" $PY -m pytest -q -p no:cacheprovider -rA --durations=10 \
   tests/kernels/test_gpu.py tests/models/test_fused_ops.py > "$RES/tests/log" 2>&1
 note "GPU tests (shipped LAUNCH) exit $?") &
CUDA_VISIBLE_DEVICES=0 timeout "$(lim $((SWEEP_S + 80)))" $PY benchmarks/gla_launch_sweep.py --out "$RES/sweep" \
  --budget-s "$SWEEP_S" > "$RES/sweep/log" 2>&1
note "launch sweep exit $?"
wait
apply_best 150 "ours, ours-saved, fla" --speed-variants ours,ours-saved,fla --steps 10 --warmup 2
tail -3 "$RES/tests/log" >> "$RES/steps.log"
tail -3 "$RES/tests/log_best" >> "$RES/steps.log" 2>/dev/null
pack
cat "$RES/steps.log"
