"""Registers our Triton kernels as the ``"triton"`` implementation of the ``statex::*`` custom ops.

Imported by ``ops`` when triton imports; the kernels run on CUDA, or on CPU under ``TRITON_INTERPRET=1``.
Only GLA has Triton kernels of ours so far; SSD on CUDA goes through fla's ``chunk_simple_gla``
(``ops.resolve_backend``), see docs/kernels.md.
"""
from __future__ import annotations

from statex_dist.kernels import ops
from statex_dist.kernels.gla.chunk_triton import chunk_gla_bwd_triton, chunk_gla_fwd_triton


def _gla_fwd(q, k, v, gk, scale, h0, output_final_state, cu):
    return chunk_gla_fwd_triton(q, k, v, gk, scale, h0, output_final_state, cu)


def _gla_bwd(do, dht, q, k, v, gk, scale, h0, cu):
    return chunk_gla_bwd_triton(do.contiguous(), dht, q, k, v, gk, scale, h0, cu)


ops.register_impl("gla", "triton", _gla_fwd, _gla_bwd)
