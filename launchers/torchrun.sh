#!/usr/bin/env bash
# statex train under torchrun, on one node or many.
#
#   launchers/torchrun.sh CONFIG [key=value ...]
#
# Environment:
#   NGPU         processes per node (default: the visible GPUs, or 2 on a CPU-only machine)
#   NNODES       number of nodes (default 1: --standalone rendezvous on a free port)
#   MASTER_ADDR  rendezvous host for NNODES > 1 (run this script on every node with the same value)
#   MASTER_PORT  rendezvous port (default 29500)
#   RDZV_ID      rendezvous id shared by the nodes of one job (default statex)
#   LOG_DIR      per-rank stdout/stderr files (default RUN_DIR/logs/torchrun); empty = console only
#   DRY_RUN=1    validate the config and print it resolved, start nothing
# Exit code 75 from the trainer (shown by torchrun as a failure) means: checkpointed on a signal or a STOP
# file; run the same command again to resume.
set -euo pipefail
CONFIG=${1:?usage: launchers/torchrun.sh CONFIG [key=value ...]}
shift
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  exec python -m statex_dist.cli train --config "$CONFIG" --check "$@"
fi
RUN_DIR=$(python -m statex_dist.cli train --config "$CONFIG" --print-run-dir "$@")
NGPU=${NGPU:-$(python -c "import torch; print(torch.cuda.device_count() or 2)")}
NNODES=${NNODES:-1}
LOG_DIR=${LOG_DIR-$RUN_DIR/logs/torchrun}
LOG_ARGS=()
if [[ -n "$LOG_DIR" ]]; then
  mkdir -p "$LOG_DIR"
  LOG_ARGS=(--log-dir "$LOG_DIR" --redirects 3 --tee 3)
fi
if [[ "$NNODES" == 1 ]]; then
  RDZV=(--standalone)
else
  RDZV=(--nnodes "$NNODES" --rdzv-backend c10d --rdzv-endpoint "${MASTER_ADDR:?set MASTER_ADDR}:${MASTER_PORT:-29500}"
        --rdzv-id "${RDZV_ID:-statex}")
fi
exec torchrun "${RDZV[@]}" --nproc-per-node "$NGPU" "${LOG_ARGS[@]}" \
  -m statex_dist.cli train --config "$CONFIG" "$@"
