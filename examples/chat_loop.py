"""A chat loop for any OpenAI-compatible model, with memory-service as its memory.

Each turn: store the user's message, fetch the session's context within a token budget, give the
model that context and the memory tools (``GET /v1/tools``), run the tool calls it makes through
``POST /v1/sessions/{id}/tools/{name}`` until it answers, then store its answer.

    python examples/chat_loop.py --llm-url http://127.0.0.1:11434/v1 --model llama3.1 --user ann

Only httpx is needed. Type an empty line or EOF to stop.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

SYSTEM = (
    "You are a helpful assistant with a long-term memory. What you remember about the user is below; "
    "use the memory tools to look up more, to save what the user tells you about themselves, and to "
    "correct or forget memories when asked.\n\n{context}"
)
#: Tool rounds per turn before the loop gives up waiting for a plain answer.
MAX_TOOL_ROUNDS = 5


@dataclass(slots=True)
class ChatLoop:
    service: httpx.Client  # base_url: the memory service
    llm: httpx.Client  # base_url: the model's OpenAI-compatible /v1
    model: str
    session_id: str
    context_tokens: int = 1500

    def start(self, user_id: str) -> None:
        """Create the session (an existing one with the same id is reused)."""
        response = self.service.post("/v1/sessions", json={"id": self.session_id, "user_id": user_id})
        if response.status_code not in (201, 409):
            response.raise_for_status()

    def _store(self, role: str, content: str) -> None:
        self.service.post(
            f"/v1/sessions/{self.session_id}/messages", json={"messages": [{"role": role, "content": content}]}
        ).raise_for_status()

    def _context(self) -> str:
        response = self.service.post(f"/v1/sessions/{self.session_id}/context", json={"max_tokens": self.context_tokens})
        response.raise_for_status()
        prompt: str = response.json()["prompt"]
        return prompt

    def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        response = self.llm.post("/chat/completions", json={"model": self.model, "messages": messages, "tools": tools})
        response.raise_for_status()
        message: dict[str, Any] = response.json()["choices"][0]["message"]
        return message

    def _run_tool(self, call: dict[str, Any]) -> str:
        function = call["function"]
        response = self.service.post(
            f"/v1/sessions/{self.session_id}/tools/{function['name']}",
            json={"arguments": function.get("arguments") or "{}"},
        )
        if response.status_code != 200:  # a problem: let the model read it and try again
            return f"error: {response.json().get('detail', response.text)}"
        content: str = response.json()["content"]
        return content

    def turn(self, text: str) -> str:
        """One user turn through to the model's answer (both stored in the session)."""
        self._store("user", text)
        tools = self.service.get("/v1/tools").json()
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM.format(context=self._context())}]
        messages.append({"role": "user", "content": text})
        for _ in range(MAX_TOOL_ROUNDS):
            reply = self._complete(messages, tools)
            calls = reply.get("tool_calls") or []
            if not calls:
                answer = reply.get("content") or ""
                self._store("assistant", answer)
                return answer
            messages.append({"role": "assistant", "content": reply.get("content"), "tool_calls": calls})
            messages += [{"role": "tool", "tool_call_id": c["id"], "content": self._run_tool(c)} for c in calls]
        raise RuntimeError(f"no answer after {MAX_TOOL_ROUNDS} rounds of tool calls")


def lines(stream: Iterable[str]) -> Iterable[str]:
    for line in stream:
        if not line.strip():
            return
        yield line.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service-url", default=os.environ.get("MEMORY_SERVICE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--llm-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"))
    parser.add_argument("--model", default=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument(
        "--memory-key", default=os.environ.get("MEMORY_API_KEY"), help="the memory service's API key (client role)"
    )
    parser.add_argument("--user", default="me")
    parser.add_argument("--session", default=None, help="a session id (default: a new one)")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    memory_headers = {"Authorization": f"Bearer {args.memory_key}"} if args.memory_key else {}
    with httpx.Client(base_url=args.service_url, headers=memory_headers, timeout=30) as service, httpx.Client(
        base_url=args.llm_url, headers=headers, timeout=120
    ) as llm:
        loop = ChatLoop(service, llm, args.model, args.session or f"chat-{uuid.uuid4().hex[:8]}")
        loop.start(args.user)
        print(f"session {loop.session_id}; an empty line ends the chat", file=sys.stderr)
        for text in lines(sys.stdin):
            print(loop.turn(text), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

