"""Errors the storage layer raises for bad input that reached it, or for a backend that did not answer."""


class InvalidCursor(ValueError):
    """A pagination cursor that this server did not issue, or that belongs to another listing."""


class Unreachable(Exception):
    """A backend did not answer (refused, reset or timed out): the request may be retried later."""


class VectorIndexUnreachable(Unreachable):
    """The vector index (Qdrant) did not answer."""


class BufferUnreachable(Unreachable):
    """The short-term buffer (Redis) did not answer, or failed moments ago and is left alone a while."""
