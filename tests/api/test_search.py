"""POST /v1/memories/search through the API on both backend sets: each mode, the weights, MMR,
min_score, every filter, and the 422s of bad requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import add_memories, assert_problem, drained, new_session, search

USER = "sara"


def contents(hits: list[dict[str, Any]]) -> list[str]:
    return [h["memory"]["content"] for h in hits]


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    """Memories of one user that differ in one attribute each, and one of another user."""
    web = (await new_session(client, USER))["id"]
    app = (await new_session(client, USER))["id"]
    made = await add_memories(
        client,
        {"user_id": USER, "content": "Sara's cat Miso eats tuna every morning.", "type": "semantic",
         "topic": "pets", "session_id": web, "importance": 0.2, "event_time": "2023-01-10T09:00:00Z",
         "metadata": {"channel": "web", "pinned": True}},
        {"user_id": USER, "content": "Every morning the cat Miso is fed tuna by Sara.", "type": "episodic",
         "topic": "pets", "session_id": app, "agent_id": "helper", "importance": 0.9,
         "event_time": "2023-06-10T09:00:00Z", "metadata": {"channel": "app"}},
        {"user_id": USER, "content": "Sara plays the cello in a quartet on Sundays.", "type": "semantic",
         "topic": "music", "importance": 0.5, "event_time": "2023-03-01T18:00:00Z"},
        {"user_id": USER, "content": "To reset the router, hold its button for ten seconds.", "type": "procedural",
         "topic": "howto", "importance": 0.4, "event_time": "2022-11-20T12:00:00Z"},
        {"user_id": "other", "content": "Other's cat Miso eats tuna every morning too.", "type": "semantic"},
    )
    assert [m["status"] for m in made] == ["created"] * 5, made
    await drained(client)
    return {"web": web, "app": app, "ids": [m["memory"]["id"] for m in made]}


class TestModes:
    async def test_keyword_mode_matches_words_and_scores_no_semantic_part(
        self, client: httpx.AsyncClient, world: dict[str, Any]
    ) -> None:
        hits = await search(client, "router button", USER, mode="keyword")
        assert contents(hits) == ["To reset the router, hold its button for ten seconds."]
        assert hits[0]["parts"]["keyword"] == 1.0 and hits[0]["parts"]["semantic"] == 0.0

    async def test_semantic_mode_finds_a_paraphrase_that_keyword_misses(
        self, client: httpx.AsyncClient, world: dict[str, Any]
    ) -> None:
        query = "which string instrument does she perform with an ensemble"
        assert await search(client, query, USER, mode="keyword") == []
        semantic = await search(client, query, USER, mode="semantic", limit=1)
        assert contents(semantic) == ["Sara plays the cello in a quartet on Sundays."]
        assert semantic[0]["parts"]["keyword"] == 0.0

    async def test_hybrid_ranks_by_both_and_reports_every_part(self, client: httpx.AsyncClient, world: dict[str, Any]) -> None:
        hits = await search(client, "what does Miso eat", USER)
        assert contents(hits)[0].startswith(("Sara's cat Miso", "Every morning the cat Miso"))
        assert set(hits[0]["parts"]) == {"semantic", "keyword", "speaker", "date", "context", "recency", "importance"}
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert "Other's cat" not in " ".join(contents(hits))  # another user's memory never shows


class TestWeightsMmrAndMinScore:
    async def test_importance_weight_reorders(self, client: httpx.AsyncClient, world: dict[str, Any]) -> None:
        plain = await search(client, "Sara's cat Miso eats tuna", USER, limit=2)
        assert contents(plain)[0] == "Sara's cat Miso eats tuna every morning."  # the closer wording leads
        by_importance = await search(
            client, "Sara's cat Miso eats tuna", USER, limit=2, weights={"semantic": 0, "keyword": 0, "context": 0, "importance": 5}
        )
        assert contents(by_importance)[0] == "Every morning the cat Miso is fed tuna by Sara."
        assert by_importance[0]["score"] == pytest.approx(5 * 0.9)

    async def test_recency_weight_prefers_newer_event_times(self, client: httpx.AsyncClient, world: dict[str, Any]) -> None:
        weights = {"semantic": 0, "keyword": 0, "context": 0, "recency": 1, "recency_half_life_days": 30}
        hits = await search(client, "Miso tuna morning", USER, limit=2, weights=weights)
        times = [h["memory"]["event_time"] for h in hits]
        assert times == sorted(times, reverse=True) and hits[0]["parts"]["recency"] > hits[1]["parts"]["recency"]

    async def test_mmr_trades_a_near_repeat_for_something_new(self, client: httpx.AsyncClient, world: dict[str, Any]) -> None:
        plain = contents(await search(client, "Sara's cat Miso and tuna", USER, limit=2, mode="semantic"))
        assert all("Miso" in c for c in plain)  # the two near-repeats lead
        diverse = contents(await search(client, "Sara's cat Miso and tuna", USER, limit=2, mode="semantic", mmr=0.1))
        assert len(diverse) == 2 and sum("Miso" in c for c in diverse) == 1

    async def test_min_score_drops_weak_hits(self, client: httpx.AsyncClient, world: dict[str, Any]) -> None:
        hits = await search(client, "what does Miso eat", USER, limit=10)
        cut = hits[1]["score"]
        kept = await search(client, "what does Miso eat", USER, limit=10, min_score=cut)
        assert kept and all(h["score"] >= cut for h in kept) and len(kept) < len(hits)


class TestFilters:
    QUERY = "Sara"

    async def ids(self, client: httpx.AsyncClient, **filters: Any) -> set[str]:
        return {h["memory"]["content"][:12] for h in await search(client, self.QUERY, USER, limit=20, **filters)}

    async def test_each_filter_keeps_only_what_it_names(self, client: httpx.AsyncClient, world: dict[str, Any]) -> None:
        cat, fed, cello, router = "Sara's cat M", "Every mornin", "Sara plays t", "To reset the"
        assert await self.ids(client, session_id=world["web"]) == {cat}
        assert await self.ids(client, agent_id="helper") == {fed}
        assert await self.ids(client, types=["semantic"]) == {cat, cello}
        assert await self.ids(client, types=["procedural", "episodic"]) == {fed, router}
        assert await self.ids(client, topics=["music"]) == {cello}
        assert await self.ids(client, metadata={"channel": "app"}) == {fed}
        assert await self.ids(client, metadata={"pinned": True}) == {cat}
        assert await self.ids(client, after="2023-03-01T18:00:00Z") == {fed, cello}  # at or after
        assert await self.ids(client, before="2023-03-01T18:00:00Z") == {cat, router}  # strictly before
        assert await self.ids(client, after="2023-01-01T00:00:00Z", before="2023-02-01T00:00:00Z") == {cat}
        assert await self.ids(client, topics=["music"], types=["procedural"]) == set()


class TestBadRequests:
    @pytest.mark.parametrize(
        "extra",
        [
            {"mode": "fuzzy"},
            {"weights": {"semantic": -1}},
            {"weights": {"keyword": 11}},
            {"weights": {"recency_half_life_days": 0}},
            {"weights": {"unknown": 1}},
            {"mmr": 1.5},
            {"limit": 0},
            {"limit": 101},
            {"after": "2023-02-01T00:00:00Z", "before": "2023-01-01T00:00:00Z"},
            {"types": ["nonsense"]},
            {"sources": []},
            {"sources": ["emails"]},
            {"metadata": {"bad key": 1}},
            {"surprise": True},
        ],
    )
    async def test_is_a_422_problem(self, client: httpx.AsyncClient, extra: dict[str, Any]) -> None:
        response = await client.post("/v1/memories/search", json={"query": "x", "user_id": USER, **extra})
        assert_problem(response, 422)

    async def test_a_blank_query_or_no_user_is_422(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/v1/memories/search", json={"query": "  ", "user_id": USER}), 422)
        assert_problem(await client.post("/v1/memories/search", json={"query": "cats"}), 422)
