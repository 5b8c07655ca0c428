"""Who holds an outbox claim: a stable identity per data folder, so a restarted process takes back
at once the jobs its crashed predecessor had claimed instead of waiting for their lease to run out.

A folder has numbered slots (``<data_dir>/claims/slot-N``); each slot file holds one identity,
written once. A process takes the first slot it can lock (``flock``, exclusive) and keeps the
lock while it works. The kernel drops the lock when the process dies, however it dies, so:

* holding a slot's lock proves that no live process claims jobs under that identity: the claims
  still recorded under it belong to a dead predecessor and may be released at once;
* a live process's identity is never reused, so its claims are never taken over. Processes on
  other hosts (other folders) have other identities; their dead claims wait for the lease.

Where locking is unavailable (no folder, no ``fcntl``, every slot taken) the identity is a fresh
random one that nobody will ever reclaim: the lease alone decides, as before.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SLOTS = 64
#: Longest identity stored in ``jobs.locked_by``.
MAX_OWNER_CHARS = 128


@dataclass(slots=True)
class ClaimOwner:
    """An identity to claim jobs under; ``reclaim`` when its leftover claims may be released."""

    id: str
    reclaim: bool
    _lock: IO[str] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Give the identity up (the next process to start may take it, and its claims)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _new_id(slot: int | None) -> str:
    host = socket.gethostname()[:60] or "host"
    suffix = uuid.uuid4().hex
    return (f"{host}/{slot}/{suffix}" if slot is not None else f"{host}/{os.getpid()}/{suffix}")[:MAX_OWNER_CHARS]


def _try_slot(path: Path, slot: int) -> ClaimOwner | None:
    handle = path.open("a+", encoding="utf-8")
    try:
        assert fcntl is not None
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    owner = handle.read().strip()
    if not owner:
        owner = _new_id(slot)
        handle.write(owner)
        handle.flush()
        os.fsync(handle.fileno())
    return ClaimOwner(owner, True, handle)


def claim_owner(folder: Path | None) -> ClaimOwner:
    """The first free slot's identity in ``folder``, else a fresh one that is never reclaimed."""
    if folder is not None and fcntl is not None:
        try:
            slots = folder / "claims"
            slots.mkdir(parents=True, exist_ok=True)
            for slot in range(SLOTS):
                if (owner := _try_slot(slots / f"slot-{slot}", slot)) is not None:
                    return owner
        except OSError:
            log.warning("cannot lock a claim slot; crashed claims will wait for their lease", exc_info=True)
    return ClaimOwner(_new_id(None), False)
