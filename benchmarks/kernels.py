"""Build, check and time the token-mixer kernels on one GPU; print one table.

    PYTHONPATH=. python benchmarks/kernels.py [--out DIR] [--sections check,time,cold,memory,ssd]

Sections:
  check   our Triton GLA (fwd + bwd) vs a float64 PyTorch reference, outputs poisoned (tests/kernels/test_gpu.py)
  time    fwd+bwd and fwd medians (triton.testing.do_bench), bf16: ours vs fla chunk_gla, original and merged shapes
  cold    first call (compile, no autotune) of the merged shape in a fresh process with an empty Triton cache
  memory  transient memory of a 65,536-token merged-head layer: peak during backward minus what was live before
  ssd     Mamba2-1.3B SSD layer (b=4, H=64, P=64, G=1; d_state 128 and 512; T 2048-8192; bf16) fwd+bwd, the
          --ssd-backends: ours (ssd/triton_ssd.py; triton@L with L-token chunks), the earlier mapping onto the
          GLA kernels (triton_gla), fla chunk_simple_gla, torch (T <= 2048 only); peak memory, first call;
          correctness vs float64 at T=300 (tables ssd_check and ssd)
  profile     per-kernel CUDA time of one GLA fwd+bwd (torch.profiler), original and merged shapes
  ssdprofile  the same for our SSD at the layer shape above, T=4096, d_state 128 and 512
  mamba2block one whole Mamba2-1.3B block (norm, in_proj, conv, SSD, gated norm, out_proj) fwd+bwd at b=4, T=4096,
              d_state 128 and 512, fp32 weights under bf16 autocast (the plain training loop's recipe)
Writes kernels_h200.md and kernels.json to --out.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "kernels"))

ORIGINAL = (4, 8192, 4, 256, 512)
MERGED = (4, 8192, 1, 1024, 2048)
T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def gla_inputs(B, T, H, K, V, dtype=torch.bfloat16, grad=True):
    q, k = (torch.randn(B, T, H, K, device="cuda", dtype=dtype) for _ in range(2))
    v = torch.randn(B, T, H, V, device="cuda", dtype=dtype)
    gk = (torch.nn.functional.logsigmoid(torch.randn(B, T, H, K, device="cuda")) / 16).to(dtype)
    do = torch.randn(B, T, H, V, device="cuda", dtype=dtype)
    return [t.requires_grad_(grad) for t in (q, k, v, gk)], do


def fwd_bwd(fn, ins, do):
    def run():
        o = fn(*ins)[0]
        torch.autograd.grad(o, ins, do)

    return run


def time_ms(run, rep=200):
    from triton.testing import do_bench

    return do_bench(run, warmup=25, rep=rep, return_mode="median")


def impls():
    from fla.ops.gla import chunk_gla

    from statex_dist.kernels.gla.chunk_triton import chunk_gla_triton

    def ours(chunk_size=None):
        def run(q, k, v, g):
            return chunk_gla_triton(q, k, v, g, chunk_size=chunk_size)

        return run

    return {"fla": lambda q, k, v, g: chunk_gla(q, k, v, g), "ours": ours}


def section_check(results, only=""):
    from test_gpu import CASES, case_id, check, tolerance

    rows = []
    for case in CASES:
        if only and not any(o in case_id(case) for o in only.split(",")):
            continue
        log(f"check {case_id(case)} ...")
        errs = check(case)
        ok = all(e <= tolerance(case["dtype"], n) for n, e in errs.items())
        rows.append({"case": case_id(case), "ok": ok, **{n: f"{e:.1e}" for n, e in errs.items()}})
        log(f"check {rows[-1]}")
    results["check"] = rows


def section_time(results, variants, with_fla="none"):
    fns = impls()
    rows = []
    for name, shape in [("original", ORIGINAL), ("merged", MERGED)]:
        todo = [("ours", label, fns["ours"](c)) for label, c in variants[name]]
        if with_fla == "all" or (with_fla == "original" and name == "original"):
            todo.append(("fla", "chunk_gla", fns["fla"]))
        if not todo:
            continue
        ins, do = gla_inputs(*shape)
        for impl, label, fn in todo:
            log(f"time {name} {impl} {label} ...")
            t_cold = time.time()
            fwd_bwd(fn, ins, do)()
            torch.cuda.synchronize()
            cold = time.time() - t_cold
            t_fb = time_ms(fwd_bwd(fn, ins, do))
            t_fb2 = time_ms(fwd_bwd(fn, ins, do))
            with torch.no_grad():
                t_f = time_ms(lambda: fn(*ins))
            rows.append(dict(shape=name, impl=impl, variant=label, fwd_bwd_ms=round(t_fb, 3),
                             fwd_bwd_ms_repeat=round(t_fb2, 3), fwd_ms=round(t_f, 3), first_call_s=round(cold, 1)))
            log(f"time {rows[-1]}")
        del ins, do
        torch.cuda.empty_cache()
    results.setdefault("time", []).extend(rows)


def section_fla(results, timeout):
    """fla's chunk_gla on the original shape in a child process (its first call autotunes for minutes)."""
    cmd = [sys.executable, __file__, "--sections", "time_fla_only", "--out", tempfile.mkdtemp()]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        text = out.stdout
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        results["fla_error"] = f"timed out after {timeout} s"
    print(text[-3000:], flush=True)
    for line in text.splitlines():
        if line.startswith("FLAROW "):
            results.setdefault("time", []).append(json.loads(line[7:]))


COLD_SCRIPT = r"""
import time, torch
t0 = time.time()
from statex_dist.kernels.gla.chunk_triton import chunk_gla_triton
B, T, H, K, V = %s
q, k = (torch.randn(B, T, H, K, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
v = torch.randn(B, T, H, V, device="cuda", dtype=torch.bfloat16, requires_grad=True)
g = (torch.nn.functional.logsigmoid(torch.randn(B, T, H, K, device="cuda")) / 16).bfloat16().requires_grad_()
torch.cuda.synchronize()
t1 = time.time()
o, _ = chunk_gla_triton(q, k, v, g)
torch.cuda.synchronize()
t2 = time.time()
torch.autograd.grad(o, (q, k, v, g), torch.randn_like(o))
torch.cuda.synchronize()
t3 = time.time()
print("COLD", round(t2 - t1, 2), round(t3 - t2, 2), round(t1 - t0, 2))
"""


def section_cold(results):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TRITON_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", COLD_SCRIPT % (MERGED,)], env=env, capture_output=True,
                             text=True, timeout=300)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("COLD")]
    if not line:
        results["cold"] = {"error": out.stderr[-2000:]}
    else:
        fwd, bwd, setup = map(float, line[0].split()[1:])
        results["cold"] = {"first_fwd_s": fwd, "first_bwd_s": bwd, "first_call_total_s": round(fwd + bwd, 2),
                           "import_and_inputs_s": setup}
    log(f"cold {results['cold']}")


def section_memory(results):
    from statex_dist.kernels.gla.chunk_triton import chunk_gla_triton

    rows = []
    for label, shape in [("merged", (1, 65536, 1, 1024, 2048)), ("original", (1, 65536, 4, 256, 512))]:
        torch.cuda.empty_cache()
        ins, do = gla_inputs(*shape)
        torch.cuda.synchronize()
        base0 = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        o, _ = chunk_gla_triton(*ins)
        torch.cuda.synchronize()
        fwd_peak = torch.cuda.max_memory_allocated() - base0
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        grads = torch.autograd.grad(o, ins, do)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        grad_bytes = sum(g.numel() * g.element_size() for g in grads)
        rows.append(dict(shape=label, fwd_transient_gib=round(fwd_peak / 2**30, 3),
                         bwd_peak_over_live_gib=round(peak / 2**30, 3),
                         bwd_transient_excl_grads_gib=round((peak - grad_bytes) / 2**30, 3)))
        log(f"memory {rows[-1]}")
        del ins, do, o, grads
    results["memory"] = rows


def _kernel_times(run, label: str, steps: int = 5) -> list[dict]:
    """CUDA time per kernel of one ``run()`` (torch.profiler, mean over ``steps`` after 3 warm-up calls)."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            run()
        torch.cuda.synchronize()
    rows = []
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)
        if t > 0:
            rows.append(dict(shape=label, kernel=ev.key[:40], calls_per_step=ev.count // steps,
                             ms_per_step=round(t / steps / 1000, 3)))
    rows.sort(key=lambda r: -r["ms_per_step"])
    for r in rows:
        log(f"profile {r}")
    return rows


def section_profile(results, shapes="original,merged"):
    """Per-kernel CUDA time of one fwd+bwd of ours (torch.profiler) at the named shapes (original, merged,
    original-4k, merged-4k)."""
    from statex_dist.kernels.gla.chunk_triton import chunk_gla_triton

    rows = []
    # -4k: the GLA-1.3B training step's shape in gpu_e2e.py (B=4, T=4096), where a merged layer's kernels cost
    # about 1.65x an original layer's against 1.50x at T=8192 (tenth round)
    half = lambda shape: (shape[0], 4096, *shape[2:])  # noqa: E731
    for name, shape in [("original", ORIGINAL), ("merged", MERGED), ("original-4k", half(ORIGINAL)),
                        ("merged-4k", half(MERGED))]:
        if name not in shapes.split(","):
            continue
        ins, do = gla_inputs(*shape)
        rows += _kernel_times(fwd_bwd(lambda q, k, v, g: chunk_gla_triton(q, k, v, g), ins, do), name)
        del ins, do
    results["profile"] = rows


def section_ssd_profile(results, backends=("triton",), T=4096):
    """Per-kernel CUDA time of one fwd+bwd of our SSD (each of ``backends`` that is a ``triton`` variant) at the
    Mamba2-1.3B layer shape, d_state 128 and 512: where the d_state-512 layer's extra time goes."""
    b, H, P, G = (SSD_LAYER[k] for k in ("b", "H", "P", "G"))
    rows = []
    for backend in (b_ for b_ in backends if _ssd_backend(b_)[0] == "triton"):
        for N in SSD_STATES:
            with _ssd_variant(backend):
                x, dt, A, Bm, Cm, _ = _ssd_inputs(b, T, H, P, G, N, "cuda", torch.bfloat16)
                ins = [t.requires_grad_() for t in (x, dt, A, Bm, Cm)]
                rows += _kernel_times(fwd_bwd(_ssd_fn(backend), ins, torch.randn_like(x)), f"{backend} N={N} T={T}")
                del x, dt, A, Bm, Cm, ins
                torch.cuda.empty_cache()
    results["ssd_profile"] = rows


def _fla_only(results):
    """The child process of ``section_fla``: fla's chunk_gla on the original shape, its row printed for the parent."""
    section_time(results, {"original": [], "merged": []}, with_fla="original")
    for row in results["time"]:
        print("FLAROW " + json.dumps(row), flush=True)


# Mamba2-1.3B layer: d_model 2048, expand 2, head dim 64 -> 64 heads; one group of B/C; d_state 128 (and 512)
SSD_LAYER = dict(b=4, H=64, P=64, G=1)
SSD_STATES = (128, 512)
SSD_LENGTHS = (2048, 4096, 8192)
SSD_TORCH_MAX_T = 2048  # the chunked torch path (fp32 [L, L] decays, per-chunk states under autograd) only up to here
# correctness vs float64: (label, b, T, H, cu_seqlens), P and G from SSD_LAYER
SSD_CHECK = [("T300", 1, 300, 8, None), ("packed-1-119-180", 1, 300, 8, [0, 1, 120, 300])]
SSD_TOL = {torch.bfloat16: 2.5e-2, torch.float32: 1e-4}


def _ssd_inputs(b, T, H, P, G, N, device, dtype, n_states=None, seed=0):
    """x, B, C in dtype; dt (softplus, ~0.13 mean), A (Mamba2's init range -16..-1) and h0 in fp32."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(b, T, H, P, device=device, dtype=dtype, generator=g)
    dt = torch.nn.functional.softplus(torch.randn(b, T, H, device=device, generator=g) - 2)
    A = -(1 + 15 * torch.rand(H, device=device, generator=g))
    Bm, Cm = (torch.randn(b, T, G, N, device=device, dtype=dtype, generator=g) for _ in range(2))
    h0 = torch.randn(n_states or b, H, P, N, device=device, generator=g)
    return x, dt, A, Bm, Cm, h0


def _md(rows) -> str:
    cols = list(dict.fromkeys(c for r in rows for c in r))
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows])


def _ssd_backend(backend: str) -> tuple[str, int | None]:
    """``impl[@L]`` -> (impl, chunk length L or None); options after a ``/`` are refused (``triton/split`` and
    ``triton/hsK`` were removed with the paths they named)."""
    name, slash, opts = backend.partition("/")
    impl, _, chunk = name.partition("@")
    if slash:
        raise ValueError(f"unknown SSD backend option {opts!r} in {backend!r} (known: @L)")
    return impl, int(chunk) if chunk else None


@contextlib.contextmanager
def _ssd_variant(backend):
    """``triton@L``: our SSD kernels with L-token chunks for 16-bit inputs instead of ``CHUNK`` (fewer per-chunk
    states to write and read, larger score tiles; fp32 inputs stay at 64). Other backends run as they are."""
    from statex_dist.kernels.ssd import triton_ssd

    saved = triton_ssd.CHUNK
    triton_ssd.CHUNK = _ssd_backend(backend)[1] or saved
    try:
        yield
    finally:
        triton_ssd.CHUNK = saved


def _ssd_fn(backend):
    """``ops.ssd_attention`` with a backend (``triton@L`` is ``triton`` under :func:`_ssd_variant`), or for
    ``"triton_gla"`` (the earlier SSD path through the GLA kernels, kept for before/after timing) the custom op
    with that impl."""
    from statex_dist.kernels import ops

    backend = _ssd_backend(backend)[0]
    if backend != "triton_gla":
        return lambda *a, **kw: ops.ssd_attention(*a, backend=backend, **kw)

    def via_gla(x, dt, A, B, C, initial_state=None, output_final_state=False, cu_seqlens=None):
        y, ht, _ = ops._ssd_fwd_op(x, dt, A, B, C, None, initial_state, cu_seqlens, 64, output_final_state, backend,
                                   False)
        return y, (ht if output_final_state else None)
    return via_gla


def _ssd_check(device, backends, check, states):
    """Each backend vs chunk_ssd_torch in float64 on the same (rounded) inputs: y, final state, every gradient."""
    from kernel_testing import rel_err

    from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

    P, G = SSD_LAYER["P"], SSD_LAYER["G"]
    names = ["y", "ht", "dx", "ddt", "dA", "dB", "dC", "dh0"]
    rows = []
    for label, b, T, H, cu in check:
        for N in states:
            for dtype in (torch.bfloat16, torch.float32):
                ins = _ssd_inputs(b, T, H, P, G, N, device, dtype, n_states=len(cu) - 1 if cu else None)
                cu_t = None if cu is None else torch.tensor(cu, device=device, dtype=torch.int32)
                ref_in = [t.double().requires_grad_() for t in ins]
                y_r, ht_r = chunk_ssd_torch(*ref_in[:5], 64, ref_in[5], True, cu_t)
                dy = torch.randn_like(y_r).to(dtype)
                dht = torch.randn_like(ht_r).float()
                ref = [y_r, ht_r, *torch.autograd.grad([y_r, ht_r], ref_in, [dy.double(), dht.double()])]
                for backend in backends:
                    row = dict(case=label, N=N, dtype=str(dtype).replace("torch.", ""), backend=backend)
                    try:
                        a = [t.clone().requires_grad_() for t in ins]
                        with _ssd_variant(backend):
                            y, ht = _ssd_fn(backend)(*a[:5], initial_state=a[5], output_final_state=True,
                                                     cu_seqlens=cu_t)
                            got = [y, ht, *torch.autograd.grad([y, ht], a, [dy, dht])]
                        errs = {n: rel_err(g, r) for n, g, r in zip(names, got, ref)}
                        worst = max(errs.values(), key=lambda e: float("inf") if e != e else e)  # NaN first
                        row.update(ok=all(e <= SSD_TOL[dtype] for e in errs.values()), max_err=f"{worst:.1e}",
                                   **{n: f"{e:.1e}" for n, e in errs.items()})
                    except Exception as e:  # noqa: BLE001 - report and go on
                        row.update(ok=False, error=repr(e)[:300])
                    rows.append(row)
                    log(f"ssd check {row}")
                del ins, ref_in, ref
    return rows


def _ssd_time(device, backends, lengths, states, torch_max_t, timer):
    """fwd+bwd and fwd medians, first-call seconds and peak memory of each backend at the layer shape."""

    b, H, P, G = (SSD_LAYER[k] for k in ("b", "H", "P", "G"))
    cuda = device == "cuda"
    rows = []
    for N in states:
        for T in lengths:
            for backend in backends:
                row = dict(N=N, T=T, b=b, H=H, P=P, G=G, backend=backend)
                if backend == "torch" and T > torch_max_t:
                    continue  # guard: too slow and too large to be worth timing
                ins = dy = run = fn = None
                try:
                    with _ssd_variant(backend):
                        x, dt, A, Bm, Cm, _ = _ssd_inputs(b, T, H, P, G, N, device, torch.bfloat16)
                        ins = [t.requires_grad_() for t in (x, dt, A, Bm, Cm)]
                        dy = torch.randn_like(x)
                        fn = _ssd_fn(backend)
                        run = fwd_bwd(fn, ins, dy)
                        if cuda:
                            torch.cuda.synchronize()
                            base = torch.cuda.memory_allocated()
                            torch.cuda.reset_peak_memory_stats()
                        t_cold = time.time()
                        run()
                        if cuda:
                            torch.cuda.synchronize()
                            row["peak_gib"] = round((torch.cuda.max_memory_allocated() - base) / 2**30, 2)
                        row["first_call_s"] = round(time.time() - t_cold, 1)
                        row["fwd_bwd_ms"] = round(timer(run), 3)
                        with torch.no_grad():
                            row["fwd_ms"] = round(timer(lambda: fn(*ins)), 3)
                except Exception as e:  # noqa: BLE001 - report and go on
                    row["error"] = repr(e)[:300]
                rows.append(row)
                log(f"ssd time {row}")
                ins = dy = run = fn = None  # free the inputs before the next variant
                if cuda:
                    torch.cuda.empty_cache()
    return rows


def _wall_ms(run, reps=3):
    """Median wall-clock ms (CPU dry runs: do_bench needs a GPU)."""
    ts = []
    for _ in range(reps):
        t0 = time.time()
        run()
        ts.append((time.time() - t0) * 1000)
    return sorted(ts)[len(ts) // 2]


def section_mamba2_block(results, device="cuda", T=4096, hidden=None, timer=None):
    """fwd+bwd of one Mamba2-1.3B block (``configs/models/mamba2-1.3b.json``, one layer) at d_state 128 and 512,
    alternating between the two (three rounds), and their ratio: the cost of a layer that StateX expands, with the
    in_proj columns, the conv channels and the SSD that grow with d_state and the projections and norms that do
    not. ``device``/``hidden``/``timer`` exist for a CPU dry run at a tiny width."""
    from statex_dist.models.loading import config_from_dict
    from statex_dist.models.mamba2 import Mamba2Block

    with open(os.path.join(os.path.dirname(__file__), "..", "configs", "models", "mamba2-1.3b.json")) as f:
        raw = dict(json.load(f), num_hidden_layers=1, **(hidden or {}))
    timer = timer or (lambda run: time_ms(run, rep=100))
    b = SSD_LAYER["b"]
    runs = {}
    for N in SSD_STATES:
        block = Mamba2Block(config_from_dict(dict(raw, state_size=N)), 0).to(device)
        x = torch.randn(b, T, raw["hidden_size"], device=device, requires_grad=True)
        do = torch.randn_like(x)
        params = [x, *block.parameters()]

        def run(block=block, x=x, do=do, params=params):
            with torch.autocast(device, torch.bfloat16):
                out = block(x)
            torch.autograd.grad(out, params, do)

        runs[N] = run
    times = {N: [] for N in SSD_STATES}
    for r in range(3):
        for N in SSD_STATES if r % 2 == 0 else SSD_STATES[::-1]:
            times[N].append(timer(runs[N]))
    lo, hi = SSD_STATES
    rows = [dict(d_state=N, b=b, T=T, fwd_bwd_ms=round(sorted(ts)[1], 3), by_round=", ".join(f"{t:.3f}" for t in ts))
            for N, ts in times.items()]
    ratios = [h / l_ for l_, h in zip(times[lo], times[hi])]
    rows.append(dict(d_state=f"{hi} / {lo}", by_round=", ".join(f"{q:.3f}" for q in ratios)))
    results["mamba2_block"] = rows
    print("\n## mamba2_block\n\n" + _md(rows) + "\n", flush=True)


def section_ssd(results, device="cuda", backends=("triton", "triton_gla", "torch"), lengths=SSD_LENGTHS,
                states=SSD_STATES, check=SSD_CHECK, torch_max_t=SSD_TORCH_MAX_T):
    """Mamba2 SSD: ours (ssd/triton_ssd.py), the earlier path through the GLA kernels (``triton_gla``), fla's
    chunk_simple_gla (``fla``) and the torch path. Correctness first (small shapes), then timing at the layer shape.
    The arguments other than ``results`` exist for CPU dry runs of this code at tiny sizes (tests/ or by hand):
    e.g. ``device="cpu", backends=("torch",), lengths=(70,)`` with a smaller ``SSD_LAYER``."""
    timer = (lambda run: time_ms(run, rep=100)) if device == "cuda" else _wall_ms
    results["ssd_check"] = _ssd_check(device, backends, check, states)
    # a backend that raised in the check is not timed (fla refuses Hopper + triton < 3.7.1 only after autotuning)
    failed = {r["backend"]: r["error"] for r in results["ssd_check"] if "error" in r}
    results["ssd"] = _ssd_time(device, [b for b in backends if b not in failed], lengths, states, torch_max_t, timer)
    results["ssd"] += [dict(backend=b, error="not timed: raised in ssd_check: " + e[:200]) for b, e in failed.items()]
    print("\n## ssd_check\n\n" + _md(results["ssd_check"]) + "\n\n## ssd\n\n" + _md(results["ssd"]) + "\n",
          flush=True)


def to_markdown(results) -> str:
    lines = [f"# Kernel benchmarks ({results['date']}, {results['gpu']})", "",
             f"torch {results['torch']}, triton {results['triton']}, fla {results['fla']}", ""]
    for key, rows in results.items():
        if not isinstance(rows, list) or not rows:
            continue
        cols = list(dict.fromkeys(c for r in rows for c in r))
        lines += [f"## {key}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
        lines.append("")
    if "cold" in results:
        lines += ["## cold", "", json.dumps(results["cold"]), ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--sections", default="check,time,cold,memory,ssd")
    ap.add_argument("--variants-original", default="default",
                    help="';'-separated variants: default or CH=N (tokens per stored state); tiles and warps: "
                         "gla_launch_sweep.py --apply")
    ap.add_argument("--variants-merged", default="default")
    ap.add_argument("--cases", default="", help="comma-separated substrings of check case ids")
    ap.add_argument("--fla-timeout", type=int, default=240)
    ap.add_argument("--with-fla", choices=("none", "original", "all"), default="none",
                    help="time: also fla's chunk_gla in this process, on the original shape or on both (its first "
                         "call autotunes for minutes unless Triton's cache has its results)")
    ap.add_argument("--profile-shapes", default="original,merged")
    ap.add_argument("--ssd-backends", default="triton,triton_gla,torch",
                    help="triton, triton@L (L-token chunks for 16-bit inputs), triton_gla, "
                         "torch, fla (chunk_simple_gla autotunes ~2 min per case, then refuses Hopper + "
                         "triton < 3.7.1)")
    ap.add_argument("--ssd-lengths", default=",".join(map(str, SSD_LENGTHS)))
    args = ap.parse_args()
    def parse(spec):
        """'default;CH=128' -> [(label, chunk_size)]"""
        return [(item, int(item[3:]) if item.startswith("CH=") else None) for item in spec.split(";")]

    import triton

    try:
        import fla

        fla_version = getattr(fla, "__version__", "?")
    except ImportError:
        fla_version = "missing"
    results = dict(date=datetime.date.today().isoformat(), gpu=torch.cuda.get_device_name(), torch=torch.__version__,
                   triton=triton.__version__, fla=fla_version)
    sections = args.sections.split(",")
    runners = {"check": lambda: section_check(results, args.cases),
               "fla": lambda: section_fla(results, args.fla_timeout),
               "time_fla_only": lambda: _fla_only(results),
               "time": lambda: section_time(results, {"original": parse(args.variants_original),
                                                      "merged": parse(args.variants_merged)}, args.with_fla),
               "cold": lambda: section_cold(results), "memory": lambda: section_memory(results),
               "ssd": lambda: section_ssd(results, backends=tuple(args.ssd_backends.split(",")),
                                          lengths=tuple(int(t) for t in args.ssd_lengths.split(","))),
               "profile": lambda: section_profile(results, args.profile_shapes),
               "ssdprofile": lambda: section_ssd_profile(results, tuple(args.ssd_backends.split(","))),
               "mamba2block": lambda: section_mamba2_block(results)}
    for name in sections:
        try:
            runners[name]()
        except Exception as e:  # noqa: BLE001 - keep the other sections
            results[name + "_error"] = repr(e)[:1000]
            log(f"{name} failed: {e!r}")
        with open(os.path.join(args.out, "kernels.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)
    md = to_markdown(results)
    with open(os.path.join(args.out, "kernels_h200.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
