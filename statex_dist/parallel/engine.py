"""One small interface over the four backends: ``fsdp``, ``ddp``, ``single`` (plain torch) and ``deepspeed``.

The trainer only calls: ``micro_step_context(is_last)``, ``backward(loss_sum, scale)``, ``clip_and_step(...)``,
``state_dict`` / ``load_state_dict`` (through ``statex_dist.checkpoint``) and ``module`` for the forward.
Loss normalisation: the trainer passes the *sum* of token losses of a micro-batch and the global count of
target tokens N of the whole step; each engine scales so that the final gradient is d(global sum / N), whatever
the backend's own averaging (DDP/FSDP average over ranks, DeepSpeed also divides by its accumulation count).
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import torch

from statex_dist.parallel.dist import DistInfo, all_reduce_max
from statex_dist.parallel.fsdp import apply_activation_checkpointing, apply_fsdp, build_mesh
from statex_dist.parallel.materialize import load_initial_weights
from statex_dist.train.optim import GroupSpec, build_adamw, param_groups

log = logging.getLogger(__name__)


class TorchEngine:
    """fsdp / ddp / single: a torch module plus torch AdamW; checkpoints through DCP."""

    def __init__(self, backend: str, model, module, optimizer, specs: list[GroupSpec], info: DistInfo,
                 precision: str):
        self.backend, self.model, self.module, self.optimizer = backend, model, module, optimizer
        self.specs, self.info, self.precision = specs, info, precision

    @contextlib.contextmanager
    def micro_step_context(self, is_last: bool):
        with contextlib.ExitStack() as stack:
            if self.backend == "ddp" and not is_last:
                stack.enter_context(self.module.no_sync())  # reduce gradients once per step
            if self.backend == "fsdp":
                self.module.set_requires_gradient_sync(is_last)
            if self.precision == "mixed_bf16" and self.backend != "fsdp":
                stack.enter_context(torch.autocast(self.info.device.type, dtype=torch.bfloat16))
            yield

    def backward(self, loss_sum: torch.Tensor, num_tokens: float, accum: int) -> None:
        (loss_sum * (self.info.world / num_tokens)).backward()

    def grad_norm(self, max_norm: float) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"), foreach=True)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        return float(norm)

    def clip_and_step(self, max_norm: float, lrs: list[float], loss_bad: bool) -> tuple[float, bool]:
        """Clip, then step unless the gradient norm is non-finite. Returns (grad norm, stepped)."""
        norm = self.grad_norm(max_norm)
        ok = bool(torch.isfinite(torch.tensor(norm))) and not loss_bad
        if ok:
            for g, lr in zip(self.optimizer.param_groups, lrs):
                g["lr"] = lr
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm, ok

    def train(self) -> None:
        self.module.train()


class DeepSpeedEngine:
    """A DeepSpeed engine (ZeRO 1-3 from the JSON) with the same calls; checkpoints through DeepSpeed."""

    def __init__(self, engine, model, specs: list[GroupSpec], info: DistInfo, accum: int):
        self.backend, self.engine, self.model, self.module = "deepspeed", engine, model, engine
        self.specs, self.info, self.accum = specs, info, accum
        self.optimizer = engine.optimizer
        self._micro = 0

    @contextlib.contextmanager
    def micro_step_context(self, is_last: bool):
        yield

    def backward(self, loss_sum: torch.Tensor, num_tokens: float, accum: int) -> None:
        # DeepSpeed divides by its accumulation count and averages over ranks.
        self.engine.backward(loss_sum * (self.info.world * accum / num_tokens))

    def set_lrs(self, lrs: list[float]) -> None:
        for g, lr in zip(self.engine.optimizer.param_groups, lrs):
            g["lr"] = lr

    def clip_and_step(self, max_norm: float, lrs: list[float], loss_bad: bool) -> tuple[float, bool]:
        # Clipping is in the DeepSpeed JSON (gradient_clipping). A step with a non-finite loss runs with lr 0:
        # AdamW then leaves every weight unchanged (DeepSpeed has no public "skip this step").
        self.set_lrs([0.0] * len(lrs) if loss_bad else lrs)
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        norm = float(norm) if norm is not None else float("nan")
        ok = not loss_bad and bool(torch.isfinite(torch.tensor(norm)))
        return norm, ok

    def step_micro(self) -> None:
        """DeepSpeed counts micro-steps itself: every micro-step but the last calls ``engine.step()`` too."""
        self.engine.step()

    def train(self) -> None:
        self.engine.train()


def _to_device_and_tie(model, device) -> None:
    model.to_empty(device=device)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()


def build_engine(cfg, info: DistInfo, model, base_config, config, plan, source, resuming: bool, accum: int,
                 ds_universal: bool = False):
    """Parallelize a meta-device ``model``, materialise it, fill its weights (unless resuming) and wrap it."""
    backend, precision = cfg.parallel.backend, cfg.precision.mode
    if backend == "deepspeed" and _zero_stage(cfg) == 3:
        return _build_deepspeed_zero3(cfg, info, base_config, config, plan, source, resuming, accum, ds_universal)
    ac = apply_activation_checkpointing(model, cfg.parallel.activation_checkpointing, cfg.parallel.ac_every_k)
    if ac:
        log.info("activation checkpointing on blocks %s", ac)
    if precision == "pure_bf16":
        model.to(torch.bfloat16)
    stats = None
    if cfg.parallel.cpu_offload and info.device.type != "cuda":
        raise ValueError("parallel.cpu_offload needs a GPU: FSDP offloads to CPU memory from an accelerator "
                         "(on a CPU-only run everything is in CPU memory already); set it to false")
    if backend == "fsdp":
        mesh = build_mesh(info.world, info.device.type, cfg.parallel.hsdp_shard_size)
        apply_fsdp(model, mesh, precision, cfg.parallel.cpu_offload, cfg.parallel.reshard_after_forward)
        model.to_empty(device="cpu" if cfg.parallel.cpu_offload else info.device)
        if not resuming:
            stats = load_initial_weights(model, base_config, config, plan, source)
        module = model
    elif backend in ("ddp", "single", "deepspeed"):
        _to_device_and_tie(model, info.device)
        if not resuming:
            stats = load_initial_weights(model, base_config, config, plan, source)
        module = model
        if backend == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            module = DistributedDataParallel(model, device_ids=[info.local_rank] if info.device.type == "cuda" else None)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    if stats:
        log.info("weights: %d tensors (%d read as row slices), %d expanded blocks", stats["tensors"],
                 stats["sliced"], stats["expanded_blocks"])
    groups, specs = param_groups(model, config, cfg.optim)
    if backend == "deepspeed":
        return _build_deepspeed(cfg, info, model, groups, specs, accum, ds_universal)
    # Offloaded parameters live in CPU memory: the fused CUDA AdamW cannot step them.
    optimizer = build_adamw(groups, cfg.optim, "cpu" if cfg.parallel.cpu_offload else info.device.type)
    return TorchEngine(backend, model, module, optimizer, specs, info, precision)


def deepspeed_config(cfg, info: DistInfo, accum: int) -> dict:
    """The user's ZeRO JSON with batch, clipping and precision keys taken from our config (one source of truth)."""
    ds = json.loads(Path(cfg.parallel.deepspeed_config).read_text())
    ours = {
        "train_micro_batch_size_per_gpu": cfg.data.micro_batch_size,
        "gradient_accumulation_steps": accum,
        "train_batch_size": cfg.data.micro_batch_size * accum * info.world,
        "gradient_clipping": cfg.optim.grad_clip,
        "bf16": {"enabled": cfg.precision.mode == "mixed_bf16"},
        "steps_per_print": 10 ** 9,
        "wall_clock_breakdown": False,
    }
    for key in ("optimizer", "scheduler", "fp16"):
        if key in ds:
            raise ValueError(f"{cfg.parallel.deepspeed_config}: remove {key!r}; the optimizer, schedule and precision "
                             "come from the statex config")
    ds.update(ours)
    return ds


def _zero_stage(cfg) -> int:
    ds = json.loads(Path(cfg.parallel.deepspeed_config).read_text())
    return int(ds.get("zero_optimization", {}).get("stage", 0))


def _build_deepspeed_zero3(cfg, info, base_config, config, plan, source, resuming, accum, universal):
    """ZeRO-3: build the model inside ``deepspeed.zero.Init`` so parameters are partitioned as they are
    created, then load the weights one gathered parameter at a time."""
    import deepspeed

    from statex_dist.models.loading import build_model
    from statex_dist.parallel.materialize import load_initial_weights_zero3

    # zero.Init reads the world size from DeepSpeed's comm layer: attach it to our process group first.
    deepspeed.init_distributed(dist_backend="nccl" if info.device.type == "cuda" else "gloo",
                               auto_mpi_discovery=False)
    # NOTE: no `dtype=` here: DeepSpeed 0.19 then picks bf16 on CPU whatever is passed (operator precedence in
    # Init._set_dtype); without it the dtype follows the config's bf16 switch.
    from transformers.initialization import no_init_weights

    # The model's own init would write into already-partitioned (empty) tensors; every weight is loaded next.
    with deepspeed.zero.Init(config_dict_or_path=deepspeed_config(cfg, info, accum)), no_init_weights():
        model = build_model(config, device="cpu" if info.device.type == "cpu" else info.device)
    if getattr(config, "tie_word_embeddings", False):
        out_w, in_w = model.get_output_embeddings().weight, model.get_input_embeddings().weight
        if out_w is not in_w:
            model.get_output_embeddings().weight = in_w  # one partitioned parameter for both ends
    apply_activation_checkpointing(model, cfg.parallel.activation_checkpointing, cfg.parallel.ac_every_k)
    if not resuming:
        stats = load_initial_weights_zero3(model, base_config, config, plan, source, info.rank)
        log.info("weights (ZeRO-3, gathered one parameter at a time): %d tensors, %d expanded blocks",
                 stats["tensors"], stats["expanded_blocks"])
    groups, specs = param_groups(model, config, cfg.optim)
    return _build_deepspeed(cfg, info, model, groups, specs, accum, universal)


def _build_deepspeed(cfg, info, model, groups, specs, accum, universal):
    import deepspeed

    ds_cfg = deepspeed_config(cfg, info, accum)
    if universal:  # resuming on another number of ranks: read the universal checkpoint once
        ds_cfg.setdefault("checkpoint", {})["load_universal"] = True
    blocks = model.backbone_module.layers
    zero3 = _zero_stage(cfg) == 3
    if zero3 and cfg.parallel.zero3_leaf_blocks:
        from deepspeed.utils import set_z3_leaf_module

        for block in blocks:  # before initialize: it installs the hooks
            set_z3_leaf_module(block, True)
    optimizer = build_adamw(groups, cfg.optim, info.device.type)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_cfg,
                                           dist_init_required=False)
    if zero3:
        hooked = sum(1 for b in blocks for m in b.modules() if m is not b and m._forward_pre_hooks)
        log.info("ZeRO-3: %d blocks; %d of their submodules have DeepSpeed fetch hooks (parallel.zero3_leaf_blocks "
                 "%s)", len(blocks), hooked, cfg.parallel.zero3_leaf_blocks)
    else:
        from statex_dist.parallel.deepspeed_checks import fuse_zero_grad_checks

        why_not = fuse_zero_grad_checks(engine.optimizer) if cfg.parallel.deepspeed_fused_grad_checks else \
            "parallel.deepspeed_fused_grad_checks=false"
        log.info("ZeRO gradient norm and overflow check: %s", "fused" if why_not is None else
                 f"DeepSpeed's own ({why_not})")
    return DeepSpeedEngine(engine, model, specs, info, accum)


def any_rank(flag: bool, device) -> bool:
    return bool(all_reduce_max([1.0 if flag else 0.0], device)[0])
