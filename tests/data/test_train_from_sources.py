"""The trainer trains from every source kind through the real data layer (tiny GLA, one process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statex_dist.config.io import from_dict
from statex_dist.train.api import run_training
from statex_dist.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def _source(kind: str, prepared, corpus) -> dict:
    if kind in ("mds", "wds"):
        return {"kind": kind, "path": prepared[kind]}
    if kind == "hf":
        return {"kind": "hf", "path": corpus["dir"] + "/*.jsonl", "tokenized": False}
    return {"kind": "jsonl", "path": ",".join(corpus["files"])}


@pytest.mark.parametrize("kind", ["mds", "wds", "hf", "jsonl"])
def test_trainer_trains_from_each_source_kind(tmp_path, prepared, corpus, tokenizer_dir, kind):
    steps = 12
    cfg = from_dict(TrainConfig, {
        "run_dir": str(tmp_path / "run"), "steps": steps, "global_batch_tokens": 4 * 64,
        "model": {"config": str(REPO / "configs" / "models" / "gla-tiny.json"),
                  "expand": {"layers": "0", "gla_heads": 1}},
        "data": {"sources": [_source(kind, prepared, corpus)], "tokenizer": tokenizer_dir, "seq_len": 64,
                 "micro_batch_size": 4, "packing": "concat", "reset_state_at_docs": True, "shuffle_buffer": 0,
                 "num_workers": 0},
        "optim": {"lr": 3e-3}, "schedule": {"kind": "constant", "warmup_steps": 0},
        "parallel": {"backend": "single"}, "precision": {"mode": "fp32"},
        "checkpoint": {"interval": 0, "save_at_end": False}, "logging": {"tensorboard": False, "progress_bar": False},
    })
    run_training(cfg)
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(1, steps + 1))
    first, last = sum(r["loss"] for r in recs[:3]) / 3, sum(r["loss"] for r in recs[-3:]) / 3
    assert last < first - 0.3, f"{kind}: loss did not go down ({first:.3f} -> {last:.3f})"
