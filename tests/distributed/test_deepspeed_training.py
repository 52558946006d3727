"""DeepSpeed ZeRO-2 on CPU (gloo, DeepSpeed's CPU accelerator): 1 vs 2 processes, loss goes down, exact resume
after SIGKILL, resume on another number of processes through a universal checkpoint, export."""

from __future__ import annotations


import pytest
import torch

pytest.importorskip("deepspeed")

from train_runs import assert_resume_continues, losses, reference_runs  # noqa: E402

pytestmark = [pytest.mark.dist, pytest.mark.slow]
STEPS, CKPT = 8, 4


@pytest.fixture(scope="module")
def ds_runs(tmp_path_factory, synthetic_corpus):
    return reference_runs(tmp_path_factory.mktemp("ds_gla"), synthetic_corpus, STEPS, CKPT, backend="deepspeed")


def test_deepspeed_two_processes_match_one_and_learn(ds_runs):
    one, two = losses(ds_runs["one"]), losses(ds_runs["two"])
    assert sorted(one) == sorted(two) == list(range(1, STEPS + 1))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-5, abs=1e-6), (one, two)
    assert two[STEPS] < two[1] - 0.5, two


def test_deepspeed_exact_resume_after_sigkill(ds_runs):
    assert_resume_continues(ds_runs, "resumed_same", 2, STEPS, CKPT, exact=True)


def test_deepspeed_resume_on_one_process_via_universal_checkpoint(ds_runs):
    resumed = assert_resume_continues(ds_runs, "resumed_one", 1, STEPS, CKPT, exact=False)
    assert (resumed / "checkpoints" / f"step_{CKPT:08d}" / "ds_universal").is_dir()


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
