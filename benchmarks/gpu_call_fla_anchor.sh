#!/usr/bin/env bash
# Stock fla's GLAForCausalLM against ours in one run (issue 7 run 1), in two back-to-back nvidia-h200 calls: fla's
# first training step compiles and autotunes for more than 420 s (2026-11-30, call i), more than one call's budget
# next to anything else. Triton's cache, autotuning results included (TRITON_CACHE_AUTOTUNING=1), goes to
# work/triton_cache, an ignored folder of the working tree that a warm machine keeps between calls; a kernel
# whose tuning finished before a call was cut is not tuned again.
#   PHASE=warm  fla's model only, until the limit (fills the cache; its table is kept if it finishes);
#   PHASE=time  ours (original, StateX) then fla's, same process, same GPU (fla's first step then reads the cache);
#   PHASE=profile  one training step of ours and of fla's GLA-1.3B under torch.profiler (where the ~24 ms per step
#               that the per-layer kernel times do not explain go; issue 7).
# Ran 2026-11-30 (sixth round): warm as call m (fla's first step 443.9 s), time as call n. PHASE=profile is
# scripted for the next device time, after a PHASE=warm call on the same machine.
# usage: PHASE=warm|time|profile benchmarks/gpu_call_fla_anchor.sh OUT [DEADLINE_S]   (repo root; statex_dist, fla
# importable)
source "$(dirname "$0")/gpu_call_common.sh" fla_anchor "$@"
warm_triton_cache
mkdir -p "$RES/e2e"
case ${PHASE:?PHASE=warm, time or profile} in
  warm) args=(--parts speed --speed-variants fla) ;;
  time) args=(--parts speed --speed-variants ours,fla) ;;
  profile) args=(--parts profile --profile-models gla,fla) ;;
  *) echo "PHASE must be warm, time or profile"; exit 2 ;;
esac
timeout "$(lim 590)" $PY benchmarks/gpu_e2e.py "${args[@]}" --steps 4 --warmup 2 \
  --out "$RES/e2e/$PHASE.md" > "$RES/e2e/log_$PHASE" 2>&1
note "phase $PHASE (${args[*]}) exit $?"
du -sh "$TRITON_CACHE_DIR" | tee -a "$RES/steps.log"
save_autotune fla_anchor_autotune
pack
cat "$RES/steps.log"
