#!/usr/bin/env bash
# nvidia-h200 call, sixth round (2026-11-30), the session's last device seconds: tests/kernels/test_gpu_ssd.py
# with the tuned launch settings (triton_ssd.LAUNCH for 16-bit inputs at head_dim tiles >= 64, LAUNCH_CHECKED
# for the rest), in the order the file lists them.
# usage: benchmarks/gpu_call_ssd_tests.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" ssd_tests "$@"
timeout "$(lim 120)" $PY -m pytest -q -p no:cacheprovider -rA tests/kernels/test_gpu_ssd.py > "$RES/test_gpu_ssd.log" 2>&1
note "ssd tests exit $?"
cp "$RES/test_gpu_ssd.log" "$OUT/"
pack
tail -3 "$RES/test_gpu_ssd.log"
