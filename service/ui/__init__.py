"""The memory inspector: a static page, served at /ui, that reads the service's public /v1 API."""
