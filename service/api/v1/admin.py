"""/v1/admin: tenants, API keys and the state of background work (admin keys only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Response, status

from service.api.deps import KeysDep, StateDep, TenantDep
from service.api.routing import resource_router
from service.domain.auth import Role
from service.domain.upkeep import queue_state, retry_failed
from service.lifespan import State
from service.schemas.admin import ApiKey, ApiKeyCreated, KeyCreate, Tenant, TenantCreate, TenantId
from service.schemas.common import Page
from service.schemas.memories import FailedJob, QueueState

router = resource_router("admin", "/admin", role=Role.admin)

Cursor = Annotated[str | None, Query(max_length=128, description="`next_cursor` of the previous page.")]
Limit = Annotated[int, Query(ge=1, le=1000)]


JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A parked job's id (from the queue's `failures`).")]
OtherTenant = Annotated[TenantId | None, Query(description="Another tenant's jobs (default: your own).")]


async def _queue(state: State, tenant_id: str) -> QueueState:
    q = await queue_state(state.backends.db, tenant_id)
    return QueueState(
        pending=q.pending,
        failed=q.failed,
        oldest_pending_age_seconds=q.oldest_pending_age_seconds,
        failures=[FailedJob.model_validate(f, from_attributes=True) for f in q.failures],
        pending_by_kind=q.pending_by_kind,
        oldest_pending_age_seconds_by_kind={kind: round(age, 3) for kind, age in q.oldest_age_by_kind.items()},
        indexing_lag_seconds=q.indexing_lag_seconds,
    )


@router.get("/queue", response_model=QueueState)
async def get_queue(state: StateDep, tenant: TenantDep, tenant_id: OtherTenant = None) -> QueueState:
    """Jobs waiting for the background workers (indexing, digests, purges), and how old the oldest is."""
    return await _queue(state, tenant_id or tenant)


@router.post("/queue/{job_id}/retry", response_model=QueueState)
async def retry_job(job_id: JobId, state: StateDep, tenant: TenantDep, tenant_id: OtherTenant = None) -> QueueState:
    """Queue a parked (failed) job again with fresh attempts; the queue as it stands then."""
    await retry_failed(state.backends.db, tenant_id or tenant, job_id)
    state.outbox.wake()
    return await _queue(state, tenant_id or tenant)


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=Tenant, responses={409: {}})
async def create_tenant(body: TenantCreate, keys: KeysDep) -> Tenant:
    """Create a tenant: a boundary no other tenant's key can see across."""
    return Tenant.model_validate(await keys.create_tenant(body.id))


@router.get("/tenants", response_model=Page[Tenant])
async def list_tenants(keys: KeysDep, cursor: Cursor = None, limit: Limit = 100) -> Page[Tenant]:
    """List tenants in id order."""
    page = await keys.list_tenants(cursor, limit)
    return Page[Tenant](items=[Tenant.model_validate(t) for t in page.items], next_cursor=page.next_cursor)


@router.post(
    "/keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated,
    responses={404: {"description": "The tenant does not exist"}},
)
async def create_key(body: KeyCreate, keys: KeysDep) -> ApiKeyCreated:
    """Issue an API key for a tenant; its secret is in this answer only."""
    issued = await keys.create_key(body.tenant_id, body.role, body.name)
    return ApiKeyCreated.model_validate({**ApiKey.model_validate(issued.record).model_dump(), "key": issued.secret})


@router.get("/keys", response_model=Page[ApiKey])
async def list_keys(
    keys: KeysDep,
    tenant_id: Annotated[TenantId | None, Query(description="Only this tenant's keys.")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[ApiKey]:
    """List API keys (never their secrets), revoked ones included."""
    page = await keys.list_keys(tenant_id, cursor, limit)
    return Page[ApiKey](items=[ApiKey.model_validate(k) for k in page.items], next_cursor=page.next_cursor)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke_key(key_id: Annotated[str, Path(min_length=1, max_length=36)], keys: KeysDep) -> Response:
    """Revoke a key: every process refuses it from the next request on (revoking twice is fine)."""
    await keys.revoke(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
