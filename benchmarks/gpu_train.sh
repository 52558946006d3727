#!/usr/bin/env bash
# Trainer runs on 1-2 GPUs of one node (issue 7 runs 1 and 3; the x8 run of issue 8 uses the same steps, NGPU=8):
#   StateX and the original model at world size 1 (FSDP and `single`), FSDP and DeepSpeed ZeRO-2 / ZeRO-3 at world
#   size NGPU, a checkpoint saved at world size NGPU and resumed (losses compared step by step), and export to a
#   Hugging Face directory that loads.
# usage: benchmarks/gpu_train.sh OUT_DIR [NGPU]      (runs from the repo root; needs statex_dist importable)
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_train.sh OUT_DIR [NGPU]}
NGPU=${2:-2}
CFG=configs/bench/gla-1.3b-statex-gpu.yaml
# Dry run on CPU (gloo): MODEL_JSON=configs/models/gla-tiny.json TOKENS_PER_GPU=256 WORK=/tmp/w \
#   EXTRA="data.seq_len=64 data.micro_batch_size=4 device=cpu precision.mode=fp32" bash benchmarks/gpu_train.sh OUT 2
MODEL_JSON=${MODEL_JSON:-configs/models/gla-1.3b.json}
TOKENS_PER_GPU=${TOKENS_PER_GPU:-16384}
read -r -a EXTRA_ARGS <<< "${EXTRA:-}"
# PROFILE=1: every run records steps 4-5 with torch.profiler (profiling.*); the ops tables and summaries are copied.
# PROFILE_RUNS="zero2-ws2 ...": only the runs of these names, in the last round (REPEATS), so the other rounds'
# medians have no profiled steps.
# PROFILE_PYTHON=1: cProfile in place of torch.profiler (profiling.python): the host's time by Python function.
PROFILING=(profiling.enabled=true profiling.start_step=4 profiling.steps=2)
[ "${PROFILE_PYTHON:-0}" = 1 ] && PROFILING+=(profiling.python=true profiling.torch=false)
[ "${PROFILE:-0}" = 1 ] && EXTRA_ARGS+=("${PROFILING[@]}")
WORK=${WORK:-work}
mkdir -p "$OUT" "$WORK" runs
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/work/torch_extensions}
export TRITON_CACHE_AUTOTUNING=1  # autotune results on disk: only the first process of the call tunes
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu_train.log"; }
run() {  # name world_size overrides...    (env: GPUS pins the devices, PORT the rendezvous port)
  local name=$1 ws=$2; shift 2
  log "run $name (world size $ws${GPUS:+, GPUs $GPUS}): $*"
  local t0=$SECONDS
  [ "$name" = fsdp-resume ] || rm -rf "runs/$name"  # a stale run directory would be resumed, not rerun
  local pin=()  # only pin when asked: an empty CUDA_VISIBLE_DEVICES hides every GPU (the run goes to the CPU)
  [ -n "${GPUS:-}" ] && pin=("CUDA_VISIBLE_DEVICES=$GPUS")
  local prof=()
  [ "${round:-1}" = "${REPEATS:-1}" ] && [[ " ${PROFILE_RUNS:-} " == *" $name "* ]] && prof=("${PROFILING[@]}")
  env "${pin[@]}" timeout ${RUN_TIMEOUT:-300} \
    $PY -m torch.distributed.run --nnodes 1 --nproc-per-node "$ws" --master-port "${PORT:-29500}" \
    -m statex_dist.cli train --config $CFG \
    run_dir=runs/$name global_batch_tokens=$((TOKENS_PER_GPU * ws)) model.path=$WORK/model \
    data.sources.0.path=$WORK/corpus "${EXTRA_ARGS[@]}" "${prof[@]}" "$@" > "$RUN_OUT/$name.log" 2>&1
  local rc=$?
  log "  $name exit $rc after $((SECONDS - t0)) s"
  cp runs/$name/metrics.jsonl "$RUN_OUT/$name.metrics.jsonl" 2>/dev/null || true
  local f
  for f in runs/$name/profile/*.ops.md runs/$name/profile/*.summary.json runs/$name/profile/*.python.md; do
    # not the traces (large)
    [ -f "$f" ] && cp "$f" "$RUN_OUT/$name.${f##*/}"
  done
}

VOCAB=$($PY -c "import json; print(json.load(open('$MODEL_JSON'))['vocab_size'])")
# Each input is written under a temporary name and renamed when complete: a failed or killed preparation leaves
# nothing that a later call would take as ready. Without both inputs no run can start: stop here, saying why.
[ -f $WORK/model/config.json ] || { rm -rf $WORK/model.tmp $WORK/model && \
  $PY benchmarks/make_random_checkpoint.py "$MODEL_JSON" $WORK/model.tmp --dtype bfloat16 && mv $WORK/model.tmp $WORK/model; }
[ -f $WORK/corpus/index.json ] || { rm -rf $WORK/corpus.tmp $WORK/corpus && $PY -m statex_dist.train.synthetic \
  $WORK/corpus.tmp --docs 400 --vocab "$VOCAB" --min-len 2048 --max-len 8192 && mv $WORK/corpus.tmp $WORK/corpus; }
if [ ! -f $WORK/model/config.json ] || [ ! -f $WORK/corpus/index.json ]; then
  log "inputs failed (a missing package? the traceback is above): no run started"
  exit 3
fi
log "inputs ready"

NOCKPT=(checkpoint.interval=1000 checkpoint.save_at_end=false)
# Steps run in the order RUNS names them; one that cannot finish before DEADLINE (seconds since the script
# started, minus its RUN_TIMEOUT) is skipped and logged, so a device call always ends with its summary.
RUNS=${RUNS:-ws1 fsdp resume export zero2 zero3 single}
DEADLINE=${DEADLINE:-100000}
ORIG=(model.expand=null)
ws1_pair() {  # name overrides... : StateX on GPU 0, the original on GPU 1 (or after it on GPU 0)
  local name=$1; shift
  if [ "$NGPU" -ge 2 ]; then
    GPUS=0 PORT=29511 run "$name" 1 "$@" &
    GPUS=1 PORT=29512 run "$name-original" 1 "${ORIG[@]}" "$@" &
    wait
  else
    GPUS=0 run "$name" 1 "$@"
    GPUS=0 run "$name-original" 1 "${ORIG[@]}" "$@"
  fi
}
DSCHECKS=(parallel.deepspeed_fused_grad_checks=false)  # the "-dschecks" runs: DeepSpeed's own gradient checks
deepspeed_ws1() {  # zero2|zero3|a variant's name [GPU]: one ZeRO config at world size 1, DeepSpeed's own one-GPU
  # speed, so each stage's two-GPU efficiency can be taken against its own backend as well as against FSDP2
  local cfg=${1%-dschecks} more=()
  [ "$cfg" = "$1" ] || more=("${DSCHECKS[@]}")
  local json=configs/deepspeed/$cfg.json
  [ -f "$json" ] || json=benchmarks/deepspeed/$cfg.json  # variants under trial (zero2-nooverlap ...)
  GPUS=${2:-0} PORT=$((29520 + ${2:-0})) run $1-ws1 1 parallel.backend=deepspeed \
    parallel.deepspeed_config=$json "${NOCKPT[@]}" "${more[@]}"
}
resume() {  # a new run directory holding only the first checkpoint of fsdp-wsN (hard links: no copy of the
  # 16 GB state), run again to the same final step; summarize_train_runs.py compares the losses step by step
  rm -rf runs/fsdp-resume && mkdir -p runs/fsdp-resume/checkpoints
  local first
  first=$(ls runs/fsdp-ws$NGPU/checkpoints | grep '^step_' | sort | head -n1)
  cp -al "runs/fsdp-ws$NGPU/checkpoints/$first" runs/fsdp-resume/checkpoints/ \
    && echo "$first" > runs/fsdp-resume/checkpoints/latest
  log "resume from $first"
  run fsdp-resume "$NGPU" "${NOCKPT[@]}"
}
export_and_load() {
  $PY -m statex_dist.cli export runs/fsdp-ws$NGPU --out $WORK/exported --overwrite > "$OUT/export.log" 2>&1 \
    && $PY -c "
import statex_dist, torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained('$WORK/exported')
print(type(m).__name__, sum(p.numel() for p in m.parameters()), m.config.layer_overrides)
" >> "$OUT/export.log" 2>&1
  log "export exit $?"
}
STEADY_TIMEOUT=${RUN_TIMEOUT:-300}
FIRST=1  # the first run of a fresh machine also autotunes fla's norm kernels (about 80 s on an H200)
# REPEATS=N runs the RUNS list N times in turn, round i into $OUT/round<i>, each summarised against its own one-GPU
# run: two-GPU efficiency moved by up to 25% between calls minutes apart (2026-11-30, ninth round), so settings
# are compared within a round and the spread across rounds is reported.
REPEATS=${REPEATS:-1}
run_step() {  # one name of RUNS
  RUN_TIMEOUT=$STEADY_TIMEOUT
  [ "$FIRST" = 1 ] && RUN_TIMEOUT=${FIRST_TIMEOUT:-$STEADY_TIMEOUT}
  if [ $((SECONDS + RUN_TIMEOUT)) -gt "$DEADLINE" ]; then log "skip $1: deadline"; return; fi
  [ "$1" = prep ] || FIRST=0  # preparing the inputs compiles nothing: the next run is still the first
  case $1 in
    ws1) ws1_pair fsdp-ws1 "${NOCKPT[@]}" ;;  # StateX and the original model (model.expand=null), FSDP, 1 GPU
    ws1x) GPUS=${WS1_GPU:-0} run fsdp-ws1 1 "${NOCKPT[@]}" ;;  # StateX only, FSDP, on GPU WS1_GPU
    ws1-deepspeed) [ "$NGPU" -ge 2 ] && { deepspeed_ws1 zero2 0 & deepspeed_ws1 zero3 1; wait; } ;;  # side by side
    zero[23]-ws1|zero[23]-*-ws1) deepspeed_ws1 "${1%-ws1}" ;;  # one config alone at world size 1, on GPU 0
    ws1-kept) ws1_pair fsdp-ws1-kept model.kernel_save_states=true "${NOCKPT[@]}" ;;  # as ws1, chunk states kept
    ws1-gc0) ws1_pair fsdp-ws1-gc0 gc_interval=0 "${NOCKPT[@]}" ;;  # as ws1, Python's automatic gc (gc_ms per step)
    zero3-gc0) [ "$NGPU" -ge 2 ] && run $1-ws$NGPU "$NGPU" parallel.backend=deepspeed \
      parallel.deepspeed_config=configs/deepspeed/zero3.json gc_interval=0 "${NOCKPT[@]}" ;;
    single) ws1_pair single-ws1 parallel.backend=single "${NOCKPT[@]}" ;;
    fsdp) [ "$NGPU" -ge 2 ] && run fsdp-ws$NGPU "$NGPU" checkpoint.interval=3 ;;
    fsdp-nockpt) [ "$NGPU" -ge 2 ] && run $1-ws$NGPU "$NGPU" "${NOCKPT[@]}" ;;  # as ws1: no checkpoint writes
    fsdp-noreshard) [ "$NGPU" -ge 2 ] && run $1-ws$NGPU "$NGPU" parallel.reshard_after_forward=false "${NOCKPT[@]}" ;;
    resume) [ "$NGPU" -ge 2 ] && resume ;;
    export) log "export"; export_and_load ;;
    prep) log "inputs only" ;;
    zero2|zero3) [ "$NGPU" -ge 2 ] && run $1-ws$NGPU "$NGPU" parallel.backend=deepspeed \
      parallel.deepspeed_config=configs/deepspeed/$1.json "${NOCKPT[@]}" ;;
    zero2-dschecks) [ "$NGPU" -ge 2 ] && run $1-ws$NGPU "$NGPU" parallel.backend=deepspeed \
      parallel.deepspeed_config=configs/deepspeed/zero2.json "${DSCHECKS[@]}" "${NOCKPT[@]}" ;;
    zero3-hooks) [ "$NGPU" -ge 2 ] && run $1-ws$NGPU "$NGPU" parallel.backend=deepspeed \
      parallel.deepspeed_config=configs/deepspeed/zero3.json parallel.zero3_leaf_blocks=false "${NOCKPT[@]}" ;;
    zero2-*|zero3-*) [ "$NGPU" -ge 2 ] && run $1-ws$NGPU "$NGPU" parallel.backend=deepspeed \
      parallel.deepspeed_config=benchmarks/deepspeed/$1.json "${NOCKPT[@]}" ;;  # variants under trial
    *) log "unknown step $1" ;;
  esac
}
for round in $(seq 1 "$REPEATS"); do
  RUN_OUT=$OUT
  [ "$REPEATS" -gt 1 ] && RUN_OUT=$OUT/round$round && mkdir -p "$RUN_OUT" && log "round $round of $REPEATS"
  for step in $RUNS; do run_step "$step"; done
done
if [ "$REPEATS" -gt 1 ]; then
  for round in $(seq 1 "$REPEATS"); do
    echo -e "## Round $round\n"; $PY benchmarks/summarize_train_runs.py "$OUT/round$round"; echo
  done > "$OUT/gpu_train.md" 2>&1
else
  $PY benchmarks/summarize_train_runs.py "$OUT" > "$OUT/gpu_train.md" 2>&1
fi
cat "$OUT/gpu_train.md"
