"""The demo's quick setting runs the whole pipeline (data, tokenizer, shards, trainer, export, eval, report)."""

from __future__ import annotations

import json

import pytest

from statex_dist.demo import DemoConfig, run_demo


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    cfg = DemoConfig.preset("quick")
    cfg.out = str(tmp_path / "demo")
    out = run_demo(cfg)
    results = json.loads((out / "results.json").read_text())
    fam = cfg.families[0]
    assert [r["label"] for r in results] == [f"{fam} base", f"{fam} LPT", f"{fam} StateX"]
    statex = results[2]["model"]
    assert statex["state_elements"] > results[1]["model"]["state_elements"]  # the StateX arm is really expanded
    assert statex["expanded_layers"]
    report = (out / "report.md").read_text()
    assert "StateX - LPT" in report
    for name in ("results_mqar.png", "results_haystack.png", "results_ppl.png"):
        assert (out / name).is_file()
    # a second run with other post-training settings reuses the pre-trained base
    cfg2 = cfg.updated({"posttrain_steps": 3})
    run_demo(cfg2)
    assert "reusing the pre-trained base" in capsys.readouterr().out


def test_presets_and_unknown_preset():
    assert DemoConfig.preset("quick").pretrain_steps < DemoConfig.preset("default").pretrain_steps
    with pytest.raises(ValueError):
        DemoConfig.preset("huge")


def test_config_overrides_are_checked():
    cfg = DemoConfig.preset("default").updated({"pretrain_steps": 7, "pretrain_pairs": [2, 4]})
    assert cfg.pretrain_steps == 7 and cfg.pretrain_pairs == (2, 4)
    with pytest.raises(ValueError, match="unknown demo setting"):
        DemoConfig().updated({"nonsense": 1})


def test_combine_runs_pools_seeds(tmp_path):
    from statex_dist.demo import combine_runs

    def fake(label, acc, seed):
        return {"label": label, "seed": seed, "tasks": {"mqar": {"cells": [{"pairs": 8, "accuracy": acc}],
                                                                 "accuracy": acc, "chance": 1 / 64}}}
    dirs = []
    for seed, (lpt, sx) in enumerate([(0.2, 0.3), (0.25, 0.2)]):
        d = tmp_path / f"run{seed}"
        d.mkdir()
        (d / "demo_config.json").write_text(json.dumps({"seeds": [seed], "families": ["gla"]}))
        (d / "results.json").write_text(json.dumps([fake("gla LPT", lpt, seed), fake("gla StateX", sx, seed)]))
        dirs.append(d)
    out = combine_runs(dirs, tmp_path / "all")
    report = (out / "report.md").read_text()
    assert "mean ± std over 2 runs" in report
    assert "+10.0, -5.0" in report and "mixed" in report
