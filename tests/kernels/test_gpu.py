"""Our Triton GLA kernels on a GPU against a float64 PyTorch reference (outputs, final state, all gradients).

Skipped without CUDA. Outputs are poisoned: the caching allocator is filled with NaN before each run, so a
kernel that leaves an element unwritten fails. ``benchmarks/kernels.py`` runs the same checks on the device.
"""
import pytest
import torch

from kernel_testing import rel_err, shape_id
from statex_dist.kernels.gla import chunk_gla_torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

# bound on ||ours - ref|| / ||ref|| per input dtype
# bf16: dg is a reverse cumulative sum of q*dq - k*dk over the sequence, whose terms largely cancel, so it
# carries about 5x the relative error of dq and dk (measured 0.6e-2 to 1.8e-2 at T=1000 on an H200)
TOL = {torch.float32: 1e-4, torch.bfloat16: 1.5e-2, torch.float16: 1.5e-2}
TOL_DG_BF16 = 2.5e-2
NAMES = ["o", "ht", "dq", "dk", "dv", "dg", "dh0"]


def poison_allocator(nbytes: int = 1 << 30) -> None:
    """Leave NaN in freed cached blocks so that unwritten outputs show up as NaN."""
    torch.empty(nbytes // 4, device="cuda", dtype=torch.float32).fill_(float("nan"))


def make_inputs(B, T, H, K, V, dtype, *, n_states=None, strong=False, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k = (torch.randn(B, T, H, K, device="cuda", generator=g).to(dtype) for _ in range(2))
    v = torch.randn(B, T, H, V, device="cuda", generator=g).to(dtype)
    x = torch.randn(B, T, H, K, device="cuda", generator=g)
    gk = (-5 * torch.rand(B, T, H, K, device="cuda", generator=g)) if strong else torch.nn.functional.logsigmoid(x) / 16
    h0 = torch.randn(n_states or B, H, K, V, device="cuda", generator=g)
    do = torch.randn(B, T, H, V, device="cuda", generator=g).to(dtype)
    dht = torch.randn(n_states or B, H, K, V, device="cuda", generator=g)
    return q, k, v, gk.to(dtype), h0, do, dht


def reference(q, k, v, gk, h0, do, dht, cu=None, scale=None):
    ins = [t.double().requires_grad_() for t in (q, k, v, gk, h0)]
    o, ht = chunk_gla_torch(*ins[:4], scale=scale, initial_state=ins[4], output_final_state=True, cu_seqlens=cu)
    grads = torch.autograd.grad([o, ht], ins, [do.double(), dht.double()])
    return [o, ht, *grads]


def ours(q, k, v, gk, h0, do, dht, cu=None, scale=None, chunk_size=None):
    from statex_dist.kernels.gla.chunk_triton import chunk_gla_bwd_triton, chunk_gla_fwd_triton

    poison_allocator()
    o, ht = chunk_gla_fwd_triton(q, k, v, gk, scale, h0, True, cu, chunk_size)
    poison_allocator()
    grads = chunk_gla_bwd_triton(do, dht, q, k, v, gk, scale, h0, cu, chunk_size)
    return [o, ht, *grads]


def check(case: dict) -> dict:
    """Run one case; returns {tensor name: relative error}."""
    dtype = case["dtype"]
    q, k, v, gk, h0, do, dht = make_inputs(*case["shape"], dtype, n_states=case.get("n_states"),
                                           strong=case.get("strong", False))
    cu = case.get("cu")
    if cu is not None:
        cu = torch.tensor(cu, device="cuda", dtype=torch.int32)
    ref = reference(q, k, v, gk, h0, do, dht, cu, case.get("scale"))
    out = ours(q, k, v, gk, h0, do, dht, cu, case.get("scale"), case.get("chunk_size"))
    return {n: rel_err(a, r) for n, a, r in zip(NAMES, out, ref)}


CASES = [
    dict(shape=(2, 300, 3, 80, 96), dtype=torch.float32),
    dict(shape=(2, 300, 3, 80, 96), dtype=torch.float32, strong=True, scale=0.2),
    dict(shape=(2, 300, 3, 80, 96), dtype=torch.bfloat16),
    dict(shape=(1, 600, 2, 64, 128), dtype=torch.bfloat16, cu=[0, 100, 101, 357, 600], n_states=4),
    dict(shape=(1, 600, 2, 64, 128), dtype=torch.float32, cu=[0, 100, 101, 357, 600], n_states=4, chunk_size=128),
    dict(shape=(1, 1000, 4, 256, 512), dtype=torch.bfloat16),
    dict(shape=(1, 1000, 1, 1024, 2048), dtype=torch.bfloat16),
    dict(shape=(1, 777, 1, 1024, 2048), dtype=torch.float32),
    # fp16 keeps the checked launch settings and stores fp32 states (twice the shared memory of bf16's)
    dict(shape=(1, 1000, 4, 256, 512), dtype=torch.float16),
    dict(shape=(1, 1000, 1, 1024, 2048), dtype=torch.float16),
]


def tolerance(dtype: torch.dtype, name: str) -> float:
    return TOL_DG_BF16 if (dtype == torch.bfloat16 and name == "dg") else TOL[dtype]


def case_id(c: dict) -> str:
    B, T, H, K, V = c["shape"]
    tag = shape_id(B=B, T=T, H=H, K=K, V=V) + "-" + str(c["dtype"]).split(".")[-1]
    for key in ("strong", "cu", "chunk_size"):
        if c.get(key):
            tag += f"-{key}"
    return tag


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_triton_gla_matches_float64(case):
    errs = check(case)
    print(case_id(case), {n: f"{e:.1e}" for n, e in errs.items()})
    bad = {n: e for n, e in errs.items() if not e <= tolerance(case["dtype"], n)}
    assert not bad, f"relative errors over tolerance: {bad}"


@pytest.mark.parametrize("save_states", [False, True], ids=["scores", "states"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_triton_custom_op_opcheck(dtype, save_states):
    """statex::gla_fwd with the Triton impl: its fake registration (the shapes and dtypes of what it saves,
    ``layout.gla_forward_buffers``) matches what the kernels return, and autograd is registered. With
    ``save_states`` (no final state: they are kept only then) on a packed row, whose per-chunk buffers have the
    static bound's size."""
    from statex_dist.kernels import ops

    q, k, v, gk, h0, _, _ = make_inputs(1, 200, 2, 64, 128, dtype)
    if save_states:
        args = [t.requires_grad_() for t in (q, k, v, gk)]
        cu = torch.tensor([0, 70, 70, 200], device=q.device, dtype=torch.int32)
        torch.library.opcheck(ops._gla_fwd_op, (*args, None, cu, 0.5, False, "triton", True))
    else:
        args = [t.requires_grad_() for t in (q, k, v, gk, h0)]
        torch.library.opcheck(ops._gla_fwd_op, (*args, None, 0.5, True, "triton", False))
