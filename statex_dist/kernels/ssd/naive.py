"""Step-by-step Mamba2 SSD recurrence: the slow, obviously-correct reference (float64 when given float64)."""
from __future__ import annotations

import torch


def naive_recurrent_ssd(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One token at a time, per head h in group g = h // (H // G):
    ``S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t^T B_t`` (S is [P, N]) and ``y_t = S_t C_t``.

    Args:
        x: ``[b, T, H, P]``; dt: ``[b, T, H]`` (after softplus and bias); A: ``[H]`` (negative).
        B, C: ``[b, T, G, N]`` with ``H % G == 0``.
        initial_state: ``[N_seq, H, P, N]``. Default: zeros.
        output_final_state: return the state after each sequence. Default: ``False``.
        cu_seqlens: ``[N_seq + 1]`` offsets of packed sequences (b must be 1). Default: ``None``.

    Returns ``(y [b, T, H, P] in x's dtype, without the D skip, final_state or None)``.
    """
    b, T, H, P = x.shape
    G, N = B.shape[-2:]
    dtype = x.dtype
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    if cu_seqlens is None:
        bounds = [(i, 0, T) for i in range(b)]
    else:
        if b != 1:
            raise ValueError(f"cu_seqlens requires b == 1, got {b}")
        offs = cu_seqlens.tolist()
        bounds = [(0, offs[i], offs[i + 1]) for i in range(len(offs) - 1)]
    heads_per_group = H // G
    Bh = B.to(ct).repeat_interleave(heads_per_group, dim=2)  # [b, T, H, N]
    Ch = C.to(ct).repeat_interleave(heads_per_group, dim=2)
    x, dt, A = x.to(ct), dt.to(ct), A.to(ct)
    y = torch.empty(b, T, H, P, dtype=ct, device=x.device)
    finals = []
    for n, (i, start, end) in enumerate(bounds):
        S = initial_state[n].to(ct) if initial_state is not None else x.new_zeros(H, P, N)
        for t in range(start, end):
            decay = (dt[i, t] * A).exp()[:, None, None]
            S = decay * S + (dt[i, t][:, None] * x[i, t])[:, :, None] * Bh[i, t][:, None, :]
            y[i, t] = (S * Ch[i, t][:, None, :]).sum(-1)
        finals.append(S)
    final = torch.stack(finals, 0) if output_final_state else None
    return y.to(dtype), final
