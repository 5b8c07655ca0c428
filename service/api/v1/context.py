"""/v1/sessions/{session_id}/context, /summary and /condense: the main context of a session."""

from __future__ import annotations

from fastapi import status

from service.api.deps import CondenserDep, ContextDep, SummariesDep, TenantDep
from service.api.routing import resource_router
from service.api.params import SessionId
from service.domain.context import ContextRequest as Request
from service.domain.packing import Packed
from service.schemas.context import Context, ContextItem, ContextRequest, ContextSection, CondenseResult, SessionSummary
from service.schemas.memories import Memory

router = resource_router("context", "/sessions/{session_id}")


def context_model(packed: Packed) -> Context:
    return Context(
        prompt=packed.prompt,
        tokens=packed.tokens,
        max_tokens=packed.max_tokens,
        sections=[
            ContextSection(
                name=s.name,
                text=s.text,
                tokens=s.tokens,
                items=[
                    ContextItem(id=i.id, kind=i.kind, tokens=n, score=i.score)
                    for i, n in zip(s.items, s.item_tokens, strict=True)
                ],
            )
            for s in packed.sections
        ],
    )


@router.post("/context", response_model=Context, status_code=status.HTTP_200_OK)
async def build_context(
    session_id: SessionId, body: ContextRequest, context: ContextDep, tenant: TenantDep
) -> Context:
    """The most useful memory for this session that fits ``max_tokens``, as one prompt-ready text."""
    request = Request(
        tenant_id=tenant,
        session_id=session_id,
        max_tokens=body.max_tokens,
        query=body.query,
        types=tuple(body.types) if body.types else None,
        namespaces=tuple(body.namespaces),
    )
    return context_model(await context.build(request))


@router.get("/summary", response_model=SessionSummary)
async def get_summary(session_id: SessionId, summaries: SummariesDep, tenant: TenantDep) -> SessionSummary:
    """The session's rolling summary of the messages that have left its buffer."""
    digest = await summaries.get(tenant, session_id)
    until = digest.summarized.until
    return SessionSummary(
        text=digest.summary,
        tokens=digest.summary_tokens,
        message_count=digest.summarized.count,
        covers_until=until.at if until else None,
        updated_at=digest.summary_at,
    )


@router.post("/condense", response_model=CondenseResult)
async def condense_session(session_id: SessionId, condenser: CondenserDep, tenant: TenantDep) -> CondenseResult:
    """Condense the messages not condensed yet into summary memories now."""
    made = await condenser.pending(tenant, session_id)
    return CondenseResult(items=[Memory.model_validate(m) for m in made])
