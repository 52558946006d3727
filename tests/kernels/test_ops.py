"""Dispatch, custom ops (fake + autograd), torch.compile without graph breaks, decode steps."""
import pytest
import torch

from kernel_testing import assert_close, gla_inputs, grads, ssd_inputs
from statex_dist.kernels import ops
from statex_dist.kernels.gla import naive_recurrent_gla
from statex_dist.kernels.ssd import naive_recurrent_ssd


def test_backend_choice_on_cpu():
    assert ops.resolve_backend("gla", "auto", torch.device("cpu")) == "torch"
    for backend in ("fla", "triton"):
        with pytest.raises(RuntimeError, match="CUDA"):
            ops.resolve_backend("gla", backend, torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown kernel backend"):
        ops.resolve_backend("ssd", "cuda", torch.device("cpu"))


def test_backend_logged_once(caplog):
    ops._logged.discard(("ssd", "torch"))
    with caplog.at_level("INFO", logger="statex_dist.kernels.ops"):
        for _ in range(3):
            ops.resolve_backend("ssd", "torch", torch.device("cpu"))
    assert sum("ssd: using the torch backend" in r.message for r in caplog.records) == 1


def test_shape_errors():
    q, k, v, gk, _ = gla_inputs(2, 8, 2, 4, 4, dtype=torch.float32)
    with pytest.raises(ValueError, match="do not match"):
        ops.gla_attention(q, k[..., :2], v, gk)
    with pytest.raises(ValueError, match="B == 1"):
        ops.gla_attention(q, k, v, gk, cu_seqlens=torch.tensor([0, 4, 8]))


def test_gla_custom_op_opcheck():
    q, k, v, gk, h0 = (t.float() for t in gla_inputs(1, 20, 2, 8, 4))
    for t in (q, k, v, gk, h0):
        t.requires_grad_()
    cu = torch.tensor([0, 7, 20], dtype=torch.int32)
    torch.library.opcheck(ops._gla_fwd_op, (q, k, v, gk, None, None, 0.5, True, "torch", False))
    torch.library.opcheck(ops._gla_fwd_op, (q, k, v, gk, torch.cat([h0, h0]), cu, 0.5, True, "torch", False))


def test_custom_ops_without_optional_outputs_backward():
    """No initial state, no final state, no D: the ops return several empty placeholders, which must be distinct
    tensors (torch refuses aliased outputs; this broke the SSD timing on the GPU on 2026-11-30)."""
    x, dt, A, B, C, _ = (t.float().requires_grad_() for t in ssd_inputs(1, 40, 2, 8, 1, 16))
    y, _, _ = ops._ssd_fwd_op(x, dt, A, B, C, None, None, None, 16, False, "torch", False)
    y.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (x, dt, A, B, C))
    q, k, v, gk, _ = (t.float().requires_grad_() for t in gla_inputs(1, 20, 2, 8, 4))
    o, _, _ = ops._gla_fwd_op(q, k, v, gk, None, None, 0.5, False, "torch", False)
    o.sum().backward()
    assert all(t.grad is not None for t in (q, k, v, gk))
    torch.library.opcheck(ops._ssd_fwd_op, (x, dt, A, B, C, None, None, None, 16, False, "torch", False))
    torch.library.opcheck(ops._gla_fwd_op, (q, k, v, gk, None, None, 0.5, False, "torch", False))


@pytest.mark.parametrize("skip", [False, True], ids=["no-D", "D"])
def test_ssd_custom_op_opcheck(skip):
    x, dt, A, B, C, h0 = (t.float().requires_grad_() for t in ssd_inputs(2, 20, 4, 8, 2, 8))
    D = torch.randn(4, requires_grad=True) if skip else None
    torch.library.opcheck(ops._ssd_fwd_op, (x, dt, A, B, C, D, h0, None, 16, True, "torch", False))


def test_ssd_skip_D_is_added_and_differentiated():
    """``D`` adds ``D_h x`` to the output and gets its gradient, on the eager path and through the custom op."""
    x, dt, A, B, C, _ = (t.float().requires_grad_() for t in ssd_inputs(1, 30, 4, 8, 2, 8))
    D = torch.randn(4, requires_grad=True)
    y0, _ = ops.ssd_attention(x, dt, A, B, C, backend="torch")
    w = torch.randn_like(y0)
    want = y0 + D[:, None] * x
    g_want = torch.autograd.grad((want * w).sum(), (x, D))
    y1, _ = ops.ssd_attention(x, dt, A, B, C, D=D, backend="torch")
    y2, _, _ = ops._ssd_fwd_op(x, dt, A, B, C, D, None, None, 16, False, "torch", False)
    for y in (y1, y2):
        assert_close("y", y, want, 1e-6)
        for name, a, r in zip(("dx", "dD"), torch.autograd.grad((y * w).sum(), (x, D)), g_want):
            assert_close(name, a, r, 1e-5)
    with pytest.raises(ValueError, match="D must be"):
        ops.ssd_attention(x, dt, A, B, C, D=torch.ones(3))


def _gla_loss(q, k, v, gk, h0, cu=None):
    o, ht = ops.gla_attention(q, k, v, torch.nn.functional.logsigmoid(gk), initial_state=h0,
                              output_final_state=True, cu_seqlens=cu, backend="torch")
    return o.square().mean() + ht.square().mean()


@pytest.mark.parametrize("packed", [False, True], ids=["batched", "packed"])
def test_gla_compiles_fullgraph(packed):
    B, cu = (1, torch.tensor([0, 30, 70], dtype=torch.int32)) if packed else (2, None)
    q, k, v, gk, h0 = (t.float().requires_grad_() for t in gla_inputs(B, 70, 2, 16, 8))
    if packed:
        h0 = torch.cat([h0, h0]).detach().requires_grad_()
    ins = [q, k, v, gk, h0]
    eager = torch.autograd.grad(_gla_loss(*ins, cu), ins)
    compiled_fn = torch.compile(_gla_loss, fullgraph=True, backend="aot_eager")
    comp = torch.autograd.grad(compiled_fn(*ins, cu), ins)
    for a, r in zip(comp, eager):
        assert_close("grad", a, r, 1e-6)


def test_ssd_compiles_fullgraph():
    ins = [t.float().requires_grad_() for t in ssd_inputs(2, 50, 4, 8, 2, 16)]

    def loss(x, dt, A, B, C, h0):
        y, ht = ops.ssd_attention(x, dt, A, B, C, chunk_size=32, initial_state=h0, output_final_state=True,
                                  backend="torch")
        return y.square().mean() + ht.square().mean()

    eager = torch.autograd.grad(loss(*ins), ins)
    comp = torch.autograd.grad(torch.compile(loss, fullgraph=True, backend="aot_eager")(*ins), ins)
    for a, r in zip(comp, eager):
        assert_close("grad", a, r, 1e-6)


def test_gla_decode_steps_match_full_forward():
    q, k, v, gk, _ = (t.float() for t in gla_inputs(2, 12, 2, 8, 6))
    o_full, ht_full = ops.gla_attention(q, k, v, gk, output_final_state=True)
    o_pre, state = ops.gla_attention(q[:, :9], k[:, :9], v[:, :9], gk[:, :9], output_final_state=True)
    steps = [o_pre]
    for t in range(9, 12):
        o_t, state = ops.gla_attention(q[:, t : t + 1], k[:, t : t + 1], v[:, t : t + 1], gk[:, t : t + 1],
                                       initial_state=state, output_final_state=True)
        steps.append(o_t)
    assert_close("o", torch.cat(steps, 1), o_full, 1e-6)
    assert_close("ht", state, ht_full, 1e-6)


def test_ssd_decode_steps_match_full_forward():
    x, dt, A, B, C, _ = (t.float() for t in ssd_inputs(2, 10, 4, 8, 2, 16))
    y_full, ht_full = ops.ssd_attention(x, dt, A, B, C, output_final_state=True)
    y_ref, _ = naive_recurrent_ssd(x.double(), dt.double(), A.double(), B.double(), C.double())
    assert_close("y", y_full, y_ref, 1e-5)
    ys, state = [], None
    for t in range(10):
        y_t, state = ops.ssd_attention(x[:, t : t + 1], dt[:, t : t + 1], A, B[:, t : t + 1], C[:, t : t + 1],
                                       initial_state=state, output_final_state=True)
        ys.append(y_t)
    assert_close("y", torch.cat(ys, 1), y_full, 1e-5)
    assert_close("ht", state, ht_full, 1e-5)


def test_gla_op_gradients_match_reference():
    q, k, v, gk, h0 = gla_inputs(1, 40, 2, 8, 8)
    ref_in = [t.clone().requires_grad_() for t in (q, k, v, gk, h0)]
    o, ht = naive_recurrent_gla(*ref_in[:4], initial_state=ref_in[4], output_final_state=True)
    ref = grads([o, ht], ref_in)
    ins = [t.float().requires_grad_() for t in (q, k, v, gk, h0)]
    o, ht, _ = ops._gla_fwd_op(*ins, None, 8**-0.5, True, "torch", False)
    for a, r in zip(grads([o, ht], ins), ref):
        assert_close("grad", a, r, 2e-5)
