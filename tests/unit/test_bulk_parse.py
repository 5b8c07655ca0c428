"""Parsing one line of ``POST /v1/memories/import``: the quick path must accept exactly what the
strict (pydantic) path accepts, read it the same, and leave every error to the strict path's words."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from service.domain.bulk import BulkLimits, _parse_strictly, parse
from service.domain.errors import InvalidInput, LimitExceeded

DIM = 4
LIMITS = BulkLimits(dimension=DIM, max_content_chars=100)
HEAD = {"user_id": "u1", "content": "Ines keeps bees.", "metadata": {"source": "crm"}}


def raw(vector: Any = None, **fields: Any) -> bytes:
    """A line; ``vector`` as JSON text when it is bytes (for what json.dumps cannot write)."""
    line = HEAD | fields
    if isinstance(vector, bytes):
        return json.dumps(line).encode()[:-1] + b', "vector": ' + vector + b"}"
    return json.dumps(line | ({} if vector is None else {"vector": vector})).encode()


def direction(vector: list[float]) -> list[float]:
    length = math.hypot(*vector)
    return [x / length for x in vector]


class TestTheQuickPath:
    def test_a_usual_line_keeps_its_numbers_for_the_engine_to_normalise(self) -> None:
        line, vector = parse(raw([0.5, 0.5, 0.5, 0.49999]), 1, LIMITS)
        assert vector == [0.5, 0.5, 0.5, 0.49999]
        assert (line.user_id, line.content, line.metadata, line.vector) == ("u1", "Ines keeps bees.", {"source": "crm"}, None)

    @pytest.mark.parametrize(
        "vector",
        [
            [0.1, 0.2, 0.3, 0.4],
            [7.5, -2.0, 0.0, 1e-3],
            [1, 0, 0, 0],  # integers are numbers too
            [1e-7, 2e-7, 0.0, 0.0],  # too short to leave to the engine: normalised here
            [1e-3, 2e-3, 0.0, 0.0],  # Edge leaves a length under 3.5e-4 as it is
            [300.0, 400.0, 0.0, 0.0],
            [1e200, 1e200, 0.0, 0.0],  # too long for f32: normalised here
            b"[true, false, 0.5, 0.5]",  # pydantic reads booleans as 1.0 and 0.0
            b'["0.5", "0.25", 0.5, 0.5]',  # and numeric strings as their numbers
        ],
    )
    def test_reads_every_vector_as_the_strict_path_does(self, vector: Any) -> None:
        quick_line, quick = parse(raw(vector), 1, LIMITS)
        strict_line, strict = _parse_strictly(raw(vector), 1, LIMITS)
        assert quick is not None and strict is not None
        assert quick_line.model_dump(exclude={"vector"}) == strict_line.model_dump(exclude={"vector"})
        assert direction(quick) == pytest.approx(strict, rel=1e-12)
        assert all(type(x) in (float, int) for x in quick)  # never a bool, which qdrant-client refuses
        length = math.hypot(*quick)
        assert 1e-2 <= length <= 1e2  # what the engines are left to normalise

    def test_a_line_without_a_vector(self) -> None:
        for line in (raw(), raw(None) + b"", json.dumps(HEAD | {"vector": None}).encode()):
            parsed, vector = parse(line, 1, LIMITS)
            assert vector is None and parsed.content == HEAD["content"]

    def test_an_integer_beyond_64_bits_is_refused_as_before(self) -> None:
        line = raw([0.5] * DIM, metadata={"n": 2**64})
        with pytest.raises(InvalidInput, match=r"^line 3: metadata"):
            parse(line, 3, LIMITS)


class TestBadLinesGetTheStrictWords:
    @pytest.mark.parametrize(
        ("vector", "says"),
        [
            ([0.1, 0.2, 0.3], "vector has 3 numbers; the embedding model's dimension is 4"),
            ([0.1] * 5, "vector has 5 numbers"),
            ([0.0] * DIM, "all zeros"),
            (b"[0.1, 0.2, 0.3, NaN]", "vector.3"),
            (b"[0.1, 0.2, 0.3, Infinity]", "vector.3"),
            (b"[0.1, 0.2, 0.3, 1e309]", "finite"),
            ([1e308] * DIM, "too long to normalise"),
            (["a", 0.1, 0.2, 0.3], "vector.0"),
            ([0.1, None, 0.2, 0.3], "vector.1"),
            ([0.1, [0.2], 0.2, 0.3], "vector.1"),
            ([0.1, {"x": 1}, 0.2, 0.3], "vector.1"),
            ([], "vector"),
            ("0.5", "vector"),
            ({"dense": [0.1] * DIM}, "vector"),
        ],
    )
    def test_a_bad_vector(self, vector: Any, says: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            parse(raw(vector), 7, LIMITS)
        assert str(caught.value).startswith("line 7:") and says in str(caught.value), str(caught.value)
        with pytest.raises(InvalidInput) as strict:
            _parse_strictly(raw(vector), 7, LIMITS)
        assert str(caught.value) == str(strict.value)

    @pytest.mark.parametrize(
        ("line", "says"),
        [
            (b"not json", "line 2: line"),
            (b"[1, 2]", "line 2: line"),
            (b'{"user_id": "u1"}', "line 2: content"),
            (b'{"user_id": "u1", "content": "x", "colour": "red"}', "line 2: colour"),
            (b'{"user_id": "u1", "content": "x", "id": "nope", "vector": [1, 0, 0, 0]}', "line 2: id"),
        ],
    )
    def test_a_bad_line(self, line: bytes, says: str) -> None:
        with pytest.raises(InvalidInput, match=f"^{says}"):
            parse(line, 2, LIMITS)

    def test_content_over_the_limit_after_a_good_vector(self) -> None:
        with pytest.raises(LimitExceeded, match=r"^line 4: content has 101 characters"):
            parse(raw([0.5] * DIM, content="x" * 101), 4, LIMITS)

    def test_a_bad_vector_is_named_before_a_long_content_as_before(self) -> None:
        with pytest.raises(InvalidInput, match=r"vector\.0"):
            parse(raw(["a", 0.0, 0.0, 0.0], content="x" * 101), 4, LIMITS)

