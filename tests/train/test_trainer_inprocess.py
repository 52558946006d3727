"""Single-process trainer runs in this process (backend single): expansion init == `statex expand`, group LRs
and frozen groups, non-finite skip-and-abort, corrupt checkpoint fallback, export round trip with Auto classes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import statex_dist  # noqa: F401  (registers the Auto classes)
from statex_dist.config.io import from_dict
from statex_dist.expansion.apply import is_expanded_param
from statex_dist.expansion.plan import ExpansionPlan
from statex_dist.models.loading import build_model, config_from_dict, save_as_fla
from statex_dist.train.api import run_training
from statex_dist.train.config import TrainConfig
from statex_dist.train.optim import GroupSpec, group_lr
from train_runs import REPO, assert_run_equals_statex_expand, losses, records, tiny_train_config


def _base_checkpoint(tmp_path, family):
    raw = json.loads((REPO / "configs" / "models" / f"{family}-tiny.json").read_text())
    torch.manual_seed(123)
    return save_as_fla(build_model(config_from_dict(raw), device="cpu"), tmp_path / f"{family}-base")


def _cfg(d: dict) -> TrainConfig:
    return from_dict(TrainConfig, d)


@pytest.mark.parametrize("family", ["gla", "mamba2"])
def test_trainer_initialisation_equals_statex_expand(tmp_path, synthetic_corpus, family):
    """With every group frozen for the only step, the exported weights are the trainer's initial weights."""

    base = _base_checkpoint(tmp_path, family)
    d = tiny_train_config(tmp_path / "run", synthetic_corpus, family, backend="single", steps=1, global_rows=1,
                          optim__expanded_freeze_steps=1, optim__inherited_freeze_steps=1)
    d["model"] = {"path": str(base), "expand": {"layers": "0,2", "seed": 7, "gla_heads": 1, "mamba2_state_size": 32}}
    run_training(_cfg(d))
    plan = ExpansionPlan(layers="0,2", seed=7, gla_heads=1, mamba2_state_size=32)
    ref = assert_run_equals_statex_expand(tmp_path / "run", base, plan, tmp_path)
    base_w = load_file(str(base / "model.safetensors"))
    changed = [k for k in ref if k in base_w and (base_w[k].shape != ref[k].shape or not torch.equal(base_w[k], ref[k]))]
    assert changed, "the expansion should have re-initialised some tensors"


def test_group_lrs_follow_schedule_and_frozen_group_does_not_move(tmp_path, synthetic_corpus):
    from statex_dist.checkpoint.export import export_checkpoint

    steps = 6
    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "gla", backend="single", steps=steps, global_rows=2,
                          optim__inherited_freeze_steps=steps, optim__expanded_warmup_steps=0,
                          optim__expanded_lr_mult=2.0)
    cfg = _cfg(d)
    run_training(cfg)
    recs = records(tmp_path / "run")
    for rec in recs:
        step = rec["step"] - 1
        for name in ("expanded_decay", "expanded_no_decay", "inherited_decay", "inherited_no_decay"):
            spec = GroupSpec(name, name.split("_")[0], "no_decay" not in name)
            assert rec[f"lr/{name}"] == pytest.approx(group_lr(spec, step, steps, cfg.optim, cfg.schedule))
        assert rec["lr/inherited_decay"] == 0.0 and rec["lr/expanded_decay"] > 0
    # initial weights: the same config trained for zero steps (all frozen)
    d0 = dict(d, run_dir=str(tmp_path / "init"), steps=1)
    d0["optim"] = dict(d["optim"], inherited_freeze_steps=1, expanded_freeze_steps=1)
    run_training(_cfg(d0))
    init = load_file(str(export_checkpoint(tmp_path / "init", tmp_path / "e0") / "model.safetensors"))
    trained = load_file(str(export_checkpoint(tmp_path / "run", tmp_path / "e1") / "model.safetensors"))
    config = config_from_dict(json.loads((tmp_path / "e1" / "config.json").read_text()))
    moved = {k: not torch.equal(init[k], trained[k]) for k in init}
    for k, m in moved.items():
        assert m == is_expanded_param(config, k), f"{k}: moved={m}"


def test_nonfinite_steps_are_skipped_counted_then_abort(tmp_path, synthetic_corpus, monkeypatch):
    from statex_dist.train import trainer as tr

    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "mamba2", backend="single", steps=6, global_rows=1,
                          max_bad_steps=3)
    t = tr.Trainer(_cfg(d))
    real_forward = t.engine.module.forward
    bad_steps = {1, 3, 4, 5}

    def forward(*args, **kwargs):
        out = real_forward(*args, **kwargs)
        if t.step in bad_steps:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(t.engine.module, "forward", forward)
    before = {k: v.clone() for k, v in t.engine.model.state_dict().items()}
    data = iter(t.loader)
    m0 = t.train_step(data); t.step += 1
    after0 = {k: v.clone() for k, v in t.engine.model.state_dict().items()}
    m1 = t.train_step(data); t.step += 1
    assert not m0["skipped"] and m1["skipped"] and m1["bad_steps_total"] == 1
    assert all(torch.equal(after0[k], v) for k, v in t.engine.model.state_dict().items()), "a skipped step moved weights"
    assert any(not torch.equal(before[k], after0[k]) for k in before)
    # only the loss was poisoned: no submodule, the model's own output is the first non-finite one
    assert t.nonfinite_at.startswith("the model's output (logits or loss) ("), t.nonfinite_at
    t.train_step(data); t.step += 1  # step 2 is fine: the counter of bad steps in a row resets
    assert t.bad_in_row == 0
    with pytest.raises(tr.NonFiniteError, match="3 steps in a row"):
        for _ in range(3):
            t.train_step(data); t.step += 1
    t.close()


def test_nonfinite_loss_names_the_first_module_with_a_nonfinite_output(tmp_path, synthetic_corpus, capfd):
    """A NaN that starts inside the model is traced to the first module whose output is not finite, in the log
    and in the abort message."""
    from statex_dist.train import trainer as tr

    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "mamba2", backend="single", steps=4, global_rows=1,
                          max_bad_steps=2)
    t = tr.Trainer(_cfg(d))
    mixer = t.engine.model.backbone.layers[0].mixer
    mixer.out_proj.register_forward_hook(lambda mod, inp, out: out * float("nan"))
    data = iter(t.loader)
    with pytest.raises(tr.NonFiniteError) as err:
        for _ in range(2):
            t.train_step(data); t.step += 1
    where = "backbone.layers.0.mixer.out_proj (Linear), inputs finite"
    assert t.nonfinite_at == where
    assert f"step 0: first module with a non-finite output: {where}" in capfd.readouterr().err
    assert where in str(err.value)
    t.close()


def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path, synthetic_corpus, capsys):
    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "gla", backend="single", steps=4, global_rows=1,
                          checkpoint__interval=2)
    run_training(_cfg(d))
    ref = losses(tmp_path / "run")
    ckpt4 = tmp_path / "run" / "checkpoints" / "step_00000004"
    victim = max((p for p in ckpt4.rglob("*") if p.is_file() and p.suffix == ".distcp"), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[:10])
    from statex_dist.train.trainer import Trainer

    t = Trainer(_cfg(dict(d, steps=4)))
    assert t.step == 2 and t.resume_from.name == "step_00000002"
    assert "step_00000004 skipped" in capsys.readouterr().out
    t.train()
    t.close()
    assert losses(tmp_path / "run")[4] == ref[4]


def test_export_loads_with_auto_classes(tmp_path, synthetic_corpus):
    from transformers import AutoModelForCausalLM

    from statex_dist.checkpoint.export import checkpoint_state_dict, export_checkpoint, resolve_checkpoint

    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "mamba2", backend="single", steps=2, global_rows=1)
    run_training(_cfg(d))
    out = export_checkpoint(tmp_path / "run", tmp_path / "hf")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "StateXMamba2ForCausalLM"
    assert model.config.layer_overrides == {"0": {"state_size": 32}, "2": {"state_size": 32}}
    trained = checkpoint_state_dict(resolve_checkpoint(tmp_path / "run"), model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained.get(k, trained.get("backbone.embeddings.weight") if k == "lm_head.weight" else None)), k


@pytest.mark.parametrize("backend,mode,offload", [("single", "mixed_bf16", False), ("single", "pure_bf16", False),
                                                   ("fsdp", "pure_bf16", False), ("fsdp", "mixed_bf16", False)])
def test_precision_modes_learn(tmp_path, synthetic_corpus, backend, mode, offload):
    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "gla", backend=backend, steps=6, global_rows=2,
                          precision__mode=mode, parallel__cpu_offload=offload)
    run_training(_cfg(d))
    curve = losses(tmp_path / "run")
    assert curve[6] < curve[1] - 0.3, curve
    from statex_dist.checkpoint.export import export_checkpoint
    from statex_dist.models.loading import load_pretrained

    model = load_pretrained(export_checkpoint(tmp_path / "run", tmp_path / "hf"))
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


def test_cpu_offload_without_gpu_is_refused(tmp_path, synthetic_corpus):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: offload is allowed")
    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "gla", backend="fsdp", steps=1, global_rows=1,
                          parallel__cpu_offload=True)
    with pytest.raises(ValueError, match="cpu_offload needs a GPU"):
        run_training(_cfg(d))


def test_document_masking_run(tmp_path, synthetic_corpus):
    """Packed rows with several documents each and a state reset at every document (cu_seqlens)."""
    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "mamba2", backend="single", steps=6, global_rows=2,
                          micro_batch=2, data__packing="concat", data__reset_state_at_docs=True,
                          data__seq_len=128)
    d["global_batch_tokens"] = 2 * 128
    run_training(_cfg(d))
    curve = losses(tmp_path / "run")
    assert curve[6] < curve[1] - 0.3, curve
    assert all(r["tokens"] > 0 for r in records(tmp_path / "run"))


def test_garbage_is_collected_at_the_scheduled_steps_only(tmp_path, synthetic_corpus):
    """gc_interval=2: no automatic collection inside steps 1 and 3, a full one ending steps 2 and 4 (gc_ms is the
    time collecting during each step), and Python's collector back to normal after the run."""
    import gc

    d = tiny_train_config(tmp_path / "run", synthetic_corpus, "gla", backend="single", steps=4, global_rows=1,
                          gc_interval=2)
    run_training(_cfg(d))
    gc_ms = {r["step"]: r["gc_ms"] for r in records(tmp_path / "run")}
    assert gc_ms[1] == gc_ms[3] == 0.0 and gc_ms[2] > 0.0 and gc_ms[4] > 0.0, gc_ms
    assert gc.isenabled() and gc.get_freeze_count() == 0
