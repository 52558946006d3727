"""How `apply_fsdp` wraps a model, on one in-process gloo rank: which blocks stay gathered between forward and
backward (``parallel.reshard_after_forward``), and that both settings give the same gradients."""

from __future__ import annotations

import pytest
import torch
from torch.distributed.tensor import DTensor

from tests.conftest import tiny_model
from statex_dist.parallel.dist import destroy_distributed, init_distributed
from statex_dist.parallel.fsdp import apply_fsdp, build_mesh
from statex_dist.train.config import ParallelConfig


@pytest.fixture
def one_rank():
    info = init_distributed("fsdp", device_kind="cpu")
    yield build_mesh(info.world, "cpu", None)
    destroy_distributed()


def _gathered_after_forward(model, input_ids) -> tuple[list[bool], dict[str, torch.Tensor]]:
    """For each block, whether its parameters are still gathered (plain tensors, not DTensor shards) once the
    forward is done; then the gradients of the loss."""
    out = model(input_ids=input_ids, labels=input_ids)
    gathered = [not any(isinstance(p, DTensor) for p in block.parameters())
                for block in model.backbone_module.layers]
    out.loss.backward()
    return gathered, {n: p.grad.full_tensor().clone() for n, p in model.named_parameters()}


def test_reshard_after_forward_false_keeps_blocks_gathered_with_equal_gradients(one_rank):
    input_ids = torch.randint(3, 200, (2, 32), generator=torch.Generator().manual_seed(0))
    runs = {}
    for reshard in (True, False):
        model = tiny_model("gla", seed=0).train()
        apply_fsdp(model, one_rank, "fp32", cpu_offload=False, reshard_after_forward=reshard)
        runs[reshard] = _gathered_after_forward(model, input_ids)
    n = len(runs[True][0])
    # default: every block but the last is freed after its forward (the last is needed at once by backward)
    assert runs[True][0] == [False] * (n - 1) + [True]
    assert runs[False][0] == [True] * n
    for name, grad in runs[True][1].items():
        torch.testing.assert_close(runs[False][1][name], grad, rtol=1e-6, atol=1e-7)


def test_reshard_after_forward_is_rejected_for_other_backends():
    with pytest.raises(ValueError, match="reshard_after_forward is for backend fsdp"):
        ParallelConfig(backend="ddp", reshard_after_forward=False)
