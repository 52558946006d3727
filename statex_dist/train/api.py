"""Entry points: :func:`run_training` (in-process) and :func:`main` (the ``statex train`` command)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from statex_dist.train.config import TrainConfig, load_train_config
from statex_dist.train.trainer import EXIT_OK, EXIT_REQUEUE, Trainer

log = logging.getLogger("statex.train")


class TrainingStopped(RuntimeError):
    """The run checkpointed and stopped on a signal or a STOP file; run it again to continue."""

    exit_code = EXIT_REQUEUE


def train(cfg: TrainConfig) -> int:
    """Build, train, close on every exit path; returns the process exit code."""
    try:
        trainer = Trainer(cfg)
    except BaseException:
        from statex_dist.parallel.dist import destroy_distributed

        destroy_distributed()
        raise
    try:
        return trainer.train()
    finally:
        trainer.close()


def run_training(cfg: TrainConfig) -> Path:
    """Train (or resume) the run ``cfg.run_dir`` in this process; returns the run directory.

    Single-process callers (the CPU demo) use ``parallel.backend: single`` or ``fsdp`` (a one-rank group is
    created). Raises :class:`TrainingStopped` when a stop request interrupted the run.
    """
    status = train(cfg)
    if status == EXIT_REQUEUE:
        raise TrainingStopped(f"run {cfg.run_dir} stopped on request; it resumes from its last checkpoint")
    return Path(cfg.run_dir)


def main(config_path: str | None, overrides: list[str]) -> int:
    cfg = load_train_config(config_path, overrides)
    return train(cfg)


__all__ = ["run_training", "train", "main", "TrainingStopped", "EXIT_OK", "EXIT_REQUEUE"]


if __name__ == "__main__":  # python -m statex_dist.train.api CONFIG [key=value ...] (what torchrun runs)
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None, sys.argv[2:]))
