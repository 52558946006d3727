# Sourced by the device-call scripts: `source benchmarks/gpu_call_common.sh NAME OUT [DEADLINE_S]`.
# Sets OUT, DEADLINE (seconds after the script started by which everything must be done), RES (the scratch
# folder, /tmp/NAME unless RES is set) and PY; defines
#   note MSG     a timestamped line in $RES/steps.log (and on stdout),
#   lim S        S, or less where the deadline leaves less (minus 10 s for packing), at least 1,
#   warm_triton_cache   puts Triton's cache, autotuning results included, in work/triton_cache (an ignored folder of
#                the working tree that a warm machine keeps between calls) and logs its size;
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
  du -sh "$TRITON_CACHE_DIR" | tee -a "$RES/steps.log"
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
