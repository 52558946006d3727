"""Launchers for the Triton GLA kernels: chunk tables, tile choice, forward and backward passes.

Why this shape (reference.md section 9): fla stores an fp32 K x V state for every 64-token chunk (8 MiB per
chunk for a 1024 x 2048 head) and re-reads it in backward. Here states are stored once per ``chunk_size``
tokens (256 for large states), in bf16 for 16-bit inputs, while the running state stays fp32 on chip; the
backward recomputes them. The intra-chunk part is computed in 64-token row blocks, so a longer chunk costs
only a little more pair work. No autotuning: tiles come from the shapes, so the first call only compiles.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from statex_dist.kernels.gla.triton_bwd import (
    gla_dg_kernel,
    gla_dqk_inter_kernel,
    gla_dqk_intra_kernel,
    gla_dqk_offdiag_kernel,
    gla_dscore_kernel,
    gla_dstate_kernel,
    gla_dv_kernel,
)
from statex_dist.kernels.layout import chunk_state_dtype, gla_forward_buffers, gla_state_stride, interpreting
from statex_dist.kernels.triton_compat import patch_interpreter
from statex_dist.kernels.gla.triton_fwd import (
    gla_intra_kernel,
    gla_intra_offdiag_kernel,
    gla_output_kernel,
    gla_prep_kernel,
    gla_state_kernel,
)

patch_interpreter()

_TL_DTYPES = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}


# Launch settings of every kernel for bf16 inputs, per class of stored-state spacing: "large" (chunk_size > 64: the
# default for heads of at least 512 x 512, e.g. StateX's merged 1024 x 2048 head) and "small" (chunk_size 64). Each
# entry is the kernel's keyword arguments; BK / BV are caps, clamped to the head size, and ``rows`` (the walks'
# tokens per matmul step) is capped at the chunk size.
#   walk, dstate:  the forward and backward state walks; BK x BV is the fp32 slab kept on chip
#   out, dv:       BV is the output tile, BK the step of the loop over K
#   dqk:           dq/dk state terms; BK is the output tile (two fp32 accumulators, or one with ``split``: dq and
#                  dk in two launches), BV the step of the loop over V
#   intra, intra_offdiag, dqk_offdiag: pair kernels, BK the step of the loop over K (the output tile for dqk_offdiag)
#   dqk_intra:     pair terms inside the diagonal blocks, BK the output tile
#   prep, dg:      BK the key tile (dg: BV the step of its loop over V); dscore: BV the step of its loop over V
# Swept and checked on an H200 in bf16 by ``benchmarks/gla_launch_sweep.py`` (2026-11-30, calls w and x: merged head
# fwd+bwd 7.88 -> 6.92 ms by the walks and whole-chunk kernels, -> 6.30 ms by the pair kernels, prep and dg; call zp:
# the merged head's dqk split, 0.948 -> 0.863 ms; the original head's stays fused, 0.441 against 0.458 split;
# 2026-12-01, fifteenth round, the six candidates never run before: the merged walk at 4 stages 1.017 -> 1.001 ms,
# its dg at 128-column steps 0.349 -> 0.315, the original head's prep at 1 warp 0.316 -> 0.309; merged head
# fwd+bwd 6.157 -> 6.102 ms, original 4.169 -> 4.158).
# fp16 and fp32 inputs keep ``checked_launch`` (their stored states are fp32: more shared memory per state tile).
# To re-tune on another GPU: ``python benchmarks/gla_launch_sweep.py --out DIR``, then copy ``DIR/best.json`` here.
LAUNCH = {
    "large": dict(walk=dict(BK=64, BV=128, rows=64, num_warps=4, num_stages=4),
                  dstate=dict(BK=64, BV=128, rows=64, num_warps=4, num_stages=3),
                  out=dict(BK=64, BV=128, num_warps=8, num_stages=3),
                  dv=dict(BK=64, BV=128, num_warps=8, num_stages=3),
                  dqk=dict(BK=64, BV=64, num_warps=8, num_stages=3, split=True),
                  prep=dict(BK=16, num_warps=4, num_stages=3),
                  intra=dict(BK=64, num_warps=4, num_stages=3),
                  intra_offdiag=dict(BK=32, num_warps=4, num_stages=3),
                  dscore=dict(BV=64, num_warps=4, num_stages=2),
                  dqk_offdiag=dict(BK=128, num_warps=4, num_stages=2),
                  dqk_intra=dict(BK=64, num_warps=4, num_stages=3),
                  dg=dict(BK=16, BV=128, num_warps=4, num_stages=3)),
    "small": dict(walk=dict(BK=64, BV=64, rows=32, num_warps=4, num_stages=3),
                  dstate=dict(BK=64, BV=64, rows=32, num_warps=4, num_stages=3),
                  out=dict(BK=64, BV=128, num_warps=4, num_stages=3),
                  dv=dict(BK=64, BV=128, num_warps=4, num_stages=3),
                  dqk=dict(BK=64, BV=64, num_warps=8, num_stages=3),
                  prep=dict(BK=16, num_warps=1, num_stages=3),
                  intra=dict(BK=64, num_warps=4, num_stages=3),
                  intra_offdiag=dict(BK=64, num_warps=4, num_stages=3),
                  dscore=dict(BV=64, num_warps=4, num_stages=3),
                  dqk_offdiag=dict(BK=64, num_warps=4, num_stages=3),
                  dqk_intra=dict(BK=32, num_warps=2, num_stages=3),
                  dg=dict(BK=32, BV=128, num_warps=4, num_stages=3)),
}


def checked_launch(K: int, V: int, CH: int, dtype: torch.dtype) -> dict:
    """The settings every GPU test passed with before the launch sweep (``LAUNCH``'s layout): walks of 128 x 128
    slabs at 8 warps for heads of at least 512 x 512 (2.95 vs 4.36 ms per merged walk at 64 x 64, H200), whole-
    chunk tiles of 64 (chunk 64) or 32 keys at 8 warps (longer chunks), pair kernels at 4 warps. Fewer pipeline
    stages where states are stored in fp32 (fp32 and fp16 inputs): by a count, fp16's dq/dk state-term kernel at a
    256-token chunk needs 240 KiB of shared memory at 3 stages (an H200 has 227); the fp16 merged-head GPU test
    failed at 3 stages and passes at 2 (2026-11-30, calls w and x)."""
    big = K >= 512 and V >= 512
    stages = {torch.float32: 1 if CH > 64 else 2, torch.float16: 2 if CH > 64 else 3}.get(dtype, 3)
    walk = dict(BK=128 if big else 64, BV=128 if big else 64, rows=64, num_warps=8 if big else 4, num_stages=stages)
    chunk = dict(BK=64 if CH <= 64 else 32, BV=64, num_warps=4 if CH <= 64 else 8, num_stages=stages)
    pair = dict(BK=64, num_warps=4, num_stages=stages)
    return dict(walk=walk, dstate=dict(walk), out=dict(chunk), dv=dict(chunk), dqk=dict(chunk),
                prep=dict(BK=32, num_warps=4, num_stages=3), intra=dict(pair), intra_offdiag=dict(pair),
                dscore=dict(BV=64, num_warps=4, num_stages=stages), dqk_offdiag=dict(pair),
                dqk_intra=dict(pair, BK=128 if big else 64), dg=dict(BK=32, BV=64, num_warps=4, num_stages=3))


@dataclass(frozen=True)
class Tiles:
    """Tiles and launch settings of one call: ``CH``, the pair kernels' row blocks, and per kernel (the keys of
    ``LAUNCH``) its keyword arguments, from ``LAUNCH`` (bf16) or ``checked_launch`` (other dtypes), clamped to the
    head (the walks' ``rows`` become their ``BT``)."""

    CH: int  # tokens per stored state
    BT: int  # rows per block of the pair kernels' matmul tiles
    BTI: int  # rows per block of the pair kernels' diagonal work (loops over columns: keep small)
    launch: dict  # kernel name -> keyword arguments

    @classmethod
    def pick(cls, K: int, V: int, CH: int, BT: int | None = None, dtype: torch.dtype = torch.bfloat16) -> "Tiles":
        p2 = lambda n, cap: max(16, min(cap, triton.next_power_of_2(n)))  # noqa: E731
        BT = BT or min(64, CH)
        BTI = min(16, BT)
        if CH % BT or BT % BTI:
            raise ValueError(f"chunk_size {CH} must be a multiple of the block size {BT}")
        settings = LAUNCH["large" if CH > 64 else "small"] if dtype == torch.bfloat16 else \
            checked_launch(K, V, CH, dtype)
        launch = {}
        for name, s in settings.items():
            kw = launch[name] = dict(s)
            for key, n in (("BK", K), ("BV", V)):
                if key in kw:
                    kw[key] = p2(n, kw[key])
            if "rows" in kw:
                kw["BT"] = min(kw.pop("rows"), CH)
                if CH % kw["BT"]:
                    raise ValueError(f"chunk_size {CH} must be a multiple of the {name} rows per step {kw['BT']}")
        return cls(CH=CH, BT=BT, BTI=BTI, launch=launch)


@dataclass
class Chunks:
    """Sequences and chunks of a (possibly packed) batch. cu: [N+1] int64 row offsets; offsets: [N+1] chunk
    offsets per sequence; table: [NC, 2] (sequence, first row) per chunk."""

    cu: torch.Tensor
    offsets: torch.Tensor
    table: torch.Tensor
    num_seqs: int
    num_chunks: int

    @classmethod
    def build(cls, B: int, T: int, cu_seqlens: torch.Tensor | None, CH: int, device) -> "Chunks":
        if cu_seqlens is None:
            return cls.uniform(B, T, CH, torch.device(device))
        cu_host = cu_seqlens.detach().to("cpu", torch.int64)
        lengths = cu_host[1:] - cu_host[:-1]
        counts = (lengths + CH - 1) // CH
        offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        seq = torch.repeat_interleave(torch.arange(len(counts)), counts)
        within = torch.arange(int(offsets[-1])) - offsets[:-1][seq]
        table = torch.stack([seq, cu_host[:-1][seq] + within * CH], 1).contiguous()
        return cls(cu_host.to(device), offsets.to(device), table.to(device), len(counts), int(offsets[-1]))

    @classmethod
    @functools.lru_cache(maxsize=32)
    def uniform(cls, B: int, T: int, CH: int, device: torch.device) -> "Chunks":
        """B sequences of T tokens: the packed build's tables for equal lengths, made on the host once per shape
        (read-only, the same on every call of a run) instead of in about ten tiny integer kernels per layer call
        (about 340 a GLA-1.3B step, ninth round)."""
        return cls.build(B, T, torch.arange(B + 1) * T, CH, device)


def _dtypes(x: torch.Tensor):
    """(dot operand dtype, dot precision, stored-state dtype) for inputs of x's dtype."""
    if interpreting():
        return tl.float32, "ieee", torch.float32
    if x.dtype == torch.float32:
        return tl.float32, "ieee", torch.float32
    return _TL_DTYPES[x.dtype], "tf32", chunk_state_dtype(x.dtype)


def _flat(x: torch.Tensor) -> torch.Tensor:
    B, T, H, D = x.shape
    return x.reshape(B * T, H, D).contiguous()


def _scores(qf, kf, gc, A, ch, t, scale, H, K, ELT, PREC):
    """The causal score matrix of every chunk into ``A``: pairs inside each BT-row diagonal block in 16-row
    tiles, pairs between BT blocks as BT x BT matmul tiles."""
    CH = t.CH
    gla_intra_kernel[(ch.num_chunks * (CH // t.BTI), t.BT // t.BTI, H)](
        qf, kf, gc, A, ch.table, ch.cu, scale, H=H, K=K, CH=CH, BT=t.BTI, BD=t.BT, ELT=ELT, PREC=PREC,
        **t.launch["intra"])
    if CH > t.BT:
        gla_intra_offdiag_kernel[(ch.num_chunks * (CH // t.BT), CH // t.BT, H)](
            qf, kf, gc, A, ch.table, ch.cu, scale, H=H, K=K, CH=CH, BD=t.BT, ELT=ELT, PREC=PREC,
            **t.launch["intra_offdiag"])


# The buffers besides the scores that ``_forward_states`` fills (prep: gc, gl, qd, kd; walk: h), in
# ``layout.gla_forward_buffers``' order: what ``save_states`` keeps for the backward.
STATE_BUFFERS = ("gc", "gl", "qd", "kd", "h")


def _forward_states(k, v, gk, h0, cu_seqlens, scale, q, chunk_size, block_size, store_final, saved=()):
    """Shared by forward and backward: gc, gl, qd, kd (prep), A (scores) and the chunk-start states h (walk),
    plus the final state. ``saved``: what the forward kept, ``[A]`` or ``[A, *STATE_BUFFERS]``; the backward
    then skips the pair kernels, or every kernel here (unless it needs the final state: ``store_final``)."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    CH = chunk_size or gla_state_stride(K, V)
    t = Tiles.pick(K, V, CH, block_size, q.dtype)
    ch = Chunks.build(B, T, cu_seqlens, CH, q.device)
    ELT, PREC, _ = _dtypes(q)
    qf, kf, vf, gf = (_flat(x) for x in (q, k, v, gk))
    s = dict(t=t, ch=ch, ELT=ELT, PREC=PREC, qf=qf, kf=kf, vf=vf, ht=None)
    if len(saved) > 1 and not store_final:
        s.update(zip(("A", *STATE_BUFFERS), saved))
        return s
    *scores, gc, gl, qd, kd, h = gla_forward_buffers(q, k, v, cu_seqlens, CH, scores=not saved)
    gla_prep_kernel[(triton.cdiv(K, t.launch["prep"]["BK"]), ch.num_chunks, H)](
        qf, kf, gf, gc, qd, kd, gl, ch.table, ch.cu, scale, H=H, K=K, CH=CH, **t.launch["prep"])
    if saved:  # the forward's scores: the pair kernels are skipped
        A = saved[0]
    else:
        A, = scores
        _scores(qf, kf, gc, A, ch, t, scale, H, K, ELT, PREC)
    ht = torch.empty(ch.num_seqs, H, K, V, device=q.device, dtype=torch.float32) if store_final else h
    walk = t.launch["walk"]
    gla_state_kernel[(triton.cdiv(K, walk["BK"]), triton.cdiv(V, walk["BV"]), ch.num_seqs * H)](
        kd, vf, gl, h, h0 if h0 is not None else h, ht, ch.cu, ch.offsets,
        H=H, K=K, V=V, CH=CH, USE_H0=h0 is not None, STORE_FINAL=store_final, ELT=ELT, PREC=PREC, **walk)
    s.update(gc=gc, gl=gl, qd=qd, kd=kd, A=A, h=h, ht=ht if store_final else None)
    return s


def chunk_gla_fwd_triton(q, k, v, gk, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                         chunk_size=None, block_size=None, return_saved=False, save_states=False):
    """Triton forward. Shapes as ``chunk_gla_torch``; returns ``(o, final_state or None)``, plus with
    ``return_saved`` the list the backward takes as ``saved``: the chunk score matrices ``A`` (``[B*T, H,
    chunk]`` in ``layout.gla_score_dtype``, the dtype of the matmuls they enter; they spare the backward the pair
    kernels, 16 MiB per 8K tokens of a merged head in bf16 against about 0.8 ms of recompute), and with
    ``save_states`` (and no final state) also ``STATE_BUFFERS``: the backward then runs neither the prep nor the
    state walk again, for more memory held until it runs: ``H K (4 + 2 + 2)`` bytes per token for gc, qd, kd and
    ``H K V / chunk`` states per token, about 24 KiB per token of a GLA-1.3B layer in bf16 (original or merged),
    9 GiB for 24 layers at 16K tokens."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K**-0.5 if scale is None else scale
    h0 = None if initial_state is None else initial_state.float().contiguous()
    s = _forward_states(k, v, gk, h0, cu_seqlens, scale, q, chunk_size, block_size, output_final_state)
    t, ch = s["t"], s["ch"]
    o = torch.empty(B * T, H, V, device=q.device, dtype=q.dtype)
    gla_output_kernel[(triton.cdiv(V, t.launch["out"]["BV"]), ch.num_chunks, H)](
        s["qd"], s["vf"], s["h"], s["A"], o, ch.table, ch.cu,
        H=H, K=K, V=V, CH=t.CH, BT=t.BT, ELT=s["ELT"], PREC=s["PREC"], **t.launch["out"])
    if not return_saved:
        return o.view(B, T, H, V), s["ht"]
    keep = save_states and not output_final_state
    if keep and s["h"].shape[0] > ch.num_chunks:  # a packed row's spare chunk rows (the static bound): zeroed,
        for name in ("gl", "h"):                    # so what is kept does not depend on the allocator
            s[name][ch.num_chunks:].zero_()
    return o.view(B, T, H, V), s["ht"], [s["A"], *(s[n] for n in STATE_BUFFERS if keep)]


def chunk_gla_bwd_triton(do, dht, q, k, v, gk, scale=None, initial_state=None, cu_seqlens=None,
                         chunk_size=None, block_size=None, saved=()):
    """Triton backward: recomputes what the forward's ``saved`` (``chunk_gla_fwd_triton``) does not hold, then
    returns ``(dq, dk, dv, dg, dh0 or None)``."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K**-0.5 if scale is None else scale
    h0 = None if initial_state is None else initial_state.float().contiguous()
    s = _forward_states(k, v, gk, h0, cu_seqlens, scale, q, chunk_size, block_size, dht is not None, saved)
    t, ch, ELT, PREC = s["t"], s["ch"], s["ELT"], s["PREC"]
    R, NB, NBI, dev = B * T, t.CH // t.BT, t.CH // t.BTI, q.device
    dof = _flat(do)

    dh = torch.empty_like(s["h"])
    dh0 = torch.empty(ch.num_seqs, H, K, V, device=dev, dtype=torch.float32) if h0 is not None else None
    dht_c = dht.float().contiguous() if dht is not None else None
    ds = t.launch["dstate"]
    gla_dstate_kernel[(triton.cdiv(K, ds["BK"]), triton.cdiv(V, ds["BV"]), ch.num_seqs * H)](
        s["qd"], dof, s["gl"], dh, dht_c if dht_c is not None else dh, dh0 if dh0 is not None else dh,
        ch.cu, ch.offsets, H=H, K=K, V=V, CH=t.CH, USE_DHT=dht is not None, STORE_DH0=h0 is not None, ELT=ELT,
        PREC=PREC, **ds)

    dA = torch.empty(R, H, t.CH, device=dev, dtype=torch.float32)
    gla_dscore_kernel[(ch.num_chunks * NB, NB, H)](
        dof, s["vf"], dA, ch.table, ch.cu, scale, H=H, V=V, CH=t.CH, BT=t.BT, ELT=ELT, PREC=PREC,
        **t.launch["dscore"])

    dv = torch.empty(R, H, V, device=dev, dtype=v.dtype)
    gla_dv_kernel[(triton.cdiv(V, t.launch["dv"]["BV"]), ch.num_chunks, H)](
        s["kd"], dof, dh, s["A"], dv, ch.table, ch.cu, H=H, K=K, V=V, CH=t.CH, BT=t.BT, ELT=ELT, PREC=PREC,
        **t.launch["dv"])

    dq32 = torch.empty(R, H, K, device=dev, dtype=torch.float32)
    dk32 = torch.empty(R, H, K, device=dev, dtype=torch.float32)
    dqk = dict(t.launch["dqk"])
    for terms in (1, 2) if dqk.pop("split", False) else (0,):  # dq and dk in two launches, or both in one
        gla_dqk_inter_kernel[(triton.cdiv(K, dqk["BK"]), ch.num_chunks, H)](
            s["vf"], dof, s["gc"], s["h"], dh, dq32, dk32, ch.table, ch.cu, scale, H=H, K=K, V=V, CH=t.CH,
            TERMS=terms, ELT=ELT, PREC=PREC, **dqk)

    if t.CH > t.BT:
        gla_dqk_offdiag_kernel[(triton.cdiv(K, t.launch["dqk_offdiag"]["BK"]), ch.num_chunks * NB, H)](
            s["qf"], s["kf"], s["gc"], dA, dq32, dk32, ch.table, ch.cu, H=H, K=K, CH=t.CH, BD=t.BT, ELT=ELT,
            PREC=PREC, **t.launch["dqk_offdiag"])
    dq = torch.empty(R, H, K, device=dev, dtype=q.dtype)
    dk = torch.empty(R, H, K, device=dev, dtype=k.dtype)
    dG = dq32  # each program reads its rows of dq32 before writing dG there
    gla_dqk_intra_kernel[(triton.cdiv(K, t.launch["dqk_intra"]["BK"]), ch.num_chunks * NBI, H)](
        s["qf"], s["kf"], s["gc"], dA, dq32, dk32, dq, dk, dG, ch.table, ch.cu, H=H, K=K, CH=t.CH, BT=t.BTI,
        BD=t.BT, ELT=ELT, PREC=PREC, **t.launch["dqk_intra"])

    dg = torch.empty(R, H, K, device=dev, dtype=gk.dtype)
    carry = (dht_c * s["ht"]).sum(-1).contiguous() if dht is not None else None
    gla_dg_kernel[(triton.cdiv(K, t.launch["dg"]["BK"]), ch.num_chunks, H)](
        dG, s["h"], dh, carry if carry is not None else dG, dg, ch.table, ch.cu, ch.offsets, H=H, K=K, V=V,
        CH=t.CH, USE_CARRY=carry is not None, **t.launch["dg"])
    shape = (B, T, H)
    return (dq.view(*shape, K), dk.view(*shape, K), dv.view(*shape, V), dg.view(*shape, K), dh0)


class _ChunkGLATriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens, chunk_size, save_states):
        o, ht, saved = chunk_gla_fwd_triton(q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens,
                                            chunk_size, return_saved=True, save_states=save_states)
        ctx.save_for_backward(q, k, v, gk, initial_state, cu_seqlens, *saved)
        ctx.scale, ctx.chunk_size = scale, chunk_size
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, gk, h0, cu, *saved = ctx.saved_tensors
        dq, dk, dv, dg, dh0 = chunk_gla_bwd_triton(do, dht, q, k, v, gk, ctx.scale, h0, cu, ctx.chunk_size,
                                                   saved=saved)
        return dq, dk, dv, dg, None, dh0, None, None, None, None


def chunk_gla_triton(q, k, v, gk, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                     chunk_size=None, save_states=False):
    """Differentiable Triton GLA (plain autograd.Function; ``ops.gla_attention`` wraps it as a custom op).

    Args as ``chunk_gla_torch``; ``chunk_size`` is the spacing of stored states. Default: 64 for states of
    up to 256 x 512 per head, 256 above.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _ChunkGLATriton.apply(q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens, chunk_size,
                                 save_states)
