"""The lifespan moves the startup heap out of the cycle collector's full passes, once a process."""

from __future__ import annotations

import gc

from service.lifespan import _freeze_startup_heap


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
