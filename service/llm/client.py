"""A small client for an OpenAI-compatible ``/chat/completions`` endpoint.

One call, no retries: every failure is one typed ``LlmError`` and the caller falls back to the
no-LLM path. Each call is counted once in ``memory_llm_calls_total`` with its outcome (ok, error,
timeout, invalid), and the tokens the endpoint reports are counted whatever the outcome.
Error messages never quote the prompt or the reply (logs must not hold message contents).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

import httpx
from pydantic import ValidationError

from service.observability.metrics import Metrics

__all__ = ["ChatClient", "LlmError", "parse_json_object"]

T = TypeVar("T")
Kind = Literal["timeout", "error", "invalid"]
Message = dict[str, Any]

# A reply wrapped in a Markdown code fence, as chat models like to write JSON.
_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL | re.IGNORECASE)


class LlmError(Exception):
    """An LLM call that gave nothing usable; ``kind`` is timeout | error | invalid."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind: Kind = kind


class ChatClient:
    """Chat completions over an ``httpx.AsyncClient`` that the caller owns (the app's lifespan).

    ``timeout`` bounds a whole call (connecting, sending, waiting, reading), in seconds.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        model: str,
        metrics: Metrics,
        api_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http = http
        self._url = _endpoint(base_url)
        self._model = model
        self._metrics = metrics
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    @classmethod
    def open(cls, base_url: str, api_key: str | None, model: str, timeout: float, metrics: Metrics) -> ChatClient:
        """A client with its own ``httpx.AsyncClient``; ``close()`` it when done."""
        http = httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        return cls(http, base_url=base_url, model=model, metrics=metrics, api_key=api_key, timeout=timeout)

    async def close(self) -> None:
        """Close the underlying ``httpx.AsyncClient`` (the lifespan calls this once, at shutdown)."""
        await self._http.aclose()

    async def complete(
        self, messages: list[Message], *, json_object: bool = False, max_tokens: int | None = None
    ) -> str:
        """The first choice's message content."""
        return await self._exchange(self._body(messages, json_object, max_tokens), _identity)

    @overload
    async def complete_json(
        self, messages: list[Message], *, max_tokens: int | None = None
    ) -> dict[str, Any]: ...

    @overload
    async def complete_json(
        self, messages: list[Message], *, max_tokens: int | None = None, parse: Callable[[dict[str, Any]], T]
    ) -> T: ...

    async def complete_json(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        parse: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        """The reply as a JSON object, passed through ``parse`` when given.

        ``parse`` checks the object's shape and raises ``ValueError`` (a pydantic
        ``ValidationError`` is one) when it is wrong: the call then counts as, and raises,
        ``LlmError("invalid")``, so a reply is counted once, as ok or as invalid.
        """

        def read(content: str) -> Any:
            found = parse_json_object(content)
            return _checked(parse, found) if parse is not None else found

        return await self._exchange(self._body(messages, True, max_tokens), read)

    def _body(self, messages: list[Message], json_object: bool, max_tokens: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._model, "messages": messages}
        if json_object:
            body["response_format"] = {"type": "json_object"}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body

    async def _exchange(self, body: dict[str, Any], read: Callable[[str], T]) -> T:
        """POST ``body``, ``read`` the content, and count the call once with its outcome."""
        usage = (0, 0)
        try:
            reply = await self._post(body)
            usage = _usage(reply)
            result = read(_content(reply))
        except LlmError as exc:
            self._metrics.observe_llm_call(exc.kind, *usage)
            raise
        self._metrics.observe_llm_call("ok", *usage)
        return result

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """The decoded response body of a 2xx answer; ``LlmError`` for anything else."""
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.post(self._url, json=body, headers=self._headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LlmError("timeout", f"no answer within {self._timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise LlmError("error", f"request failed: {type(exc).__name__}") from exc
        if not response.is_success:
            raise LlmError("error", f"endpoint answered HTTP {response.status_code}")
        return _decoded(response)


def parse_json_object(content: str) -> dict[str, Any]:
    """``content`` as a JSON object, read from inside a ```json fence when there is one."""
    fenced = _FENCE.search(content)
    text = fenced.group(1) if fenced else content
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise LlmError("invalid", "reply is not JSON") from exc
    if not isinstance(found, dict):
        raise LlmError("invalid", f"reply is a JSON {type(found).__name__}, not an object")
    return found


def _endpoint(base_url: str) -> httpx.URL:
    url = httpx.URL(base_url.rstrip("/") + "/chat/completions")
    if url.scheme not in ("http", "https"):
        raise ValueError(f"LLM base URL must be http or https, not {url.scheme!r}")
    return url


def _decoded(response: httpx.Response) -> dict[str, Any]:
    try:
        reply = response.json()
    except ValueError as exc:
        raise LlmError("invalid", "response body is not JSON") from exc
    if not isinstance(reply, dict):
        raise LlmError("invalid", "response body is not a JSON object")
    return reply


def _content(reply: dict[str, Any]) -> str:
    """``choices[0].message.content`` of a chat completion."""
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LlmError("invalid", "response has no choices[0].message.content") from exc
    if not isinstance(content, str):
        raise LlmError("invalid", "response content is not a string")
    return content


def _usage(reply: dict[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens as the endpoint reports them; 0 for what it leaves out."""
    usage = reply.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _checked(parse: Callable[[dict[str, Any]], T], found: dict[str, Any]) -> T:
    try:
        return parse(found)
    except ValidationError as exc:
        raise LlmError("invalid", f"reply has the wrong shape: {_where(exc)}") from exc
    except ValueError as exc:
        raise LlmError("invalid", f"reply rejected: {exc}") from exc


def _where(exc: ValidationError) -> str:
    """Where and why validation failed, without the offending values (they are model output)."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or '<root>'}: {error['type']}" for error in exc.errors(include_input=False)
    )


def _identity(content: str) -> str:
    return content
