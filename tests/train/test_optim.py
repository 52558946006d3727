"""Parameter groups and schedules: decay only on >= 2-D weights, expanded vs inherited, warmup/freeze/decay."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from statex_dist.expansion.apply import is_expanded_param, plan_on_meta
from statex_dist.expansion.plan import ExpansionPlan
from statex_dist.models.loading import config_from_dict
from statex_dist.train.config import OptimConfig, ScheduleConfig
from statex_dist.train.optim import GroupSpec, group_lr, param_groups

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("family", ["gla", "mamba2"])
def test_groups_split_expanded_and_decay(family):
    base = config_from_dict(json.loads((REPO / "configs" / "models" / f"{family}-tiny.json").read_text()))
    plan = ExpansionPlan(layers="0,2", gla_heads=1, mamba2_state_size=32)
    model = plan_on_meta(base, plan)
    groups, specs = param_groups(model, model.config, OptimConfig(weight_decay=0.1))
    names = {id(p): n for n, p in model.named_parameters()}
    seen = set()
    for g, spec in zip(groups, specs):
        for p in g["params"]:
            name = names[id(p)]
            seen.add(name)
            assert (p.ndim >= 2) == spec.decay, name
            assert g["weight_decay"] == (0.1 if spec.decay else 0.0)
            assert (spec.kind == "expanded") == is_expanded_param(model.config, name), name
            if spec.kind == "expanded":
                assert ".layers.0." in name or ".layers.2." in name
    assert seen == set(names.values())
    assert {s.kind for s in specs} == {"expanded", "inherited"}


def test_cosine_schedule_values():
    optim, sched = OptimConfig(lr=1.0), ScheduleConfig(kind="cosine", warmup_steps=10, min_lr_ratio=0.1)
    spec = GroupSpec("inherited_decay", "inherited", True)
    lrs = [group_lr(spec, s, 110, optim, sched) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_wsd_and_constant():
    optim = OptimConfig(lr=2.0)
    spec = GroupSpec("inherited_decay", "inherited", True)
    wsd = ScheduleConfig(kind="wsd", warmup_steps=5, decay_frac=0.2, min_lr_ratio=0.0)
    lrs = [group_lr(spec, s, 100, optim, wsd) for s in range(100)]
    assert lrs[4] == 2.0 and lrs[50] == 2.0 and lrs[79] == 2.0
    assert lrs[80] < 2.0 and lrs[99] == pytest.approx(0.0)
    const = ScheduleConfig(kind="constant", warmup_steps=4)
    assert [group_lr(spec, s, 100, optim, const) for s in (0, 3, 50, 99)] == [0.5, 2.0, 2.0, 2.0]


def test_group_multiplier_warmup_and_freeze():
    optim = OptimConfig(lr=1.0, expanded_lr_mult=2.0, inherited_lr_mult=0.5, expanded_warmup_steps=0,
                        inherited_warmup_steps=4, inherited_freeze_steps=3)
    sched = ScheduleConfig(kind="constant", warmup_steps=100)
    exp, inh = GroupSpec("e", "expanded", True), GroupSpec("i", "inherited", True)
    assert [group_lr(exp, s, 50, optim, sched) for s in range(3)] == [2.0, 2.0, 2.0]
    assert [group_lr(inh, s, 50, optim, sched) for s in range(9)] == [0, 0, 0, 0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
