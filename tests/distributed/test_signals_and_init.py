"""Signals (SIGUSR1 -> complete checkpoint + exit 75; STOP file under torchrun) and the sharded expansion
initialisation on 2 FSDP ranks (equal to `statex expand`, inherited weights read as row slices); the device
choice of `device: auto`."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

from train_runs import REPO, TIMEOUT, assert_run_equals_statex_expand, losses, run, start, tiny_train_config, write_config

pytestmark = [pytest.mark.dist, pytest.mark.slow]
EXIT_REQUEUE = 75


def _wait_for_step(run_dir, step, proc, log):
    deadline = time.time() + TIMEOUT
    while True:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists() and losses(run_dir) and max(losses(run_dir)) >= step:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early (rc {proc.returncode}):\n{log.read_text()[-3000:]}")
        assert time.time() < deadline, "timeout"
        time.sleep(0.1)


def _start_long_run(tmp_path, corpus, family, nproc):
    """A run of 10,000 steps at ``tmp_path/run`` started with ``nproc`` processes, once it is past step 2:
    (config, process, log)."""
    config = write_config(tiny_train_config(tmp_path / "run", corpus, family, steps=10_000), tmp_path / "run.yaml")
    log = tmp_path / "run.log"
    proc = start(config, nproc, log)
    _wait_for_step(tmp_path / "run", 2, proc, log)
    return config, proc, log


def test_sigusr1_checkpoints_and_exits_with_requeue_code(tmp_path, synthetic_corpus):
    from statex_dist.checkpoint.manager import find_resume_checkpoint, validate

    config, proc, log = _start_long_run(tmp_path, synthetic_corpus, "gla", 1)
    os.kill(proc.pid, signal.SIGUSR1)
    rc = proc.wait(timeout=TIMEOUT)
    assert rc == EXIT_REQUEUE, log.read_text()[-3000:]
    ckpt = find_resume_checkpoint(tmp_path / "run" / "checkpoints")
    assert ckpt is not None and validate(ckpt) is None
    step = json.loads((ckpt / "train_state.json").read_text())["step"]
    assert step == max(losses(tmp_path / "run")) >= 2
    assert (tmp_path / "run" / "REQUEUE").read_text().strip() == f"step {step}"
    assert "SIGUSR1" in log.read_text()
    # Requeued: the next start resumes from that checkpoint and removes the marker.
    run(config, 1, tmp_path / "run2.log", ["steps=" + str(step + 1)])
    assert "resumed from" in (tmp_path / "run2.log").read_text()
    assert not (tmp_path / "run" / "REQUEUE").exists()


def test_stop_file_under_torchrun(tmp_path, synthetic_corpus):
    _, proc, _ = _start_long_run(tmp_path, synthetic_corpus, "mamba2", 2)
    (tmp_path / "run" / "STOP").touch()
    rc = proc.wait(timeout=TIMEOUT)
    assert rc != 0  # torchrun reports the workers' exit code 75 as a failure; the REQUEUE file is the signal
    assert (tmp_path / "run" / "REQUEUE").exists() and not (tmp_path / "run" / "STOP").exists()
    from statex_dist.checkpoint.manager import find_resume_checkpoint

    ckpt = find_resume_checkpoint(tmp_path / "run" / "checkpoints")
    assert json.loads((ckpt / "COMPLETE").read_text())["world"] == 2


@pytest.mark.parametrize("family,backend", [("gla", "fsdp"), ("mamba2", "fsdp"), ("gla", "zero3"), ("mamba2", "zero3")])
def test_two_rank_initialisation_equals_statex_expand(tmp_path, family, backend):
    from statex_dist.expansion.plan import ExpansionPlan
    from statex_dist.models.loading import build_model, config_from_dict
    from statex_dist.train.synthetic import write_synthetic_corpus

    corpus = write_synthetic_corpus(tmp_path / "mds", num_docs=64, vocab=40)
    raw = json.loads((REPO / "configs" / "models" / f"{family}-tiny.json").read_text())
    torch.manual_seed(5)
    base = tmp_path / "base"
    build_model(config_from_dict(raw), device="cpu").save_pretrained(base)
    c = json.loads((base / "config.json").read_text())
    c["model_type"] = family
    (base / "config.json").write_text(json.dumps(c))
    extra = {}
    if backend == "zero3":
        pytest.importorskip("deepspeed")
        extra = {"parallel__deepspeed_config": str(REPO / "configs" / "deepspeed" / "zero3.json")}
    cfg = tiny_train_config(tmp_path / "run", corpus, family, steps=1, global_rows=2,
                            backend="deepspeed" if backend == "zero3" else backend,
                            optim__expanded_freeze_steps=1, optim__inherited_freeze_steps=1, **extra)
    cfg["model"] = {"path": str(base), "expand": {"layers": "every:2", "seed": 3, "gla_heads": 1,
                                                  "mamba2_state_size": 32}}
    run(write_config(cfg, tmp_path / "run.yaml"), 2, tmp_path / "run.log")
    text = (tmp_path / "run.log").read_text()
    assert "2 expanded blocks" in text
    if backend == "fsdp":
        assert " 0 read as row slices" not in text
    else:
        assert "ZeRO-3, gathered one parameter at a time" in text
    plan = ExpansionPlan(layers="every:2", seed=3, gla_heads=1, mamba2_state_size=32)
    assert_run_equals_statex_expand(tmp_path / "run", base, plan, tmp_path)


def test_auto_device_warns_when_a_cuda_build_sees_no_gpu(monkeypatch, caplog):
    """A CUDA build of torch with no visible GPU (e.g. CUDA_VISIBLE_DEVICES="") falls back to the CPU with a
    warning that names the variable; the CPU build (CI, laptops) stays quiet."""
    import logging

    from statex_dist.parallel.dist import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with caplog.at_level(logging.WARNING, logger="statex"):
        assert pick_device("auto", 0) == torch.device("cpu")
    assert "sees no GPU (CUDA_VISIBLE_DEVICES='')" in caplog.text
    caplog.clear()
    monkeypatch.setattr(torch.version, "cuda", None)
    with caplog.at_level(logging.WARNING, logger="statex"):
        assert pick_device("auto", 0) == torch.device("cpu")
    assert "sees no GPU" not in caplog.text
