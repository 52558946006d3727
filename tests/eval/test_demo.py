"""The demo's quick setting runs the whole pipeline (data, tokenizer, shards, trainer, export, eval, report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from statex_dist.demo import DemoConfig, run_demo

GPU_JSON = Path(__file__).resolve().parents[2] / "configs" / "demo" / "gpu.json"


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
    assert "- software: Python " in report and f"torch {torch.__version__}" in report  # versions traceable


# ---------------------------------------------------------------------------------------------------------
# device / precision / sizes: cheap checks, no training
# ---------------------------------------------------------------------------------------------------------


class _Tok:
    eos_token_id, pad_token_id = 0, 1

    def __len__(self):
        return 512


def _train_and_eval_configs(cfg, tmp_path, device=None):
    from statex_dist.demo import eval_config, train_config

    tcfg = train_config(cfg, run_dir=tmp_path / "run", data_dir=tmp_path / "data", eos_id=0, seed=0, steps=5,
                        lr=1e-3, model_path=tmp_path / "model", expand=True, family="gla", device=device)
    return tcfg, eval_config(cfg, tmp_path / "heldout", device=device)


def test_cpu_defaults_are_unchanged(tmp_path):
    from statex_dist.demo import model_json

    for cfg in (DemoConfig.preset("default"), DemoConfig.preset("quick")):
        assert (cfg.device, cfg.precision, cfg.num_workers, cfg.kernel_backend) == ("cpu", "fp32", 0, None)
        tcfg, ecfg = _train_and_eval_configs(cfg, tmp_path)
        assert tcfg.device == "cpu" and tcfg.precision.mode == "fp32" and tcfg.parallel.backend == "single"
        assert tcfg.data.num_workers == 0
        assert (ecfg.device, ecfg.dtype, ecfg.batch_size) == ("cpu", "float32", 16)
        raw = json.loads(model_json(cfg, "gla", _Tok(), tmp_path / "m.json").read_text())
        assert raw["kernel_backend"] == "torch"


def test_new_fields_reach_train_and_eval_configs(tmp_path):
    from statex_dist.demo import model_json

    cfg = DemoConfig.preset("quick").updated({"device": "cpu", "precision": "mixed_bf16", "num_workers": 2,
                                              "eval_batch_size": 5, "eval_dtype": "bfloat16"})
    tcfg, ecfg = _train_and_eval_configs(cfg, tmp_path)
    assert tcfg.device == "cpu" and tcfg.precision.mode == "mixed_bf16" and tcfg.data.num_workers == 2
    assert (ecfg.device, ecfg.dtype, ecfg.batch_size) == ("cpu", "bfloat16", 5)
    # a resolved cuda device is passed to both the trainer and the evaluation (no GPU needed to build configs)
    tcfg, ecfg = _train_and_eval_configs(cfg.updated({"device": "auto"}), tmp_path, device="cuda")
    assert tcfg.device == "cuda" and ecfg.device == "cuda"
    # on a GPU the model config asks for the fast kernels unless kernel_backend says otherwise
    assert json.loads(model_json(cfg, "gla", _Tok(), tmp_path / "a.json", "cuda").read_text())["kernel_backend"] == "auto"
    pinned = cfg.updated({"kernel_backend": "torch"})
    assert json.loads(model_json(pinned, "gla", _Tok(), tmp_path / "b.json", "cuda").read_text())["kernel_backend"] == "torch"


def test_device_resolution(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert DemoConfig(device="auto").resolved_device() == "cpu"
    assert DemoConfig(device="cpu").resolved_device() == "cpu"
    with pytest.raises(RuntimeError, match="sees no GPU"):
        DemoConfig(device="cuda").resolved_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert DemoConfig(device="auto").resolved_device() == "cuda"
    assert DemoConfig(device="cuda").resolved_device() == "cuda"


def test_cuda_without_gpu_stops_before_any_work(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = DemoConfig.preset("quick").updated({"device": "cuda", "out": str(tmp_path / "demo")})
    with pytest.raises(RuntimeError, match="device 'cuda' but torch .* sees no GPU.*device=cpu"):
        run_demo(cfg)
    assert not (tmp_path / "demo").exists()
    # the command line says the same in one line, without a traceback
    from statex_dist.cli import main

    with pytest.raises(SystemExit, match="statex demo: error: .*sees no GPU"):
        main(["demo", "--quick", "--set", "device=cuda", "--out", str(tmp_path / "cli")])
    assert not (tmp_path / "cli").exists()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="device"):
        DemoConfig().updated({"device": "tpu"})
    with pytest.raises(ValueError, match="precision"):
        DemoConfig().updated({"precision": "fp16"})
    with pytest.raises(ValueError, match="expand_layers"):
        DemoConfig().updated({"expand_layers": "5"})  # the default model has 2 layers
    with pytest.raises(ValueError, match="mqar_keys"):
        DemoConfig().updated({"eval_pairs": [128]})


def test_cli_set_overrides_the_config_file(tmp_path, monkeypatch):
    import statex_dist.demo as demo
    from statex_dist.cli import main
    from statex_dist.eval.cli import parse_settings

    assert parse_settings(["device=cpu", "pretrain_steps=3", "eval_pairs=[4,8]", "expand_layers=1,3",
                           "gate_bias_init=null"]) == {
        "device": "cpu", "pretrain_steps": 3, "eval_pairs": [4, 8], "expand_layers": "1,3", "gate_bias_init": None}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_settings(["device"])
    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda cfg, overwrite=False: seen.append(cfg))
    argv = ["demo", "--config", str(GPU_JSON), "--out", str(tmp_path / "d"), "--set", "device=cpu",
            "pretrain_steps=3", "--set", "expand_layers=1", "num_layers=2", "eval_pairs=[4,8]"]
    assert main(argv) == 0
    cfg = seen[0]
    gpu = json.loads(GPU_JSON.read_text())
    assert (cfg.device, cfg.pretrain_steps, cfg.expand_layers, cfg.num_layers, cfg.eval_pairs) == (
        "cpu", 3, "1", 2, [4, 8])
    assert cfg.precision == gpu["precision"] and cfg.hidden_size == gpu["hidden_size"]  # the rest from the file
    with pytest.raises(SystemExit, match="unknown demo setting"):
        main(["demo", "--set", "nonsense=1", "--out", str(tmp_path / "e")])


def test_gpu_config_is_complete_and_valid():
    gpu = json.loads(GPU_JSON.read_text())
    cfg = DemoConfig().updated(gpu)
    assert cfg.device == "cuda" and cfg.precision == "mixed_bf16" and cfg.families == ["gla"]
    assert cfg.posttrain_steps < cfg.pretrain_steps
    assert max(cfg.eval_pairs) <= max(cfg.posttrain_pairs) <= cfg.mqar_keys


def test_gate_decay_range():
    import torch
    import torch.nn.functional as F

    from statex_dist.demo import gate_biases

    b = gate_biases([0.05, 0.9995], 96, 16)
    decay = torch.exp(F.logsigmoid(b) / 16)
    assert torch.allclose(decay[[0, -1]], torch.tensor([0.05, 0.9995]), atol=1e-4)
    assert bool((decay[1:] > decay[:-1]).all())  # head-major: the first channels forget fastest
    with pytest.raises(ValueError, match="gate_decay_range"):
        DemoConfig().updated({"gate_decay_range": [0.9, 0.5]})

