"""DeepSpeed ZeRO-1/2's gradient checks in a few fused kernels instead of a few thousand small ones.

Why: with bf16, DeepSpeed 0.19 runs two passes over the gradient partition before each optimizer step, one tensor
at a time (339 tensors for GLA-1.3B):
- the overflow check (``check_grad_overflow``, on by default for bf16 since deepspeed#8035): ``amax``, ``amin``,
  two ``isfinite`` and more per tensor, about 2,400 kernel launches, then a host sync;
- the gradient norm (``get_grad_norm_direct``): a copy to fp64 and a norm per tensor, about 1,000 launches.
The first sync drains the GPU, which then idles while the host launches the rest: DeepSpeed's ZeRO-2 step at one
H200 was 0.362-0.366 s against FSDP2's 0.318-0.321 s on the same model, and cProfile put 45 ms of the host's
step in the overflow pass (2026-12-01, docs/benchmarks.md, fourteenth round).

What changes, on the optimizer instance only (``fuse_zero_grad_checks``):
- the norm is one ``torch._foreach_norm`` over the partition (per-tensor norms accumulated in fp32, as
  ``torch.nn.utils.clip_grad_norm_`` does, their squares summed in fp64), reduced over the data-parallel group as
  before, non-finite masked to DeepSpeed's ``-1`` as before;
- the separate overflow pass is dropped: a NaN or inf in any gradient makes that norm non-finite, and DeepSpeed's
  ``step`` already treats a non-finite norm as an overflow when ``check_grad_overflow`` is on (it skips the step
  and zeroes the gradients), so a bad step is skipped exactly as before, one pass later.
(DeepSpeed runs the overflow pass only with ``check_grad_overflow``, and checks the norm then and in every
fp32 or fp16 run; in bf16 without it, DeepSpeed checks neither, and only the norm gets faster.) It applies only
where these statements hold:
``DeepSpeedZeroOptimizer`` (stages 1 and 2) computing the norm, no CPU offload, no model or pipeline parallelism,
no MoE, and DeepSpeed 0.19.x (the version whose ``step`` was read); anything else keeps DeepSpeed's own code and
says so in the log.
``parallel.deepspeed_fused_grad_checks=false`` turns it off.
"""

from __future__ import annotations

import types

import torch

CHECKED_VERSIONS = ("0.19.",)  # DeepSpeed releases whose ZeRO-1/2 ``step`` this module was written against


def fuse_zero_grad_checks(optimizer) -> str | None:
    """Replace the ZeRO-1/2 optimizer's per-tensor overflow pass and gradient norm (see the module docstring).
    Returns None when applied, else why not (the optimizer is then unchanged)."""
    import deepspeed

    why = _unsupported(optimizer, deepspeed.__version__)
    if why is None:
        optimizer.get_grad_norm_direct = types.MethodType(_fused_grad_norm, optimizer)
        optimizer.check_overflow = types.MethodType(_overflow_from_norm, optimizer)
    return why


def _unsupported(opt, version: str) -> str | None:
    from deepspeed.runtime.zero.stage_1_and_2 import DeepSpeedZeroOptimizer
    from deepspeed.comm import pg_utils

    checks = [
        (not version.startswith(CHECKED_VERSIONS), f"DeepSpeed {version} (written against {CHECKED_VERSIONS})"),
        (not isinstance(opt, DeepSpeedZeroOptimizer),  # ZeRO-3, or BF16_Optimizer (ZeRO-1, fp32 accumulation)
         f"{type(opt).__name__} is not DeepSpeedZeroOptimizer (ZeRO-1/2)"),
        (not getattr(opt, "compute_grad_norm", False), "zero_optimization.compute_grad_norm is off"),
        (getattr(opt, "cpu_offload", True), "optimizer offload"),
        (getattr(opt, "has_moe_layers", True), "MoE layers"),
        (pg_utils.is_parallel(getattr(opt, "model_parallel_group", None)), "model parallelism"),
        (any(getattr(p, "ds_pipe_replicated", False) for g in getattr(opt, "bit16_groups", []) for p in g),
         "pipeline-replicated parameters"),
    ]
    return next((why for bad, why in checks if bad), None)


def _overflow_from_norm(self, partition_gradients=True):
    """Stands in for ``check_overflow``: no separate pass (the norm in ``step`` finds a non-finite gradient)."""
    self.overflow = False


def _fused_grad_norm(self, gradients, params, norm_type=2):
    """The L2 norm of this rank's gradient partition over the data-parallel group, ``-1`` when non-finite (the
    contract of ``get_grad_norm_direct`` for ``norm_type`` 2), from one fused per-tensor norm."""
    from deepspeed import comm as dist
    from deepspeed.runtime.utils import mask_nan_or_inf_with_val_inplace

    if float(norm_type) != 2.0:
        raise NotImplementedError("fused ZeRO gradient checks compute the L2 norm only")
    grads = [g for g in gradients if g is not None and not getattr(g, "_zero_padding", False)]
    if grads:
        norms = torch._foreach_norm([g.detach() for g in grads], 2, dtype=torch.float32)
        total = torch.stack(norms).double().square().sum().float().to(self.device)
    else:
        total = torch.zeros((), dtype=torch.float32, device=self.device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self.dp_process_group)
    total = total.sqrt()
    mask_nan_or_inf_with_val_inplace(total, device=self.device)
    return total
