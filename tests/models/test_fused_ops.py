"""The fused norm / SwiGLU path (fla's Triton ops, used on CUDA) against our PyTorch modules.

On CPU the models never take the fused path; there we check that the switch and the residual-add form
(``RMSNorm.add_norm``) leave the PyTorch path unchanged, and which fla function the gated norm calls, bound to
that function's real signature. On a GPU the two paths must agree in fp32.
"""
import copy
import inspect

import pytest
import torch

from statex_dist.models import common, gla
from statex_dist.models.common import GatedRMSNorm, RMSNorm, fla_fused, set_fused_ops

from tests.conftest import tiny_model


def _losses_and_grads(model, ids, device):
    model = model.to(device).train()
    out = model(input_ids=ids.to(device), labels=ids.to(device))
    out.loss.backward()
    return out.loss.detach().cpu(), {n: p.grad.detach().cpu() for n, p in model.named_parameters()}


def test_add_norm_matches_add_then_norm():
    torch.manual_seed(0)
    norm = RMSNorm(32)
    norm.weight.data.uniform_(0.5, 1.5)
    x, residual = torch.randn(3, 5, 32), torch.randn(3, 5, 32)
    h, total = norm.add_norm(x, residual)
    assert torch.equal(total, residual + x)
    torch.testing.assert_close(h, norm(residual + x), rtol=0, atol=0)


@pytest.mark.parametrize("per_head", [True, False])
def test_gated_norm_picks_flas_kernel_and_calls_it_by_its_signature(monkeypatch, per_head):
    """GLA's per-head gated norm takes fla's ``rms_norm_gated`` (the kernel fla's GLA uses), Mamba2's grouped one
    ``rmsnorm_fn``; each call must bind to the real fla function's signature and mean the same math."""
    real = {name: fla_fused(name) for name in ("rms_norm_gated", "rmsnorm_fn")}
    if None in real.values():
        pytest.skip("fla does not import here")
    called = []

    def stand_in(name):  # binds the call to fla's real signature, then computes with our PyTorch path
        def fn(*args, **kwargs):
            bound = inspect.signature(real[name]).bind(*args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            assert a["bias"] is None
            gate = a["g"] if name == "rms_norm_gated" else a["z"]
            assert torch.equal(a["weight"], norm.weight) and torch.equal(gate, g)
            called.append(name)
            return GatedRMSNorm.forward(plain, a["x"], gate)
        return fn

    monkeypatch.setattr(common, "use_fused", lambda enabled, x, name: stand_in(name) if enabled and name in real else None)
    torch.manual_seed(0)
    norm = GatedRMSNorm(16, eps=1e-5, norm_before_gate=per_head, group_size=None if per_head else 8)
    norm.weight.data.uniform_(0.5, 1.5)
    plain = set_fused_ops(copy.deepcopy(norm), False)
    x, g = torch.randn(2, 3, 4, 16), torch.randn(2, 3, 4, 16)
    torch.testing.assert_close(norm(x, g), plain(x, g), rtol=0, atol=0)
    assert called == ["rms_norm_gated" if per_head else "rmsnorm_fn"]


def test_gla_gate_is_logsigmoid_over_the_normalizer_rounded_once():
    mixer = tiny_model("gla").model.layers[0].attn
    for dtype in (torch.float32, torch.bfloat16):
        logits = (torch.randn(2, 7, mixer.key_dim) * 4).to(dtype)
        exact = torch.nn.functional.logsigmoid(logits.double()) / mixer.gate_logit_normalizer
        gk = mixer.log_decay(logits)
        assert gk.dtype == dtype
        torch.testing.assert_close(gk, exact.to(dtype), rtol=0, atol=0) if dtype == torch.bfloat16 else \
            torch.testing.assert_close(gk.double(), exact, rtol=1e-6, atol=1e-7)


def test_gla_gate_calls_flas_logsigmoid_by_its_signature(monkeypatch):
    """On CUDA the gate is fla's fused ``logsigmoid(x, temperature)``: the call must bind to its real signature
    with the normalizer as the temperature."""
    real = fla_fused("logsigmoid")
    if real is None:
        pytest.skip("fla does not import here")
    temperatures = []

    def stand_in(*args, **kwargs):
        a = inspect.signature(real).bind(*args, **kwargs).arguments
        temperatures.append(a["temperature"])
        return (torch.nn.functional.logsigmoid(a["x"].float()) / a["temperature"]).to(a["x"].dtype)

    monkeypatch.setattr(gla, "use_fused",
                        lambda enabled, x, name: stand_in if enabled and name == "logsigmoid" else None)
    mixer = tiny_model("gla").model.layers[0].attn
    plain = set_fused_ops(copy.deepcopy(mixer), False)
    logits = torch.randn(2, 7, mixer.key_dim, dtype=torch.bfloat16)
    torch.testing.assert_close(mixer.log_decay(logits), plain.log_decay(logits), rtol=0, atol=0)
    assert temperatures == [mixer.gate_logit_normalizer] and mixer.gate_logit_normalizer != 1


def test_cpu_models_ignore_the_fused_switch(family):
    model = tiny_model(family)
    ids = torch.randint(0, model.config.vocab_size, (2, 24))
    plain = set_fused_ops(copy.deepcopy(model), False)
    switches = [m.fused for m in plain.modules() if hasattr(m, "fused")]
    assert switches and not any(switches)
    (la, ga), (lb, gb) = (_losses_and_grads(m, ids, "cpu") for m in (model, plain))
    assert torch.equal(la, lb)
    assert all(torch.equal(ga[n], gb[n]) for n in ga)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the fused ops are Triton kernels)")
def test_fused_ops_match_pytorch_on_gpu(family):
    if fla_fused("rms_norm") is None:
        pytest.skip("fla's fused ops do not import here")
    model = tiny_model(family)
    ids = torch.randint(0, model.config.vocab_size, (2, 96))
    plain = set_fused_ops(copy.deepcopy(model), False)
    (la, ga), (lb, gb) = (_losses_and_grads(m, ids, "cuda") for m in (model, plain))
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-5)
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], rtol=1e-4, atol=1e-5, msg=n)
