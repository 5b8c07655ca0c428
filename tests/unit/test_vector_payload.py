"""The vector payload of a memory: what the engines filter and rank on, nothing without a value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.domain.indexing import payload
from service.domain.memories import NewMemory, build

AT = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_fields_without_a_value_are_left_out() -> None:
    memory = build("t1", NewMemory(user_id="u1", content="Ann likes tea.", type="semantic", importance=0.4), AT)
    assert payload(memory) == {
        "tenant_id": "t1",
        "user_id": "u1",
        "type": "semantic",
        "event_time": AT.timestamp(),
        "importance": 0.4,
    }


def test_every_field_with_a_value_is_kept() -> None:
    new = NewMemory(
        user_id="u1",
        content="Ann likes tea.",
        type="episodic",
        session_id="s1",
        agent_id="a1",
        topic="drinks",
        importance=0.0,  # a zero is a value
        expires_at=AT + timedelta(days=1),
        metadata={"source": "chat", "weight": float("nan"), "flag": False},
    )
    kept = payload(build("t1", new, AT))
    assert kept["importance"] == 0.0 and kept["session_id"] == "s1" and kept["agent_id"] == "a1"
    assert kept["topic"] == "drinks" and kept["expires_at"] == (AT + timedelta(days=1)).timestamp()
    assert kept["metadata"] == {"source": "chat", "flag": False}  # NaN is not filterable; False is a value
