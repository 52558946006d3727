"""Helpers for training tests: a synthetic corpus, tiny configs, and runs in subprocesses (torchrun or python).

Every run is a real ``statex train`` process; results are read back from ``metrics.jsonl`` and checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300


def tiny_train_config(run_dir, corpus, family="gla", backend="fsdp", steps=6, global_rows=4, expand=True,
                      seq_len=64, micro_batch=1, **extra) -> dict:
    """A tiny CPU config: fp32 (bitwise comparisons), pad packing with one document per row (so 1 and 2 ranks
    see exactly the same global batch), no shuffling, constant LR after a short warmup."""
    cfg = {
        "run_dir": str(run_dir),
        "seed": 0,
        "steps": steps,
        "global_batch_tokens": global_rows * seq_len,
        "model": {"config": str(REPO / "configs" / "models" / f"{family}-tiny.json")},
        "data": {"sources": [{"kind": "mds", "path": str(corpus)}], "seq_len": seq_len,
                 "micro_batch_size": micro_batch, "packing": "pad", "shuffle_buffer": 0, "num_workers": 0,
                 "eos_id": 2},
        "optim": {"lr": 3e-3, "weight_decay": 0.1, "grad_clip": 1.0},
        "schedule": {"kind": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1},
        "parallel": {"backend": backend},
        "precision": {"mode": "fp32"},
        "checkpoint": {"interval": 0, "keep_last": 3},
        "logging": {"tensorboard": False, "progress_bar": False},
    }
    if expand:
        cfg["model"]["expand"] = ({"layers": "0,2", "gla_heads": 1} if family == "gla"
                                  else {"layers": "0,2", "mamba2_state_size": 32})
    if backend == "deepspeed":
        cfg["parallel"]["deepspeed_config"] = str(REPO / "configs" / "deepspeed" / "zero2.json")
    for key, value in extra.items():
        node = cfg
        parts = key.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return cfg


def write_config(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    e.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "statex_torch_extensions"))
    e.pop("RANK", None), e.pop("WORLD_SIZE", None), e.pop("MASTER_ADDR", None)
    return e


def command(config: Path, nproc: int, overrides=()) -> list[str]:
    if nproc == 1:
        return [sys.executable, "-m", "statex_dist.cli", "train", "--config", str(config), *overrides]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "statex_dist.cli", "train", "--config", str(config), *overrides]


def start(config: Path, nproc: int, log: Path, overrides=(), extra_env=None) -> subprocess.Popen:
    f = open(log, "ab")
    return subprocess.Popen(command(config, nproc, overrides), cwd=REPO, env={**env(), **(extra_env or {})}, stdout=f,
                            stderr=subprocess.STDOUT, start_new_session=True)


def run(config: Path, nproc: int, log: Path, overrides=(), expect_rc=0) -> int:
    proc = start(config, nproc, log, overrides)
    try:
        rc = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"run timed out; log:\n{log.read_text()[-4000:]}")
    if expect_rc is not None and rc != expect_rc:
        raise AssertionError(f"exit code {rc} (expected {expect_rc}); log:\n{log.read_text()[-6000:]}")
    return rc


def losses(run_dir: Path) -> dict[int, float]:
    """Loss per step from metrics.jsonl (the last record of a step wins: a resumed run redoes steps)."""
    out = {}
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[rec["step"]] = rec["loss"]
    return out


def records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def run_and_kill_after_checkpoint(config: Path, nproc: int, log: Path, step: int) -> None:
    """Start a run that parks after ``step`` (fault injection), SIGKILL its whole process group once checkpoint
    ``step`` is published, and check that it really stopped there."""
    run_dir = Path(yaml.safe_load(config.read_text())["run_dir"])
    target = run_dir / "checkpoints" / f"step_{step:08d}" / "COMPLETE"
    proc = start(config, nproc, log, extra_env={"STATEX_FAULT_HANG_AFTER_STEP": str(step)})
    deadline = time.time() + TIMEOUT
    while not target.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended (rc {proc.returncode}) before checkpoint {step}:\n{log.read_text()[-4000:]}")
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("no checkpoint before the timeout")
        time.sleep(0.05)
    time.sleep(0.5)  # the other ranks reach the hang too; nothing is written after the checkpoint
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert max(losses(run_dir)) == step, "the killed run went past the checkpoint step"
    assert not (run_dir / "checkpoints" / f"step_{step + 1:08d}").exists()


def log_text(run_dir: Path) -> str:
    """The console log of the (last) run in ``run_dir``: ``<run_dir>.log`` next to it by our convention."""
    return Path(str(run_dir) + ".log").read_text()


def resume_killed_run(runs: dict, name: str, nproc: int) -> Path:
    """Copy the SIGKILLed run directory of ``runs`` and resume it with ``nproc`` processes; return the copy."""
    resumed = runs["root"] / name
    shutil.copytree(runs["killed"], resumed)
    run(runs["killed_config"], nproc, runs["root"] / f"{name}.log", [f"run_dir={resumed}"])
    return resumed


def reference_runs(root: Path, corpus: Path, steps: int, ckpt: int, **extra) -> dict:
    """A tiny expanded GLA trained for ``steps`` on 1 process and on 2 (the same global batch), plus a 2-process
    run SIGKILLed right after its step-``ckpt`` checkpoint; ``extra`` goes to ``tiny_train_config``."""
    out = {"root": root}
    for name, nproc in (("one", 1), ("two", 2), ("killed", None)):
        cfg = tiny_train_config(root / name, corpus, "gla", steps=steps, checkpoint__interval=ckpt, **extra)
        config = write_config(cfg, root / f"{name}.yaml")
        if nproc is None:
            out["killed_config"] = config
            run_and_kill_after_checkpoint(config, 2, root / f"{name}.log", ckpt)
        else:
            run(config, nproc, root / f"{name}.log")
        out[name] = root / name
    return out


def assert_resume_continues(runs: dict, name: str, nproc: int, steps: int, ckpt: int, exact: bool) -> Path:
    """Resume the killed run on ``nproc`` processes: it starts at step ``ckpt`` and its losses equal the
    uninterrupted 2-process run's (bitwise when ``exact``, else within 1e-5). Returns the resumed run."""
    ref = losses(runs["two"])
    resumed = resume_killed_run(runs, name, nproc)
    got = losses(resumed)
    assert f"start at step {ckpt} (resumed from" in log_text(resumed)
    for step in range(ckpt + 1, steps + 1):
        if exact:
            assert got[step] == ref[step], f"step {step}: resumed {got[step]!r} != uninterrupted {ref[step]!r}"
        else:
            assert got[step] == pytest.approx(ref[step], rel=1e-5, abs=1e-6), (step, got, ref)
    return resumed


def assert_run_equals_statex_expand(run_dir: Path, base: Path, plan, out: Path) -> dict:
    """Export ``run_dir`` and ``statex expand`` ``base`` with ``plan``: the two weight files are identical.

    Returns the expanded weights (the reference)."""
    import torch
    from safetensors.torch import load_file

    from statex_dist.checkpoint.export import export_checkpoint
    from statex_dist.expansion.apply import expand_checkpoint

    ours = load_file(str(export_checkpoint(run_dir, out / "ours") / "model.safetensors"))
    ref = load_file(str(expand_checkpoint(base, out / "ref", plan) / "model.safetensors"))
    assert set(ours) == set(ref)
    for k in ref:
        assert torch.equal(ours[k], ref[k]), k
    return ref
