#!/usr/bin/env bash
# nvidia-h200 call, scripted 2026-11-30 (fifth round) for the next device time: the dB/dC kernel with its head loop
# split over 2, 4 and 8 programs (DBC_HEAD_SPLITS, `triton/hsK`) against the default (1): float64 checks, fwd+bwd
# times at d_state 128 / 512 and T 4096 / 8192, and per-kernel profiles; then tests/kernels/test_gpu_ssd.py with
# its new dA metric (not yet run on a GPU); then the 64K-context Mamba2-1.3B StateX step (issue 7 run 2), last
# measured before the walk kernel. Ran as call l of the sixth round; the head splits were slower at every K and were
# removed after it (kernels.py now refuses `triton/hsK`), so this script is a record.
# usage: benchmarks/gpu_call_ssd_hs.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" ssd_hs "$@"
mkdir -p "$RES/ssd"
timeout "$(lim 200)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd,ssdprofile \
  --ssd-backends triton,triton/hs2,triton/hs4,triton/hs8 --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
note "ssd head splits: check, time, profile exit $?"
timeout "$(lim 90)" $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py -rA > "$RES/test_gpu_ssd.log" 2>&1
note "ssd tests exit $?"
mkdir -p "$RES/e2e"
timeout "$(lim 170)" $PY benchmarks/gpu_e2e.py --parts long --long-models mamba2 --steps 2 \
  --out "$RES/e2e/long_mamba2.md" > "$RES/e2e/log_long" 2>&1
note "64K Mamba2 StateX exit $?"
pack
cat "$RES/steps.log"
