#!/usr/bin/env bash
# nvidia-h200 call, scripted 2026-11-30 (sixth round) for the next device time (issue 5): the SSD kernels with the
# tuned launch settings (triton_ssd.LAUNCH, from call p):
#   tests/kernels/test_gpu_ssd.py as shipped (its fp32 and head_dim-16 cases use LAUNCH_CHECKED);
#   GLA-1.3B and Mamba2-1.3B training steps in one process (Mamba2 / GLA at equal tokens, one run);
#   kernels.py --sections ssd,ssdprofile (d_state 128 / 512 layer times and per-kernel profile);
#   the 64K-context Mamba2-1.3B StateX step.
# usage: benchmarks/gpu_call_h200c.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" h200c "$@"
mkdir -p "$RES"/{ssd,e2e}
timeout "$(lim 120)" $PY -m pytest -q -p no:cacheprovider -rA tests/kernels/test_gpu_ssd.py > "$RES/test_gpu_ssd.log" 2>&1
note "ssd tests exit $?"
timeout "$(lim 200)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours,ours-mamba2 --steps 6 --warmup 2 \
  --out "$RES/e2e/speed.md" > "$RES/e2e/log" 2>&1
note "training steps exit $?"
timeout "$(lim 100)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd,ssdprofile --ssd-backends triton \
  --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
note "ssd check, time, profile exit $?"
timeout "$(lim 100)" $PY benchmarks/gpu_e2e.py --parts long --long-models mamba2 --steps 2 \
  --out "$RES/e2e/long_mamba2.md" > "$RES/e2e/log_long" 2>&1
note "64K Mamba2 StateX exit $?"
pack
cat "$RES/steps.log"
