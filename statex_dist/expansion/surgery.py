"""Per-layer StateX surgery on plain tensors: old block tensors -> new block tensors.

Working on a dict of one block's tensors (keys relative to the block, e.g. ``attn.q_proj.weight``) keeps the
surgery independent of where the tensors live: a whole model (``statex expand``), meta tensors (a plan for a
7B model in milliseconds), or one rank's slice of a sharded load (the trainer). Every fresh tensor is drawn
from ``layer_generator(seed, layer)``, so all three produce bit-identical parameters.
"""

from __future__ import annotations

import math

import torch

from statex_dist.expansion.plan import ExpansionError
from statex_dist.models.configuration import StateXGLAConfig, StateXMamba2Config
from statex_dist.models.gla import GLA_XAVIER_GAIN

Tensors = dict[str, torch.Tensor]


def layer_generator(seed: int, layer_idx: int) -> torch.Generator:
    """One CPU generator per (seed, layer): results do not depend on which other layers are expanded."""
    return torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + layer_idx)


def _uniform(shape, bound: float, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    if like.is_meta:
        return torch.empty(shape, dtype=like.dtype, device="meta")
    out = torch.empty(shape, dtype=torch.float32).uniform_(-bound, bound, generator=gen)
    return out.to(dtype=like.dtype, device=like.device)


def _full(shape, value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.full(shape, value, dtype=like.dtype, device=like.device)


# ---------------------------------------------------------------- GLA: merge heads


def check_gla(old: StateXGLAConfig, layer_idx: int, new_heads: int, mode: str) -> None:
    heads = old.layer_num_heads(layer_idx)
    if mode == "preserve":
        raise ExpansionError(
            "mode 'preserve' is defined for Mamba2 only: merging GLA heads adds cross-head terms, so no "
            "initialisation keeps the output; use reinit (paper default) or inherit"
        )
    if new_heads > heads:
        raise ExpansionError(f"layer {layer_idx}: {heads} -> {new_heads} heads would shrink the state; StateX only grows it")
    if new_heads == heads:
        raise ExpansionError(f"layer {layer_idx} already has {heads} heads: nothing to expand")
    if heads % new_heads:
        raise ExpansionError(f"layer {layer_idx}: {new_heads} heads do not divide the current {heads} heads")
    if old.key_dim % new_heads or old.value_dim % new_heads:
        raise ExpansionError(f"layer {layer_idx}: {new_heads} heads do not divide key/value dims")


def expand_gla_block(old: Tensors, old_heads: int, new_heads: int, mode: str, gen: torch.Generator) -> Tensors:
    """GLA block tensors with heads merged ``old_heads -> new_heads``.

    reinit (paper default): every mixer Linear gets xavier-uniform with gain 2^-2.5 in a fixed order, biases 0,
    the output norm and the block's ``attn_norm`` reset to 1. inherit: all weights kept, the per-head output
    norm tiled to the wider head (not function-preserving: cross-head terms, scale and norm group change).
    """
    new = dict(old)
    norm_key = "attn.g_norm_swish_gate.weight" if "attn.g_norm_swish_gate.weight" in old else "attn.g_norm.weight"
    old_norm = old[norm_key]
    factor = old_heads // new_heads
    if mode == "inherit":
        new[norm_key] = old_norm.repeat(factor) if not old_norm.is_meta else old_norm.new_empty(old_norm.numel() * factor)
        return new
    linear_keys = sorted(k for k in old if k.startswith("attn.") and k.endswith(".weight") and old[k].dim() == 2)
    for key in linear_keys:
        fan_out, fan_in = old[key].shape
        new[key] = _uniform(old[key].shape, GLA_XAVIER_GAIN * math.sqrt(6.0 / (fan_in + fan_out)), gen, old[key])
    for key in (k for k in old if k.startswith("attn.") and k.endswith(".bias")):
        new[key] = torch.zeros_like(old[key])
    new[norm_key] = _full((old_norm.numel() * factor,), 1.0, old_norm)
    new["attn_norm.weight"] = torch.ones_like(old["attn_norm.weight"])
    return new


# ---------------------------------------------------------------- Mamba2: grow d_state


def check_mamba2(old: StateXMamba2Config, layer_idx: int, new_state: int, mode: str) -> None:
    n = old.layer_state_size(layer_idx)
    if new_state < n:
        raise ExpansionError(f"layer {layer_idx}: d_state {n} -> {new_state} would shrink the state")
    if new_state == n:
        raise ExpansionError(f"layer {layer_idx} already has d_state {n}: nothing to expand")
    if mode == "inherit" and new_state % n:
        raise ExpansionError(f"layer {layer_idx}: inherit tiles B/C, so {new_state} must be a multiple of {n}")


def _grow_rows(old_rows: torch.Tensor, groups: int, n_old: int, n_new: int, fill) -> torch.Tensor:
    """``old_rows`` holds ``groups`` blocks of ``n_old`` rows (B or C); return ``groups`` blocks of ``n_new``.

    ``fill(group, old_block)`` returns the block's ``n_new`` rows.
    """
    blocks = old_rows.reshape(groups, n_old, *old_rows.shape[1:])
    return torch.cat([fill(g, blocks[g]) for g in range(groups)], dim=0)


def expand_mamba2_block(old: Tensors, cfg: StateXMamba2Config, n_old: int, n_new: int, mode: str,
                        gen: torch.Generator) -> Tensors:
    """Mamba2 block tensors with d_state ``n_old -> n_new``.

    ``in_proj`` rows are z | x | B | C | dt and ``conv1d`` channels x | B | C (B, C: groups x d_state).
    reinit (paper default): z, x, dt rows and x channels copied; new B/C rows and channels get PyTorch's
    default Linear / Conv1d init; A_log = log(1..H), dt_bias = 1, gated-norm weight 1; D, out_proj kept.
    inherit (paper's merge_copy): old B/C rows and channels tiled. preserve: old B/C in the first ``n_old``
    channels, new B rows 0 and new B conv bias 0 (so the new state channels stay 0 and the output is
    unchanged), new C rows and all new conv weights random, so every new parameter takes part in training.
    """
    inner, g, h = cfg.intermediate_size, cfg.n_groups, cfg.num_heads
    w_in = old["mixer.in_proj.weight"]
    z, x, B, C, dt = w_in.split([inner, inner, g * n_old, g * n_old, h], dim=0)
    cw, cb = old["mixer.conv1d.weight"], old.get("mixer.conv1d.bias")
    cx, cB, cC = cw.split([inner, g * n_old, g * n_old], dim=0)
    extra = n_new - n_old
    fan_in, kernel = w_in.shape[1], cw.shape[-1]
    meta = w_in.is_meta

    def fresh_rows(like):  # nn.Linear default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        return _uniform((extra, fan_in), 1 / math.sqrt(fan_in), gen, like)

    def fresh_conv(like):  # nn.Conv1d default (depthwise): fan_in = kernel size
        return _uniform((extra, 1, kernel), 1 / math.sqrt(kernel), gen, like)

    def fresh_bias(like):
        return _uniform((extra,), 1 / math.sqrt(kernel), gen, like)

    def grow(old_rows, mk):
        if meta:
            return old_rows.new_empty((g * n_new, *old_rows.shape[1:]))
        if mode == "inherit":
            reps = n_new // n_old
            return _grow_rows(old_rows, g, n_old, n_new, lambda _, blk: blk.repeat(reps, *([1] * (blk.dim() - 1))))
        return _grow_rows(old_rows, g, n_old, n_new, lambda _, blk: torch.cat([blk, mk(blk)], dim=0))

    if mode == "reinit":
        # Paper default: *all* B/C rows and channels are fresh (fixed draw order: B, C rows, B, C conv).
        B2 = _uniform((g * n_new, fan_in), 1 / math.sqrt(fan_in), gen, B)
        C2 = _uniform((g * n_new, fan_in), 1 / math.sqrt(fan_in), gen, C)
        cB2 = _uniform((g * n_new, 1, kernel), 1 / math.sqrt(kernel), gen, cB)
        cC2 = _uniform((g * n_new, 1, kernel), 1 / math.sqrt(kernel), gen, cC)
    elif mode == "inherit":
        B2, C2, cB2, cC2 = grow(B, None), grow(C, None), grow(cB, None), grow(cC, None)
    else:  # preserve
        B2 = grow(B, lambda blk: torch.zeros_like(blk[:1]).expand(extra, -1).clone())
        C2 = grow(C, fresh_rows)
        cB2, cC2 = grow(cB, fresh_conv), grow(cC, fresh_conv)
    new = dict(old)
    new["mixer.in_proj.weight"] = torch.cat([z, x, B2, C2, dt], dim=0)
    new["mixer.conv1d.weight"] = torch.cat([cx, cB2, cC2], dim=0)
    if cb is not None:
        bx, bB, bC = cb.split([inner, g * n_old, g * n_old], dim=0)
        if mode == "reinit":
            bB2 = _uniform((g * n_new,), 1 / math.sqrt(kernel), gen, bB)
            bC2 = _uniform((g * n_new,), 1 / math.sqrt(kernel), gen, bC)
        elif mode == "inherit":
            bB2, bC2 = grow(bB, None), grow(bC, None)
        else:
            bB2 = grow(bB, lambda blk: torch.zeros(extra, dtype=blk.dtype, device=blk.device))
            bC2 = grow(bC, fresh_bias)
        new["mixer.conv1d.bias"] = torch.cat([bx, bB2, bC2], dim=0)
    if mode == "reinit":
        a_log = old["mixer.A_log"]
        new["mixer.A_log"] = (
            torch.log(torch.arange(1, h + 1, dtype=torch.float32)).to(a_log.dtype).to(a_log.device)
            if not meta else a_log
        )
        new["mixer.dt_bias"] = torch.ones_like(old["mixer.dt_bias"])
        new["mixer.norm.weight"] = torch.ones_like(old["mixer.norm.weight"])
    return new
