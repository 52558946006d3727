"""Activation checkpointing: the same gradients, and less memory kept for backward (measured)."""

from __future__ import annotations

import json

import pytest
import torch

from statex_dist.models.loading import build_model, config_from_dict
from statex_dist.parallel.fsdp import apply_activation_checkpointing
from statex_dist.train.memory import saved_activation_bytes
from train_runs import REPO


@pytest.mark.parametrize("family", ["gla", "mamba2"])
def test_checkpointing_saves_memory_and_keeps_gradients(family):
    raw = json.loads((REPO / "configs" / "models" / f"{family}-tiny.json").read_text())
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(3, 500, (2, 128), generator=g)}
    batch["labels"] = torch.roll(batch["input_ids"], -1, 1)
    results = {}
    for mode, k in (("none", 1), ("every_k", 2), ("full", 1)):
        torch.manual_seed(0)
        model = build_model(config_from_dict(raw), device="cpu")
        apply_activation_checkpointing(model, mode, k)
        nbytes = saved_activation_bytes(model, batch)
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results[mode] = (nbytes, grads)
    none, half, full = (results[m][0] for m in ("none", "every_k", "full"))
    print(f"{family}: saved activations none {none / 2**20:.2f} MiB, every 2nd {half / 2**20:.2f} MiB, "
          f"full {full / 2**20:.2f} MiB")
    assert full < half < none
    assert full < 0.5 * none
    for n, gr in results["none"][1].items():
        torch.testing.assert_close(results["full"][1][n], gr, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(results["every_k"][1][n], gr, rtol=1e-5, atol=1e-6)
