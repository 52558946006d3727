"""Launch settings of our Triton SSD kernels (``triton_ssd.LAUNCH``: warps, pipeline stages and d_state columns
per matmul step, per kernel), swept on the GPU at the Mamba2-1.3B layer shape (b=4, T=4096, H=64, P=64, G=1;
d_state 128 and 512; bf16).

Each setting runs in its own process (``launch_sweep``: a miscompiled setting can poison a CUDA context). A
setting is a whole ``LAUNCH`` dict, in this order (the sweep stops at its time budget, about 25-40 s per
setting): the current ``LAUNCH`` (the reference), then one (warps, stages, block_n) for all six kernels. A
process checks y and every gradient against float64 at (b=1, T=512) and times one fwd+bwd per kernel
(torch.profiler) and as a whole. The kernels are independent, so the best setting is picked per kernel: the least
time at d_state 128 + 512 among the settings that passed, and that combination is run once more as a whole.
Writes ``ssd_launch.md`` (the table), ``best.json`` (a ``LAUNCH`` dict) and ``rows.json`` to ``--out``.

    python benchmarks/ssd_launch_sweep.py --out DIR [--budget-s 240]       the sweep
    python benchmarks/ssd_launch_sweep.py --apply DIR/best.json pytest ARGS...   pytest under that LAUNCH
    python benchmarks/ssd_launch_sweep.py --apply DIR/best.json SCRIPT ARGS...   a script under that LAUNCH
"""
from __future__ import annotations

import sys

from launch_sweep import Plan, cli

KERNELS = {"walk": "ssd_state_walk_kernel", "scan": "ssd_chunk_scan_kernel", "dx": "ssd_bwd_dx_kernel",
           "dbc": "ssd_bwd_dbc_kernel", "cb": "ssd_chunk_cb_kernel", "dcb": "ssd_bwd_dcb_kernel"}
STATES = (128, 512)
# all six kernels: (warps, stages (None: Triton's default), block_n), most likely first (swept 2026-11-30: LAUNCH
# holds the best). Walks of 2 and 4 heads per program were swept in the eighth round and removed (7.5x-11.7x slower).
UNIFORM = [(w, s, bn) for bn in (64, 32, 128) for w in (4, 8) for s in (None, 2, 1)]
TOL_BF16 = 2.5e-2


def _stages(stages) -> str:
    return f"s{stages or 'default'}"


def settings() -> list[tuple[str, dict]]:
    """``(name, LAUNCH dict)`` per setting, in the order they run."""
    from statex_dist.kernels.ssd.triton_ssd import LAUNCH

    out = [("LAUNCH", {k: dict(LAUNCH[k]) for k in KERNELS})]
    for warps, stages, block_n in UNIFORM:
        out.append((f"w{warps} {_stages(stages)} bn{block_n}",
                    {k: dict(num_warps=warps, num_stages=stages, block_n=block_n) for k in KERNELS}))
    return out


def run_one(launch: dict) -> dict:
    """Check and time our SSD under ``launch`` (a ``LAUNCH`` dict) in this process."""
    import torch

    from kernels import SSD_LAYER, _kernel_times, _ssd_inputs, fwd_bwd, time_ms
    from kernel_testing import rel_err

    from statex_dist.kernels import ops
    from statex_dist.kernels.ssd import triton_ssd
    from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

    triton_ssd.LAUNCH = launch
    b, H, P, G = (SSD_LAYER[k] for k in ("b", "H", "P", "G"))
    fn = lambda *a: ops.ssd_attention(*a, backend="triton")  # noqa: E731
    out = {}
    for N in STATES:
        ins = [t.requires_grad_() for t in _ssd_inputs(1, 512, H, P, G, N, "cuda", torch.bfloat16)[:5]]
        ref_in = [t.detach().double().requires_grad_() for t in ins]
        y_r, _ = chunk_ssd_torch(*ref_in, 64, None, False, None)
        dy = torch.randn_like(y_r).to(torch.bfloat16)
        got = [fn(*ins)[0]]
        got += torch.autograd.grad(got[0], ins, dy)
        ref = [y_r, *torch.autograd.grad(y_r, ref_in, dy.double())]
        out[f"err{N}"] = max(rel_err(g, r) for g, r in zip(got, ref))
        ins = [t.requires_grad_() for t in _ssd_inputs(b, 4096, H, P, G, N, "cuda", torch.bfloat16)[:5]]
        run = fwd_bwd(fn, ins, torch.randn_like(ins[0]))
        per_kernel = {r["kernel"]: r["ms_per_step"] for r in _kernel_times(run, f"N={N}")}
        for k, name in KERNELS.items():
            out[f"{k}{N}"] = per_kernel.get(name)
        out[f"total{N}"] = round(time_ms(run, rep=100), 3)
        del ins, run
        torch.cuda.empty_cache()
    out["ok"] = all(out[f"err{N}"] <= TOL_BF16 for N in STATES)
    return out


def _set_launch(launch: dict) -> None:
    from statex_dist.kernels.ssd import triton_ssd

    triton_ssd.LAUNCH = launch


def _plan() -> Plan:
    header = ["# SSD launch sweep (fwd+bwd ms per kernel at b=4, T=4096, H=64, P=64, G=1, bf16)", "",
              "Each setting is a whole LAUNCH; err = worst relative error of y and the gradients against float64 at "
              "b=1, T=512."]
    # per kernel, the least time at d_state 128 + 512 among the settings that passed
    columns = {(k,): [f"{k}{N}" for N in STATES] for k in KERNELS}
    return Plan(settings(), columns, header, "ssd_launch.md", [f"err{N}" for N in STATES],
                [f"{k}{N}" for N in STATES for k in KERNELS] + [f"total{N}" for N in STATES])


if __name__ == "__main__":
    sys.exit(cli(__file__, __doc__, run_one, _set_launch, _plan))
