"""The experiment-only pieces of bench/ranking_lab.py: index-text switches and neighbour fetching."""

from __future__ import annotations

from bench.ranking_lab import index_texts, neighbours_to_fetch
from service.domain.ranking import Candidate, rank
from tests.unit.test_ranking import BARE, payload, plan


def test_index_texts_default_to_the_content() -> None:
    t = index_texts(" I painted a sunrise. [image: a lake] ", speaker="Mel", previous="What did you paint?")
    assert t.dense == t.sparse == "I painted a sunrise. [image: a lake]"
    t = index_texts("hi there", speaker="Mel", previous="hello", include_speaker=True, include_previous=True)
    assert t.dense == "hello\nMel: hi there"


def test_neighbours_to_fetch_lists_missing_adjacent_turns_of_the_best() -> None:
    dense = [
        Candidate("a", 0.9, payload(session="s1", seq=4)),
        Candidate("b", 0.8, payload(session="s1", seq=5)),
        Candidate("c", 0.1, payload(session="s2", seq=0)),
    ]
    ranked = rank(plan(), dense, [], BARE)
    assert neighbours_to_fetch(ranked, top=2) == [("s1", 3), ("s1", 6)]
    assert neighbours_to_fetch(ranked, top=3) == [("s1", 3), ("s1", 6), ("s2", 1)]
