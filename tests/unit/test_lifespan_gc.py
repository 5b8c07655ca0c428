"""The lifespan tunes the cycle collector once a process: the startup heap frozen, the youngest
generation collected less often."""

from __future__ import annotations

import gc

from service.lifespan import _collector_tuned, _freeze_startup_heap


def test_the_startup_heap_is_frozen_once() -> None:
    if gc.get_freeze_count():
        assert _freeze_startup_heap() is False  # another app of this process froze it
        return
    try:
        assert _freeze_startup_heap() is True
        assert gc.get_freeze_count() > 0
        assert _freeze_startup_heap() is False
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_the_collector_is_tuned_while_the_app_runs_and_set_back() -> None:
    if gc.get_freeze_count():
        return  # another app of this process holds the tuning (see the test above)
    before = gc.get_threshold()
    with _collector_tuned(50_000):
        assert gc.get_threshold() == (50_000, *before[1:])
        assert gc.get_freeze_count() > 0
        with _collector_tuned(9_000):  # a second app of the process: the first one's settings stay
            assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold()[0] == 50_000
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_threshold_of_zero_leaves_the_collector_as_it_is() -> None:
    if gc.get_freeze_count():
        return
    before = gc.get_threshold()
    with _collector_tuned(0):
        assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
