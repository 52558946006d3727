#!/usr/bin/env bash
# Host time of one training step per backend, on the CPU: GLA-1.3B's layout (24 blocks, the same parameter
# tensors: 4 merged StateX layers, the fused gate and norms) at widths so small that the arithmetic is negligible,
# so a step's wall time is about what each backend's Python and launch path costs. On the GPU that cost hides
# behind the kernels unless the backend waits for the device first (DeepSpeed's ZeRO-2 synchronises at the end of
# backward when overlap_comm is on, then runs its optimizer step; thirteenth round, docs/benchmarks.md). Runs one
# after another through benchmarks/gpu_train.sh (gloo), mixed_bf16 as on the GPU.
# usage: bash benchmarks/cpu_host_overhead.sh OUT [RUNS]      (repo root; statex_dist, deepspeed importable)
set -uo pipefail
OUT=${1:?usage: benchmarks/cpu_host_overhead.sh OUT [RUNS]}
RUNS=${2:-prep ws1x zero2-ws1 zero3-ws1 fsdp-nockpt zero2 zero3}
WORK=${WORK:-/tmp/statex_host_overhead}
mkdir -p "$WORK"
PY=${PYTHON:-python3}
$PY - "$WORK/skeleton.json" <<'PY'
import json, sys
raw = json.load(open("configs/models/gla-1.3b.json"))
raw.update(hidden_size=64, vocab_size=512)  # 24 blocks, 4 heads of 8 x 16: GLA-1.3B's tensors, tiny
json.dump(raw, open(sys.argv[1], "w"), indent=1)
PY
MODEL_JSON=$WORK/skeleton.json TOKENS_PER_GPU=512 WORK=$WORK RUNS=$RUNS \
  EXTRA="data.seq_len=128 data.micro_batch_size=4 device=cpu steps=20 ${EXTRA:-}" \
  bash benchmarks/gpu_train.sh "$OUT" 2
