"""Triton backward kernels for chunked GLA (same layout and notation as ``triton_fwd``).

With ``dh_c`` the gradient of the state at the END of chunk c (stored per chunk by a reverse walk):
  dv_j = sum_{t>=j} A_tj do_t + (k_j * exp(gc_last - gc_j)) dh_c
  dq_t = scale * [(do_t h_c^T) * exp(gc_t) + sum_{j<=t} (do_t.v_j) k_j exp(gc_t - gc_j)]
  dk_j = (v_j dh_c^T) * exp(gc_last - gc_j) + scale * sum_{t>=j} (do_t.v_j) q_t exp(gc_t - gc_j)
  dg_s = sum_{t>=s in the sequence} (q_t dq_t - k_t dk_t) + [final-state term]; the part beyond s's chunk is
         sum_v h dh at the chunk's end (gla_dg_kernel), so no sum runs over the whole sequence
Kernels: ``gla_dstate_kernel`` (reverse walk: dh per chunk and dh0), ``gla_dscore_kernel`` (scale * do.v per
causal pair in a chunk), ``gla_dv_kernel``, ``gla_dqk_inter_kernel`` (the state terms of dq, dk for a whole
chunk), ``gla_dqk_offdiag_kernel`` (pair terms between 64-row blocks, as matmul tiles),
``gla_dqk_intra_kernel`` (pair terms inside them per 16-row block; writes dq, dk and q dq - k dk),
``gla_dg_kernel`` (dg: a reverse sum within each chunk plus ``sum_v h dh`` across chunk boundaries).
"""
import triton
import triton.language as tl

from statex_dist.kernels.gla.triton_fwd import _chunk_rows, _mm, _row_block


@triton.jit
def gla_dstate_kernel(qd, do, gl, dh, dht, dh0, cu_seqlens, chunk_offsets,
                      H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr,
                      BK: tl.constexpr, BV: tl.constexpr, USE_DHT: tl.constexpr, STORE_DH0: tl.constexpr,
                      ELT: tl.constexpr, PREC: tl.constexpr):
    # dh: [num_chunks, H, K, V], gradient of the state after each chunk. Per chunk, in reverse:
    # dS_in = exp(gl) dS_out + qd^T do (qd = q * scale * exp(gc), pre-decayed by gla_prep_kernel)
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
    dS = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_DHT:
        dS += tl.load(dht + i_nh.to(tl.int64) * K * V + s_offs, mask=s_mask, other=0.0)
    n_chunks = tl.cdiv(eos - bos, CH)
    for cc in range(0, n_chunks):
        c = n_chunks - 1 - cc
        tl.store(dh + ((c0 + c) * H + i_h) * K * V + s_offs, dS.to(dh.dtype.element_ty), mask=s_mask)
        cstart = bos + c * CH
        acc = tl.zeros([BK, BV], dtype=tl.float32)
        for b in range(0, tl.cdiv(tl.minimum(eos - cstart, CH), BT)):
            rows = cstart + b * BT + tl.arange(0, BT)
            rmask = rows < eos
            b_q = tl.load(qd + (rows[:, None] * H + i_h) * K + kk[None, :], mask=rmask[:, None] & kmask[None, :],
                          other=0.0)
            b_do = tl.load(do + (rows[:, None] * H + i_h) * V + vv[None, :], mask=rmask[:, None] & vmask[None, :],
                           other=0.0)
            acc += _mm(tl.trans(b_q), b_do, ELT, PREC)
        decay = tl.load(gl + ((c0 + c) * H + i_h) * K + kk, mask=kmask, other=0.0)
        dS = dS * tl.exp(decay)[:, None] + acc
    if STORE_DH0:
        tl.store(dh0 + i_nh.to(tl.int64) * K * V + s_offs, dS, mask=s_mask)


@triton.jit
def gla_dscore_kernel(do, v, dA, chunk_table, cu_seqlens, scale,
                      H: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
                      ELT: tl.constexpr, PREC: tl.constexpr):
    # dA: [R, H, CH] fp32, scale * do_t . v_j for j <= t in the chunk, zeros elsewhere
    i_r, i_j, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, start, eos, row0 = _row_block(chunk_table, cu_seqlens, i_r, CH, BT)
    if row0 >= eos:
        return
    rows = row0 + tl.arange(0, BT)
    cols = start + i_j * BT + tl.arange(0, BT)
    rmask = rows < eos
    cmask = cols < eos
    acc = tl.zeros([BT, BT], dtype=tl.float32)
    if i_j <= i_b:
        for v0 in range(0, V, BV):
            vv = v0 + tl.arange(0, BV)
            vmask = vv < V
            b_do = tl.load(do + (rows[:, None] * H + i_h) * V + vv[None, :], mask=rmask[:, None] & vmask[None, :],
                           other=0.0)
            b_v = tl.load(v + (cols[:, None] * H + i_h) * V + vv[None, :], mask=cmask[:, None] & vmask[None, :],
                          other=0.0)
            acc += _mm(b_do, tl.trans(b_v), ELT, PREC)
        causal = (i_b * BT + tl.arange(0, BT))[:, None] >= (i_j * BT + tl.arange(0, BT))[None, :]
        acc = tl.where(causal, acc * scale, 0.0)
    tl.store(dA + (rows[:, None] * H + i_h) * CH + (i_j * BT + tl.arange(0, BT))[None, :], acc,
             mask=rmask[:, None])


@triton.jit
def gla_dv_kernel(kd, do, dh, A, dv, chunk_table, cu_seqlens,
                  H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr,
                  BK: tl.constexpr, BV: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # dv = kd dh_chunk + A^T do (kd = k * exp(gl - gc), pre-decayed by gla_prep_kernel)
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
        b_k = tl.load(kd + (rows[:, None] * H + i_h) * K + kk[None, :], mask=rmask[:, None] & kmask[None, :],
                      other=0.0)
        b_dh = tl.load(dh + (i_c * H + i_h).to(tl.int64) * K * V + kk[:, None] * V + vv[None, :],
                       mask=kmask[:, None] & vmask[None, :], other=0.0)
        acc += _mm(b_k, b_dh, ELT, PREC)
    n_blocks = tl.cdiv(tl.minimum(eos - start, CH), BT)
    for tb in range(0, n_blocks):
        trows = start + tb * BT + tl.arange(0, BT)
        tmask = trows < eos
        b_a = tl.load(A + (trows[:, None] * H + i_h) * CH + tl.arange(0, CH)[None, :], mask=tmask[:, None],
                      other=0.0)
        b_do = tl.load(do + (trows[:, None] * H + i_h) * V + vv[None, :], mask=tmask[:, None] & vmask[None, :],
                       other=0.0)
        acc += _mm(tl.trans(b_a), b_do, ELT, PREC)
    tl.store(dv + (rows[:, None] * H + i_h) * V + vv[None, :], acc.to(dv.dtype.element_ty),
             mask=rmask[:, None] & vmask[None, :])


@triton.jit
def gla_dqk_inter_kernel(v, do, gc, h, dh, dq, dk, chunk_table, cu_seqlens, scale,
                         H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, CH: tl.constexpr,
                         BK: tl.constexpr, BV: tl.constexpr, TERMS: tl.constexpr, ELT: tl.constexpr,
                         PREC: tl.constexpr):
    # state terms of dq (do h^T) and dk (v dh^T) for a whole chunk, fp32 into dq / dk. TERMS 0: both in one
    # program; 1: dq only; 2: dk only (two launches, one fp32 [CH, BK] accumulator per program instead of two)
    i_k, i_c, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_c)
    rows = start + tl.arange(0, CH)
    rmask = rows < eos
    last = tl.minimum(start + CH, eos) - 1
    kk = i_k * BK + tl.arange(0, BK)
    kmask = kk < K
    b_dq = tl.zeros([CH, BK], dtype=tl.float32)
    b_dk = tl.zeros([CH, BK], dtype=tl.float32)
    for v0 in range(0, V, BV):
        vv = v0 + tl.arange(0, BV)
        vmask = vv < V
        m = rmask[:, None] & vmask[None, :]
        s_offs = (i_c * H + i_h).to(tl.int64) * K * V + kk[:, None] * V + vv[None, :]
        s_mask = kmask[:, None] & vmask[None, :]
        if TERMS != 2:
            b_do = tl.load(do + (rows[:, None] * H + i_h) * V + vv[None, :], mask=m, other=0.0)
            b_h = tl.load(h + s_offs, mask=s_mask, other=0.0)
            b_dq += _mm(b_do, tl.trans(b_h), ELT, PREC)
        if TERMS != 1:
            b_v = tl.load(v + (rows[:, None] * H + i_h) * V + vv[None, :], mask=m, other=0.0)
            b_dh = tl.load(dh + s_offs, mask=s_mask, other=0.0)
            b_dk += _mm(b_v, tl.trans(b_dh), ELT, PREC)
    m = rmask[:, None] & kmask[None, :]
    offs = (rows[:, None] * H + i_h) * K + kk[None, :]
    b_g = tl.load(gc + offs, mask=m, other=0.0)
    if TERMS != 2:
        tl.store(dq + offs, b_dq * tl.exp(b_g) * scale, mask=m)
    if TERMS != 1:
        g_last = tl.load(gc + (last * H + i_h) * K + kk, mask=kmask, other=0.0)
        tl.store(dk + offs, b_dk * tl.exp(tl.minimum(g_last[None, :] - b_g, 0.0)), mask=m)


@triton.jit
def gla_dqk_intra_kernel(q, k, gc, dA, dq32, dk32, dq, dk, dG, chunk_table, cu_seqlens,
                         H: tl.constexpr, K: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
                         BK: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # adds the pair terms inside the row block's BD-row diagonal block to dq32 / dk32 (which hold the state
    # terms and the pairs between BD blocks); writes dq, dk and dG = q dq - k dk
    # (fp32; dG may alias dq32: each program reads its own rows before writing them)
    i_k, i_r, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    ND: tl.constexpr = BD // BT
    i_b, start, eos, row0 = _row_block(chunk_table, cu_seqlens, i_r, CH, BT)
    if row0 >= eos:
        return
    rows = row0 + tl.arange(0, BT)
    rmask = rows < eos
    kk = i_k * BK + tl.arange(0, BK)
    kmask = kk < K
    m = rmask[:, None] & kmask[None, :]
    offs = (rows[:, None] * H + i_h) * K + kk[None, :]
    b_q = tl.load(q + offs, mask=m, other=0.0).to(tl.float32)
    b_k = tl.load(k + offs, mask=m, other=0.0).to(tl.float32)
    b_g = tl.load(gc + offs, mask=m, other=0.0)
    b_dq = tl.load(dq32 + offs, mask=m, other=0.0)
    b_dk = tl.load(dk32 + offs, mask=m, other=0.0)
    t_idx = tl.arange(0, BT)

    # earlier blocks j < i in the same BD block: reference row just before this block
    if i_b % ND > 0:
        g_ref = tl.load(gc + ((row0 - 1) * H + i_h) * K + kk, mask=kmask, other=0.0)
        acc = tl.zeros([BT, BK], dtype=tl.float32)
        for jb in range((i_b // ND) * ND, i_b):
            jrows = start + jb * BT + tl.arange(0, BT)
            joffs = (jrows[:, None] * H + i_h) * K + kk[None, :]
            b_kj = tl.load(k + joffs, mask=kmask[None, :], other=0.0).to(tl.float32)
            b_gj = tl.load(gc + joffs, mask=kmask[None, :], other=0.0)
            b_da = tl.load(dA + (rows[:, None] * H + i_h) * CH + (jb * BT + t_idx)[None, :], mask=rmask[:, None],
                           other=0.0)
            acc += _mm(b_da, b_kj * tl.exp(tl.minimum(g_ref[None, :] - b_gj, 0.0)), ELT, PREC)
        b_dq += acc * tl.exp(tl.minimum(b_g - g_ref[None, :], 0.0))
    # later blocks t > i in the same BD block: reference row = last row of this block
    n_blocks = tl.minimum(tl.cdiv(tl.minimum(eos - start, CH), BT), (i_b // ND + 1) * ND)
    if i_b < n_blocks - 1:
        g_ref2 = tl.load(gc + ((row0 + BT - 1) * H + i_h) * K + kk, mask=kmask, other=0.0)
        acc2 = tl.zeros([BT, BK], dtype=tl.float32)
        for tb in range(i_b + 1, n_blocks):
            trows = start + tb * BT + tl.arange(0, BT)
            tmask = trows < eos
            toffs = (trows[:, None] * H + i_h) * K + kk[None, :]
            b_qt = tl.load(q + toffs, mask=tmask[:, None] & kmask[None, :], other=0.0).to(tl.float32)
            b_gt = tl.load(gc + toffs, mask=tmask[:, None] & kmask[None, :], other=0.0)
            b_da = tl.load(dA + (trows[:, None] * H + i_h) * CH + (i_b * BT + t_idx)[None, :], mask=tmask[:, None],
                           other=0.0)
            acc2 += _mm(tl.trans(b_da), b_qt * tl.exp(tl.minimum(b_gt - g_ref2[None, :], 0.0)), ELT, PREC)
        b_dk += acc2 * tl.exp(tl.minimum(g_ref2[None, :] - b_g, 0.0))
    # diagonal block, exact: step jj adds token jj's pair terms to every row as rank-1 updates (no reductions)
    for jj in range(0, BT):
        col = row0 + jj
        cvalid = col < eos
        b_kj = tl.load(k + (col * H + i_h) * K + kk, mask=kmask & cvalid, other=0.0).to(tl.float32)
        b_gj = tl.load(gc + (col * H + i_h) * K + kk, mask=kmask & cvalid, other=0.0)
        b_qj = tl.load(q + (col * H + i_h) * K + kk, mask=kmask & cvalid, other=0.0).to(tl.float32)
        # dq_t += dA[t, jj] k_jj exp(g_t - g_jj) for t >= jj; dk_t += dA[jj, t] q_jj exp(g_jj - g_t) for t <= jj
        da_col = tl.load(dA + (rows * H + i_h) * CH + i_b * BT + jj, mask=rmask & (t_idx >= jj), other=0.0)
        da_row = tl.load(dA + (col * H + i_h) * CH + i_b * BT + t_idx, mask=(t_idx <= jj) & cvalid, other=0.0)
        b_dq += da_col[:, None] * b_kj[None, :] * tl.exp(tl.minimum(b_g - b_gj[None, :], 0.0))
        b_dk += da_row[:, None] * b_qj[None, :] * tl.exp(tl.minimum(b_gj[None, :] - b_g, 0.0))
    tl.store(dq + offs, b_dq.to(dq.dtype.element_ty), mask=m)
    tl.store(dk + offs, b_dk.to(dk.dtype.element_ty), mask=m)
    tl.store(dG + offs, b_q * b_dq - b_k * b_dk, mask=m)


@triton.jit
def gla_dqk_offdiag_kernel(q, k, gc, dA, dq32, dk32, chunk_table, cu_seqlens,
                           H: tl.constexpr, K: tl.constexpr, CH: tl.constexpr, BD: tl.constexpr, BK: tl.constexpr,
                           ELT: tl.constexpr, PREC: tl.constexpr):
    # adds the pair terms between different BD-row blocks of a chunk to dq32 / dk32, in place (each program
    # owns BD rows x BK channels): BD x BD matmul tiles through reference rows, as in gla_intra_offdiag_kernel
    i_k, i_r, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, start, eos, row0 = _row_block(chunk_table, cu_seqlens, i_r, CH, BD)
    if row0 >= eos:
        return
    rows = row0 + tl.arange(0, BD)
    rmask = rows < eos
    kk = i_k * BK + tl.arange(0, BK)
    kmask = kk < K
    m = rmask[:, None] & kmask[None, :]
    offs = (rows[:, None] * H + i_h) * K + kk[None, :]
    b_g = tl.load(gc + offs, mask=m, other=0.0)
    t_idx = tl.arange(0, BD)
    if i_b > 0:  # dq_t += sum over earlier blocks' j of dA[t, j] k_j exp(g_t - g_j)
        g_ref = tl.load(gc + ((row0 - 1) * H + i_h) * K + kk, mask=kmask, other=0.0)
        acc = tl.zeros([BD, BK], dtype=tl.float32)
        for jb in range(0, i_b):
            joffs = ((start + jb * BD + t_idx)[:, None] * H + i_h) * K + kk[None, :]
            b_kj = tl.load(k + joffs, mask=kmask[None, :], other=0.0).to(tl.float32)
            b_gj = tl.load(gc + joffs, mask=kmask[None, :], other=0.0)
            b_da = tl.load(dA + (rows[:, None] * H + i_h) * CH + (jb * BD + t_idx)[None, :], mask=rmask[:, None],
                           other=0.0)
            acc += _mm(b_da, b_kj * tl.exp(tl.minimum(g_ref[None, :] - b_gj, 0.0)), ELT, PREC)
        b_dq = tl.load(dq32 + offs, mask=m, other=0.0)
        tl.store(dq32 + offs, b_dq + acc * tl.exp(tl.minimum(b_g - g_ref[None, :], 0.0)), mask=m)
    n_blocks = tl.cdiv(tl.minimum(eos - start, CH), BD)
    if i_b < n_blocks - 1:  # dk_j += sum over later blocks' t of dA[t, j] q_t exp(g_t - g_j)
        g_ref2 = tl.load(gc + ((row0 + BD - 1) * H + i_h) * K + kk, mask=kmask, other=0.0)
        acc2 = tl.zeros([BD, BK], dtype=tl.float32)
        for tb in range(i_b + 1, n_blocks):
            trows = start + tb * BD + t_idx
            tmask = trows < eos
            toffs = (trows[:, None] * H + i_h) * K + kk[None, :]
            b_qt = tl.load(q + toffs, mask=tmask[:, None] & kmask[None, :], other=0.0).to(tl.float32)
            b_gt = tl.load(gc + toffs, mask=tmask[:, None] & kmask[None, :], other=0.0)
            b_da = tl.load(dA + (trows[:, None] * H + i_h) * CH + (i_b * BD + t_idx)[None, :], mask=tmask[:, None],
                           other=0.0)
            acc2 += _mm(tl.trans(b_da), b_qt * tl.exp(tl.minimum(b_gt - g_ref2[None, :], 0.0)), ELT, PREC)
        b_dk = tl.load(dk32 + offs, mask=m, other=0.0)
        tl.store(dk32 + offs, b_dk + acc2 * tl.exp(tl.minimum(g_ref2[None, :] - b_g, 0.0)), mask=m)


@triton.jit
def gla_dg_kernel(dG, h, dh, carry0, dg, chunk_table, cu_seqlens, chunk_offsets, H: tl.constexpr, K: tl.constexpr,
                  V: tl.constexpr, CH: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_CARRY: tl.constexpr):
    # dg_s = sum_{t >= s in the chunk} dG_t + (the same sum over the rest of the sequence). The second term is
    # sum_v h_next * dh (the state leaving the chunk times its gradient; for the last chunk, the final-state
    # term carry0), computed from the states directly: a running sum of q dq - k dk over the whole sequence would
    # add up terms thousands of times larger than the result and lose it to rounding in bf16.
    i_k, i_c, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_c)
    seq = tl.load(chunk_table + i_c * 2).to(tl.int64)
    last_chunk = tl.load(chunk_offsets + seq + 1).to(tl.int64) - 1
    kk = i_k * BK + tl.arange(0, BK)
    kmask = kk < K
    carry = tl.zeros([BK], dtype=tl.float32)
    if i_c < last_chunk:
        h_next = h + ((i_c + 1).to(tl.int64) * H + i_h) * K * V
        dh_here = dh + (i_c.to(tl.int64) * H + i_h) * K * V
        for v0 in range(0, V, BV):
            vv = v0 + tl.arange(0, BV)
            offs = kk[:, None] * V + vv[None, :]
            m = kmask[:, None] & (vv < V)[None, :]
            b_h = tl.load(h_next + offs, mask=m, other=0.0).to(tl.float32)
            b_dh = tl.load(dh_here + offs, mask=m, other=0.0).to(tl.float32)
            carry += tl.sum(b_h * b_dh, axis=1)
    elif USE_CARRY:
        carry += tl.load(carry0 + (seq * H + i_h) * K + kk, mask=kmask, other=0.0)
    rows = start + tl.arange(0, CH)
    m = (rows < eos)[:, None] & kmask[None, :]
    offs = (rows[:, None] * H + i_h) * K + kk[None, :]
    x = tl.load(dG + offs, mask=m, other=0.0)
    tl.store(dg + offs, (tl.cumsum(x, axis=0, reverse=True) + carry[None, :]).to(dg.dtype.element_ty), mask=m)
