"""The fused ZeRO-1/2 gradient checks (statex_dist/parallel/deepspeed_checks.py) in one process with bf16, on
DeepSpeed's accelerator (the CPU in CI, a GPU on the device machine): the norm equals DeepSpeed's own, a NaN
gradient still skips the step without DeepSpeed's per-tensor overflow pass, and clean steps update the weights
as DeepSpeed's own code does."""

from __future__ import annotations

import pytest
import torch

deepspeed = pytest.importorskip("deepspeed")

from statex_dist.parallel.deepspeed_checks import CHECKED_VERSIONS, _unsupported, fuse_zero_grad_checks  # noqa: E402
from statex_dist.parallel.dist import destroy_distributed, init_distributed  # noqa: E402

pytestmark = [
    pytest.mark.dist,
    pytest.mark.skipif(not deepspeed.__version__.startswith(CHECKED_VERSIONS),
                       reason=f"DeepSpeed {deepspeed.__version__}: the fused checks apply to {CHECKED_VERSIONS} only "
                              "(the engine then keeps DeepSpeed's own)"),
]


@pytest.fixture(scope="module", autouse=True)
def one_rank_group():
    from deepspeed.accelerator import get_accelerator

    init_distributed("deepspeed", "cuda" if get_accelerator().device_name() == "cuda" else "cpu")
    yield
    destroy_distributed()


def _engine(fused: bool, stage: int = 2):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
                                torch.nn.Tanh(), torch.nn.Linear(64, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    cfg = {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "gradient_clipping": 0.5,
           "bf16": {"enabled": True}, "zero_optimization": {"stage": stage}, "steps_per_print": 10 ** 9}
    engine, *_ = deepspeed.initialize(model=model, optimizer=opt, config=cfg, dist_init_required=False)
    if fused:
        assert fuse_zero_grad_checks(engine.optimizer) is None
    return engine


def _step(engine, seed: int, poison: bool = False) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, generator=g).to(engine.device, torch.bfloat16)
    handle = None
    if poison:  # one gradient NaN, the loss finite: only a gradient check can catch it
        handle = engine.module[2].weight.register_hook(lambda grad: grad * float("nan"))
    engine.backward(engine(x).float().pow(2).sum() * 10)
    if handle is not None:
        handle.remove()
    engine.step()


def _master(engine) -> torch.Tensor:
    return torch.cat([p.detach().clone() for p in engine.optimizer.single_partition_of_fp32_groups])


def test_fused_norm_equals_deepspeeds_own():
    engine = _engine(fused=False)
    engine.backward(engine(torch.ones(1, 16, dtype=torch.bfloat16, device=engine.device)).float().pow(2).sum())
    opt = engine.optimizer
    grads, params = opt.averaged_gradients[0], opt.params_in_partition[0]
    own = opt.get_grad_norm_direct(grads, params)
    assert fuse_zero_grad_checks(opt) is None
    fused = opt.get_grad_norm_direct(grads, params)
    exact = torch.stack([g.double().norm() for g in grads]).norm()
    assert fused.item() == pytest.approx(own.item(), rel=1e-6) == pytest.approx(exact.item(), rel=1e-6)
    assert float(own) > 0


def test_nan_gradient_skips_the_step_without_the_per_tensor_pass():
    engine = _engine(fused=True)
    opt = engine.optimizer
    calls = []
    opt.has_overflow_partitioned_grads_serial = lambda: calls.append(1)  # DeepSpeed's own pass: must not run
    _step(engine, 0)
    assert engine.was_step_applied()
    before = _master(engine)
    _step(engine, 1, poison=True)
    assert not engine.was_step_applied() and engine.get_global_grad_norm() == float("inf")
    assert torch.equal(_master(engine), before)  # weights untouched, no NaN in them or in AdamW's moments
    _step(engine, 2)
    assert engine.was_step_applied() and torch.isfinite(_master(engine)).all()
    assert not torch.equal(_master(engine), before) and calls == []


def test_clean_steps_match_deepspeeds_own_checks():
    runs = []
    for fused in (False, True):
        engine = _engine(fused)
        norms = []
        for seed in range(4):
            _step(engine, seed)
            norms.append(float(engine.get_global_grad_norm()))
        runs.append((norms, _master(engine)))
    (own_norms, own_w), (fused_norms, fused_w) = runs
    assert fused_norms == pytest.approx(own_norms, rel=1e-5) and max(own_norms) > 0.5  # clipping is active
    torch.testing.assert_close(fused_w, own_w, rtol=1e-5, atol=1e-6)


def test_what_it_refuses():
    engine = _engine(fused=False)
    assert "written against" in _unsupported(engine.optimizer, "0.20.0")
    assert "is not DeepSpeedZeroOptimizer" in _unsupported(torch.optim.SGD([torch.zeros(1, requires_grad=True)]),
                                                   deepspeed.__version__)
    engine3 = _engine(fused=False, stage=3)
    assert "is not DeepSpeedZeroOptimizer" in fuse_zero_grad_checks(engine3.optimizer)
