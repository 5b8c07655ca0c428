"""Annotated dependency aliases: handlers reach services only through these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.domain.auth import KeyService, Principal
from service.domain.condense import Condenser
from service.domain.context import ContextService
from service.domain.documents import DocumentService
from service.domain.erasure import UserEraser
from service.domain.export import Exporter
from service.domain.memories import MemoryService
from service.domain.messages import MessageService
from service.domain.profiles import ProfileService
from service.domain.restore import Importer
from service.domain.search import SearchService
from service.domain.sessions import SessionService
from service.domain.summaries import RollingSummaries
from service.domain.tools import ToolRunner
from service.domain.users import UserService
from service.lifespan import State


def get_state(request: Request) -> State:
    state: State = request.app.state.memory
    return state


StateDep = Annotated[State, Depends(get_state)]


def get_principal(request: Request) -> Principal:
    """The caller, as the route guard authenticated it (``service.api.guard``)."""
    principal: Principal = request.state.principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_tenant(principal: PrincipalDep) -> str:
    """The caller's tenant: every read and write of the request is scoped to it."""
    return principal.tenant_id


def get_keys(state: StateDep) -> KeyService:
    return state.keys


def get_eraser(state: StateDep) -> UserEraser:
    return state.eraser


def get_exporter(state: StateDep) -> Exporter:
    return state.exporter


def get_importer(state: StateDep) -> Importer:
    return state.importer


def get_sessions(state: StateDep) -> SessionService:
    return state.sessions


def get_messages(state: StateDep) -> MessageService:
    return state.messages


def get_memories(state: StateDep) -> MemoryService:
    return state.memories


def get_search(state: StateDep) -> SearchService:
    return state.search


def get_context(state: StateDep) -> ContextService:
    return state.context


def get_summaries(state: StateDep) -> RollingSummaries:
    return state.summaries


def get_condenser(state: StateDep) -> Condenser:
    return state.condenser


def get_tools(state: StateDep) -> ToolRunner:
    return state.tools


def get_users(state: StateDep) -> UserService:
    return state.users


def get_profiles(state: StateDep) -> ProfileService:
    return state.profiles


def get_documents(state: StateDep) -> DocumentService:
    return state.documents


TenantDep = Annotated[str, Depends(get_tenant)]
KeysDep = Annotated[KeyService, Depends(get_keys)]
ErasureDep = Annotated[UserEraser, Depends(get_eraser)]
ExporterDep = Annotated[Exporter, Depends(get_exporter)]
ImporterDep = Annotated[Importer, Depends(get_importer)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
MessagesDep = Annotated[MessageService, Depends(get_messages)]
MemoriesDep = Annotated[MemoryService, Depends(get_memories)]
SearchDep = Annotated[SearchService, Depends(get_search)]
ContextDep = Annotated[ContextService, Depends(get_context)]
SummariesDep = Annotated[RollingSummaries, Depends(get_summaries)]
CondenserDep = Annotated[Condenser, Depends(get_condenser)]
ToolsDep = Annotated[ToolRunner, Depends(get_tools)]
UsersDep = Annotated[UserService, Depends(get_users)]
ProfilesDep = Annotated[ProfileService, Depends(get_profiles)]
DocumentsDep = Annotated[DocumentService, Depends(get_documents)]
