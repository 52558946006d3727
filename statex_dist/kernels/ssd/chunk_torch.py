"""Pure-PyTorch chunked Mamba2 SSD: the CPU path and the reference for the Triton path.

SSD is linear attention with a scalar log decay ``a_t = dt_t A_h`` per head: C plays the query, B the key,
``dt * x`` the value. With ``s`` the inclusive cumulative decay from the chunk start,
``y_i = exp(s_i) S_in C_i + sum_{j<=i} exp(s_i - s_j) (C_i . B_j) dt_j x_j``. Scalar decay makes the
intra-chunk decay a ``[C, C]`` matrix per head; every exponent is a masked ``s_a - s_b`` with a after b, so
strong decays stay finite. B and C stay per group: heads of a group share one ``C B^T`` product.
"""
from __future__ import annotations

import torch

from statex_dist.kernels.layout import ChunkLayout, scan_chunk_states


def chunk_ssd_torch(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int = 64,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked SSD in PyTorch (differentiable).

    Args:
        x: ``[b, T, H, P]``; dt: ``[b, T, H]`` (after softplus and bias, clamped by the caller);
        A: ``[H]`` (negative); B, C: ``[b, T, G, N]`` with ``H % G == 0``.
        chunk_size: tokens per chunk. Default: ``64``.
        initial_state: ``[N_seq, H, P, N]``. Default: zeros.
        output_final_state: also return the ``[N_seq, H, P, N]`` fp32 state after each sequence. Default: ``False``.
        cu_seqlens: ``[N_seq + 1]`` int offsets of packed sequences; needs b == 1. Default: ``None``.

    Returns ``(y [b, T, H, P] in x's dtype, without the D skip, final_state or None)``.
    """
    b, T, H, P = x.shape
    G, N = B.shape[-2:]
    if H % G:
        raise ValueError(f"heads ({H}) must be a multiple of groups ({G})")
    hg = H // G
    dtype = x.dtype
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    L = chunk_size
    layout = ChunkLayout.build(b, T, L, cu_seqlens, x.device)
    R, Nc = layout.rows, layout.num_chunks

    x, dt, B, C = (layout.pad(t.to(ct)) for t in (x, dt, B, C))
    # [R, G, hg, Nc, L, ...] for per-head tensors, [R, G, 1, Nc, L, N] for per-group ones
    xdt = (x * dt[..., None]).view(R, Nc, L, G, hg, P).permute(0, 3, 4, 1, 2, 5)
    a = (dt * A.to(ct)).view(R, Nc, L, G, hg).permute(0, 3, 4, 1, 2)
    Bg, Cg = (t.view(R, Nc, L, G, 1, N).permute(0, 3, 4, 1, 2, 5) for t in (B, C))
    s = a.cumsum(-1)  # [R, G, hg, Nc, L]

    tri = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
    diff = s[..., :, None] - s[..., None, :]
    decay_in = torch.where(tri, diff, torch.full_like(diff, float("-inf"))).exp()
    scores = (Cg @ Bg.transpose(-1, -2)) * decay_in  # [R, G, hg, Nc, L, L]
    y = scores @ xdt

    s_last = s[..., -1:]  # [R, G, hg, Nc, 1]
    # state increment per chunk, [P, N] layout: sum_j exp(s_last - s_j) (dt x)_j^T B_j
    U = (xdt * (s_last - s).exp()[..., None]).transpose(-1, -2) @ Bg  # [R, G, hg, Nc, P, N]
    decay = s_last.exp()[..., None]  # [R, G, hg, Nc, 1, 1]
    S_in, final = scan_chunk_states(
        U.reshape(R, H, Nc, P, N), decay.reshape(R, H, Nc, 1, 1), layout, initial_state, output_final_state
    )
    S_in = S_in.view(R, G, hg, Nc, P, N)
    y = y + s.exp()[..., None] * (Cg @ S_in.transpose(-1, -2))
    y = y.permute(0, 3, 4, 1, 2, 5).reshape(R, Nc * L, H, P)
    return layout.unpad(y).to(dtype), final
