"""Versions of our SSD Triton kernels timed against each other in one process, at the Mamba2-1.3B layer shape
(b=4, H=64, P=64, G=1, bf16, with the skip D): each version is a copy of ``ssd/triton_ssd.py`` (e.g. the file
of an earlier commit), loaded as its own module. Each is first checked against float64 (b=1, T=512), then all
are timed fwd+bwd in alternating rounds (the order reversed every second round, so drift of the machine falls
on all alike), and profiled per kernel. Prints and writes ``ssd_ab.md``: ms per d_state, the ratio d_state
512 / 128 (issue 5's target: at most 1.5) and each version against the first.

    git show REV:statex_dist/kernels/ssd/triton_ssd.py > benchmarks/_prev_triton_ssd.py
    PYTHONPATH=. python benchmarks/ssd_ab.py --impl new=statex_dist/kernels/ssd/triton_ssd.py \\
        --impl prev=benchmarks/_prev_triton_ssd.py [--impl new@128=statex_dist/kernels/ssd/triton_ssd.py] --out DIR

``NAME@L`` runs that version with L-token chunks for 16-bit inputs (its ``CHUNK``); ``NAME+kept`` with the
forward's chunk states kept for the backward (``save_states``). ``--tiny`` is a CPU dry run of the script under
TRITON_INTERPRET=1 (b=1, T=128, H=4, P=16, d_state 16 and 32; its times mean nothing).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
# kernels puts tests/kernels (kernel_testing) on the path
from kernels import SSD_LAYER, _kernel_times, _md, _ssd_inputs, _wall_ms, time_ms  # noqa: E402
from kernel_testing import rel_err  # noqa: E402

TOL_BF16 = 2.5e-2
TINY = dict(b=1, H=4, P=16, G=1)


def load(spec: str):
    """``NAME[@L][+kept]=PATH`` -> (label, version): the module (its ``CHUNK`` set to L when given) and whether
    the states are kept."""
    label, _, path = spec.partition("=")
    name, kept, _ = label.partition("+kept")
    name, _, chunk = name.partition("@")
    mod_spec = importlib.util.spec_from_file_location(f"ssd_ab_{name}_{chunk or 'default'}_{bool(kept)}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    if chunk:
        mod.CHUNK = int(chunk)
    return label, (mod, bool(kept))


def fwd_bwd(version, x, dt, A, B, C, D, dy):
    """One forward and backward through the version's host functions (no autograd)."""
    mod, kept = version

    def run():
        out = mod.ssd_fwd_triton(x, dt, A, B, C, 64, None, False, None, D, **(dict(save_states=True) if kept else {}))
        states = dict(states=out[2]) if kept else {}
        return out[0], mod.ssd_bwd_triton(dy, None, x, dt, A, B, C, 64, None, None, D, **states)
    return run


def check(version, N: int, layer: dict, T: int, dev: str) -> float:
    """Worst relative error of y and every gradient against the float64 chunked SSD (b=1)."""
    from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

    x, dt, A, B, C, _ = _ssd_inputs(1, T, layer["H"], layer["P"], layer["G"], N, dev, torch.bfloat16)
    D = torch.randn(layer["H"], device=dev)
    ref = [t.detach().double().requires_grad_() for t in (x, dt, A, B, C, D)]
    y_r, _ = chunk_ssd_torch(*ref[:5], 64, None, False, None)
    y_r = y_r + ref[5][:, None] * ref[0]
    dy = torch.randn_like(y_r).to(torch.bfloat16)
    grads_r = torch.autograd.grad(y_r, ref, dy.double())
    y, (dx, ddt, dA, dB, dC, _, dD) = fwd_bwd(version, x, dt, A, B, C, D, dy)()
    return max(rel_err(a, r) for a, r in zip((y, dx, ddt, dA, dB, dC, dD), (y_r, *grads_r)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", action="append", required=True,
                    help="NAME[@L][+kept]=PATH of a triton_ssd.py version")
    ap.add_argument("--states", default="128,512")
    ap.add_argument("--T", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="CPU dry run under TRITON_INTERPRET=1")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    versions = [load(s) for s in args.impl]
    layer, dev, check_T = (TINY, "cpu", 100) if args.tiny else (SSD_LAYER, "cuda", 512)
    timer = lambda run: time_ms(run, rep=100)  # noqa: E731
    if args.tiny:
        args.states, args.T, args.no_profile = "16,32", 128, True
        timer = lambda run: _wall_ms(run, reps=1)  # noqa: E731
    states = [int(n) for n in args.states.split(",")]
    b, H, P, G = (layer[k] for k in ("b", "H", "P", "G"))
    device_name = torch.cuda.get_device_name() if dev == "cuda" else "CPU, interpreted"
    lines = [f"# SSD versions (fwd+bwd ms, b={b}, T={args.T}, H={H}, P={P}, G={G}, bf16, skip D; "
             f"{device_name}, torch {torch.__version__})", ""]

    errs = {(label, N): check(version, N, layer, check_T, dev) for label, version in versions for N in states}
    lines += [_md([dict(version=label, **{f"err N={N}": f"{errs[label, N]:.1e}" for N in states},
                        ok=all(errs[label, N] <= TOL_BF16 for N in states)) for label, _ in versions]), ""]
    print("\n".join(lines), flush=True)

    inputs = {}
    for N in states:
        x, dt, A, B, C, _ = _ssd_inputs(b, args.T, H, P, G, N, dev, torch.bfloat16)
        inputs[N] = (x, dt, A, B, C, torch.randn(H, device=dev), torch.randn_like(x))
    times = {(label, N): [] for label, _ in versions for N in states}
    for r in range(args.rounds):
        order = versions if r % 2 == 0 else versions[::-1]
        for label, version in order:
            for N in states:
                times[label, N].append(timer(fwd_bwd(version, *inputs[N])))
        print(f"round {r + 1}: " + ", ".join(f"{k[0]} N={k[1]} {v[-1]:.3f}" for k, v in times.items()), flush=True)

    first = versions[0][0]
    rows = []
    for label, _ in versions:
        row = dict(version=label)
        for N in states:
            row[f"N={N} ms (median of {args.rounds})"] = f"{statistics.median(times[label, N]):.3f}"
            row[f"N={N} range"] = f"{min(times[label, N]):.3f}-{max(times[label, N]):.3f}"
        if len(states) == 2:
            ratios = [hi / lo for lo, hi in zip(times[label, states[0]], times[label, states[1]])]
            row[f"N={states[1]} / N={states[0]} by round"] = ", ".join(f"{q:.2f}" for q in ratios)
        if label != first:
            for N in states:
                rel = statistics.median(times[label, N]) / statistics.median(times[first, N])
                row[f"N={N} vs {first}"] = f"{rel:.3f}"
        rows.append(row)
    lines += [_md(rows), ""]

    if not args.no_profile:
        prof = []
        for label, version in versions:
            for N in states:
                prof += _kernel_times(fwd_bwd(version, *inputs[N]), f"{label} N={N}")
        lines += ["## per kernel (torch.profiler, ms per fwd+bwd)", "", _md(prof), ""]
    text = "\n".join(lines)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ssd_ab.md"), "w") as f:
        f.write(text)
    return 0 if all(e <= TOL_BF16 for e in errs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
