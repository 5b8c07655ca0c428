"""Knowledge documents and their chunks (the ``DocumentRepo`` port), Postgres and SQLite alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.records import ChunkRecord, DocumentQuery, DocumentRecord, Page
from service.storage.sql import cursor
from service.storage.sql.models import DocumentChunkRow, DocumentRow, owned_by

#: Rows per INSERT of chunks (well under the bind-parameter limits of both engines).
_INSERT_BATCH = 500


def _document(row: DocumentRow) -> DocumentRecord:
    return DocumentRecord(
        tenant_id=row.tenant_id,
        id=row.id,
        user_id=row.user_id,
        namespace=row.namespace,
        title=row.title,
        content=row.content,
        metadata=row.metadata_,
        chunk_tokens=row.chunk_tokens,
        overlap_tokens=row.overlap_tokens,
        chunk_count=row.chunk_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _chunk(row: DocumentChunkRow) -> ChunkRecord:
    return ChunkRecord(
        tenant_id=row.tenant_id,
        id=row.id,
        document_id=row.document_id,
        chunk_index=row.chunk_index,
        content=row.content,
        tokens=row.tokens,
        start_char=row.start_char,
        heading=row.heading,
    )


@dataclass(slots=True)
class SqlDocuments:
    db: AsyncSession

    async def insert(self, document: DocumentRecord, chunks: Sequence[ChunkRecord]) -> None:
        self.db.add(
            DocumentRow(
                tenant_id=document.tenant_id,
                id=document.id,
                user_id=document.user_id,
                namespace=document.namespace,
                title=document.title,
                content=document.content,
                metadata_=document.metadata,
                chunk_tokens=document.chunk_tokens,
                overlap_tokens=document.overlap_tokens,
                chunk_count=document.chunk_count,
                created_at=document.created_at,
                updated_at=document.updated_at,
            )
        )
        await self.db.flush()
        rows = [
            {
                "tenant_id": c.tenant_id,
                "id": c.id,
                "document_id": c.document_id,
                "chunk_index": c.chunk_index,
                "content": c.content,
                "tokens": c.tokens,
                "start_char": c.start_char,
                "heading": c.heading,
            }
            for c in chunks
        ]
        for start in range(0, len(rows), _INSERT_BATCH):
            await self.db.execute(insert(DocumentChunkRow), rows[start : start + _INSERT_BATCH])

    async def get(self, tenant_id: str, document_id: str) -> DocumentRecord | None:
        row = await self.db.get(DocumentRow, (tenant_id, document_id))
        return _document(row) if row else None

    async def list(self, query: DocumentQuery) -> Page[DocumentRecord]:
        listing = f"documents:{query.tenant_id}:{query.user_id!r}:{query.namespace!r}"
        stmt = select(DocumentRow).where(DocumentRow.tenant_id == query.tenant_id)
        if query.user_id is not None:
            stmt = stmt.where(DocumentRow.user_id == query.user_id)
        if query.namespace is not None:
            stmt = stmt.where(DocumentRow.namespace == query.namespace)
        if query.cursor:
            created_at, last_id = cursor.decode(listing, query.cursor)
            stmt = stmt.where(tuple_(DocumentRow.created_at, DocumentRow.id) < tuple_(created_at, str(last_id)))
        stmt = stmt.order_by(DocumentRow.created_at.desc(), DocumentRow.id.desc()).limit(query.limit + 1)
        rows = list((await self.db.scalars(stmt)).all())
        items = [_document(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, cursor.encode(listing, items[-1].created_at, items[-1].id) if more else None)

    async def chunks(self, tenant_id: str, document_id: str, first: int = 0, limit: int | None = None) -> list[ChunkRecord]:
        stmt = (
            select(DocumentChunkRow)
            .where(
                DocumentChunkRow.tenant_id == tenant_id,
                DocumentChunkRow.document_id == document_id,
                DocumentChunkRow.chunk_index >= first,
            )
            .order_by(DocumentChunkRow.chunk_index)
            .limit(limit)
        )
        return [_chunk(r) for r in (await self.db.scalars(stmt)).all()]

    async def chunks_by_id(self, tenant_id: str, ids: Sequence[str]) -> list[ChunkRecord]:
        if not ids:
            return []
        rows = (await self.db.scalars(select(DocumentChunkRow).where(DocumentChunkRow.id.in_(list(ids))))).all()
        return [_chunk(r) for r in owned_by(tenant_id, rows)]

    async def owns_any(self, tenant_id: str, user_id: str) -> bool:
        table = DocumentRow.__table__.c
        stmt = select(table.id).where(table.tenant_id == tenant_id, table.user_id == user_id).limit(1)
        return bool((await self.db.execute(stmt)).all())

    async def delete(self, tenant_id: str, document_id: str) -> bool:
        await self.db.execute(
            delete(DocumentChunkRow).where(
                DocumentChunkRow.tenant_id == tenant_id, DocumentChunkRow.document_id == document_id
            )
        )
        result = await self.db.execute(
            delete(DocumentRow).where(DocumentRow.tenant_id == tenant_id, DocumentRow.id == document_id)
        )
        return bool(result.rowcount)

    async def scan(self, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
        stmt = select(DocumentRow.tenant_id, DocumentRow.id)
        if after is not None:
            stmt = stmt.where(tuple_(DocumentRow.tenant_id, DocumentRow.id) > tuple_(*after))
        stmt = stmt.order_by(DocumentRow.tenant_id, DocumentRow.id).limit(limit)
        return [(t, i) for t, i in (await self.db.execute(stmt)).all()]
