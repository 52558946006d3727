#!/usr/bin/env bash
# statex train under the `deepspeed` launcher (ZeRO from parallel.deepspeed_config), one node or a hostfile.
#
#   HOSTFILE=hostfile launchers/deepspeed.sh CONFIG [key=value ...]
#
# The hostfile lists "host slots=N" lines (DeepSpeed's format; passwordless ssh between hosts). Without
# HOSTFILE it runs NGPU processes on this machine. The config must select backend deepspeed, or add
#   parallel.backend=deepspeed parallel.deepspeed_config=configs/deepspeed/zero2.json
# Environment: NGPU (local processes, default all GPUs or 2 on CPU), MASTER_PORT (29500),
# TORCH_EXTENSIONS_DIR (cache for DeepSpeed's JIT-built ops; the first run builds one, ~20 s, needs g++/ninja).
set -euo pipefail
CONFIG=${1:?usage: launchers/deepspeed.sh CONFIG [key=value ...]}
shift
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$HOME/.cache/statex_torch_extensions}
ARGS=(--master_port "${MASTER_PORT:-29500}" --no_local_rank)
if [[ -n "${HOSTFILE:-}" ]]; then
  ARGS+=(--hostfile "$HOSTFILE")
else
  ARGS+=(--num_gpus "${NGPU:-$(python -c "import torch; print(torch.cuda.device_count() or 2)")}")
fi
exec deepspeed "${ARGS[@]}" --module statex_dist.cli train --config "$CONFIG" "$@"
