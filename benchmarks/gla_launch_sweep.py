"""Launch settings of our Triton GLA kernels (``chunk_triton.LAUNCH``: tiles, warps, pipeline stages, per kernel
and per state class), swept on the GPU at the two shapes of GLA-1.3B StateX in bf16:
the original layer (B=4, T=8192, H=4, K=256, V=512: class "small", states every 64 tokens) and the merged head
(B=4, T=8192, H=1, K=1024, V=2048: class "large", every 256).

Each setting runs in its own process (``launch_sweep``). Setting i gives every kernel of every class its i-th
candidate (the kernels are independent, so one process times one candidate of each); candidate 0 is the shipped
``LAUNCH`` (the reference). A process checks the outputs, final state and every gradient against float64 at both
shapes with T=1000 (``tests/kernels/test_gpu.py``'s check, outputs poisoned) and times one fwd+bwd per kernel
(torch.profiler, mean of 5) and as a whole, at both shapes. The best candidate is picked per (class, kernel):
the least time at the class's shape among the settings that passed. Writes ``gla_launch.md``, ``best.json`` (a
``LAUNCH`` dict) and ``rows.json`` to ``--out``.

    python benchmarks/gla_launch_sweep.py --out DIR [--budget-s 240]            the sweep
    python benchmarks/gla_launch_sweep.py --apply DIR/best.json pytest ARGS...   pytest under that LAUNCH
    python benchmarks/gla_launch_sweep.py --apply DIR/best.json SCRIPT ARGS...   a script under that LAUNCH
"""
from __future__ import annotations

import sys

from launch_sweep import Plan, cli

KERNELS = {"walk": "gla_state_kernel", "dstate": "gla_dstate_kernel", "out": "gla_output_kernel",
           "dv": "gla_dv_kernel", "dqk": "gla_dqk_inter_kernel", "prep": "gla_prep_kernel",
           "intra": "gla_intra_kernel", "intra_offdiag": "gla_intra_offdiag_kernel", "dscore": "gla_dscore_kernel",
           "dqk_offdiag": "gla_dqk_offdiag_kernel", "dqk_intra": "gla_dqk_intra_kernel", "dg": "gla_dg_kernel"}
SHAPES = {"large": ("merged", (4, 8192, 1, 1024, 2048)), "small": ("original", (4, 8192, 4, 256, 512))}
CHECKS = {"large": (1, 1000, 1, 1024, 2048), "small": (1, 1000, 4, 256, 512)}


def _kw(keys, rows):
    return [dict(zip(keys, r)) for r in rows]


def _walks(rows):
    return _kw(("BK", "BV", "rows", "num_warps", "num_stages"), rows)


def _tiles(rows, key="BK"):
    return _kw((key, "num_warps", "num_stages"), rows)


def _chunks(rows):
    return _kw(("BK", "BV", "num_warps", "num_stages"), rows)


# Candidates per class and kernel; setting i gives each kernel its i-th candidate (setting 0 is the shipped LAUNCH,
# so each list's first entry is the one shipped before the first sweep and is not run again).
# Shared memory per pipeline stage (bf16 operands) must stay under the H200's 227 KiB over all stages: whole-chunk
# kernels load [CH, BK] + [BK, BV], then [CH, 64] scores + [64, BV] (out, dv), or 2 x [CH, BV] + 2 x [BK, BV]
# (dqk); dqk also keeps two fp32 [CH, BK] accumulators in registers, so its BK stays <= 64 at 8 warps for CH = 256.
# Swept on an H200 (2026-11-30, call w): the walks and whole-chunk kernels (first five) -> LAUNCH.
_LARGE_CHUNK = _chunks([(32, 64, 8, 3), (64, 64, 8, 3), (64, 128, 8, 2), (32, 128, 8, 3), (128, 64, 8, 2),
                        (64, 64, 8, 2), (64, 128, 8, 3), (32, 64, 4, 3), (64, 64, 4, 3), (16, 64, 8, 4),
                        (32, 128, 8, 2), (128, 128, 8, 2)])
_SMALL_CHUNK = _chunks([(64, 64, 4, 3), (64, 128, 4, 3), (128, 64, 4, 3), (64, 128, 8, 3), (32, 64, 4, 3),
                        (128, 128, 8, 2), (64, 64, 4, 2), (64, 64, 8, 3), (128, 64, 4, 2), (32, 128, 4, 3),
                        (256, 64, 8, 2), (64, 256, 8, 2)])
# dqk's state terms of dq and dk in two launches of one accumulator each ("split"; tenth round: the fused kernel's
# two fp32 [256, BK] accumulators held it at 290 TFLOP/s on the merged head); the first entry is the shipped one
_LAUNCH_DQK = {"large": dict(BK=64, BV=32, num_warps=8, num_stages=4), "small": dict(BK=64, BV=64, num_warps=8,
                                                                                     num_stages=3)}


def _split(rows):
    return [dict(c, split=True) for c in _chunks(rows)]


# the pair kernels, prep and dg: the same lists for both classes (their work per program does not depend on the
# chunk size; BK is clamped to the head)
_PAIR = dict(
    prep=_tiles([(32, 4, 3), (64, 4, 3), (16, 4, 3), (64, 8, 3), (128, 8, 3), (32, 2, 3), (16, 2, 3), (128, 4, 3),
                 (32, 8, 3), (64, 2, 3), (256, 8, 3), (16, 1, 3)]),
    intra=_tiles([(64, 4, 3), (32, 4, 3), (64, 2, 3), (128, 4, 3), (32, 2, 3), (64, 4, 2), (128, 8, 3), (16, 4, 3),
                  (64, 8, 3), (128, 2, 2), (32, 1, 3), (64, 4, 4)]),
    intra_offdiag=_tiles([(64, 4, 3), (32, 4, 3), (64, 8, 3), (128, 4, 2), (64, 4, 2), (32, 4, 4), (128, 8, 3),
                          (64, 4, 4), (32, 8, 3), (128, 4, 3), (16, 4, 4), (64, 8, 2)]),
    dscore=_tiles([(64, 4, 3), (128, 4, 3), (64, 8, 3), (32, 4, 3), (128, 8, 3), (64, 4, 2), (128, 4, 2), (64, 4, 4),
                   (256, 8, 2), (32, 4, 4), (128, 8, 2), (64, 2, 3)], key="BV"),
    dqk_offdiag=_tiles([(64, 4, 3), (128, 8, 3), (32, 4, 3), (128, 4, 2), (64, 8, 3), (64, 4, 2), (32, 4, 4),
                        (64, 4, 4), (128, 8, 2), (32, 2, 3), (64, 2, 3), (16, 4, 3)]),
    dqk_intra=_tiles([(128, 4, 3), (64, 4, 3), (32, 4, 3), (128, 8, 3), (64, 2, 3), (32, 2, 3), (256, 8, 3),
                      (128, 2, 3), (64, 8, 3), (16, 1, 3), (128, 4, 2), (32, 1, 3)]),
    dg=_kw(("BK", "BV", "num_warps", "num_stages"),
           [(32, 64, 4, 3), (64, 64, 4, 3), (16, 64, 4, 3), (32, 128, 4, 3), (64, 32, 4, 3), (32, 64, 8, 3),
            (64, 128, 8, 3), (16, 128, 4, 3), (128, 64, 8, 3), (32, 32, 4, 3), (16, 64, 2, 3), (64, 64, 2, 3)]),
)
CANDIDATES = {
    "large": dict(
        # twelfth round: around the shipped (64, 128, 64, 4, 3), for fewer pipeline stages (less shared memory per
        # program: more programs per SM for the merged walk's 1,024 programs at B=4) and other slab shapes. Call w
        # swept (128, 128, 64, 8, 3), (128, 128, 64, 8, 2), (128, 128, 32, 8, 3), (64, 128, 64, 4, 3),
        # (128, 64, 64, 4, 3), (128, 128, 128, 8, 2), (128, 256, 64, 8, 2), (64, 64, 64, 4, 3), (128, 128, 64, 4, 2).
        walk=_walks([(64, 128, 64, 4, 3), (64, 128, 64, 4, 2), (64, 128, 128, 4, 2), (64, 64, 64, 4, 2),
                     (32, 128, 64, 4, 3), (64, 256, 64, 8, 2), (64, 128, 32, 4, 3), (128, 64, 64, 4, 2),
                     (64, 128, 64, 4, 4), (32, 128, 64, 4, 2), (64, 128, 64, 8, 2), (32, 256, 64, 4, 2)]),
        out=_LARGE_CHUNK, dv=_LARGE_CHUNK,
        dqk=[_LAUNCH_DQK["large"]] + _split([(64, 64, 8, 3), (128, 32, 8, 3), (64, 32, 4, 4), (64, 64, 4, 3),
                                              (128, 64, 8, 2), (32, 64, 4, 3), (64, 32, 8, 4), (128, 32, 8, 4),
                                              (64, 128, 8, 2), (32, 128, 4, 2), (128, 64, 4, 2)]), **_PAIR),
    "small": dict(
        walk=_walks([(64, 64, 64, 4, 3), (64, 128, 64, 4, 3), (128, 64, 64, 4, 3), (128, 128, 64, 8, 3),
                     (64, 64, 64, 4, 2), (64, 64, 32, 4, 3), (64, 128, 64, 8, 2), (32, 64, 64, 4, 3),
                     (64, 256, 64, 8, 2), (128, 128, 64, 8, 2), (32, 32, 64, 4, 3), (64, 64, 16, 4, 4)]),
        out=_SMALL_CHUNK, dv=_SMALL_CHUNK,
        dqk=[_LAUNCH_DQK["small"]] + _split([(64, 64, 4, 3), (128, 64, 4, 3), (64, 128, 4, 3), (128, 128, 8, 2),
                                              (256, 64, 8, 2), (32, 64, 2, 3), (64, 64, 2, 3), (128, 64, 8, 3),
                                              (64, 32, 4, 4), (256, 32, 8, 3), (128, 128, 4, 2)]), **_PAIR),
}
for _c in CANDIDATES.values():
    _c["dstate"] = _c["walk"]


def settings() -> list[tuple[str, dict]]:
    """``(name, LAUNCH dict)`` per setting, in the order they run; setting 0 is the shipped ``LAUNCH``."""
    from statex_dist.kernels.gla.chunk_triton import LAUNCH

    n = max(len(c) for cls in CANDIDATES.values() for c in cls.values())
    out = [("LAUNCH", {cls: {k: dict(v) for k, v in LAUNCH[cls].items()} for cls in LAUNCH})]
    for i in range(1, n):
        launch = {cls: {k: dict(c[i] if i < len(c) else LAUNCH[cls][k]) for k, c in CANDIDATES[cls].items()}
                  for cls in CANDIDATES}
        out.append((f"candidates {i}", launch))
    return out


def run_one(launch: dict) -> dict:
    """Check and time our GLA under ``launch`` (a ``LAUNCH`` dict) in this process."""
    import torch

    from kernels import _kernel_times, fwd_bwd, gla_inputs, time_ms
    from test_gpu import check, tolerance

    from statex_dist.kernels.gla import chunk_triton

    _set_launch(launch)
    out, ok = {}, True
    for cls, (name, shape) in SHAPES.items():
        errs = check(dict(shape=CHECKS[cls], dtype=torch.bfloat16))
        out[f"err_{cls}"] = max(errs.values())
        ok &= all(e <= tolerance(torch.bfloat16, n) for n, e in errs.items())
        ins, do = gla_inputs(*shape)
        run = fwd_bwd(lambda q, k, v, g: chunk_triton.chunk_gla_triton(q, k, v, g), ins, do)
        per_kernel = {r["kernel"]: r["ms_per_step"] for r in _kernel_times(run, name)}
        for k, kernel in KERNELS.items():
            out[f"{cls}_{k}"] = per_kernel.get(kernel)
        out[f"{cls}_total"] = round(time_ms(run, rep=100), 3)
        del ins, do, run
        torch.cuda.empty_cache()
    out["ok"] = bool(ok)
    return out


def _set_launch(launch: dict) -> None:
    from statex_dist.kernels.gla import chunk_triton

    chunk_triton.LAUNCH = launch


def _plan() -> Plan:
    header = ["# GLA launch sweep (fwd+bwd ms per kernel, bf16, B=4, T=8192; large: H=1, K=1024, V=2048; small: "
              "H=4, K=256, V=512)", "",
              "Setting i gives each kernel its i-th candidate (rows.json has them); err = worst relative error "
              "of o, the final state and the gradients against float64 at T=1000; walk and prep: both calls "
              "(forward and backward recompute)."]
    # the kernels between 64-row blocks run only for chunks longer than 64 (class "large")
    columns = {(c, k): [f"{c}_{k}"] for c in SHAPES for k in KERNELS
               if c == "large" or k not in ("intra_offdiag", "dqk_offdiag")}
    return Plan(settings(), columns, header, "gla_launch.md", [f"err_{c}" for c in SHAPES],
                [f"{c}_{k}" for c in SHAPES for k in KERNELS] + [f"{c}_total" for c in SHAPES])


if __name__ == "__main__":

    sys.exit(cli(__file__, __doc__, run_one, _set_launch, _plan))
