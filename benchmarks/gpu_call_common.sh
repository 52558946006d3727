# Sourced by the device-call scripts: `source benchmarks/gpu_call_common.sh NAME OUT [DEADLINE_S]`.
# Sets OUT, DEADLINE (seconds after the script started by which everything must be done), RES (the scratch
# folder, /tmp/NAME unless RES is set) and PY; defines
#   note MSG     a timestamped line in $RES/steps.log (and on stdout),
#   lim S        S, or less where the deadline leaves less (minus 10 s for packing), at least 1,
#   warm_triton_cache   puts Triton's cache, autotuning results included, in work/triton_cache (an ignored folder of
#                the working tree that a warm machine keeps between calls), adds the autotuning results kept in
#                the repository (benchmarks/triton_autotune/*.tgz) and logs its size;
#   save_autotune NAME  packs every autotuning result in that cache (*.autotune.json: fla's kernels autotune with
#                cache_results) into $OUT/NAME.tgz; committed to benchmarks/triton_autotune/, it spares a fresh
#                machine the tuning (fla's GLA-1.3B first step: 444 s), leaving it only the compiles. A result is
#                used only where Triton's own key matches: same Triton build and GPU backend, kernel source, tuning
#                key (shapes, dtypes) and configs;
#   apply_best LIMIT LABEL ARGS...  under the GLA launch sweep's best setting, when it found one: test_gpu.py on
#                GPU 1 beside gpu_e2e.py --parts speed ARGS on GPU 0;
#   pack         copies the tables (*.md, named after their folders) to $OUT and the rest of $RES (without
#                weights, data or checkpoints) into $OUT/results.tgz; every script calls it at the end.
set -uo pipefail
NAME=$1
OUT=${2:?usage: $NAME OUT [DEADLINE_S]}
DEADLINE=${3:-540}
RES=${RES:-/tmp/$NAME}
mkdir -p "$RES"
export PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
PY=${PYTHON:-python3}
note() { echo "[$(date +%T)] $* (at ${SECONDS}s)" | tee -a "$RES/steps.log"; }
lim() { local l=$((DEADLINE - SECONDS - 10)); l=$((l < $1 ? l : $1)); echo $((l > 1 ? l : 1)); }
warm_triton_cache() {
  export TRITON_CACHE_DIR=$PWD/work/triton_cache
  mkdir -p "$TRITON_CACHE_DIR"
  local f
  for f in benchmarks/triton_autotune/*.tgz; do
    [ -f "$f" ] && tar xzf "$f" -C "$TRITON_CACHE_DIR"
  done
  note "Triton cache $(du -sh "$TRITON_CACHE_DIR" | cut -f1), $(find "$TRITON_CACHE_DIR" -name '*.autotune.json' | wc -l) autotuning results"
}
save_autotune() {
  (cd "$TRITON_CACHE_DIR" && find . -name '*.autotune.json' -print0 | tar czf "$OUT/${1:?save_autotune NAME}.tgz" --null -T -)
  note "saved $(tar tzf "$OUT/$1.tgz" | grep -c autotune.json) autotuning results to $1.tgz"
}
apply_best() {  # E2E_LIMIT_S LABEL GPU_E2E_ARGS...: when the GLA launch sweep found a best setting
  # ($RES/sweep/best.json), run under it test_gpu.py on GPU 1 beside gpu_e2e.py --parts speed on GPU 0
  [ -f "$RES/sweep/best.json" ] || return 0
  local limit=$1 label=$2
  shift 2
  cp "$RES/sweep/best.json" "$OUT/"
  local apply="$PY benchmarks/gla_launch_sweep.py --apply $RES/sweep/best.json"
  (CUDA_VISIBLE_DEVICES=1 timeout "$(lim 200)" $apply pytest -q -p no:cacheprovider -rA tests/kernels/test_gpu.py \
     > "$RES/tests/log_best" 2>&1
   note "GLA GPU tests under the best setting exit $?") &
  CUDA_VISIBLE_DEVICES=0 timeout "$(lim "$limit")" $apply benchmarks/gpu_e2e.py --parts speed "$@" \
    --out "$RES/e2e/time_best.md" > "$RES/e2e/log" 2>&1
  note "gpu_e2e speed under the best setting ($label) exit $?"
  wait
}
pack() {
  local f rel
  while IFS= read -r f; do  # train/gpu_train.md -> $OUT/train__gpu_train.md
    rel=${f#"$RES"/}; cp "$f" "$OUT/${rel//\//__}"
  done < <(find "$RES" -maxdepth 3 -name '*.md' -not -path '*/run/*' 2>/dev/null)
  cp "$RES/steps.log" "$OUT"/ 2>/dev/null
  tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*/data/*' --exclude='*/corpus/*' \
    --exclude='*.pt' --exclude='*.distcp' --exclude='*/checkpoints/*' --exclude='*/model/*' --exclude='*/work/*' \
    --exclude='*/runs/*' --exclude='*/mds/*' -C "$RES" . 2>/dev/null
}
