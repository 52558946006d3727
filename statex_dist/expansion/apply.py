"""Plan x model -> expanded model (+ config), and the ``statex expand`` directory-to-directory job.

Untouched parameters are moved, not copied (``load_state_dict(assign=True)`` hands the very same tensors to
the new model), so expansion never holds the model twice and they stay bitwise identical. On the meta
device the whole thing is shape arithmetic: a 1.3B or 7B plan costs milliseconds.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from statex_dist.expansion.plan import ExpansionError, ExpansionPlan
from statex_dist.expansion.surgery import (
    check_gla,
    check_mamba2,
    expand_gla_block,
    expand_mamba2_block,
    layer_generator,
)
from statex_dist.models.loading import build_model, copy_tokenizer_files, family_of, load_pretrained
from statex_dist.utils.atomic import atomic_directory


def block_prefix(config, idx: int) -> str:
    return f"{'model' if family_of(config) == 'gla' else 'backbone'}.layers.{idx}."


def expanded_config(config, plan: ExpansionPlan):
    """New config with the plan's per-layer geometry and the ``statex`` record; validates the request."""
    plan = plan.resolve(config.num_hidden_layers)
    if not plan.layers:
        raise ExpansionError("the plan expands no layer (layers=none): there is nothing to do")
    family = family_of(config)
    new = copy.deepcopy(config)
    overrides = dict(config.layer_overrides)
    for idx in plan.layers:
        if family == "gla":
            check_gla(config, idx, plan.gla_heads, plan.mode)
            overrides[str(idx)] = {"num_heads": plan.gla_heads}
        else:
            check_mamba2(config, idx, plan.mamba2_state_size, plan.mode)
            overrides[str(idx)] = {"state_size": plan.mamba2_state_size}
    new.layer_overrides = overrides
    history = list((config.statex or {}).get("history", []))
    if config.statex and "layers" in config.statex:
        history.append({k: v for k, v in config.statex.items() if k != "history"})
    new.statex = {**plan.record(family), **({"history": history} if history else {})}
    new.model_type = "statex_gla" if family == "gla" else "statex_mamba2"
    return new


def expand_block_tensors(old_config, new_config, plan: ExpansionPlan, idx: int, block: dict) -> dict:
    """One block's tensors (keys relative to the block) after expansion of layer ``idx``.

    The trainer calls this on the tensors it loads for a block, so a sharded run initialises exactly what
    ``statex expand`` writes for the same seed.
    """
    gen = layer_generator(plan.seed, idx)
    if family_of(old_config) == "gla":
        return expand_gla_block(block, old_config.layer_num_heads(idx), new_config.layer_num_heads(idx), plan.mode, gen)
    return expand_mamba2_block(
        block, old_config, old_config.layer_state_size(idx), new_config.layer_state_size(idx), plan.mode, gen
    )


def expand_model(model, plan: ExpansionPlan):
    """Return a new model with the plan applied; ``model`` gives up its tensors to it (do not reuse it)."""
    old_config = model.config
    plan = plan.resolve(old_config.num_hidden_layers)
    new_config = expanded_config(old_config, plan)
    state = model.state_dict()
    tied = bool(getattr(old_config, "tie_word_embeddings", False))
    if tied:
        state.pop("lm_head.weight", None)
    for idx in plan.layers:
        prefix = block_prefix(old_config, idx)
        block = {k[len(prefix):]: state.pop(k) for k in list(state) if k.startswith(prefix)}
        for key, value in expand_block_tensors(old_config, new_config, plan, idx, block).items():
            state[prefix + key] = value
    device = next(iter(state.values())).device
    new_model = build_model(new_config, device="meta")
    expected = set(new_model.state_dict()) - ({"lm_head.weight"} if tied else set())
    if set(state) != expected:
        raise ExpansionError(f"internal: key mismatch after surgery: {sorted(set(state) ^ expected)[:6]}")
    new_model.load_state_dict(state, strict=not tied, assign=True)
    if tied:
        new_model.tie_weights()
    if device.type == "meta":
        return new_model
    return new_model.to(device)


def expand_checkpoint(src: str | Path, dst: str | Path, plan: ExpansionPlan, overwrite: bool = False) -> Path:
    """``statex expand``: load ``src``, expand, write a Hugging Face directory ``dst`` atomically."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and not overwrite:  # fail before loading the model
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    model = load_pretrained(src)
    plan = ExpansionPlan(**{**plan.__dict__, "source": plan.source or str(src)})
    expanded = expand_model(model, plan)
    with atomic_directory(dst, overwrite=overwrite) as tmp:
        expanded.save_pretrained(tmp)
        copy_tokenizer_files(src, tmp)
        (tmp / "statex_expansion.json").write_text(json.dumps(expanded.config.statex, indent=2))
    return dst


def plan_on_meta(config, plan: ExpansionPlan):
    """Expanded model on the meta device (no memory, no weights): for reports and sharded training."""
    return expand_model(build_model(config, device="meta"), plan)


def unexpanded_config(config):
    """The baseline a StateX config is compared against: same model with every layer at the global geometry."""
    base = copy.deepcopy(config)
    base.layer_overrides = {}
    base.statex = None
    return base


def expanded_layers(config) -> list[int]:
    """Layers whose geometry differs from the global one (the StateX-expanded layers)."""
    return sorted(int(k) for k in config.layer_overrides)


def is_expanded_param(config, name: str) -> bool:
    """True for parameters StateX touched: the token mixer of an expanded layer (and, for GLA, its pre-norm,
    which reinit resets). Optimizer groups use this to give new parameters their own learning rate."""
    name = name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")
    name = name.replace("module.", "", 1) if name.startswith("module.") else name
    for idx in expanded_layers(config):
        prefix = block_prefix(config, idx)
        mixer = "attn" if family_of(config) == "gla" else "mixer"
        if name.startswith(prefix + mixer + ".") or (mixer == "attn" and name == prefix + "attn_norm.weight"):
            return True
    return False
