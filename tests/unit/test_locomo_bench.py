"""Unit tests of the LoCoMo benchmark's pure parts: no service, no model, no data file."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, Self

import httpx
import numpy as np
import pytest

from bench import locomo
from bench.locomo import (
    BM25,
    BenchError,
    ContextRun,
    Conversation,
    FillerPlan,
    Question,
    ServiceClient,
    aggregate,
    baseline_line,
    build_parser,
    clean_evidence,
    context_dia_ids,
    evaluate_context,
    evaluate_mode,
    evidence_in_context,
    evidence_share,
    filler_memories,
    filler_pool,
    hit_at_k,
    hit_dia_ids,
    import_filler,
    ingest,
    iter_filler,
    latency_summary,
    pack_lines,
    parse_budgets,
    parse_conversation,
    parse_session_datetime,
    pool_vectors,
    posted_texts,
    probe_context,
    recall_at_k,
    reciprocal_rank,
    render_markdown,
    result_dia_ids,
    rrf,
    score_context,
    score_question,
    select_conversations,
    share_table,
    summarise_context,
    tokenize,
    top_k,
    vector_json,
    wait_for_queue,
)


class TestParseSessionDatetime:
    def test_afternoon(self) -> None:
        assert parse_session_datetime("1:56 pm on 8 May, 2023") == datetime(
            2023, 5, 8, 13, 56, tzinfo=UTC
        )

    def test_morning(self) -> None:
        assert parse_session_datetime("10:04 am on 19 December, 2023") == datetime(
            2023, 12, 19, 10, 4, tzinfo=UTC
        )

    def test_noon_and_midnight(self) -> None:
        assert parse_session_datetime("12:30 pm on 1 January, 2022").hour == 12
        assert parse_session_datetime("12:05 am on 1 January, 2022").hour == 0

    def test_lenient_spacing_and_abbreviated_month(self) -> None:
        assert parse_session_datetime(" 7:48 PM on 21 Sep 2023 ") == datetime(
            2023, 9, 21, 19, 48, tzinfo=UTC
        )

    @pytest.mark.parametrize("value", ["", "yesterday", "13:00 pm on 1 May, 2023",
                                       "1:00 pm on 1 Mayday, 2023"])
    def test_rejects_garbage(self, value: str) -> None:
        with pytest.raises(ValueError):
            parse_session_datetime(value)


class TestCleanEvidence:
    valid = {"D8:6", "D9:17", "D11:26", "D30:5", "D1:3", "D1:18", "D1:20"}

    def test_well_formed_ids_pass(self) -> None:
        assert clean_evidence(["D1:3"], self.valid) == ("D1:3",)

    def test_semicolon_joined_ids_are_split(self) -> None:
        assert clean_evidence(["D8:6; D9:17"], self.valid) == ("D8:6", "D9:17")

    def test_stray_colon_is_dropped(self) -> None:
        assert clean_evidence(["D:11:26"], self.valid) == ("D11:26",)

    def test_leading_zeros_are_dropped(self) -> None:
        assert clean_evidence(["D30:05"], self.valid) == ("D30:5",)

    def test_ids_naming_no_turn_are_dropped(self) -> None:
        assert clean_evidence(["D1:18", "D", "D1:20", "D10:19", ""], self.valid) == (
            "D1:18",
            "D1:20",
        )

    def test_duplicates_are_dropped_in_order(self) -> None:
        assert clean_evidence(["D9:17", "D8:6; D9:17"], self.valid) == ("D9:17", "D8:6")


def _raw_conversation() -> dict[str, Any]:
    return {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_2_date_time": "9:00 am on 2 May, 2023",
            "session_2": [{"speaker": "Ann", "dia_id": "D2:1", "text": "Back again."}],
            "session_1_date_time": "1:56 pm on 1 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "Hi Bob!"},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Look at this.",
                 "blip_caption": "a photo of a dog"},
            ],
            "session_3_date_time": "9:00 am on 3 May, 2023",  # a date without turns
        },
        "qa": [
            {"question": "q1", "answer": "a", "evidence": ["D1:02; D2:1"], "category": 1},
            {"question": "q2", "answer": "a", "evidence": [], "category": 3},
            {"question": "q3", "answer": "a", "evidence": ["D9:9"], "category": 4},
            {"question": "q5", "adversarial_answer": "a", "evidence": ["D1:1"], "category": 5},
        ],
    }


class TestParseConversation:
    def test_turns_in_session_order_with_times(self) -> None:
        conversation = parse_conversation(_raw_conversation())
        assert [t.dia_id for t in conversation.turns] == ["D1:1", "D1:2", "D2:1"]
        second = conversation.turns[1]
        assert second.caption == "a photo of a dog"
        assert second.created_at == datetime(2023, 5, 1, 13, 56, 1, tzinfo=UTC)
        assert list(conversation.sessions()) == [1, 2]

    def test_only_evaluable_questions_are_kept(self) -> None:
        conversation = parse_conversation(_raw_conversation())
        assert [(q.question, q.evidence) for q in conversation.questions] == [
            ("q1", ("D1:2", "D2:1"))
        ]


class TestMetrics:
    ranked = ["D1:1", "D1:2", "D1:3", "D1:4", "D1:5", "D1:6"]

    def test_recall(self) -> None:
        assert recall_at_k(self.ranked, ["D1:2", "D9:9"], 5) == 0.5
        assert recall_at_k(self.ranked, ["D1:2", "D1:6"], 5) == 0.5
        assert recall_at_k(self.ranked, ["D1:2", "D1:6"], 10) == 1.0
        assert recall_at_k(self.ranked, ["D9:9"], 20) == 0.0

    def test_hit(self) -> None:
        assert hit_at_k(self.ranked, ["D1:6", "D9:9"], 5) == 0.0
        assert hit_at_k(self.ranked, ["D1:6", "D9:9"], 10) == 1.0

    def test_reciprocal_rank_uses_the_first_evidence(self) -> None:
        assert reciprocal_rank(self.ranked, ["D1:4", "D1:2"]) == 0.5
        assert reciprocal_rank(self.ranked, ["D9:9"]) == 0.0
        assert reciprocal_rank(self.ranked, ["D1:6"], cutoff=5) == 0.0

    def test_aggregate_per_category_and_overall(self) -> None:
        multi = Question("c", "q", ("D1:1", "D1:6"), 1)
        single = Question("c", "q", ("D1:3",), 4)
        table = aggregate(
            [score_question(multi, self.ranked), score_question(single, self.ranked)]
        )
        assert table["multi-hop"]["n"] == 1
        assert table["multi-hop"]["recall@5"] == 0.5
        assert table["multi-hop"]["mrr"] == 1.0
        assert table["single-hop"]["mrr"] == pytest.approx(1 / 3)
        assert table["temporal"] == {"n": 0}
        assert table["overall"]["recall@5"] == 0.75
        assert table["overall"]["hit@5"] == 1.0
        assert table["overall"]["mrr"] == pytest.approx((1 + 1 / 3) / 2)

    def test_latency_summary(self) -> None:
        stats = latency_summary([float(v) for v in range(1, 101)])
        assert stats["p50"] == pytest.approx(50.5)
        assert stats["p99"] == pytest.approx(99.01)
        assert latency_summary([]) == {"n": 0.0}


class TestBM25:
    docs = [
        "Ann: I adopted a puppy named Max last week",
        "Bob: The weather was awful, it rained all day",
        "Ann: Max the puppy chewed my shoes",
        "Bob: I painted a sunset over the lake",
        "Ann: We went hiking in the mountains",
        "Bob: My sister started a new job",
    ]

    def test_tokenize_lowercases_and_drops_stopwords(self) -> None:
        assert tokenize("I don't like THE Sunset!") == ["like", "sunset"]

    def test_ranks_matching_documents_first(self) -> None:
        index = BM25([tokenize(d) for d in self.docs])
        assert top_k(index.scores(tokenize("Who painted the sunset?")), 1) == [3]
        ranking = top_k(index.scores(tokenize("puppy Max")), 6)
        assert set(ranking[:2]) == {0, 2}
        assert top_k(index.scores(tokenize("zebra")), 6) == [0, 1, 2, 3, 4, 5]  # ties: order

    def test_okapi_formula(self) -> None:
        index = BM25([["a", "b"], ["b"], ["c"], ["d"], ["e"]], k1=1.5, b=0.75)
        # "a": one document of five, idf = ln(4.5 / 1.5); doc 0 has length 2, avgdl 1.2
        expected = math.log(4.5 / 1.5) * 2.5 / (1 + 1.5 * (0.25 + 0.75 * 2 / 1.2))
        assert index.scores(["a"])[0] == pytest.approx(expected)
        assert index.scores(["a"])[1:].tolist() == [0.0] * 4

    def test_negative_idf_is_floored(self) -> None:
        index = BM25([["x", "y"], ["x"], ["x", "z"], ["a"], ["b"]], epsilon=0.25)
        raw_x, raw_single = math.log(2.5 / 3.5), math.log(4.5 / 1.5)  # x is in 3 of 5 docs
        assert raw_x < 0
        assert index.idf["x"] == pytest.approx(0.25 * (raw_x + 4 * raw_single) / 5)
        assert index.idf["y"] == pytest.approx(raw_single)

    def test_rrf(self) -> None:
        assert rrf([["a", "b", "c"], ["b", "a", "d"]])[:2] in (["a", "b"], ["b", "a"])
        assert rrf([["a", "b"], ["b", "c"]])[0] == "b"


class TestResultMapping:
    def test_dia_ids_from_metadata_then_source_ids(self) -> None:
        items = [
            {"memory": {"metadata": {"dia_id": "D1:2"}, "source_ids": []}},
            {"memory": {"metadata": {}, "source_ids": ["m1", "m3", "unknown"]}},
            {"memory": {"metadata": {"dia_id": "D1:2"}}},
            {"memory": {"metadata": None}},
        ]
        assert result_dia_ids(items, {"m1": "D1:1", "m3": "D1:3"}) == ["D1:2", "D1:1", "D1:3"]


class TestFiller:
    def test_deterministic_and_spread_over_users(self) -> None:
        first = filler_memories(250, "run", users=10, seed=7)
        assert first == filler_memories(250, "run", users=10, seed=7)
        assert first != filler_memories(250, "run", users=10, seed=8)
        assert len({m["user_id"] for m in first}) == 10
        assert all(m["content"].endswith(".") for m in first)

    def test_the_pool_is_distinct_seeded_and_capped(self) -> None:
        pool = filler_pool(5000, seed=3)
        assert len(set(pool)) == 5000 and pool == filler_pool(5000, seed=3) and pool != filler_pool(5000, seed=4)
        assert len(filler_pool(10**7, seed=0)) == locomo.FILLER_SENTENCES

    def test_a_users_memories_are_together_and_distinct(self) -> None:
        pool = filler_pool(50, seed=1)
        lines = list(iter_filler(400, "run", users=8, seed=1, pool=pool))
        users = [m["user_id"] for _, m in lines]
        assert users == sorted(users) and len(set(users)) == 8  # consecutive: few users a request
        for user in set(users):
            mine = [index for index, m in lines if m["user_id"] == user]
            assert len(mine) == 50 and len(set(mine)) == 50
        assert all(m["content"] == pool[index] for index, m in lines)
        ids = [m["id"] for _, m in lines]
        assert len(set(ids)) == 400 and ids == [m["id"] for _, m in iter_filler(400, "run", 8, 1, pool)]
        assert ids != [m["id"] for _, m in iter_filler(400, "other", 8, 1, pool)]

    def test_vectors_as_json(self) -> None:
        vectors = np.random.default_rng(0).standard_normal((3, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for raw, vector in zip(vector_json(vectors), vectors, strict=True):
            parsed = np.asarray(json.loads(raw))
            assert parsed.shape == (384,) and np.abs(parsed - vector).max() <= 5e-6

    def test_pool_vectors_come_from_the_cache(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        pool = filler_pool(20, seed=0)
        monkeypatch.setattr(locomo, "_embed", lambda sentences: np.ones((len(sentences), 4), dtype=np.float32))

        class Inline:  # the child process, run in this one
            def __init__(self, **_: object) -> None: ...

            def __enter__(self) -> Self:
                return self

            def __exit__(self, *_: object) -> None: ...

            def submit(self, fn: Any, *args: Any) -> Any:
                import concurrent.futures
                future: concurrent.futures.Future[Any] = concurrent.futures.Future()
                future.set_result(fn(*args))
                return future

        monkeypatch.setattr(locomo, "ProcessPoolExecutor", Inline)
        first = pool_vectors(pool, 0, cache_dir=tmp_path)
        assert first.shape == (20, 4) and len(list(tmp_path.iterdir())) == 1
        monkeypatch.setattr(locomo, "_embed", lambda sentences: pytest.fail("embedded again"))
        assert (pool_vectors(pool, 0, cache_dir=tmp_path) == first).all()


class TestFillerImport:
    async def test_streams_requests_of_lines_with_vectors(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(locomo, "FILLER_REQUEST_LINES", 120)
        monkeypatch.setattr(locomo, "FILLER_CHUNK_LINES", 50)
        bodies: list[list[dict[str, Any]]] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            assert request.url.path == "/v1/memories/import"
            assert request.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) for line in (await request.aread()).splitlines()]
            bodies.append(lines)
            return httpx.Response(200, json={"imported": len(lines), "skipped": 0, "indexed": len(lines), "queued": 0})

        pool = filler_pool(30, seed=0)
        vectors = np.eye(30, 8, dtype=np.float32)
        plan = FillerPlan(300, 7, 0, "run", pool, vectors)
        sent: list[int] = []
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://test") as http:
            requests, totals = await import_filler(http, plan, sent.append)
        assert requests == 3 and [len(b) for b in bodies] == [120, 120, 60]
        assert totals == {"imported": 300, "skipped": 0, "indexed": 300, "queued": 0} and sum(sent) == 300
        lines = [line for body in bodies for line in body]
        assert len({line["id"] for line in lines}) == 300
        assert all(line["vector"] == vectors[pool.index(line["content"])].tolist() for line in lines)

    async def test_a_busy_database_is_tried_again(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(locomo, "FILLER_REQUEST_LINES", 40)
        answers = [503, 200, 200]
        seen: list[list[str]] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            lines = [json.loads(line)["id"] for line in (await request.aread()).splitlines()]
            seen.append(lines)
            status = answers.pop(0)
            if status == 503:
                return httpx.Response(503, headers={"Retry-After": "0"}, json={"title": "Service unavailable"})
            return httpx.Response(200, json={"imported": len(lines), "skipped": 0, "indexed": len(lines), "queued": 0})

        plan = FillerPlan(70, 5, 0, "run", filler_pool(30, 0), np.eye(30, 8, dtype=np.float32))
        sent: list[int] = []
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://test") as http:
            requests, totals = await import_filler(http, plan, sent.append)
        assert requests == 3 and seen[0] == seen[1] and len(seen[2]) == 30  # the same lines again
        assert totals["imported"] == 70 and sum(sent) == 70

    async def test_a_refused_request_stops_it(self) -> None:
        async def handler(request: httpx.Request) -> httpx.Response:
            await request.aread()
            return httpx.Response(422, json={"title": "Invalid input", "detail": "line 3: vector: bad"})

        plan = FillerPlan(10, 2, 0, "run", filler_pool(5, 0), np.eye(5, 8, dtype=np.float32))
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://test") as http:
            with pytest.raises(BenchError, match="line 3"):
                await import_filler(http, plan, lambda n: None)


class FakeService:
    """Records what the benchmark posts; the queue drains after two polls."""

    def __init__(self) -> None:
        self.sessions: list[dict[str, Any]] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.polls = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/admin/queue":
            self.polls += 1
            pending = 0 if self.polls == 1 or self.polls > 3 else 5
            return httpx.Response(200, json={"pending": pending, "failed": 0,
                                             "oldest_pending_age_seconds": None})
        body = json.loads(request.content)
        if path == "/v1/sessions":
            self.sessions.append(body)
            return httpx.Response(201, json=body)
        if path.endswith("/messages"):
            session_id = path.split("/")[3]
            stored = self.messages.setdefault(session_id, [])
            items = [{**m, "id": f"{session_id}#{len(stored) + i}"}
                     for i, m in enumerate(body["messages"])]
            stored.extend(body["messages"])
            return httpx.Response(201, json={"items": items})
        return httpx.Response(
            404, json={"title": "Not Found", "status": 404},
            headers={"content-type": "application/problem+json"},
        )


class TestIngest:
    async def test_posts_sessions_and_messages_per_contract(self) -> None:
        conversation: Conversation = parse_conversation(_raw_conversation())
        fake = FakeService()
        transport = httpx.MockTransport(fake.handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            stats, message_dia = await ingest(
                ServiceClient(http), [conversation], "run1", concurrency=2, queue_timeout_s=5
            )
        assert sorted(s["id"] for s in fake.sessions) == ["run1-conv-x-s1", "run1-conv-x-s2"]
        assert {s["user_id"] for s in fake.sessions} == {"run1-conv-x"}
        first, second = fake.messages["run1-conv-x-s1"]
        assert first == {
            "role": "user", "content": "Hi Bob!", "name": "Ann",
            "created_at": "2023-05-01T13:56:00+00:00", "metadata": {"dia_id": "D1:1"},
        }
        assert second["role"] == "assistant"
        assert second["content"] == "Look at this. [image: a photo of a dog]"
        assert second["created_at"] == "2023-05-01T13:56:01+00:00"
        assert message_dia["run1-conv-x-s1#1"] == "D1:2"
        assert stats.items == 3 and stats.requests == 4 and stats.failed_jobs == 0
        assert fake.polls >= 3

    async def test_queue_timeout_is_a_clear_error(self) -> None:
        transport = httpx.MockTransport(
            lambda request: httpx.Response(
                200, json={"pending": 3, "failed": 1, "oldest_pending_age_seconds": 9.0}
            )
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            with pytest.raises(BenchError, match="not drained"):
                await wait_for_queue(ServiceClient(http), timeout_s=0.05, poll_s=0.01)

    async def test_problem_details_surface_in_errors(self) -> None:
        transport = httpx.MockTransport(FakeService().handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            with pytest.raises(BenchError, match="404: Not Found"):
                await ServiceClient(http).search("q", "u", "hybrid", 20)


class TestReport:
    def test_markdown_has_every_method_and_the_performance_tables(self) -> None:
        question = Question("c", "q", ("D1:1",), 2)
        table = aggregate([score_question(question, ["D1:2", "D1:1"])])
        phase = {"items": 10.0, "requests": 2.0, "post_seconds": 1.0, "total_seconds": 2.0,
                 "failed_jobs": 0.0, "post_items_per_s": 10.0, "total_items_per_s": 5.0}
        result = {
            "timestamp": "2024-01-01T00:00:00+00:00", "base_url": "http://x", "run_id": "r",
            "config": {"filler": 0},
            "dataset": {"conversations": 1, "questions": 1},
            "service": {"hybrid": table}, "baselines": {"bm25": table},
            "latency_ms": {"hybrid": latency_summary([1.0, 2.0, 3.0])},
            "ingest": phase, "filler": None,
        }
        markdown = render_markdown(result)
        row = "| service `hybrid` | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 50.0 |"
        assert row in markdown
        assert "| bm25 |" in markdown
        assert "| LoCoMo messages | 10 | 1.0 | 10.0 | 2.0 | 5.0 | 0 |" in markdown
        assert "| `hybrid` | 3 | 2.0 |" in markdown
        assert "| filler memories |" not in markdown


class TestEvaluateMode:
    async def test_scores_the_service_ranking_and_times_each_request(self) -> None:
        seen: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            seen.append(body)
            items = [{"memory": {"metadata": {"dia_id": d}}, "score": 1.0}
                     for d in ("D1:9", "D1:2", "D2:1")]
            return httpx.Response(200, json={"items": items})

        questions = [Question("conv-x", "q1", ("D1:2", "D2:1"), 1),
                     Question("conv-x", "q2", ("D7:7",), 4)]
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            run = await evaluate_mode(ServiceClient(http), questions, "run1", "keyword", {})
        assert len(seen) == 3  # one warm-up, then one per question
        assert seen[-1] == {"query": "q2", "user_id": "run1-conv-x", "limit": 20,
                            "mode": "keyword"}
        assert len(run.latencies_ms) == 2 and run.empty_answers == 0
        assert run.scores[0].rr == 0.5 and run.scores[0].recall == (1.0, 1.0, 1.0)
        assert run.scores[1].rr == 0.0


def _words(text: str) -> int:
    """A stand-in token counter: one token per whitespace-separated word."""
    return len(text.split())


def _memory(memory_id: str, content: str, speaker: str | None = "Ann",
            event_time: str = "2023-05-01T13:56:00Z", **extra: Any) -> dict[str, Any]:
    return {"id": memory_id, "content": content, "speaker": speaker, "event_time": event_time,
            "type": "episodic", "metadata": {}, **extra}


def _answer(prompt: str, *ids: str, tokens: int = 10) -> dict[str, Any]:
    items = [{"id": i, "kind": "memory", "tokens": 1, "score": 0.5} for i in ids]
    return {"prompt": prompt, "tokens": tokens, "max_tokens": 1000,
            "sections": [{"name": "profile", "text": "", "tokens": 0, "items": []},
                         {"name": "memories", "text": prompt, "tokens": tokens, "items": items}]}


class TestEvidenceShare:
    texts = {"D1:1": "Hi Bob!", "D1:2": "Look at  this. [image: a dog]", "D2:1": "Back again."}

    def test_items_of_any_section_map_through_message_ids(self) -> None:
        answer = _answer("", "m2", "m9", "m1")
        answer["sections"][0]["items"] = [{"id": "m3", "kind": "memory", "tokens": 1,
                                           "score": None}]
        answer["sections"].append({"name": "summary", "text": "", "tokens": 0, "items": [
            {"id": "s#summary-0", "kind": "summary", "tokens": 3, "score": None}]})
        message_dia = {"m1": "D1:1", "m2": "D1:2", "m3": "D2:1"}
        assert context_dia_ids(answer, message_dia) == ["D2:1", "D1:2", "D1:1"]

    def test_found_by_id_or_by_verbatim_text(self) -> None:
        prompt = "## 2023-05-01\nBob: Look at this. [image: a dog]"
        found = evidence_in_context(["D1:1", "D1:2", "D2:1"], ["D2:1"], prompt, self.texts)
        assert found == {"D2:1", "D1:2"}  # D1:2 by its text, whitespace runs as one space
        assert evidence_share(["D1:1", "D1:2", "D2:1"], found) == pytest.approx(2 / 3)

    def test_ids_outside_the_evidence_do_not_count(self) -> None:
        assert evidence_in_context(["D1:1"], ["D1:2", "D2:1"], "", self.texts) == set()
        assert evidence_share([], set()) == 0.0

    def test_a_text_only_partly_in_the_prompt_does_not_count(self) -> None:
        assert evidence_in_context(["D1:2"], [], "Bob: Look at this.", self.texts) == set()

    def test_hit_ids_map_by_memory_id_or_dia_id_never_by_sources(self) -> None:
        hits = [{"memory": _memory("m2", "x")},
                {"memory": _memory("s1", "x", type="summary", source_ids=["m1"])},
                {"memory": _memory("e1", "x", metadata={"dia_id": "D2:1"})},
                {"memory": _memory("m2", "x")}]
        assert hit_dia_ids(hits, {"m1": "D1:1", "m2": "D1:2"}) == ["D1:2", "D2:1"]


class TestBaselinePacking:
    def test_line_format(self) -> None:
        assert baseline_line(_memory("m1", "Hi  Bob!\nBye")) == "[2023-05-01] Ann: Hi Bob! Bye"
        assert baseline_line(_memory("m1", "Likes tea", speaker=None, type="semantic",
                                     event_time="2023-05-02T23:30:00+00:00")) == (
            "[2023-05-02] (semantic) Likes tea"
        )

    def test_packs_in_order_until_the_next_line_would_exceed(self) -> None:
        lines = ["a b c", "d e", "f g h i", "j"]
        assert pack_lines(lines, 5, _words) == 2
        assert pack_lines(lines, 9, _words) == 3
        assert pack_lines(lines, 10, _words) == 4
        assert pack_lines(lines, 2, _words) == 0  # the first line alone is too long
        assert pack_lines(["j", "a b c"], 3, _words) == 1  # stops; never skips ahead
        assert pack_lines([], 10, _words) == 0

    def test_the_newline_counts_with_the_real_tokenizer(self) -> None:
        from service.embedding.tokens import BpeTokenCounter

        count = BpeTokenCounter("o200k_base").count
        lines = [f"[2023-05-0{i}] Ann: I walked the dog number {i} today" for i in range(1, 8)]
        taken = pack_lines(lines, 40, count)
        assert 0 < taken < len(lines)
        assert count("\n".join(lines[:taken])) <= 40 < count("\n".join(lines[: taken + 1]))


class TestContextSummary:
    def test_share_table_per_category_and_overall(self) -> None:
        table = share_table([(1, 1.0), (1, 0.5), (4, 0.0)])
        assert table["multi-hop"] == {"n": 2, "evidence_share": 0.75}
        assert table["single-hop"] == {"n": 1, "evidence_share": 0.0}
        assert table["temporal"] == {"n": 0}
        assert table["overall"]["evidence_share"] == pytest.approx(0.5)

    def test_score_context_beside_the_packed_baseline(self) -> None:
        questions = [Question("conv-x", "q1", ("D1:1", "D1:2"), 1),
                     Question("conv-x", "q2", ("D2:1",), 4)]
        message_dia = {"m1": "D1:1", "m2": "D1:2", "m3": "D2:1"}
        texts = {"conv-x": {"D1:1": "Hi Bob!", "D1:2": "Look at this.", "D2:1": "Back again."}}
        answers = [_answer("Ann: Hi Bob!\nBob: Look at this.", "m1", tokens=8),
                   _answer("", tokens=0)]
        hits = [[{"memory": _memory("m2", "Look at this.", speaker="Bob")},
                 {"memory": _memory("m1", "Hi Bob!")}],  # the second line exceeds 6 words
                [{"memory": _memory("m3", "Back again.")}]]
        run = score_context(6, questions, answers, hits, message_dia, texts, _words, [3.0, 5.0])
        assert run.context_shares == [1.0, 0.0] and run.text_only == 1
        assert run.baseline_shares == [0.5, 1.0]
        assert run.baseline_tokens == [5, 4] and run.context_tokens == [8, 0]
        summary = summarise_context(run)
        assert summary["context"]["overall"]["evidence_share"] == 0.5
        assert summary["baseline"]["overall"]["evidence_share"] == 0.75
        assert summary["difference_points"] == pytest.approx(-25.0)
        assert summary["context_over_budget"] == 1
        assert summary["latency_ms"]["p50"] == pytest.approx(4.0)

    def test_report_has_the_context_tables(self) -> None:
        run = ContextRun(1000, [1, 4], [1.0, 0.5], [0.5, 0.5], [1.0, 2.0, 3.0], [900, 950],
                         [990, 980], 0)
        question = Question("c", "q", ("D1:1",), 1)
        table = aggregate([score_question(question, ["D1:1"])])
        result = {
            "timestamp": "2024-01-01T00:00:00+00:00", "base_url": "http://x", "run_id": "r",
            "config": {"filler": 0}, "dataset": {"conversations": 1, "questions": 2},
            "service": {"hybrid": table}, "baselines": {}, "latency_ms": {}, "ingest": None,
            "filler": None,
            "context": {"encoding": "o200k_base", "baseline_line": "[YYYY-MM-DD] <s>: <c>",
                        "baseline_hits": 50, "runs": [summarise_context(run)]},
        }
        markdown = render_markdown(result)
        assert "| 1000 | 75.0 | 50.0 | +25.0 | 2.0 | 2.9 | 3.0 |" in markdown
        assert "| 1000 | context | 100.0 | – | – | 50.0 | 75.0 |" in markdown
        assert "| 1000 | baseline | 50.0 | – | – | 50.0 | 50.0 |" in markdown
        assert "multi-hop (1)" in markdown
        assert "Main context" not in render_markdown({**result, "context": None})


class TestSelection:
    def test_conversations_by_sample_id_in_data_order(self) -> None:
        first = parse_conversation(_raw_conversation())
        second = parse_conversation({**_raw_conversation(), "sample_id": "conv-y"})
        assert select_conversations([first, second], None) == [first, second]
        assert select_conversations([first, second], ["conv-y", "conv-x"]) == [first, second]
        assert select_conversations([first, second], ["conv-y"]) == [second]
        with pytest.raises(ValueError, match="unknown conversations conv-z"):
            select_conversations([first, second], ["conv-z"])

    def test_flags(self) -> None:
        args = build_parser().parse_args(
            ["--questions", "40", "--conversations", "conv-26, conv-30"]
        )
        assert args.limit_questions == 40 and args.conversations == ["conv-26", "conv-30"]
        assert args.context_budgets == [1000, 500] and not args.no_context
        assert build_parser().parse_args(["--limit-questions", "7"]).limit_questions == 7
        assert parse_budgets("2000, 500,2000") == [2000, 500]
        for bad in ("", "0", "a,1", "300000"):
            with pytest.raises(Exception):
                parse_budgets(bad)

    def test_posted_texts_are_the_message_contents(self) -> None:
        texts = posted_texts([parse_conversation(_raw_conversation())])
        assert texts["conv-x"]["D1:2"] == "Look at this. [image: a photo of a dog]"


class TestEvaluateContext:
    async def test_fresh_session_per_question_and_one_timed_call_per_budget(self) -> None:
        calls: list[tuple[str, dict[str, Any]]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            calls.append((request.url.path, body))
            if request.url.path == "/v1/sessions":
                return httpx.Response(201, json=body)
            if request.url.path == "/v1/memories/search":
                return httpx.Response(200, json={"items": [
                    {"memory": _memory("m1", "Hi Bob!"), "score": 1.0}]})
            return httpx.Response(200, json=_answer("Ann: Hi Bob!", "m1", tokens=4))

        questions = [Question("conv-x", "q1", ("D1:1",), 1),
                     Question("conv-x", "q2", ("D2:1",), 4)]
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            client = ServiceClient(http)
            warmup = await probe_context(client, "run1", "conv-x")
            runs = await evaluate_context(
                client, questions, "run1", [1000, 500], {"m1": "D1:1"},
                {"conv-x": {"D1:1": "Hi Bob!"}}, concurrency=2, count=_words,
                warmup_session=warmup,
            )
        sessions = [body for path, body in calls if path == "/v1/sessions"]
        assert [s["id"] for s in sessions] == ["run1-conv-x-ctx-warmup", "run1-conv-x-ctx0",
                                               "run1-conv-x-ctx1"]
        assert {s["user_id"] for s in sessions} == {"run1-conv-x"}
        searches = [body for path, body in calls if path == "/v1/memories/search"]
        assert searches[0] == {"query": "q1", "user_id": "run1-conv-x", "limit": 50,
                               "mode": "hybrid"}
        contexts = [(path, body) for path, body in calls if path.endswith("/context")]
        assert len(contexts) == 1 + 2 * (1 + 2)  # the probe; per budget a warm-up and each question
        assert contexts[-1] == ("/v1/sessions/run1-conv-x-ctx1/context",
                                {"max_tokens": 500, "query": "q2"})
        assert [run.budget for run in runs] == [1000, 500]
        assert runs[0].context_shares == [1.0, 0.0] and runs[0].baseline_shares == [1.0, 0.0]
        assert len(runs[1].latencies_ms) == 2

    async def test_a_missing_endpoint_is_a_clear_error(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v1/sessions":
                return httpx.Response(201, json=json.loads(request.content))
            return httpx.Response(404, json={"title": "Not Found", "status": 404})

        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            with pytest.raises(BenchError, match="--no-context"):
                await probe_context(ServiceClient(http), "run1", "conv-x")
