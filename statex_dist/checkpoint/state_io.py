"""Checkpoint mechanics: what each backend writes into a checkpoint directory and how it reads it back.

fsdp / ddp / single: ``torch.distributed.checkpoint`` (DCP) of the model and optimizer state dicts from
``get_state_dict`` (parameter-name keys, wrapper-free), so a checkpoint written by N ranks loads on M ranks
(DCP reshards) and also into a plain, unsharded model (export). deepspeed: ``engine.save_checkpoint``; another
world size loads through DeepSpeed's universal checkpoint (``ds_to_universal``, then ``load_universal``).
Per-rank state (data-loader position, RNG) goes to ``rank_XXXXX.pt`` next to it.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch
import torch.distributed.checkpoint as dcp

log = logging.getLogger(__name__)
DS_TAG = "ds"
DS_UNIVERSAL_TAG = "ds_universal"


def _torch_state(engine):
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(engine.module, engine.optimizer)
    return {"model": msd, "optim": osd}


_ASYNC_GROUP = None


def _async_group():
    """A separate gloo group for background saves: their collectives must not interleave with training's."""
    global _ASYNC_GROUP
    import torch.distributed as dist

    if _ASYNC_GROUP is None and dist.is_initialized():
        _ASYNC_GROUP = dist.new_group(backend="gloo")
    return _ASYNC_GROUP


def save_engine(engine, ckpt_dir: Path, async_save: bool = False):
    """Write model + optimizer; returns a future when saving asynchronously (None otherwise)."""
    if engine.backend == "deepspeed":
        engine.engine.save_checkpoint(str(ckpt_dir), tag=DS_TAG, save_latest=False)
        return None
    state = _torch_state(engine)
    if async_save:
        return dcp.async_save(state, checkpoint_id=str(ckpt_dir / "dcp"), process_group=_async_group())
    dcp.save(state, checkpoint_id=str(ckpt_dir / "dcp"))
    return None


def load_engine(engine, ckpt_dir: Path, universal: bool = False) -> None:
    if engine.backend == "deepspeed":
        tag = DS_UNIVERSAL_TAG if universal else DS_TAG
        path, _ = engine.engine.load_checkpoint(str(ckpt_dir), tag=tag, load_optimizer_states=True,
                                                load_lr_scheduler_states=False, load_module_strict=True)
        if path is None:
            raise RuntimeError(f"DeepSpeed could not load {ckpt_dir}/{tag}")
        return
    from torch.distributed.checkpoint.state_dict import set_state_dict

    state = _torch_state(engine)
    dcp.load(state, checkpoint_id=str(ckpt_dir / "dcp"))
    set_state_dict(engine.module, engine.optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def convert_deepspeed_to_universal(ckpt_dir: Path) -> Path:
    """Rank 0: ``ckpt/ds`` -> ``ckpt/ds_universal`` (once), for resuming on another number of ranks."""
    out = ckpt_dir / DS_UNIVERSAL_TAG
    if (out / "zero").is_dir():
        return out
    import argparse

    from deepspeed.checkpoint.ds_to_universal import main as ds_to_universal

    args = argparse.Namespace(
        input_folder=str(ckpt_dir / DS_TAG), output_folder=str(out), num_extract_workers=1, num_merge_workers=1,
        keep_temp_folder=False, strict=True, inject_missing_state=True,
    )
    ds_to_universal(args)
    return out


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def rank_file(ckpt_dir: Path, rank: int) -> Path:
    return ckpt_dir / f"rank_{rank:05d}.pt"


def save_rank_state(ckpt_dir: Path, rank: int, data_state: dict | None) -> None:
    path = rank_file(ckpt_dir, rank)
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"data": data_state, "rng": rng_state()}, tmp)
    tmp.replace(path)


def load_rank_states(ckpt_dir: Path, world: int) -> list[dict]:
    return [torch.load(rank_file(ckpt_dir, r), weights_only=False) for r in range(world)]
