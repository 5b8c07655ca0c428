"""ChatClient and the LLM adapters against a scripted OpenAI-compatible server (tests/llm_server.py).

The fallbacks are small deterministic fakes: what is checked here is when the LLM's answer is
used, when the fallback's is, and how each call is counted in the metrics.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.digest.model import Digest, Fact, FactDecision, KnownMemory, Turn
from service.llm.adapters import LlmFactExtractor, LlmSummarizer
from service.llm.client import ChatClient, LlmError, parse_json_object
from service.observability.metrics import Metrics
from tests.llm_server import FakeLlm

TIMEOUT = 0.3
AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
TURNS = [
    Turn(id="m1", role="user", speaker="Ada", content="I moved to Zurich last month.", at=AT),
    Turn(id="m2", role="assistant", speaker="assistant", content="How do you like it?", at=AT),
    Turn(id="m3", role="user", speaker="Ada", content="I love it, but I am allergic to cats.", at=AT),
]
NEW_FACT = Fact(subject="user", predicate="lives_in", object="Zurich", content="User lives in Zurich.", source_id="m1")
SIMILAR = [
    KnownMemory(id="mem-aaa", content="User lives in Berlin.", subject="user", predicate="lives_in", object="Berlin"),
    KnownMemory(id="mem-bbb", content="User likes hiking."),
]

FALLBACK_SUMMARY = "fallback summary"
FALLBACK_DIGEST = Digest(text="fallback digest", topic="fallback", keywords=["fallback"], importance=0.5)
FALLBACK_FACT = Fact(subject="user", predicate="likes", object="tea", content="User likes tea.", source_id="m1")
HI = [{"role": "user", "content": "hi"}]


# --- fakes of the no-LLM path ---------------------------------------------------------------------
@dataclass
class FakeSummarizer:
    calls: list[str] = field(default_factory=list)

    async def fold(self, previous: str, turns: Sequence[Turn], max_tokens: int) -> str:
        self.calls.append("fold")
        return FALLBACK_SUMMARY

    async def condense(self, turns: Sequence[Turn], max_tokens: int) -> Digest:
        self.calls.append("condense")
        return FALLBACK_DIGEST


@dataclass
class FakeExtractor:
    calls: list[str] = field(default_factory=list)

    async def extract(self, turns: Sequence[Turn]) -> list[Fact]:
        self.calls.append("extract")
        return [FALLBACK_FACT]

    async def decide(self, fact: Fact, similar: Sequence[KnownMemory]) -> FactDecision:
        self.calls.append("decide")
        return FactDecision(op="add", fact=fact)


class WordCounter:
    """A deterministic ``TokenCounter``: one token per whitespace-separated word."""

    def count(self, text: str) -> int:
        return len(text.split())


# --- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    with FakeLlm() as server:
        yield server


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One HTTP client for the module, as the app's lifespan would own it (building one costs ~0.1 s)."""
    async with httpx.AsyncClient() as shared:
        yield shared


@pytest.fixture
def client(http: httpx.AsyncClient, llm: FakeLlm, metrics: Metrics) -> ChatClient:
    return ChatClient(http, base_url=llm.url, model="test-model", metrics=metrics, timeout=TIMEOUT)


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A base URL on a port that is bound but not listening: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture
def refused_client(http: httpx.AsyncClient, refused_url: str, metrics: Metrics) -> ChatClient:
    return ChatClient(http, base_url=refused_url, model="test-model", metrics=metrics, timeout=TIMEOUT)


@pytest.fixture
def summarizer_fallback() -> FakeSummarizer:
    return FakeSummarizer()


@pytest.fixture
def extractor_fallback() -> FakeExtractor:
    return FakeExtractor()


@pytest.fixture
def summarizer(client: ChatClient, summarizer_fallback: FakeSummarizer) -> LlmSummarizer:
    return LlmSummarizer(client, summarizer_fallback, WordCounter())


@pytest.fixture
def extractor(client: ChatClient, extractor_fallback: FakeExtractor) -> LlmFactExtractor:
    return LlmFactExtractor(client, extractor_fallback)


# --- helpers ----------------------------------------------------------------------------------------
def calls(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("memory_llm_calls_total", {"outcome": outcome}) or 0.0


def tokens(metrics: Metrics, direction: str) -> float:
    return metrics.registry.get_sample_value("memory_llm_tokens_total", {"direction": direction}) or 0.0


def errors(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("memory_llm_errors_total") or 0.0


def counted(metrics: Metrics) -> dict[str, float]:
    """Calls by outcome, only the outcomes seen."""
    found = {outcome: calls(metrics, outcome) for outcome in ("ok", "error", "timeout", "invalid")}
    return {outcome: n for outcome, n in found.items() if n}


def user_prompt(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


async def failure(call: Awaitable[object], metrics: Metrics) -> tuple[str, dict[str, float]]:
    """The kind of the ``LlmError`` that ``call`` raises, and the calls counted by outcome."""
    with pytest.raises(LlmError) as raised:
        await call
    return raised.value.kind, counted(metrics)


async def wait_for(condition: Callable[[], bool], limit: float = 2.0) -> None:
    """Await ``condition`` with a bounded poll."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# --- ChatClient ---------------------------------------------------------------------------------------
class TestChatClient:
    async def test_returns_the_content_and_counts_the_usage(
        self, llm: FakeLlm, client: ChatClient, metrics: Metrics
    ) -> None:
        llm.reply("hello there", usage={"prompt_tokens": 21, "completion_tokens": 3})

        assert await client.complete(HI) == "hello there"

        assert llm.requests == [{"model": "test-model", "messages": HI}]
        assert counted(metrics) == {"ok": 1}
        assert (tokens(metrics, "input"), tokens(metrics, "output")) == (21, 3)
        assert errors(metrics) == 0

    async def test_json_object_and_max_tokens_are_sent(self, llm: FakeLlm, client: ChatClient) -> None:
        llm.reply("{}")
        await client.complete(HI, json_object=True, max_tokens=50)
        assert llm.requests[0]["response_format"] == {"type": "json_object"}
        assert llm.requests[0]["max_tokens"] == 50

    async def test_complete_json_reads_a_fenced_block(self, llm: FakeLlm, client: ChatClient) -> None:
        llm.reply('Here you are:\n```json\n{"summary": "ok", "n": [1, 2]}\n```\n')
        assert await client.complete_json(HI) == {"summary": "ok", "n": [1, 2]}
        assert llm.requests[0]["response_format"] == {"type": "json_object"}

    def test_parse_json_object_takes_plain_json(self) -> None:
        assert parse_json_object(' {"op": "none"} ') == {"op": "none"}

    async def test_bearer_token_is_sent_when_a_key_is_set(self, llm: FakeLlm, metrics: Metrics) -> None:
        chat = ChatClient.open(llm.url, "sk-test-123", "test-model", TIMEOUT, metrics)
        try:
            await chat.complete(HI)
        finally:
            await chat.close()
        assert llm.headers[0]["authorization"] == "Bearer sk-test-123"

    async def test_no_authorization_header_without_a_key(self, llm: FakeLlm, client: ChatClient) -> None:
        await client.complete(HI)
        assert "authorization" not in llm.headers[0]

    async def test_http_error_is_an_error(self, llm: FakeLlm, client: ChatClient, metrics: Metrics) -> None:
        llm.fail(500)
        assert await failure(client.complete(HI), metrics) == ("error", {"error": 1})
        assert errors(metrics) == 1

    async def test_slow_answer_is_a_timeout(self, llm: FakeLlm, client: ChatClient, metrics: Metrics) -> None:
        llm.delay(2.0)
        llm.reply("too late")
        started = time.perf_counter()
        assert await failure(client.complete(HI), metrics) == ("timeout", {"timeout": 1})
        assert time.perf_counter() - started < 1.5

    async def test_connection_refused_is_an_error(self, refused_client: ChatClient, metrics: Metrics) -> None:
        assert await failure(refused_client.complete(HI), metrics) == ("error", {"error": 1})

    @pytest.mark.parametrize(
        "body",
        [
            "not json at all",
            "[1, 2]",
            '{"choices": []}',
            '{"choices": [{"message": {}}]}',
            '{"choices": [{"message": {"content": null}}]}',
        ],
    )
    async def test_malformed_body_is_invalid(
        self, llm: FakeLlm, client: ChatClient, metrics: Metrics, body: str
    ) -> None:
        llm.raw(body)
        assert await failure(client.complete(HI), metrics) == ("invalid", {"invalid": 1})

    @pytest.mark.parametrize("content", ["no json here", "[1, 2]", '"a string"', '```json\n{"a": \n```'])
    async def test_content_that_is_no_json_object_is_invalid_and_counted_once(
        self, llm: FakeLlm, client: ChatClient, metrics: Metrics, content: str
    ) -> None:
        llm.reply(content)
        assert await failure(client.complete_json(HI), metrics) == ("invalid", {"invalid": 1})
        assert tokens(metrics, "input") == 11  # the tokens were spent all the same

    async def test_a_parse_that_rejects_makes_the_call_invalid(
        self, llm: FakeLlm, client: ChatClient, metrics: Metrics
    ) -> None:
        def parse(found: dict[str, Any]) -> int:
            raise ValueError("no good")

        llm.reply('{"a": 1}')
        with pytest.raises(LlmError, match="^reply rejected: no good$"):
            await client.complete_json(HI, parse=parse)
        assert counted(metrics) == {"invalid": 1}

    def test_base_url_must_be_http(self, metrics: Metrics) -> None:
        with pytest.raises(ValueError, match="http or https"):
            ChatClient.open("ftp://example.org/v1", None, "m", TIMEOUT, metrics)


# --- LlmSummarizer: good answers --------------------------------------------------------------------------
class TestLlmSummarizer:
    async def test_fold_uses_the_llm_summary(
        self, llm: FakeLlm, summarizer: LlmSummarizer, summarizer_fallback: FakeSummarizer, metrics: Metrics
    ) -> None:
        llm.reply(json.dumps({"summary": "  Ada moved to Zurich and is allergic to cats.  "}))

        summary = await summarizer.fold("Ada is a user.", TURNS, max_tokens=20)

        assert summary == "Ada moved to Zurich and is allergic to cats."
        assert summarizer_fallback.calls == []
        assert counted(metrics) == {"ok": 1}
        prompt = user_prompt(llm.requests[0])
        assert "Ada is a user." in prompt and "I moved to Zurich last month." in prompt
        assert "m1" not in prompt  # ids are for extraction only

    async def test_a_summary_of_exactly_the_budget_is_used(self, llm: FakeLlm, summarizer: LlmSummarizer) -> None:
        llm.reply(json.dumps({"summary": " ".join(["word"] * 20)}))
        assert await summarizer.fold("", TURNS, max_tokens=20) == " ".join(["word"] * 20)

    async def test_condense_uses_the_llm_digest(
        self, llm: FakeLlm, summarizer: LlmSummarizer, summarizer_fallback: FakeSummarizer
    ) -> None:
        reply = {
            "summary": "Ada moved to Zurich; she is allergic to cats.",
            "topic": "move to Zurich",
            "keywords": ["Zurich", " zurich ", "cats", ""],
            "importance": 1.7,
        }
        llm.reply(json.dumps(reply))

        digest = await summarizer.condense(TURNS, max_tokens=20)

        assert digest == Digest(
            text="Ada moved to Zurich; she is allergic to cats.",
            topic="move to Zurich",
            keywords=["Zurich", "cats"],
            importance=1.0,
        )
        assert summarizer_fallback.calls == []

    async def test_negative_importance_is_clamped_to_zero(self, llm: FakeLlm, summarizer: LlmSummarizer) -> None:
        llm.reply(json.dumps({"summary": "s", "topic": "t", "keywords": [], "importance": -3}))
        assert (await summarizer.condense(TURNS, max_tokens=20)).importance == 0.0

    async def test_no_turns_need_no_llm(
        self, llm: FakeLlm, summarizer: LlmSummarizer, summarizer_fallback: FakeSummarizer
    ) -> None:
        assert await summarizer.fold("old", [], max_tokens=20) == FALLBACK_SUMMARY
        assert await summarizer.condense([], max_tokens=20) == FALLBACK_DIGEST
        assert summarizer_fallback.calls == ["fold", "condense"]
        assert llm.requests == []

    async def test_the_budget_is_in_the_prompt_and_bounds_the_output(
        self, llm: FakeLlm, summarizer: LlmSummarizer
    ) -> None:
        llm.reply(json.dumps({"summary": "s"}))
        await summarizer.fold("", TURNS, max_tokens=100)
        assert llm.requests[0]["max_tokens"] > 100
        assert "at most 100" in llm.requests[0]["messages"][0]["content"]

    async def test_cancellation_reaches_the_caller(
        self, http: httpx.AsyncClient, llm: FakeLlm, metrics: Metrics
    ) -> None:
        fallback = FakeSummarizer()
        chat = ChatClient(http, base_url=llm.url, model="test-model", metrics=metrics, timeout=10.0)
        summarizer = LlmSummarizer(chat, fallback, WordCounter())
        llm.delay(5.0)
        task = asyncio.create_task(summarizer.fold("", TURNS, max_tokens=20))
        await wait_for(lambda: bool(llm.requests))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert fallback.calls == []
        assert counted(metrics) == {}


# --- LlmFactExtractor: good answers -----------------------------------------------------------------------
class TestLlmFactExtractor:
    async def test_extract_uses_the_llm_facts(
        self, llm: FakeLlm, extractor: LlmFactExtractor, extractor_fallback: FakeExtractor, metrics: Metrics
    ) -> None:
        keys = ("subject", "predicate", "object", "content", "source_id")
        rows = [
            ("user", "Lives In", "Zurich", "User lives in Zurich.", "m1"),
            ("user", "allergic_to", "cats", "User is allergic to cats.", "m3"),
            ("user", "likes", "Zurich", "User likes Zurich.", "m9"),  # no such message
            ("Ada", "name_is", "Ada", "User's name is Ada.", None),  # left out below
        ]
        facts = [{k: v for k, v in zip(keys, row, strict=True) if v is not None} for row in rows]
        llm.reply(json.dumps({"facts": facts}))

        found = await extractor.extract(TURNS)

        assert found == [
            Fact("user", "lives_in", "Zurich", "User lives in Zurich.", "m1"),
            Fact("user", "allergic_to", "cats", "User is allergic to cats.", "m3"),
            Fact("user", "likes", "Zurich", "User likes Zurich.", "m1"),
            Fact("Ada", "name_is", "Ada", "User's name is Ada.", "m1"),
        ]
        assert extractor_fallback.calls == []
        assert counted(metrics) == {"ok": 1}
        assert "[m3]" in user_prompt(llm.requests[0])

    async def test_no_facts_is_an_answer(
        self, llm: FakeLlm, extractor: LlmFactExtractor, extractor_fallback: FakeExtractor
    ) -> None:
        llm.reply('{"facts": []}')
        assert await extractor.extract(TURNS) == []
        assert extractor_fallback.calls == []

    @pytest.mark.parametrize(
        ("reply", "expected"),
        [
            ({"op": "update", "target_id": "1"}, FactDecision(op="update", fact=NEW_FACT, target_id="mem-aaa")),
            ({"op": "delete", "target_id": 2}, FactDecision(op="delete", fact=NEW_FACT, target_id="mem-bbb")),
            ({"op": "add", "target_id": "1"}, FactDecision(op="add", fact=NEW_FACT)),
            ({"op": "none"}, FactDecision(op="none", fact=NEW_FACT)),
        ],
        ids=["update", "delete-int-id", "add-ignores-target", "none"],
    )
    async def test_decide_uses_the_llm_decision(
        self,
        llm: FakeLlm,
        extractor: LlmFactExtractor,
        extractor_fallback: FakeExtractor,
        reply: dict[str, Any],
        expected: FactDecision,
    ) -> None:
        llm.reply(json.dumps(reply))
        assert await extractor.decide(NEW_FACT, SIMILAR) == expected
        assert extractor_fallback.calls == []

    async def test_decide_numbers_the_memories(self, llm: FakeLlm, extractor: LlmFactExtractor) -> None:
        llm.reply('{"op": "none"}')
        await extractor.decide(NEW_FACT, SIMILAR)
        shown = json.loads(user_prompt(llm.requests[0]))
        assert shown == {
            "new_fact": "User lives in Zurich.",
            "memories": [{"id": "1", "text": "User lives in Berlin."}, {"id": "2", "text": "User likes hiking."}],
        }

    async def test_nothing_to_compare_or_extract_needs_no_llm(
        self, llm: FakeLlm, extractor: LlmFactExtractor, extractor_fallback: FakeExtractor
    ) -> None:
        assert await extractor.decide(NEW_FACT, []) == FactDecision(op="add", fact=NEW_FACT)
        assert await extractor.extract([]) == [FALLBACK_FACT]
        assert extractor_fallback.calls == ["decide", "extract"]
        assert llm.requests == []


# --- every adapter method falls back, and the failure is counted once --------------------------------------
@dataclass(frozen=True)
class Method:
    """One adapter method called on a fresh adapter over ``client``; what its fallback answers."""

    call: Callable[[ChatClient, FakeSummarizer, FakeExtractor], Awaitable[object]]
    fallback_answer: object


METHODS = {
    "fold": Method(lambda c, s, e: LlmSummarizer(c, s, WordCounter()).fold("", TURNS, 20), FALLBACK_SUMMARY),
    "condense": Method(lambda c, s, e: LlmSummarizer(c, s, WordCounter()).condense(TURNS, 20), FALLBACK_DIGEST),
    "extract": Method(lambda c, s, e: LlmFactExtractor(c, e).extract(TURNS), [FALLBACK_FACT]),
    "decide": Method(
        lambda c, s, e: LlmFactExtractor(c, e).decide(NEW_FACT, SIMILAR), FactDecision(op="add", fact=NEW_FACT)
    ),
}


async def falls_back(method: str, client: ChatClient) -> list[str]:
    """Call ``method``; check it answered with its fallback's answer; the fallback calls made."""
    summarizer, extractor = FakeSummarizer(), FakeExtractor()
    assert await METHODS[method].call(client, summarizer, extractor) == METHODS[method].fallback_answer
    return summarizer.calls + extractor.calls


def http_500(llm: FakeLlm) -> str:
    llm.fail(500)
    return "error"


def http_429(llm: FakeLlm) -> str:
    llm.fail(429, "rate limited")
    return "error"


def slow(llm: FakeLlm) -> str:
    llm.delay(2.0)
    return "timeout"


def malformed_json(llm: FakeLlm) -> str:
    llm.reply("{'summary': 'single quotes are not JSON'}")
    return "invalid"


def broken_body(llm: FakeLlm) -> str:
    llm.raw("<html>bad gateway</html>")
    return "invalid"


SCENARIOS = {f.__name__: f for f in (http_500, http_429, slow, malformed_json, broken_body)}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("method", METHODS)
async def test_every_failure_falls_back_and_is_counted(
    llm: FakeLlm, client: ChatClient, metrics: Metrics, method: str, scenario: str
) -> None:
    outcome = SCENARIOS[scenario](llm)
    assert await falls_back(method, client) == [method]
    assert counted(metrics) == {outcome: 1}
    assert errors(metrics) == 1


@pytest.mark.parametrize("method", METHODS)
async def test_an_unreachable_endpoint_falls_back(refused_client: ChatClient, metrics: Metrics, method: str) -> None:
    assert await falls_back(method, refused_client) == [method]
    assert counted(metrics) == {"error": 1}


def _words(n: int) -> str:
    return " ".join(["word"] * n)


# Replies that parse as JSON (or nearly) but must not be used; fold and condense budget 20 tokens.
WRONG_REPLIES = {
    "fold": {
        "prose": "Ada moved to Zurich.",
        "truncated": '{"summary": "Ada moved',
        "number": {"summary": 42},
        "blank": {"summary": "   "},
        "wrong-key": {"text": "Ada moved to Zurich."},
        "over-budget": {"summary": _words(21)},
    },
    "condense": {
        "importance-text": {"summary": "s", "topic": "t", "keywords": [], "importance": "high"},
        "importance-bool": {"summary": "s", "topic": "t", "keywords": [], "importance": True},
        "importance-nan": '{"summary": "s", "topic": "t", "keywords": [], "importance": NaN}',
        "keywords-text": {"summary": "s", "topic": "t", "keywords": "zurich", "importance": 0.5},
        "keywords-numbers": {"summary": "s", "topic": "t", "keywords": [1, 2], "importance": 0.5},
        "blank-topic": {"summary": "s", "topic": "", "keywords": [], "importance": 0.5},
        "no-topic": {"summary": "s", "keywords": [], "importance": 0.5},
        "over-budget": {"summary": _words(21), "topic": "t", "keywords": [], "importance": 0.5},
    },
    "extract": {
        "facts-text": {"facts": "User lives in Zurich."},
        "no-content": {"facts": [{"subject": "user", "predicate": "lives_in", "object": "Zurich"}]},
        "blank-content": {"facts": [{"subject": "user", "predicate": "lives_in", "object": "Zurich", "content": " "}]},
        "predicate-number": {"facts": [{"subject": "user", "predicate": 7, "object": "Zurich", "content": "c"}]},
        "wrong-key": {"memories": []},
    },
    "decide": {
        "unknown-op": {"op": "merge", "target_id": "1"},
        "unknown-target": {"op": "update", "target_id": "9"},
        "real-id": {"op": "update", "target_id": "mem-aaa"},
        "null-target": {"op": "delete", "target_id": None},
        "no-target": {"op": "update"},
        "op-list": {"op": ["add"]},
        "no-op": {"target_id": "1"},
    },
}


@pytest.mark.parametrize(
    ("method", "reply"),
    [
        pytest.param(method, reply, id=f"{method}-{name}")
        for method, replies in WRONG_REPLIES.items()
        for name, reply in replies.items()
    ],
)
async def test_an_unusable_reply_falls_back_and_is_counted_invalid(
    llm: FakeLlm, client: ChatClient, metrics: Metrics, method: str, reply: str | dict[str, Any]
) -> None:
    llm.reply(reply if isinstance(reply, str) else json.dumps(reply))
    assert await falls_back(method, client) == [method]
    assert counted(metrics) == {"invalid": 1}
