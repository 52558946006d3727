"""Activation memory of one forward, measured as the bytes autograd keeps for backward.

Used to show what activation checkpointing saves on any device (on GPU the trainer also logs the allocator's
peak). Tensors are counted once per storage; a checkpointed block keeps only its input, which is counted too.
"""

from __future__ import annotations

import torch


def saved_activation_bytes(model: torch.nn.Module, batch: dict) -> int:
    storages: dict[int, int] = {}
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(input_ids=batch["input_ids"], shift_labels=batch["labels"], loss_reduction="sum")
    # A checkpointed block keeps its input alive for the recomputation; count those inputs as well.
    for block in model.backbone_module.layers:
        kept = getattr(block, "_statex_ac_input", None)
        if kept is not None:
            storages[kept.untyped_storage().data_ptr()] = kept.untyped_storage().nbytes()
    out.loss.backward()
    return sum(storages.values())
