"""Where the steps of a profiled window went, from its Chrome trace (``run_dir/profile/*.trace.json[.gz]``, written
by ``profiling.enabled``): GPU busy and idle, collectives not overlapped by compute (``device_timeline``, the same
split as the summary the trainer writes), and per host thread the ops with the most self time, which is where a
host-bound step (GPU idle) spends it.

    python benchmarks/trace_timeline.py TRACE [TRACE...] [--steps 2] [--top 12]
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json

from statex_dist.train.profiling import COLLECTIVE, device_timeline


def load(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X" and "dur" in e]


def host_self_times(events: list[dict]) -> dict:
    """Per host thread: {op name: (self µs, calls)}, self time being the op's time minus its nested ops'."""
    threads = collections.defaultdict(list)
    for e in events:
        if e.get("cat") in ("cpu_op", "user_annotation", "python_function"):
            threads[e["tid"]].append(e)
    out = {}
    for tid, evs in threads.items():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack, self_us, calls = [], collections.Counter(), collections.Counter()
        for e in evs:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                self_us[stack[-1]["name"]] -= e["dur"]
            self_us[e["name"]] += e["dur"]
            calls[e["name"]] += 1
            stack.append(e)
        out[tid] = {n: (us, calls[n]) for n, us in self_us.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--steps", type=int, default=2, help="steps in the profiled window")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    for path in args.traces:
        events = load(path)
        kernels = [(e["ts"], e["ts"] + e["dur"], bool(COLLECTIVE.search(e["name"])))
                   for e in events if e.get("cat") == "kernel"]
        window = (max(e["ts"] + e["dur"] for e in events) - min(e["ts"] for e in events)) / args.steps / 1e3
        t = {k: v / args.steps / 1e3 for k, v in device_timeline(kernels).items()}
        print(f"## {path}\n\nper step: window {window:.1f} ms, GPU busy {t['gpu_busy']:.1f} "
              f"(idle {window - t['gpu_busy']:.1f}), compute {t['compute_busy']:.1f}, "
              f"collectives not overlapped by compute {t['exposed_collective']:.1f}\n")
        for tid, ops in sorted(host_self_times(events).items(), key=lambda kv: -sum(u for u, _ in kv[1].values())):
            busy = sum(u for u, _ in ops.values()) / args.steps / 1e3
            if busy < 0.05 * window:
                continue
            print(f"host thread {tid}: {busy:.1f} ms of ops per step; most self time:")
            for name, (us, n) in sorted(ops.items(), key=lambda kv: -kv[1][0])[: args.top]:
                print(f"  {us / args.steps / 1e3:7.1f} ms  {n / args.steps:6.0f} calls  {name[:90]}")
        print()


if __name__ == "__main__":
    main()
