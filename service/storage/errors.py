"""Errors the storage layer raises for bad input that reached it (the domain maps them)."""


class InvalidCursor(ValueError):
    """A pagination cursor that this server did not issue, or that belongs to another listing."""
