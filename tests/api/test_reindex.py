"""`memory-service reindex` rebuilds the vector index from SQL even when a row is one the engine
refuses: that row is left out (and logged), every other memory is indexed again."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

from service.domain.clock import now
from service.domain.memories import NewMemory, build, record_created
from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.settings import Settings
from service.storage import factory
from service.workers import runner
from tests.api.helpers import search
from tests.conftest import app_for, migrated, start


async def test_a_refused_row_is_left_out_and_the_rest_indexed(
    data_dir: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = Settings(data_dir=data_dir, default_tenant="re", auth_disabled=True, run_workers=False, _env_file=None)  # type: ignore[call-arg]
    await migrated(settings.sql_url)
    at = now()
    good = build("re", NewMemory(user_id="u1", content="The spare key is under the blue flowerpot"), at)
    bad = replace(build("re", NewMemory(user_id="u1", content="Poisoned gravel"), at), id=f"poison-{uuid.uuid4().hex[:20]}")
    db = factory.open_database(settings)
    async with db.transaction() as repos:
        await record_created(repos, [bad, good])  # both on one page of the scan
    await db.close()

    assert (await runner.reindex(settings)).memories == 2

    async with start(app_for(settings, embedder)) as client:
        found = await search(client, "where is the spare key", user_id="u1")
        assert [h["memory"]["id"] for h in found] == [good.id]
