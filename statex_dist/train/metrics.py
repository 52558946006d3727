"""Training metrics: FLOP counts for both MFU conventions, and the sinks (console bar, JSONL, TensorBoard, W&B).

MFU conventions (reference.md section 8), FLOPs per token, forward + backward:
- ``attn`` (flame / torchtitan): 6 N + 12 L d T, charging a softmax-attention term to the recurrent model;
- ``linear``: 6 N + the chunked linear-attention work per layer, with each layer's own geometry:
  GLA 6 H [C (dk + dv) + 2 dk dv] with C = 64; Mamba2 6 [G C N + H (C P + 2 N P)] with C = 256.
N counts the parameters that take part in matmuls (the input embedding is a lookup and is left out).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)
KNOWN_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "B200": 2250.0}


def matmul_params(model_config, num_params: int) -> int:
    emb = model_config.vocab_size * model_config.hidden_size
    return num_params - emb


def flops_per_token(model_config, num_params: int, seq_len: int) -> dict[str, float]:
    from statex_dist.models.loading import family_of

    n = matmul_params(model_config, num_params)
    L, d = model_config.num_hidden_layers, model_config.hidden_size
    attn = 6 * n + 12 * L * d * seq_len
    mixer = 0.0
    for i in range(L):
        if family_of(model_config) == "gla":
            H, dk, dv = model_config.layer_state_shape(i)
            C = 64
            mixer += 6 * H * (C * (dk + dv) + 2 * dk * dv)
        else:
            H, P, N = model_config.layer_state_shape(i)
            G, C = model_config.n_groups, 256
            mixer += 6 * (G * C * N + H * (C * P + 2 * N * P))
    return {"attn": float(attn), "linear": float(6 * n + mixer)}


def device_peak_tflops(configured: float | None, device: torch.device) -> float | None:
    if configured is not None:
        return configured
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in KNOWN_PEAK_TFLOPS.items():
            if key in name:
                return value
    return None


def peak_memory_gib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    try:  # CPU: the process's peak resident set (Linux reports KiB)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    except Exception:
        return None


class MetricsSink:
    """Rank 0 only: a console progress line, ``metrics.jsonl``, TensorBoard and (optionally) W&B."""

    def __init__(self, run_dir: Path, cfg, total_steps: int, enabled: bool, config_dict: dict):
        self.enabled, self.total = enabled, total_steps
        self.cfg = cfg
        self.tb = self.wandb = None
        self.jsonl = None
        self._t0 = time.time()
        if not enabled:
            return
        self.jsonl = open(run_dir / "metrics.jsonl", "a", buffering=1)
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                log.warning("tensorboard is not installed: logging.tensorboard ignored")
        if cfg.wandb:
            try:
                import wandb

                self.wandb = wandb.init(project=cfg.wandb_project, dir=str(run_dir), config=config_dict,
                                        name=run_dir.name, resume="allow")
            except ImportError:
                log.warning("wandb is not installed: logging.wandb ignored")

    def log(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        record = {"step": step, **metrics}
        self.jsonl.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and v is not None:
                    self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)
        if self.cfg.progress_bar:
            self._console(step, metrics)

    def _console(self, step: int, m: dict) -> None:
        width = 24
        done = int(width * step / max(1, self.total))
        bar = "#" * done + "." * (width - done)
        tps = m.get("tokens_per_s")
        line = (f"[{bar}] step {step}/{self.total} loss {m.get('loss', float('nan')):.4f} "
                f"gnorm {m.get('grad_norm', float('nan')):.3f} "
                f"tok/s {tps:,.0f}" if tps is not None else f"[{bar}] step {step}/{self.total}")
        mfu = m.get("mfu_linear")
        if mfu is not None:
            line += f" mfu {100 * mfu:.1f}%/{100 * m.get('mfu_attn', 0):.1f}%"
        print(line, file=sys.stdout if sys.stdout.isatty() else sys.stderr, flush=True)

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
