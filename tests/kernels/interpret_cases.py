"""Our Triton GLA kernels under TRITON_INTERPRET=1 on CPU, against the PyTorch chunked reference.

Run by test_triton_interpret.py in a fresh process (the interpreter is chosen when the kernels are decorated,
so it must be set before they are imported). Prints one JSON object: case -> {tensor: relative error}.
"""
import json
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_testing import CountedLaunches, gla_inputs, rel_err, unwritten_is_nan  # noqa: E402

# name: (B, T, H, K, V, chunk_size, block_size, extra)
CASES = {
    "B2-T45-H2-K20-V24-C32-BT16-states": (2, 45, 2, 20, 24, 32, 16, {}),
    "B1-T53-H1-K16-V32-C32-BT16-packed": (1, 53, 1, 16, 32, 32, 16, {"cu": [0, 7, 7, 40, 53]}),
    "B1-T40-H2-K16-V16-C16-BT16-nostate": (1, 40, 2, 16, 16, 16, 16, {"no_state": True}),
    "B1-T37-H1-K32-V16-C32-BT16-strong": (1, 37, 1, 32, 16, 32, 16, {"strong": True}),
    # 32-row blocks: 16-row tiles inside them, 32 x 32 matmul tiles between them (both pair-kernel paths)
    "B1-T70-H1-K16-V16-C64-BT32-strong": (1, 70, 1, 16, 16, 64, 32, {"strong": True}),
    # bf16 inputs take their tiles from chunk_triton.LAUNCH (fp32 ones do not): tiles far
    # smaller than the head, so every kernel loops over several key/value tiles and row steps
    "B1-T150-H2-K40-V48-C64-bf16-launch": (1, 150, 2, 40, 48, 64, None, {"bf16": True, "launch": "small"}),
    # ... and the state terms of dq and dk in two launches (LAUNCH's dqk "split")
    "B2-T150-H1-K40-V48-C128-bf16-launch": (2, 150, 1, 40, 48, 128, None, {"bf16": True, "launch": "large",
                                                                           "split": True}),
}
# the LAUNCH entry of the *-launch cases (for the class named by "launch"), and their tolerance: the outputs and
# gradients come back in bf16
SMALL_TILES = dict(walk=dict(BK=16, BV=32, rows=16, num_warps=4, num_stages=2),
                   dstate=dict(BK=32, BV=16, rows=32, num_warps=4, num_stages=2),
                   out=dict(BK=16, BV=16, num_warps=4, num_stages=2),
                   dv=dict(BK=32, BV=16, num_warps=4, num_stages=2),
                   dqk=dict(BK=16, BV=32, num_warps=4, num_stages=2),
                   prep=dict(BK=16, num_warps=4, num_stages=2),
                   intra=dict(BK=16, num_warps=4, num_stages=2),
                   intra_offdiag=dict(BK=32, num_warps=4, num_stages=2),
                   dscore=dict(BV=16, num_warps=4, num_stages=2),
                   dqk_offdiag=dict(BK=16, num_warps=4, num_stages=2),
                   dqk_intra=dict(BK=16, num_warps=4, num_stages=2),
                   dg=dict(BK=16, BV=32, num_warps=4, num_stages=2))
TOL_BF16 = 2e-2
NAMES = ["o", "ht", "dq", "dk", "dv", "dg", "dh0"]


def run_case(B, T, H, K, V, CH, BT, extra):
    from statex_dist.kernels.gla.chunk_torch import chunk_gla_torch
    from statex_dist.kernels.gla.chunk_triton import chunk_gla_bwd_triton, chunk_gla_fwd_triton

    from statex_dist.kernels.gla import chunk_triton

    saved_launch = chunk_triton.LAUNCH
    cu = extra.get("cu")
    n = len(cu) - 1 if cu else B
    q, k, v, gk, h0 = (t.float() for t in gla_inputs(B, T, H, K, V, decay="strong" if extra.get("strong") else "gla",
                                                      n_states=n))
    if extra.get("bf16"):  # the reference sees the same rounded inputs
        q, k, v, gk = (t.bfloat16().float() for t in (q, k, v, gk))
    if extra.get("launch"):
        tiles = dict(SMALL_TILES, dqk=dict(SMALL_TILES["dqk"], split=True)) if extra.get("split") else SMALL_TILES
        chunk_triton.LAUNCH = dict(chunk_triton.LAUNCH, **{extra["launch"]: tiles})
    cu = torch.tensor(cu, dtype=torch.int32) if cu else None
    if extra.get("no_state"):
        h0 = None
    scale = 0.3
    ins = [t.clone().requires_grad_() for t in (q, k, v, gk)] + ([h0.clone().requires_grad_()] if h0 is not None else [])
    o_r, ht_r = chunk_gla_torch(*ins[:4], scale, ins[4] if h0 is not None else None, True, cu)
    do = torch.randn_like(o_r)
    dht = None if extra.get("no_state") else torch.randn_like(ht_r)
    outs = [o_r] + ([ht_r] if dht is not None else [])
    ref = [o_r, ht_r, *torch.autograd.grad(outs, ins, [do] + ([dht] if dht is not None else []))]
    if extra.get("bf16"):
        q, k, v, gk, do = (t.bfloat16() for t in (q, k, v, gk, do))
    o, ht = chunk_gla_fwd_triton(q, k, v, gk, scale, h0, True, cu, CH, BT)
    grads = chunk_gla_bwd_triton(do, dht, q, k, v, gk, scale, h0, cu, CH, BT)
    tiles = chunk_triton.Tiles.pick(K, V, CH, BT, q.dtype)
    if extra.get("launch"):  # the case must have run on SMALL_TILES
        assert tiles.launch["walk"] == dict(BK=16, BV=32, BT=16, num_warps=4, num_stages=2), tiles
        assert tiles.launch["dqk_intra"]["BK"] == 16 and tiles.launch["dg"]["BV"] == 32, tiles
        assert tiles.launch["dqk"].get("split", False) == extra.get("split", False), tiles
    chunk_triton.LAUNCH = saved_launch
    got = [o, ht, *grads]
    return {name: rel_err(a, r) for name, a, r in zip(NAMES, got, ref) if a is not None and r is not None}


def run_custom_op():
    """The statex::gla_fwd custom op with impl='triton': forward and autograd, the final state's gradient
    included (the backward then recomputes the states)."""
    from statex_dist.kernels import ops
    from statex_dist.kernels.gla.chunk_torch import chunk_gla_torch

    q, k, v, gk, h0 = (t.float() for t in gla_inputs(1, 30, 2, 16, 16))
    a = [t.clone().requires_grad_() for t in (q, k, v, gk, h0)]
    b = [t.clone().requires_grad_() for t in (q, k, v, gk, h0)]
    o1, ht1, saved = ops._gla_fwd_op(*a, None, 0.25, True, "triton", True)
    assert [t.shape for t in saved] == [(30, 2, 64)], saved  # the chunk scores only: a final state was asked for
    o2, ht2 = chunk_gla_torch(*b[:4], 0.25, b[4], True)
    w = torch.randn_like(o1)
    g1 = torch.autograd.grad((o1 * w).sum() + ht1.sum(), a)
    g2 = torch.autograd.grad((o2 * w).sum() + ht2.sum(), b)
    return {"o": rel_err(o1, o2), "ht": rel_err(ht1, ht2),
            **{f"d{i}": rel_err(x, y) for i, (x, y) in enumerate(zip(g1, g2))}}


def run_saved_states():
    """``save_states``: the forward keeps its chunk states, the backward skips the prep and walk kernels. Through
    the custom op on a packed row (the per-chunk buffers sized by the static bound) and a plain batch: the saved
    buffers have the fake tensors' shapes and are fully written (a packed row's spare chunk rows zeroed: opcheck
    compares them between eager and compiled runs), and every gradient equals the recomputing backward's bit for bit."""
    from statex_dist.kernels import ops
    from statex_dist.kernels.gla import chunk_triton

    out = {}
    # several 64-token chunks per sequence: with one, the states and the decayed q and k would not matter
    for name, (B, T, cu) in {"packed": (1, 200, [0, 7, 7, 140, 200]), "batch": (2, 150, None)}.items():
        q, k, v, gk, _ = (t.float() for t in gla_inputs(B, T, 2, 16, 16))
        cu = torch.tensor(cu, dtype=torch.int32) if cu else None
        grads, walks, w = [], [], None
        for save in (False, True):
            ins = [t.clone().requires_grad_() for t in (q, k, v, gk)]
            walk = chunk_triton.gla_state_kernel = CountedLaunches(chunk_triton.gla_state_kernel)
            try:
                with unwritten_is_nan():
                    o, _, saved = ops._gla_fwd_op(*ins, None, cu, 0.25, False, "triton", save)
                out[f"{name}-finite"] = max(out.get(f"{name}-finite", 0.0),
                                            0.0 if all(t.isfinite().all() for t in saved) else 1.0)
                fake = ops.gla_forward_buffers(q, k, v, cu, 64, states=save)
                assert [(t.shape, t.dtype) for t in saved] == [(t.shape, t.dtype) for t in fake], (saved, fake)
                w = torch.randn_like(o) if w is None else w
                grads.append(torch.autograd.grad((o * w).sum(), ins))
            finally:
                chunk_triton.gla_state_kernel = walk.kernel
            walks.append(walk.launches)
        out[f"{name}-equal"] = 0.0 if all(torch.equal(x, y) for x, y in zip(*grads)) else 1.0
        out[f"{name}-walks"] = 0.0 if walks == [2, 1] else float(sum(walks))  # the backward walked again or not
    return out


if __name__ == "__main__":
    from statex_dist.kernels.gla import triton_fwd

    assert type(triton_fwd.gla_state_kernel).__name__ == "InterpretedFunction", "interpreter not active"
    results = {name: run_case(*spec) for name, spec in CASES.items()}
    results["custom-op"] = run_custom_op()
    results["saved-states"] = run_saved_states()
    print("RESULTS " + json.dumps(results))
