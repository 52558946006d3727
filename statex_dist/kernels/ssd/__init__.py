"""Mamba2 state-space duality (SSD) as scalar-decay linear attention:
``S_t = exp(dt_t A) S_{t-1} + dt_t x_t^T B_t`` (S is [P, N]), ``y_t = S_t C_t``. Layout ``[b, T, H, P]``."""
from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch
from statex_dist.kernels.ssd.naive import naive_recurrent_ssd

__all__ = ["chunk_ssd_torch", "naive_recurrent_ssd"]
