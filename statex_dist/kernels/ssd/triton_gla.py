"""Mamba2 SSD on our Triton GLA kernels (the ``"triton"`` implementation of ``statex::ssd_fwd/ssd_bwd``).

SSD is GLA with a decay that is the same for every key channel of a head. With ``hg = H // G`` heads per
group, the mapping is ``q = C`` and ``k = B`` repeated per head (``[b, T, H, N]``), ``v = dt * x``
(``[b, T, H, P]``, x's dtype), ``gk = dt * A`` broadcast over N (``[b, T, H, N]``, fp32) and ``scale = 1``;
the GLA state ``[H, K=N, V=P]`` is the SSD state ``[H, P, N]`` transposed. Gradients come back by the chain
rule: ``dx = dv dt``, ``ddt = sum_P(dv x) + A sum_N(dg)``, ``dA = sum_{b,T} dt sum_N(dg)``, ``dB`` / ``dC``
the sums of ``dk`` / ``dq`` over the heads of each group, ``dh0`` transposed back.

Why: one Triton kernel family for both models (the GLA kernels' tests, tuning and numerics carry over to
Mamba2) instead of a second set of kernels; the cost is memory and bandwidth, since the kernels see per-head,
per-channel tensors where SSD has per-group B/C and a scalar decay. For Mamba2-1.3B (H = 64, P = 64, G = 1)
in bf16, per token and layer:

    =====================================  ============  ============
    tensor                                 N = 128       N = 512
    =====================================  ============  ============
    B and C as given (G = 1, bf16)         512 B         2 KiB
    per-head q and k (bf16, 2 x 2 H N)     32 KiB        128 KiB
    broadcast gk (fp32, 4 H N)             32 KiB        128 KiB
    GLA backward peak (~28 H N bytes)      224 KiB       896 KiB
    =====================================  ============  ============

The backward peak counts gk, the kernel's fp32 cumulative decay, q and k, dq/dk in fp32 (kernel scratch) and
bf16, and dg (fp32), all [b, T, H, N] and alive together inside ``chunk_gla_bwd_triton``. For b = 4, T = 8192
(32,768 tokens) that is about 2 GiB (N = 128) / 8 GiB (N = 512) of q, k, gk in the forward and 7 / 28 GiB at
the backward peak, versus 16 / 64 MiB for B and C themselves. The buffers are transient: the custom op saves
only x, dt, A, B, C for backward and rebuilds the mapped tensors there. A scalar-decay kernel reading B/C per
group would avoid all of this (docs/kernels.md, next steps).

``chunk_size`` (the SSD chunk length of the torch path) is accepted and ignored: the GLA kernels choose their
own chunking from K and V (``layout.gla_state_stride``).

Precision (measured once on an H200, b=1, T=300, H=8, Mamba2's A range, with the earlier GLA backward): y, the
final state, dx, dB, dC, dh0 within 3e-3 of float64 in bf16 (1e-6 in fp32), but dA off by 2e-2 (N=128) /
1e-1 (N=512) in bf16: dg was then a reverse sum over the whole sequence of ``q dq - k dk``, whose terms are
10^3-10^5 times larger than dA for Mamba2's strong decays. The GLA backward now sums within a chunk and takes
the rest from ``sum(h * dh)`` (``gla_dg_kernel``); that cut GLA's bf16 dg error 2-4x on the GPU, but the SSD
dA check has not been re-run there.
"""
from __future__ import annotations

import torch

from statex_dist.kernels.gla.chunk_triton import chunk_gla_bwd_triton, chunk_gla_fwd_triton


def _gla_inputs(x, dt, A, B, C):
    """(q, k, v, gk) of the GLA kernels: per-head C and B, dt * x in x's dtype, fp32 broadcast log decay."""
    b, T, H, P = x.shape
    N = B.shape[-1]
    hg = H // B.shape[2]
    q, k = (t.to(x.dtype).repeat_interleave(hg, dim=2) for t in (C, B))
    v = (x.float() * dt.float()[..., None]).to(x.dtype)
    gk = (dt.float() * A.float()).unsqueeze(-1).expand(b, T, H, N).contiguous()
    return q, k, v, gk


def _t(state: torch.Tensor | None) -> torch.Tensor | None:
    """SSD state [n, H, P, N] <-> GLA state [n, H, N, P]."""
    return None if state is None else state.transpose(-1, -2)


def ssd_fwd_via_gla(x, dt, A, B, C, chunk_size, h0, output_final_state, cu):
    """Forward: ``(y [b, T, H, P] in x's dtype, final state [n, H, P, N] fp32 or None)``."""
    del chunk_size  # the GLA kernels pick their own chunking
    q, k, v, gk = _gla_inputs(x, dt, A, B, C)
    y, ht = chunk_gla_fwd_triton(q, k, v, gk, 1.0, _t(h0), output_final_state, cu)
    return y, _t(ht)


def ssd_bwd_via_gla(dy, dht, x, dt, A, B, C, chunk_size, h0, cu):
    """Backward: ``(dx, ddt, dA, dB, dC, dh0 or None)``, each in its input's dtype."""
    del chunk_size
    b, T, H, P = x.shape
    G, N = B.shape[-2:]
    q, k, v, gk = _gla_inputs(x, dt, A, B, C)
    dq, dk, dv, dg, dh0 = chunk_gla_bwd_triton(dy.contiguous(), _t(dht), q, k, v, gk, 1.0, _t(h0), cu)
    del q, k, v, gk
    dv32, dtf = dv.float(), dt.float()
    dgs = dg.sum(-1)  # [b, T, H] fp32: the gradient of the scalar log decay dt * A
    dx = (dv32 * dtf[..., None]).to(x.dtype)
    ddt = ((dv32 * x.float()).sum(-1) + A.float() * dgs).to(dt.dtype)
    dA = (dtf * dgs).sum((0, 1)).to(A.dtype)
    dB, dC = (g.float().view(b, T, G, H // G, N).sum(3).to(t.dtype) for g, t in ((dk, B), (dq, C)))
    return dx, ddt, dA, dB, dC, None if dh0 is None else _t(dh0).to(h0.dtype)
