#!/bin/bash
# StateX post-training on Slurm: one srun task per node, each running torchrun (c10d rendezvous on the
# first node). Nodes and GPUs come from the #SBATCH lines (or sbatch flags, which override them).
#
#   sbatch slurm/post_train.sh configs/gla-1.3b-statex.yaml [key=value ...]
#   sbatch --nodes 4 slurm/post_train.sh configs/mamba2-1.3b-lpt.yaml parallel.hsdp_shard_size=8
#
# Time limit: Slurm sends USR1 to this script 300 s before the limit (--signal=B:USR1@300). The trap
# writes RUN_DIR/STOP; the trainer sees it at the next step boundary (all ranks agree), saves a checkpoint,
# writes RUN_DIR/REQUEUE and exits with code 75. The script then runs `scontrol requeue`, and the requeued
# job resumes from RUN_DIR/checkpoints/latest by itself. Per-rank logs: RUN_DIR/logs/<job id>/.
#SBATCH --job-name=statex-post-train
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -uo pipefail

CONFIG=${1:?usage: sbatch slurm/post_train.sh CONFIG [key=value ...]}
shift
OVERRIDES=("$@")
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RUN_DIR=$(python -m statex_dist.cli train --config "$CONFIG" --print-run-dir "${OVERRIDES[@]}") || exit 2
mkdir -p "$RUN_DIR/logs/$SLURM_JOB_ID"

HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=${MASTER_PORT:-29500}
GPUS=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-8}}
GPUS=${GPUS##*:}   # "h200:8" -> 8
echo "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): $SLURM_NNODES nodes x $GPUS GPUs, rendezvous $HEAD:$PORT, run $RUN_DIR"

on_usr1() {
  echo "$(date -u +%T) USR1: time limit near, asking the trainer to checkpoint and stop"
  touch "$RUN_DIR/STOP"
}
trap on_usr1 USR1

srun --kill-on-bad-exit=1 --ntasks-per-node=1 --nodes="$SLURM_NNODES" \
  torchrun --nnodes "$SLURM_NNODES" --nproc-per-node "$GPUS" \
    --rdzv-id "$SLURM_JOB_ID" --rdzv-backend c10d --rdzv-endpoint "$HEAD:$PORT" \
    --log-dir "$RUN_DIR/logs/$SLURM_JOB_ID" --redirects 3 --tee 3 \
    -m statex_dist.cli train --config "$CONFIG" "${OVERRIDES[@]}" &
SRUN=$!
# `wait` returns early when the trap fires; keep waiting for srun itself.
while true; do
  wait "$SRUN"; RC=$?
  kill -0 "$SRUN" 2>/dev/null || break
done

if [[ -f "$RUN_DIR/REQUEUE" ]]; then
  echo "$(date -u +%T) trainer checkpointed ($(cat "$RUN_DIR/REQUEUE")); requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
exit "$RC"
