"""Pure-PyTorch chunked Mamba2 SSD against the float64 step recurrence and fla's simple-GLA reference."""
import pytest
import torch

from kernel_testing import assert_close, grads, shape_id, ssd_inputs
from statex_dist.kernels.ssd import chunk_ssd_torch, naive_recurrent_ssd

SHAPES = [
    # b, T, H, P, G, N, chunk_size
    (2, 63, 4, 16, 1, 32, 64),
    (1, 130, 4, 8, 2, 24, 64),
    (2, 47, 2, 12, 2, 16, 16),
    (1, 1, 2, 8, 1, 8, 64),
]
NAMES = ["y", "ht", "dx", "ddt", "dA", "dB", "dC", "dh0"]


def _run(fn, x, dt, A, B, C, h0, dtype, **kw):
    ins = [t.to(dtype).requires_grad_() for t in (x, dt, A, B, C)] + [h0.clone().requires_grad_()]
    y, ht = fn(*ins[:5], initial_state=ins[5], output_final_state=True, **kw)
    return (y, ht, *grads([y, ht], ins))


@pytest.mark.parametrize("strong", [False, True], ids=["mamba-decay", "strong-decay"])
@pytest.mark.parametrize("b,T,H,P,G,N,L", SHAPES,
                         ids=[shape_id(b=b, T=t, H=h, P=p, G=g, N=n, C=c) for b, t, h, p, g, n, c in SHAPES])
def test_chunk_matches_float64_recurrence(b, T, H, P, G, N, L, strong):
    x, dt, A, B, C, h0 = ssd_inputs(b, T, H, P, G, N, strong=strong)
    ref = _run(naive_recurrent_ssd, x, dt, A, B, C, h0, torch.float64)
    out = _run(chunk_ssd_torch, x, dt, A, B, C, h0.float(), torch.float32, chunk_size=L)
    for name, a, r in zip(NAMES, out, ref):
        # dA and ddt sum long products over the whole sequence
        assert_close(name, a, r, 1e-4 if name in ("dA", "ddt") else 3e-5)


def test_matches_fla_simple_gla_naive():
    """SSD == simple GLA with q=C, k=B, v=dt*x, g=dt*A, scale 1, state transposed."""
    from fla.ops.simple_gla.naive import naive_recurrent_simple_gla

    x, dt, A, B, C, h0 = (t.float() for t in ssd_inputs(2, 70, 4, 8, 2, 16))
    y, ht = chunk_ssd_torch(x, dt, A, B, C, initial_state=h0, output_final_state=True)
    Bh, Ch = (t.repeat_interleave(2, dim=2) for t in (B, C))
    y_ref, ht_ref = naive_recurrent_simple_gla(Ch, Bh, x * dt[..., None], dt * A, scale=1.0,
                                               initial_state=h0.transpose(-1, -2), output_final_state=True)
    assert_close("y", y, y_ref, 1e-5)
    assert_close("ht", ht, ht_ref.transpose(-1, -2), 1e-5)


@pytest.mark.parametrize("lengths", [[17, 0, 63, 120], [64, 64, 1]], ids=["mixed", "aligned"])
def test_packed_equals_separate(lengths):
    T = sum(lengths)
    x, dt, A, B, C, h0 = (t.float() for t in ssd_inputs(1, T, 4, 8, 2, 16, n_states=len(lengths)))
    cu = torch.tensor([0] + lengths).cumsum(0)
    ins = [t.clone().requires_grad_() for t in (x, dt, A, B, C, h0)]
    y, ht = chunk_ssd_torch(*ins[:5], initial_state=ins[5], output_final_state=True, cu_seqlens=cu)
    packed = (y, ht, *grads([y, ht], ins))

    sep = [t.clone().requires_grad_() for t in (x, dt, A, B, C, h0)]
    ys, finals = [], []
    for i, (s, e) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        yi, hi = chunk_ssd_torch(sep[0][:, s:e], sep[1][:, s:e], sep[2], sep[3][:, s:e], sep[4][:, s:e],
                                 initial_state=sep[5][i : i + 1], output_final_state=True)
        ys.append(yi)
        finals.append(hi)
    y_s, ht_s = torch.cat(ys, 1), torch.cat(finals, 0)
    separate = (y_s, ht_s, *grads([y_s, ht_s], sep))
    for name, a, r in zip(NAMES, packed, separate):
        assert_close(name, a, r, 1e-6)


def test_bf16_inputs():
    x, dt, A, B, C, h0 = ssd_inputs(1, 90, 2, 8, 1, 16)
    y, ht = chunk_ssd_torch(x.bfloat16(), dt.float(), A.float(), B.bfloat16(), C.bfloat16(),
                            initial_state=h0.float(), output_final_state=True)
    y_ref, ht_ref = naive_recurrent_ssd(x.bfloat16().double(), dt, A, B.bfloat16().double(), C.bfloat16().double(),
                                        initial_state=h0, output_final_state=True)
    assert y.dtype == torch.bfloat16 and ht.dtype == torch.float32
    assert_close("y", y, y_ref, 1e-2)
    assert_close("ht", ht, ht_ref, 1e-5)
