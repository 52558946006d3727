"""Our Mamba2 SSD Triton kernels (ssd/triton_ssd.py) under TRITON_INTERPRET=1 on CPU, against the PyTorch
chunked SSD in float64.

Run by test_ssd_triton_interpret.py in fresh processes (the interpreter is chosen when the kernels are
decorated, so it must be set before they are imported): ``interpret_ssd_cases.py [NAME,...]`` runs the named
cases (default: all, plus ``custom-op`` and ``kept-states``) and prints one line ``RESULTS {case: {"err":
{tensor: relative error}, "tol": tolerance, "dtype_errors": [...]}}``.

The interpreter costs about 1 s per 64-token chunk for a forward + backward at these widths.
"""
import json
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_testing import CountedLaunches, rel_err, ssd_inputs, unwritten_is_nan  # noqa: E402

TOL_FP32 = 1e-4
TOL_BF16 = 2e-2
# name: (b, T, H, P, G, N, extra); T is never a multiple of 64 (the kernels' chunk). The last two cases cover
# several chunks per sequence, N over one 64-column block and P, N that are not powers of two (masked tiles).
# The test runs the even and odd entries of [*CASES, "custom-op", "kept-states"] in two processes.
CASES = {
    "b1-T50-H4-P8-G2-N16-packed-strong": (1, 50, 4, 8, 2, 16, {"cu": [0, 24, 25, 50], "strong": True}),
    "b2-T37-H4-P8-G1-N16-states": (2, 37, 4, 8, 1, 16, {"dcb_heads": 2}),  # C B^T's gradient in 2 runs of 2 heads
    "b1-T21-H4-P8-G1-N32-bf16-nostate": (1, 21, 4, 8, 1, 32, {"bf16": True, "no_state": True}),
    "b1-T75-H4-P8-G2-N32-states": (1, 75, 4, 8, 2, 32, {}),
    "b1-T160-H4-P24-G2-N80-packed-3seq": (1, 160, 4, 24, 2, 80, {"cu": [0, 70, 71, 160], "strong": True}),
    "b2-T150-H2-P16-G1-N128-bf16": (2, 150, 2, 16, 1, 128, {"bf16": True}),
    # 128-token chunks instead of 64 (16-bit inputs only; fp32 ones stay at 64, the second case)
    "L128-b1-T300-H2-P16-G1-N64-packed-bf16": (1, 300, 2, 16, 1, 64, {"cu": [0, 12, 13, 140, 300], "chunk": 128,
                                                                    "bf16": True, "strong": True}),
    "L128-b1-T150-H2-P16-G1-N32-fp32": (1, 150, 2, 16, 1, 32, {"chunk": 128}),  # runs at 64 (test_ssd_launch.py)
    # the earlier path through the GLA kernels (ssd/triton_gla.py), still registered as impl "triton_gla"
    "via-gla-b2-T37-H4-P8-G1-N16-states": (2, 37, 4, 8, 1, 16, {"via_gla": True}),
}
NAMES = ["y", "ht", "dx", "ddt", "dA", "dB", "dC", "dh0"]


def _dtype_errors(grads, inputs):
    """Names of gradients whose dtype or shape differs from their input's."""
    return [f"{n}: {tuple(g.shape)} {g.dtype} vs {tuple(t.shape)} {t.dtype}"
            for n, g, t in zip(NAMES[2:], grads, inputs)
            if g is not None and t is not None and (g.dtype != t.dtype or g.shape != t.shape)]


def run_case(b, T, H, P, G, N, extra):
    from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch
    from statex_dist.kernels.ssd.triton_gla import ssd_bwd_via_gla, ssd_fwd_via_gla
    from statex_dist.kernels.ssd import triton_ssd
    from statex_dist.kernels.ssd.triton_ssd import ssd_bwd_triton, ssd_fwd_triton

    cu = extra.get("cu")
    ref_in = list(ssd_inputs(b, T, H, P, G, N, n_states=len(cu) - 1 if cu else b, strong=extra.get("strong", False)))
    cu = torch.tensor(cu, dtype=torch.int32) if cu else None
    no_state = extra.get("no_state", False)
    if no_state:
        ref_in[5] = None
    # kernel inputs: fp32, or x, B, C in bf16 with dt, A (and the state) in fp32 as in the models
    low = torch.bfloat16 if extra.get("bf16") else torch.float32
    ins = [None if t is None else t.to(low if i in (0, 3, 4) else torch.float32) for i, t in enumerate(ref_in)]
    ref_in = [None if t is None else t.double().requires_grad_() for t in ins]  # the reference sees what we see

    y_r, ht_r = chunk_ssd_torch(*ref_in[:5], 16, ref_in[5], not no_state, cu)
    g = torch.Generator().manual_seed(1)
    # cotangents rounded to the dtypes the kernels get (y's dtype, fp32 states), so both sides see the same
    dy = torch.randn(y_r.shape, generator=g, dtype=torch.float64).to(ins[0].dtype).double()
    dht = None if no_state else torch.randn(ht_r.shape, generator=g, dtype=torch.float64).float().double()
    want = [t for t in ref_in if t is not None]
    ref_grads = iter(torch.autograd.grad([y_r] + ([ht_r] if dht is not None else []), want,
                                         [dy] + ([dht] if dht is not None else [])))
    ref = [y_r, ht_r] + [None if t is None else next(ref_grads) for t in ref_in]

    fwd, bwd = (ssd_fwd_via_gla, ssd_bwd_via_gla) if extra.get("via_gla") else (ssd_fwd_triton, ssd_bwd_triton)
    triton_ssd.CHUNK = extra.get("chunk", 64)
    triton_ssd.DCB_HEADS = extra.get("dcb_heads", 16)
    try:
        y, ht = fwd(*ins[:5], 64, ins[5], not no_state, cu)
        grads = bwd(dy.to(y.dtype), None if dht is None else dht.float(), *ins[:5], 64, ins[5], cu)
    finally:
        triton_ssd.CHUNK, triton_ssd.DCB_HEADS = 64, 16
    got = [y, ht, *grads]
    dtype_errors = _dtype_errors(grads, ins)
    if y.dtype != ins[0].dtype or y.shape != ins[0].shape:
        dtype_errors.append(f"y: {tuple(y.shape)} {y.dtype}")
    return {"err": {n: rel_err(a, r) for n, a, r in zip(NAMES, got, ref) if a is not None and r is not None},
            "tol": TOL_BF16 if extra.get("bf16") else TOL_FP32, "dtype_errors": dtype_errors}


def run_kept_states():
    """``save_states``: the forward keeps its chunk states, the backward walks only in reverse. Through the custom
    op on a packed row (the buffer sized by the static bound) and a plain batch, with the skip D: the kept buffer
    has the fake tensor's shape and dtype and is fully written (a packed row's spare rows zeroed), and the outputs
    and every gradient equal the recomputing path's bit for bit. Values: 0 when right."""
    from statex_dist.kernels import ops
    from statex_dist.kernels.ssd import triton_ssd

    real_resolve = ops.resolve_backend
    ops.resolve_backend = lambda op, backend, device: real_resolve(op, backend, torch.device("cuda"))
    out = {}
    try:
        # several chunks per sequence (one would leave the kept states unused)
        for name, (b, T, cu) in {"packed": (1, 200, [0, 7, 7, 140, 200]), "batch": (2, 150, None)}.items():
            x, dt, A, B, C, _ = (t.float() for t in ssd_inputs(b, T, 4, 8, 2, 16))
            D = torch.randn(4, generator=torch.Generator().manual_seed(5))
            cu = torch.tensor(cu, dtype=torch.int32) if cu else None
            results, walks, w = [], [], None
            for save in (False, True):
                ins = [t.clone().requires_grad_() for t in (x, dt, A, B, C, D)]
                walk = triton_ssd.ssd_state_walk_kernel = CountedLaunches(triton_ssd.ssd_state_walk_kernel)
                try:
                    with unwritten_is_nan():
                        y, _, saved = ops._ssd_fwd_op(*ins[:5], ins[5], None, cu, 64, False, "triton", save)
                    if save:
                        fake = triton_ssd.kept_states_buffer(x, B, cu)
                        out[f"{name}-shape"] = float([(t.shape, t.dtype) for t in saved] != [(fake.shape, fake.dtype)])
                        out[f"{name}-finite"] = float(not all(t.isfinite().all() for t in saved))
                    w = torch.randn_like(y) if w is None else w
                    results.append((y, *torch.autograd.grad((y * w).sum(), ins)))
                finally:
                    triton_ssd.ssd_state_walk_kernel = walk.kernel
                walks.append(walk.launches)
            out[f"{name}-equal"] = float(not all(torch.equal(p, q) for p, q in zip(*results)))
            out[f"{name}-walks"] = 0.0 if walks == [3, 2] else float(sum(walks))  # fwd + (fwd again) + reverse
    finally:
        ops.resolve_backend = real_resolve
    return {"err": out, "tol": 0.0, "dtype_errors": []}


def run_custom_op():
    """``ops.ssd_attention(..., backend="triton")`` with autograd: the statex::ssd_fwd/ssd_bwd custom ops with
    impl 'triton'. ``resolve_backend`` refuses CPU tensors for triton, so it is told the device is CUDA (the
    rest of its logic, and everything after it, runs as on a GPU)."""
    from statex_dist.kernels import ops
    from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

    real_resolve = ops.resolve_backend
    ops.resolve_backend = lambda op, backend, device: real_resolve(op, backend, torch.device("cuda"))
    try:
        assert ops.resolve_backend("ssd", "auto", torch.device("cpu")) == "triton", "auto does not pick triton"
        x, dt, A, B, C, h0 = ssd_inputs(1, 40, 4, 8, 2, 16)
        D = torch.randn(4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        a = [t.float().requires_grad_() for t in (x, dt, A, B, C, h0, D)]
        r = [t.clone().requires_grad_() for t in (x, dt, A, B, C, h0, D)]
        y1, ht1 = ops.ssd_attention(*a[:5], D=a[6], initial_state=a[5], output_final_state=True, backend="triton")
    finally:
        ops.resolve_backend = real_resolve
    y2, ht2 = chunk_ssd_torch(*r[:5], 16, r[5], True)
    y2 = y2 + r[6][:, None] * r[0]  # the skip D_h x, fused into the Triton kernels
    w = torch.randn(y2.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    g1 = torch.autograd.grad((y1 * w.float()).sum() + ht1.sum(), a)
    g2 = torch.autograd.grad((y2 * w).sum() + ht2.sum(), r)
    errs = {"y": rel_err(y1, y2), "ht": rel_err(ht1, ht2)}
    errs.update({n: rel_err(p, q) for n, p, q in zip(NAMES[2:] + ["dD"], g1, g2)})
    return {"err": errs, "tol": TOL_FP32, "dtype_errors": _dtype_errors(g1[:6], a[:6])}


if __name__ == "__main__":
    from statex_dist.kernels.gla import triton_fwd

    assert type(triton_fwd.gla_state_kernel).__name__ == "InterpretedFunction", "interpreter not active"
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else [*CASES, "custom-op", "kept-states"]
    special = {"custom-op": run_custom_op, "kept-states": run_kept_states}
    results = {name: (special[name]() if name in special else run_case(*CASES[name])) for name in names}
    print("RESULTS " + json.dumps(results))
