#!/usr/bin/env bash
# nvidia-h200-x2 call h of 2026-11-30 (fifth round; scripted after the fourth):
#   in parallel  GPU 0: our SSD kernels, state walk vs split path (kernels.py --sections ssd, d_state 128 / 512,
#                       T 4096 / 8192), then the training steps of GLA-1.3B and Mamba2-1.3B (original and StateX)
#                       and of fla's Mamba2ForCausalLM on its torch fallback, in one process, with a profile of
#                       the Mamba2 step (gpu_e2e.py; issue 5's Mamba2 targets);
#                GPU 1: the Mamba2 GPU demo (configs/demo/gpu-mamba2.json) with the SSD scan-kernel fix;
#                CPU:   the GLA-1.3B checkpoint and corpus for the trainer runs;
#   then         both GPUs: FSDP world size 2 for 12 steps (scaling efficiency on more steps than the 4 steady
#                ones of 2026-11-30 call d, against the world-size-1 runs of that call).
# The split path (`triton/split`) was removed after this call (7a56c71): kernels.py now refuses it, so its SSD
# step fails with that message; check out an earlier commit to repeat the call as it ran.
# usage: benchmarks/gpu_call_x2.sh OUT [DEADLINE_S]     (repo root; statex_dist, fla, deepspeed importable)
source "$(dirname "$0")/gpu_call_common.sh" x2 "${1:-}" "${2:-560}"
mkdir -p "$RES"/{ssd,e2e,demo,train}
(
  CUDA_VISIBLE_DEVICES=0 timeout 150 $PY benchmarks/kernels.py --out "$RES/ssd" --sections ssd \
    --ssd-backends triton,triton/split --ssd-lengths 4096,8192 > "$RES/ssd/log" 2>&1
  note "gpu0 ssd walk/split exit $?"
  CUDA_VISIBLE_DEVICES=0 timeout 250 $PY benchmarks/gpu_e2e.py --parts profile,speed \
    --speed-variants ours,ours-mamba2,fla-mamba2 \
    --profile-models mamba2 --steps 4 --warmup 2 --out "$RES/e2e/gpu_e2e.md" > "$RES/e2e/log" 2>&1
  note "gpu0 mamba2 speed+profile exit $?"
) &
RUNS=prep bash benchmarks/gpu_train.sh "$RES/prep" 2 > "$RES/prep.log" 2>&1 &
(
  CUDA_VISIBLE_DEVICES=1 timeout 330 $PY -m statex_dist.cli demo --config configs/demo/gpu-mamba2.json \
    --out "$RES/demo/run" --overwrite > "$RES/demo/log" 2>&1
  note "gpu1 demo exit $?"
) &
wait
LEFT=$((DEADLINE - SECONDS - 10)); LEFT=$((LEFT > 30 ? LEFT : 30))
RUNS=fsdp EXTRA="steps=12" DEADLINE=$LEFT FIRST_TIMEOUT=$((LEFT - 5)) \
  timeout "$LEFT" bash benchmarks/gpu_train.sh "$RES/train" 2 > "$RES/train/console.log" 2>&1
note "fsdp ws2 exit $?"
cp "$RES"/demo/run/report.md "$OUT"/demo_report.md 2>/dev/null
cp "$RES"/ssd/kernels_h200.md "$OUT"/ssd_walk.md 2>/dev/null
cp "$RES"/e2e/gpu_e2e.md "$RES"/train/gpu_train.md "$RES/steps.log" "$OUT"/ 2>/dev/null
tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*/data/*' --exclude='*/corpus/*' --exclude='*.pt' \
  --exclude='*/checkpoints/*' --exclude='*/model/*' --exclude='*/work/*' --exclude='*/runs/*' -C "$RES" . 2>/dev/null
cat "$RES/steps.log"
