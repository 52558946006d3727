"""Helpers shared by the kernel tests: error metric, random inputs, readable ids."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


def rel_err(actual: torch.Tensor, ref: torch.Tensor) -> float:
    """||actual - ref|| / ||ref|| in float64 (NaN if either has a NaN)."""
    a, r = actual.detach().double(), ref.detach().double()
    if torch.isnan(a).any() or torch.isnan(r).any():
        return float("nan")
    return ((a - r).norm() / r.norm().clamp_min(1e-30)).item()


def assert_close(name: str, actual: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
    assert actual.shape == ref.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(ref.shape)}"
    err = rel_err(actual, ref)
    assert err <= tol, f"{name}: relative error {err:.3e} > {tol:.1e}"


def gla_inputs(B, T, H, K, V, *, decay="gla", dtype=torch.float64, seed=0, n_states=None):
    """q, k, v, gk, h0 with gk = logsigmoid(x)/16 (GLA's gate) or 'strong' (down to about -5 per step)."""
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, T, H, K, generator=g, dtype=dtype) for _ in range(2))
    v = torch.randn(B, T, H, V, generator=g, dtype=dtype)
    x = torch.randn(B, T, H, K, generator=g, dtype=dtype)
    gk = F.logsigmoid(x) / 16 if decay == "gla" else -5 * torch.rand(B, T, H, K, generator=g, dtype=dtype)
    h0 = torch.randn(n_states or B, H, K, V, generator=g, dtype=dtype)
    return q, k, v, gk, h0


def ssd_inputs(b, T, H, P, G, N, *, dtype=torch.float64, seed=0, n_states=None, strong=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, T, H, P, generator=g, dtype=dtype)
    dt = F.softplus(torch.randn(b, T, H, generator=g, dtype=dtype) - (0 if strong else 1))
    A = -torch.rand(H, generator=g, dtype=dtype) * (8 if strong else 2) - 0.05
    B, C = (torch.randn(b, T, G, N, generator=g, dtype=dtype) for _ in range(2))
    h0 = torch.randn(n_states or b, H, P, N, generator=g, dtype=dtype)
    return x, dt, A, B, C, h0


def ssd_dA_term_scale(x, dt, A, B, C, h0, cu_seqlens, dy, dht) -> torch.Tensor:
    """Per head, the sum over tokens of |dt_t * dloss/da_t| (float64): the size of the terms that ``dA`` adds up.

    ``dA_h = sum_t dt_t dloss/da_t`` (``a_t = dt_t A_h``, the log decay) cancels: at the GPU test's shapes the
    reference's norm is 6 to 21 times smaller than that of these sums (single heads: 40 to 300 times, up to
    41,000 at the demo shape), so an fp32 kernel's rounding of about 1e-6 per term shows up as 1e-4 of ``dA``
    itself. Errors of ``dA`` are measured against this scale. ``dloss/da_t`` comes from the gradient with respect
    to ``dt`` with ``v = dt x`` held fixed (then ``dloss/ddt_t = A_h dloss/da_t``).
    """
    from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

    x, dt, A, B, C = (t.detach().double() for t in (x, dt, A, B, C))
    h0 = None if h0 is None else h0.detach().double()
    dt_leaf = dt.clone().requires_grad_()
    x_fixed_v = x * (dt / dt_leaf)[..., None]  # dt_leaf * x_fixed_v == dt * x: v does not move with dt_leaf
    y, ht = chunk_ssd_torch(x_fixed_v, dt_leaf, A, B, C, 64, h0, True, cu_seqlens)
    (g,) = torch.autograd.grad([y, ht], [dt_leaf], [dy.double(), dht.double()])
    return (dt * g / A).abs().sum((0, 1))


def grads(out_list, inputs, seed=1):
    """Gradients of sum(out * w) for fixed random weights w (one per output), w.r.t. inputs."""
    g = torch.Generator().manual_seed(seed)
    loss = sum((o.double() * torch.randn(o.shape, generator=g, dtype=torch.float64)).sum() for o in out_list)
    return torch.autograd.grad(loss, inputs)


def shape_id(**dims) -> str:
    return "-".join(f"{k}{v}" for k, v in dims.items())


class CountedLaunches:
    """Stands in for a Triton kernel in its module and counts its launches (``kernel[grid](...)``)."""

    def __init__(self, kernel):
        self.kernel, self.launches = kernel, 0

    def __getitem__(self, grid):
        self.launches += 1
        return self.kernel[grid]


@contextlib.contextmanager
def unwritten_is_nan():
    """torch's deterministic mode, in which ``torch.empty`` fills buffers with NaN: what a kernel leaves
    unwritten shows up as NaN instead of as whatever the allocator held."""
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False)
