"""Python's garbage collector on a schedule: every rank collects at the same steps, not whenever it likes.

Python runs a collection whenever enough objects have been allocated, so a full collection (every live object
traversed: torch, transformers, the model's modules) can land in the middle of any step on any rank. On one
GPU that is a slow step; on several, every other rank waits for it at the next collective. With
``gc_interval`` > 0 the trainer freezes what exists after set-up (not traversed again until the loop ends),
turns automatic collection off, and runs a full collection every ``gc_interval`` steps on all ranks at once
(torchtitan's ``gc_freq`` does the same for the same reason). That collection only traverses what was created
since set-up, so it is short, and cycles made during training are still freed. The time spent collecting,
automatic or scheduled, goes into the step metrics (``gc_ms``).

Measured on GLA-1.3B StateX at one H200 (docs/benchmarks.md, thirteenth round): under automatic collection the
trainer spent 0.6-1.8 ms a step collecting and 0.64 s in its first step; the schedule removes both, and the
median step did not move beyond noise. No rank stall from a collection was seen at two GPUs.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


class GarbageCollection:
    """Owns ``gc`` for the length of a training loop (``with``); ``interval`` 0 leaves Python's defaults."""

    def __init__(self, interval: int):
        if interval < 0:
            raise ValueError(f"gc_interval must be >= 0, got {interval}")
        self.interval = interval
        self._was_enabled = True
        self._started: float | None = None
        self._seconds = 0.0
        self.collections = 0

    def __enter__(self) -> "GarbageCollection":
        self._was_enabled = gc.isenabled()
        if self.interval:
            gc.collect()
            gc.freeze()
            gc.disable()
            log.info("Python gc: set-up objects frozen, automatic collection off, a full collection every %d steps",
                     self.interval)
        gc.callbacks.append(self._on_collect)  # after the set-up collection: it belongs to no step
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._on_collect)
        if self.interval:
            gc.unfreeze()
            if self._was_enabled:
                gc.enable()

    def _on_collect(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self._seconds += time.perf_counter() - self._started
            self._started = None
            self.collections += 1

    def after_step(self, step: int) -> None:
        """Called by every rank after optimizer step ``step`` (1-based): the scheduled collection."""
        if self.interval and step % self.interval == 0:
            gc.collect()

    def take_ms(self) -> float:
        """Milliseconds spent collecting since the last call (automatic and scheduled collections)."""
        seconds, self._seconds = self._seconds, 0.0
        return 1000.0 * seconds
