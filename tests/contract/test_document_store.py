"""The knowledge-document store, run on SQLite and on Postgres."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from service.storage.errors import InvalidCursor
from service.storage.records import ChunkRecord, DocumentQuery, DocumentRecord
from service.storage.sql.database import SqlDatabase
from tests.contract.test_sql_store import T0


def document(tenant: str, *, user: str | None = "u1", namespace: str | None = None, minutes: int = 0, chunks: int = 3) -> DocumentRecord:
    at = T0 + timedelta(minutes=minutes)
    return DocumentRecord(tenant, str(uuid.uuid4()), user, namespace, "Guide", "body " * chunks, {"lang": "en"}, 256, 32, chunks, at, at)


def chunks_of(doc: DocumentRecord) -> list[ChunkRecord]:
    return [
        ChunkRecord(doc.tenant_id, str(uuid.uuid4()), doc.id, i, f"part {i}", 2, 5 * i, f"Guide > S{i}")
        for i in range(doc.chunk_count)
    ]


class TestDocuments:
    async def test_insert_get_and_chunks_round_trip(self, db: SqlDatabase, tenant: str) -> None:
        doc = document(tenant)
        parts = chunks_of(doc)
        async with db.transaction() as r:
            await r.documents.insert(doc, parts)
        async with db.transaction() as r:
            assert await r.documents.get(tenant, doc.id) == doc
            assert await r.documents.get("other-tenant", doc.id) is None
            assert await r.documents.chunks(tenant, doc.id) == parts
            assert await r.documents.chunks(tenant, doc.id, first=1, limit=1) == parts[1:2]
            assert await r.documents.chunks("other-tenant", doc.id) == []
            found = await r.documents.chunks_by_id(tenant, [parts[2].id, parts[0].id, "missing"])
            assert sorted(found, key=lambda c: c.chunk_index) == [parts[0], parts[2]]
            assert await r.documents.chunks_by_id("other-tenant", [parts[0].id]) == []

    async def test_many_chunks_are_inserted_in_batches(self, db: SqlDatabase, tenant: str) -> None:
        doc = document(tenant, chunks=1234)
        async with db.transaction() as r:
            await r.documents.insert(doc, chunks_of(doc))
        async with db.transaction() as r:
            assert [c.chunk_index for c in await r.documents.chunks(tenant, doc.id)] == list(range(1234))

    async def test_list_filters_and_pages_newest_first(self, db: SqlDatabase, tenant: str) -> None:
        mine = [document(tenant, minutes=i) for i in range(5)]
        shared = document(tenant, user=None, namespace="handbook", minutes=10)
        async with db.transaction() as r:
            for doc in [*mine, shared, document(tenant, user="u2", minutes=20)]:
                await r.documents.insert(doc, chunks_of(doc))
        async with db.transaction() as r:
            first = await r.documents.list(DocumentQuery(tenant, limit=3, user_id="u1"))
            assert [d.id for d in first.items] == [d.id for d in reversed(mine)][:3] and first.next_cursor
            second = await r.documents.list(DocumentQuery(tenant, limit=3, user_id="u1", cursor=first.next_cursor))
            assert [d.id for d in second.items] == [mine[1].id, mine[0].id] and second.next_cursor is None
            assert [d.id for d in (await r.documents.list(DocumentQuery(tenant, 10, namespace="handbook"))).items] == [shared.id]
            assert len((await r.documents.list(DocumentQuery(tenant, 10))).items) == 7
            assert (await r.documents.list(DocumentQuery("other-tenant", 10))).items == []
            with pytest.raises(InvalidCursor):
                await r.documents.list(DocumentQuery(tenant, 3, namespace="handbook", cursor=first.next_cursor))

    async def test_owns_any_asks_for_the_user_s_own_documents(self, db: SqlDatabase, tenant: str) -> None:
        mine, shared = document(tenant, user="u1"), document(tenant, user=None, namespace="handbook")
        async with db.transaction() as r:
            assert not await r.documents.owns_any(tenant, "u1")
            for doc in (mine, shared):
                await r.documents.insert(doc, chunks_of(doc))
        async with db.transaction() as r:
            assert await r.documents.owns_any(tenant, "u1")
            assert not await r.documents.owns_any(tenant, "u2")  # a namespace's documents are nobody's
            assert not await r.documents.owns_any("other-tenant", "u1")
            await r.documents.delete(tenant, mine.id)
            assert not await r.documents.owns_any(tenant, "u1")

    async def test_delete_takes_the_chunks_along(self, db: SqlDatabase, tenant: str) -> None:
        doc = document(tenant)
        parts = chunks_of(doc)
        async with db.transaction() as r:
            await r.documents.insert(doc, parts)
        async with db.transaction() as r:
            assert not await r.documents.delete("other-tenant", doc.id)
            assert await r.documents.delete(tenant, doc.id)
        async with db.transaction() as r:
            assert await r.documents.get(tenant, doc.id) is None
            assert await r.documents.chunks_by_id(tenant, [c.id for c in parts]) == []
            assert not await r.documents.delete(tenant, doc.id)

    async def test_scan_walks_every_tenant_in_key_order(self, db: SqlDatabase, tenant: str) -> None:
        docs = [document(tenant) for _ in range(3)]
        async with db.transaction() as r:
            for doc in docs:
                await r.documents.insert(doc, chunks_of(doc))
        seen: list[tuple[str, str]] = []
        after = (tenant, "")
        async with db.transaction() as r:
            while page := await r.documents.scan(after, 2):
                seen += [key for key in page if key[0] == tenant]
                after = page[-1]
                if after[0] != tenant:
                    break
        assert seen == sorted((tenant, d.id) for d in docs)
