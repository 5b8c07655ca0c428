"""What this process may do with the machine's CPUs: how many it may run on, and running a
thread of background work at a lower priority than the requests beside it.

The priority is Linux's nice value, which is a thread's own there (``setpriority`` on the
thread's id); a thread may always lower its own priority, never raise it back without a
privilege. Elsewhere the call would lower the whole process, so it is not made.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

#: The largest nice value a thread can take (the lowest priority).
LOWEST = 19


def usable_cpus() -> int:
    """CPUs this process may run on (respects affinity masks where the OS has them)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def lower_this_thread(by: int) -> bool:
    """Lower the calling thread's CPU priority by ``by`` nice steps (capped at the lowest);
    whether it was lowered. Under contention the scheduler then gives the thread a smaller
    share (at nice 10 about a tenth of a normal thread's); alone, it runs at full speed."""
    if by <= 0:
        return False
    if sys.platform != "linux":
        log.info("thread priorities are per process on %s: background threads keep the normal one", sys.platform)
        return False
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(LOWEST, current + by))
    except OSError as exc:  # a sandbox that refuses the call: the work runs, at the normal priority
        log.warning("could not lower the priority of thread %d: %s", thread, exc)
        return False
    return True
