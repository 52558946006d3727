#!/usr/bin/env bash
# nvidia-h200 call, scripted 2026-11-30 (fifth round) for the next device time: the dB/dC kernel with its head loop
# split over 2, 4 and 8 programs (DBC_HEAD_SPLITS, `triton/hsK`) against the default (1): float64 checks, fwd+bwd
# times at d_state 128 / 512 and T 4096 / 8192, and per-kernel profiles; then tests/kernels/test_gpu_ssd.py with
# its new dA metric (not yet run on a GPU).
# usage: benchmarks/gpu_call_ssd_hs.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" ssd_hs "$@"
mkdir -p "$RES/ssd"
timeout "$(lim 200)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd,ssdprofile \
  --ssd-backends triton,triton/hs2,triton/hs4,triton/hs8 --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
note "ssd head splits: check, time, profile exit $?"
timeout "$(lim 90)" $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py -rA > "$RES/test_gpu_ssd.log" 2>&1
note "ssd tests exit $?"
pack
cat "$RES/steps.log"
