"""StateX expansion: init rules per mode, bitwise preservation, function preservation, plans, bad requests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from statex_dist.expansion import ExpansionError, ExpansionPlan, expand_model, parse_layers, plan_on_meta
from statex_dist.expansion.apply import block_prefix, expand_checkpoint, is_expanded_param
from statex_dist.expansion.report import build_report, inspect_checkpoint
from statex_dist.models.loading import config_from_dict, load_pretrained
from tests.conftest import REPO, tiny_config, tiny_model


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _plan(family, mode="reinit", layers="0,2", seed=0):
    return ExpansionPlan(layers=layers, mode=mode, gla_heads=1, mamba2_state_size=64, seed=seed)


@pytest.mark.parametrize("family,mode", [("gla", "reinit"), ("gla", "inherit"), ("mamba2", "reinit"),
                                         ("mamba2", "inherit"), ("mamba2", "preserve")])
def test_untouched_parameters_are_bitwise_identical(family, mode):
    model = tiny_model(family)
    before = _snapshot(model)
    new = expand_model(model, _plan(family, mode))
    after = new.state_dict()
    touched = [k for k in after if is_expanded_param(new.config, k)]
    assert touched and all(k.startswith(("model.layers.0.", "model.layers.2.", "backbone.layers.0.",
                                         "backbone.layers.2.")) for k in touched)
    for key, value in after.items():
        if not is_expanded_param(new.config, key):
            assert torch.equal(value, before[key]), key


def test_gla_reinit_follows_the_gla_init():
    model = tiny_model("gla")
    new = expand_model(model, _plan("gla", "reinit", layers="0"))
    layer = new.model.layers[0]
    assert layer.attn.num_heads == 1 and layer.attn.head_k_dim == 32 and layer.attn.head_v_dim == 64
    assert torch.equal(layer.attn_norm.weight, torch.ones(64))
    assert torch.equal(layer.attn.g_norm_swish_gate.weight, torch.ones(64))
    assert torch.equal(layer.attn.gk_proj[1].bias, torch.zeros(32))
    for lin in (layer.attn.q_proj, layer.attn.k_proj, layer.attn.v_proj, layer.attn.g_proj, layer.attn.o_proj):
        fan_out, fan_in = lin.weight.shape
        bound = 2 ** -2.5 * math.sqrt(6 / (fan_in + fan_out))
        assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.8 * bound
    assert new.config.layer_overrides == {"0": {"num_heads": 1}}
    assert new.config.statex["mode"] == "reinit" and new.config.statex["layers"] == [0]


def test_gla_inherit_keeps_weights_and_tiles_the_norm():
    model = tiny_model("gla")
    with torch.no_grad():
        model.model.layers[1].attn.g_norm_swish_gate.weight.copy_(torch.arange(16.0))
    before = _snapshot(model)
    new = expand_model(model, ExpansionPlan(layers="1", mode="inherit", gla_heads=2))
    attn = new.model.layers[1].attn
    assert attn.num_heads == 2
    assert torch.equal(attn.g_norm_swish_gate.weight, torch.arange(16.0).repeat(2))
    assert torch.equal(attn.q_proj.weight, before["model.layers.1.attn.q_proj.weight"])


def test_mamba2_reinit_rules():
    model = tiny_model("mamba2")
    before = _snapshot(model)
    new = expand_model(model, _plan("mamba2", "reinit", layers="1"))
    mixer = new.backbone.layers[1].mixer
    inner, n_old, n_new, h = 128, 16, 64, 8
    w = mixer.in_proj.weight
    assert w.shape == (2 * inner + 2 * n_new + h, 64)
    old = before["backbone.layers.1.mixer.in_proj.weight"]
    assert torch.equal(w[: 2 * inner], old[: 2 * inner])  # z and x rows copied
    assert torch.equal(w[-h:], old[-h:])  # dt rows copied
    fresh = w[2 * inner: 2 * inner + 2 * n_new]
    assert fresh.abs().max() <= 1 / math.sqrt(64) and fresh.abs().max() > 0.8 / math.sqrt(64)
    cw = mixer.conv1d.weight
    assert cw.shape[0] == inner + 2 * n_new
    assert torch.equal(cw[:inner], before["backbone.layers.1.mixer.conv1d.weight"][:inner])
    assert torch.allclose(mixer.A_log, torch.log(torch.arange(1, h + 1, dtype=torch.float32)))
    assert torch.equal(mixer.dt_bias, torch.ones(h)) and torch.equal(mixer.norm.weight, torch.ones(inner))
    assert torch.equal(mixer.D, before["backbone.layers.1.mixer.D"])
    assert torch.equal(mixer.out_proj.weight, before["backbone.layers.1.mixer.out_proj.weight"])


def test_mamba2_inherit_tiles_b_and_c():
    model = tiny_model("mamba2")
    before = _snapshot(model)
    new = expand_model(model, ExpansionPlan(layers="0", mode="inherit", mamba2_state_size=48))
    w = new.backbone.layers[0].mixer.in_proj.weight
    old = before["backbone.layers.0.mixer.in_proj.weight"]
    B_old, C_old = old[256:272], old[272:288]
    assert torch.equal(w[256:304], B_old.repeat(3, 1)) and torch.equal(w[304:352], C_old.repeat(3, 1))


def test_mamba2_preserve_keeps_the_output_and_all_new_parameters_learn():
    model = tiny_model("mamba2")
    ids = torch.randint(0, 512, (2, 45))
    ref = model(ids).logits
    new = expand_model(model, _plan("mamba2", "preserve", layers="0,3")).train()
    torch.testing.assert_close(new(ids).logits, ref, atol=1e-5, rtol=1e-5)
    in_proj = new.backbone.layers[0].mixer.in_proj
    new_b = slice(256 + 16, 256 + 64)
    new_c = slice(256 + 64 + 16, 256 + 128)
    assert torch.equal(in_proj.weight[new_b], torch.zeros(48, 64))
    new(ids, labels=ids).loss.backward()
    assert in_proj.weight.grad[new_b].abs().sum() > 0, "new B rows must receive gradient at step 0"
    with torch.no_grad():  # one SGD step; afterwards the new state channels are live and C learns too
        for p in new.parameters():
            if p.grad is not None:
                p -= 1e-2 * p.grad
                p.grad = None
    new(ids, labels=ids).loss.backward()
    assert in_proj.weight.grad[new_c].abs().sum() > 0


def test_expansion_is_deterministic_per_seed_and_layer(family):
    a = expand_model(tiny_model(family), _plan(family, "reinit", layers="0,2", seed=3)).state_dict()
    b = expand_model(tiny_model(family), _plan(family, "reinit", layers="2", seed=3)).state_dict()
    c = expand_model(tiny_model(family), _plan(family, "reinit", layers="0,2", seed=4)).state_dict()
    prefix = block_prefix(tiny_config(family), 2)
    keys = [k for k in a if k.startswith(prefix)]
    assert all(torch.equal(a[k], b[k]) for k in keys), "layer 2 must not depend on which other layers expand"
    assert any(not torch.equal(a[k], c[k]) for k in keys), "another seed must give other weights"


def test_expand_checkpoint_round_trip(tmp_path, family, tiny_checkpoint):
    (tiny_checkpoint / "tokenizer.json").write_text("{}")
    out = expand_checkpoint(tiny_checkpoint, tmp_path / "expanded", _plan(family, "reinit", layers="every:2"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == f"statex_{family}"
    assert sorted(cfg["layer_overrides"]) == ["0", "2"] and cfg["statex"]["source"] == str(tiny_checkpoint)
    assert (out / "tokenizer.json").exists()
    auto = AutoModelForCausalLM.from_pretrained(out).eval()
    ours = load_pretrained(out).eval()
    ids = torch.randint(0, 512, (1, 33))
    torch.testing.assert_close(auto(ids).logits, ours(ids).logits, atol=0, rtol=0)
    with pytest.raises(FileExistsError):
        expand_checkpoint(tiny_checkpoint, out, _plan(family))
    # Expanding again (a second round) is recorded, and untouched layers stay as they were.
    again = expand_checkpoint(out, tmp_path / "twice", _plan(family, "reinit", layers="1"))
    rec = json.loads((again / "config.json").read_text())["statex"]
    assert rec["layers"] == [1] and rec["history"][0]["layers"] == [0, 2]


def test_bad_requests(family):
    model = tiny_model(family)
    with pytest.raises(ExpansionError, match="out of range"):
        expand_model(model, _plan(family, layers="0,7"))
    with pytest.raises(ExpansionError, match="every:K"):
        parse_layers("some", 4)
    if family == "gla":
        with pytest.raises(ExpansionError, match="do not divide"):
            expand_model(model, ExpansionPlan(layers="0", gla_heads=3))
        with pytest.raises(ExpansionError, match="shrink"):
            expand_model(model, ExpansionPlan(layers="0", gla_heads=8))
        with pytest.raises(ExpansionError, match="Mamba2 only"):
            expand_model(model, ExpansionPlan(layers="0", mode="preserve"))
    else:
        with pytest.raises(ExpansionError, match="shrink"):
            expand_model(model, ExpansionPlan(layers="0", mamba2_state_size=8))
        with pytest.raises(ExpansionError, match="multiple"):
            expand_model(model, ExpansionPlan(layers="0", mode="inherit", mamba2_state_size=40))


def test_parse_layers():
    assert parse_layers("every:6", 24) == [0, 6, 12, 18]
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("18,0,6", 24) == [0, 6, 18]
    assert parse_layers("none", 24) == []


def _shipped(name):
    return config_from_dict(json.loads((REPO / "configs" / "models" / f"{name}.json").read_text()))


def test_1p3b_plans_on_meta():
    gla = build_report(plan_on_meta(_shipped("gla-1.3b"), ExpansionPlan(layers="every:6")).config)
    assert gla["baseline_parameters"] == 1_365_514_240
    assert gla["added_parameters"] == 6_144
    assert (gla["baseline_state_elements"], gla["state_elements"]) == (12_582_912, 18_874_368)
    assert gla["expanded_layers"] == [0, 6, 12, 18]
    for n_layers in (1, 4):
        plan = ExpansionPlan(layers=",".join(str(12 * i) for i in range(n_layers)), mamba2_state_size=512)
        mamba = build_report(plan_on_meta(_shipped("mamba2-1.3b"), plan).config)
        assert mamba["added_parameters"] == 1_576_704 * n_layers
        assert mamba["baseline_state_elements"] == 25_165_824


def test_inspect_reads_weights_and_meta(tmp_path, family, tiny_checkpoint):
    report = inspect_checkpoint(tiny_checkpoint)
    assert report["stored_parameters"] == report["parameters"]
    assert "stored_parameters" not in inspect_checkpoint(tiny_checkpoint, meta=True)


def test_cli_expand_and_inspect(tmp_path, family, tiny_checkpoint, capsys):
    from statex_dist.cli import main

    out = tmp_path / "cli-out"
    assert main(["expand", "--model", str(tiny_checkpoint), "--out", str(out), "--layers", "0,2",
                 "--mamba2-state-size", "32"]) == 0
    assert "expanded layers:   [0, 2]" in capsys.readouterr().out
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["expanded_layers"] == [0, 2]
    assert main(["expand", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "bad"), "--layers", "9"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert not Path(tmp_path / "bad").exists()
