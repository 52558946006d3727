"""Summarise the metrics.jsonl files of benchmarks/gpu_train.sh into a Markdown table.

Throughput is the median over steps after the first two (compile and autotune happen there) and outside any
profiled window; the slowest of those steps and the time Python's garbage collector took in them (``gc_ms``,
logged by the trainer from the thirteenth round on) are shown beside it. Scaling efficiency is taken against the
FSDP2 one-GPU run, and for DeepSpeed also against the same ZeRO stage at world size 1 (``zero2-ws1``,
``zero3-ws1``) when the directory has it. Runs profiled with
``PROFILE=1`` add a table of their profiled steps: wall time, GPU busy and idle, kernel time and collectives
(``*.summary.json``).
``python benchmarks/summarize_train_runs.py OUT_DIR``
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(out: Path) -> None:
    runs = {p.name.removesuffix(".metrics.jsonl"): load(p) for p in sorted(out.glob("*.metrics.jsonl"))}
    print("| run | steps | tokens/s (all GPUs) | tokens/s per GPU | step (s) | slowest step (s) | GC ms | peak GiB "
          "| MFU (6N / linear-attn) | last loss |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    per_gpu = {}
    for name, recs in runs.items():
        profiled = set()  # steps under torch.profiler or cProfile are slower: out of the medians
        for f in out.glob(f"{name}.rank*_steps*"):  # rank0_steps4-5.summary.json, .python.md
            first, last = map(int, re.search(r"_steps(\d+)-(\d+)\.", f.name).groups())
            profiled.update(range(first, last + 1))
        steady = [r for r in recs if r.get("step", 0) > 2 and r.get("tokens_per_s") and r["step"] not in profiled]
        if not steady:
            print(f"| {name} | {len(recs)} | n/a | | | | | | | |")
            continue
        tps = statistics.median(r["tokens_per_s"] for r in steady)
        tpd = statistics.median(r["tokens_per_s_per_device"] for r in steady)
        per_gpu[name] = tpd
        step = statistics.median(r.get("step_time_s", float("nan")) for r in steady)
        slowest = max(r.get("step_time_s", float("nan")) for r in steady)
        gc_ms = f"{sum(r['gc_ms'] for r in steady):.1f}" if all("gc_ms" in r for r in steady) else "n/a"
        peak = max((r.get("peak_memory_gib") or float("nan")) for r in steady)
        mfus = [steady[-1].get(k) for k in ("mfu_attn", "mfu_linear")]
        mfu = " / ".join(f"{100 * v:.1f}%" if v is not None else "n/a" for v in mfus)
        print(f"| {name} | {recs[-1]['step']} | {tps:,.0f} | {tpd:,.0f} | {step:.3f} | {slowest:.3f} | {gc_ms} | "
              f"{peak:.1f} | {mfu} | {recs[-1]['loss']:.4f} |")
    for name in ("fsdp-ws1", "single-ws1"):
        if name in per_gpu and f"{name}-original" in per_gpu:
            print(f"\nStateX / original ({name}): {per_gpu[name] / per_gpu[name + '-original']:.3f}")
    base_name = next((n for n in per_gpu if n.endswith("fsdp-ws1")), None)
    if base_name:
        for name, tpd in per_gpu.items():
            if "ws1" not in name and "resume" not in name and "killed" not in name:
                print(f"\nscaling efficiency {name} vs {base_name} (per GPU): {tpd / per_gpu[base_name]:.3f}")
    for name, tpd in per_gpu.items():
        same = re.fullmatch(r"(zero[23].*)-ws([2-9]|\d\d+)", name)
        if same and f"{same[1]}-ws1" in per_gpu:
            print(f"\nscaling efficiency {name} vs {same[1]}-ws1 (same backend, per GPU): "
                  f"{tpd / per_gpu[same[1] + '-ws1']:.3f}")
    full = next((n for n in runs if re.fullmatch(r"fsdp-ws([2-9]|\d\d+)", n)), None)
    for resumed in ("fsdp-resume",):
        if full in runs and resumed in runs:
            a = {r["step"]: r["loss"] for r in runs[full]}
            b = {r["step"]: r["loss"] for r in runs[resumed]}
            common = sorted(set(a) & set(b))
            diffs = [abs(a[s] - b[s]) for s in common]
            print(f"\nresume check ({resumed} vs {full}), steps {common}: max |loss diff| = "
                  f"{max(diffs) if diffs else 'n/a'}; resumed run started at step {min(b) if b else 'n/a'}")
    profiles = sorted(out.glob("*.summary.json"))  # runs with profiling.enabled (PROFILE=1)
    if profiles:
        print("\n| profiled run, rank, steps | window per step (ms) | GPU busy | GPU idle | kernel / op time | in "
              "collectives | collectives not overlapped | timed on |")
        print("|---|---|---|---|---|---|---|---|")
        for p in profiles:
            s = json.loads(p.read_text())
            share = f" ({100 * s['collective_share']:.1f}%)" if s["collective_share"] is not None else ""
            cells = [s.get(k) for k in ("window_ms_per_step", "gpu_busy_ms_per_step", "gpu_idle_ms_per_step")]
            cells = [f"{c:.1f}" if c is not None else "n/a" for c in cells]
            exposed = s.get("exposed_collective_ms_per_step")
            print(f"| {p.name.split('.')[0]}, rank {s['rank']}, {s['steps'][0]}-{s['steps'][1]} | {' | '.join(cells)} | "
                  f"{s['self_ms_per_step']:.1f} | {s['collective_ms_per_step']:.1f}{share} | "
                  f"{f'{exposed:.1f}' if exposed is not None else 'n/a'} | {s['timed_on']} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
