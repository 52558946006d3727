"""Pure-PyTorch chunked GLA: the CPU path and the reference the Triton kernels are checked against.

Within a chunk of C tokens, with ``g`` the inclusive cumulative log decay from the chunk start,
``o_i = scale * (q_i * exp(g_i)) S_in + scale * sum_{j<=i} (sum_k q_ik k_jk exp(g_ik - g_jk)) v_j``.
Every exponent we take is a difference ``g_a - g_b`` with ``a`` later than ``b`` (so <= 0), which keeps strong
decays (gk of -5 per step and below) finite in fp32: the intra-chunk term splits into 16-token sub-chunks;
pairs in different sub-chunks go through a reference point at the end of the sub-chunk before ``i``
(two factors each <= 1, one matmul), pairs in the same sub-chunk use the exact ``[c, c, K]`` decay tensor.
All chunks are processed at once; only the state scan walks chunks in a Python loop. Autograd runs through it.
"""
from __future__ import annotations

import torch

from statex_dist.kernels.layout import ChunkLayout, scan_chunk_states

SUB_CHUNK = 16


def _to_chunks(x: torch.Tensor, C: int) -> torch.Tensor:
    # [R, Tp, H, D] -> [R, H, N, C, D]
    R, Tp, H, D = x.shape
    return x.view(R, Tp // C, C, H, D).permute(0, 3, 1, 2, 4)


def _from_chunks(x: torch.Tensor) -> torch.Tensor:
    # [R, H, N, C, D] -> [R, N*C, H, D]
    R, H, N, C, D = x.shape
    return x.permute(0, 2, 3, 1, 4).reshape(R, N * C, H, D)


def _masked_exp(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # mask before exp: masked exponents may be large and positive
    return torch.where(mask, x, torch.full_like(x, float("-inf"))).exp()


def gla_intra_chunk(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Causal intra-chunk output. q, k, g: [..., C, K] (g cumulative within the chunk); v: [..., C, V]."""
    *lead, C, K = q.shape
    c = SUB_CHUNK if C % SUB_CHUNK == 0 else C
    ns = C // c
    qs, ks, gs = (x.reshape(*lead, ns, c, K) for x in (q, k, g))
    vs = v.reshape(*lead, ns, c, v.shape[-1])
    dev = q.device

    # same sub-chunk: exact decay tensor [.., ns, c, c, K], j <= i
    tri = torch.ones(c, c, dtype=torch.bool, device=dev).tril()[..., None]
    D = _masked_exp(gs[..., :, None, :] - gs[..., None, :, :], tri)
    A_diag = ((qs[..., :, None, :] * D) * ks[..., None, :, :]).sum(-1)
    o = A_diag @ vs
    if ns == 1:
        return o.reshape(*lead, C, v.shape[-1])

    # earlier sub-chunks: reference r_a = g at the last token before sub-chunk a (0 for a = 0)
    ref = torch.cat([torch.zeros_like(gs[..., :1, -1, :]), gs[..., :-1, -1, :]], dim=-2)  # [.., ns, K]
    q_ref = qs * (gs - ref[..., None, :]).exp()  # [.., ns, c, K], factors <= 1
    before = torch.arange(C, device=dev)[None, :] < (torch.arange(ns, device=dev) * c)[:, None]  # [ns, C]
    k_ref = k[..., None, :, :] * _masked_exp(ref[..., :, None, :] - g[..., None, :, :], before[..., None])
    A_off = q_ref @ k_ref.transpose(-1, -2)  # [.., ns, c, C]
    o = o + A_off @ v[..., None, :, :]
    return o.reshape(*lead, C, v.shape[-1])


def chunk_gla_torch(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    gk: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked gated linear attention in PyTorch (differentiable).

    Args:
        q, k, gk: ``[B, T, H, K]`` (gk is the per-key-channel log decay, <= 0); v: ``[B, T, H, V]``.
        scale: query scale. Default: ``K ** -0.5``.
        initial_state: ``[N, H, K, V]``, N = B or ``len(cu_seqlens) - 1``. Default: zeros.
        output_final_state: also return the ``[N, H, K, V]`` fp32 state after each sequence. Default: ``False``.
        cu_seqlens: ``[N + 1]`` int offsets of packed sequences in the T axis; needs B == 1. Default: ``None``.
        chunk_size: tokens per chunk. Default: ``64``.

    Returns ``(o [B, T, H, V] in q's dtype, final_state or None)``; accumulation is fp32 (fp64 for fp64 inputs).
    """
    B, T, H, K = q.shape
    scale = K**-0.5 if scale is None else scale
    dtype = q.dtype
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    C = chunk_size
    layout = ChunkLayout.build(B, T, C, cu_seqlens, q.device)

    q, k, v, gk = (_to_chunks(layout.pad(x.to(ct)), C) for x in (q, k, v, gk))
    q = q * scale
    g = gk.cumsum(-2)
    o = gla_intra_chunk(q, k, v, g)

    g_last = g[..., -1:, :]  # [R, H, N, 1, K]
    U = (k * (g_last - g).exp()).transpose(-1, -2) @ v  # [R, H, N, K, V]
    decay = g_last.transpose(-1, -2).exp()  # [R, H, N, K, 1]
    S_in, final = scan_chunk_states(U, decay, layout, initial_state, output_final_state)
    o = o + (q * g.exp()) @ S_in
    o = layout.unpad(_from_chunks(o))
    return o.to(dtype), final
