"""The trainer's one entry into the data layer (kept in one place so the contract is easy to follow)."""

from __future__ import annotations

from statex_dist.data.config import DataConfig

IGNORE_INDEX = -100


def build_train_loader(cfg: DataConfig, dp_rank: int, dp_world: int, vocab_size: int):
    from statex_dist.data.loader import build_dataloader

    return build_dataloader(cfg, dp_rank=dp_rank, dp_world=dp_world, vocab_size=vocab_size)


def target_tokens(batch: dict) -> int:
    """Targets that count in the loss (labels are already shifted; -100 = ignored)."""
    return int((batch["labels"] != IGNORE_INDEX).sum())
