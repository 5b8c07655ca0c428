"""/v1/users/{user_id}: erase, export and import a user's data (the governance half of users)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import StreamingResponse

from service.api.deps import ErasureDep, ExporterDep, ImporterDep, TenantDep
from service.api.routing import resource_router
from service.schemas.validators import ID_PATTERN
from service.schemas.portability import ErasedCounts, Erasure, ImportResult

router = resource_router("users", "/users")

NDJSON = "application/x-ndjson"
UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="The user's id.")]


@router.delete("/{user_id}", response_model=Erasure)
async def delete_user(user_id: UserId, eraser: ErasureDep, tenant: TenantDep) -> Erasure:
    """Erase everything of a user from SQL, the buffer and the vector index; the counts removed."""
    erased = await eraser.erase(tenant, user_id)
    return Erasure(
        deleted=ErasedCounts(
            sessions=erased.sessions,
            messages=erased.messages,
            memories=erased.memories,
            documents=erased.documents,
            vectors=erased.vectors,
        )
    )


@router.get(
    "/{user_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}}, "description": "One JSON object a line."}},
)
async def export_user(user_id: UserId, exporter: ExporterDep, tenant: TenantDep) -> StreamingResponse:
    """Everything of a user as JSON lines (user, profile, sessions, messages, memories, versions, documents)."""
    await exporter.check(tenant, user_id)

    async def body() -> AsyncIterator[bytes]:
        async for line in exporter.lines(tenant, user_id):
            yield json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    headers = {"Content-Disposition": f'attachment; filename="{user_id}.ndjson"'}
    return StreamingResponse(body(), media_type=NDJSON, headers=headers)


@router.post(
    "/{user_id}/import",
    response_model=ImportResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {NDJSON: {"schema": {"type": "string", "description": "An export of GET .../export."}}},
        }
    },
)
async def import_user(user_id: UserId, request: Request, importer: ImporterDep, tenant: TenantDep) -> ImportResult:
    """Restore a user from an export: records already there are skipped (ids are kept), memories re-indexed."""
    tally = await importer.restore(tenant, user_id, request.stream())
    return ImportResult(imported=dict(tally.imported), skipped=dict(tally.skipped))
