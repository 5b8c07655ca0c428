"""/v1/memories: long-term memories, their history, and recall."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response, status

from service.api.deps import MemoriesDep, SearchDep, SessionsDep, StateDep, TenantDep
from service.api.params import Cursor, MemoryId, PageLimit, TimeWindow
from service.api.routing import resource_router
from service.domain.bulk import BulkImporter, BulkLimits
from service.domain.clock import now
from service.domain.memories import NewMemory
from service.domain.search import FoundChunk, Hit, SearchQuery
from service.schemas.bulk import MemoryImportResult
from service.schemas.common import ClientId, Page
from service.schemas.memories import (
    DocumentHit,
    Memory,
    MemoryBatch,
    MemoryCreate,
    MemoryHistory,
    MemoryType,
    MemoryUpdate,
    MemoryVersion,
    MemoryWrite,
    MemoryWriteResult,
    MemoryWriteResults,
    ScoreParts,
    SearchHit,
    SearchRequest,
    SearchResults,
    Topic,
)
from service.storage.records import MemoryQuery

router = resource_router("memories", "/memories")

def _new(body: MemoryCreate) -> NewMemory:
    return NewMemory(**body.model_dump())


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MemoryWriteResults,
    responses={200: {"model": MemoryWriteResults, "description": "Every memory was already kept"}},
)
async def create_memories(
    body: MemoryWrite,
    memories: MemoriesDep,
    sessions: SessionsDep,
    tenant: TenantDep,
    response: Response,
) -> MemoryWriteResults:
    """Store one memory or a batch; identical or near-identical ones return the memory already kept."""
    batch = body.memories if isinstance(body, MemoryBatch) else [body]
    await sessions.require(tenant, [m.session_id for m in batch if m.session_id])
    outcomes = await memories.add(tenant, [_new(m) for m in batch])
    if all(o.status != "created" for o in outcomes):
        response.status_code = status.HTTP_200_OK
    return MemoryWriteResults(
        items=[MemoryWriteResult(memory=Memory.model_validate(o.memory), status=o.status) for o in outcomes]  # type: ignore[arg-type]
    )


@router.get("", response_model=Page[Memory])
async def list_memories(
    memories: MemoriesDep,
    tenant: TenantDep,
    state: StateDep,
    window: TimeWindow,
    user_id: Annotated[ClientId | None, Query()] = None,
    session_id: Annotated[ClientId | None, Query()] = None,
    type: Annotated[list[MemoryType] | None, Query(max_length=16, description="One or more types.")] = None,
    topic: Annotated[Topic | None, Query()] = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> Page[Memory]:
    """List memories, newest first, with filters (after/before bound the event time)."""
    query = MemoryQuery(
        tenant_id=tenant,
        limit=min(limit, state.settings.max_page_size),
        alive_at=now(),
        user_id=user_id,
        session_id=session_id,
        types=tuple(type) if type else None,
        topic=topic,
        after=window.after,
        before=window.before,
        cursor=cursor,
    )
    page = await memories.list(query)
    return Page[Memory](items=[Memory.model_validate(m) for m in page.items], next_cursor=page.next_cursor)


@router.post("/search", response_model=SearchResults)
async def search_memories(body: SearchRequest, search: SearchDep, tenant: TenantDep) -> SearchResults:
    """Hybrid recall over a user's memories, each hit with its score and the parts behind it."""
    query = SearchQuery(
        tenant_id=tenant,
        query=body.query,
        user_id=body.user_id,
        limit=body.limit,
        mode=body.mode,
        session_id=body.session_id,
        agent_id=body.agent_id,
        types=tuple(body.types) if body.types else None,
        topics=tuple(body.topics) if body.topics else None,
        metadata=body.metadata,
        after=body.after,
        before=body.before,
        params=body.weights.params(),
        mmr_lambda=body.mmr,
        min_score=body.min_score,
        sources=frozenset(body.sources),
        namespaces=tuple(body.namespaces),
    )
    return SearchResults(items=[search_hit(hit) for hit in await search.search(query)])


def search_hit(hit: Hit) -> SearchHit | DocumentHit:
    if isinstance(hit, FoundChunk):
        return DocumentHit(
            score=hit.score,
            parts=ScoreParts(**hit.parts),
            content=hit.chunk.content,
            document_id=hit.document.id,
            title=hit.document.title,
            chunk_index=hit.chunk.chunk_index,
            chunk_id=hit.chunk.id,
            heading=hit.chunk.heading,
            namespace=hit.document.namespace,
        )
    return SearchHit(memory=Memory.model_validate(hit.memory), score=hit.score, parts=ScoreParts(**hit.parts))


NDJSON = "application/x-ndjson"


def get_bulk(state: StateDep) -> BulkImporter:
    """The bulk importer over the state's database and indexer (it holds no client of its own)."""
    limits = BulkLimits(dimension=state.backends.embedder.dimension, max_content_chars=state.settings.max_content_chars)
    return BulkImporter(state.backends.db, state.indexer, limits, wake=state.outbox.wake)


BulkDep = Annotated[BulkImporter, Depends(get_bulk)]


@router.post(
    "/import",
    response_model=MemoryImportResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                NDJSON: {
                    "schema": {
                        "type": "string",
                        "description": "One memory a line: the fields of POST /v1/memories, plus an optional "
                        "`id` (a UUID) and an optional `vector` (the content's embedding, of the model's dimension).",
                    }
                }
            },
        }
    },
)
async def import_memories(request: Request, bulk: BulkDep, tenant: TenantDep) -> MemoryImportResult:
    """Store many memories from JSON lines; lines with vectors are searchable at once, the rest once embedded."""
    tally = await bulk.run(tenant, request.stream())
    return MemoryImportResult(imported=tally.imported, skipped=tally.skipped, indexed=tally.indexed, queued=tally.queued)


@router.get("/{memory_id}", response_model=Memory)
async def get_memory(memory_id: MemoryId, memories: MemoriesDep, tenant: TenantDep) -> Memory:
    """Read one memory."""
    return Memory.model_validate(await memories.get(tenant, memory_id))


@router.patch("/{memory_id}", response_model=Memory)
async def update_memory(memory_id: MemoryId, body: MemoryUpdate, memories: MemoriesDep, tenant: TenantDep) -> Memory:
    """Change a memory; the old version is kept in its history."""
    changes = body.model_dump(exclude_unset=True)
    for name in ("content", "type", "modality", "importance", "keywords", "metadata", "event_time"):
        if name in changes and changes[name] is None:
            del changes[name]
    return Memory.model_validate(await memories.update(tenant, memory_id, changes))


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_memory(memory_id: MemoryId, memories: MemoriesDep, tenant: TenantDep) -> Response:
    """Delete a memory; its history keeps a tombstone."""
    await memories.delete(tenant, memory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{memory_id}/history", response_model=MemoryHistory)
async def get_memory_history(memory_id: MemoryId, memories: MemoriesDep, tenant: TenantDep) -> MemoryHistory:
    """Every version of a memory, oldest first, ending with a tombstone if it was deleted."""
    versions = await memories.history(tenant, memory_id)
    return MemoryHistory(
        memory_id=memory_id,
        versions=[
            MemoryVersion(version=v.version, op=v.op, changes=v.changes, snapshot=v.snapshot, at=v.at)  # type: ignore[arg-type]
            for v in versions
        ],
    )
