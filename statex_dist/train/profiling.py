"""Step profiling (``profiling.enabled``): ``torch.profiler`` over a window of training steps, on every rank.

Each rank writes to ``run_dir/profile/``: ``rank{r}_steps{a}-{b}.trace.json`` (open it in Perfetto or
chrome://tracing: the timeline shows whether collectives overlap compute), ``rank{r}_steps{a}-{b}.ops.md`` (ops
and kernels by self time per step) and ``rank{r}_steps{a}-{b}.summary.json``, so a slow backend can be looked at
from the run directory alone.

On a GPU the totals are the kernels' (device time; the CPU ops that launched them are listed with the device
time they account for, but not added again), and the summary splits the profiled wall time per step into
GPU busy (any kernel running) and idle, and says how much of the busy time was collectives with no compute
kernel beside them: a host-bound step (e.g. framework hooks between kernels) shows as idle, a
communication-bound one as exposed collectives. On a CPU run the totals are the ops' self CPU time.

With ``profiling.python`` the same window also runs under cProfile on the main thread and each rank writes
``rank{r}_steps{a}-{b}.python.md`` (functions by total and by own time per step) and ``.pstats`` (for pstats,
snakeviz): the idle time above says that the host was slow, this says in which functions.
"""

from __future__ import annotations

import cProfile
import json
import logging
import pstats
import re
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

log = logging.getLogger("statex.train")
# NCCL kernels on GPUs; gloo / c10d ops on CPUs (self times, so a collective and its wrapper are not both counted)
COLLECTIVE = re.compile(r"nccl|gloo|c10d::|record_param_comms", re.IGNORECASE)


class StepProfiler:
    """Starts before step ``cfg.start_step`` (numbered as in the logs: 1 is the first step) and stops after
    ``cfg.steps`` steps, or when the run ends inside the window. Steps of a resumed run that started past
    ``start_step`` are not profiled."""

    def __init__(self, cfg, run_dir: Path, rank: int, device: torch.device):
        self.cfg, self.rank, self.device = cfg, rank, device
        self.out_dir = Path(run_dir) / "profile"
        self.first, self.last = cfg.start_step, cfg.start_step + cfg.steps - 1
        self._prof: profile | None = None
        self._py: cProfile.Profile | None = None
        self._t0: float | None = None  # perf_counter at the window's start; None outside it

    def step_begins(self, step: int) -> None:
        if not self.cfg.enabled or step != self.first or self._t0 is not None:
            return
        if self.cfg.torch:
            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
            self._prof = profile(activities=activities, record_shapes=self.cfg.record_shapes,
                                 with_stack=self.cfg.with_stack, profile_memory=self.cfg.memory)
            self._prof.start()
        if self.cfg.python:
            self._py = cProfile.Profile()
            self._py.enable()
        self._t0 = time.perf_counter()

    def step_ends(self, step: int) -> None:
        if self._t0 is not None and step == self.last:
            self._finish(step)

    def close(self, last_step: int) -> None:
        """The run ended inside the window: write what was recorded (nothing if its first step did not end)."""
        if self._t0 is None:
            return
        if last_step >= self.first:
            self._finish(last_step)
        else:
            self._stop()

    def _stop(self):
        """Stop both recorders and leave the window; returns (torch profile, cProfile, wall seconds in it)."""
        prof, py, wall_s = self._prof, self._py, time.perf_counter() - self._t0
        self._prof = self._py = self._t0 = None
        if py is not None:
            py.disable()
        if prof is not None:
            prof.stop()
        return prof, py, wall_s

    def _finish(self, last_step: int) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        prof, py, wall_s = self._stop()
        steps = last_step - self.first + 1
        stem = self.out_dir / f"rank{self.rank}_steps{self.first}-{last_step}"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if prof is not None:
            prof.export_chrome_trace(str(stem) + ".trace.json")
            summary = {"rank": self.rank, "steps": [self.first, last_step],
                       **summarize(prof, steps, on_device=self.device.type == "cuda", top=self.cfg.top)}
            Path(str(stem) + ".summary.json").write_text(json.dumps(summary, indent=1))
            Path(str(stem) + ".ops.md").write_text(ops_table(summary))
            log.info("profiled steps %d-%d on rank %d: %s; %s.{trace.json,ops.md,summary.json}", self.first,
                     last_step, self.rank, headline(summary), stem)
        if py is not None:
            py.dump_stats(str(stem) + ".pstats")
            rows = python_rows(pstats.Stats(py), steps)
            Path(str(stem) + ".python.md").write_text(
                python_table(rows, self.rank, (self.first, last_step), wall_s * 1e3 / steps, self.cfg.top))
            log.info("python profile of steps %d-%d on rank %d (%.1f ms a step): %s.{python.md,pstats}",
                     self.first, last_step, self.rank, wall_s * 1e3 / steps, stem)


def python_rows(stats: pstats.Stats, steps: int) -> list[dict]:
    """One row per Python function (or C function it called) with its calls, own time and total time (own time
    plus its callees') per step, longest total first."""
    rows, cwd = [], str(Path.cwd()) + "/"
    for (path, line, func), (_, calls, own, total, _) in stats.stats.items():
        where = "" if path == "~" else path.split("site-packages/")[-1].removeprefix(cwd)  # "~": a C function
        rows.append({"function": f"{func} ({where}:{line})" if where else func,
                     "calls_per_step": round(calls / steps, 2), "own_ms_per_step": round(own * 1e3 / steps, 3),
                     "total_ms_per_step": round(total * 1e3 / steps, 3)})
    rows.sort(key=lambda r: -r["total_ms_per_step"])
    return rows


def python_table(rows: list[dict], rank: int, steps: tuple[int, int], wall_ms: float, top: int) -> str:
    """Markdown: the ``top`` functions by total time, then by own time (per step)."""
    def table(title, ordered):
        return (f"## {title}\n\n| function | calls per step | own ms per step | total ms per step |\n"
                "|---|---|---|---|\n"
                + "".join(f"| `{r['function'][:120]}` | {r['calls_per_step']} | {r['own_ms_per_step']} | "
                          f"{r['total_ms_per_step']} |\n" for r in ordered[:top]))
    head = (f"# Python profile (cProfile, main thread), rank {rank}, steps {steps[0]}-{steps[1]}\n\n"
            f"{wall_ms:.1f} ms of wall time per step under the profiler.\n\n")
    return head + table("By total time", rows) + "\n" + table(
        "By own time", sorted(rows, key=lambda r: -r["own_ms_per_step"]))


def summarize(prof, steps: int, on_device: bool, top: int) -> dict:
    """Per-step totals and the ``top`` rows of a finished ``torch.profiler.profile`` over ``steps`` steps."""
    rows = op_rows(prof.key_averages(), steps, on_device)
    counted = [r for r in rows if r["kind"] == ("kernel" if on_device else "op")]
    total = sum(r["self_ms_per_step"] for r in counted)
    comm = sum(r["self_ms_per_step"] for r in counted if r["collective"])
    out = {"timed_on": "device (kernel)" if on_device else "CPU (op)", "self_ms_per_step": round(total, 3),
           "collective_ms_per_step": round(comm, 3), "collective_share": round(comm / total, 4) if total else None}
    events = prof.events()
    if events:
        start = min(e.time_range.start for e in events)
        out["window_ms_per_step"] = round((max(e.time_range.end for e in events) - start) / steps / 1e3, 3)
    if on_device:
        kernels = [(e.time_range.start, e.time_range.end, bool(COLLECTIVE.search(e.name)))
                   for e in events if _is_kernel(e)]
        out.update({f"{k}_ms_per_step": round(v / steps / 1e3, 3) for k, v in device_timeline(kernels).items()})
        if out.get("window_ms_per_step"):
            out["gpu_idle_ms_per_step"] = round(max(out["window_ms_per_step"] - out["gpu_busy_ms_per_step"], 0), 3)
    out["top"] = rows[:top]
    return out


def device_timeline(kernels: list[tuple[float, float, bool]]) -> dict:
    """From ``(start, end, is_collective)`` kernel intervals (any streams), in their unit: the time any kernel ran
    (``gpu_busy``), any compute kernel ran (``compute_busy``), and collectives ran with no compute kernel beside
    them (``exposed_collective``: communication that did not overlap compute)."""
    busy = _covered([(a, b) for a, b, _ in kernels])
    compute = _covered([(a, b) for a, b, c in kernels if not c])
    return {"gpu_busy": busy, "compute_busy": compute, "exposed_collective": busy - compute}


def _is_kernel(ev) -> bool:
    """A profiler event (or averaged row) that is a device kernel, not a CPU op or a user annotation."""
    return ev.device_type != DeviceType.CPU and not ev.is_user_annotation


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def op_rows(averages, steps: int, on_device: bool) -> list[dict]:
    """One row per op or kernel with its self time per step, longest first. On a GPU an op's self time is the
    device time of the kernels it launched itself, so ops and kernels are two views of the same time: ``kind``
    says which a row is, and only kernels are added up."""
    rows = []
    for ev in averages:
        us = getattr(ev, "self_device_time_total", 0) if on_device else ev.self_cpu_time_total
        if us > 0:
            rows.append({"name": ev.key, "kind": "kernel" if _is_kernel(ev) else "op",
                         "calls_per_step": round(ev.count / steps, 2), "self_ms_per_step": round(us / steps / 1000, 3),
                         "collective": bool(COLLECTIVE.search(ev.key))})
    rows.sort(key=lambda r: -r["self_ms_per_step"])
    return rows


def headline(summary: dict) -> str:
    """One line: where a step's time went."""
    line = (f"{summary['self_ms_per_step']} ms of {summary['timed_on']} time per step, "
            f"{summary['collective_ms_per_step']} ms in collectives")
    if "gpu_busy_ms_per_step" in summary:
        line += (f"; of a {summary.get('window_ms_per_step')} ms step the GPU was busy "
                 f"{summary['gpu_busy_ms_per_step']} ms (idle {summary.get('gpu_idle_ms_per_step')}), with "
                 f"{summary['exposed_collective_ms_per_step']} ms of collectives not overlapped by compute")
    return line


def ops_table(summary: dict) -> str:
    head = (f"# Profile, rank {summary['rank']}, steps {summary['steps'][0]}-{summary['steps'][1]}\n\n"
            f"{headline(summary)}.\n\n"
            "| op / kernel | kind | calls per step | self ms per step | collective |\n|---|---|---|---|---|\n")
    return head + "".join(f"| `{r['name'][:100]}` | {r['kind']} | {r['calls_per_step']} | {r['self_ms_per_step']} | "
                          f"{'yes' if r['collective'] else ''} |\n" for r in summary["top"])
