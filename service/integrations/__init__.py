"""Adapters that put the service behind other protocols (MCP)."""
