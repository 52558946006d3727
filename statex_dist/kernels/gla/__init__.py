"""Gated linear attention with per-key-channel log decay ``gk <= 0``: ``S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t``,
``o_t = scale * q_t S_t``. Layout ``[B, T, H, D]``."""
from statex_dist.kernels.gla.chunk_torch import chunk_gla_torch
from statex_dist.kernels.gla.naive import naive_recurrent_gla

__all__ = ["chunk_gla_torch", "naive_recurrent_gla"]
