"""Activation checkpointing and FSDP2 for our recurrent LMs, applied to a meta-device model in a fixed order.

Order: activation checkpointing (inside each block's forward), then ``fully_shard`` on every block, then on the
root (embeddings, final norm, head). Sharding each block separately lets FSDP all-gather one block at a time
and overlap it with the previous block's compute; the root call catches the remaining parameters. FSDP is
applied even at degree 1 so a single-GPU run exercises the same code path as a 1,000-GPU one.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def apply_activation_checkpointing(model: torch.nn.Module, mode: str, every_k: int = 1) -> list[int]:
    """Recompute the activations of the chosen blocks in backward; returns the block indices.

    The block's ``forward`` is wrapped in place (no wrapper module), so parameter names, and with them
    checkpoints and exports, are the same with and without checkpointing.
    """
    if mode == "none":
        return []
    step = 1 if mode == "full" else every_k
    chosen = []
    for idx, block in enumerate(model.backbone_module.layers):
        if idx % step:
            continue
        inner = block.forward

        def forward(*args, _inner=inner, _block=block, **kwargs):
            if torch.is_grad_enabled():
                _block._statex_ac_input = args[0] if args else None  # only a reference, for memory reports
            return checkpoint(_inner, *args, use_reentrant=False, **kwargs)

        block.forward = forward
        chosen.append(idx)
    return chosen


def build_mesh(world: int, device_type: str, hsdp_shard_size: int | None):
    from torch.distributed.device_mesh import init_device_mesh

    if hsdp_shard_size is None or hsdp_shard_size == world:
        return init_device_mesh(device_type, (world,), mesh_dim_names=("shard",))
    if world % hsdp_shard_size:
        raise ValueError(f"parallel.hsdp_shard_size={hsdp_shard_size} does not divide the world size {world}")
    return init_device_mesh(device_type, (world // hsdp_shard_size, hsdp_shard_size),
                            mesh_dim_names=("replicate", "shard"))


def apply_fsdp(model: torch.nn.Module, mesh, precision: str, cpu_offload: bool,
               reshard_after_forward: bool = True, layers=None) -> None:
    """``reshard_after_forward=False`` keeps every block gathered from its forward to its backward. ``layers``:
    the blocks sharded one by one, our models' ``backbone_module.layers`` unless given (another model's blocks,
    e.g. stock fla's ``model.model.layers``, to time it under the same recipe)."""
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kwargs = {"mesh": mesh}
    if precision == "mixed_bf16":
        # bf16 compute and all-gathers, fp32 gradient reduction and fp32 master weights in the optimizer.
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    layers = model.backbone_module.layers if layers is None else layers
    for idx, block in enumerate(layers):
        # The last block's parameters are needed again at once by backward: keep them gathered.
        fully_shard(block, reshard_after_forward=reshard_after_forward and idx < len(layers) - 1, **kwargs)
    fully_shard(model, **kwargs)
