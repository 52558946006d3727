"""Mamba2 SSD in Triton with the scalar decay and the group-shared B/C kept as they are.

SSD is linear attention with one log decay ``a_t = dt_t A_h`` per head and token, C as the query, B as the key
(shared by the ``hg = H // G`` heads of a group) and ``v = dt x`` as the value. Per chunk of ``L = 64`` tokens,
with ``s`` the cumulative decay from the chunk start, ``e`` its value at the chunk's last row and the state
``S`` kept as ``[P, N]`` (the layout of the states the models pass around):

    y_i     = exp(s_i) C_i S_c^T + sum_{j <= i} (C_i . B_j) exp(s_i - s_j) v_j
    S_{c+1} = exp(e) S_c + sum_j exp(e - s_j) v_j^T B_j

Kernels (one launch each; every tensor stays in its natural size, nothing is broadcast over heads):
- ``ssd_state_walk_kernel``: the only sequential part. Keeps a ``[P, N]`` block of one row's and head's state in
  registers and walks the chunks in order (reverse for the backward): writes the state entering each chunk (the
  gradient leaving it), then adds ``sum_l w_l X_l^T Y_l`` over the chunk's rows (forward: X = x,
  w = dt exp(e - s), Y = B; backward: X = dy, w = exp(s), Y = C), restarting at sequence starts from the
  initial state (the final-state gradient) and writing the final state (the initial-state gradient);
- ``ssd_chunk_cb_kernel``: ``C B^T`` once per chunk and group (``[L, L]`` fp32), which all the group's heads
  share (before the twelfth round every head's output and dx programs recomputed it: 2 L N flops per token and
  head, twice);
- ``ssd_chunk_scan_kernel``: the outputs, and Mamba2's skip ``D_h x`` added in fp32 when given;
- ``ssd_bwd_dx_kernel``: per (chunk, head) ``dx``, ``ddt``, the log-decay gradient ``da`` (and ``dD``);
- ``ssd_bwd_dcb_kernel``: the gradient of each chunk's ``C B^T``, summed over the group's heads, once per chunk
  (it was recomputed in every N block of the dB/dC kernel);
- ``ssd_bwd_dbc_kernel``: per (chunk, group, N block) ``dB`` and ``dC``, summed over the group's heads on
  chip (no per-head ``[T, H, N]`` gradient is ever written).

The decay gradient needs no sum over the whole sequence (the bf16 trap of the GLA mapping): with ``D`` the
gradient leaving a chunk, ``da_t`` is a reverse sum inside the chunk of the score and output terms, plus
``sum_{j < t} q_j`` with ``q_j = exp(e - s_j) v_j . (B_j D^T)``, plus ``exp(e) <D, S_c>``.

Packed sequences (``cu_seqlens``) and lengths that are not a multiple of ``L`` go through
``layout.ChunkLayout``: each sequence is padded to whole chunks with ``dt = 0`` (no decay, no input), so the
kernels only see whole chunks and a table saying which sequence each chunk belongs to. A plain batch whose
length is a multiple of 64 is used in place: x, B and C may be views into one wider tensor (the conv output)
with any even row stride, and are read where they are.

Memory: the per-chunk states (``[rows, chunks, H, P, N]``, bf16 for 16-bit inputs, fp32 otherwise) are the
only large intermediates: ``H P N / 64`` elements per token, e.g. 16 KiB per token for Mamba2-1.3B at
``N = 128`` in bf16; the backward holds the states and their gradients together.

Triton 3.6 traps met on Hopper (H200), each checked by ``tests/kernels/test_gpu_ssd.py``: the chunk-scan kernel
at 4 warps with a 16-wide head_dim tile read out of bounds (it runs at 8 warps there, ``_launch``); and Triton
turns an int argument equal to 1 into a constant, so a one-chunk call (a short evaluation prompt) compiled a
loop-free walk kernel that crashed the compiler (an LLVM assertion in ``TritonGPUCoalesce``). The lengths and
chunk counts are therefore never specialised (``do_not_specialize``): every call compiles the looping kernels
that training runs.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from statex_dist.kernels.gla.chunk_triton import _dtypes
from statex_dist.kernels.gla.triton_fwd import _mm
from statex_dist.kernels.layout import ChunkLayout, ssd_state_buffer

CHUNK = 64  # tokens per chunk for 16-bit inputs (the [L, L] score tiles live in registers); fp32 inputs use at
# most 64: at 128 their kernels need 263,168 bytes of shared memory, more than an H200 has (232,448)
MIN_BLOCK_P = 16  # smallest head_dim tile (P below it is masked)
# Launch settings per kernel (warps, software-pipeline stages (None: Triton's default), state columns per matmul
# step) for 16-bit inputs with head_dim tiles of 64 or more: the best per kernel of a sweep on an H200 at the
# Mamba2-1.3B layer shape (benchmarks/ssd_launch_sweep.py, 2026-11-30: fwd+bwd 6.50 -> 4.73 ms at d_state 512).
# Tried and removed: walks of 2 or 4 heads per program (one read of the group's B/C per chunk for all of them)
# were right but 7.5x to 11.7x slower on an H200 at every warps/stages setting tried (2026-11-30, eighth round).
# Twelfth round (calls zv, zw: the sweep over all six kernels, every 64- and 128-column setting and 5 of the 6
# 32-column ones): with C B^T's gradient computed once per chunk, dB/dC is fastest at 8 warps, 128 columns and
# Triton's default stages (0.616 against 0.791 ms at d_state 512 under the earlier setting); the rest kept theirs,
# the new "cb" and "dcb" kernels are at 4 warps and default stages (8 warps: within 0.005 ms). 4 warps, 1 stage and
# 32 columns made the dB/dC kernel read out of bounds (an illegal memory access, zw; right under the interpreter).
LAUNCH = {
    "walk": dict(num_warps=4, num_stages=2, block_n=64),
    "scan": dict(num_warps=4, num_stages=None, block_n=64),
    "dx": dict(num_warps=4, num_stages=None, block_n=64),
    "dbc": dict(num_warps=8, num_stages=None, block_n=128),
    "cb": dict(num_warps=4, num_stages=None, block_n=64),
    "dcb": dict(num_warps=4, num_stages=None, block_n=64),
}
# fp32 inputs and narrower head_dim tiles keep the settings the GPU tests passed before that sweep (under the
# tuned ones, the fp32 d_state-512 test case did not finish within its 60 s)
LAUNCH_CHECKED = {
    "walk": dict(num_warps=4, num_stages=None, block_n=64),
    "scan": dict(num_warps=4, num_stages=None, block_n=64),
    "dx": dict(num_warps=8, num_stages=None, block_n=64),
    "dbc": dict(num_warps=8, num_stages=None, block_n=64),
    "cb": dict(num_warps=4, num_stages=None, block_n=64),
    "dcb": dict(num_warps=4, num_stages=None, block_n=64),
}
DCB_HEADS = 16  # heads per program of ssd_bwd_dcb_kernel (at most; a divisor of the heads per group)


@triton.jit(do_not_specialize=["T", "NC"])
def ssd_state_walk_kernel(X, W, Y, DECAY, SEQ, INIT, FINAL, OUT, T, NC, SX, SY, H: tl.constexpr, G: tl.constexpr,
                          P: tl.constexpr, N: tl.constexpr, L: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
                          ELT: tl.constexpr, PREC: tl.constexpr, HAS_INIT: tl.constexpr, REVERSE: tl.constexpr):
    # A [BP, BN] block of one row's and head's state stays in registers while the chunks are walked in order
    # (reverse for the backward). OUT[r, c, h] gets the state entering chunk c, then
    # S <- DECAY[c] S + sum_l X_l^T W_l Y_l over the chunk's rows; no per-chunk increment is written or read back.
    # Sequence changes (SEQ) write FINAL[previous] and restart from INIT[its own].
    i_pn, i_rh = tl.program_id(0), tl.program_id(1)
    NBN: tl.constexpr = (N + BN - 1) // BN
    i_p, i_n = i_pn // NBN, i_pn % NBN
    i_r, i_h = i_rh // H, i_rh % H
    i_g = i_h // (H // G)
    p = i_p * BP + tl.arange(0, BP)
    n = i_n * BN + tl.arange(0, BN)
    pm, nm = p < P, n < N
    pn = p[:, None] * N + n[None, :]
    pnm = pm[:, None] & nm[None, :]
    if REVERSE:
        prev = tl.load(SEQ + i_r * NC + NC - 1)
    else:
        prev = tl.load(SEQ + i_r * NC)
    S = tl.zeros([BP, BN], dtype=tl.float32)
    if HAS_INIT:
        S = tl.load(INIT + (prev * H + i_h).to(tl.int64) * P * N + pn, mask=pnm, other=0.0).to(tl.float32)
    for k in range(0, NC):
        if REVERSE:
            c = NC - 1 - k
        else:
            c = k
        sq = tl.load(SEQ + i_r * NC + c)
        if sq != prev:
            tl.store(FINAL + (prev * H + i_h).to(tl.int64) * P * N + pn, S, mask=pnm)
            S = tl.zeros([BP, BN], dtype=tl.float32)
            if HAS_INIT:
                S = tl.load(INIT + (sq * H + i_h).to(tl.int64) * P * N + pn, mask=pnm, other=0.0).to(tl.float32)
            prev = sq
        tl.store(OUT + ((i_r * NC + c) * H + i_h).to(tl.int64) * P * N + pn, S.to(OUT.dtype.element_ty), mask=pnm)
        rows = (i_r * T + c * L + tl.arange(0, L)).to(tl.int64)
        x = tl.load(X + rows[:, None] * SX + i_h * P + p[None, :], mask=pm[None, :], other=0.0)
        w = tl.load(W + rows * H + i_h)
        y = tl.load(Y + rows[:, None] * SY + i_g * N + n[None, :], mask=nm[None, :], other=0.0)
        S = tl.load(DECAY + (i_r * NC + c) * H + i_h) * S + _mm(tl.trans(x.to(tl.float32) * w[:, None]), y, ELT, PREC)
    tl.store(FINAL + (prev * H + i_h).to(tl.int64) * P * N + pn, S, mask=pnm)


@triton.jit
def _chunk_setup(GC, i_rc, i_h, T, NC, H: tl.constexpr, L: tl.constexpr):
    # rows of chunk i_rc, its cumulative log decay s [L] and the causal decay matrix exp(s_i - s_j), j <= i
    i_r, i_c = i_rc // NC, i_rc % NC
    rows = (i_r * T + i_c * L + tl.arange(0, L)).to(tl.int64)
    s = tl.load(GC + rows * H + i_h)
    i = tl.arange(0, L)
    decay = tl.where(i[:, None] >= i[None, :], tl.exp(tl.minimum(s[:, None] - s[None, :], 0.0)), 0.0)
    s_end = tl.sum(tl.where(i == L - 1, s, 0.0), axis=0)
    return rows, s, s_end, decay


@triton.jit
def _cols(M, rows, SBC, i_g, n0, N: tl.constexpr, BN: tl.constexpr):
    # columns n0..n0+BN of the group's B or C for the chunk's rows ([L, BN]), their indices and mask
    n = n0 + tl.arange(0, BN)
    nm = n < N
    return tl.load(M + rows[:, None] * SBC + i_g * N + n[None, :], mask=nm[None, :], other=0.0), n, nm


@triton.jit
def _tile(M, idx, L: tl.constexpr):
    # the idx-th [L, L] fp32 tile of M (a chunk's C B^T or score gradient)
    i = tl.arange(0, L)
    return tl.load(M + idx.to(tl.int64) * L * L + i[:, None] * L + i[None, :])


@triton.jit(do_not_specialize=["T", "NC"])
def ssd_chunk_cb_kernel(B, C, CB, T, NC, SBC, G: tl.constexpr, N: tl.constexpr, L: tl.constexpr,
                        BN: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # C B^T of one chunk and group ([L, L], fp32), once: the output and dx kernels of the group's heads read it
    # instead of each head recomputing it from B and C (2 L N flops per token and head)
    i_rc, i_g = tl.program_id(0), tl.program_id(1)
    i_r, i_c = i_rc // NC, i_rc % NC
    rows = (i_r * T + i_c * L + tl.arange(0, L)).to(tl.int64)
    cb = tl.zeros([L, L], dtype=tl.float32)
    for n0 in range(0, N, BN):
        b, _, _ = _cols(B, rows, SBC, i_g, n0, N, BN)
        c, _, _ = _cols(C, rows, SBC, i_g, n0, N, BN)
        cb += _mm(c, tl.trans(b), ELT, PREC)
    i = tl.arange(0, L)
    tl.store(CB + (i_rc * G + i_g).to(tl.int64) * L * L + i[:, None] * L + i[None, :], cb)


@triton.jit(do_not_specialize=["T", "NC"])
def ssd_chunk_scan_kernel(X, DT, GC, CB, C, S, SKIP, Y, T, NC, SX, SBC, H: tl.constexpr, G: tl.constexpr,
                          P: tl.constexpr, N: tl.constexpr, L: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
                          ELT: tl.constexpr, PREC: tl.constexpr, HAS_SKIP: tl.constexpr):
    # y = exp(s) C S_c^T + ((C B^T) * decay) (dt x) [+ D_h x] for one chunk, head and block of P, with C B^T from
    # ssd_chunk_cb_kernel; the blocks of P, then the heads, vary fastest over the grid, so the programs reading one
    # chunk's C run together
    NBP: tl.constexpr = (P + BP - 1) // BP
    pid = tl.program_id(0)
    i_p, i_h, i_rc = pid % NBP, (pid // NBP) % H, pid // (NBP * H)
    i_g = i_h // (H // G)
    rows, s, s_end, decay = _chunk_setup(GC, i_rc, i_h, T, NC, H, L)
    p = i_p * BP + tl.arange(0, BP)
    pm = p < P
    base = (i_rc * H + i_h).to(tl.int64) * P * N
    o = tl.zeros([L, BP], dtype=tl.float32)
    for n0 in range(0, N, BN):
        c, n, nm = _cols(C, rows, SBC, i_g, n0, N, BN)
        st = tl.load(S + base + p[:, None] * N + n[None, :], mask=pm[:, None] & nm[None, :], other=0.0)
        o += _mm(c, tl.trans(st), ELT, PREC)
    cb = _tile(CB, i_rc * G + i_g, L)
    x = tl.load(X + rows[:, None] * SX + i_h * P + p[None, :], mask=pm[None, :], other=0.0)
    dt = tl.load(DT + rows * H + i_h)
    v = x.to(tl.float32) * dt[:, None]
    o = o * tl.exp(s)[:, None] + _mm(cb * decay, v, ELT, PREC)
    if HAS_SKIP:
        o += tl.load(SKIP + i_h).to(tl.float32) * x.to(tl.float32)
    tl.store(Y + (rows[:, None] * H + i_h) * P + p[None, :], o.to(Y.dtype.element_ty), mask=pm[None, :])


@triton.jit(do_not_specialize=["T", "NC"])
def ssd_bwd_dx_kernel(X, DT, GC, A, CB, B, C, S, D, SKIP, DY, DX, DDT, DA, DSKIP, T, NC, SX, SBC, SDY,
                      H: tl.constexpr, G: tl.constexpr, P: tl.constexpr, N: tl.constexpr, L: tl.constexpr,
                      BP: tl.constexpr, BN: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr,
                      HAS_SKIP: tl.constexpr):
    # one chunk and head, all of P: dv (-> dx, and ddt through x), da (the gradient of the log decay a_t) and,
    # with the skip D_h x, its share of dx and the chunk's part of dD_h; heads vary fastest over the grid (they
    # share the chunk's B and C)
    pid = tl.program_id(0)
    i_h, i_rc = pid % H, pid // H
    i_g = i_h // (H // G)
    rows, s, s_end, decay = _chunk_setup(GC, i_rc, i_h, T, NC, H, L)
    p = tl.arange(0, BP)
    pm = p < P
    base = (i_rc * H + i_h).to(tl.int64) * P * N
    bd = tl.zeros([L, BP], dtype=tl.float32)  # B_j D^T: the gradient reaching v_j through the chunk's state
    cs = tl.zeros([L, BP], dtype=tl.float32)  # C_i S_c^T: the output's state term before its decay
    ds = tl.zeros([BP], dtype=tl.float32)  # <D, S_c>, summed over N here and over P below
    for n0 in range(0, N, BN):
        b, n, nm = _cols(B, rows, SBC, i_g, n0, N, BN)
        c, _, _ = _cols(C, rows, SBC, i_g, n0, N, BN)
        pn = base + p[:, None] * N + n[None, :]
        pnm = pm[:, None] & nm[None, :]
        st = tl.load(S + pn, mask=pnm, other=0.0)
        dst = tl.load(D + pn, mask=pnm, other=0.0)
        bd += _mm(b, tl.trans(dst), ELT, PREC)
        cs += _mm(c, tl.trans(st), ELT, PREC)
        ds += tl.sum(st.to(tl.float32) * dst.to(tl.float32), axis=1)
    tok = (rows[:, None] * H + i_h) * P + p[None, :]  # dx (contiguous)
    x = tl.load(X + rows[:, None] * SX + i_h * P + p[None, :], mask=pm[None, :], other=0.0).to(tl.float32)
    dy = tl.load(DY + rows[:, None] * SDY + i_h * P + p[None, :], mask=pm[None, :], other=0.0)
    dt = tl.load(DT + rows * H + i_h)
    v = x * dt[:, None]
    scores = _tile(CB, i_rc * G + i_g, L) * decay
    w_end = tl.exp(s_end - s)  # exp(e - s_j) <= 1
    dv_state = w_end[:, None] * bd
    dv = _mm(tl.trans(scores), dy, ELT, PREC) + dv_state
    z = _mm(dy, tl.trans(v), ELT, PREC) * scores  # dscore_ij * score_ij
    dg = tl.sum(z, axis=1) - tl.sum(z, axis=0) + tl.exp(s) * tl.sum(dy.to(tl.float32) * cs, axis=1)
    q = tl.sum(v * dv_state, axis=1)
    da = (tl.sum(dg, axis=0) - tl.cumsum(dg, axis=0) + dg) + (tl.cumsum(q, axis=0) - q) \
        + tl.exp(s_end) * tl.sum(ds, axis=0)
    dx = dv * dt[:, None]
    if HAS_SKIP:
        dyf = dy.to(tl.float32)
        dx += tl.load(SKIP + i_h).to(tl.float32) * dyf
        tl.store(DSKIP + i_rc * H + i_h, tl.sum(tl.sum(dyf * x, axis=1), axis=0))
    tl.store(DX + tok, dx.to(DX.dtype.element_ty), mask=pm[None, :])
    tl.store(DDT + rows * H + i_h, tl.sum(dv * x, axis=1) + tl.load(A + i_h).to(tl.float32) * da)
    tl.store(DA + rows * H + i_h, da)


@triton.jit(do_not_specialize=["T", "NC"])
def ssd_bwd_dcb_kernel(X, DT, GC, DY, DCB, T, NC, SX, SDY, H: tl.constexpr, G: tl.constexpr, P: tl.constexpr,
                       L: tl.constexpr, BP: tl.constexpr, HS: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # the gradient of one chunk's C B^T from HS heads of a group: sum_h (dy_h (dt x_h)^T) * decay_h ([L, L], fp32);
    # the host sums the group's runs of HS heads. Once per chunk: the dB/dC kernel's blocks of N all use it.
    NS: tl.constexpr = H // G // HS
    i_rc, i_gs = tl.program_id(0), tl.program_id(1)
    i_r, i_c = i_rc // NC, i_rc % NC
    rows = (i_r * T + i_c * L + tl.arange(0, L)).to(tl.int64)
    p = tl.arange(0, BP)
    pm = p < P
    acc = tl.zeros([L, L], dtype=tl.float32)
    for k in range(0, HS):
        i_h = i_gs * HS + k  # the runs of HS heads are in head order: run i_gs belongs to group i_gs // NS
        *_, decay = _chunk_setup(GC, i_rc, i_h, T, NC, H, L)
        dy = tl.load(DY + rows[:, None] * SDY + i_h * P + p[None, :], mask=pm[None, :], other=0.0)
        v = tl.load(X + rows[:, None] * SX + i_h * P + p[None, :], mask=pm[None, :], other=0.0).to(tl.float32) \
            * tl.load(DT + rows * H + i_h)[:, None]
        acc += _mm(dy, tl.trans(v), ELT, PREC) * decay
    i = tl.arange(0, L)
    tl.store(DCB + (i_rc * G * NS + i_gs).to(tl.int64) * L * L + i[:, None] * L + i[None, :], acc)


@triton.jit(do_not_specialize=["T", "NC"])
def ssd_bwd_dbc_kernel(X, DT, GC, B, C, S, D, DY, DCB, DB, DC, T, NC, SX, SBC, SDY, H: tl.constexpr,
                       G: tl.constexpr, P: tl.constexpr, N: tl.constexpr, L: tl.constexpr, BP: tl.constexpr,
                       BN: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # one chunk, group and block of N: dC = dCB B + sum_h exp(s_h) dy_h S_h
    #                                   dB = dCB^T C + sum_h exp(e_h - s_h) v_h D_h
    # with dCB the gradient of the chunk's C B^T (ssd_bwd_dcb_kernel). The N blocks of one chunk are neighbours in
    # the grid: they all read the chunk's dy and x of every head of the group, which then come from L2.
    NBN: tl.constexpr = (N + BN - 1) // BN
    pid, i_g = tl.program_id(0), tl.program_id(1)
    i_n, i_rc = pid % NBN, pid // NBN
    HG: tl.constexpr = H // G
    i_r, i_c = i_rc // NC, i_rc % NC
    rows = (i_r * T + i_c * L + tl.arange(0, L)).to(tl.int64)
    n = i_n * BN + tl.arange(0, BN)
    nm = n < N
    p = tl.arange(0, BP)
    pm = p < P
    out_offs = (rows[:, None] * G + i_g) * N + n[None, :]  # dB, dC (contiguous)
    dc = tl.zeros([L, BN], dtype=tl.float32)
    db = tl.zeros([L, BN], dtype=tl.float32)
    for k in range(0, HG):
        i_h = i_g * HG + k
        s = tl.load(GC + rows * H + i_h)
        s_end = tl.load(GC + (i_r * T + i_c * L + L - 1) * H + i_h)
        dy = tl.load(DY + rows[:, None] * SDY + i_h * P + p[None, :], mask=pm[None, :], other=0.0)
        v = tl.load(X + rows[:, None] * SX + i_h * P + p[None, :], mask=pm[None, :], other=0.0).to(tl.float32) \
            * tl.load(DT + rows * H + i_h)[:, None]
        pn = (i_rc * H + i_h).to(tl.int64) * P * N + p[:, None] * N + n[None, :]
        pnm = pm[:, None] & nm[None, :]
        st = tl.load(S + pn, mask=pnm, other=0.0)
        dst = tl.load(D + pn, mask=pnm, other=0.0)
        dc += tl.exp(s)[:, None] * _mm(dy, st, ELT, PREC)
        db += tl.exp(s_end - s)[:, None] * _mm(v, dst, ELT, PREC)
    dcb = _tile(DCB, i_rc * G + i_g, L)
    b, _, _ = _cols(B, rows, SBC, i_g, i_n * BN, N, BN)
    c, _, _ = _cols(C, rows, SBC, i_g, i_n * BN, N, BN)
    dc += _mm(dcb, b, ELT, PREC)
    db += _mm(tl.trans(dcb), c, ELT, PREC)
    tl.store(DC + out_offs, dc.to(DC.dtype.element_ty), mask=nm[None, :])
    tl.store(DB + out_offs, db.to(DB.dtype.element_ty), mask=nm[None, :])


# ---------------------------------------------------------------------------------------------------------
# host side
# ---------------------------------------------------------------------------------------------------------
def _block(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _launch(kernel: str, BP: int, N: int, dtype: torch.dtype) -> tuple[int, dict]:
    """``(BN, launch options)`` of one kernel: ``LAUNCH`` for 16-bit inputs with head_dim tiles of 64 or more,
    else ``LAUNCH_CHECKED``. With 4 warps and a 16-wide head_dim tile (the GPU demo's Mamba2: P = 16) the output
    kernel produced a NaN and then illegal memory accesses under Triton 3.6 on an H200 (2026-11-30), the known
    class of Hopper wgmma miscompiles for kernels with several dots and a narrow tile at 4 warps
    (triton-lang/triton #10486, #11366), so tiles under 64 run at 8 warps (the walk, with one dot, ran right at
    4, as does the C B^T kernel, which has no head_dim tile)."""
    cfg = (LAUNCH if BP >= 64 and dtype != torch.float32 else LAUNCH_CHECKED)[kernel]
    opts = dict(num_warps=cfg["num_warps"] if BP >= 64 or kernel in ("walk", "cb") else 8)
    if cfg["num_stages"] is not None:
        opts["num_stages"] = cfg["num_stages"]
    return min(cfg["block_n"], _block(N)), opts


def _rows(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(t, row stride)`` for a ``[R, T, ...]`` tensor whose trailing dims are contiguous and whose rows are
    evenly spaced (e.g. x, B, C as views into the conv output: no copy); otherwise a contiguous copy."""
    R, T = t.shape[:2]
    inner = t[0, 0] if t.numel() else t
    if not inner.is_contiguous() or (R > 1 and t.stride(0) != T * t.stride(1)):
        t = t.contiguous()
    return t, t.stride(1)


class _Chunks:
    """The padded, chunk-aligned view of one call's inputs and the per-chunk decay terms both passes use."""

    def __init__(self, x, dt, A, B, C, cu):
        b, T, H, P = x.shape
        G, N = B.shape[-2:]
        if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise TypeError(f"ssd triton kernels take float32/bfloat16/float16 x, got {x.dtype}")
        L = chunk_len(x.dtype)
        self.layout = layout = ChunkLayout.build(b, T, L, cu, x.device)
        self.R, self.NC = layout.rows, layout.num_chunks
        self.Tp = self.NC * L
        self.H, self.P, self.G, self.N = H, P, G, N
        self.dtype = x.dtype
        self.x, self.sx = _rows(layout.pad(x))
        (self.B, sb), (self.C, sc) = (_rows(layout.pad(t.to(x.dtype))) for t in (B, C))
        if sb != sc:
            self.B, self.C = self.B.contiguous(), self.C.contiguous()
        self.sbc = self.B.stride(1)
        self.dt = layout.pad(dt.float()).contiguous()
        self.A = A.float().contiguous()
        gc = (self.dt * self.A).view(self.R, self.NC, L, H).cumsum(2)
        gl = gc[:, :, -1]  # [R, NC, H]
        self.gc = gc.view(self.R, self.Tp, H).contiguous()
        self.decay = gl.exp().contiguous()
        self.w_state = ((gl[:, :, None] - gc).exp() * self.dt.view(self.R, self.NC, L, H)).view(self.R, self.Tp, H)
        if layout.seq_chunks is None:  # built on the device: no host-to-device copy per call for a plain batch
            self.seq = torch.arange(self.R, dtype=torch.int32, device=x.device).repeat_interleave(self.NC)
        else:
            seq = torch.repeat_interleave(torch.arange(len(layout.seq_chunks), dtype=torch.int32),
                                          torch.tensor([n for _, n in layout.seq_chunks]))
            self.seq = seq.to(x.device)
        self.num_seqs = layout.num_seqs
        elt, prec, self.state_dtype = _dtypes(x)  # bf16 states for bf16 inputs; fp32 dots when interpreted
        self.meta = dict(H=H, G=G, P=P, N=N, L=L, ELT=elt, PREC=prec)
        self.BP = max(MIN_BLOCK_P, _block(P))

    def empty_tokens(self, *inner, dtype=None):
        return torch.empty(self.R, self.Tp, *inner, device=self.x.device, dtype=dtype or self.dtype)

    def walk(self, X, sx, W, Y, sy, init, reverse, out=None):
        """The state entering (reverse: the gradient leaving) each chunk, ``[R, NC, H, P, N]`` (into ``out`` when
        given), and the final state per sequence (reverse: the initial-state gradient, fp32), from the chunks'
        rows, in one walk."""
        if out is None:
            out = torch.empty(self.R, self.NC, self.H, self.P, self.N, device=X.device, dtype=self.state_dtype)
        final = torch.empty(self.num_seqs, self.H, self.P, self.N, device=X.device, dtype=torch.float32)
        BN, opts = _launch("walk", self.BP, self.N, self.dtype)
        grid = (triton.cdiv(self.P, self.BP) * triton.cdiv(self.N, BN), self.R * self.H)
        ssd_state_walk_kernel[grid](X, W.contiguous(), Y, self.decay, self.seq,
                                    init.contiguous() if init is not None else out, final, out, self.Tp, self.NC,
                                    sx, sy, BP=self.BP, BN=BN, HAS_INIT=init is not None, REVERSE=reverse,
                                    **opts, **self.meta)
        return out, final

    def states(self, h0, out=None):
        """(state entering each chunk [R, NC, H, P, N], final state per sequence)."""
        return self.walk(self.x, self.sx, self.w_state, self.B, self.sbc, h0, reverse=False, out=out)

    def kept(self, buffer):
        """The ``[R, NC, H, P, N]`` states at the front of a ``kept_states_buffer``."""
        return buffer[:self.R * self.NC].view(self.R, self.NC, self.H, self.P, self.N)

    def cb(self):
        """``C B^T`` of every chunk and group, ``[R * NC, G, L, L]`` fp32 (16 KiB per chunk and group)."""
        L = self.meta["L"]
        cb = torch.empty(self.R * self.NC, self.G, L, L, device=self.x.device, dtype=torch.float32)
        BN, opts = _launch("cb", self.BP, self.N, self.dtype)
        ssd_chunk_cb_kernel[(self.R * self.NC, self.G)](self.B, self.C, cb, self.Tp, self.NC, self.sbc, G=self.G,
                                                        N=self.N, L=L, BN=BN, ELT=self.meta["ELT"],
                                                        PREC=self.meta["PREC"], **opts)
        return cb

    def dcb(self, dy, sdy):
        """The gradient of each chunk's ``C B^T``, ``[R * NC, G, L, L]`` fp32: one program per run of up to
        ``DCB_HEADS`` heads of a group, the runs summed here."""
        L, hg = self.meta["L"], self.H // self.G
        hs = math.gcd(hg, DCB_HEADS)
        runs = torch.empty(self.R * self.NC, self.G * (hg // hs), L, L, device=self.x.device, dtype=torch.float32)
        _, opts = _launch("dcb", self.BP, self.N, self.dtype)
        ssd_bwd_dcb_kernel[(self.R * self.NC, self.G * (hg // hs))](
            self.x, self.dt, self.gc, dy, runs, self.Tp, self.NC, self.sx, sdy, BP=self.BP, HS=hs, **opts,
            **{k: v for k, v in self.meta.items() if k != "N"})
        return runs if hs == hg else runs.view(self.R * self.NC, self.G, hg // hs, L, L).sum(2)


def chunk_len(dtype: torch.dtype) -> int:
    """Tokens per chunk of the kernels for inputs of ``dtype``."""
    return CHUNK if dtype != torch.float32 else min(CHUNK, 64)


def kept_states_buffer(x: torch.Tensor, B: torch.Tensor, cu: torch.Tensor | None) -> torch.Tensor:
    """The empty buffer ``ssd_fwd_triton(save_states=True)`` fills with the chunk-entry states (``[capacity, H,
    P, N]`` from static sizes: the custom op's fake shapes it the same way)."""
    return ssd_state_buffer(x, cu, B.shape[-1], chunk_len(x.dtype))


def ssd_fwd_triton(x, dt, A, B, C, chunk_size, h0, output_final_state, cu, D=None, save_states=False):
    """Forward: ``(y [b, T, H, P] in x's dtype, final state [n, H, P, N] fp32 or None)``, and with
    ``save_states`` a third item, the chunk-entry states (``kept_states_buffer``; rows past the chunks are
    zeros) for ``ssd_bwd_triton(states=...)``, which then does not walk the forward again: ``H P N / L`` elements
    per token held until the backward (16 KiB per token for Mamba2-1.3B at d_state 128, 64 KiB at 512, bf16).
    ``D`` ([H] or None): the skip ``y += D_h x``, added in fp32 before the output is rounded. ``chunk_size`` is
    ignored: the kernels use ``chunk_len(x.dtype)``-token chunks."""
    del chunk_size
    ch = _Chunks(x, dt, A, B, C, cu)
    kept = kept_states_buffer(x, B, cu) if save_states else None
    if kept is not None and kept.shape[0] > ch.R * ch.NC:  # a packed row's spare rows: zeros, not allocator garbage
        kept[ch.R * ch.NC:].zero_()
    S, final = ch.states(h0, out=None if kept is None else ch.kept(kept))
    y = ch.empty_tokens(ch.H, ch.P)
    grid = (ch.R * ch.NC * ch.H * triton.cdiv(ch.P, ch.BP),)
    BN, opts = _launch("scan", ch.BP, ch.N, ch.dtype)
    ssd_chunk_scan_kernel[grid](ch.x, ch.dt, ch.gc, ch.cb(), ch.C, S, D if D is not None else ch.A, y, ch.Tp,
                                ch.NC, ch.sx, ch.sbc, BP=ch.BP, BN=BN, HAS_SKIP=D is not None, **opts, **ch.meta)
    out = ch.layout.unpad(y), (final if output_final_state else None)
    return out if kept is None else (*out, kept)


def ssd_bwd_triton(dy, dht, x, dt, A, B, C, chunk_size, h0, cu, D=None, states=None):
    """Backward: ``(dx, ddt, dA, dB, dC, dh0 or None)`` (and ``dD`` when ``D`` is given), each in its input's
    dtype. ``states``: what ``ssd_fwd_triton(save_states=True)`` kept (else the forward walk runs again)."""
    del chunk_size
    ch = _Chunks(x, dt, A, B, C, cu)
    S = ch.states(h0)[0] if states is None else ch.kept(states)
    dyp, sdy = _rows(ch.layout.pad(dy.to(ch.dtype)))
    Sd, dh0 = ch.walk(dyp, sdy, ch.gc.exp(), ch.C, ch.sbc, dht, reverse=True)
    dx = ch.empty_tokens(ch.H, ch.P)
    ddt, da = (ch.empty_tokens(ch.H, dtype=torch.float32) for _ in range(2))
    dskip = torch.empty(ch.R * ch.NC, ch.H, device=x.device, dtype=torch.float32) if D is not None else ddt
    BN, opts = _launch("dx", ch.BP, ch.N, ch.dtype)
    ssd_bwd_dx_kernel[(ch.R * ch.NC * ch.H,)](
        ch.x, ch.dt, ch.gc, ch.A, ch.cb(), ch.B, ch.C, S, Sd, D if D is not None else ch.A, dyp, dx, ddt, da, dskip,
        ch.Tp, ch.NC, ch.sx, ch.sbc, sdy, BP=ch.BP, BN=BN, HAS_SKIP=D is not None, **opts, **ch.meta)
    dB, dC = (ch.empty_tokens(ch.G, ch.N, dtype=torch.float32) for _ in range(2))
    BN, opts = _launch("dbc", ch.BP, ch.N, ch.dtype)
    ssd_bwd_dbc_kernel[(ch.R * ch.NC * triton.cdiv(ch.N, BN), ch.G)](
        ch.x, ch.dt, ch.gc, ch.B, ch.C, S, Sd, dyp, ch.dcb(dyp, sdy), dB, dC, ch.Tp, ch.NC, ch.sx, ch.sbc, sdy,
        BP=ch.BP, BN=BN, **opts, **ch.meta)
    dA = (ch.dt * da).sum((0, 1))
    unpad = ch.layout.unpad
    grads = (unpad(dx), unpad(ddt).to(dt.dtype), dA.to(A.dtype), unpad(dB).to(B.dtype), unpad(dC).to(C.dtype),
             None if h0 is None else dh0.to(h0.dtype))
    return grads if D is None else (*grads, dskip.sum(0).to(D.dtype))
