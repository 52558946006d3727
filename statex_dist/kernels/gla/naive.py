"""Step-by-step GLA recurrence: the slow, obviously-correct reference (float64 when given float64)."""
from __future__ import annotations

import torch


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def naive_recurrent_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    gk: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One token at a time: ``S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t``, ``o_t = scale * q_t S_t``.

    Args:
        q, k, gk: ``[B, T, H, K]``; v: ``[B, T, H, V]``.
        scale: query scale. Default: ``K ** -0.5``.
        initial_state: ``[N, H, K, V]``, N = B or ``len(cu_seqlens) - 1``. Default: zeros.
        output_final_state: return the state after the last token of each sequence. Default: ``False``.
        cu_seqlens: ``[N + 1]`` offsets of packed sequences (B must be 1); the state resets at each. Default: ``None``.

    Returns ``(o [B, T, H, V] in q's dtype, final_state [N, H, K, V] or None)``; the state is in the compute
    dtype (float64 for float64 inputs, float32 otherwise).
    """
    B, T, H, K = q.shape
    scale = K**-0.5 if scale is None else scale
    ct = _compute_dtype(q)
    if cu_seqlens is None:
        bounds = [(b, 0, T) for b in range(B)]
    else:
        if B != 1:
            raise ValueError(f"cu_seqlens requires B == 1, got {B}")
        offs = cu_seqlens.tolist()
        bounds = [(0, offs[i], offs[i + 1]) for i in range(len(offs) - 1)]
    o = torch.empty(B, T, H, v.shape[-1], dtype=ct, device=q.device)
    finals = []
    for n, (b, start, end) in enumerate(bounds):
        if initial_state is not None:
            S = initial_state[n].to(ct)
        else:
            S = q.new_zeros(H, K, v.shape[-1], dtype=ct)
        for t in range(start, end):
            S = gk[b, t].to(ct).exp()[..., None] * S + k[b, t].to(ct)[..., None] * v[b, t].to(ct)[:, None, :]
            o[b, t] = scale * (q[b, t].to(ct)[..., None] * S).sum(-2)
        finals.append(S)
    final = torch.stack(finals, 0) if output_final_state else None
    return o.to(q.dtype), final
