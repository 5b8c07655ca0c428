"""/v1/sessions: conversations of a user with an agent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response, status

from service.api.deps import SessionsDep, StateDep, TenantDep
from service.api.params import Cursor, PageLimit, SessionId
from service.api.routing import resource_router
from service.domain.sessions import NewSession
from service.schemas.common import ClientId, Page
from service.schemas.sessions import Session, SessionCreate, SessionUpdate
from service.storage.records import SessionChanges, SessionQuery

router = resource_router("sessions", "/sessions")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Session, responses={409: {}})
async def create_session(body: SessionCreate, sessions: SessionsDep, tenant: TenantDep) -> Session:
    """Start a session (your own id, or a generated UUID)."""
    new = NewSession(user_id=body.user_id, id=body.id, agent_id=body.agent_id, metadata=body.metadata)
    return Session.model_validate(await sessions.create(tenant, new))


@router.get("", response_model=Page[Session])
async def list_sessions(
    sessions: SessionsDep,
    tenant: TenantDep,
    state: StateDep,
    user_id: Annotated[ClientId | None, Query(description="Only this user's sessions.")] = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> Page[Session]:
    """List sessions, newest first."""
    query = SessionQuery(
        tenant_id=tenant, user_id=user_id, cursor=cursor, limit=min(limit, state.settings.max_page_size)
    )
    page = await sessions.list(query)
    return Page[Session](items=[Session.model_validate(s) for s in page.items], next_cursor=page.next_cursor)


@router.get("/{session_id}", response_model=Session)
async def get_session(session_id: SessionId, sessions: SessionsDep, tenant: TenantDep) -> Session:
    """Read one session."""
    return Session.model_validate(await sessions.get(tenant, session_id))


@router.patch("/{session_id}", response_model=Session)
async def update_session(
    session_id: SessionId, body: SessionUpdate, sessions: SessionsDep, tenant: TenantDep
) -> Session:
    """Change a session's user, agent or metadata."""
    changes = SessionChanges(user_id=body.user_id, agent_id=body.agent_id, metadata=body.metadata)
    return Session.model_validate(await sessions.update(tenant, session_id, changes))


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_session(session_id: SessionId, sessions: SessionsDep, tenant: TenantDep) -> Response:
    """Delete a session with its messages and buffer."""
    await sessions.delete(tenant, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
