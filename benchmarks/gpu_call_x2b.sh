#!/usr/bin/env bash
# nvidia-h200-x2 call, 2026-11-30 (fifth round), after call h showed the demo's recall evaluation crashing Triton's
# compiler on a one-chunk SSD call (now `do_not_specialize`) and fla's Mamba2 torch fallback running out of
# memory at B=4 x T=4096:
#   GPU 0: tests/kernels/test_gpu_ssd.py (incl. the new one-chunk and forward-only cases); the Mamba2 GPU demo
#          (configs/demo/gpu-mamba2.json); then our Mamba2-1.3B and fla's Mamba2 torch fallback at B=1 x T=2048;
#   GPU 1: stock fla GLAForCausalLM at B=4 x T=4096 (its first step autotunes for minutes), then our GLA-1.3B
#          (original and StateX) on the same GPU.
# usage: benchmarks/gpu_call_x2b.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" x2b "$@"
mkdir -p "$RES"/{demo,e2e}
(
  CUDA_VISIBLE_DEVICES=0 timeout "$(lim 150)" $PY -m pytest -q -p no:cacheprovider tests/kernels/test_gpu_ssd.py -rA \
    > "$RES/test_gpu_ssd.log" 2>&1
  note "gpu0 ssd tests exit $?"
  CUDA_VISIBLE_DEVICES=0 timeout "$(lim 300)" $PY -m statex_dist.cli demo --config configs/demo/gpu-mamba2.json \
    --out "$RES/demo/run" --overwrite > "$RES/demo/log" 2>&1
  note "gpu0 demo exit $?"
  cp "$RES/demo/run/report.md" "$RES/demo_report.md" 2>/dev/null
  CUDA_VISIBLE_DEVICES=0 timeout "$(lim 150)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours-mamba2,fla-mamba2 \
    --speed-shape 1x2048 --steps 3 --warmup 1 --out "$RES/e2e/mamba2_fallback.md" > "$RES/e2e/log_fallback" 2>&1
  note "gpu0 mamba2 vs fla torch fallback exit $?"
) &
(
  CUDA_VISIBLE_DEVICES=1 timeout "$(lim 420)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants fla \
    --steps 4 --warmup 2 --out "$RES/e2e/fla_gla.md" > "$RES/e2e/log_fla" 2>&1
  note "gpu1 stock fla GLA exit $?"
  CUDA_VISIBLE_DEVICES=1 timeout "$(lim 150)" $PY benchmarks/gpu_e2e.py --parts speed --speed-variants ours \
    --steps 4 --warmup 2 --out "$RES/e2e/ours_gla.md" > "$RES/e2e/log_ours" 2>&1
  note "gpu1 ours GLA exit $?"
) &
wait
pack
cat "$RES/steps.log"
