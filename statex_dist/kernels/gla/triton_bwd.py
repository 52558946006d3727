"""Triton backward kernels for chunked GLA (same layout and notation as ``triton_fwd``).

With ``dh_c`` the gradient of the state at the END of chunk c (stored per chunk by a reverse walk):
  dv_j = sum_{t>=j} A_tj do_t + (k_j * exp(gc_last - gc_j)) dh_c
  dq_t = scale * [(do_t h_c^T) * exp(gc_t) + sum_{j<=t} (do_t.v_j) k_j exp(gc_t - gc_j)]
  dk_j = (v_j dh_c^T) * exp(gc_last - gc_j) + scale * sum_{t>=j} (do_t.v_j) q_t exp(gc_t - gc_j)
  dg_s = sum_{t>=s in the sequence} (q_t dq_t - k_t dk_t) + [final-state term] (a reverse cumulative sum)
Kernels: ``gla_dstate_kernel`` (reverse walk: dh per chunk and dh0), ``gla_dscore_kernel`` (scale * do.v per
causal pair in a chunk), ``gla_dv_kernel``, ``gla_dqk_inter_kernel`` (the state terms of dq, dk for a whole
chunk), ``gla_dqk_intra_kernel`` (the pair terms per row block; writes dq, dk and q dq - k dk),
``gla_revcumsum_kernel`` (dg).
"""
import triton
import triton.language as tl

from statex_dist.kernels.gla.triton_fwd import _chunk_rows, _mm


@triton.jit
def gla_dstate_kernel(q, do, gc, dh, dht, dh0, cu_seqlens, chunk_offsets, scale,
                      H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr,
                      BK: tl.constexpr, BV: tl.constexpr, USE_DHT: tl.constexpr, STORE_DH0: tl.constexpr,
                      ELT: tl.constexpr, PREC: tl.constexpr):
    # dh: [num_chunks, H, K, V], gradient of the state after each chunk
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
        n_blocks = tl.cdiv(tl.minimum(eos - cstart, CH), BT)
        for bb in range(0, n_blocks):
            b = n_blocks - 1 - bb
            rows = cstart + b * BT + tl.arange(0, BT)
            rmask = rows < eos
            last = tl.minimum(cstart + b * BT + BT, eos) - 1
            b_q = tl.load(q + (rows[:, None] * H + i_h) * K + kk[None, :], mask=rmask[:, None] & kmask[None, :],
                          other=0.0)
            b_g = tl.load(gc + (rows[:, None] * H + i_h) * K + kk[None, :], mask=rmask[:, None] & kmask[None, :],
                          other=0.0)
            b_do = tl.load(do + (rows[:, None] * H + i_h) * V + vv[None, :], mask=rmask[:, None] & vmask[None, :],
                           other=0.0)
            g_last = tl.load(gc + (last * H + i_h) * K + kk, mask=kmask, other=0.0)
            g_prev = tl.load(gc + ((cstart + b * BT - 1) * H + i_h) * K + kk, mask=kmask & (b > 0), other=0.0)
            b_qf = b_q.to(tl.float32) * tl.exp(tl.minimum(b_g - g_prev[None, :], 0.0)) * scale
            dS = dS * tl.exp(g_last - g_prev)[:, None] + _mm(tl.trans(b_qf), b_do, ELT, PREC)
    if STORE_DH0:
        tl.store(dh0 + i_nh.to(tl.int64) * K * V + s_offs, dS, mask=s_mask)


@triton.jit
def gla_dscore_kernel(do, v, dA, chunk_table, cu_seqlens, scale,
                      H: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
                      ELT: tl.constexpr, PREC: tl.constexpr):
    # dA: [R, H, CH] fp32, scale * do_t . v_j for j <= t in the chunk, zeros elsewhere
    i_r, i_j, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    NB: tl.constexpr = CH // BT
    i_c = i_r // NB
    i_b = i_r % NB
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_c)
    row0 = start + i_b * BT
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
def gla_dv_kernel(k, do, gc, dh, A, dv, chunk_table, cu_seqlens,
                  H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr,
                  BK: tl.constexpr, BV: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    i_v, i_c, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_c)
    rows = start + tl.arange(0, CH)
    rmask = rows < eos
    last = tl.minimum(start + CH, eos) - 1
    vv = i_v * BV + tl.arange(0, BV)
    vmask = vv < V
    acc = tl.zeros([CH, BV], dtype=tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + tl.arange(0, BK)
        kmask = kk < K
        m = rmask[:, None] & kmask[None, :]
        b_k = tl.load(k + (rows[:, None] * H + i_h) * K + kk[None, :], mask=m, other=0.0).to(tl.float32)
        b_g = tl.load(gc + (rows[:, None] * H + i_h) * K + kk[None, :], mask=m, other=0.0)
        g_last = tl.load(gc + (last * H + i_h) * K + kk, mask=kmask, other=0.0)
        b_dh = tl.load(dh + (i_c * H + i_h).to(tl.int64) * K * V + kk[:, None] * V + vv[None, :],
                       mask=kmask[:, None] & vmask[None, :], other=0.0)
        acc += _mm(b_k * tl.exp(tl.minimum(g_last[None, :] - b_g, 0.0)), b_dh, ELT, PREC)
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
                         BK: tl.constexpr, BV: tl.constexpr, ELT: tl.constexpr, PREC: tl.constexpr):
    # state terms of dq and dk for a whole chunk, fp32 into dq / dk
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
        b_do = tl.load(do + (rows[:, None] * H + i_h) * V + vv[None, :], mask=m, other=0.0)
        b_v = tl.load(v + (rows[:, None] * H + i_h) * V + vv[None, :], mask=m, other=0.0)
        s_offs = (i_c * H + i_h).to(tl.int64) * K * V + kk[:, None] * V + vv[None, :]
        s_mask = kmask[:, None] & vmask[None, :]
        b_h = tl.load(h + s_offs, mask=s_mask, other=0.0)
        b_dh = tl.load(dh + s_offs, mask=s_mask, other=0.0)
        b_dq += _mm(b_do, tl.trans(b_h), ELT, PREC)
        b_dk += _mm(b_v, tl.trans(b_dh), ELT, PREC)
    m = rmask[:, None] & kmask[None, :]
    offs = (rows[:, None] * H + i_h) * K + kk[None, :]
    b_g = tl.load(gc + offs, mask=m, other=0.0)
    g_last = tl.load(gc + (last * H + i_h) * K + kk, mask=kmask, other=0.0)
    tl.store(dq + offs, b_dq * tl.exp(b_g) * scale, mask=m)
    tl.store(dk + offs, b_dk * tl.exp(tl.minimum(g_last[None, :] - b_g, 0.0)), mask=m)


@triton.jit
def gla_dqk_intra_kernel(q, k, gc, dA, dq32, dk32, dq, dk, dG, chunk_table, cu_seqlens,
                         H: tl.constexpr, K: tl.constexpr, CH: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
                         ELT: tl.constexpr, PREC: tl.constexpr):
    # adds the pair terms to the state terms in dq32 / dk32 for one row block; writes dq, dk and
    # dG = q dq - k dk (fp32; dG may alias dq32: each program reads its own rows before writing them)
    i_k, i_r, i_h = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    NB: tl.constexpr = CH // BT
    i_c = i_r // NB
    i_b = i_r % NB
    start, eos = _chunk_rows(chunk_table, cu_seqlens, i_c)
    row0 = start + i_b * BT
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

    # earlier blocks j < i: reference row just before this block
    if i_b > 0:
        g_ref = tl.load(gc + ((row0 - 1) * H + i_h) * K + kk, mask=kmask, other=0.0)
        acc = tl.zeros([BT, BK], dtype=tl.float32)
        for jb in range(0, i_b):
            jrows = start + jb * BT + tl.arange(0, BT)
            joffs = (jrows[:, None] * H + i_h) * K + kk[None, :]
            b_kj = tl.load(k + joffs, mask=kmask[None, :], other=0.0).to(tl.float32)
            b_gj = tl.load(gc + joffs, mask=kmask[None, :], other=0.0)
            b_da = tl.load(dA + (rows[:, None] * H + i_h) * CH + (jb * BT + t_idx)[None, :], mask=rmask[:, None],
                           other=0.0)
            acc += _mm(b_da, b_kj * tl.exp(tl.minimum(g_ref[None, :] - b_gj, 0.0)), ELT, PREC)
        b_dq += acc * tl.exp(tl.minimum(b_g - g_ref[None, :], 0.0))
    # later blocks t > i: reference row = last row of this block
    n_blocks = tl.cdiv(tl.minimum(eos - start, CH), BT)
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
    # diagonal block, exact per column jj
    for jj in range(0, BT):
        col = row0 + jj
        cvalid = col < eos
        b_kj = tl.load(k + (col * H + i_h) * K + kk, mask=kmask & cvalid, other=0.0).to(tl.float32)
        b_gj = tl.load(gc + (col * H + i_h) * K + kk, mask=kmask & cvalid, other=0.0)
        b_qj = tl.load(q + (col * H + i_h) * K + kk, mask=kmask & cvalid, other=0.0).to(tl.float32)
        # column jj of dA for rows t >= jj; row jj of dA for columns j <= jj
        da_col = tl.load(dA + (rows * H + i_h) * CH + i_b * BT + jj, mask=rmask & (t_idx >= jj), other=0.0)
        da_row = tl.load(dA + (col * H + i_h) * CH + i_b * BT + t_idx, mask=(t_idx <= jj) & cvalid, other=0.0)
        # dq of row jj: sum_{j <= jj} dA[jj, j] k_j exp(g_jj - g_j)
        e_row = tl.exp(tl.minimum(b_gj[None, :] - b_g, 0.0))
        dq_row = tl.sum(da_row[:, None] * b_k * e_row, axis=0)
        b_dq += tl.where(t_idx[:, None] == jj, dq_row[None, :], 0.0)
        # dk of row jj: sum_{t >= jj} dA[t, jj] q_t exp(g_t - g_jj)
        e_col = tl.exp(tl.minimum(b_g - b_gj[None, :], 0.0))
        dk_row = tl.sum(da_col[:, None] * b_q * e_col, axis=0)
        b_dk += tl.where(t_idx[:, None] == jj, dk_row[None, :], 0.0)
    tl.store(dq + offs, b_dq.to(dq.dtype.element_ty), mask=m)
    tl.store(dk + offs, b_dk.to(dk.dtype.element_ty), mask=m)
    tl.store(dG + offs, b_q * b_dq - b_k * b_dk, mask=m)


@triton.jit
def gla_revcumsum_kernel(dG, carry0, dg, cu_seqlens, H: tl.constexpr, K: tl.constexpr, BT: tl.constexpr,
                         BK: tl.constexpr, USE_CARRY: tl.constexpr):
    # dg_s = sum_{t >= s in the sequence} dG_t + carry0 (the final-state term), per channel
    i_k, i_nh = tl.program_id(0), tl.program_id(1)
    i_n = i_nh // H
    i_h = i_nh % H
    bos = tl.load(cu_seqlens + i_n).to(tl.int64)
    eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)
    kk = i_k * BK + tl.arange(0, BK)
    kmask = kk < K
    carry = tl.zeros([BK], dtype=tl.float32)
    if USE_CARRY:
        carry += tl.load(carry0 + i_nh.to(tl.int64) * K + kk, mask=kmask, other=0.0)
    n_blocks = tl.cdiv(eos - bos, BT)
    for bb in range(0, n_blocks):
        b = n_blocks - 1 - bb
        rows = bos + b * BT + tl.arange(0, BT)
        m = (rows < eos)[:, None] & kmask[None, :]
        offs = (rows[:, None] * H + i_h) * K + kk[None, :]
        x = tl.load(dG + offs, mask=m, other=0.0)
        tl.store(dg + offs, (tl.cumsum(x, axis=0, reverse=True) + carry[None, :]).to(dg.dtype.element_ty), mask=m)
        carry += tl.sum(x, axis=0)
