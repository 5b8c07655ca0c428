"""BM25 sparse encoder: saturated term frequencies for documents, unit weights for queries."""

from __future__ import annotations

import math

import pytest

from service.embedding.sparse import Bm25Encoder
from service.embedding.text import term_id
from service.storage.records import SparseVector


def _as_dict(vec: SparseVector) -> dict[int, float]:
    assert len(vec.indices) == len(vec.values)
    return dict(zip(vec.indices, vec.values, strict=True))


def test_document_weights_follow_the_bm25_formula() -> None:
    enc = Bm25Encoder(k1=1.2, b=0.75, avgdl=3.0)
    # dl = 3 = avgdl, so the length factor is 1: tf * 2.2 / (tf + 1.2)
    weights = enc.document_weights("apples apples bananas")
    assert weights == pytest.approx({"appl": 2 * 2.2 / 3.2, "banana": 1.0})


def test_longer_documents_weigh_a_term_less_unless_b_is_zero() -> None:
    enc = Bm25Encoder(k1=1.2, b=0.75, avgdl=4.0)
    short = enc.document_weights("kayak river")["kayak"]
    long = enc.document_weights("kayak river canyon trip weekend friends")["kayak"]
    assert short > long
    # dl = 6, avgdl = 4: 2.2 / (1 + 1.2 * (0.25 + 0.75 * 1.5))
    assert long == pytest.approx(2.2 / (1 + 1.2 * (0.25 + 0.75 * 1.5)))
    flat = Bm25Encoder(k1=1.2, b=0.0, avgdl=4.0)
    assert flat.document_weights("kayak river")["kayak"] == pytest.approx(
        flat.document_weights("kayak river canyon trip weekend friends")["kayak"]
    )


def test_term_frequency_saturates_towards_k1_plus_one() -> None:
    enc = Bm25Encoder(k1=1.2, b=0.0)
    w1 = enc.document_weights("jazz")["jazz"]
    w5 = enc.document_weights("jazz " * 5)["jazz"]
    w50 = enc.document_weights("jazz " * 50)["jazz"]
    assert w1 < w5 < w50 < 2.2
    assert w50 - w5 < w5 - w1


def test_encode_document_uses_stable_term_ids_sorted() -> None:
    vec = Bm25Encoder(avgdl=2.0).encode_document("Pottery class pottery")
    assert vec.indices == sorted(vec.indices)
    assert set(vec.indices) == {term_id("potteri"), term_id("class")}
    assert len(set(vec.indices)) == len(vec.indices)


def test_query_has_unit_weight_per_unique_term() -> None:
    vec = Bm25Encoder().encode_query("What pottery classes did she take? Pottery!")
    assert _as_dict(vec) == {term_id("potteri"): 1.0, term_id("class"): 1.0, term_id("take"): 1.0}


def test_empty_and_stopword_only_texts_give_empty_vectors() -> None:
    enc = Bm25Encoder()
    assert enc.encode_document("") == SparseVector(indices=[], values=[])
    assert enc.encode_query("what is it?") == SparseVector(indices=[], values=[])


def test_dot_product_with_idf_is_okapi_bm25() -> None:
    """What the engine computes (query weights x IDF x document weights) equals BM25."""
    docs = ["the cat sat on the mat", "dogs chase cats", "a bird sang", "cats and cats"]
    k1, b = 1.5, 0.75
    enc = Bm25Encoder(k1=k1, b=b, avgdl=2.0)
    vectors = [_as_dict(enc.encode_document(d)) for d in docs]
    n_docs = len(docs)
    df: dict[int, int] = {}
    for v in vectors:
        for t in v:
            df[t] = df.get(t, 0) + 1
    idf = {t: math.log(1 + (n_docs - n + 0.5) / (n + 0.5)) for t, n in df.items()}
    query = _as_dict(enc.encode_query("cats"))
    scores = [sum(w * idf[t] * v.get(t, 0.0) for t, w in query.items()) for v in vectors]
    # Hand-computed BM25 for the term "cat" (n = 3 of 4 documents).
    cat_idf = math.log(1 + (4 - 3 + 0.5) / (3 + 0.5))
    expected_doc0 = cat_idf * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 3 / 2.0))  # cat sat mat
    expected_doc3 = cat_idf * 2 * (k1 + 1) / (2 + k1 * (1 - b + b * 2 / 2.0))  # cats cats
    assert scores[0] == pytest.approx(expected_doc0)
    assert scores[3] == pytest.approx(expected_doc3)
    assert scores[2] == 0.0
    assert scores[3] > scores[0]


@pytest.mark.parametrize("kwargs", [{"k1": -0.1}, {"b": 1.5}, {"b": -0.1}, {"avgdl": 0.0}])
def test_invalid_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Bm25Encoder(**kwargs)


def test_custom_tokenizer_is_used() -> None:
    enc = Bm25Encoder(tokenizer=str.split)
    assert set(enc.query_weights("What Is")) == {"What", "Is"}
