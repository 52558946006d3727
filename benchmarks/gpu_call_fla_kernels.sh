#!/usr/bin/env bash
# nvidia-h200 call, scripted 2026-11-30 (sixth round) for the next device time (issue 5: the GLA kernel targets
# "measured in the same run as fla's chunk_gla"): ours and fla's chunk_gla fwd+bwd on the original (B=4, T=8192,
# H=4, K=256, V=512) and merged (H=1, K=1024, V=2048) shapes in one process (kernels.py --sections time
# --with-fla all). fla's first call autotunes for minutes per shape (5.5 min merged, reference.md), so run it twice
# on one warm machine: the first call fills Triton's cache in work/triton_cache (as gpu_call_fla_anchor.sh), the
# second times with it. A PHASE=warm call of gpu_call_fla_anchor.sh before it already tunes the original shape.
# WITH_FLA=original (2026-11-30, seventh round) times fla on the original shape only: both targets compare with fla's
# original-shape time, and it skips the merged shape's 5.5 min of fla autotuning.
# usage: [WITH_FLA=all|original] benchmarks/gpu_call_fla_kernels.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla
# importable)
source "$(dirname "$0")/gpu_call_common.sh" fla_kernels "$@"
warm_triton_cache
mkdir -p "$RES/kernels"
timeout "$(lim 590)" $PY benchmarks/kernels.py --out "$RES/kernels" --sections time --with-fla "${WITH_FLA:-all}" \
  > "$RES/kernels/log" 2>&1
note "ours and fla's chunk_gla (fla: ${WITH_FLA:-all}) exit $?"
grep "time {" "$RES/kernels/log" | tee -a "$RES/steps.log"
save_autotune fla_kernels_autotune
pack
cat "$RES/steps.log"
