#!/usr/bin/env bash
# Issue 8: the NGPU-GPU scaling run of GLA-1.3B StateX at one 65,536-token sequence per GPU
# (configs/bench/gla-1.3b-statex-64k.yaml), launched the way a cluster user would:
#   1. FSDP2 through launchers/torchrun.sh at 1, 2 and NGPU processes (scaling efficiency), the NGPU run
#      saving a checkpoint at step 3 (save time in its log);
#   2. DeepSpeed ZeRO-3 through launchers/deepspeed.sh at NGPU processes;
#   3. the Slurm script (slurm/post_train.sh) on one node: its srun/torchrun command line, run with a
#      stand-in `srun` and `scontrol` (this machine has no Slurm);
#   4. kill and reshard: an NGPU run SIGKILLed after its step-3 checkpoint, resumed with NGPU/2 processes
#      (DCP reshards; the data layer re-deals the documents), losses compared with the uninterrupted run;
#   5. the tables: benchmarks/summarize_train_runs.py plus the save/load times from the logs.
# usage: benchmarks/scaling_run.sh OUT [NGPU]   (repo root; statex_dist, fla, deepspeed, streaming importable)
# CPU dry run (gloo, tiny model):
#   MODEL_JSON=configs/models/gla-tiny.json SEQ=256 NGPU_FALLBACK=2 EXTRA="device=cpu" benchmarks/scaling_run.sh OUT 2
set -uo pipefail
OUT=${1:?usage: benchmarks/scaling_run.sh OUT [NGPU]}
NGPU=${2:-8}
CFG=configs/bench/gla-1.3b-statex-64k.yaml
MODEL_JSON=${MODEL_JSON:-configs/models/gla-1.3b.json}
SEQ=${SEQ:-65536}
WORK=${WORK:-work}
RUNS=${RUNS:-fsdp1 fsdp2 fsdp zero3 slurm reshard}
read -r -a EXTRA_ARGS <<< "${EXTRA:-}"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)  # absolute: the launchers change directory
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$WORK/torch_extensions}
mkdir -p "$OUT" "$WORK" runs
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/scaling.log"; }
want() { [[ " $RUNS " == *" $1 "* ]]; }
common() {  # name world_size -> the overrides every run shares
  echo "run_dir=runs/$1 model.path=$WORK/model data.sources.0.path=$WORK/corpus64k data.seq_len=$SEQ" \
       "global_batch_tokens=$((SEQ * $2)) ${EXTRA_ARGS[*]}"
}
finish() {  # name rc t0: log the exit and keep the metrics
  log "  $1 exit $2 after $((SECONDS - $3)) s"
  cp "runs/$1/metrics.jsonl" "$OUT/$1.metrics.jsonl" 2>/dev/null || true
}
torchrun_run() {  # name world_size [overrides...]: launchers/torchrun.sh with world_size local processes
  local name=$1 ws=$2 t0=$SECONDS; shift 2
  rm -rf "runs/$name"
  log "torchrun $name (world size $ws) $*"
  # shellcheck disable=SC2046
  NGPU=$ws LOG_DIR= CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((ws - 1))) timeout "${RUN_TIMEOUT:-600}" \
    launchers/torchrun.sh $CFG $(common "$name" "$ws") "$@" > "$OUT/$name.log" 2>&1
  finish "$name" $? $t0
}

VOCAB=$($PY -c "import json; print(json.load(open('$MODEL_JSON'))['vocab_size'])")
[ -d $WORK/model ] || $PY benchmarks/make_random_checkpoint.py "$MODEL_JSON" $WORK/model --dtype bfloat16
[ -d $WORK/corpus64k ] || $PY -m statex_dist.train.synthetic $WORK/corpus64k --docs $((NGPU * 40)) \
  --vocab "$VOCAB" --min-len $((SEQ / 8)) --max-len $((SEQ * 2))
log "inputs ready ($NGPU GPUs, $SEQ tokens per GPU per step)"

want fsdp1 && torchrun_run scale-fsdp-ws1 1
want fsdp2 && [ "$NGPU" -gt 2 ] && torchrun_run scale-fsdp-ws2 2
want fsdp && torchrun_run "scale-fsdp-ws$NGPU" "$NGPU" checkpoint.interval=3 steps=8

if want zero3; then
  name=scale-zero3-ws$NGPU t0=$SECONDS
  rm -rf "runs/$name"
  log "deepspeed $name"
  # shellcheck disable=SC2046
  NGPU=$NGPU MASTER_PORT=29531 timeout "${RUN_TIMEOUT:-600}" launchers/deepspeed.sh $CFG $(common "$name" "$NGPU") \
    parallel.backend=deepspeed parallel.deepspeed_config=configs/deepspeed/zero3.json > "$OUT/$name.log" 2>&1
  finish "$name" $? $t0
fi

if want slurm; then
  name=scale-slurm-ws$NGPU t0=$SECONDS
  rm -rf "runs/$name"
  fake=$(mktemp -d)
  printf '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n' > "$fake/srun"  # one node: run the task
  printf '#!/bin/bash\n[ "$1 $2" = "show hostnames" ] && echo localhost\n' > "$fake/scontrol"
  chmod +x "$fake/srun" "$fake/scontrol"
  log "slurm/post_train.sh $name (stand-in srun/scontrol, one node)"
  # shellcheck disable=SC2046
  PATH="$fake:$PATH" SLURM_JOB_ID=$$ SLURM_JOB_NODELIST=localhost SLURM_NNODES=1 SLURM_GPUS_ON_NODE=$NGPU \
    MASTER_PORT=29541 timeout "${RUN_TIMEOUT:-600}" bash slurm/post_train.sh $CFG $(common "$name" "$NGPU") \
    > "$OUT/$name.log" 2>&1
  finish "$name" $? $t0
fi

if want reshard; then
  # Kill after the step-3 checkpoint, resume on half the processes, run to step 8, compare with the full run.
  name=scale-killed-ws$NGPU half=$((NGPU / 2 > 0 ? NGPU / 2 : 1)) t0=$SECONDS
  rm -rf "runs/$name"
  log "reshard: $name, killed after its step-3 checkpoint, then resumed with $half processes"
  # shellcheck disable=SC2046
  NGPU=$NGPU LOG_DIR= MASTER_PORT=29551 launchers/torchrun.sh $CFG $(common "$name" "$NGPU") \
    checkpoint.interval=3 steps=8 > "$OUT/$name.log" 2>&1 &
  pid=$!
  # the step-3 checkpoint is published (its `latest` pointer written) before step 4 starts: kill right then
  until [ -s "runs/$name/checkpoints/latest" ] || ! kill -0 $pid 2>/dev/null; do sleep 0.2; done
  # SIGKILL every process of the run, launcher and ranks alike (torchrun starts its ranks in new sessions)
  pkill -KILL -f "run_dir=runs/$name " ; pkill -KILL -f "run_dir=runs/$name$"
  wait $pid 2>/dev/null
  sleep 2
  finish "$name" killed $t0
  t0=$SECONDS
  log "resume $name with $half processes"
  # shellcheck disable=SC2046
  NGPU=$half LOG_DIR= MASTER_PORT=29552 CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((half - 1))) \
    timeout "${RUN_TIMEOUT:-600}" launchers/torchrun.sh $CFG $(common "$name" "$NGPU") checkpoint.interval=3 \
    steps=8 >> "$OUT/$name.log" 2>&1
  log "  resumed $name exit $? after $((SECONDS - t0)) s"
  cp "runs/$name/metrics.jsonl" "$OUT/$name.metrics.jsonl" 2>/dev/null
fi

{
  $PY benchmarks/summarize_train_runs.py "$OUT"
  echo
  echo "checkpoint save / load times (from the logs):"
  grep -h -o "saved checkpoint .*\| loaded checkpoint .*" "$OUT"/*.log | sed 's/^/  /'
  if [ -f "$OUT/scale-killed-ws$NGPU.metrics.jsonl" ] && [ -f "$OUT/scale-fsdp-ws$NGPU.metrics.jsonl" ]; then
    $PY - "$OUT/scale-fsdp-ws$NGPU.metrics.jsonl" "$OUT/scale-killed-ws$NGPU.metrics.jsonl" <<'EOF'
import json, sys
full, resumed = ([json.loads(x) for x in open(p) if x.strip()] for p in sys.argv[1:])
a = {r["step"]: r["loss"] for r in full}
b = {}
for r in resumed:  # the resumed part repeats steps after the checkpoint: keep the last value of each step
    b[r["step"]] = r["loss"]
common = sorted(set(a) & set(b) - {1, 2, 3})
print("killed after the step-3 checkpoint, resumed on half the processes: |loss diff| vs the uninterrupted run,"
      " steps", common, [f"{abs(a[s] - b[s]):.2e}" for s in common],
      "(documents are re-dealt to the new ranks and packed again, so batches differ slightly: expect small"
      " differences, not a jump)")
EOF
  fi
} > "$OUT/scaling.md" 2>&1
cat "$OUT/scaling.md"
