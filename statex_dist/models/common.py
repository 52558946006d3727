"""Building blocks shared by the GLA and Mamba2 models: norms, the SwiGLU MLP, the loss, the state cache.

Everything here is plain PyTorch so it runs on any device; norms compute in fp32 and return the input dtype,
as fla's fused versions do, so logits agree with fla within bf16 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    """RMSNorm with a weight only (fla's layout: ``<name>.weight``)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x * self.weight.float()).to(dtype)


class GatedRMSNorm(nn.Module):
    """``norm(x) * weight * silu(g)`` per head (GLA's ``g_norm_swish_gate``) or
    ``norm(x * silu(g))`` over groups (Mamba2's gated norm, ``norm_before_gate=False``)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6, norm_before_gate: bool = True, group_size: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps
        self.norm_before_gate = norm_before_gate
        self.group_size = group_size or hidden_size

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
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

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


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
