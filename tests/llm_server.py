"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

    with FakeLlm() as llm:
        llm.reply('{"summary": "..."}')   # the next answer's message content
        llm.fail(500)                     # then an HTTP error
        llm.delay(1.0)                    # the next answer waits a second first
        ... ChatClient.open(llm.url, ...) ...
        llm.requests                      # the JSON bodies received, in order

When the script is empty it answers ``default`` (a content string). It runs in a background
thread, answers each request in its own daemon thread, and stops on exit; a delay is capped at
``MAX_DELAY`` seconds and is cut short when the server stops.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["FakeLlm"]

MAX_DELAY = 5.0
PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    delay: float = 0.0


class FakeLlm:
    """The server; use it as a context manager (or call ``start`` and ``stop``)."""

    def __init__(self, default: str = "{}", *, prompt_tokens: int = 11, completion_tokens: int = 7) -> None:
        self.default = default
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._script: deque[_Answer] = deque()
        self._next_delay = 0.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-llm", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL a client is configured with: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # --- scripting --------------------------------------------------------------------------
    def reply(self, content: str, *, usage: dict[str, int] | None = None) -> None:
        """Queue a completion whose message content is ``content`` (JSON or not)."""
        self._queue(200, _completion(content, usage or self._usage()))

    def fail(self, status: int, message: str = "scripted failure") -> None:
        """Queue an HTTP error answer."""
        self._queue(status, json.dumps({"error": {"message": message, "type": "server_error"}}).encode())

    def raw(self, body: str, status: int = 200) -> None:
        """Queue a response body sent as is (a malformed completion, say)."""
        self._queue(status, body.encode())

    def delay(self, seconds: float) -> None:
        """Make the next answer wait ``seconds`` (at most ``MAX_DELAY``) before it is sent."""
        with self._lock:
            self._next_delay = min(seconds, MAX_DELAY)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeLlm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=MAX_DELAY)

    def __enter__(self) -> FakeLlm:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- serving (called from the request threads) --------------------------------------------
    def _queue(self, status: int, body: bytes) -> None:
        with self._lock:
            self._script.append(_Answer(status, body))

    def _usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

    def _answer(self, request: dict[str, Any], headers: dict[str, str]) -> _Answer:
        """Record the request and take the next scripted answer (or the default one)."""
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
            answer = self._script.popleft() if self._script else _Answer(200, _completion(self.default, self._usage()))
            delay, self._next_delay = self._next_delay, 0.0
        return _Answer(answer.status, answer.body, delay)

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _completion(content: str, usage: dict[str, int]) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {**usage, "total_tokens": sum(usage.values())},
        }
    ).encode()


def _handler_for(llm: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != PATH:
                self._send(_Answer(404, b'{"error": {"message": "not found"}}'))
                return
            answer = llm._answer(json.loads(body or b"{}"), {k.lower(): v for k, v in self.headers.items()})
            llm._wait(answer.delay)
            self._send(answer)

        def _send(self, answer: _Answer) -> None:
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    return Handler
