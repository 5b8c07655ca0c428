"""Owns the background loops of a process: starts them, restarts a crashed one, stops them all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Loop = Callable[[], Awaitable[None]]


def stopping() -> bool:
    """True when the current task has been asked to stop (even if a library turned the
    CancelledError into another exception on the way up)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Supervisor:
    def __init__(self, restart_delay: float = 1.0) -> None:
        self._loops: dict[str, Loop] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._restart_delay = restart_delay

    def add(self, name: str, loop: Loop) -> None:
        self._loops[name] = loop

    async def _guard(self, name: str, loop: Loop) -> None:
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - log, wait, restart
                if stopping():
                    raise
                log.exception("background loop crashed; restarting", extra={"loop": name})
                await asyncio.sleep(self._restart_delay)

    def start(self) -> None:
        for name, loop in self._loops.items():
            self._tasks[name] = asyncio.create_task(self._guard(name, loop), name=f"memory-service:{name}")

    async def stop(self, grace: float = 10.0) -> None:
        """Cancel every loop and wait for it; cancel again if a library swallowed the first one."""
        pending = set(self._tasks.values())
        for _ in range(5):
            for task in pending:
                task.cancel()
            if not pending:
                break
            done, pending = await asyncio.wait(pending, timeout=grace / 5)
            for task in done:  # retrieved, so none is reported as never retrieved
                if not task.cancelled() and task.exception() is not None:
                    log.debug("background loop stopped with an error", extra={"loop": task.get_name()}, exc_info=task.exception())
        if pending:
            log.error("background loops did not stop", extra={"loops": [t.get_name() for t in pending]})
        self._tasks.clear()


def every(seconds: float, job: Callable[[], Awaitable[object]]) -> Loop:
    """A loop that runs ``job`` every ``seconds`` (errors are logged, the loop goes on)."""

    async def loop() -> None:
        while True:
            try:
                await job()
            except Exception:  # noqa: BLE001
                if stopping():
                    raise
                log.exception("periodic job failed")
            await asyncio.sleep(seconds)

    return loop
