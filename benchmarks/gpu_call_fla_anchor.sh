#!/usr/bin/env bash
# Stock fla's GLAForCausalLM against ours in one run (issue 7 run 1). fla's first training step autotunes for
# 375-444 s on an H200 (2026-11-30); its results ship in benchmarks/triton_autotune/ (warm_triton_cache), which cut
# that step to 3.5 s on a fresh machine (ninth round, call ze). Triton's cache, autotuning results included
# (TRITON_CACHE_AUTOTUNING=1), goes to work/triton_cache, an ignored folder of the working tree that a warm machine
# keeps between calls.
#   PHASE=warm  fla's model only (fills the cache where the shipped results do not match: another Triton, fla or
#               GPU); save_autotune leaves $OUT/fla_anchor_autotune.tgz to commit;
#   PHASE=time  ours (original, StateX) then fla's, same process, same GPU (VARIANTS: gpu_e2e.py's
#               --speed-variants, default ours,fla; ours-saved adds kernel_save_states);
#   PHASE=profile  one training step of ours and of fla's GLA-1.3B under torch.profiler (PROFILE_TOP rows each;
#               PROFILE_MODELS, default gla,fla: gpu_e2e.py's --profile-models).
# Ran 2026-11-30: warm as calls m (sixth round) and zc, time as n, zd and ze, profile as zd and ze (ninth round);
# time as zj, zk and zm, profile as zj, zk and zm (tenth round).
# usage: PHASE=warm|time|profile [VARIANTS=...] [PROFILE_TOP=rows] [PROFILE_MODELS=...] \
#          benchmarks/gpu_call_fla_anchor.sh OUT [DEADLINE_S]
#        (repo root; statex_dist, fla importable)
source "$(dirname "$0")/gpu_call_common.sh" fla_anchor "$@"
warm_triton_cache
mkdir -p "$RES/e2e"
case ${PHASE:?PHASE=warm, time or profile} in
  warm) args=(--parts speed --speed-variants fla) ;;
  time) args=(--parts speed --speed-variants "${VARIANTS:-ours,fla}") ;;
  profile) args=(--parts profile --profile-models "${PROFILE_MODELS:-gla,fla}" --profile-top "${PROFILE_TOP:-30}") ;;
  *) echo "PHASE must be warm, time or profile"; exit 2 ;;
esac
timeout "$(lim 590)" $PY benchmarks/gpu_e2e.py "${args[@]}" --steps 4 --warmup 2 \
  --out "$RES/e2e/$PHASE.md" > "$RES/e2e/log_$PHASE" 2>&1
note "phase $PHASE (${args[*]}) exit $?"
du -sh "$TRITON_CACHE_DIR" | tee -a "$RES/steps.log"
save_autotune fla_anchor_autotune
pack
cat "$RES/steps.log"
