"""The training config: shipped YAMLs parse, unknown keys and wrong types are rejected by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from statex_dist.config.io import ConfigError
from statex_dist.train.config import TrainConfig, accumulation_steps, load_train_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (REPO / "configs").glob("*.yaml"))


def test_there_are_shipped_configs():
    names = {p.name for p in SHIPPED}
    for want in ("gla-1.3b-statex.yaml", "gla-1.3b-lpt.yaml", "mamba2-1.3b-statex.yaml", "mamba2-1.3b-lpt.yaml",
                 "gla-tiny-cpu.yaml", "mamba2-tiny-cpu.yaml"):
        assert want in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_parses(path):
    cfg = load_train_config(path)
    assert isinstance(cfg, TrainConfig)


def test_paper_hyperparameters_in_1p3b_configs():
    for name in ("gla-1.3b-statex.yaml", "gla-1.3b-lpt.yaml", "mamba2-1.3b-statex.yaml", "mamba2-1.3b-lpt.yaml"):
        cfg = load_train_config(REPO / "configs" / name)
        assert cfg.optim.lr == 3e-4 and cfg.optim.betas == [0.9, 0.95] and cfg.optim.eps == 1e-8
        assert cfg.optim.weight_decay == 0.1 and cfg.optim.grad_clip == 1.0
        assert cfg.schedule.kind == "cosine" and cfg.schedule.warmup_steps == 1000 and cfg.schedule.min_lr_ratio == 0
        assert cfg.steps == 20000 and cfg.global_batch_tokens == 524288 and cfg.data.seq_len == 65536
        assert cfg.checkpoint.interval == 1000 and cfg.seed == 0
        assert cfg.parallel.activation_checkpointing == "full"
        assert (cfg.model.expand is not None) == name.endswith("statex.yaml")


def test_arms_differ_only_in_expand():
    import yaml

    for fam in ("gla", "mamba2"):
        a = yaml.safe_load((REPO / "configs" / f"{fam}-1.3b-statex.yaml").read_text())
        b = yaml.safe_load((REPO / "configs" / f"{fam}-1.3b-lpt.yaml").read_text())
        a["model"].pop("expand")
        a.pop("run_dir"), b.pop("run_dir")
        assert a == b


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"optim\.learning_rate.*allowed:.*lr"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["optim.learning_rate=1e-3"])


def test_wrong_type_and_bad_choice_are_named():
    with pytest.raises(ConfigError, match=r"steps: got 'many', expected an integer"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["steps=many"])
    with pytest.raises(ConfigError, match=r"parallel\.backend.*one of 'fsdp', 'deepspeed', 'ddp', 'single'"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["parallel.backend=horovod"])


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="deepspeed_config"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["parallel.backend=deepspeed"])
    with pytest.raises(ConfigError, match="exactly one of model.path"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["model.path=/x"])
    with pytest.raises(ConfigError, match="zero3_leaf_blocks is for backend deepspeed"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["parallel.zero3_leaf_blocks=false"])
    with pytest.raises(ConfigError, match="deepspeed_fused_grad_checks is for backend deepspeed"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["parallel.deepspeed_fused_grad_checks=false"])
    with pytest.raises(ConfigError, match="profiling.torch or profiling.python"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["profiling.enabled=true", "profiling.torch=false"])
    with pytest.raises(ConfigError, match="gc_interval must be >= 0"):
        load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml", ["gc_interval=-1"])


def test_accumulation_steps_from_global_batch():
    cfg = load_train_config(REPO / "configs" / "gla-tiny-cpu.yaml")  # 512 tokens = 8 rows of 64, micro 4
    assert accumulation_steps(cfg, 1) == 2
    assert accumulation_steps(cfg, 2) == 1
    with pytest.raises(ConfigError, match="not a multiple"):
        accumulation_steps(cfg, 3)


def test_model_kernel_overrides_reach_the_model_config():
    from statex_dist.parallel.materialize import model_configs
    from statex_dist.train.config import ModelConfig

    gla = ModelConfig(config=str(REPO / "configs/models/gla-tiny.json"), kernel_backend="torch",
                      kernel_save_states=True)
    base, cfg, _ = model_configs(gla, seed=0)
    assert (cfg.kernel_backend, cfg.kernel_save_states) == ("torch", True)
    assert (base.kernel_backend, base.kernel_save_states) == ("torch", True)
    mamba2 = ModelConfig(config=str(REPO / "configs/models/mamba2-tiny.json"), kernel_save_states=True)
    base, cfg, _ = model_configs(mamba2, seed=0)
    assert cfg.kernel_save_states and base.kernel_save_states
