#!/usr/bin/env bash
# nvidia-h200-x2 call, twelfth round (2026-11-30, issues 5 and 7), about 8 minutes.
#   GPU 0: benchmarks/gla_launch_sweep.py over new candidates for the GLA state walks (the merged head's walk and
#          dstate kernels at fewer pipeline stages and other slab shapes: candidates 1-5 first), then under the best
#          setting per (class, kernel) the GLA-1.3B step, ours original and StateX, in 3 alternating rounds;
#   GPU 1: one whole Mamba2-1.3B block at d_state 128 and 512 (kernels.py --sections mamba2block), the SSD launch
#          sweep's 128-column settings (never reached before), one run of the SSD setting that failed in call 1
#          (4 warps, 1 stage, 32 columns) with CUDA_LAUNCH_BLOCKING=1 to name the kernel, then test_gpu.py (GLA)
#          under the walk sweep's best setting.
# usage: [SWEEP_S=200] benchmarks/gpu_call_walks.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" walks "$@"
rm -rf "${RES:?}"/*
mkdir -p "$RES"/{sweep,ssd_sweep,e2e,tests,block}
SWEEP_S=${SWEEP_S:-200}
(export CUDA_VISIBLE_DEVICES=1
 timeout "$(lim 120)" $PY benchmarks/kernels.py --sections mamba2block --out "$RES/block" > "$RES/block/log" 2>&1
 note "mamba2 block exit $?"
 timeout "$(lim 200)" $PY benchmarks/ssd_launch_sweep.py --out "$RES/ssd_sweep" --budget-s 150 --only bn128 \
   > "$RES/ssd_sweep/log" 2>&1
 note "SSD sweep (128 columns) exit $?"
 bad=$($PY -c "import json; print(json.dumps({k: dict(num_warps=4, num_stages=1, block_n=32)
   for k in ('walk', 'scan', 'dx', 'dbc', 'cb', 'dcb')}))")
 CUDA_LAUNCH_BLOCKING=1 timeout "$(lim 60)" $PY benchmarks/ssd_launch_sweep.py --one "$bad" \
   > "$RES/ssd_sweep/w4s1bn32.log" 2>&1
 note "SSD w4 s1 bn32 with CUDA_LAUNCH_BLOCKING exit $?") &
side=$!
CUDA_VISIBLE_DEVICES=0 timeout "$(lim $((SWEEP_S + 80)))" $PY benchmarks/gla_launch_sweep.py --out "$RES/sweep" \
  --budget-s "$SWEEP_S" --only "candidates 1,candidates 2,candidates 3,candidates 4,candidates 5" \
  > "$RES/sweep/log" 2>&1
note "GLA launch sweep exit $?"
wait $side
apply_best 200 "ours original and StateX, 3 rounds" --speed-variants ours --steps 10 --warmup 2 --rounds 3
tail -3 "$RES/tests/log_best" >> "$RES/steps.log" 2>/dev/null
pack
cat "$RES/steps.log"
