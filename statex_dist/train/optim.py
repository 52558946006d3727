"""AdamW parameter groups (expanded vs inherited, decay vs no decay) and their learning-rate schedules.

Four groups at most: {expanded, inherited} x {decay, no_decay}. "expanded" are the parameters StateX
re-initialised or grew (``is_expanded_param``); each of the two kinds has its own LR multiplier, warmup and
freeze window. A frozen group gets lr 0, which leaves AdamW's update (and its decoupled weight decay,
``p *= 1 - lr * wd``) exactly zero, so the weights do not move by a single bit.
The LR is a pure function of the step, so resuming needs nothing but the step count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from statex_dist.train.config import OptimConfig, ScheduleConfig


@dataclass
class GroupSpec:
    name: str
    kind: str  # "expanded" | "inherited"
    decay: bool


def _clean(name: str) -> str:
    for junk in ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod."):
        name = name.replace(junk, "")
    return name[len("module."):] if name.startswith("module.") else name


def param_groups(model: torch.nn.Module, model_config, optim: OptimConfig) -> tuple[list[dict], list[GroupSpec]]:
    """torch optimizer groups plus their specs, in a fixed order (expanded first)."""
    from statex_dist.expansion.apply import is_expanded_param

    buckets: dict[tuple[str, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = "expanded" if is_expanded_param(model_config, _clean(name)) else "inherited"
        decay = p.ndim >= 2
        buckets.setdefault((kind, decay), []).append(p)
    groups, specs = [], []
    for kind in ("expanded", "inherited"):
        for decay in (True, False):
            params = buckets.get((kind, decay))
            if not params:
                continue
            spec = GroupSpec(f"{kind}_{'decay' if decay else 'no_decay'}", kind, decay)
            groups.append({"params": params, "weight_decay": optim.weight_decay if decay else 0.0,
                           "lr": 0.0, "name": spec.name})
            specs.append(spec)
    return groups, specs


def build_adamw(groups: list[dict], optim: OptimConfig, device_type: str) -> torch.optim.Optimizer:
    fused = optim.fused if optim.fused is not None else device_type == "cuda"
    return torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                             weight_decay=optim.weight_decay, fused=fused or None)


def decay_factor(step: int, start: int, total: int, sched: ScheduleConfig) -> float:
    """Multiplier of the peak LR after warmup: ``start`` is the first post-warmup step, ``total`` the run length."""
    floor = sched.min_lr_ratio
    if sched.kind == "constant":
        return 1.0
    if sched.kind == "cosine":
        progress = min(1.0, max(0, step - start) / max(1, total - start))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    # wsd: stable at the peak, then linear decay to the floor over the last decay_frac of the run
    decay_steps = max(1, int(round(total * sched.decay_frac)))
    begin = max(start, total - decay_steps)
    if step < begin:
        return 1.0
    return floor + (1 - floor) * max(0.0, 1 - (step - begin + 1) / max(1, total - begin))


def group_lr(spec: GroupSpec, step: int, total: int, optim: OptimConfig, sched: ScheduleConfig) -> float:
    """LR of one group for the update made at ``step`` (0-based): 0 while frozen, then the group's own linear
    warmup (it starts when the freeze ends), then the shared decay to ``min_lr_ratio`` at ``total``."""
    is_exp = spec.kind == "expanded"
    freeze = optim.expanded_freeze_steps if is_exp else optim.inherited_freeze_steps
    warm = optim.expanded_warmup_steps if is_exp else optim.inherited_warmup_steps
    warm = sched.warmup_steps if warm is None else warm
    peak = optim.lr * (optim.expanded_lr_mult if is_exp else optim.inherited_lr_mult)
    if step < freeze:
        return 0.0
    if step < freeze + warm:
        return peak * (step - freeze + 1) / warm
    return peak * decay_factor(step, freeze + warm, total, sched)


def set_lrs(optimizer, specs: list[GroupSpec], step: int, total: int, optim: OptimConfig,
            sched: ScheduleConfig) -> dict[str, float]:
    lrs = {}
    for group, spec in zip(optimizer.param_groups, specs):
        group["lr"] = lrs[spec.name] = group_lr(spec, step, total, optim, sched)
    return lrs
