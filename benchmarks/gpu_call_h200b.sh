#!/usr/bin/env bash
# nvidia-h200 call, 2026-11-30 (fifth round), the session's last device seconds: the SSD kernels with their grids
# folded so that programs sharing inputs are launched together (dB/dC: a chunk's N blocks; dx and the output
# kernel: a chunk's heads):
#   tests/kernels/test_gpu_ssd.py; kernels.py --sections ssd,ssdprofile (float64 checks, d_state 128 / 512 times
#   at T 4096 / 8192, per-kernel profile); the GLA-1.3B and Mamba2-1.3B training steps (gpu_e2e.py --parts speed).
# usage: benchmarks/gpu_call_h200b.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" h200b "$@"
mkdir -p "$RES"/{ssd,e2e}
timeout "$(lim 90)" $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py -rA > "$RES/test_gpu_ssd.log" 2>&1
note "ssd tests exit $?"
timeout "$(lim 100)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd,ssdprofile --ssd-backends triton \
  --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
note "ssd check, time, profile exit $?"
timeout "$(lim 150)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours,ours-mamba2 --steps 4 --warmup 2 \
  --out "$RES/e2e/speed.md" > "$RES/e2e/log" 2>&1
note "training steps exit $?"
pack
cat "$RES/steps.log"
