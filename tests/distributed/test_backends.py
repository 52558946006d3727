"""The other backends and options on 2 gloo processes: DDP, HSDP with bf16 mixed precision and async
checkpoints, DeepSpeed ZeRO-3 in bf16 through the `deepspeed` launcher (launchers/deepspeed.sh), profiled on
both ranks; ZeRO-3 with blocks gathered as units against per-submodule fetching, and its exact resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import torch

from train_runs import (REPO, TIMEOUT, env, log_text, losses, resume_killed_run, run, run_and_kill_after_checkpoint,
                        tiny_train_config, write_config)

pytestmark = [pytest.mark.dist, pytest.mark.slow]


def test_ddp_two_processes_match_single(tmp_path, synthetic_corpus):
    curves = {}
    for name, backend, nproc in (("single", "single", 1), ("ddp", "ddp", 2)):
        cfg = tiny_train_config(tmp_path / name, synthetic_corpus, "gla", backend=backend, steps=4)
        run(write_config(cfg, tmp_path / f"{name}.yaml"), nproc, tmp_path / f"{name}.log")
        curves[name] = losses(tmp_path / name)
    for step, value in curves["single"].items():
        assert curves["ddp"][step] == pytest.approx(value, rel=1e-5, abs=1e-6), curves


def test_hsdp_bf16_async_checkpoints(tmp_path, synthetic_corpus):
    from statex_dist.checkpoint.manager import list_checkpoints, validate

    cfg = tiny_train_config(tmp_path / "run", synthetic_corpus, "mamba2", steps=6, checkpoint__interval=2,
                            checkpoint__async_save=True, parallel__hsdp_shard_size=1,
                            precision__mode="mixed_bf16")
    run(write_config(cfg, tmp_path / "run.yaml"), 2, tmp_path / "run.log")
    curve = losses(tmp_path / "run")
    assert curve[6] < curve[1] - 0.3, curve
    ckpts = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [c.name for c in ckpts] == ["step_00000006", "step_00000004", "step_00000002"]
    assert all(validate(c) is None for c in ckpts)


@pytest.mark.skipif(shutil.which("deepspeed") is None, reason="the deepspeed launcher is not installed")
def test_zero3_bf16_through_deepspeed_launcher(tmp_path, synthetic_corpus):
    from statex_dist.checkpoint.export import export_checkpoint
    from statex_dist.models.loading import load_pretrained

    cfg = tiny_train_config(tmp_path / "run", synthetic_corpus, "gla", backend="deepspeed", steps=6,
                            precision__mode="mixed_bf16", profiling__enabled=True, profiling__start_step=3,
                            parallel__deepspeed_config=str(REPO / "configs" / "deepspeed" / "zero3.json"))
    config = write_config(cfg, tmp_path / "run.yaml")
    e = {**env(), "NGPU": "2", "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    with open(tmp_path / "run.log", "wb") as log:
        rc = subprocess.run([str(REPO / "launchers" / "deepspeed.sh"), str(config)], env=e, stdout=log,
                            stderr=subprocess.STDOUT, timeout=TIMEOUT).returncode
    assert rc == 0, (tmp_path / "run.log").read_text()[-4000:]
    curve = losses(tmp_path / "run")
    assert curve[6] < curve[1] - 0.3, curve
    model = load_pretrained(export_checkpoint(tmp_path / "run", tmp_path / "hf"))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    for rank in (0, 1):  # ZeRO-3 gathers parameters every step: each rank's profile must show collectives
        summary = json.loads((tmp_path / "run" / "profile" / f"rank{rank}_steps3-4.summary.json").read_text())
        assert summary["collective_ms_per_step"] > 0, summary["top"][:10]


@pytest.mark.skipif(shutil.which("deepspeed") is None, reason="the deepspeed launcher is not installed")
def test_zero3_leaf_blocks_same_losses_as_per_submodule_fetching_and_exact_resume(tmp_path, synthetic_corpus):
    """Blocks gathered as units (the default) train exactly as DeepSpeed's per-submodule fetching, with
    activation checkpointing recomputing the blocks in backward; a ZeRO-3 run SIGKILLed after its step-2
    checkpoint resumes with the uninterrupted run's losses, bit for bit."""
    configs, curves, logs = {}, {}, {}
    for name, leaf in (("leaf", True), ("per_submodule", False), ("killed", True)):
        cfg = tiny_train_config(tmp_path / name, synthetic_corpus, "gla", backend="deepspeed", steps=4,
                                parallel__deepspeed_config=str(REPO / "configs" / "deepspeed" / "zero3.json"),
                                parallel__zero3_leaf_blocks=leaf, parallel__activation_checkpointing="full",
                                checkpoint__interval=2)
        configs[name] = write_config(cfg, tmp_path / f"{name}.yaml")
        if name == "killed":
            run_and_kill_after_checkpoint(configs[name], 2, tmp_path / f"{name}.log", 2)
            continue
        run(configs[name], 2, tmp_path / f"{name}.log")
        curves[name], logs[name] = losses(tmp_path / name), (tmp_path / f"{name}.log").read_text()
    hooked = {k: int(re.search(r"(\d+) of their submodules have DeepSpeed fetch hooks", v).group(1))
              for k, v in logs.items()}
    assert hooked["leaf"] == 0 and hooked["per_submodule"] > 0, hooked
    assert sorted(curves["leaf"]) == list(range(1, 5))
    for step, value in curves["per_submodule"].items():
        assert curves["leaf"][step] == pytest.approx(value, rel=1e-5, abs=1e-6), curves
    resumed = resume_killed_run({"root": tmp_path, "killed": tmp_path / "killed",
                                 "killed_config": configs["killed"]}, "resumed", 2)
    got = losses(resumed)
    assert "start at step 2 (resumed from" in log_text(resumed)
    assert [got[s] for s in (3, 4)] == [curves["leaf"][s] for s in (3, 4)], (got, curves["leaf"])
