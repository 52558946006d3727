#!/usr/bin/env bash
# nvidia-h200 call, sixth round (2026-11-30): our Triton SSD at 128-token chunks for bf16 (half the per-chunk
# states of 64-token chunks, twice the score-tile work) against 64:
#   kernels.py --sections ssd,ssdprofile --ssd-backends triton,triton@128 (float64 checks; fwd+bwd at d_state
#   128 / 512, T 4096 / 8192; per-kernel profile); tests/kernels/test_gpu_ssd.py with CHUNK = 128;
#   the GLA-1.3B and Mamba2-1.3B training steps with the SSD at 128 in one process, and Mamba2 at 64 in another.
# usage: benchmarks/gpu_call_ssd_chunk.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" ssd_chunk "$@"
mkdir -p "$RES"/{ssd,e2e}
timeout "$(lim 120)" $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd,ssdprofile \
  --ssd-backends triton,triton@128 --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
note "ssd 64 vs 128: check, time, profile exit $?"
timeout "$(lim 60)" $PY -c "
import sys, pytest
from statex_dist.kernels.ssd import triton_ssd
triton_ssd.CHUNK = 128
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-rA', 'tests/kernels/test_gpu_ssd.py']))
" > "$RES/test_gpu_ssd_L128.log" 2>&1
note "ssd tests at CHUNK=128 exit $?"
timeout "$(lim 170)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours,ours-mamba2 --ssd-chunk 128 \
  --steps 4 --warmup 2 --out "$RES/e2e/speed_L128.md" > "$RES/e2e/log_L128" 2>&1
note "training steps, SSD at 128 exit $?"
timeout "$(lim 100)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours-mamba2 --ssd-chunk 64 \
  --steps 4 --warmup 2 --out "$RES/e2e/speed_L64.md" > "$RES/e2e/log_L64" 2>&1
note "training steps, SSD at 64 exit $?"
pack
cat "$RES/steps.log"
