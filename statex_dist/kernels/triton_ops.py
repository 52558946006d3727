"""Registers our Triton kernels as the ``"triton"`` implementation of the ``statex::*`` custom ops.

Imported by ``ops`` when triton imports; the kernels run on CUDA, or on CPU under ``TRITON_INTERPRET=1``.
GLA runs on the Triton GLA kernels (``gla/``), Mamba2 SSD on its own scalar-decay kernels
(``ssd/triton_ssd.py``), so ``auto`` picks them for both ops on CUDA. The earlier SSD path through the GLA
kernels (``ssd/triton_gla.py``: B, C and the decay broadcast per head) stays registered as impl
``"triton_gla"`` for the kernel benchmark's before/after comparison. See docs/kernels.md.
"""
from __future__ import annotations

from statex_dist.kernels import ops
from statex_dist.kernels.gla.chunk_triton import chunk_gla_bwd_triton, chunk_gla_fwd_triton
from statex_dist.kernels.ssd.triton_gla import ssd_bwd_via_gla, ssd_fwd_via_gla
from statex_dist.kernels.ssd.triton_ssd import ssd_bwd_triton, ssd_fwd_triton


def _gla_fwd(q, k, v, gk, scale, h0, output_final_state, cu, save_states):
    return chunk_gla_fwd_triton(q, k, v, gk, scale, h0, output_final_state, cu, return_saved=True,
                                save_states=save_states)


def _gla_bwd(do, dht, q, k, v, gk, scale, h0, cu, saved):
    return chunk_gla_bwd_triton(do.contiguous(), dht, q, k, v, gk, scale, h0, cu, saved=saved)


ops.register_impl("gla", "triton", _gla_fwd, _gla_bwd)
ops.register_impl("ssd", "triton", ssd_fwd_triton, ssd_bwd_triton)
ops.register_impl("ssd", "triton_gla", ssd_fwd_via_gla, ssd_bwd_via_gla)
