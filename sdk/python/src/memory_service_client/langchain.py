"""LangChain integration (``pip install 'memory-service-client[langchain]'``).

- :class:`MemoryServiceChatMessageHistory`: a ``BaseChatMessageHistory`` on a memory-service session,
  for ``RunnableWithMessageHistory``. ``messages`` is the session's short-term buffer (the newest
  messages the service keeps for prompts, optionally ``last_n`` or ``max_tokens`` of them);
  ``add_messages`` posts them in one request, creating the session on first use; ``clear`` deletes the
  session's messages (and the episodic memories made from them) by deleting the session and
  starting it again under the same id, user, agent and metadata. What the service learned from the
  conversation meanwhile (extracted facts, summaries, saved memories) stays: clearing a chat does
  not make the user's long-term memory forget.
- :class:`MemoryServiceRetriever`: a ``BaseRetriever`` on ``POST /v1/memories/search``; each hit
  becomes a ``Document`` whose metadata has ``id``, ``score``, ``type`` and ``event_time``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from memory_service_client.client import AsyncMemoryServiceClient, MemoryServiceClient
from memory_service_client.errors import ConflictError, NotFoundError
from memory_service_client.models import Buffer, BufferedMessage, SearchHit, Session

__all__ = ["MemoryServiceChatMessageHistory", "MemoryServiceRetriever", "message_from_service", "message_to_service"]

_ROLES = frozenset({"user", "assistant", "system", "tool"})


def _text(content: str | list[Any]) -> str:
    """A message's text: its string content, or the text blocks of a multimodal one."""
    if isinstance(content, str):
        return content
    parts = [p if isinstance(p, str) else p.get("text", "") for p in content if isinstance(p, str | dict)]
    return "".join(p for p in parts if isinstance(p, str))


def _role(message: BaseMessage) -> str:
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, ToolMessage) or message.type == "function":
        return "tool"
    if isinstance(message, ChatMessage) and message.role in _ROLES:
        return message.role
    return "user"


def message_to_service(message: BaseMessage) -> dict[str, Any] | None:
    """The service's message for a LangChain one; None for one with no text (an AI turn that only calls tools)."""
    text = _text(message.content)
    if not text.strip():
        return None
    out: dict[str, Any] = {"role": _role(message), "content": text}
    if message.name:
        out["name"] = message.name
    if isinstance(message, ToolMessage):
        out["metadata"] = {"tool_call_id": message.tool_call_id}
    return out


def message_from_service(message: BufferedMessage) -> BaseMessage:
    """The LangChain message for a stored one; its ``id`` is the service's message id.

    Tool messages come back with the tool's name (or the message id) as ``tool_call_id``: the buffer
    does not keep the call they answered.
    """
    common: dict[str, Any] = {"content": message.content, "id": message.id}
    if message.name:
        common["name"] = message.name
    if message.role == "user":
        return HumanMessage(**common)
    if message.role == "assistant":
        return AIMessage(**common)
    if message.role == "system":
        return SystemMessage(**common)
    if message.role == "tool":
        return ToolMessage(tool_call_id=message.name or message.id, **common)
    return ChatMessage(role=message.role, **common)


class MemoryServiceChatMessageHistory(BaseChatMessageHistory):
    """Chat history kept in a memory-service session (see the module's docstring for what each method means).

    Give ``client`` (blocking), ``async_client`` (asyncio) or both: the async methods (``aget_messages``,
    ``aadd_messages``, ``aclear``) use ``async_client`` when given, else run the blocking ones in a
    thread. ``user_id`` (and ``agent_id``, ``metadata``) are used to create the session when it does
    not exist yet; without ``user_id`` the session must exist.
    """

    def __init__(
        self,
        *,
        session_id: str,
        client: MemoryServiceClient | None = None,
        async_client: AsyncMemoryServiceClient | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        last_n: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if client is None and async_client is None:
            raise ValueError("give client= (a MemoryServiceClient), async_client= or both")
        self.session_id = session_id
        self.client = client
        self.async_client = async_client
        self.user_id = user_id
        self.agent_id = agent_id
        self.metadata = metadata
        self.last_n = last_n
        self.max_tokens = max_tokens

    def _sync(self) -> MemoryServiceClient:
        if self.client is None:
            raise RuntimeError("this history has only an async_client: use the async methods (aget_messages, ...)")
        return self.client

    def _new_session(self, like: Session | None = None) -> dict[str, Any]:
        if like is not None:
            return {"id": like.id, "user_id": like.user_id, "agent_id": like.agent_id, "metadata": like.metadata}
        if self.user_id is None:
            raise NotFoundError(
                f"session {self.session_id!r} does not exist and no user_id was given to create it", status=404
            )
        return {"id": self.session_id, "user_id": self.user_id, "agent_id": self.agent_id, "metadata": self.metadata}

    @staticmethod
    def _messages(buffer: Buffer) -> list[BaseMessage]:
        return [message_from_service(m) for m in buffer.messages]

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's buffer, oldest first ([] when the session does not exist yet)."""
        try:
            buffer = self._sync().sessions.buffer(self.session_id, last_n=self.last_n, max_tokens=self.max_tokens)
        except NotFoundError:
            return []
        return self._messages(buffer)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = [m for m in map(message_to_service, messages) if m is not None]
        if not batch:
            return
        client = self._sync()
        try:
            client.sessions.add_messages(self.session_id, batch)
        except NotFoundError:
            try:
                client.sessions.create(**self._new_session())
            except ConflictError:
                pass  # created meanwhile
            client.sessions.add_messages(self.session_id, batch)

    def clear(self) -> None:
        client = self._sync()
        try:
            session = client.sessions.get(self.session_id)
        except NotFoundError:
            return
        client.sessions.delete(self.session_id)
        client.sessions.create(**self._new_session(session))

    async def aget_messages(self) -> list[BaseMessage]:
        if self.async_client is None:
            return await super().aget_messages()
        try:
            buffer = await self.async_client.sessions.buffer(
                self.session_id, last_n=self.last_n, max_tokens=self.max_tokens
            )
        except NotFoundError:
            return []
        return self._messages(buffer)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if self.async_client is None:
            return await super().aadd_messages(messages)
        batch = [m for m in map(message_to_service, messages) if m is not None]
        if not batch:
            return None
        sessions = self.async_client.sessions
        try:
            await sessions.add_messages(self.session_id, batch)
        except NotFoundError:
            try:
                await sessions.create(**self._new_session())
            except ConflictError:
                pass
            await sessions.add_messages(self.session_id, batch)
        return None

    async def aclear(self) -> None:
        if self.async_client is None:
            return await super().aclear()
        sessions = self.async_client.sessions
        try:
            session = await sessions.get(self.session_id)
        except NotFoundError:
            return None
        await sessions.delete(self.session_id)
        await sessions.create(**self._new_session(session))
        return None


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def document_from_hit(hit: SearchHit) -> Document:
    """A search hit as a ``Document``: a memory's content, or a document chunk's text.

    Every hit's metadata has ``id``, ``score``, ``type``, ``event_time`` and ``source`` (``memory`` or
    ``document``). Memory hits: ``type`` is the memory's type, ``event_time`` ISO-8601, and
    ``session_id``, ``speaker``, ``topic`` when set. Document hits (on services that search knowledge
    documents): ``type`` is ``document``, ``id`` the chunk's id, and ``document_id``, ``title``,
    ``chunk_index``, ``heading`` as the service gives them.
    """
    memory = hit.memory
    if memory is not None:
        metadata = {
            "id": memory.id,
            "score": hit.score,
            "type": memory.type,
            "event_time": memory.event_time.isoformat() if memory.event_time else None,
            "source": hit.source,
        } | _drop_none({"session_id": memory.session_id, "speaker": memory.speaker, "topic": memory.topic})
        return Document(page_content=memory.content, metadata=metadata, id=memory.id)
    fields = dict(hit.model_extra or {})
    ident = fields.get("chunk_id") or fields.get("id") or fields.get("document_id")
    metadata = {"id": ident, "score": hit.score, "type": "document", "event_time": fields.get("event_time"),
                "source": hit.source}
    metadata |= _drop_none({k: fields.get(k) for k in ("document_id", "title", "chunk_index", "heading")})
    text = fields.get("content")
    return Document(page_content=text if isinstance(text, str) else "", metadata=metadata,
                    id=str(ident) if ident is not None else None)


class MemoryServiceRetriever(BaseRetriever):
    """The ``k`` best memories of ``user_id`` for a query, as Documents (hybrid recall by default).

    ``sources`` (``["memories", "documents"]``) is passed to the search only when given (services
    without knowledge documents search memories only);
    ``search_kwargs`` passes any other search field (``types``, ``mode``, ``session_id``, ``min_score``...).
    The async path uses ``async_client`` when given, else runs the blocking search in a thread.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: MemoryServiceClient | None = None
    async_client: AsyncMemoryServiceClient | None = None
    user_id: str
    k: int = 4
    sources: list[str] | None = None
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _a_client(self) -> MemoryServiceRetriever:
        if self.client is None and self.async_client is None:
            raise ValueError("give client= (a MemoryServiceClient), async_client= or both")
        return self

    def _search(self, query: str) -> dict[str, Any]:
        return {"query": query, "user_id": self.user_id, "limit": self.k, "sources": self.sources, **self.search_kwargs}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.client is None:
            raise RuntimeError("this retriever has only an async_client: use ainvoke")
        return [document_from_hit(h) for h in self.client.memories.search(**self._search(query))]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.async_client is None:
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        return [document_from_hit(h) for h in await self.async_client.memories.search(**self._search(query))]
