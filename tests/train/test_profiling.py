"""Step profiling (``profiling.*``) in single-process CPU runs: which steps are recorded, what is written, and
that a window cut short by the end of the run is still written."""

from __future__ import annotations

import json

import pytest

from statex_dist.config.io import from_dict
from statex_dist.train.api import run_training
from statex_dist.train.config import TrainConfig
from train_runs import tiny_train_config


def _run(tmp_path, corpus, run_steps, **profiling):
    d = tiny_train_config(tmp_path / "run", corpus, "gla", backend="single", steps=run_steps, global_rows=1,
                          **{f"profiling__{k}": v for k, v in profiling.items()})
    run_training(from_dict(TrainConfig, d))
    return tmp_path / "run" / "profile"


def test_profile_window_writes_trace_ops_and_summary(tmp_path, synthetic_corpus):
    out = _run(tmp_path, synthetic_corpus, 4, enabled=True, start_step=2, steps=2)
    assert sorted(p.name for p in out.iterdir()) == ["rank0_steps2-3.ops.md", "rank0_steps2-3.summary.json",
                                                     "rank0_steps2-3.trace.json"]
    summary = json.loads((out / "rank0_steps2-3.summary.json").read_text())
    assert summary["steps"] == [2, 3] and summary["timed_on"] == "CPU (op)"
    assert summary["self_ms_per_step"] > 0 and summary["collective_ms_per_step"] == 0  # one process: none
    assert 0 < summary["self_ms_per_step"] <= summary["window_ms_per_step"]  # one thread: self times add up
    names = [r["name"] for r in summary["top"]]
    assert any(n in ("aten::mm", "aten::addmm", "aten::bmm") for n in names), names
    assert "traceEvents" in json.loads((out / "rank0_steps2-3.trace.json").read_text())
    assert "| op / kernel |" in (out / "rank0_steps2-3.ops.md").read_text()


def test_python_profile_names_the_functions_that_take_host_time(tmp_path, synthetic_corpus):
    """cProfile alone (no torch.profiler): the table and the stats file, with the optimizer's step among the
    functions and its time inside the profiled wall time."""
    import pstats

    out = _run(tmp_path, synthetic_corpus, 3, enabled=True, start_step=2, steps=2, torch=False, python=True)
    assert sorted(p.name for p in out.iterdir()) == ["rank0_steps2-3.pstats", "rank0_steps2-3.python.md"]
    md = (out / "rank0_steps2-3.python.md").read_text()
    wall = float(md.split("\n\n")[1].split(" ms of wall time")[0])
    rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| `")]
    steps = {r[0]: (float(r[1]), float(r[3].rstrip(" |"))) for r in rows if "step (torch/optim/" in r[0]}
    assert steps, md  # the AdamW step (torch/optim/adamw.py or optimizer.py) is listed
    calls, total_ms = max(steps.values(), key=lambda v: v[1])
    assert calls == 1 and 0 < total_ms < wall  # once a step, and part of the step's wall time
    assert "## By own time" in md
    stats = pstats.Stats(str(out / "rank0_steps2-3.pstats"))
    assert stats.total_tt > 0


def test_both_profilers_and_neither(tmp_path, synthetic_corpus):
    from statex_dist.train.config import ProfilingConfig

    out = _run(tmp_path, synthetic_corpus, 2, enabled=True, start_step=1, steps=1, python=True)
    assert {p.suffix for p in out.iterdir()} == {".json", ".md", ".pstats"}  # trace, summary, ops, python
    with pytest.raises(ValueError, match="profiling.torch or profiling.python"):
        ProfilingConfig(enabled=True, torch=False, python=False)
    ProfilingConfig(enabled=False, torch=False, python=False)  # off: nothing to check


def test_window_past_the_end_is_cut_and_disabled_writes_nothing(tmp_path, synthetic_corpus):
    out = _run(tmp_path / "a", synthetic_corpus, 3, enabled=True, start_step=3, steps=5)
    assert [p.name for p in out.glob("*.summary.json")] == ["rank0_steps3-3.summary.json"]
    assert not _run(tmp_path / "b", synthetic_corpus, 2, enabled=False).exists()


def test_bad_profiling_settings_are_refused():
    from statex_dist.train.config import ProfilingConfig

    with pytest.raises(ValueError, match="profiling.start_step"):
        ProfilingConfig(start_step=0)


def test_device_timeline_splits_busy_compute_and_exposed_collectives():
    from statex_dist.train.profiling import device_timeline

    # compute 0-10 and 20-30; a collective 5-15 (overlapped until 10) and one alone at 40-45
    t = device_timeline([(0, 10, False), (5, 15, True), (20, 30, False), (40, 45, True), (22, 25, False)])
    assert t == {"gpu_busy": 30, "compute_busy": 20, "exposed_collective": 10}


def test_gpu_totals_count_kernels_once_not_their_launching_ops():
    """On a GPU the op that launched a kernel reports the kernel's time as its own self device time: adding ops
    and kernels would count it twice (a 344 ms step once read as 676 ms of kernel time)."""
    from types import SimpleNamespace as NS

    from torch.autograd import DeviceType

    from statex_dist.train.profiling import summarize

    def ev(name, device, us, start=0.0):
        return NS(key=name, name=name, device_type=device, is_user_annotation=False, self_device_time_total=us,
                  count=2, time_range=NS(start=start, end=start + us))

    cpu, gpu = DeviceType.CPU, DeviceType.CUDA
    averages = [ev("aten::mm", cpu, 6000), ev("nvjet_gemm", gpu, 6000), ev("record_param_comms", cpu, 2000),
                ev("ncclDevKernel_AllGather", gpu, 2000)]
    events = [ev("aten::mm", cpu, 500, 0), ev("nvjet_gemm", gpu, 3000, 1000), ev("nvjet_gemm", gpu, 3000, 5000),
              ev("ncclDevKernel_AllGather", gpu, 2000, 7000), ev("aten::mm", cpu, 500, 9500)]
    s = summarize(NS(key_averages=lambda: averages, events=lambda: events), steps=2, on_device=True, top=10)
    assert s["self_ms_per_step"] == 4.0 and s["collective_ms_per_step"] == 1.0
    assert {r["name"]: r["kind"] for r in s["top"]} == {"aten::mm": "op", "nvjet_gemm": "kernel",
                                                        "record_param_comms": "op", "ncclDevKernel_AllGather": "kernel"}
    assert s["window_ms_per_step"] == 5.0 and s["gpu_busy_ms_per_step"] == 3.5 and s["gpu_idle_ms_per_step"] == 1.5
    assert s["exposed_collective_ms_per_step"] == 0.5
