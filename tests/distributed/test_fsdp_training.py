"""FSDP2 on gloo with 1 and 2 processes: losses match, loss goes down, exact resume after SIGKILL (same and
different number of processes), export of a 2-process run, a NaN inside the model named on 2 ranks."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import torch

from train_runs import (TIMEOUT, assert_resume_continues, losses, reference_runs, run, start, tiny_train_config,
                        write_config)

pytestmark = [pytest.mark.dist, pytest.mark.slow]
STEPS, CKPT = 8, 4


@pytest.fixture(scope="module")
def gla_runs(tmp_path_factory, synthetic_corpus):
    """1 process (accumulation 4) and 2 processes (accumulation 2) on the same global batch of 4 rows, and a
    2-process run SIGKILLed right after its step-4 checkpoint."""
    return reference_runs(tmp_path_factory.mktemp("fsdp_gla"), synthetic_corpus, STEPS, CKPT)


def test_two_processes_match_one_process(gla_runs):
    one, two = losses(gla_runs["one"]), losses(gla_runs["two"])
    assert sorted(one) == sorted(two) == list(range(1, STEPS + 1))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-5, abs=1e-6), (step, one, two)


def test_loss_goes_down_gla(gla_runs):
    curve = losses(gla_runs["two"])
    assert curve[STEPS] < curve[1] - 0.5, curve


def test_exact_resume_after_sigkill_same_world(gla_runs):
    assert_resume_continues(gla_runs, "resumed_same", 2, STEPS, CKPT, exact=True)


def test_resume_on_one_process_from_two(gla_runs):
    assert_resume_continues(gla_runs, "resumed_one", 1, STEPS, CKPT, exact=False)


def test_export_of_two_process_run_equals_trained_weights(gla_runs, tmp_path):
    from statex_dist.checkpoint.export import checkpoint_state_dict, export_checkpoint, resolve_checkpoint
    from statex_dist.models.loading import load_pretrained

    out = export_checkpoint(gla_runs["two"], tmp_path / "hf")
    model = load_pretrained(out)
    ckpt = resolve_checkpoint(gla_runs["two"])
    trained = checkpoint_state_dict(ckpt, model)
    exported = model.state_dict()
    assert set(trained) == set(exported)
    for k, v in trained.items():
        assert torch.equal(v, exported[k]), k


def test_mamba2_two_processes_match_and_learn(tmp_path, synthetic_corpus):
    curves = {}
    for name, nproc in (("one", 1), ("two", 2)):
        cfg = tiny_train_config(tmp_path / name, synthetic_corpus, "mamba2", steps=STEPS)
        run(write_config(cfg, tmp_path / f"{name}.yaml"), nproc, tmp_path / f"{name}.log")
        curves[name] = losses(tmp_path / name)
    for step in curves["one"]:
        assert curves["two"][step] == pytest.approx(curves["one"][step], rel=1e-5, abs=1e-6), curves
    assert curves["two"][STEPS] < curves["two"][1] - 0.5, curves["two"]


def test_nonfinite_module_is_named_on_two_ranks_without_a_hang(tmp_path, synthetic_corpus):
    """A module that outputs NaN inside a 2-rank FSDP run: every step is skipped, the trainer names the module
    (the ranks re-run the forward together, so its collectives stay matched) and aborts after max_bad_steps."""
    cfg = tiny_train_config(tmp_path / "nan", synthetic_corpus, "gla", steps=4, max_bad_steps=2)
    log = tmp_path / "nan.log"
    proc = start(write_config(cfg, tmp_path / "nan.yaml"), 2, log,
                 extra_env={"STATEX_FAULT_NAN_MODULE": "model.layers.1.attn.o_proj"})
    try:
        rc = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"hung; log:\n{log.read_text()[-4000:]}")
    text = log.read_text()
    assert rc != 0, text[-3000:]
    assert "first module with a non-finite output: model.layers.1.attn.o_proj (Linear), inputs finite" in text
    assert "NonFiniteError: 2 steps in a row" in text, text[-3000:]
