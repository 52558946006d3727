"""Build on meta, expand on meta, shard, then fill each rank's shard from the source weights.

Every rank reads from the safetensors files only the rows its shard holds (``safe_open(...).get_slice``);
the blocks StateX expands are read whole, one block at a time, run through ``expand_block_tensors`` (the very
function ``statex expand`` uses, with the same per-layer generator) and sliced. So no rank ever holds the whole
fp32 model, and the new parameters are bit-identical to what ``statex expand --seed S`` writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from statex_dist.expansion.apply import block_prefix, expand_block_tensors, expanded_config
from statex_dist.expansion.plan import ExpansionPlan
from statex_dist.models.loading import CheckpointError, build_model, config_from_dict, load_config


class SafetensorsSource:
    """Lazy, slice-able reader over the ``*.safetensors`` files of a checkpoint directory."""

    def __init__(self, path: str | Path):
        from safetensors import safe_open

        self.path = Path(path)
        files = sorted(self.path.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{path}: no *.safetensors files (sharded loading reads safetensors only)")
        self._handles = [safe_open(str(f), framework="pt") for f in files]
        self._where = {k: h for h in self._handles for k in h.keys()}

    def keys(self):
        return self._where.keys()

    def read(self, key: str, rows: tuple[int, int] | None = None) -> torch.Tensor:
        if key not in self._where:
            raise CheckpointError(f"{self.path}: tensor {key!r} is missing")
        handle = self._where[key]
        if rows is None:
            return handle.get_tensor(key)
        return handle.get_slice(key)[rows[0]:rows[1]]


class DictSource:
    """The same interface over an in-memory state dict (random init for pre-training and tests)."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.state = state

    def keys(self):
        return self.state.keys()

    def read(self, key: str, rows: tuple[int, int] | None = None) -> torch.Tensor:
        t = self.state[key]
        return t if rows is None else t[rows[0]:rows[1]]


def _tied(config) -> bool:
    return bool(getattr(config, "tie_word_embeddings", False))


def model_configs(model_cfg, seed: int, saved_config: dict | None = None):
    """(base config, training config, plan or None). A resumed run rebuilds from its saved config, no surgery."""
    if saved_config is not None:
        cfg = config_from_dict(saved_config)
        base, plan = None, None
    else:
        if model_cfg.path:
            base = load_config(model_cfg.path)
        else:
            raw = json.loads(Path(model_cfg.config).read_text())
            base = config_from_dict(raw)
        plan = None
        cfg = base
        if model_cfg.expand is not None:
            e = model_cfg.expand
            plan = ExpansionPlan(layers=e.layers, mode=e.mode, gla_heads=e.gla_heads,
                                 mamba2_state_size=e.mamba2_state_size, seed=e.seed,
                                 source=model_cfg.path or model_cfg.config)
            plan = plan.resolve(base.num_hidden_layers)
            cfg = expanded_config(base, plan)
    for key in ("kernel_backend", "kernel_save_states"):
        value = getattr(model_cfg, key)
        if value is None:
            continue
        for c in (cfg, base):
            if c is not None:
                setattr(c, key, value)
    return base, cfg, plan


def random_init_state(base_config, seed: int) -> dict[str, torch.Tensor]:
    """The model's own init, drawn on CPU from ``seed``: the same on every rank and at every world size.
    Holds the full (base) model in memory; meant for from-scratch tiny/small models and tests."""
    cpu_rng = torch.get_rng_state()
    torch.manual_seed(seed)
    model = build_model(base_config, device="cpu")
    torch.set_rng_state(cpu_rng)
    return {k: v.detach() for k, v in model.state_dict().items()}


def _local_rows(param: torch.Tensor) -> tuple[int, int] | None:
    """Row range of this rank's shard for a Shard(0) DTensor; None for a replicated / plain tensor."""
    if not isinstance(param, DTensor):
        return None
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
    from torch.distributed.tensor.placement_types import Shard

    if not any(isinstance(p, Shard) for p in param.placements):
        return None
    if any(isinstance(p, Shard) and p.dim != 0 for p in param.placements):
        raise NotImplementedError(f"sharding on dim != 0 is not supported: {param.placements}")
    shape, offset = compute_local_shape_and_global_offset(param.shape, param.device_mesh, param.placements)
    return (offset[0], offset[0] + shape[0]) if param.ndim else None


class WeightFiller:
    """Values of the training model's tensors from a source and an expansion plan, one key at a time.

    Expanded blocks are computed whole (one block cached at a time); other tensors are read as row slices.
    """

    def __init__(self, base_config, config, plan: ExpansionPlan | None, source):
        self.base_config, self.config, self.plan, self.source = base_config, config, plan, source
        expanded = set(plan.layers) if plan is not None else set()
        self.prefixes = {block_prefix(config, i): i for i in expanded}
        self.cache: dict[int, dict[str, torch.Tensor]] = {}
        self.stats = {"sliced": 0, "expanded_blocks": 0, "tensors": 0}

    def value(self, key: str, rows: tuple[int, int] | None = None) -> torch.Tensor:
        self.stats["tensors"] += 1
        layer = next((i for p, i in self.prefixes.items() if key.startswith(p)), None)
        if layer is None:
            self.stats["sliced"] += rows is not None
            return self.source.read(key, rows)
        if layer not in self.cache:
            self.cache.clear()  # one expanded block in memory at a time
            prefix = block_prefix(self.base_config, layer)
            old = {k[len(prefix):]: self.source.read(k).float() for k in self.source.keys() if k.startswith(prefix)}
            new = expand_block_tensors(self.base_config, self.config, self.plan, layer, old)
            self.cache[layer] = {prefix + k: v for k, v in new.items()}
            self.stats["expanded_blocks"] += 1
        full = self.cache[layer][key]
        return full if rows is None else full[rows[0]:rows[1]]


@torch.no_grad()
def load_initial_weights(model: torch.nn.Module, base_config, config, plan: ExpansionPlan | None, source) -> dict:
    """Fill every (possibly sharded) parameter of ``model`` from ``source`` (+ the expansion plan).

    Returns counts for the log: tensors read as slices, whole blocks expanded.
    """
    filler = WeightFiller(base_config, config, plan, source)
    tied = _tied(config)
    for key, target in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue  # the same parameter as the input embeddings
        rows = _local_rows(target)
        value = filler.value(key, rows)
        local = target.to_local() if isinstance(target, DTensor) else target
        if tuple(value.shape) != tuple(local.shape):
            raise CheckpointError(f"{key}: source gives shape {tuple(value.shape)}, this rank holds {tuple(local.shape)}")
        local.copy_(value)
    return filler.stats


@torch.no_grad()
def load_initial_weights_zero3(model: torch.nn.Module, base_config, config, plan, source, rank: int) -> dict:
    """ZeRO-3: parameters are partitioned from construction (``deepspeed.zero.Init``); gather one parameter
    at a time, let rank 0 write it, and DeepSpeed re-partitions it on exit. No rank holds the whole model."""
    import deepspeed

    filler = WeightFiller(base_config, config, plan, source)
    for key, param in model.named_parameters():  # tied parameters appear once
        with deepspeed.zero.GatheredParameters([param], modifier_rank=0):
            if rank == 0:
                value = filler.value(key)
                if tuple(value.shape) != tuple(param.shape):
                    raise CheckpointError(f"{key}: source gives shape {tuple(value.shape)}, model has {tuple(param.shape)}")
                param.copy_(value)
    return filler.stats
