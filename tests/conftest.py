"""Shared fixtures: tiny GLA / Mamba2 configs and checkpoints written the way fla writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import statex_dist  # noqa: F401  (registers the Auto classes)
from statex_dist.models.loading import build_model, config_from_dict, save_as_fla

REPO = Path(__file__).resolve().parents[1]


def tiny_config(family: str, **overrides):
    raw = json.loads((REPO / "configs" / "models" / f"{family}-tiny.json").read_text())
    raw.update(overrides)
    return config_from_dict(raw)


def tiny_model(family: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = build_model(tiny_config(family, **overrides), device="cpu")
    return model.eval()


@pytest.fixture(params=["gla", "mamba2"])
def family(request) -> str:
    return request.param


@pytest.fixture
def tiny_checkpoint(tmp_path, family) -> Path:
    """A tiny random checkpoint saved with ``save_pretrained`` under fla's model_type (``gla`` / ``mamba2``)."""
    return save_as_fla(tiny_model(family), tmp_path / f"{family}-base")
