"""Annotated dependency aliases: handlers reach services only through these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.domain.memories import MemoryService
from service.domain.messages import MessageService
from service.domain.search import SearchService
from service.domain.sessions import SessionService
from service.lifespan import State


def get_state(request: Request) -> State:
    state: State = request.app.state.memory
    return state


StateDep = Annotated[State, Depends(get_state)]


def get_tenant(state: StateDep) -> str:
    """The caller's tenant (one default tenant until API keys map callers to tenants)."""
    return state.settings.default_tenant


def get_sessions(state: StateDep) -> SessionService:
    return state.sessions


def get_messages(state: StateDep) -> MessageService:
    return state.messages


def get_memories(state: StateDep) -> MemoryService:
    return state.memories


def get_search(state: StateDep) -> SearchService:
    return state.search


TenantDep = Annotated[str, Depends(get_tenant)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
MessagesDep = Annotated[MessageService, Depends(get_messages)]
MemoriesDep = Annotated[MemoryService, Depends(get_memories)]
SearchDep = Annotated[SearchService, Depends(get_search)]
