"""Pure-PyTorch chunked GLA against the float64 step recurrence and fla's naive reference."""
import pytest
import torch

from kernel_testing import assert_close, gla_inputs, grads, shape_id
from statex_dist.kernels.gla import chunk_gla_torch, naive_recurrent_gla

SHAPES = [
    # B, T, H, K, V, chunk_size
    (2, 63, 4, 32, 48, 64),
    (1, 130, 2, 16, 16, 64),
    (2, 100, 1, 64, 32, 32),
    (1, 1, 2, 8, 8, 64),
    (3, 47, 2, 20, 12, 16),
]


def _ids(shapes):
    return [shape_id(B=b, T=t, H=h, K=k, V=v, C=c) for b, t, h, k, v, c in shapes]


def _run(fn, q, k, v, gk, h0, dtype, **kw):
    ins = [x.to(dtype).requires_grad_() for x in (q, k, v, gk)] + [h0.clone().requires_grad_()]
    o, ht = fn(*ins[:4], initial_state=ins[4], output_final_state=True, **kw)
    return (o, ht, *grads([o, ht], ins))


@pytest.mark.parametrize("decay", ["gla", "strong"])
@pytest.mark.parametrize("B,T,H,K,V,C", SHAPES, ids=_ids(SHAPES))
def test_chunk_matches_float64_recurrence(B, T, H, K, V, C, decay):
    q, k, v, gk, h0 = gla_inputs(B, T, H, K, V, decay=decay)
    scale = 0.3
    ref = _run(naive_recurrent_gla, q, k, v, gk, h0, torch.float64, scale=scale)
    out = _run(chunk_gla_torch, q, k, v, gk, h0.float(), torch.float32, scale=scale, chunk_size=C)
    for name, a, r in zip(["o", "ht", "dq", "dk", "dv", "dg", "dh0"], out, ref):
        assert a.dtype == (torch.float32), name
        assert_close(name, a, r, 2e-5)


def test_float64_chunk_is_exact():
    q, k, v, gk, h0 = gla_inputs(2, 70, 2, 16, 8, decay="strong")
    ref = _run(naive_recurrent_gla, q, k, v, gk, h0, torch.float64)
    out = _run(chunk_gla_torch, q, k, v, gk, h0, torch.float64)
    for name, a, r in zip(["o", "ht", "dq", "dk", "dv", "dg", "dh0"], out, ref):
        assert_close(name, a, r, 1e-12)


def test_matches_fla_naive():
    from fla.ops.gla.naive import naive_recurrent_gla as fla_naive

    q, k, v, gk, h0 = gla_inputs(2, 75, 2, 32, 16)
    o_ref, ht_ref = fla_naive(q.float(), k.float(), v.float(), gk.float(), h0.float(), output_final_state=True)
    o, ht = chunk_gla_torch(q.float(), k.float(), v.float(), gk.float(), initial_state=h0.float(),
                            output_final_state=True)
    assert_close("o", o, o_ref, 1e-5)
    assert_close("ht", ht, ht_ref, 1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs(dtype):
    q, k, v, gk, h0 = gla_inputs(1, 80, 2, 16, 16)
    o, ht = chunk_gla_torch(*(x.to(dtype) for x in (q, k, v, gk)), initial_state=h0.float(), output_final_state=True)
    o_ref, ht_ref = naive_recurrent_gla(*(x.to(dtype).double() for x in (q, k, v, gk)), initial_state=h0,
                                        output_final_state=True)
    assert o.dtype == dtype and ht.dtype == torch.float32
    assert_close("o", o, o_ref, 1e-2)
    assert_close("ht", ht, ht_ref, 1e-5)


@pytest.mark.parametrize("lengths", [[17, 0, 63, 120], [64, 64, 1], [200]], ids=["mixed", "aligned", "single"])
def test_packed_equals_separate(lengths):
    H, K, V = 2, 16, 24
    T = sum(lengths)
    q, k, v, gk, h0 = gla_inputs(1, T, H, K, V, decay="gla", dtype=torch.float32, n_states=len(lengths))
    cu = torch.tensor([0] + lengths).cumsum(0).to(torch.int32)
    ins = [x.clone().requires_grad_() for x in (q, k, v, gk, h0)]
    o, ht = chunk_gla_torch(*ins[:4], initial_state=ins[4], output_final_state=True, cu_seqlens=cu)
    packed = (o, ht, *grads([o, ht], ins))

    sep = [x.clone().requires_grad_() for x in (q, k, v, gk, h0)]
    outs, finals = [], []
    for i, (s, e) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        oi, hi = chunk_gla_torch(*(x[:, s:e] for x in sep[:4]), initial_state=sep[4][i : i + 1],
                                 output_final_state=True)
        outs.append(oi)
        finals.append(hi)
    o_s, ht_s = torch.cat(outs, 1), torch.cat(finals, 0)
    separate = (o_s, ht_s, *grads([o_s, ht_s], sep))
    for name, a, r in zip(["o", "ht", "dq", "dk", "dv", "dg", "dh0"], packed, separate):
        assert_close(name, a, r, 1e-6)


def test_no_initial_state_and_no_final():
    q, k, v, gk, _ = gla_inputs(2, 33, 2, 8, 8, dtype=torch.float32)
    o, ht = chunk_gla_torch(q, k, v, gk)
    o_ref, _ = naive_recurrent_gla(q.double(), k.double(), v.double(), gk.double())
    assert ht is None
    assert_close("o", o, o_ref, 1e-5)
