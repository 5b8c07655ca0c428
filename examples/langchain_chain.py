"""A LangChain chain with memory-service as its chat history and its long-term recall.

    make install-dev          # or: pip install 'memory-service-client[langchain]'
    python examples/langchain_chain.py --user ann "I'm allergic to peanuts." "What should I avoid eating?"

Each turn: the ``k`` memories most relevant to the input (``MemoryServiceRetriever``, hybrid search)
go into the system prompt, the session's buffer (``MemoryServiceChatMessageHistory`` under
``RunnableWithMessageHistory``) comes before the input, and the input and the answer are stored in
the session (so the service extracts facts from them and they are recalled in later sessions too).

The model is langchain-core's ``FakeListChatModel`` with canned answers, so the example runs without
an LLM; give ``build_chain`` any chat model (``ChatOpenAI``, ``ChatOllama``...) for real answers.
(langchain-core 1.x marks ``RunnableWithMessageHistory`` deprecated in favour of LangGraph's
persistence and warns once; it still works, and the history class serves any ``BaseChatMessageHistory`` user.)
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.runnables.history import RunnableWithMessageHistory
from memory_service_client import MemoryServiceClient
from memory_service_client.langchain import MemoryServiceChatMessageHistory, MemoryServiceRetriever

SYSTEM = (
    "You are a helpful assistant with a long-term memory of the user.\n"
    "What you remember that may matter now:\n{memories}"
)


def format_memories(documents: list[Document]) -> str:
    lines = [f"- [{d.metadata.get('event_time', '')[:10]}] {d.page_content}" for d in documents]
    return "\n".join(lines) or "- (nothing yet)"


def build_chain(client: MemoryServiceClient, user_id: str, model: BaseChatModel, k: int = 4) -> RunnableWithMessageHistory:
    """input -> recall -> prompt (system + memories, history, input) -> model -> text, kept in the session."""
    retriever = MemoryServiceRetriever(client=client, user_id=user_id, k=k)
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM), MessagesPlaceholder("history"), ("human", "{input}")]
    )
    recall = itemgetter("input") | retriever | RunnableLambda(format_memories)
    chain = RunnablePassthrough.assign(memories=recall) | prompt | model | StrOutputParser()
    return RunnableWithMessageHistory(
        chain,
        lambda session_id: MemoryServiceChatMessageHistory(client=client, session_id=session_id, user_id=user_id),
        input_messages_key="input",
        history_messages_key="history",
    )


def chat(
    chain: RunnableWithMessageHistory,
    session_id: str,
    inputs: Sequence[str],
    callbacks: list[BaseCallbackHandler] | None = None,
) -> list[str]:
    """Run one turn per input in the session; the answers."""
    config: dict[str, Any] = {"configurable": {"session_id": session_id}, "callbacks": callbacks or []}
    return [chain.invoke({"input": text}, config=config) for text in inputs]  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", default=["I'm allergic to peanuts.", "What should I avoid eating?"])
    parser.add_argument("--url", default=os.environ.get("MEMORY_SERVICE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("MEMORY_API_KEY"), help="a client key of the service")
    parser.add_argument("--user", default="me")
    parser.add_argument("--session", default=None, help="a session id (default: a new one)")
    args = parser.parse_args(argv)
    model = FakeListChatModel(responses=["Noted, I'll remember that.", "Going by what I remember: see above."])
    with MemoryServiceClient(args.url, api_key=args.api_key) as client:
        chain = build_chain(client, args.user, model)
        session_id = args.session or f"lc-{uuid.uuid4().hex[:8]}"
        for text, answer in zip(args.inputs, chat(chain, session_id, args.inputs), strict=True):
            print(f"> {text}\n{answer}")
        print(f"(session {session_id}: {len(client.sessions.buffer(session_id).messages)} messages stored)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
