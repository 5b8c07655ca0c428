"""The client's retry policy, Idempotency-Key and error mapping, against scripted answers (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from memory_service_client import (
    APIConnectionError,
    AsyncMemoryServiceClient,
    ConflictError,
    InternalServerError,
    MemoryServiceClient,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServiceUnavailableError,
    ValidationError,
)

SESSION: dict[str, object] = {"id": "s1", "user_id": "ann", "agent_id": None, "metadata": {}, "created_at": "2026-01-01T00:00:00Z",
           "updated_at": "2026-01-01T00:00:00Z"}
Reply = httpx.Response | Exception


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "t", "status": status, "detail": f"{code} detail", "code": code,
            "request_id": "req-1"}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json", **headers})


class Script:
    """Answers requests with the replies given, in order, and keeps every request it saw."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def client_for(script: Script, **options: object) -> tuple[MemoryServiceClient, list[float]]:
    client = MemoryServiceClient("http://svc", transport=httpx.MockTransport(script), **options)  # type: ignore[arg-type]
    slept: list[float] = []
    client._transport.sleep = slept.append  # noqa: SLF001 (no real waiting in tests)
    return client, slept


def test_503_is_retried_with_exponential_backoff_then_answers() -> None:
    script = Script(problem(503, "unavailable"), problem(503, "unavailable"), httpx.Response(200, json=SESSION))
    client, slept = client_for(script, retry=RetryPolicy(max_retries=3, backoff=0.5))
    assert client.sessions.get("s1").user_id == "ann"
    assert len(script.requests) == 3
    assert 0.5 <= slept[0] <= 0.625 and 1.0 <= slept[1] <= 1.25, slept


def test_retry_after_in_seconds_is_waited_exactly() -> None:
    script = Script(problem(429, "rate_limited", **{"Retry-After": "3"}), httpx.Response(200, json=SESSION))
    client, slept = client_for(script)
    client.sessions.get("s1")
    assert slept == [3.0]


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    script = Script(problem(503, "unavailable", **{"Retry-After": when}), httpx.Response(200, json=SESSION))
    client, slept = client_for(script)
    client.sessions.get("s1")
    assert 3.0 <= slept[0] <= 5.0, slept


def test_a_retry_after_beyond_the_cap_is_raised_not_waited() -> None:
    script = Script(problem(429, "rate_limited", **{"Retry-After": "120"}))
    client, slept = client_for(script, retry=RetryPolicy(max_retry_after=30))
    with pytest.raises(RateLimitedError) as caught:
        client.sessions.get("s1")
    assert slept == [] and caught.value.retry_after == 120.0 and caught.value.status == 429
    assert caught.value.code == "rate_limited" and caught.value.request_id == "req-1"


def test_exhausted_retries_raise_the_last_problem() -> None:
    script = Script(*(problem(503, "database_unavailable") for _ in range(3)))
    client, slept = client_for(script, max_retries=2)
    with pytest.raises(ServiceUnavailableError) as caught:
        client.sessions.get("s1")
    assert len(script.requests) == 3 and len(slept) == 2
    assert caught.value.problem is not None and caught.value.problem.code == "database_unavailable"


def test_max_retries_zero_sends_once() -> None:
    script = Script(problem(503, "unavailable"))
    client, _ = client_for(script, max_retries=0)
    with pytest.raises(ServiceUnavailableError):
        client.sessions.get("s1")
    assert len(script.requests) == 1


def test_posts_carry_one_idempotency_key_kept_across_retries_and_gets_none() -> None:
    script = Script(problem(503, "unavailable"), httpx.ReadError("reset"), httpx.Response(201, json=SESSION),
                    httpx.Response(200, json=SESSION))
    client, _ = client_for(script)
    client.sessions.create(user_id="ann", id="s1")
    client.sessions.get("s1")
    keys = [r.headers.get("Idempotency-Key") for r in script.requests]
    assert keys[0] and keys[0] == keys[1] == keys[2], keys
    assert keys[3] is None
    assert [json.loads(r.content) for r in script.requests[:3]] == [{"id": "s1", "user_id": "ann"}] * 3
    another = Script(httpx.Response(201, json=SESSION))
    client_for(another)[0].sessions.create(user_id="ann")
    assert another.requests[0].headers["Idempotency-Key"] != keys[0], "a new request gets a new key"


def test_connection_errors_are_retried_only_where_resending_is_safe() -> None:
    # A refused connection never reached the service: any method may be retried.
    refused = Script(httpx.ConnectError("refused"), httpx.Response(200, json=memory_body()))
    client, _ = client_for(refused)
    assert client.memories.update("m1", content="new").id == "m1"
    assert len(refused.requests) == 2
    # A PATCH whose connection broke mid-way may have been applied: not resent.
    broken = Script(httpx.ReadError("reset"), httpx.Response(200, json=memory_body()))
    client, _ = client_for(broken)
    with pytest.raises(APIConnectionError):
        client.memories.update("m1", content="new")
    assert len(broken.requests) == 1
    # GET and DELETE are idempotent; POST is made so by its Idempotency-Key.
    calls: list[tuple[Callable[[MemoryServiceClient], object], httpx.Response]] = [
        (lambda c: c.memories.get("m1"), httpx.Response(200, json=memory_body())),
        (lambda c: c.memories.delete("m1"), httpx.Response(204)),
        (lambda c: c.memories.search(query="q", user_id="ann"), httpx.Response(200, json={"items": []})),
    ]
    for call, answer in calls:
        script = Script(httpx.RemoteProtocolError("eof"), answer)
        client, _ = client_for(script)
        call(client)
        assert len(script.requests) == 2


def test_a_409_for_an_idempotency_key_in_flight_is_retried_a_real_conflict_is_not() -> None:
    script = Script(problem(409, "idempotency_in_progress"), httpx.Response(201, json=SESSION))
    client, slept = client_for(script)
    client.sessions.create(user_id="ann", id="s1")
    assert len(script.requests) == 2 and len(slept) == 1
    taken = Script(problem(409, "conflict"))
    client, _ = client_for(taken)
    with pytest.raises(ConflictError):
        client.sessions.create(user_id="ann", id="s1")
    assert len(taken.requests) == 1


def test_statuses_map_to_typed_errors_carrying_the_problem() -> None:
    for status, code, kind in [(404, "not_found", NotFoundError), (422, "invalid_input", ValidationError),
                               (500, "internal", InternalServerError)]:
        client, _ = client_for(Script(problem(status, code)))
        with pytest.raises(kind) as caught:
            client.sessions.get("s1")
        assert caught.value.status == status and caught.value.problem is not None
        assert caught.value.problem.code == code and caught.value.problem.detail == f"{code} detail"


def test_an_error_body_that_is_no_problem_still_gives_a_problem() -> None:
    client, _ = client_for(Script(httpx.Response(502, text="<html>bad gateway</html>")))
    with pytest.raises(InternalServerError) as caught:
        client.sessions.get("s1")
    assert caught.value.status == 502 and caught.value.problem is not None
    assert caught.value.problem.status == 502 and "bad gateway" in (caught.value.problem.detail or "")


def test_search_sends_sources_and_namespaces_only_when_given() -> None:
    script = Script(httpx.Response(200, json={"items": []}), httpx.Response(200, json={"items": []}))
    client, _ = client_for(script)
    client.memories.search(query="q", user_id="ann")
    client.memories.search(query="q", user_id="ann", sources=["memories", "documents"], namespaces=["kb"])
    first, second = (json.loads(r.content) for r in script.requests)
    assert first == {"query": "q", "user_id": "ann"}
    assert second == {"query": "q", "user_id": "ann", "sources": ["memories", "documents"], "namespaces": ["kb"]}


def test_paths_are_percent_encoded_and_models_keep_unknown_fields() -> None:
    script = Script(httpx.Response(200, json={**SESSION, "id": "a/b c", "shiny_new_field": 7}))
    client, _ = client_for(script)
    session = client.sessions.get("a/b c")
    assert script.requests[0].url.raw_path == b"/v1/sessions/a%2Fb%20c"
    assert session.model_extra == {"shiny_new_field": 7}


def memory_body() -> dict[str, object]:
    return {"id": "m1", "user_id": "ann", "type": "semantic", "content": "new", "version": 2}


async def test_the_async_client_applies_the_same_policy() -> None:
    answers: list[Reply] = [problem(503, "unavailable"), httpx.ConnectError("refused"), httpx.Response(201, json=SESSION)]
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = answers.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    slept: list[float] = []

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    async with AsyncMemoryServiceClient("http://svc", transport=httpx.MockTransport(handler)) as client:
        client._transport.sleep = no_wait  # noqa: SLF001
        session = await client.sessions.create(user_id="ann", id="s1")
    assert session.id == "s1" and len(seen) == 3 and len(slept) == 2
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1


def test_api_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_SERVICE_URL", "http://from-env:9")
    monkeypatch.setenv("MEMORY_API_KEY", "msk_env")
    script = Script(httpx.Response(200, json=SESSION))
    client = MemoryServiceClient(transport=httpx.MockTransport(script))
    client.sessions.get("s1")
    [request] = script.requests
    assert str(request.url).startswith("http://from-env:9/v1/sessions/s1")
    assert request.headers["Authorization"] == "Bearer msk_env"

