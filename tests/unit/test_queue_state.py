"""The queue state's indexing lag: how long a new memory has waited to be searchable."""

from __future__ import annotations

import asyncio

from service.domain.digests import DIGEST_SESSION
from service.domain.document_index import SYNC_DOCUMENT
from service.domain.indexing import SYNC_MEMORY
from service.domain.upkeep import QueueState, queue_state
from service.storage.sql.database import SqlDatabase


def state(ages: dict[str, float]) -> QueueState:
    return QueueState(len(ages), 0, max(ages.values(), default=None), [], dict.fromkeys(ages, 1), ages)


class TestIndexingLag:
    def test_is_the_oldest_indexing_job_of_either_kind(self) -> None:
        lagging = state({SYNC_MEMORY: 3.0, SYNC_DOCUMENT: 7.5, DIGEST_SESSION: 40.0})
        assert lagging.indexing_lag_seconds == 7.5
        assert lagging.indexing_pending == 2
        assert lagging.oldest_pending_age_seconds == 40.0

    def test_a_waiting_digest_alone_is_no_indexing_lag(self) -> None:
        digests = state({DIGEST_SESSION: 40.0, "refresh_profile": 12.0})
        assert digests.indexing_lag_seconds is None
        assert digests.indexing_pending == 0

    async def test_is_read_from_the_job_store(self, db: SqlDatabase) -> None:
        async with db.transaction() as repos:
            await repos.jobs.enqueue("t1", DIGEST_SESSION, ["s1"])
        await asyncio.sleep(0.3)
        async with db.transaction() as repos:
            await repos.jobs.enqueue("t1", SYNC_MEMORY, ["m1", "m2"])
        read = await queue_state(db)
        assert read.pending == 3 and read.indexing_pending == 2
        assert read.indexing_lag_seconds is not None and read.oldest_pending_age_seconds is not None
        assert read.oldest_pending_age_seconds - read.indexing_lag_seconds >= 0.25  # the digest is older
        assert read.oldest_age_by_kind[DIGEST_SESSION] == read.oldest_pending_age_seconds
