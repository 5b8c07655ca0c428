"""How a buffered message is written into a buffer entry and read back."""

from __future__ import annotations

from datetime import datetime

import orjson

from service.storage.records import BufferedMessage


def dump(message: BufferedMessage) -> bytes:
    return orjson.dumps(
        {
            "id": message.id,
            "seq": message.seq,
            "role": message.role,
            "content": message.content,
            "name": message.name,
            "created_at": message.created_at.isoformat(),
            "tokens": message.token_count,
        }
    )


def load(raw: bytes | str) -> BufferedMessage:
    doc = orjson.loads(raw)
    return BufferedMessage(
        id=doc["id"],
        seq=doc["seq"],
        role=doc["role"],
        content=doc["content"],
        name=doc["name"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        token_count=doc["tokens"],
    )


def unique(messages: list[BufferedMessage]) -> list[BufferedMessage]:
    """The messages with repeated ids dropped (first one kept), order unchanged."""
    seen: set[str] = set()
    kept = []
    for message in messages:
        if message.id not in seen:
            seen.add(message.id)
            kept.append(message)
    return kept
