"""`memory-service keys create | list | revoke` and `serve`'s refusal to expose an open API."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import cli
from service.embedding.sentence_transformer import SentenceTransformerEmbedder
from service.settings import Settings
from tests.api.auth_fixtures import bearer
from tests.api.helpers import assert_problem
from tests.conftest import app_for, start


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The environment `memory-service` reads: the embedded default in a fresh data folder."""
    for name in ("MEMORY_DATABASE_URL", "MEMORY_REDIS_URL", "MEMORY_QDRANT_URL", "MEMORY_AUTH_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMORY_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    return Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]


class TestKeysCommand:
    async def test_a_created_key_works_until_revoked(
        self, cli_env: Settings, embedder: SentenceTransformerEmbedder, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert await _run("keys", "create", "--tenant", "acme", "--name", "bot") == 0
        key = capsys.readouterr().out.strip()
        assert key.startswith("msk_") and len(key) > 40
        assert await _run("keys", "list", "--tenant", "acme") == 0
        (line,) = capsys.readouterr().out.strip().splitlines()
        key_id, tenant, role, _prefix, name, state = line.split("\t")
        assert (tenant, role, name, state) == ("acme", "client", "bot", "active") and key not in line
        async with start(app_for(cli_env, embedder)) as client:
            made = await client.post("/v1/sessions", json={"user_id": "u1"}, headers=bearer(key))
            assert made.status_code == 201
            assert_problem(await client.get("/v1/admin/keys", headers=bearer(key)), 403)
            assert await _run("keys", "revoke", key_id) == 0
            assert_problem(await client.get("/v1/sessions", headers=bearer(key)), 401)

    async def test_revoking_an_unknown_key_fails(self, cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        assert await _run("keys", "revoke", "no-such-id") == 1
        assert "does not exist" in capsys.readouterr().out


class TestServeRefusesAnOpenPublicPort:
    def test_a_public_address_without_auth_needs_insecure(
        self, cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("MEMORY_AUTH_DISABLED", "true")
        assert cli.main(["serve", "--host", "0.0.0.0", "--no-migrate"]) == 2
        assert "--insecure" in capsys.readouterr().err

    @pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
    def test_loopback_is_allowed(self, host: str) -> None:
        assert cli._loopback(host)  # noqa: SLF001

    @pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "example.com", "::"])
    def test_others_are_not(self, host: str) -> None:
        assert not cli._loopback(host)  # noqa: SLF001


async def _run(*argv: str) -> int:
    """`memory-service ARGV` in a worker thread (it runs its own event loop)."""
    import asyncio

    return await asyncio.to_thread(cli.main, list(argv))
