"""The token-mixer entry points the models call, and the backend choice behind them.

Backends: ``"auto"`` (our Triton kernels on CUDA, the PyTorch chunked path elsewhere), ``"triton"`` (ours:
the Triton GLA kernels and the Mamba2 SSD kernels of ``ssd/triton_ssd.py``), ``"fla"`` (fla's
``chunk_gla`` / ``chunk_simple_gla``; CUDA only) and ``"torch"`` (the chunked reference).

Our kernels are ``torch.library`` custom ops with fake (meta) and autograd registrations, so ``torch.compile``
of a block traces them as single nodes with no graph break. In eager mode the torch backend calls the chunked
code directly (autograd through it, nothing recomputed); under compile it goes through its custom op, whose
backward recomputes the forward. Single decode steps (T == 1) run one recurrence step in PyTorch.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
from typing import Callable

import torch

from statex_dist.kernels.gla.chunk_torch import chunk_gla_torch
from statex_dist.kernels.layout import gla_forward_buffers, gla_state_stride
from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "triton", "fla", "torch")
# forward / backward implementations of the custom ops, by impl name ("torch" here, "triton" in triton_ops)
_GLA_FWD: dict[str, Callable] = {}
_GLA_BWD: dict[str, Callable] = {}
_SSD_FWD: dict[str, Callable] = {}
_SSD_BWD: dict[str, Callable] = {}
_logged: set[tuple[str, str]] = set()
_FLA_FOUND = importlib.util.find_spec("fla") is not None


def _fla_available() -> bool:
    return _FLA_FOUND


def _placeholder(like: torch.Tensor) -> torch.Tensor:
    """An empty fp32 tensor for an output that is absent (no final state, no initial-state gradient...); a new
    one each time, since the outputs of a custom op may not alias each other."""
    return like.new_empty((0,), dtype=torch.float32)


def _has_impl(op: str, name: str) -> bool:
    return name in {"gla": _GLA_FWD, "ssd": _SSD_FWD}[op]


def resolve_backend(op: str, backend: str, device: torch.device) -> str:
    """Map a requested backend to the one that runs; logs the choice once per (op, backend)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        if device.type != "cuda":
            backend = "torch"
        elif _has_impl(op, "triton"):
            backend = "triton"
        else:  # triton did not import (no impl registered): fla's kernels when fla is there
            backend = "fla" if _fla_available() else "torch"
    if backend in ("triton", "fla") and device.type != "cuda":
        raise RuntimeError(
            f"{op}: backend {backend!r} needs CUDA tensors, got device {device}; use backend='torch' on CPU"
        )
    if backend == "triton" and not _has_impl(op, "triton"):
        raise RuntimeError(f"{op}: backend 'triton' unavailable: triton is not importable here; use 'fla' or 'torch'")
    if not torch.compiler.is_compiling() and (op, backend) not in _logged:
        _logged.add((op, backend))
        logger.info("%s: using the %s backend", op, backend)
    return backend


# ---------------------------------------------------------------------------------------------------------
# custom ops: one forward and one backward op per (kernel, backend); impls registered below and in triton_ops
# ---------------------------------------------------------------------------------------------------------


def _empty_like(t: torch.Tensor) -> torch.Tensor:
    # contiguous whatever t's strides: the real ops return contiguous tensors
    return t.new_empty(t.shape)


@torch.library.custom_op("statex::gla_fwd", mutates_args=())
def _gla_fwd_op(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gk: torch.Tensor,
    initial_state: torch.Tensor | None, cu_seqlens: torch.Tensor | None,
    scale: float, output_final_state: bool, impl: str, save_states: bool,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Returns ``(o, final state or empty, saved)``: ``saved`` is what the impl keeps for its backward (the
    Triton kernels' chunk scores, and with ``save_states`` their chunk states; nothing for the torch impl)."""
    o, ht, saved = _GLA_FWD[impl](q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens, save_states)
    return (o.contiguous(), ht.contiguous() if ht is not None else _placeholder(q),
            [t.contiguous() for t in saved or ()])


@_gla_fwd_op.register_fake
def _(q, k, v, gk, initial_state, cu_seqlens, scale, output_final_state, impl, save_states):
    B, T, H, K = q.shape
    V = v.shape[-1]
    N = B if cu_seqlens is None else cu_seqlens.shape[0] - 1
    o = q.new_empty(B, T, H, V)
    ht = q.new_empty(N, H, K, V, dtype=torch.float32) if output_final_state else _placeholder(q)
    saved = (gla_forward_buffers(q, k, v, cu_seqlens, gla_state_stride(K, V),
                                 states=save_states and not output_final_state) if impl == "triton" else [])
    return o, ht, saved


@torch.library.custom_op("statex::gla_bwd", mutates_args=())
def _gla_bwd_op(
    do: torch.Tensor, dht: torch.Tensor | None,
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gk: torch.Tensor,
    initial_state: torch.Tensor | None, cu_seqlens: torch.Tensor | None, saved: list[torch.Tensor], scale: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = _GLA_BWD[impl](do, dht, q, k, v, gk, scale, initial_state, cu_seqlens, saved)
    dq, dk, dv, dg, dh0 = (None if g is None else g.contiguous() for g in grads)
    return dq, dk, dv, dg, (dh0 if dh0 is not None else _placeholder(q))


@_gla_bwd_op.register_fake
def _(do, dht, q, k, v, gk, initial_state, cu_seqlens, saved, scale, impl):
    dh0 = _empty_like(initial_state) if initial_state is not None else _placeholder(q)
    return _empty_like(q), _empty_like(k), _empty_like(v), _empty_like(gk), dh0


def _gla_setup(ctx, inputs, output):
    q, k, v, gk, h0, cu, scale, output_final_state, impl, _ = inputs
    ctx.save_for_backward(q, k, v, gk, h0, cu, *output[2])
    ctx.scale, ctx.impl, ctx.has_final = scale, impl, output_final_state


def _gla_backward(ctx, do, dht, _dsaved):
    q, k, v, gk, h0, cu, *saved = ctx.saved_tensors
    dht = dht if ctx.has_final else None
    dq, dk, dv, dg, dh0 = _gla_bwd_op(do, dht, q, k, v, gk, h0, cu, saved, ctx.scale, ctx.impl)
    return dq, dk, dv, dg, (dh0 if h0 is not None else None), None, None, None, None, None


_gla_fwd_op.register_autograd(_gla_backward, setup_context=_gla_setup)


# impls whose kernels add the skip ``D_h x`` themselves (and return dD); the others get it added around them
_SSD_FUSED_SKIP = {"triton"}
# impls that can keep the forward's chunk states for the backward (``save_states``); the others ignore the flag
_SSD_KEEPS_STATES = {"triton"}


def _add_skip(y: torch.Tensor, x: torch.Tensor, D: torch.Tensor | None) -> torch.Tensor:
    """``y + D_h x`` in fp32, rounded to y's dtype (the skip of the backends whose kernels do not add it)."""
    return y if D is None else (y.float() + x.float() * D.float()[:, None]).to(y.dtype)


@torch.library.custom_op("statex::ssd_fwd", mutates_args=())
def _ssd_fwd_op(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None,
    initial_state: torch.Tensor | None, cu_seqlens: torch.Tensor | None,
    chunk_size: int, output_final_state: bool, impl: str, save_states: bool,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Returns ``(y, final state or empty, saved)``: ``saved`` holds the chunk states the impl keeps for its
    backward (``save_states`` with the Triton kernels), else nothing."""
    kw = dict(D=D) if D is not None and impl in _SSD_FUSED_SKIP else {}
    if save_states and impl in _SSD_KEEPS_STATES:
        kw["save_states"] = True
    y, ht, *saved = _SSD_FWD[impl](x, dt, A, B, C, chunk_size, initial_state, output_final_state, cu_seqlens, **kw)
    if "D" not in kw:
        y = _add_skip(y, x, D)
    return y.contiguous(), (ht.contiguous() if ht is not None else _placeholder(x)), saved


@_ssd_fwd_op.register_fake
def _(x, dt, A, B, C, D, initial_state, cu_seqlens, chunk_size, output_final_state, impl, save_states):
    b, T, H, P = x.shape
    N = B.shape[-1]
    n_seq = b if cu_seqlens is None else cu_seqlens.shape[0] - 1
    ht = x.new_empty(n_seq, H, P, N, dtype=torch.float32) if output_final_state else _placeholder(x)
    saved = []
    if save_states and impl in _SSD_KEEPS_STATES:
        from statex_dist.kernels.ssd.triton_ssd import kept_states_buffer

        saved = [kept_states_buffer(x, B, cu_seqlens)]
    return _empty_like(x), ht, saved


@torch.library.custom_op("statex::ssd_bwd", mutates_args=())
def _ssd_bwd_op(
    dy: torch.Tensor, dht: torch.Tensor | None,
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None,
    initial_state: torch.Tensor | None, cu_seqlens: torch.Tensor | None, saved: list[torch.Tensor], chunk_size: int,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    bwd = _SSD_BWD[impl]
    kw = dict(states=saved[0]) if saved else {}
    if D is not None and impl in _SSD_FUSED_SKIP:
        *grads, dD = bwd(dy, dht, x, dt, A, B, C, chunk_size, initial_state, cu_seqlens, D=D, **kw)
    else:
        grads = list(bwd(dy, dht, x, dt, A, B, C, chunk_size, initial_state, cu_seqlens, **kw))
        dD = None
        if D is not None:
            dyf = dy.float()
            grads[0] = (grads[0].float() + dyf * D.float()[:, None]).to(grads[0].dtype)
            dD = (dyf * x.float()).sum((0, 1, 3)).to(D.dtype)
    grads = [None if g is None else g.contiguous() for g in grads]
    return (*grads[:-1], grads[-1] if grads[-1] is not None else _placeholder(x),
            dD if dD is not None else _placeholder(x))


@_ssd_bwd_op.register_fake
def _(dy, dht, x, dt, A, B, C, D, initial_state, cu_seqlens, saved, chunk_size, impl):
    dh0 = _empty_like(initial_state) if initial_state is not None else _placeholder(x)
    return (_empty_like(x), _empty_like(dt), _empty_like(A), _empty_like(B),
            _empty_like(C), dh0, _empty_like(D) if D is not None else _placeholder(x))


def _ssd_setup(ctx, inputs, output):
    x, dt, A, B, C, D, h0, cu, chunk_size, output_final_state, impl, _ = inputs
    ctx.save_for_backward(x, dt, A, B, C, D, h0, cu, *output[2])
    ctx.chunk_size, ctx.impl, ctx.has_final = chunk_size, impl, output_final_state


def _ssd_backward(ctx, dy, dht, _dsaved):
    x, dt, A, B, C, D, h0, cu, *saved = ctx.saved_tensors
    dht = dht if ctx.has_final else None
    dx, ddt, dA, dB, dC, dh0, dD = _ssd_bwd_op(dy, dht, x, dt, A, B, C, D, h0, cu, saved, ctx.chunk_size, ctx.impl)
    return (dx, ddt, dA, dB, dC, (dD if D is not None else None), (dh0 if h0 is not None else None),
            None, None, None, None, None)


_ssd_fwd_op.register_autograd(_ssd_backward, setup_context=_ssd_setup)


# torch implementations of the ops: forward without a graph, backward recomputes it under autograd
def _torch_gla_fwd(q, k, v, gk, scale, h0, output_final_state, cu, save_states=False):
    with torch.no_grad():  # saves nothing: its backward recomputes the forward under autograd
        return (*chunk_gla_torch(q, k, v, gk, scale, h0, output_final_state, cu), None)


def _recompute_grads(fn, inputs, grad_outputs):
    """Gradients of ``fn(*inputs)`` by recomputing it. ``torch.func.vjp`` because a custom op's backward runs
    with the autograd dispatch keys excluded, so plain ``torch.autograd.grad`` would see no graph."""
    present = [i for i, t in enumerate(inputs) if t is not None]
    wanted = [i for i, g in enumerate(grad_outputs) if g is not None]

    def f(*xs):
        full = list(inputs)
        for i, x in zip(present, xs):
            full[i] = x
        outs = fn(*full)
        return tuple(outs[i] for i in wanted)

    _, vjp_fn = torch.func.vjp(f, *(inputs[i] for i in present))
    grads = vjp_fn(tuple(grad_outputs[i] for i in wanted))
    result = [None] * len(inputs)
    for i, g in zip(present, grads):
        result[i] = g
    return result


def _torch_gla_bwd(do, dht, q, k, v, gk, scale, h0, cu, saved=()):
    def fn(q, k, v, gk, h0):
        return chunk_gla_torch(q, k, v, gk, scale, h0, dht is not None, cu)

    return tuple(_recompute_grads(fn, [q, k, v, gk, h0], [do, dht]))


def _torch_ssd_fwd(x, dt, A, B, C, chunk_size, h0, output_final_state, cu):
    with torch.no_grad():
        return chunk_ssd_torch(x, dt, A, B, C, chunk_size, h0, output_final_state, cu)


def _torch_ssd_bwd(dy, dht, x, dt, A, B, C, chunk_size, h0, cu):
    def fn(x, dt, A, B, C, h0):
        return chunk_ssd_torch(x, dt, A, B, C, chunk_size, h0, dht is not None, cu)

    return tuple(_recompute_grads(fn, [x, dt, A, B, C, h0], [dy, dht]))


_GLA_FWD["torch"], _GLA_BWD["torch"] = _torch_gla_fwd, _torch_gla_bwd
_SSD_FWD["torch"], _SSD_BWD["torch"] = _torch_ssd_fwd, _torch_ssd_bwd


def register_impl(op: str, name: str, fwd: Callable, bwd: Callable) -> None:
    """Plug a forward/backward pair (e.g. the Triton kernels) into the custom ops under ``impl=name``."""
    table = {"gla": (_GLA_FWD, _GLA_BWD), "ssd": (_SSD_FWD, _SSD_BWD)}[op]
    table[0][name], table[1][name] = fwd, bwd


# ---------------------------------------------------------------------------------------------------------
# decode steps
# ---------------------------------------------------------------------------------------------------------
def _gla_step(q, k, v, gk, scale, h0):
    # one token: q, k, gk [B, 1, H, K], v [B, 1, H, V]
    B, _, H, K = q.shape
    dtype = q.dtype
    S = h0.float() if h0 is not None else q.new_zeros(B, H, K, v.shape[-1], dtype=torch.float32)
    q, k, v, gk = (t[:, 0].float() for t in (q, k, v, gk))
    S = gk.exp()[..., None] * S + k[..., None] * v[..., None, :]
    o = scale * (q[..., None] * S).sum(-2)
    return o[:, None].to(dtype), S


# ---------------------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------------------
def gla_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    gk: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    backend: str = "auto",
    save_states: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated linear attention with per-key-channel log decay.

    Args:
        q, k, gk: ``[B, T, H, K]`` (gk <= 0, e.g. ``logsigmoid(x) / 16``); v: ``[B, T, H, V]``.
        scale: query scale. Default: ``K ** -0.5``.
        initial_state: ``[N, H, K, V]`` fp32, N = B or ``len(cu_seqlens) - 1``. Default: zeros.
        output_final_state: also return the fp32 ``[N, H, K, V]`` state. Default: ``False``.
        cu_seqlens: ``[N + 1]`` int32/int64 offsets of packed sequences (B == 1); state resets at each.
            Default: ``None``.
        backend: ``"auto"``, ``"triton"``, ``"fla"`` or ``"torch"``. Default: ``"auto"``.
        save_states: our Triton kernels keep the forward's chunk states for the backward instead of recomputing
            them (about 24 KiB more per token of a GLA-1.3B layer in bf16, held until the backward; no effect with
            ``output_final_state`` or on the other backends). Default: ``False``.

    Returns ``(o [B, T, H, V] in q's dtype, final_state or None)``.
    """
    B, T, H, K = q.shape
    if k.shape != q.shape or gk.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"gla_attention: shapes q{tuple(q.shape)} k{tuple(k.shape)} v{tuple(v.shape)} "
                         f"gk{tuple(gk.shape)} do not match [B, T, H, K] / [B, T, H, V]")
    if cu_seqlens is not None and B != 1:
        raise ValueError(f"gla_attention: cu_seqlens needs B == 1 (flatten the batch), got B={B}")
    scale = K**-0.5 if scale is None else float(scale)
    impl = resolve_backend("gla", backend, q.device)
    if T == 1 and cu_seqlens is None:
        o, S = _gla_step(q, k, v, gk, scale, initial_state)
        return o, (S if output_final_state else None)
    if impl == "fla":
        from fla.ops.gla import chunk_gla

        return chunk_gla(q, k, v, gk, scale=scale, initial_state=initial_state,
                         output_final_state=output_final_state,
                         cu_seqlens=None if cu_seqlens is None else cu_seqlens.long())
    if impl == "torch" and not torch.compiler.is_compiling():
        return chunk_gla_torch(q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens)
    o, ht, _ = _gla_fwd_op(q, k, v, gk, initial_state, cu_seqlens, scale, output_final_state, impl, save_states)
    return o, (ht if output_final_state else None)


def _ssd_step(x, dt, A, B, C, h0, D=None):
    b, _, H, P = x.shape
    G, N = B.shape[-2:]
    dtype = x.dtype
    S = h0.float() if h0 is not None else x.new_zeros(b, H, P, N, dtype=torch.float32)
    x, dt = x[:, 0].float(), dt[:, 0].float()
    Bh, Ch = (t[:, 0].float().repeat_interleave(H // G, dim=1) for t in (B, C))
    S = (dt * A.float()).exp()[..., None, None] * S + (dt[..., None] * x)[..., None] * Bh[:, :, None, :]
    y = (S * Ch[:, :, None, :]).sum(-1)
    if D is not None:
        y = y + D.float()[:, None] * x
    return y[:, None].to(dtype), S


def ssd_attention(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    *,
    D: torch.Tensor | None = None,
    chunk_size: int = 64,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    backend: str = "auto",
    save_states: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mamba2 SSD (scalar decay per head), with the per-head skip ``D`` when given.

    Args:
        x: ``[b, T, H, P]``; dt: ``[b, T, H]`` (after softplus and bias); A: ``[H]`` (negative);
        B, C: ``[b, T, G, N]`` with ``H % G == 0`` (heads of group g share B and C).
        D: ``[H]``: adds ``D_h x`` to the output (in fp32, inside the Triton kernels). Default: ``None``.
        chunk_size: tokens per chunk of the chunked paths. Default: ``64``.
        initial_state: ``[N_seq, H, P, N]`` fp32. Default: zeros.
        output_final_state: also return the fp32 ``[N_seq, H, P, N]`` state. Default: ``False``.
        cu_seqlens: ``[N_seq + 1]`` offsets of packed sequences (b == 1). Default: ``None``.
        backend: ``"auto"``, ``"triton"``, ``"fla"`` or ``"torch"``. Default: ``"auto"``.
        save_states: our Triton kernels keep the forward's chunk states for the backward instead of walking the
            forward again there: one kernel fewer per layer, ``H P N / 64`` elements per token held from forward
            to backward (bf16 for 16-bit inputs). Gradients are the same bit for bit. Other backends ignore it.
            Default: ``False``.

    Returns ``(y [b, T, H, P] in x's dtype, final_state or None)``.
    """
    b, T, H, P = x.shape
    G, N = B.shape[-2:]
    if dt.shape != (b, T, H) or A.shape != (H,) or B.shape != C.shape or B.shape[:2] != (b, T) or H % G:
        raise ValueError(f"ssd_attention: shapes x{tuple(x.shape)} dt{tuple(dt.shape)} A{tuple(A.shape)} "
                         f"B{tuple(B.shape)} C{tuple(C.shape)} do not match [b,T,H,P] [b,T,H] [H] [b,T,G,N]")
    if cu_seqlens is not None and b != 1:
        raise ValueError(f"ssd_attention: cu_seqlens needs b == 1 (flatten the batch), got b={b}")
    impl = resolve_backend("ssd", backend, x.device)
    if D is not None and D.shape != (H,):
        raise ValueError(f"ssd_attention: D must be [H] = [{H}], got {tuple(D.shape)}")
    if T == 1 and cu_seqlens is None:
        y, S = _ssd_step(x, dt, A, B, C, initial_state, D)
        return y, (S if output_final_state else None)
    if impl in ("fla", "torch") and not torch.compiler.is_compiling():
        run = _ssd_via_fla if impl == "fla" else functools.partial(chunk_ssd_torch, chunk_size=chunk_size)
        y, ht = run(x, dt, A, B, C, initial_state=initial_state, output_final_state=output_final_state,
                    cu_seqlens=cu_seqlens)
        return _add_skip(y, x, D), ht
    y, ht, _ = _ssd_fwd_op(x, dt, A, B, C, D, initial_state, cu_seqlens, chunk_size, output_final_state, impl,
                           save_states)
    return y, (ht if output_final_state else None)


def _ssd_via_fla(x, dt, A, B, C, initial_state, output_final_state, cu_seqlens):
    """SSD through fla's chunk_simple_gla: q=C, k=B, v=dt*x, g=dt*A, scale 1, state transposed."""
    from fla.ops.simple_gla import chunk_simple_gla

    H, G = x.shape[2], B.shape[2]
    Bh, Ch = (t.repeat_interleave(H // G, dim=2) for t in (B, C))
    v = (x * dt[..., None].to(x.dtype))
    g = (dt.float() * A.float()[None, None, :])
    h0 = None if initial_state is None else initial_state.transpose(-1, -2).contiguous()
    y, ht = chunk_simple_gla(Ch, Bh, v, g=g, scale=1.0, initial_state=h0, output_final_state=output_final_state,
                             cu_seqlens=None if cu_seqlens is None else cu_seqlens.long())
    return y, (None if ht is None else ht.transpose(-1, -2))


# the Triton kernels register themselves when triton (and a driver or the interpreter) is there
try:
    importlib.import_module("statex_dist.kernels.triton_ops")
except ImportError:
    pass
