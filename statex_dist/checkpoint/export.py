"""``statex export``: a training checkpoint (DCP or DeepSpeed) -> a Hugging Face directory.

The directory holds ``config.json`` (the expanded config: ``model_type`` statex_gla / statex_mamba2 with its
``layer_overrides`` and ``statex`` record), ``model.safetensors`` in fp32, and the tokenizer files of the source
model when it had any. ``statex_dist.models.loading.load_pretrained`` and, after ``import statex_dist``,
``AutoModelForCausalLM.from_pretrained`` load it. Runs in one process without a process group.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from statex_dist.checkpoint import manager
from statex_dist.checkpoint.state_io import DS_TAG
from statex_dist.models.loading import CheckpointError, build_model, config_from_dict, copy_tokenizer_files
from statex_dist.utils.atomic import atomic_directory


def resolve_checkpoint(path: str | Path) -> Path:
    """A step directory from a run directory, its ``checkpoints`` folder or the step directory itself."""
    path = Path(path)
    if (path / manager.MANIFEST).is_file():
        reason = manager.validate(path)
        if reason:
            raise CheckpointError(f"{path}: {reason}")
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    found = manager.find_resume_checkpoint(root)
    if found is None:
        raise CheckpointError(f"{path}: no complete checkpoint found")
    return found


def checkpoint_state_dict(ckpt: Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Full fp32 weights of a checkpoint, with the model's parameter names."""
    backend = manager.read_manifest(ckpt)["backend"]
    if backend == "deepspeed":
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        sd = get_fp32_state_dict_from_zero_checkpoint(str(ckpt), tag=DS_TAG)
        return {k.removeprefix("module."): v for k, v in sd.items()}
    import torch.distributed.checkpoint as dcp

    state = {"model": {k: torch.empty_like(v) for k, v in model.state_dict().items()}}
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    if tied:
        state["model"].pop("lm_head.weight", None)
    dcp.load(state, checkpoint_id=str(ckpt / "dcp"), no_dist=True)
    return state["model"]


def export_checkpoint(checkpoint_or_run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    ckpt = resolve_checkpoint(checkpoint_or_run_dir)
    out = Path(out_dir)
    if out.exists() and not overwrite:  # fail before the (slow) checkpoint read
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    config = config_from_dict(json.loads((ckpt / "model_config.json").read_text()))
    model = build_model(config, device="cpu", dtype=torch.float32)
    state = checkpoint_state_dict(ckpt, model)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    if tied:
        state.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise CheckpointError(f"{ckpt}: checkpoint does not match its model config (missing {missing[:6]}, "
                              f"unexpected {unexpected[:6]})")
    if tied:
        model.tie_weights()
    with atomic_directory(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        train_cfg = yaml.safe_load((ckpt / "train_config.yaml").read_text()) if (ckpt / "train_config.yaml").is_file() else {}
        src = (train_cfg.get("model") or {}).get("path")
        if src and Path(src).is_dir():
            copy_tokenizer_files(src, tmp)
        (tmp / "statex_training.json").write_text(json.dumps(
            {"checkpoint": str(ckpt), **manager.read_manifest(ckpt), "files": None}, indent=1))
    return out
