"""HashingEmbedder: the deterministic fake embedder used by unit tests of logic."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.embedding.hashing import HashingEmbedder
from service.storage.ports import Embedder


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_satisfies_the_embedder_port() -> None:
    embedder: Embedder = HashingEmbedder()
    assert embedder.dimension == 384
    await embedder.close()


async def test_vectors_have_the_dimension_and_unit_length() -> None:
    texts = ["I love dogs", "", "!!!", "a", "Ünïcödé wörds 日本語 テキスト"]
    vectors = await HashingEmbedder(dimension=64).embed(texts)
    assert len(vectors) == len(texts)
    for vector in vectors:
        assert len(vector) == 64
        assert math.isclose(math.sqrt(_dot(vector, vector)), 1.0, rel_tol=1e-9)


async def test_empty_input_gives_no_vectors() -> None:
    assert await HashingEmbedder().embed([]) == []


async def test_identical_texts_give_identical_vectors() -> None:
    first, second = await HashingEmbedder().embed(["The cat sat on the mat", "The cat sat on the mat"])
    assert first == second


async def test_case_is_ignored() -> None:
    lower, upper = await HashingEmbedder().embed(["paris in spring", "PARIS IN SPRING"])
    assert lower == upper


async def test_different_texts_give_different_vectors() -> None:
    a, b = await HashingEmbedder().embed(["hello world", "goodbye moon"])
    assert a != b


async def test_overlapping_texts_score_higher_than_unrelated_ones() -> None:
    query, overlapping, unrelated = await HashingEmbedder().embed(
        ["my dog loves long walks", "the dog loves walks in the park", "quarterly revenue forecast spreadsheet"]
    )
    assert _dot(query, overlapping) > _dot(query, unrelated) + 0.2


async def test_shared_word_pieces_raise_similarity() -> None:
    query, inflected, unrelated = await HashingEmbedder().embed(["dogs", "dog", "cat"])
    assert _dot(query, inflected) > _dot(query, unrelated)


def test_vectors_are_the_same_in_another_process() -> None:
    code = (
        "import json; from service.embedding.hashing import HashingEmbedder;"
        "print(json.dumps(HashingEmbedder(16).vector('stable across processes')))"
    )
    env = os.environ | {"PYTHONHASHSEED": "12345"}  # str hashes differ; ours must not
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=root)
    assert json.loads(other.stdout) == HashingEmbedder(16).vector("stable across processes")


def test_dimension_must_be_positive() -> None:
    with pytest.raises(ValueError, match="dimension"):
        HashingEmbedder(dimension=0)
