#!/usr/bin/env bash
# nvidia-h200-x2 call prepared in the tenth round (2026-11-30; issues 5 and 7), about 7 minutes: the GLA kernels'
# kept chunk states (kernel_save_states, docs/kernels.md) against the recomputing backward and stock fla, in a
# plain loop and through the trainer, with the GPU tests of the change.
#   GPU 1: tests/kernels/test_gpu.py and tests/models/test_fused_ops.py (the custom op's opcheck with kept states
#          on a packed row; their 21 tests took 208 s on a fresh machine in call zk), then GLA's logits against
#          stock fla's on the same weights (the gate is now bf16 like fla's: gpu_e2e.py --parts logits);
#   GPU 0: gpu_e2e.py's speed part, ours / ours with kept states / stock fla in one process (10 timed steps each
#          where earlier rounds timed 4: their ratios moved by 1-2% between calls), under the plain loop's autocast
#          and again under the trainer's FSDP2 bf16 recipe (--recipe fsdp-bf16: what flame runs), then kernels.py's
#          per-kernel profile at the training step's shape (original-4k, merged-4k: why a merged layer costs
#          about 1.65x an original one there against 1.50x at T=8192);
#   both, after the tests: the trainer at world size 1 (StateX on GPU 0, the original on GPU 1), states
#          recomputed (ws1) and kept (ws1-kept), 12 steps each.
# With TESTS=0 (eleventh round, call zq) GPU 1 skips the tests, the logits and the profile and runs the FSDP2 bf16
# recipe while GPU 0 runs the plain loop (PROFILE=1: then the kernels' profile); the trainer then runs REPEATS rounds
# of RUNS (gpu_train.sh; RUNS= skips it). ROUNDS=N: gpu_e2e.py --rounds N (each variant N times, alternating order).
# usage: [TESTS=0] [PROFILE=1] [ROUNDS=N] [REPEATS=N] [RUNS=...] benchmarks/gpu_call_kept_states.sh OUT [DEADLINE_S]
#        (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" kept_states "$@"
rm -rf "${RES:?}"/*
mkdir -p "$RES"/{tests,e2e,kernels,train}
warm_triton_cache  # exports TRITON_CACHE_DIR: every job below shares the cache and fla's shipped tuning
SPEED=(benchmarks/gpu_e2e.py --parts speed --speed-variants ours,ours-saved,fla --steps 10 --warmup 2
       --rounds "${ROUNDS:-1}")
fsdp_bf16() {
  CUDA_VISIBLE_DEVICES=$1 timeout "$(lim $((130 + 70 * ${ROUNDS:-1})))" $PY "${SPEED[@]}" --recipe fsdp-bf16 \
    --out "$RES/e2e/time_fsdp_bf16.md" > "$RES/e2e/log_fsdp_bf16" 2>&1
  note "gpu_e2e speed, FSDP2 bf16 recipe (ours, ours-saved, fla) exit $?"
}
if [ "${TESTS:-1}" = 1 ]; then
  (export CUDA_VISIBLE_DEVICES=1
   timeout "$(lim 420)" $PY -m pytest -q -p no:cacheprovider -rA --durations=10 \
     tests/kernels/test_gpu.py tests/models/test_fused_ops.py > "$RES/tests/log" 2>&1
   note "GPU tests exit $?"
   timeout "$(lim 90)" $PY benchmarks/gpu_e2e.py --parts logits --logit-models gla --out "$RES/e2e/logits.md" \
     > "$RES/e2e/log_logits" 2>&1
   note "gpu_e2e logits (ours against stock fla, same weights, GLA) exit $?") &
else
  fsdp_bf16 1 &
fi
CUDA_VISIBLE_DEVICES=0 timeout "$(lim $((170 + 70 * ${ROUNDS:-1})))" $PY "${SPEED[@]}" --out "$RES/e2e/time.md" \
  > "$RES/e2e/log" 2>&1
note "gpu_e2e speed (ours, ours-saved, fla) exit $?"
[ "${TESTS:-1}" = 1 ] && fsdp_bf16 0
if [ "${TESTS:-1}" = 1 ] || [ "${PROFILE:-0}" = 1 ]; then
  CUDA_VISIBLE_DEVICES=0 timeout "$(lim 90)" $PY benchmarks/kernels.py --out "$RES/kernels" --sections profile \
    --profile-shapes original-4k,merged-4k > "$RES/kernels/log" 2>&1
  note "kernels.py profile at T=4096 exit $?"
fi
wait
RUNS=${RUNS-prep ws1 ws1-kept}
if [ -n "$RUNS" ]; then
  RUNS=$RUNS EXTRA="steps=12" FIRST_TIMEOUT="$(lim 240)" RUN_TIMEOUT=90 DEADLINE=$((DEADLINE - SECONDS - 10)) \
    bash benchmarks/gpu_train.sh "$RES/train" 2 > "$RES/train/console.log" 2>&1
  note "trainer runs ($RUNS) exit $?"
fi
tail -3 "$RES/tests/log" >> "$RES/steps.log" 2>/dev/null
pack
cat "$RES/steps.log"
