"""Building blocks shared by the GLA and Mamba2 models: norms, the SwiGLU MLP, the loss, the state cache.

Everything here has a plain PyTorch path that runs on any device (norms compute in fp32 and return the input
dtype, as fla's fused versions do, so logits agree with fla within bf16 rounding). On CUDA, the norms, the
SwiGLU MLP and GLA's gate call fla's fused Triton ops instead (``fused=True``, from the configs' ``fuse_norm``
and ``fuse_swiglu``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


@functools.cache
def fla_fused(name: str) -> Callable | None:
    """fla's fused Triton op ``name`` (``rms_norm``, ``rms_norm_gated``, ``rmsnorm_fn``, ``logsigmoid``,
    ``swiglu_linear``, ``causal_conv1d``), or None when fla or triton does not import. Used for CUDA tensors
    only: the same math as the PyTorch code in one pass over memory, saving only the bf16 inputs for backward
    instead of several fp32 intermediates."""
    try:
        if name == "rms_norm":
            from fla.modules.layernorm import rms_norm as fn
        elif name == "rms_norm_gated":
            from fla.modules.fused_norm_gate import rms_norm_gated as fn
        elif name == "rmsnorm_fn":
            from fla.modules.layernorm_gated import rmsnorm_fn as fn
        elif name == "logsigmoid":
            from fla.modules.activations import logsigmoid as fn
        elif name == "swiglu_linear":
            from fla.modules.activations import swiglu_linear as fn
        elif name == "causal_conv1d":
            from fla.modules.causal_conv1d import causal_conv1d as fn
        else:
            raise KeyError(name)
    except ImportError:
        return None
    return fn


def use_fused(enabled: bool, x: torch.Tensor, name: str) -> Callable | None:
    return fla_fused(name) if enabled and x.is_cuda else None


def set_fused_ops(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every module with a ``fused`` switch (norms, MLPs, GLA's gate, Mamba2's conv) between fla's fused
    ops and the PyTorch path (same parameters; the configs' ``fuse_norm`` also renames fla's GLA output-norm
    parameter, so it cannot be used for this)."""
    for mod in model.modules():
        if isinstance(getattr(mod, "fused", None), bool):
            mod.fused = enabled
    return model


class RMSNorm(nn.Module):
    """RMSNorm with a weight only (fla's layout: ``<name>.weight``). ``fused``: fla's Triton kernel on CUDA."""

    def __init__(self, hidden_size: int, eps: float = 1e-6, fused: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps
        self.fused = fused

    def _reference(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x * self.weight.float()).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = use_fused(self.fused, x, "rms_norm")
        return fn(x, self.weight, None, eps=self.eps) if fn is not None else self._reference(x)

    def add_norm(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(norm(residual + x), residual + x)``, the sum in the residual's dtype (one kernel when fused)."""
        fn = use_fused(self.fused, x, "rms_norm")
        if fn is not None:
            return fn(x, self.weight, None, residual=residual, eps=self.eps, prenorm=True,
                      residual_in_fp32=residual.dtype == torch.float32)
        total = residual + x.to(residual.dtype)
        return self._reference(total).to(x.dtype), total


class GatedRMSNorm(nn.Module):
    """``norm(x) * weight * silu(g)`` per head (GLA's ``g_norm_swish_gate``) or
    ``norm(x * silu(g))`` over groups (Mamba2's gated norm, ``norm_before_gate=False``)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6, norm_before_gate: bool = True, group_size: int | None = None,
                 fused: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps
        self.norm_before_gate = norm_before_gate
        self.group_size = group_size or hidden_size
        self.fused = fused

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.norm_before_gate and self.group_size == x.shape[-1]:
            # GLA's per-head case: the kernel fla's own GLA layer uses. Its backward took 3.2 ms a GLA-1.3B step
            # on an H200 against 6.2 for ``rmsnorm_fn``'s grouped kernel (2026-11-30, ninth round, call ze).
            fn = use_fused(self.fused, x, "rms_norm_gated")
            if fn is not None:
                return fn(x, g.to(x.dtype), self.weight, None, activation="swish", eps=self.eps)
        fn = use_fused(self.fused, x, "rmsnorm_fn")
        if fn is not None:
            return fn(x, self.weight, None, z=g.to(x.dtype), eps=self.eps, group_size=self.group_size,
                      norm_before_gate=self.norm_before_gate)
        dtype = x.dtype
        x, g = x.float(), g.float()
        if not self.norm_before_gate:
            x = x * F.silu(g)
        shape = x.shape
        xg = x.reshape(*shape[:-1], shape[-1] // self.group_size, self.group_size)
        xg = xg * torch.rsqrt(xg.pow(2).mean(-1, keepdim=True) + self.eps)
        x = xg.reshape(shape) * self.weight.float()
        if self.norm_before_gate:
            x = x * F.silu(g)
        return x.to(dtype)


class SwiGLUMLP(nn.Module):
    """fla's ``GatedMLP`` with ``hidden_act='swish'``: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, hidden_size: int, intermediate_size: int, fused: bool = True):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_proj(x), self.up_proj(x)
        fn = use_fused(self.fused, x, "swiglu_linear")
        if fn is not None:  # recomputes silu(gate) * up in backward instead of saving it
            return fn(gate, up, self.down_proj.weight, self.down_proj.bias)
        return self.down_proj(F.silu(gate) * up)


def _fused_cross_entropy(reduction: str):
    """fla's Triton cross-entropy (no fp32 copy of the logits) when fla is installed; None otherwise."""
    try:
        from fla.modules import FusedCrossEntropyLoss
    except Exception:  # fla missing or its Triton import failing: the torch path is always correct
        return None
    return FusedCrossEntropyLoss(ignore_index=-100, reduction=reduction)


def causal_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    shift_labels: torch.Tensor | None = None,
    reduction: str = "mean",
    fused: bool = False,
) -> torch.Tensor:
    """Cross-entropy over next-token targets; ``-100`` targets are ignored.

    ``labels`` follow Hugging Face (unshifted, shifted here); ``shift_labels`` are targets already aligned with
    ``logits`` (what the data layer produces). ``reduction='sum'`` lets a trainer normalise by the global count.
    ``fused`` uses fla's Triton kernel on CUDA tensors (same value, less memory, faster).
    """
    if shift_labels is None:
        if labels is None:
            raise ValueError("pass labels or shift_labels")
        shift_labels = F.pad(labels[..., 1:], (0, 1), value=-100)
    flat_logits = logits.reshape(-1, logits.shape[-1])
    targets = shift_labels.reshape(-1).to(logits.device)
    if fused and logits.is_cuda:
        loss_fn = _fused_cross_entropy(reduction)
        if loss_fn is not None:
            return loss_fn(flat_logits, targets)
    return F.cross_entropy(flat_logits.float(), targets, ignore_index=-100, reduction=reduction)


def flatten_for_varlen(input_ids: torch.Tensor, cu_seqlens: torch.Tensor | None) -> torch.Tensor:
    """Packed rows with document boundaries are run as one long sequence ``[1, B*T]`` (fla's varlen layout)."""
    if cu_seqlens is None or input_ids.shape[0] == 1:
        return input_ids
    total = input_ids.numel()
    if int(cu_seqlens[-1]) != total:
        raise ValueError(f"cu_seqlens ends at {int(cu_seqlens[-1])} but the batch holds {total} tokens")
    return input_ids.reshape(1, total)


@dataclass
class RecurrentCache:
    """Per-layer recurrent (and convolution) states for generation; shapes differ per layer after StateX.

    ``states[i]`` is a dict with ``recurrent_state`` and, for Mamba2, ``conv_state``. ``seen_tokens`` counts
    tokens consumed so far.
    """

    states: list[dict | None] = field(default_factory=list)
    seen_tokens: int = 0

    def layer(self, idx: int) -> dict | None:
        return self.states[idx] if idx < len(self.states) else None

    def update(self, idx: int, **state: torch.Tensor | None) -> None:
        while len(self.states) <= idx:
            self.states.append(None)
        self.states[idx] = state

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        for st in self.states:
            if st is None:
                continue
            for key, value in st.items():
                if value is not None:
                    st[key] = value.index_select(0, beam_idx.to(value.device))

    def __len__(self) -> int:
        return len(self.states)
