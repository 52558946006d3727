"""The training config: one typed dataclass per concern, loaded strictly by ``statex_dist.config.io``.

``statex train --config X.yaml key=value ...`` -> :class:`TrainConfig`. Unknown keys and wrong types are
rejected with the dotted key and the allowed values; cross-field rules live in ``__post_init__`` and say how
to fix the problem. Rules that need the world size (the gradient-accumulation count) are checked at start-up
by :func:`accumulation_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from statex_dist.config.io import ConfigError, dump_yaml, load_config
from statex_dist.data.config import DataConfig


@dataclass
class ExpandConfig:
    """A StateX expansion applied on the fly (maps onto ``statex_dist.expansion.ExpansionPlan``)."""

    layers: str = "every:6"
    """every:K (layers 0, K, 2K...), all, or a comma list such as 0,6,12,18."""
    mode: Literal["reinit", "inherit", "preserve"] = "reinit"
    """reinit (paper default), inherit, preserve (Mamba2 only: function-preserving)."""
    gla_heads: int = 1
    """GLA: heads of an expanded layer (the paper merges 4 -> 1)."""
    mamba2_state_size: int = 512
    """Mamba2: d_state of an expanded layer (the paper grows 128 -> 512)."""
    seed: int = 0
    """Seeds the fresh parameters; the same seed gives what `statex expand --seed` writes."""


@dataclass
class ModelConfig:
    path: Optional[str] = None
    """Pretrained fla / Hugging Face / statex checkpoint directory (post-training)."""
    config: Optional[str] = None
    """A model JSON (e.g. configs/models/gla-tiny.json): random init from `seed` (pre-training, tests)."""
    expand: Optional[ExpandConfig] = None
    """StateX expansion; absent = the LPT arm (same training, no expansion)."""
    kernel_backend: Optional[str] = None
    """Override the model's kernel backend (auto | torch | triton | fla); null = the model config's."""
    kernel_save_states: Optional[bool] = None
    """Override the model's ``kernel_save_states`` (keep the Triton kernels' chunk states from forward to backward:
    GLA two kernels fewer per layer in backward for about 24 KiB more activation memory per token per GLA-1.3B
    layer, Mamba2 one fewer for 16 KiB per token per layer at d_state 128); null = the model config's."""

    def __post_init__(self) -> None:
        if (self.path is None) == (self.config is None):
            raise ValueError("set exactly one of model.path (pretrained directory) or model.config (model JSON)")


@dataclass
class OptimConfig:
    lr: float = 3e-4
    """Peak learning rate (the paper: 3e-4)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.1
    """Applied to parameters with >= 2 dims only (no norms, biases, A_log, D, dt_bias)."""
    fused: Optional[bool] = None
    """Fused AdamW; null = when the device supports it (CUDA)."""
    grad_clip: float = 1.0
    """Clip by global L2 norm; 0 = off."""
    expanded_lr_mult: float = 1.0
    """LR multiplier of the "expanded" group (re-initialised / grown token-mixer parameters)."""
    inherited_lr_mult: float = 1.0
    """LR multiplier of the "inherited" group (everything else)."""
    expanded_warmup_steps: Optional[int] = None
    """Warmup of the expanded group; null = schedule.warmup_steps. 0 = full LR from step 0."""
    inherited_warmup_steps: Optional[int] = None
    """Warmup of the inherited group; null = schedule.warmup_steps."""
    expanded_freeze_steps: int = 0
    """The expanded group does not move for this many steps (lr 0), then its warmup starts."""
    inherited_freeze_steps: int = 0
    """The inherited group does not move for this many steps (e.g. train new mixers alone first)."""

    def __post_init__(self) -> None:
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.lr < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("lr, weight_decay and grad_clip must be >= 0")
        for name in ("expanded_freeze_steps", "inherited_freeze_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass
class ScheduleConfig:
    kind: Literal["cosine", "wsd", "constant"] = "cosine"
    """cosine: warmup then cosine to min_lr; wsd: warmup, stable, then linear decay over decay_frac; constant."""
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0
    """Floor of the decay as a fraction of the peak LR (the paper: cosine to 0)."""
    decay_frac: float = 0.1
    """wsd only: fraction of the steps spent in the final decay."""

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0 < self.decay_frac <= 1:
            raise ValueError(f"decay_frac must be in (0, 1], got {self.decay_frac}")


@dataclass
class ParallelConfig:
    backend: Literal["fsdp", "deepspeed", "ddp", "single"] = "fsdp"
    """fsdp: FSDP2 fully_shard per block then root; deepspeed: ZeRO from deepspeed_config; ddp; single."""
    hsdp_shard_size: Optional[int] = None
    """fsdp: shard within groups of this many ranks (usually GPUs per node) and replicate across groups
    (HSDP); null = shard across all ranks."""
    cpu_offload: bool = False
    """fsdp: keep sharded parameters, gradients and optimizer states in CPU memory."""
    reshard_after_forward: bool = True
    """fsdp: free each block's gathered parameters after its forward and gather them again in backward (least
    memory, as ZeRO-3); false keeps them gathered until backward (as ZeRO-2): one all-gather per block and step
    fewer, for one unsharded 16-bit copy of the blocks' parameters per GPU."""
    deepspeed_config: Optional[str] = None
    """deepspeed: a ZeRO JSON (configs/deepspeed/zero2.json); batch, clip and precision keys are filled in from
    this config."""
    zero3_leaf_blocks: bool = True
    """deepspeed ZeRO-3: gather each block's parameters as one unit (DeepSpeed leaf modules: no fetch and release
    hooks on the block's Linear and norm submodules). Those hooks are host time on every step: GLA-1.3B StateX
    on two H200s went 0.726 -> 0.458 s per step with this on (docs/benchmarks.md, 2026-11-30); false: DeepSpeed's
    per-submodule fetching (less memory held per block)."""
    deepspeed_fused_grad_checks: bool = True
    """deepspeed ZeRO-1/2: the gradient norm in one fused pass, and no separate per-tensor overflow pass (the
    norm finds a NaN or inf as well, and the step is skipped as before); false: DeepSpeed's own passes, about
    3,400 small kernels a step for GLA-1.3B (statex_dist/parallel/deepspeed_checks.py)."""
    activation_checkpointing: Literal["none", "full", "every_k"] = "none"
    """Recompute block activations in backward: every block (full), or every k-th block."""
    ac_every_k: int = 2
    dist_timeout_s: int = 1800
    """Collective timeout (a hung rank fails after this long)."""

    def __post_init__(self) -> None:
        if self.backend == "deepspeed" and not self.deepspeed_config:
            raise ValueError("backend deepspeed needs parallel.deepspeed_config (e.g. configs/deepspeed/zero2.json)")
        if self.ac_every_k < 1:
            raise ValueError("ac_every_k must be >= 1")
        if self.hsdp_shard_size is not None and self.backend != "fsdp":
            raise ValueError("hsdp_shard_size is for backend fsdp only")
        if not self.zero3_leaf_blocks and self.backend != "deepspeed":
            raise ValueError("zero3_leaf_blocks is for backend deepspeed (ZeRO-3) only")
        if not self.deepspeed_fused_grad_checks and self.backend != "deepspeed":
            raise ValueError("deepspeed_fused_grad_checks is for backend deepspeed only")
        if not self.reshard_after_forward and self.backend != "fsdp":
            raise ValueError("reshard_after_forward is for backend fsdp only (DeepSpeed: choose ZeRO stage 2 or 3)")


@dataclass
class PrecisionConfig:
    mode: Literal["mixed_bf16", "pure_bf16", "fp32"] = "mixed_bf16"
    """mixed_bf16: fp32 master weights and optimizer, bf16 compute (FSDP: bf16 params, fp32 reduce);
    pure_bf16: weights and optimizer states in bf16 (the paper); fp32: no reduced precision (tests)."""


@dataclass
class CheckpointConfig:
    interval: int = 1000
    """Save every N steps (0 = only on signals and at the end)."""
    keep_last: int = 3
    """Keep the newest k complete checkpoints (0 = keep all)."""
    async_save: bool = False
    """fsdp/ddp/single: write in the background (dcp.async_save) while training continues."""
    resume: bool = True
    """Resume from the latest complete checkpoint in run_dir/checkpoints when there is one."""
    save_at_end: bool = True
    load_data_state: bool = True
    """Restore the data loader position (false: restart the data stream, e.g. after changing data)."""


@dataclass
class LoggingConfig:
    interval: int = 1
    """Log every N steps (metrics.jsonl gets every logged step)."""
    tensorboard: bool = True
    wandb: bool = False
    """Log to Weights & Biases when the package is installed (offline unless WANDB_MODE says otherwise)."""
    wandb_project: str = "statex"
    progress_bar: bool = True
    peak_tflops: Optional[float] = None
    """Peak dense bf16 TFLOP/s of one device for MFU; null = known GPUs (H100/H200: 989), else MFU is not
    reported."""


@dataclass
class ProfilingConfig:
    enabled: bool = False
    """torch.profiler over a window of steps on every rank: a trace, the ops by time and a summary in
    run_dir/profile/ (see statex_dist/train/profiling.py)."""
    start_step: int = 3
    """First profiled step, numbered as in the logs (1 = the first); later than 1 skips compilation, autotuning
    and the allocator's growth."""
    steps: int = 2
    top: int = 40
    """Rows of the ops table and the summary."""
    torch: bool = True
    """Record ops and kernels with torch.profiler."""
    python: bool = False
    """Record the main thread's Python functions with cProfile: where host time goes (an optimizer's
    per-parameter loop, framework hooks), which torch.profiler shows only as gaps between kernels. Hooks that
    autograd runs on its device threads count as time inside backward."""
    record_shapes: bool = False
    with_stack: bool = False
    memory: bool = False
    """Record allocations too (profile_memory)."""

    def __post_init__(self) -> None:
        if self.start_step < 1 or self.steps < 1 or self.top < 1:
            raise ValueError("profiling.start_step, profiling.steps and profiling.top must be >= 1")
        if self.enabled and not (self.torch or self.python):
            raise ValueError("profiling.enabled needs profiling.torch or profiling.python (or both)")


@dataclass
class TrainConfig:
    model: ModelConfig
    data: DataConfig
    run_dir: str = "runs/default"
    seed: int = 0
    steps: int = 20000
    global_batch_tokens: int = 524288
    """Tokens per optimizer step over all ranks (the paper: 8 x 65536); must be a multiple of
    data.seq_len x data.micro_batch_size x data-parallel ranks (the quotient is the accumulation count)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    profiling: ProfilingConfig = field(default_factory=ProfilingConfig)
    gc_interval: int = 50
    """Python's garbage collector runs on all ranks at once every this many steps, with the objects made during
    set-up frozen (statex_dist/train/collector.py); 0 = Python's automatic collection, which can stall any step
    on any rank. The time spent collecting is logged per step as ``gc_ms``."""
    max_bad_steps: int = 5
    """Non-finite loss or gradient: the step is skipped and counted; abort after this many in a row."""
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be >= 1")
        if self.global_batch_tokens < 1:
            raise ValueError("global_batch_tokens must be >= 1")
        if self.gc_interval < 0:
            raise ValueError("gc_interval must be >= 0 (0 = Python's automatic collection)")
        if self.parallel.backend == "deepspeed" and self.precision.mode == "pure_bf16":
            raise ValueError("precision.mode pure_bf16 is not offered with backend deepspeed (it keeps fp32 "
                             "master weights); use mixed_bf16, or backend fsdp for pure bf16")
        if self.parallel.cpu_offload and self.parallel.backend != "fsdp":
            raise ValueError("parallel.cpu_offload is for backend fsdp (use the DeepSpeed JSON's offload keys)")


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    return load_config(TrainConfig, path, overrides)


def accumulation_steps(cfg: TrainConfig, dp_world: int) -> int:
    per_micro = cfg.data.seq_len * cfg.data.micro_batch_size * dp_world
    if cfg.global_batch_tokens % per_micro:
        raise ConfigError(
            f"global_batch_tokens={cfg.global_batch_tokens} is not a multiple of seq_len x micro_batch_size x "
            f"dp ranks = {cfg.data.seq_len} x {cfg.data.micro_batch_size} x {dp_world} = {per_micro}; "
            f"use a multiple such as {max(1, cfg.global_batch_tokens // per_micro) * per_micro}"
        )
    return cfg.global_batch_tokens // per_micro


__all__ = ["TrainConfig", "ModelConfig", "ExpandConfig", "OptimConfig", "ScheduleConfig", "ParallelConfig",
           "PrecisionConfig", "CheckpointConfig", "LoggingConfig", "ProfilingConfig", "load_train_config",
           "accumulation_steps", "dump_yaml", "ConfigError"]
