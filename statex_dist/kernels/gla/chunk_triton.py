"""Launchers for the Triton GLA kernels: chunk tables, tile choice, forward and backward passes.

Why this shape (reference.md section 9): fla stores an fp32 K x V state for every 64-token chunk (8 MiB per
chunk for a 1024 x 2048 head) and re-reads it in backward. Here states are stored once per ``chunk_size``
tokens (256 for large states), in bf16 for 16-bit inputs, while the running state stays fp32 on chip; the
backward recomputes them. The intra-chunk part is computed in 64-token row blocks, so a longer chunk costs
only a little more pair work. No autotuning: tiles come from the shapes, so the first call only compiles.
"""
from __future__ import annotations

import os
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
from statex_dist.kernels.layout import gla_state_stride
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


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@dataclass
class Tiles:
    CH: int  # tokens per stored state
    BT: int  # rows per block of the walks and whole-chunk kernels
    BTI: int  # rows per block of the pair kernels (their diagonal blocks loop over columns: keep small)
    BK: int  # key tile of the state walks
    BV: int  # value tile of the state walks
    BKc: int  # key tile over a whole chunk (dq/dk state terms)
    BVc: int  # value tile over a whole chunk (output, dv)
    warps_walk: int
    warps_chunk: int
    stages_chunk: int = 3
    BTw: int = 64  # rows per matmul step of the state walks
    stages_walk: int = 3

    @classmethod
    def pick(cls, K: int, V: int, CH: int, BT: int | None = None, fp32: bool = False) -> "Tiles":
        p2 = lambda n, cap: max(16, min(cap, triton.next_power_of_2(n)))  # noqa: E731
        BT = BT or min(64, CH)
        BTI = min(16, BT)
        if CH % BT or BT % BTI:
            raise ValueError(f"chunk_size {CH} must be a multiple of the block size {BT}")
        chunk_tile = 64 if CH <= 64 else (32 if CH <= 128 else 32)
        # fp32 tiles over a whole chunk need fewer pipeline stages to fit in 227 KiB of shared memory
        stages = 1 if fp32 and CH > 64 else (2 if fp32 else 3)
        # large states: 128 x 128 slabs with 8 warps measured 2.95 vs 4.36 ms per state walk (merged, H200)
        big = K >= 512 and V >= 512
        walk = dict(BK=p2(K, 128 if big else 64), BV=p2(V, 128 if big else 64), warps_walk=8 if big else 4,
                    BTw=min(64, CH), stages_walk=stages)
        # NOTE: tuning hook for benchmarks: STATEX_GLA_WALK="BK,BV,warps[,rows per step[,stages]]" of the walks
        if os.environ.get("STATEX_GLA_WALK"):
            bk, bv, w, *rest = (int(x) for x in os.environ["STATEX_GLA_WALK"].split(","))
            walk = dict(BK=p2(K, bk), BV=p2(V, bv), warps_walk=w, BTw=min(rest[0], CH) if rest else walk["BTw"],
                        stages_walk=rest[1] if len(rest) > 1 else walk["stages_walk"])
        if CH % walk["BTw"]:
            raise ValueError(f"chunk_size {CH} must be a multiple of the walk's rows per step {walk['BTw']}")
        return cls(CH=CH, BT=BT, BTI=BTI, BKc=p2(K, chunk_tile), BVc=p2(V, 64),
                   warps_chunk=4 if CH <= 64 else 8, stages_chunk=stages, **walk)


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
            n_per = triton.cdiv(T, CH)
            cu = torch.arange(B + 1, device=device, dtype=torch.int64) * T
            offsets = torch.arange(B + 1, device=device, dtype=torch.int64) * n_per
            idx = torch.arange(B * n_per, device=device, dtype=torch.int64)
            seq = idx // n_per
            table = torch.stack([seq, seq * T + (idx % n_per) * CH], 1).contiguous()
            return cls(cu, offsets, table, B, B * n_per)
        cu_host = cu_seqlens.detach().to("cpu", torch.int64)
        lengths = cu_host[1:] - cu_host[:-1]
        counts = (lengths + CH - 1) // CH
        offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        seq = torch.repeat_interleave(torch.arange(len(counts)), counts)
        within = torch.arange(int(offsets[-1])) - offsets[:-1][seq]
        table = torch.stack([seq, cu_host[:-1][seq] + within * CH], 1).contiguous()
        return cls(cu_host.to(device), offsets.to(device), table.to(device), len(counts), int(offsets[-1]))


def _dtypes(x: torch.Tensor):
    """(dot operand dtype, dot precision, stored-state dtype) for inputs of x's dtype."""
    if interpreting():
        return tl.float32, "ieee", torch.float32
    if x.dtype == torch.float32:
        return tl.float32, "ieee", torch.float32
    return _TL_DTYPES[x.dtype], "tf32", (torch.bfloat16 if x.dtype == torch.bfloat16 else torch.float32)


def _flat(x: torch.Tensor) -> torch.Tensor:
    B, T, H, D = x.shape
    return x.reshape(B * T, H, D).contiguous()


def _scores(qf, kf, gc, A, ch, t, scale, H, K, ELT, PREC):
    """The causal score matrix of every chunk into ``A``: pairs inside each BT-row diagonal block in 16-row
    tiles, pairs between BT blocks as BT x BT matmul tiles."""
    CH = t.CH
    gla_intra_kernel[(ch.num_chunks * (CH // t.BTI), t.BT // t.BTI, H)](
        qf, kf, gc, A, ch.table, ch.cu, scale, H=H, K=K, CH=CH, BT=t.BTI, BD=t.BT, BK=min(t.BK, 64), ELT=ELT,
        PREC=PREC, num_warps=4, num_stages=t.stages_chunk)
    if CH > t.BT:
        gla_intra_offdiag_kernel[(ch.num_chunks * (CH // t.BT), CH // t.BT, H)](
            qf, kf, gc, A, ch.table, ch.cu, scale, H=H, K=K, CH=CH, BD=t.BT, BK=min(t.BK, 64), ELT=ELT, PREC=PREC,
            num_warps=4, num_stages=t.stages_chunk)


def _forward_states(k, v, gk, h0, cu_seqlens, scale, q, chunk_size, block_size, store_final, A=None):
    """Shared by forward and backward: gc, A and the chunk-start states h (and the final state). ``A``: the
    scores saved by the forward (the backward then skips the pair kernels)."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    CH = chunk_size or gla_state_stride(K, V)
    t = Tiles.pick(K, V, CH, block_size, fp32=q.dtype == torch.float32)
    ch = Chunks.build(B, T, cu_seqlens, CH, q.device)
    ELT, PREC, hdt = _dtypes(q)
    R = B * T
    qf, kf, vf, gf = (_flat(x) for x in (q, k, v, gk))

    gc = torch.empty(R, H, K, device=q.device, dtype=torch.float32)
    gl = torch.empty(ch.num_chunks, H, K, device=q.device, dtype=torch.float32)
    qd, kd = torch.empty_like(qf), torch.empty_like(kf)
    gla_prep_kernel[(triton.cdiv(K, 32), ch.num_chunks, H)](
        qf, kf, gf, gc, qd, kd, gl, ch.table, ch.cu, scale, H=H, K=K, CH=CH, BK=32)
    if A is None:
        A = torch.empty(R, H, CH, device=q.device, dtype=torch.float32)
        _scores(qf, kf, gc, A, ch, t, scale, H, K, ELT, PREC)
    h = torch.empty(ch.num_chunks, H, K, V, device=q.device, dtype=hdt)
    ht = torch.empty(ch.num_seqs, H, K, V, device=q.device, dtype=torch.float32) if store_final else h
    gla_state_kernel[(triton.cdiv(K, t.BK), triton.cdiv(V, t.BV), ch.num_seqs * H)](
        kd, vf, gl, h, h0 if h0 is not None else h, ht, ch.cu, ch.offsets,
        H=H, K=K, V=V, CH=CH, BT=t.BTw, BK=t.BK, BV=t.BV, USE_H0=h0 is not None, STORE_FINAL=store_final,
        ELT=ELT, PREC=PREC, num_warps=t.warps_walk, num_stages=t.stages_walk)
    return dict(t=t, ch=ch, ELT=ELT, PREC=PREC, qf=qf, kf=kf, vf=vf, gc=gc, gl=gl, qd=qd, kd=kd, A=A, h=h,
                ht=ht if store_final else None)


def chunk_gla_fwd_triton(q, k, v, gk, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                         chunk_size=None, block_size=None, return_scores=False):
    """Triton forward. Shapes as ``chunk_gla_torch``; returns ``(o, final_state or None)``, plus the chunk
    score matrices ``A`` (fp32 ``[B*T, H, chunk]``) with ``return_scores``: saved for the backward, they spare
    it the pair kernels (32 MiB per 8K tokens of a merged head against about 0.8 ms of recompute)."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K**-0.5 if scale is None else scale
    h0 = None if initial_state is None else initial_state.float().contiguous()
    s = _forward_states(k, v, gk, h0, cu_seqlens, scale, q, chunk_size, block_size, output_final_state)
    t, ch = s["t"], s["ch"]
    o = torch.empty(B * T, H, V, device=q.device, dtype=q.dtype)
    gla_output_kernel[(triton.cdiv(V, t.BVc), ch.num_chunks, H)](
        s["qd"], s["vf"], s["h"], s["A"], o, ch.table, ch.cu,
        H=H, K=K, V=V, CH=t.CH, BT=t.BT, BK=t.BKc, BV=t.BVc, ELT=s["ELT"], PREC=s["PREC"], num_warps=t.warps_chunk,
        num_stages=t.stages_chunk)
    if return_scores:
        return o.view(B, T, H, V), s["ht"], s["A"]
    return o.view(B, T, H, V), s["ht"]


def chunk_gla_bwd_triton(do, dht, q, k, v, gk, scale=None, initial_state=None, cu_seqlens=None,
                         chunk_size=None, block_size=None, scores=None):
    """Triton backward: recomputes the states (and the scores unless the forward's ``scores`` are given),
    then returns ``(dq, dk, dv, dg, dh0 or None)``."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K**-0.5 if scale is None else scale
    h0 = None if initial_state is None else initial_state.float().contiguous()
    s = _forward_states(k, v, gk, h0, cu_seqlens, scale, q, chunk_size, block_size, dht is not None, A=scores)
    t, ch, ELT, PREC = s["t"], s["ch"], s["ELT"], s["PREC"]
    R, NB, NBI, dev = B * T, t.CH // t.BT, t.CH // t.BTI, q.device
    dof = _flat(do)

    dh = torch.empty_like(s["h"])
    dh0 = torch.empty(ch.num_seqs, H, K, V, device=dev, dtype=torch.float32) if h0 is not None else None
    dht_c = dht.float().contiguous() if dht is not None else None
    gla_dstate_kernel[(triton.cdiv(K, t.BK), triton.cdiv(V, t.BV), ch.num_seqs * H)](
        s["qd"], dof, s["gl"], dh, dht_c if dht_c is not None else dh, dh0 if dh0 is not None else dh,
        ch.cu, ch.offsets, H=H, K=K, V=V, CH=t.CH, BT=t.BTw, BK=t.BK, BV=t.BV,
        USE_DHT=dht is not None, STORE_DH0=h0 is not None, ELT=ELT, PREC=PREC, num_warps=t.warps_walk,
        num_stages=t.stages_walk)

    dA = torch.empty(R, H, t.CH, device=dev, dtype=torch.float32)
    gla_dscore_kernel[(ch.num_chunks * NB, NB, H)](
        dof, s["vf"], dA, ch.table, ch.cu, scale, H=H, V=V, CH=t.CH, BT=t.BT, BV=min(t.BV, 64),
        ELT=ELT, PREC=PREC, num_warps=4, num_stages=t.stages_chunk)

    dv = torch.empty(R, H, V, device=dev, dtype=v.dtype)
    gla_dv_kernel[(triton.cdiv(V, t.BVc), ch.num_chunks, H)](
        s["kd"], dof, dh, s["A"], dv, ch.table, ch.cu, H=H, K=K, V=V, CH=t.CH, BT=t.BT,
        BK=t.BKc, BV=t.BVc, ELT=ELT, PREC=PREC, num_warps=t.warps_chunk, num_stages=t.stages_chunk)

    dq32 = torch.empty(R, H, K, device=dev, dtype=torch.float32)
    dk32 = torch.empty(R, H, K, device=dev, dtype=torch.float32)
    gla_dqk_inter_kernel[(triton.cdiv(K, t.BKc), ch.num_chunks, H)](
        s["vf"], dof, s["gc"], s["h"], dh, dq32, dk32, ch.table, ch.cu, scale, H=H, K=K, V=V, CH=t.CH,
        BK=t.BKc, BV=min(t.BVc, 64), ELT=ELT, PREC=PREC, num_warps=t.warps_chunk,
        num_stages=t.stages_chunk)

    if t.CH > t.BT:
        BKo = min(t.BK, 64)
        gla_dqk_offdiag_kernel[(triton.cdiv(K, BKo), ch.num_chunks * NB, H)](
            s["qf"], s["kf"], s["gc"], dA, dq32, dk32, ch.table, ch.cu, H=H, K=K, CH=t.CH, BD=t.BT, BK=BKo,
            ELT=ELT, PREC=PREC, num_warps=4, num_stages=t.stages_chunk)
    dq = torch.empty(R, H, K, device=dev, dtype=q.dtype)
    dk = torch.empty(R, H, K, device=dev, dtype=k.dtype)
    dG = dq32  # each program reads its rows of dq32 before writing dG there
    gla_dqk_intra_kernel[(triton.cdiv(K, t.BK), ch.num_chunks * NBI, H)](
        s["qf"], s["kf"], s["gc"], dA, dq32, dk32, dq, dk, dG, ch.table, ch.cu, H=H, K=K, CH=t.CH, BT=t.BTI,
        BD=t.BT, BK=t.BK, ELT=ELT, PREC=PREC, num_warps=4, num_stages=t.stages_chunk)

    dg = torch.empty(R, H, K, device=dev, dtype=gk.dtype)
    carry = (dht_c * s["ht"]).sum(-1).contiguous() if dht is not None else None
    gla_dg_kernel[(triton.cdiv(K, 32), ch.num_chunks, H)](
        dG, s["h"], dh, carry if carry is not None else dG, dg, ch.table, ch.cu, ch.offsets, H=H, K=K, V=V,
        CH=t.CH, BK=32, BV=min(t.BVc, 64), USE_CARRY=carry is not None, num_warps=4)
    shape = (B, T, H)
    return (dq.view(*shape, K), dk.view(*shape, K), dv.view(*shape, V), dg.view(*shape, K), dh0)


class _ChunkGLATriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens, chunk_size):
        o, ht, A = chunk_gla_fwd_triton(q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens,
                                        chunk_size, return_scores=True)
        ctx.save_for_backward(q, k, v, gk, initial_state, cu_seqlens, A)
        ctx.scale, ctx.chunk_size = scale, chunk_size
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, gk, h0, cu, A = ctx.saved_tensors
        dq, dk, dv, dg, dh0 = chunk_gla_bwd_triton(do, dht, q, k, v, gk, ctx.scale, h0, cu, ctx.chunk_size,
                                                   scores=A)
        return dq, dk, dv, dg, None, dh0, None, None, None


def chunk_gla_triton(q, k, v, gk, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                     chunk_size=None):
    """Differentiable Triton GLA (plain autograd.Function; ``ops.gla_attention`` wraps it as a custom op).

    Args as ``chunk_gla_torch``; ``chunk_size`` is the spacing of stored states. Default: 64 for states of
    up to 256 x 512 per head, 256 above.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _ChunkGLATriton.apply(q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens, chunk_size)
