"""Contract suite for the VectorIndex port, run on Qdrant Edge and on qdrant-client local mode."""

from __future__ import annotations

import asyncio
import math
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient

from service.storage.ports import VectorIndex
from service.storage.records import SparseVector, VectorFilter, VectorPoint, VectorQuery
from service.storage.vectors.qdrant_edge import QdrantEdgeIndex
from service.storage.vectors.qdrant_server import QdrantServerIndex

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

DIM = 8
SHM = Path("/dev/shm")
T1, T2 = "tenant-1", "tenant-2"


def unit(*weights: float) -> list[float]:
    """A DIM-sized vector from its leading components."""
    return list(weights) + [0.0] * (DIM - len(weights))


def new_id() -> str:
    return str(uuid.uuid4())


def point(
    id: str | None = None,
    dense: list[float] | None = None,
    sparse: dict[int, float] | None = None,
    **payload: Any,
) -> VectorPoint:
    """A point with a full default payload; keyword arguments override payload fields."""
    base: dict[str, Any] = {
        "tenant_id": T1,
        "user_id": "u1",
        "session_id": "s1",
        "agent_id": "a1",
        "type": "fact",
        "topic": "food",
        "event_time": 100.0,
        "expires_at": None,
        "metadata": {},
    }
    base.update(payload)
    terms = sparse if sparse is not None else {1: 1.0}
    return VectorPoint(
        id=id or new_id(),
        dense=dense or unit(1.0),
        sparse=SparseVector(list(terms), list(terms.values())),
        payload=base,
    )


def sparse_query(*terms: int) -> SparseVector:
    return SparseVector(list(terms), [1.0] * len(terms))


async def matching(index: VectorIndex, flt: VectorFilter) -> set[str]:
    """Ids a filter lets through, checked to be the same on the dense and the sparse path."""
    dense = await index.search(VectorQuery(filter=flt, limit=100, dense=unit(1.0)))
    sparse = await index.search(VectorQuery(filter=flt, limit=100, sparse=sparse_query(1)))
    assert {h.id for h in dense} == {h.id for h in sparse}
    return {h.id for h in dense}


@pytest.fixture
def shard_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for an Edge shard: on tmpfs when there is one, since the shard fsyncs often."""
    if not SHM.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="edge-shard-", dir=SHM))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["edge", "qdrant-local"])
async def index(request: pytest.FixtureRequest, shard_dir: Path) -> AsyncIterator[VectorIndex]:
    """An empty, ensured index on each engine."""
    idx: VectorIndex
    if request.param == "edge":
        idx = QdrantEdgeIndex(shard_dir / "shard", DIM)
    else:
        idx = QdrantServerIndex(AsyncQdrantClient(location=":memory:"), "memories", DIM)
    await idx.ensure()
    yield idx
    await idx.close()


class TestDense:
    async def test_orders_by_cosine(self, index: VectorIndex) -> None:
        same, diagonal, orthogonal, opposite = (point(dense=v) for v in (unit(2.0), unit(1, 1), unit(0, 1), unit(-1)))
        await index.upsert([orthogonal, opposite, same, diagonal])
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=10, dense=unit(1.0)))
        assert [h.id for h in hits] == [same.id, diagonal.id, orthogonal.id, opposite.id]
        expected = [1.0, 1 / math.sqrt(2), 0.0, -1.0]
        assert [h.score for h in hits] == pytest.approx(expected, abs=1e-5)

    @pytest.mark.parametrize("scale", [1e-2, 7.5, 1e2])
    async def test_stored_vectors_are_normalised(self, index: VectorIndex, scale: float) -> None:
        # The bulk import hands vectors of length 1e-2 to 1e2 over as they are (service.domain.bulk).
        given, unit_copy = point(dense=[scale * x for x in unit(3, 4)]), point(dense=unit(0.6, 0.8))
        await index.upsert([given, unit_copy])
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=10, dense=unit(1.0)))
        assert {h.id: h.score for h in hits} == pytest.approx({given.id: 0.6, unit_copy.id: 0.6}, abs=1e-5)

    async def test_limit_and_payload(self, index: VectorIndex) -> None:
        points = [point(dense=unit(1.0, i / 10), metadata={"n": i}) for i in range(5)]
        await index.upsert(points)
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=2, dense=unit(1.0)))
        assert [h.id for h in hits] == [points[0].id, points[1].id]
        assert hits[0].payload == points[0].payload

    @pytest.mark.parametrize("side", ["dense", "sparse"])
    async def test_hits_carry_only_the_payload_fields_asked_for(self, index: VectorIndex, side: str) -> None:
        stored = point(speaker="Ann", metadata={"n": 1})
        await index.upsert([stored])
        probe = {"dense": unit(1.0)} if side == "dense" else {"sparse": sparse_query(1)}
        fields = ("speaker", "event_time", "source")  # a chunk's key, absent from this point
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=5, payload_fields=fields, **probe))
        assert [h.payload for h in hits] == [{"speaker": "Ann", "event_time": 100.0}]


class TestSparse:
    async def test_idf_lets_a_rare_term_beat_a_common_one(self, index: VectorIndex) -> None:
        common_heavy = point(sparse={1: 2.0})
        rare = point(sparse={2: 1.0})
        fillers = [point(sparse={1: 1.0}) for _ in range(3)]
        await index.upsert([common_heavy, rare, *fillers])
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=10, sparse=sparse_query(1, 2)))
        assert [h.id for h in hits[:2]] == [rare.id, common_heavy.id]
        # BM25 idf = ln(1 + (N - n + 0.5) / (n + 0.5)) with N = 5 documents.
        idf_rare, idf_common = math.log(1 + 4.5 / 1.5), math.log(1 + 1.5 / 4.5)
        assert hits[0].score == pytest.approx(idf_rare, rel=1e-4)
        assert hits[1].score == pytest.approx(2.0 * idf_common, rel=1e-4)

    async def test_idf_counts_only_the_tenants_points(self, index: VectorIndex) -> None:
        rare = point(sparse={2: 1.0})
        await index.upsert([rare, *(point(sparse={1: 1.0}) for _ in range(3))])
        await index.upsert([point(tenant_id=T2, sparse={2: 1.0}) for _ in range(20)])
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=10, sparse=sparse_query(2)))
        assert [h.id for h in hits] == [rare.id]
        assert hits[0].score == pytest.approx(math.log(1 + 3.5 / 1.5), rel=1e-4)

    async def test_only_documents_with_a_query_term_match(self, index: VectorIndex) -> None:
        hit, miss = point(sparse={7: 1.0}), point(sparse={8: 1.0})
        await index.upsert([hit, miss])
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=10, sparse=sparse_query(7, 9)))
        assert [h.id for h in hits] == [hit.id]

    async def test_empty_query_returns_nothing(self, index: VectorIndex) -> None:
        await index.upsert([point()])
        empty = SparseVector([], [])
        assert await index.search(VectorQuery(filter=VectorFilter(T1), limit=10, sparse=empty)) == []

    async def test_malformed_sparse_vector_is_refused(self, index: VectorIndex) -> None:
        bad = VectorPoint(new_id(), unit(1.0), SparseVector([1, 2], [1.0]), {"tenant_id": T1})
        with pytest.raises(ValueError):
            await index.upsert([bad])
        duplicate = VectorPoint(new_id(), unit(1.0), SparseVector([3, 3], [1.0, 1.0]), {"tenant_id": T1})
        with pytest.raises(ValueError):
            await index.upsert([duplicate])
        good = point()
        await index.upsert([good])
        assert await matching(index, VectorFilter(T1)) == {good.id}


class TestQueryShape:
    @pytest.mark.parametrize("dense, sparse", [(None, None), (unit(1.0), sparse_query(1))])
    async def test_exactly_one_vector(self, index: VectorIndex, dense: Any, sparse: Any) -> None:
        with pytest.raises(ValueError):
            await index.search(VectorQuery(filter=VectorFilter(T1), limit=1, dense=dense, sparse=sparse))


class TestWrites:
    async def test_upsert_overwrites_an_existing_id(self, index: VectorIndex) -> None:
        pid = new_id()
        await index.upsert([point(id=pid, dense=unit(1.0), type="fact")])
        await index.upsert([point(id=pid, dense=unit(0, 1.0), type="preference")])
        assert await index.count(T1) == 1
        hits = await index.search(VectorQuery(filter=VectorFilter(T1), limit=10, dense=unit(0, 1.0)))
        assert [h.id for h in hits] == [pid]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].payload["type"] == "preference"

    async def test_delete(self, index: VectorIndex) -> None:
        keep, gone1, gone2 = point(), point(), point()
        await index.upsert([keep, gone1, gone2])
        await index.delete([gone1.id, gone2.id, new_id()])
        assert await matching(index, VectorFilter(T1)) == {keep.id}
        assert await index.count(T1) == 1
        await index.delete([])
        assert await index.count(T1) == 1

    async def test_count_is_per_tenant(self, index: VectorIndex) -> None:
        await index.upsert([point() for _ in range(3)] + [point(tenant_id=T2) for _ in range(2)])
        assert (await index.count(T1), await index.count(T2), await index.count("nobody")) == (3, 2, 0)

    async def test_erase_user_removes_only_that_users_points(self, index: VectorIndex) -> None:
        kept = [point(user_id="u2"), point(tenant_id=T2, user_id="u1")]
        await index.upsert([point(user_id="u1") for _ in range(3)] + kept)
        assert await index.erase_user(T1, "u1") == 3
        assert await matching(index, VectorFilter(T1, user_id="u1")) == set()
        assert await matching(index, VectorFilter(T1, user_id="u2")) == {kept[0].id}
        assert await matching(index, VectorFilter(T2, user_id="u1")) == {kept[1].id}
        assert await index.erase_user(T1, "u1") == 0

    async def test_reset_drops_everything_and_keeps_working(self, index: VectorIndex) -> None:
        await index.upsert([point(), point(tenant_id=T2)])
        await index.reset()
        assert (await index.count(T1), await index.count(T2)) == (0, 0)
        assert await matching(index, VectorFilter(T1)) == set()
        fresh = point(user_id="u9")
        await index.upsert([fresh])
        assert await matching(index, VectorFilter(T1, user_id="u9")) == {fresh.id}

    async def test_ensure_is_idempotent(self, index: VectorIndex) -> None:
        kept = point()
        await index.upsert([kept])
        await index.ensure()
        assert await matching(index, VectorFilter(T1)) == {kept.id}

    async def test_concurrent_reads_and_writes(self, index: VectorIndex) -> None:
        batches = [[point(user_id=f"u{b}") for _ in range(20)] for b in range(10)]
        reads = [index.search(VectorQuery(filter=VectorFilter(T1), limit=5, dense=unit(1.0))) for _ in range(30)]
        await asyncio.gather(*(index.upsert(b) for b in batches), *reads)
        assert await index.count(T1) == 200
        assert len(await matching(index, VectorFilter(T1, user_id="u3"))) == 20


class TestFilters:
    async def test_tenant_isolation(self, index: VectorIndex) -> None:
        mine, theirs = point(), point(tenant_id=T2)
        await index.upsert([mine, theirs])
        assert await matching(index, VectorFilter(T1)) == {mine.id}
        assert await matching(index, VectorFilter(T2)) == {theirs.id}

    @pytest.mark.parametrize("field", ["user_id", "session_id", "agent_id"])
    async def test_equality(self, index: VectorIndex, field: str) -> None:
        a, b = point(**{field: "x"}), point(**{field: "y"})
        await index.upsert([a, b])
        assert await matching(index, VectorFilter(T1, **{field: "x"})) == {a.id}
        assert await matching(index, VectorFilter(T1)) == {a.id, b.id}

    async def test_agent_filter_skips_points_without_agent(self, index: VectorIndex) -> None:
        with_agent, without = point(agent_id="a1"), point(agent_id=None)
        await index.upsert([with_agent, without])
        assert await matching(index, VectorFilter(T1, agent_id="a1")) == {with_agent.id}

    async def test_types_any_of(self, index: VectorIndex) -> None:
        fact, pref, episode = point(type="fact"), point(type="preference"), point(type="episode")
        await index.upsert([fact, pref, episode])
        assert await matching(index, VectorFilter(T1, types=("fact", "episode"))) == {fact.id, episode.id}
        assert await matching(index, VectorFilter(T1, types=())) == set()

    async def test_topics_any_of(self, index: VectorIndex) -> None:
        food, work, travel = point(topic="food"), point(topic="work"), point(topic="travel")
        await index.upsert([food, work, travel])
        assert await matching(index, VectorFilter(T1, topics=("work",))) == {work.id}
        assert await matching(index, VectorFilter(T1, topics=("work", "travel"))) == {work.id, travel.id}

    @pytest.mark.parametrize(
        "value, other", [("blue", "red"), (3, 4), (2.5, 3.5), (True, False), (False, True)]
    )
    async def test_metadata_equality(self, index: VectorIndex, value: Any, other: Any) -> None:
        same, different, missing = point(metadata={"k": value}), point(metadata={"k": other}), point()
        await index.upsert([same, different, missing])
        assert await matching(index, VectorFilter(T1, metadata={"k": value})) == {same.id}

    async def test_metadata_keys_combine(self, index: VectorIndex) -> None:
        both = point(metadata={"lang": "en", "pinned": True})
        one = point(metadata={"lang": "en", "pinned": False})
        await index.upsert([both, one])
        assert await matching(index, VectorFilter(T1, metadata={"lang": "en"})) == {both.id, one.id}
        assert await matching(index, VectorFilter(T1, metadata={"lang": "en", "pinned": True})) == {both.id}

    async def test_event_time_bounds(self, index: VectorIndex) -> None:
        p10, p20, p30 = (point(event_time=t) for t in (10.0, 20.0, 30.0))
        await index.upsert([p10, p20, p30])
        assert await matching(index, VectorFilter(T1, after=20.0)) == {p20.id, p30.id}
        assert await matching(index, VectorFilter(T1, before=20.0)) == {p10.id}
        assert await matching(index, VectorFilter(T1, after=10.0, before=30.0)) == {p10.id, p20.id}
        assert await matching(index, VectorFilter(T1, after=20.5, before=29.5)) == set()

    async def test_alive_at(self, index: VectorIndex) -> None:
        never = point(expires_at=None)
        absent = point()
        del absent.payload["expires_at"]
        past, future = point(expires_at=50.0), point(expires_at=150.0)
        await index.upsert([never, absent, past, future])
        assert await matching(index, VectorFilter(T1, alive_at=100.0)) == {never.id, absent.id, future.id}
        assert await matching(index, VectorFilter(T1, alive_at=150.0)) == {never.id, absent.id}
        assert await matching(index, VectorFilter(T1, alive_at=10.0)) == {never.id, absent.id, past.id, future.id}

    async def test_conditions_combine(self, index: VectorIndex) -> None:
        target = point(user_id="u2", type="preference", event_time=50.0, expires_at=500.0)
        decoys = [
            point(user_id="u1", type="preference", event_time=50.0),
            point(user_id="u2", type="fact", event_time=50.0),
            point(user_id="u2", type="preference", event_time=5.0),
            point(user_id="u2", type="preference", event_time=50.0, expires_at=60.0),
            point(tenant_id=T2, user_id="u2", type="preference", event_time=50.0),
        ]
        await index.upsert([target, *decoys])
        flt = VectorFilter(T1, user_id="u2", types=("preference",), after=10.0, alive_at=100.0)
        assert await matching(index, flt) == {target.id}


def chunk(document_id: str, user: str | None = "u1", namespace: str | None = None, tenant: str = T1) -> VectorPoint:
    """A knowledge-document chunk: typed by ``source``, owned by a user or shared in a namespace."""
    payload = {"tenant_id": tenant, "source": "document", "document_id": document_id, "chunk_index": 0,
               "title": "Guide", "heading": "", "user_id": user, "namespace": namespace}  # fmt: skip
    return VectorPoint(new_id(), unit(1.0), SparseVector([1], [1.0]), payload)


class TestDocumentChunks:
    async def test_memory_searches_never_see_chunks_and_chunk_searches_see_only_theirs(self, index: VectorIndex) -> None:
        memory = point()
        own, shared, other_ns, other_user = chunk("d1"), chunk("d2", None, "hr"), chunk("d3", None, "ops"), chunk("d4", "u2")
        await index.upsert([memory, own, shared, other_ns, other_user, chunk("d5", tenant=T2)])
        assert await matching(index, VectorFilter(T1, user_id="u1")) == {memory.id}
        assert await matching(index, VectorFilter(T1)) == {memory.id}
        assert await matching(index, VectorFilter(T1, user_id="u1", source="document")) == {own.id}
        docs = VectorFilter(T1, user_id="u1", source="document", namespaces=("hr",))
        assert await matching(index, docs) == {own.id, shared.id}
        assert await matching(index, VectorFilter(T1, source="document", namespaces=("ops", "hr"))) == {shared.id, other_ns.id}

    async def test_delete_document_removes_only_its_chunks(self, index: VectorIndex) -> None:
        first, second, memory = chunk("d1"), chunk("d2"), point()
        await index.upsert([first, second, memory, chunk("d1", tenant=T2)])
        await index.delete_document(T1, "d1")
        assert await matching(index, VectorFilter(T1, user_id="u1", source="document")) == {second.id}
        assert await matching(index, VectorFilter(T1, user_id="u1")) == {memory.id}
        assert await index.count(T2) == 1


class TestHealth:
    async def test_ping_true_while_open_false_after_close(self, index: VectorIndex) -> None:
        assert await index.ping() is True
        await index.close()
        assert await index.ping() is False


class TestEdgeShard:
    async def test_points_survive_a_restart(self, shard_dir: Path) -> None:
        first = QdrantEdgeIndex(shard_dir / "shard", DIM)
        await first.ensure()
        kept = point(user_id="u7", metadata={"pinned": True})
        await first.upsert([kept, point(tenant_id=T2)])
        await first.close()
        again = QdrantEdgeIndex(shard_dir / "shard", DIM)
        await again.ensure()
        assert await again.count(T1) == 1
        assert await matching(again, VectorFilter(T1, user_id="u7", metadata={"pinned": True})) == {kept.id}
        await again.close()

    async def test_payload_indexes_exist_after_ensure_and_reset(self, shard_dir: Path) -> None:
        index = QdrantEdgeIndex(shard_dir / "shard", DIM)
        await index.ensure()
        expected = {"tenant_id", "user_id", "session_id", "agent_id", "type", "topic", "event_time", "expires_at"}
        expected |= {"source", "document_id", "namespace"}
        assert set(index._require().info().payload_schema) == expected
        await index.reset()
        assert set(index._require().info().payload_schema) == expected
        await index.close()

    async def test_other_dimension_is_refused_until_reset(self, shard_dir: Path) -> None:
        first = QdrantEdgeIndex(shard_dir / "shard", DIM)
        await first.ensure()
        await first.upsert([point()])
        await first.close()
        wider = QdrantEdgeIndex(shard_dir / "shard", DIM * 2)
        with pytest.raises(RuntimeError, match="reset"):
            await wider.ensure()
        assert await wider.ping() is False
        await wider.reset()
        assert await wider.count(T1) == 0
        await wider.upsert([point(dense=[1.0] * DIM * 2)])
        assert await wider.count(T1) == 1
        await wider.close()

    async def test_optimizing_at_open_keeps_results(self, shard_dir: Path) -> None:
        index = QdrantEdgeIndex(shard_dir / "shard", DIM)
        await index.ensure()
        points = [point(dense=unit(1.0, i / 100)) for i in range(30)]
        for chunk in (points[:10], points[10:20], points[20:]):
            await index.upsert(chunk)
        await index.delete([points[0].id])
        await index.close()
        reopened = QdrantEdgeIndex(shard_dir / "shard", DIM)
        await reopened.ensure()
        assert await reopened.count(T1) == 29
        hits = await reopened.search(VectorQuery(filter=VectorFilter(T1), limit=3, dense=unit(1.0)))
        assert [h.id for h in hits] == [p.id for p in points[1:4]]
        await reopened.close()


class TestServerCollection:
    async def test_other_dimension_is_refused_until_reset(self) -> None:
        client = AsyncQdrantClient(location=":memory:")
        await QdrantServerIndex(client, "memories", DIM).ensure()
        wider = QdrantServerIndex(client, "memories", DIM * 2)
        with pytest.raises(RuntimeError, match="reset"):
            await wider.ensure()
        await wider.reset()
        await wider.upsert([point(dense=[1.0] * DIM * 2)])
        assert await wider.count(T1) == 1
        await wider.close()
