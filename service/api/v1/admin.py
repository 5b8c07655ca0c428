"""/v1/admin: the state of background work."""

from __future__ import annotations

from service.api.deps import StateDep, TenantDep
from service.api.routing import resource_router
from service.domain.upkeep import queue_state
from service.schemas.memories import QueueState

router = resource_router("admin", "/admin")


@router.get("/queue", response_model=QueueState)
async def get_queue(state: StateDep, tenant: TenantDep) -> QueueState:
    """Your jobs waiting for the background workers (indexing, purges), and how old the oldest is."""
    q = await queue_state(state.backends.db, tenant)
    return QueueState(pending=q.pending, failed=q.failed, oldest_pending_age_seconds=q.oldest_pending_age_seconds)
