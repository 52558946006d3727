"""DeepSpeed ZeRO-2 on CPU (gloo, DeepSpeed's CPU accelerator): 1 vs 2 processes, loss goes down, exact resume
after SIGKILL, resume on another number of processes through a universal checkpoint, export."""

from __future__ import annotations


import pytest
import torch

pytest.importorskip("deepspeed")

from train_runs import (log_text, losses, resume_killed_run, run, run_and_kill_after_checkpoint, tiny_train_config,
                        write_config)  # noqa: E402

pytestmark = [pytest.mark.dist, pytest.mark.slow]
STEPS, CKPT = 8, 4


@pytest.fixture(scope="module")
def ds_runs(tmp_path_factory, synthetic_corpus):
    root = tmp_path_factory.mktemp("ds_gla")
    out = {"root": root}
    for name, nproc in (("one", 1), ("two", 2)):
        cfg = tiny_train_config(root / name, synthetic_corpus, "gla", backend="deepspeed", steps=STEPS,
                                checkpoint__interval=CKPT)
        run(write_config(cfg, root / f"{name}.yaml"), nproc, root / f"{name}.log")
        out[name] = root / name
    cfg = tiny_train_config(root / "killed", synthetic_corpus, "gla", backend="deepspeed", steps=STEPS,
                            checkpoint__interval=CKPT)
    out["killed_config"] = write_config(cfg, root / "killed.yaml")
    run_and_kill_after_checkpoint(out["killed_config"], 2, root / "killed.log", CKPT)
    out["killed"] = root / "killed"
    return out


def test_deepspeed_two_processes_match_one_and_learn(ds_runs):
    one, two = losses(ds_runs["one"]), losses(ds_runs["two"])
    assert sorted(one) == sorted(two) == list(range(1, STEPS + 1))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-5, abs=1e-6), (one, two)
    assert two[STEPS] < two[1] - 0.5, two


def test_deepspeed_exact_resume_after_sigkill(ds_runs):
    ref = losses(ds_runs["two"])
    resumed = resume_killed_run(ds_runs, "resumed_same", 2)
    got = losses(resumed)
    assert f"start at step {CKPT} (resumed from" in log_text(resumed)
    for step in range(CKPT + 1, STEPS + 1):
        assert got[step] == ref[step], f"step {step}: resumed {got[step]!r} != uninterrupted {ref[step]!r}"


def test_deepspeed_resume_on_one_process_via_universal_checkpoint(ds_runs):
    ref = losses(ds_runs["two"])
    resumed = resume_killed_run(ds_runs, "resumed_one", 1)
    got = losses(resumed)
    assert (resumed / "checkpoints" / f"step_{CKPT:08d}" / "ds_universal").is_dir()
    for step in range(CKPT + 1, STEPS + 1):
        assert got[step] == pytest.approx(ref[step], rel=1e-5, abs=1e-6), (step, got, ref)


def test_deepspeed_export_equals_trained_weights(ds_runs, tmp_path):
    from statex_dist.checkpoint.export import checkpoint_state_dict, export_checkpoint, resolve_checkpoint
    from statex_dist.models.loading import load_pretrained

    out = export_checkpoint(ds_runs["two"], tmp_path / "hf")
    model = load_pretrained(out)
    trained = checkpoint_state_dict(resolve_checkpoint(ds_runs["two"]), model)
    exported = model.state_dict()
    assert set(trained) == set(exported)
    for k, v in trained.items():
        assert torch.equal(v.float(), exported[k]), k
