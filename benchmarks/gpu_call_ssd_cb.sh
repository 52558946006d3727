#!/usr/bin/env bash
# nvidia-h200 call, twelfth round (2026-11-30): the SSD kernels with C B^T once per chunk and group and its
# gradient once per chunk (ssd_chunk_cb_kernel, ssd_bwd_dcb_kernel) against the previous file in one process
# (benchmarks/ssd_ab.py; also with 128-token chunks), the GPU SSD tests, the Mamba2-1.3B training step (original and
# StateX), then a launch sweep of all six SSD kernels with the time left.
# usage: benchmarks/gpu_call_ssd_cb.sh OUT [DEADLINE_S]   (repo root; statex_dist, fla importable), with
#        benchmarks/_prev_triton_ssd.py the earlier file: `git show REV:statex_dist/kernels/ssd/triton_ssd.py`
source "$(dirname "$0")/gpu_call_common.sh" ssd_cb "$@"
mkdir -p "$RES"/{ab,e2e,sweep}
NEW=statex_dist/kernels/ssd/triton_ssd.py
timeout "$(lim 200)" $PY benchmarks/ssd_ab.py --impl new=$NEW --impl prev=benchmarks/_prev_triton_ssd.py \
  --impl new@128=$NEW --impl prev@128=benchmarks/_prev_triton_ssd.py --rounds ${ROUNDS:-3} --out "$RES/ab" \
  > "$RES/ab/log" 2>&1
note "ssd_ab exit $?"
timeout "$(lim 120)" $PY -m pytest -q -p no:cacheprovider -rA tests/kernels/test_gpu_ssd.py \
  > "$RES/test_gpu_ssd.log" 2>&1
note "test_gpu_ssd exit $? ($(grep -E 'passed|failed' "$RES/test_gpu_ssd.log" | tail -1))"
timeout "$(lim 110)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours-mamba2 --steps 6 --warmup 2 \
  --out "$RES/e2e/speed.md" > "$RES/e2e/log" 2>&1
note "Mamba2 training step exit $?"
left=$((DEADLINE - SECONDS - 40))
if [ "$left" -gt 60 ]; then
  timeout "$(lim $((left + 20)))" $PY benchmarks/ssd_launch_sweep.py --out "$RES/sweep" --budget-s "$left" \
    > "$RES/sweep/log" 2>&1
  note "launch sweep exit $?"
  [ -f "$RES/sweep/best.json" ] && cp "$RES/sweep/best.json" "$OUT/"
fi
pack
cat "$RES/steps.log"
