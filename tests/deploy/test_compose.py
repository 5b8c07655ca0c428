"""docker-compose.yml: the seven services, pinned images, healthchecks, volumes and real settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO, interpolate_defaults, settings_from_env, unknown_env_names

COMPOSE = REPO / "docker-compose.yml"
SERVICES = {"api", "worker", "postgres", "redis", "qdrant", "prometheus", "grafana"}
BACKING = {"postgres", "redis", "qdrant"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


class TestServices:
    def test_exactly_the_seven_services(self, services: dict[str, Any]) -> None:
        assert set(services) == SERVICES

    def test_api_and_worker_build_the_same_image(self, services: dict[str, Any]) -> None:
        for name in ("api", "worker"):
            assert services[name]["build"] == ".", name
        assert services["api"]["image"] == services["worker"]["image"]

    @pytest.mark.parametrize("name", sorted(SERVICES - {"api", "worker"}))
    def test_third_party_images_are_pinned(self, services: dict[str, Any], name: str) -> None:
        image = services[name]["image"]
        repo, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: {image} must be pinned to a tag"
        assert re.search(r"\d", tag), f"{name}: {image} tag should name a version"

    def test_expected_images(self, services: dict[str, Any]) -> None:
        assert services["postgres"]["image"] == "postgres:16"
        assert services["redis"]["image"] == "redis:7"
        assert re.fullmatch(r"qdrant/qdrant:v1\.\d+\.\d+", services["qdrant"]["image"])

    def test_commands(self, services: dict[str, Any]) -> None:
        api = _command(services["api"])
        assert api[:2] == ["memory-service", "serve"] and "--no-workers" in api
        assert "--port" in api and api[api.index("--port") + 1] == "8000"
        assert _command(services["worker"]) == ["memory-service", "worker"]

    def test_published_ports(self, services: dict[str, Any]) -> None:
        assert "8000:8000" in services["api"]["ports"]
        assert "3000:3000" in services["grafana"]["ports"]
        assert "9090:9090" in services["prometheus"]["ports"]


class TestHealth:
    @pytest.mark.parametrize("name", sorted(SERVICES))
    def test_every_service_has_a_healthcheck(self, services: dict[str, Any], name: str) -> None:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable", False)

    def test_specific_healthchecks(self, services: dict[str, Any]) -> None:
        assert "/readyz" in _healthcheck_text(services["api"])
        assert "curl" not in _healthcheck_text(services["api"])  # the slim image has no curl
        assert "pg_isready" in _healthcheck_text(services["postgres"])
        assert "redis-cli ping" in _healthcheck_text(services["redis"])
        assert "/readyz" in _healthcheck_text(services["qdrant"])
        assert "9101" in _healthcheck_text(services["worker"])

    def test_depends_on_waits_for_healthy(self, services: dict[str, Any]) -> None:
        assert set(services["api"]["depends_on"]) >= BACKING
        for name, service in services.items():
            for target, condition in (service.get("depends_on") or {}).items():
                assert target in services, f"{name} depends on unknown {target}"
                assert condition == {"condition": "service_healthy"}, f"{name} -> {target}"
                assert "healthcheck" in services[target], f"{target} cannot become healthy"

    def test_worker_waits_for_the_migrating_api(self, services: dict[str, Any]) -> None:
        assert "api" in services["worker"]["depends_on"]


class TestVolumes:
    def _sources(self, services: dict[str, Any]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, service in services.items():
            for volume in service.get("volumes") or []:
                source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
                found.setdefault(name, []).append(source)
        return found

    def test_named_volumes_are_declared_and_used(self, compose: dict[str, Any], services: dict[str, Any]) -> None:
        declared = set(compose["volumes"])
        named = {
            src for sources in self._sources(services).values() for src in sources if not src.startswith((".", "/"))
        }
        assert named == declared

    @pytest.mark.parametrize("name", ["postgres", "qdrant", "redis", "prometheus", "grafana"])
    def test_stateful_services_use_named_volumes(
        self, compose: dict[str, Any], services: dict[str, Any], name: str
    ) -> None:
        sources = self._sources(services)[name]
        assert any(src in compose["volumes"] for src in sources), name

    def test_bind_mounts_exist(self, services: dict[str, Any]) -> None:
        binds = [src for sources in self._sources(services).values() for src in sources if src.startswith(".")]
        assert binds, "prometheus and grafana mount files from deploy/"
        for src in binds:
            assert (REPO / src).exists(), src

    def test_prometheus_and_grafana_mount_their_config(self, services: dict[str, Any]) -> None:
        assert any(v.startswith("./deploy/prometheus:") for v in services["prometheus"]["volumes"])
        grafana = services["grafana"]["volumes"]
        assert any(v.startswith("./deploy/grafana/provisioning:/etc/grafana/provisioning") for v in grafana)
        assert any(v.startswith("./deploy/grafana/dashboards:/var/lib/grafana/dashboards") for v in grafana)


class TestSettings:
    def test_memory_env_names_are_real_settings(self, services: dict[str, Any]) -> None:
        used = {name for service in services.values() for name in _env(service)}
        assert {"MEMORY_DATABASE_URL", "MEMORY_REDIS_URL", "MEMORY_QDRANT_URL"} <= used
        assert unknown_env_names(used) == set()

    @pytest.mark.parametrize("name", ["api", "worker"])
    def test_environment_builds_valid_settings(
        self, services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {k: interpolate_defaults(v) for k, v in _env(services[name]).items()}
        settings = settings_from_env(env, monkeypatch)
        assert settings.database_url is not None and settings.database_url.startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in settings.database_url
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.qdrant_url == "http://qdrant:6333"
        assert settings.run_workers is False
        assert settings.data_dir == Path("/data")

    def test_postgres_credentials_match_the_url(self, services: dict[str, Any]) -> None:
        pg = {k: interpolate_defaults(v) for k, v in _env(services["postgres"]).items()}
        url = interpolate_defaults(_env(services["api"])["MEMORY_DATABASE_URL"])
        assert f"//{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@" in url
        assert url.endswith(f"/{pg['POSTGRES_DB']}")

    def test_prometheus_scrapes_api_and_worker_ports(self, services: dict[str, Any]) -> None:
        config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
        targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
        worker_port = _env(services["worker"])["MEMORY_WORKER_METRICS_PORT"]
        assert "api:8000" in targets
        assert f"worker:{worker_port}" in targets
