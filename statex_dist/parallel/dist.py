"""Process-group set-up and small collectives that work with and without a process group."""

from __future__ import annotations

import datetime
import logging
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger("statex")


@dataclass
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_device(kind: str, local_rank: int) -> torch.device:
    if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()):
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if kind == "auto" and torch.version.cuda is not None:
        # a CUDA build of torch that sees no GPU: usually a job step without GPUs or CUDA_VISIBLE_DEVICES=""
        log.warning("device auto: this CUDA build of torch sees no GPU (CUDA_VISIBLE_DEVICES=%r); training on "
                    "the CPU (set device: cuda to make this an error)", os.environ.get("CUDA_VISIBLE_DEVICES"))
    return torch.device("cpu")


def init_distributed(backend: str, device_kind: str = "auto", timeout_s: int = 1800) -> DistInfo:
    """Join the process group torchrun / the deepspeed launcher / srun set up (env://).

    A plain ``python`` / in-process call gets a one-rank group on a free local port for the backends that
    need one (FSDP2 needs a mesh even at degree 1); ``single`` never creates a group.
    """
    if "RANK" not in os.environ and "SLURM_PROCID" in os.environ and "WORLD_SIZE" not in os.environ:
        raise RuntimeError("running under srun without torchrun: launch with slurm/post_train.sh (srun -> torchrun)")
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = pick_device(device_kind, local_rank)
    if backend == "single":
        if world > 1:
            raise RuntimeError(f"parallel.backend single with WORLD_SIZE={world}: use fsdp, ddp or deepspeed")
        return DistInfo(0, 1, 0, device)
    if not dist.is_initialized():
        pg_backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"timeout": datetime.timedelta(seconds=timeout_s)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        if "MASTER_ADDR" in os.environ:
            dist.init_process_group(pg_backend, **kwargs)
        else:  # an in-process, one-rank run
            dist.init_process_group(pg_backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0,
                                    world_size=1, **kwargs)
            for key in ("RANK", "LOCAL_RANK"):  # DeepSpeed reads these
                os.environ.setdefault(key, "0")
            os.environ.setdefault("WORLD_SIZE", "1")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


def destroy_distributed() -> None:
    # DeepSpeed on CPU aborts rank 0 at exit when the group is left alive.
    if dist.is_initialized():
        dist.destroy_process_group()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if is_dist():
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few float64 scalars over all ranks (exact for token counts up to 2^53)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if is_dist():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_reduce_max(values: list[float], device: torch.device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if is_dist():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def all_gather_objects(obj) -> list:
    if not is_dist():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
