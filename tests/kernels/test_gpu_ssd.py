"""Our Mamba2 SSD Triton kernels on a GPU against the float64 PyTorch chunked SSD (outputs, final state and the
gradients of x, dt, A, B, C and the initial state), at Mamba2-1.3B's head shape (P = 64, one group of B/C).

Skipped without CUDA. The allocator is filled with NaN before each call, so an unwritten element fails.
"""
import pytest
import torch

from kernel_testing import rel_err, ssd_dA_term_scale, ssd_inputs
from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2}
NAMES = ["y", "ht", "dx", "ddt", "dA", "dB", "dC", "dh0"]
# (b, T, H, P, G, N, cu_seqlens, dtype)
CASES = [
    (1, 300, 8, 64, 1, 128, None, torch.bfloat16),
    (1, 300, 8, 64, 1, 128, None, torch.float32),
    (2, 257, 8, 64, 2, 512, None, torch.bfloat16),
    (1, 400, 4, 64, 1, 512, [0, 1, 130, 400], torch.float32),
    # the GPU demo's expanded layer (configs/demo/gpu-mamba2.json): 32 heads of P = 16, N = 64, many short
    # documents per row (its StateX arm went NaN on 2026-11-30)
    (1, 700, 32, 16, 1, 64, [0, 12, 13, 80, 150, 151, 215, 300, 364, 428, 500, 562, 640, 700], torch.bfloat16),
    # one chunk per row (a short evaluation prompt): Triton would specialise a chunk count of 1 into a constant
    (2, 40, 32, 16, 1, 16, None, torch.float32),
    (1, 64, 32, 16, 1, 64, None, torch.bfloat16),
]


def poison_allocator(nbytes: int = 1 << 30) -> None:
    torch.empty(nbytes // 4, device="cuda", dtype=torch.float32).fill_(float("nan"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"b{c[0]}-T{c[1]}-H{c[2]}-N{c[5]}-{str(c[7])[6:]}"
                         + ("-packed" if c[6] else ""))
def test_triton_ssd_matches_float64(case):
    from statex_dist.kernels.ssd.triton_ssd import ssd_bwd_triton, ssd_fwd_triton

    b, T, H, P, G, N, cu, dtype = case
    n_seq = len(cu) - 1 if cu else b
    ins = [t.cuda() for t in ssd_inputs(b, T, H, P, G, N, n_states=n_seq, strong=True)]
    ins = [t.to(dtype if i in (0, 3, 4) else torch.float32) for i, t in enumerate(ins)]
    cu_t = torch.tensor(cu, device="cuda", dtype=torch.int32) if cu else None
    ref_in = [t.double().requires_grad_() for t in ins]
    y_r, ht_r = chunk_ssd_torch(*ref_in[:5], 64, ref_in[5], True, cu_t)
    dy, dht = torch.randn_like(y_r).to(dtype), torch.randn_like(ht_r).float()
    ref = [y_r, ht_r, *torch.autograd.grad([y_r, ht_r], ref_in, [dy.double(), dht.double()])]
    poison_allocator()
    y, ht = ssd_fwd_triton(*ins[:5], 64, ins[5], True, cu_t)
    poison_allocator()
    grads = ssd_bwd_triton(dy, dht, *ins[:5], 64, ins[5], cu_t)
    errs = {n: rel_err(a, r) for n, a, r in zip(NAMES, [y, ht, *grads], ref)}
    # dA sums cancelling per-token terms: its error is measured against the size of those terms
    scale = ssd_dA_term_scale(*ref_in[:6], cu_t, dy, dht)
    errs["dA"] = ((grads[2].double() - ref[4]).norm() / scale.norm()).item()
    print(case, {n: f"{e:.1e}" for n, e in errs.items()})
    bad = {n: e for n, e in errs.items() if not e <= TOL[dtype]}
    assert not bad, f"relative errors over tolerance: {bad}"
    assert all(g.dtype == t.dtype and g.shape == t.shape for g, t in zip(grads, ins))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("T", [1, 40, 64, 65])
@pytest.mark.parametrize("N", [16, 64])
def test_triton_ssd_forward_without_state_matches_float64(N, T, dtype):
    """The evaluation path: forward only, no initial state and no final state, at the GPU demo's head shape
    (P = 16); a one-chunk fp32 call of this kind crashed Triton's compiler on 2026-11-30 (the demo's recall
    evaluation, after its training had run)."""
    from statex_dist.kernels.ssd.triton_ssd import ssd_fwd_triton

    ins = [t.cuda() for t in ssd_inputs(2, T, 32, 16, 1, N)]
    ins = [t.to(dtype if i in (0, 3, 4) else torch.float32) for i, t in enumerate(ins)]
    with torch.no_grad():
        y_r, _ = chunk_ssd_torch(*[t.double() for t in ins[:5]], 64, None, False, None)
        poison_allocator()
        y, ht = ssd_fwd_triton(*ins[:5], 64, None, False, None)
    assert ht is None and y.dtype == dtype
    err = rel_err(y, y_r)
    assert err <= TOL[dtype], f"y relative error {err:.1e}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_triton_ssd_kept_states(dtype):
    """``save_states`` through the statex::ssd_fwd custom op on a packed row (its kept buffer sized by the static
    bound): opcheck (the fake's shapes and dtypes of what it keeps, autograd) and outputs and gradients equal to
    those of the recomputing backward bit for bit, on a poisoned allocator."""
    from statex_dist.kernels import ops

    x, dt, A, B, C, _ = (t.cuda() for t in ssd_inputs(1, 300, 8, 64, 1, 128, strong=True))
    x, B, C = (t.to(dtype) for t in (x, B, C))
    dt, A, D = dt.float(), A.float(), torch.randn(8, device="cuda")
    cu = torch.tensor([0, 70, 70, 300], device="cuda", dtype=torch.int32)
    results = []
    for save in (False, True):
        ins = [t.clone().requires_grad_() for t in (x, dt, A, B, C, D)]
        poison_allocator()
        y, _, saved = ops._ssd_fwd_op(*ins, None, cu, 64, False, "triton", save)
        assert len(saved) == save and all(t.isfinite().all() for t in saved)
        poison_allocator()
        results.append((y, *torch.autograd.grad(y.float().square().sum(), ins)))
    assert all(torch.equal(a, b) for a, b in zip(*results))
    args = [t.requires_grad_() for t in (x, dt, A, B, C, D)]
    torch.library.opcheck(ops._ssd_fwd_op, (*args, None, cu, 64, False, "triton", True))
