"""Triton forward kernels for chunked GLA with large states.

Layout: every token tensor is ``[R, H, D]`` with R the flattened (batch x time) rows; sequences are given by
``cu_seqlens`` (for a plain batch, ``b * T``). Sequences are cut into chunks of ``CH`` tokens; each chunk is
processed in row blocks of ``BT`` tokens (the matmul granularity). ``gc`` is the cumulative log decay from
the chunk start (fp32), so every exponent below is a difference ``gc_a - gc_b`` with ``a`` at or after ``b``.

Kernels (one launch each):
- ``gla_prep_kernel``: gc, the within-chunk cumulative sum of gk; gl, its value at each chunk's end; and the
  pre-decayed operands ``qd = q * scale * exp(gc)``, ``kd = k * exp(gl - gc)`` (input dtype).
- ``gla_intra_kernel``: the chunk's causal score matrix ``A[t, j] = scale * sum_k q_tk k_jk exp(gc_tk - gc_jk)``,
  one ``BT x BT`` tile per program; tiles below the diagonal go through the reference row just before the
  row block (two factors each <= 1), diagonal tiles are exact per column.
- ``gla_state_kernel``: walks a sequence's chunks in order holding a ``BK x BV`` fp32 slab of the state on
  chip; writes the state at each chunk start (``CH`` tokens apart, in bf16 for 16-bit inputs) and the final
  state. Also used by the backward pass to recompute the states.
- ``gla_output_kernel``: ``o = qd h_chunk + A v``, one ``CH x BV`` tile per program.

The interpreter (``TRITON_INTERPRET=1``) runs these unchanged: no autotuning, no ``.to()`` on loop indices.
"""
import triton
import triton.language as tl


@triton.jit
def _mm(a, b, ELT: tl.constexpr, PREC: tl.constexpr):
    return tl.dot(a.to(ELT), b.to(ELT), input_precision=PREC)


@triton.jit
def _chunk_rows(chunk_table, cu_seqlens, i_c):
    # first row of chunk i_c and the end row of its sequence
    seq = tl.load(chunk_table + i_c * 2).to(tl.int64)
    start = tl.load(chunk_table + i_c * 2 + 1).to(tl.int64)
    eos = tl.load(cu_seqlens + seq + 1).to(tl.int64)
    return start, eos


@triton.jit
def _row_block(chunk_table, cu_seqlens, i_r, CH: tl.constexpr, BT: tl.constexpr):
    # program index i_r over (chunk, BT-row block): (block index in its chunk, chunk's first row, end row of its
    # sequence, block's first row)
    NB: tl.constexpr = CH // BT
    i_b = i_r % NB
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_r // NB)
    return i_b, start, eos, start + i_b * BT


@triton.jit
def gla_prep_kernel(q, k, g, gc, qd, kd, gl, chunk_table, cu_seqlens, scale, H: tl.constexpr, K: tl.constexpr,
                    CH: tl.constexpr, BK: tl.constexpr):
    # gc: within-chunk cumulative log decay (fp32); gl: [num_chunks, H, K] its value at the chunk's last row;
    # qd = q * scale * exp(gc) and kd = k * exp(gl - gc) in the input dtype: the decayed operands of every
    # state matmul (walks, output, dv), computed once instead of in each of those kernels
    i_k, i_c, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_c)
    rows = start + tl.arange(0, CH)
    cols = i_k * BK + tl.arange(0, BK)
    kmask = cols < K
    mask = (rows < eos)[:, None] & kmask[None, :]
    offs = (rows[:, None] * H + i_h) * K + cols[None, :]
    c = tl.cumsum(tl.load(g + offs, mask=mask, other=0.0).to(tl.float32), axis=0)
    tl.store(gc + offs, c, mask=mask)
    last = tl.minimum(start + CH, eos) - 1
    c_last = tl.sum(tl.where((rows == last)[:, None], c, 0.0), axis=0)
    tl.store(gl + (i_c * H + i_h).to(tl.int64) * K + cols, c_last, mask=kmask)
    b_q = tl.load(q + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(qd + offs, (b_q * tl.exp(c) * scale).to(qd.dtype.element_ty), mask=mask)
    b_k = tl.load(k + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(kd + offs, (b_k * tl.exp(tl.minimum(c_last[None, :] - c, 0.0))).to(kd.dtype.element_ty), mask=mask)


@triton.jit
def _decayed_pair_tile(q, k, gc, rows, cols, rmask, cmask, g_ref_row, i_h, H: tl.constexpr, K: tl.constexpr,
                       BT: tl.constexpr, BJ: tl.constexpr, BK: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # sum_k q_tk k_jk exp(gc_tk - gc_jk) for rows t after every column j, through the reference row r between
    # them: (q_t exp(gc_t - gc_r)) . (k_j exp(gc_r - gc_j)), both factors <= 1
    acc = tl.zeros([BT, BJ], dtype=tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + tl.arange(0, BK)
        kmask = kk < K
        m_r = rmask[:, None] & kmask[None, :]
        m_c = cmask[:, None] & kmask[None, :]
        b_q = tl.load(q + (rows[:, None] * H + i_h) * K + kk[None, :], mask=m_r, other=0.0).to(tl.float32)
        b_gq = tl.load(gc + (rows[:, None] * H + i_h) * K + kk[None, :], mask=m_r, other=0.0)
        b_gr = tl.load(gc + (g_ref_row * H + i_h) * K + kk, mask=kmask, other=0.0)
        b_k = tl.load(k + (cols[:, None] * H + i_h) * K + kk[None, :], mask=m_c, other=0.0).to(tl.float32)
        b_gk = tl.load(gc + (cols[:, None] * H + i_h) * K + kk[None, :], mask=m_c, other=0.0)
        b_qf = b_q * tl.exp(tl.minimum(b_gq - b_gr[None, :], 0.0))
        b_kf = b_k * tl.exp(tl.minimum(b_gr[None, :] - b_gk, 0.0))
        acc += _mm(b_qf, tl.trans(b_kf), ELT, PREC)
    return acc


@triton.jit
def gla_intra_kernel(q, k, gc, A, chunk_table, cu_seqlens, scale,
                     H: tl.constexpr, K: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
                     BK: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # A: [R, H, CH] (layout.gla_score_dtype: bf16 for bf16 inputs); row t holds its scores against every token of
    # its chunk (zeros where j > t).
    # This kernel writes the BT x BT tiles inside the BD x BD diagonal blocks (gla_intra_offdiag_kernel the
    # rest): tiles below the diagonal through the reference row just before the row block, diagonal tiles
    # exactly per column.
    i_r, i_jd, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    ND: tl.constexpr = BD // BT
    i_b, start, eos, row0 = _row_block(chunk_table, cu_seqlens, i_r, CH, BT)
    i_j = (i_b // ND) * ND + i_jd
    if row0 >= eos:
        return
    rows = row0 + tl.arange(0, BT)
    cols = start + i_j * BT + tl.arange(0, BT)
    rmask = rows < eos
    acc = tl.zeros([BT, BT], dtype=tl.float32)
    if i_j < i_b:
        acc += _decayed_pair_tile(q, k, gc, rows, cols, rmask, cols < eos, row0 - 1, i_h, H, K, BT, BT, BK, ELT,
                                  PREC)
    elif i_j == i_b:
        t_idx = tl.arange(0, BT)
        for k0 in range(0, K, BK):
            kk = k0 + tl.arange(0, BK)
            kmask = kk < K
            m_r = rmask[:, None] & kmask[None, :]
            b_q = tl.load(q + (rows[:, None] * H + i_h) * K + kk[None, :], mask=m_r, other=0.0).to(tl.float32)
            b_gq = tl.load(gc + (rows[:, None] * H + i_h) * K + kk[None, :], mask=m_r, other=0.0)
            for jj in range(0, BT):
                col = row0 + jj
                b_kj = tl.load(k + (col * H + i_h) * K + kk, mask=kmask & (col < eos), other=0.0).to(tl.float32)
                b_gj = tl.load(gc + (col * H + i_h) * K + kk, mask=kmask & (col < eos), other=0.0)
                s = tl.sum(b_q * b_kj[None, :] * tl.exp(tl.minimum(b_gq - b_gj[None, :], 0.0)), axis=1)
                s = tl.where(t_idx >= jj, s, 0.0)
                acc += tl.where(t_idx[None, :] == jj, s[:, None], 0.0)
    acc = acc * scale
    tl.store(A + (rows[:, None] * H + i_h) * CH + (i_j * BT + tl.arange(0, BT))[None, :],
             acc.to(A.dtype.element_ty), mask=rmask[:, None])


@triton.jit
def gla_intra_offdiag_kernel(q, k, gc, A, chunk_table, cu_seqlens, scale,
                             H: tl.constexpr, K: tl.constexpr, CH: tl.constexpr, BD: tl.constexpr,
                             BK: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # the BD x BD tiles of A outside the diagonal blocks: one matmul tile per program (zeros above the diagonal)
    i_r, i_j, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, start, eos, row0 = _row_block(chunk_table, cu_seqlens, i_r, CH, BD)
    if (i_j == i_b) | (row0 >= eos):
        return
    rows = row0 + tl.arange(0, BD)
    cols = start + i_j * BD + tl.arange(0, BD)
    rmask = rows < eos
    acc = tl.zeros([BD, BD], dtype=tl.float32)
    if i_j < i_b:
        acc += _decayed_pair_tile(q, k, gc, rows, cols, rmask, cols < eos, row0 - 1, i_h, H, K, BD, BD, BK, ELT,
                                  PREC)
    tl.store(A + (rows[:, None] * H + i_h) * CH + (i_j * BD + tl.arange(0, BD))[None, :],
             (acc * scale).to(A.dtype.element_ty), mask=rmask[:, None])


@triton.jit
def gla_state_kernel(kd, v, gl, h, h0, ht, cu_seqlens, chunk_offsets,
                     H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr,
                     BK: tl.constexpr, BV: tl.constexpr, USE_H0: tl.constexpr, STORE_FINAL: tl.constexpr,
                     ELT: tl.constexpr, PREC: tl.constexpr):
    # h: [num_chunks, H, K, V] states at chunk starts; h0 / ht: [N, H, K, V] fp32.
    # Per chunk: S <- exp(gl) S + kd^T v, the inner loop being loads and matmuls only (kd is pre-decayed).
    i_k, i_v, i_nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_n = i_nh // H
    i_h = i_nh % H
    bos = tl.load(cu_seqlens + i_n).to(tl.int64)
    eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)
    c0 = tl.load(chunk_offsets + i_n).to(tl.int64)
    kk = i_k * BK + tl.arange(0, BK)
    vv = i_v * BV + tl.arange(0, BV)
    kmask = kk < K
    vmask = vv < V
    s_offs = kk[:, None] * V + vv[None, :]
    s_mask = kmask[:, None] & vmask[None, :]
    S = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_H0:
        S += tl.load(h0 + i_nh * K * V + s_offs, mask=s_mask, other=0.0)
    n_chunks = tl.cdiv(eos - bos, CH)
    for c in range(0, n_chunks):
        tl.store(h + ((c0 + c) * H + i_h) * K * V + s_offs, S.to(h.dtype.element_ty), mask=s_mask)
        cstart = bos + c * CH
        acc = tl.zeros([BK, BV], dtype=tl.float32)
        for b in range(0, tl.cdiv(tl.minimum(eos - cstart, CH), BT)):
            rows = cstart + b * BT + tl.arange(0, BT)
            rmask = rows < eos
            b_k = tl.load(kd + (rows[:, None] * H + i_h) * K + kk[None, :], mask=rmask[:, None] & kmask[None, :],
                          other=0.0)
            b_v = tl.load(v + (rows[:, None] * H + i_h) * V + vv[None, :], mask=rmask[:, None] & vmask[None, :],
                          other=0.0)
            acc += _mm(tl.trans(b_k), b_v, ELT, PREC)
        decay = tl.load(gl + ((c0 + c) * H + i_h) * K + kk, mask=kmask, other=0.0)
        S = S * tl.exp(decay)[:, None] + acc
    if STORE_FINAL:
        tl.store(ht + i_nh * K * V + s_offs, S, mask=s_mask)


@triton.jit
def gla_output_kernel(qd, v, h, A, o, chunk_table, cu_seqlens,
                      H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr,
                      BK: tl.constexpr, BV: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # o = qd h_chunk + A v (qd = q * scale * exp(gc) and A carry the scale)
    i_v, i_c, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_c)
    rows = start + tl.arange(0, CH)
    rmask = rows < eos
    vv = i_v * BV + tl.arange(0, BV)
    vmask = vv < V
    acc = tl.zeros([CH, BV], dtype=tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + tl.arange(0, BK)
        kmask = kk < K
        b_q = tl.load(qd + (rows[:, None] * H + i_h) * K + kk[None, :], mask=rmask[:, None] & kmask[None, :],
                      other=0.0)
        b_h = tl.load(h + (i_c * H + i_h).to(tl.int64) * K * V + kk[:, None] * V + vv[None, :],
                      mask=kmask[:, None] & vmask[None, :], other=0.0)
        acc += _mm(b_q, b_h, ELT, PREC)
    n_blocks = tl.cdiv(tl.minimum(eos - start, CH), BT)
    for jb in range(0, n_blocks):
        cols = start + jb * BT + tl.arange(0, BT)
        b_a = tl.load(A + (rows[:, None] * H + i_h) * CH + (jb * BT + tl.arange(0, BT))[None, :],
                      mask=rmask[:, None], other=0.0)
        b_v = tl.load(v + (cols[:, None] * H + i_h) * V + vv[None, :], mask=(cols < eos)[:, None] & vmask[None, :],
                      other=0.0)
        acc += _mm(b_a, b_v, ELT, PREC)
    tl.store(o + (rows[:, None] * H + i_h) * V + vv[None, :], acc.to(o.dtype.element_ty),
             mask=rmask[:, None] & vmask[None, :])
