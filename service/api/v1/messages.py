"""/v1/sessions/{session_id}/messages and /buffer: the episodic record and the short-term buffer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, status

from service.api.deps import MessagesDep, StateDep, TenantDep
from service.api.params import Cursor, PageLimit, SessionId, TimeWindow
from service.api.routing import resource_router
from service.domain.messages import NewMessage
from service.schemas.common import Page
from service.schemas.messages import Buffer, BufferedMessage, Message, MessageBatch, MessageList
from service.storage.records import MessageQuery

router = resource_router("messages", "/sessions/{session_id}")

#: The largest token budget a buffer read may ask for.
MAX_BUFFER_TOKENS = 10_000_000


@router.post("/messages", status_code=status.HTTP_201_CREATED, response_model=MessageList)
async def add_messages(
    session_id: SessionId, body: MessageBatch, messages: MessagesDep, tenant: TenantDep
) -> MessageList:
    """Store a batch of messages durably and append them to the session's buffer."""
    batch = [
        NewMessage(role=m.role, content=m.content, name=m.name, created_at=m.created_at, metadata=m.metadata)
        for m in body.messages
    ]
    stored = await messages.add(tenant, session_id, batch)
    return MessageList(items=[Message.model_validate(m) for m in stored])


@router.get("/messages", response_model=Page[Message])
async def list_messages(
    session_id: SessionId,
    messages: MessagesDep,
    tenant: TenantDep,
    state: StateDep,
    window: TimeWindow,
    order: Annotated[Literal["asc", "desc"], Query(description="asc: oldest first; desc: newest first.")] = "asc",
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> Page[Message]:
    """Page through a session's full message history."""
    query = MessageQuery(
        tenant_id=tenant,
        session_id=session_id,
        limit=min(limit, state.settings.max_page_size),
        newest_first=order == "desc",
        after=window.after,
        before=window.before,
        cursor=cursor,
    )
    page = await messages.history(query)
    return Page[Message](items=[Message.model_validate(m) for m in page.items], next_cursor=page.next_cursor)


@router.get("/buffer", response_model=Buffer)
async def get_buffer(
    session_id: SessionId,
    messages: MessagesDep,
    tenant: TenantDep,
    last_n: Annotated[
        int | None,
        Query(ge=1, le=100_000, description="The last N messages (at most MEMORY_BUFFER_MAX_MESSAGES, default 200)."),
    ] = None,
    max_tokens: Annotated[
        int | None, Query(ge=1, le=MAX_BUFFER_TOKENS, description="Only the newest messages that fit.")
    ] = None,
) -> Buffer:
    """The session's recent messages: the last N, or as many of the newest as fit a token budget."""
    view = await messages.buffer(tenant, session_id, last_n, max_tokens)
    return Buffer(
        session_id=view.session_id,
        messages=[BufferedMessage.model_validate(m) for m in view.messages],
        total_tokens=view.total_tokens,
        cap=view.cap,
        ttl_seconds=view.ttl_seconds,
        rebuilt=view.rebuilt,
    )
