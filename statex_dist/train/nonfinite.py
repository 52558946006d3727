"""Find where a non-finite loss comes from: the first module, in execution order, whose output holds a NaN or
an infinity. Runs only after a step was skipped (one extra forward without gradients), so a user's log says
"backbone.layers.3.mixer.norm (GatedRMSNorm), inputs already non-finite" instead of only "loss nan"."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn


def _tensors(x):
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for item in x:
            yield from _tensors(item)
    elif isinstance(x, dict):
        for item in x.values():
            yield from _tensors(item)
    elif hasattr(x, "to_tuple"):  # transformers ModelOutput
        yield from _tensors(x.to_tuple())


def _finite(x) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in _tensors(x) if t.is_floating_point())


@torch.no_grad()
def first_nonfinite_module(model: nn.Module, forward: Callable[[], object]) -> str | None:
    """Run ``forward()`` with a hook on every module of ``model``; return ``"name (Class), inputs finite"``
    (or ``"..., inputs already non-finite"``: then the cause is code between modules, e.g. a kernel call inside
    the module's parent) for the first module whose output is not finite, or None when all outputs are finite.
    Every rank of a sharded model must call it together (the forward runs the model's collectives)."""
    found: list[str] = []

    def hook(name):
        def check(module, inputs, output):
            if not found and not _finite(output):
                state = "inputs finite" if _finite(inputs) else "inputs already non-finite"
                found.append(f"{name} ({type(module).__name__}), {state}")
        return check

    # the model itself last (its hook fires after all others): its output holds the loss, which no submodule makes
    handles = [m.register_forward_hook(hook(n or "the model's output (logits or loss)"))
               for n, m in model.named_modules()]
    try:
        forward()
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None
