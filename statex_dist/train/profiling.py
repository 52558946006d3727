"""Step profiling (``profiling.enabled``): ``torch.profiler`` over a window of training steps, on every rank.

Each rank writes to ``run_dir/profile/``: ``rank{r}_steps{a}-{b}.trace.json`` (open it in Perfetto or
chrome://tracing: the timeline shows whether collectives overlap compute), ``rank{r}_steps{a}-{b}.ops.md`` (ops
and kernels by self time per step) and ``rank{r}_steps{a}-{b}.summary.json`` (time per step, and how much of it
was collectives), so a slow backend can be looked at from the run directory alone. On a GPU the times are the
kernels' (device time); on a CPU run, the ops' CPU time.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
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

    def step_begins(self, step: int) -> None:
        if not self.cfg.enabled or step != self.first or self._prof is not None:
            return
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        self._prof = profile(activities=activities, record_shapes=self.cfg.record_shapes,
                             with_stack=self.cfg.with_stack, profile_memory=self.cfg.memory)
        self._prof.start()

    def step_ends(self, step: int) -> None:
        if self._prof is not None and step == self.last:
            self._finish(step)

    def close(self, last_step: int) -> None:
        """The run ended inside the window: write what was recorded (nothing if its first step did not end)."""
        if self._prof is None:
            return
        if last_step >= self.first:
            self._finish(last_step)
        else:
            self._prof.stop()
            self._prof = None

    def _finish(self, last_step: int) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        prof, self._prof = self._prof, None
        prof.stop()
        steps = last_step - self.first + 1
        stem = self.out_dir / f"rank{self.rank}_steps{self.first}-{last_step}"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(stem) + ".trace.json")
        rows = op_rows(prof.key_averages(), steps, on_device=self.device.type == "cuda")
        total = sum(r["self_ms_per_step"] for r in rows)
        comm = sum(r["self_ms_per_step"] for r in rows if r["collective"])
        summary = {"rank": self.rank, "steps": [self.first, last_step], "timed_on": rows_clock(self.device),
                   "self_ms_per_step": round(total, 3), "collective_ms_per_step": round(comm, 3),
                   "collective_share": round(comm / total, 4) if total else None,
                   "top": rows[: self.cfg.top]}
        Path(str(stem) + ".summary.json").write_text(json.dumps(summary, indent=1))
        Path(str(stem) + ".ops.md").write_text(ops_table(rows[: self.cfg.top], summary))
        log.info("profiled steps %d-%d on rank %d: %.1f ms of %s time per step, %.1f ms (%.0f%%) in collectives; "
                 "%s.{trace.json,ops.md,summary.json}", self.first, last_step, self.rank, total,
                 summary["timed_on"], comm, 100 * (summary["collective_share"] or 0), stem)


def rows_clock(device: torch.device) -> str:
    return "device (kernel)" if device.type == "cuda" else "CPU (op)"


def op_rows(averages, steps: int, on_device: bool) -> list[dict]:
    """One row per op or kernel with its self time per step, longest first (self times add up without
    counting nested ops twice)."""
    rows = []
    for ev in averages:
        us = getattr(ev, "self_device_time_total", 0) if on_device else ev.self_cpu_time_total
        if us > 0:
            rows.append({"name": ev.key, "calls_per_step": round(ev.count / steps, 2),
                         "self_ms_per_step": round(us / steps / 1000, 3),
                         "collective": bool(COLLECTIVE.search(ev.key))})
    rows.sort(key=lambda r: -r["self_ms_per_step"])
    return rows


def ops_table(rows: list[dict], summary: dict) -> str:
    head = (f"# Profile, rank {summary['rank']}, steps {summary['steps'][0]}-{summary['steps'][1]}\n\n"
            f"{summary['self_ms_per_step']} ms of {summary['timed_on']} time per step, "
            f"{summary['collective_ms_per_step']} ms in collectives.\n\n"
            "| op / kernel | calls per step | self ms per step | collective |\n|---|---|---|---|\n")
    return head + "".join(f"| `{r['name'][:100]}` | {r['calls_per_step']} | {r['self_ms_per_step']} | "
                          f"{'yes' if r['collective'] else ''} |\n" for r in rows)
