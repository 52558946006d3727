"""first_nonfinite_module: the first module (in execution order) whose output is not finite, and whether its
inputs already were (then the NaN came from code between modules, such as a kernel call in the parent)."""

import torch
import torch.nn as nn

from statex_dist.train.nonfinite import first_nonfinite_module


class Parent(nn.Module):
    def __init__(self, poison_between: bool):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
        self.poison_between = poison_between

    def forward(self, x):
        h = self.a(x)
        if self.poison_between:
            h = h.log() * 0 - torch.inf * 0  # a NaN made by functional code, not by a module
        return self.c(self.b(h))


def test_names_the_module_and_whether_its_inputs_were_finite():
    x = torch.randn(3, 4)
    m = Parent(poison_between=False)
    assert first_nonfinite_module(m, lambda: m(x)) is None
    m.b.register_forward_hook(lambda mod, inp, out: out / 0 * 0)  # 0/0 inside b
    assert first_nonfinite_module(m, lambda: m(x)) == "b (Linear), inputs finite"
    m2 = Parent(poison_between=True)
    assert first_nonfinite_module(m2, lambda: m2(x)) == "b (Linear), inputs already non-finite"
    assert not m2.b._forward_hooks, "the probe's hooks are removed afterwards"
    m3 = Parent(poison_between=False)
    assert first_nonfinite_module(m3, lambda: m3(x) * torch.nan) is None  # outside the model: not its output
    m3.register_forward_hook(lambda mod, inp, out: out * torch.nan)  # e.g. a loss computed in forward
    assert first_nonfinite_module(m3, lambda: m3(x)) == "the model's output (logits or loss) (Parent), inputs finite"
