"""The scheduled garbage collector: automatic collection off inside the loop, cycles freed at the scheduled
steps only, Python's state restored afterwards, collection time measured."""

from __future__ import annotations

import gc
import weakref

import pytest

from statex_dist.train.collector import GarbageCollection


class _Node:
    pass


def _garbage_cycle() -> weakref.ref:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_cycles_are_freed_only_at_scheduled_steps_and_state_is_restored():
    assert gc.isenabled()
    with GarbageCollection(3) as collector:
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        alive = _garbage_cycle()
        collector.after_step(1)
        collector.after_step(2)
        assert alive() is not None, "collected before the scheduled step"
        assert collector.take_ms() == 0.0
        collector.after_step(3)
        assert alive() is None, "the scheduled step did not free the cycle"
        assert collector.collections == 1 and collector.take_ms() > 0.0
        assert collector.take_ms() == 0.0  # taken
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert collector._on_collect not in gc.callbacks


def test_interval_zero_leaves_python_in_charge_and_still_measures():
    with GarbageCollection(0) as collector:
        assert gc.isenabled() and gc.get_freeze_count() == 0
        alive = _garbage_cycle()
        collector.after_step(1)
        assert alive() is not None  # no scheduled collection
        gc.collect()
        assert alive() is None and collector.collections == 1 and collector.take_ms() > 0.0


def test_state_restored_after_an_error_and_a_disabled_gc_stays_disabled():
    with pytest.raises(RuntimeError):
        with GarbageCollection(2):
            raise RuntimeError("boom")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with GarbageCollection(2):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_negative_interval_is_rejected():
    with pytest.raises(ValueError, match="gc_interval"):
        GarbageCollection(-1)
