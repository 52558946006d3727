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
    names = [r["name"] for r in summary["top"]]
    assert any(n in ("aten::mm", "aten::addmm", "aten::bmm") for n in names), names
    assert "traceEvents" in json.loads((out / "rank0_steps2-3.trace.json").read_text())
    assert "| op / kernel |" in (out / "rank0_steps2-3.ops.md").read_text()


def test_window_past_the_end_is_cut_and_disabled_writes_nothing(tmp_path, synthetic_corpus):
    out = _run(tmp_path / "a", synthetic_corpus, 3, enabled=True, start_step=3, steps=5)
    assert [p.name for p in out.glob("*.summary.json")] == ["rank0_steps3-3.summary.json"]
    assert not _run(tmp_path / "b", synthetic_corpus, 2, enabled=False).exists()


def test_bad_profiling_settings_are_refused():
    from statex_dist.train.config import ProfilingConfig

    with pytest.raises(ValueError, match="profiling.start_step"):
        ProfilingConfig(start_step=0)
