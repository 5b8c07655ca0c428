"""The SDK tests run against the embedded backend set: the client's behaviour does not depend on the engines."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
