#!/usr/bin/env bash
# nvidia-h200 call, twelfth round (2026-11-30, issue 5), about 6 minutes: our SSD kernels with the forward's chunk
# states kept for the backward (save_states) and with L2 eviction hints on the state traffic
# (benchmarks/_stream_triton_ssd.py, made from triton_ssd.py by the round's script) against the shipped path and the
# round's starting file (benchmarks/_prev_triton_ssd.py, commit c941ad0) in one process; the GPU SSD tests (with the
# kept-states opcheck); the Mamba2-1.3B step with and without kept states; one Mamba2 block at d_state 128 and 512.
# usage: benchmarks/gpu_call_ssd_kept.sh OUT [DEADLINE_S]   (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" ssd_kept "$@"
rm -rf "${RES:?}"/*
mkdir -p "$RES"/{ab,e2e,block}
NEW=statex_dist/kernels/ssd/triton_ssd.py
timeout "$(lim 150)" $PY benchmarks/ssd_ab.py --impl new=$NEW --impl new+kept=$NEW \
  --impl stream=benchmarks/_stream_triton_ssd.py --impl prev=benchmarks/_prev_triton_ssd.py --rounds 3 \
  --out "$RES/ab" > "$RES/ab/log" 2>&1
note "ssd_ab exit $?"
timeout "$(lim 120)" $PY -m pytest -q -p no:cacheprovider -rA tests/kernels/test_gpu_ssd.py \
  > "$RES/test_gpu_ssd.log" 2>&1
note "test_gpu_ssd exit $? ($(grep -E 'passed|failed' "$RES/test_gpu_ssd.log" | tail -1))"
timeout "$(lim 150)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours-mamba2,ours-mamba2-saved \
  --steps 8 --warmup 2 --out "$RES/e2e/speed.md" > "$RES/e2e/log" 2>&1
note "Mamba2 training step exit $?"
timeout "$(lim 80)" $PY benchmarks/kernels.py --sections mamba2block --out "$RES/block" > "$RES/block/log" 2>&1
note "mamba2 block exit $?"
pack
cat "$RES/steps.log"
