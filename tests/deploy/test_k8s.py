"""deploy/k8s: every manifest parses, the kinds are there, probes, labels, env names, kustomization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from tests.deploy.conftest import REPO, settings_from_env, unknown_env_names

K8S = REPO / "deploy" / "k8s"


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc for name in kustomization["resources"] for doc in _load(K8S / name)]


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in _of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def _deployment(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    matches = [
        d
        for d in _of_kind(objects, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(matches) == 1, component
    return matches[0]


def _containers(deployment: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]] if init else list(pod["containers"])


def _main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    return _containers(deployment, init=False)[0]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class TestKustomization:
    def test_lists_exactly_the_manifests_in_the_folder(self, kustomization: dict[str, Any]) -> None:
        listed = kustomization["resources"]
        assert len(listed) == len(set(listed))
        for name in listed:
            assert (K8S / name).is_file(), f"kustomization lists missing {name}"
        on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        assert set(listed) == on_disk

    def test_every_manifest_parses_with_kind_and_name(self, objects: list[dict[str, Any]]) -> None:
        assert objects
        for obj in objects:
            assert obj.get("apiVersion") and obj.get("kind") and obj["metadata"].get("name"), obj

    def test_kinds_present(self, objects: list[dict[str, Any]]) -> None:
        kinds = [o["kind"] for o in objects]
        assert kinds.count("Deployment") == 2
        for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret", "ServiceMonitor"):
            assert kind in kinds, kind
        monitor = _of_kind(objects, "ServiceMonitor")[0]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert _of_kind(objects, "HorizontalPodAutoscaler")[0]["apiVersion"] == "autoscaling/v2"
        assert _of_kind(objects, "PodDisruptionBudget")[0]["apiVersion"] == "policy/v1"

    def test_container_images_are_the_kustomized_image(
        self, kustomization: dict[str, Any], objects: list[dict[str, Any]]
    ) -> None:
        image_names = {i["name"] for i in kustomization["images"]}
        for deployment in _of_kind(objects, "Deployment"):
            for container in _containers(deployment):
                assert container["image"].split(":")[0] in image_names, container["name"]


class TestApi:
    def test_probes(self, objects: list[dict[str, Any]]) -> None:
        api = _main_container(_deployment(objects, "api"))
        assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
        port_names = {p["name"] for p in api["ports"]}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in api:
                assert api[probe]["httpGet"]["port"] in port_names, probe

    def test_command_serves_without_in_process_workers(self, objects: list[dict[str, Any]]) -> None:
        api = _main_container(_deployment(objects, "api"))
        assert api["command"][:2] == ["memory-service", "serve"]
        assert "--no-workers" in api["command"]
        assert api["ports"][0]["containerPort"] == int(api["command"][api["command"].index("--port") + 1])

    def test_migrations_run_before_the_api(self, objects: list[dict[str, Any]]) -> None:
        deployment = _deployment(objects, "api")
        init = deployment["spec"]["template"]["spec"]["initContainers"]
        assert [c["command"] for c in init] == [["memory-service", "migrate"]]
        assert "--no-migrate" in _main_container(deployment)["command"]

    def test_hpa_scales_the_api_on_cpu(self, objects: list[dict[str, Any]]) -> None:
        hpa = _of_kind(objects, "HorizontalPodAutoscaler")[0]
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert _named(objects, "Deployment", target["name"]) is _deployment(objects, "api")
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        # CPU utilisation is relative to requests: the container must request CPU.
        assert _main_container(_deployment(objects, "api"))["resources"]["requests"]["cpu"]

    def test_pdb_covers_the_api_pods(self, objects: list[dict[str, Any]]) -> None:
        pdb = _of_kind(objects, "PodDisruptionBudget")[0]
        api_labels = _deployment(objects, "api")["spec"]["template"]["metadata"]["labels"]
        worker_labels = _deployment(objects, "worker")["spec"]["template"]["metadata"]["labels"]
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert _selects(selector, api_labels) and not _selects(selector, worker_labels)
        hpa = _of_kind(objects, "HorizontalPodAutoscaler")[0]
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "a PDB at min replicas blocks drains"


class TestWorker:
    def test_command_and_metrics_port(self, objects: list[dict[str, Any]]) -> None:
        worker = _main_container(_deployment(objects, "worker"))
        assert worker["command"] == ["memory-service", "worker"]
        config = _of_kind(objects, "ConfigMap")[0]["data"]
        assert worker["ports"][0]["containerPort"] == int(config["MEMORY_WORKER_METRICS_PORT"])
        assert worker["livenessProbe"]["httpGet"]["port"] == worker["ports"][0]["name"]


class TestLabelsAndSelectors:
    def test_deployment_selectors_match_their_pods(self, objects: list[dict[str, Any]]) -> None:
        for deployment in _of_kind(objects, "Deployment"):
            selector = deployment["spec"]["selector"]["matchLabels"]
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert selector and _selects(selector, labels), deployment["metadata"]["name"]

    def test_each_service_selects_exactly_one_deployment(self, objects: list[dict[str, Any]]) -> None:
        deployments = _of_kind(objects, "Deployment")
        for service in _of_kind(objects, "Service"):
            selector = service["spec"]["selector"]
            chosen = [d for d in deployments if _selects(selector, d["spec"]["template"]["metadata"]["labels"])]
            assert len(chosen) == 1, service["metadata"]["name"]
            container_ports = {p["name"] for c in _containers(chosen[0]) for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in container_ports, (service["metadata"]["name"], port)

    def test_service_monitor_reaches_both_metrics_ports(self, objects: list[dict[str, Any]]) -> None:
        monitor = _of_kind(objects, "ServiceMonitor")[0]
        selector = monitor["spec"]["selector"]["matchLabels"]
        selected = [s for s in _of_kind(objects, "Service") if _selects(selector, s["metadata"]["labels"])]
        service_ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
        endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
        assert endpoint_ports <= service_ports
        assert {"http", "metrics"} <= endpoint_ports
        assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])


class TestSecurityAndResources:
    @pytest.mark.parametrize("component", ["api", "worker"])
    def test_non_root(self, objects: list[dict[str, Any]], component: str) -> None:
        deployment = _deployment(objects, component)
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] != 0
        for container in _containers(deployment):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, container["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], container["name"]

    def test_read_only_root_has_writable_tmp(self, objects: list[dict[str, Any]]) -> None:
        for deployment in _of_kind(objects, "Deployment"):
            volumes = {v["name"] for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
            for container in _containers(deployment):
                if container["securityContext"].get("readOnlyRootFilesystem"):
                    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
                    assert "/tmp" in mounts, container["name"]
                    assert set(mounts.values()) <= volumes

    def test_every_container_has_requests_and_a_memory_limit(self, objects: list[dict[str, Any]]) -> None:
        for deployment in _of_kind(objects, "Deployment"):
            for container in _containers(deployment):
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
                assert "memory" in resources["limits"], container["name"]


class TestConfiguration:
    def test_env_sources_exist(self, objects: list[dict[str, Any]]) -> None:
        config_maps = {o["metadata"]["name"] for o in _of_kind(objects, "ConfigMap")}
        secrets = {o["metadata"]["name"] for o in _of_kind(objects, "Secret")}
        for deployment in _of_kind(objects, "Deployment"):
            for container in _containers(deployment):
                refs = container.get("envFrom", [])
                assert refs, container["name"]
                for ref in refs:
                    if "configMapRef" in ref:
                        assert ref["configMapRef"]["name"] in config_maps
                    else:
                        assert ref["secretRef"]["name"] in secrets

    def test_env_names_are_real_settings(self, objects: list[dict[str, Any]]) -> None:
        names: set[str] = set()
        for config_map in _of_kind(objects, "ConfigMap"):
            names |= set(config_map["data"])
        for secret in _of_kind(objects, "Secret"):
            names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
        for deployment in _of_kind(objects, "Deployment"):
            for container in _containers(deployment):
                names |= {e["name"] for e in container.get("env", [])}
        assert "MEMORY_DATABASE_URL" in names
        assert unknown_env_names(names) == set()
        assert all(n.startswith("MEMORY_") for n in names)

    def test_config_map_builds_valid_settings(self, objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
        data = {k: str(v) for k, v in _of_kind(objects, "ConfigMap")[0]["data"].items()}
        settings = settings_from_env(data, monkeypatch)
        assert settings.run_workers is False
        assert settings.redis_url and settings.qdrant_url

    def test_secret_holds_placeholders_only(self, objects: list[dict[str, Any]]) -> None:
        secret = _of_kind(objects, "Secret")[0]
        assert "data" not in secret, "base64 data would hide what the values are"
        for key, value in secret["stringData"].items():
            assert "changeme" in value, f"{key} must be a placeholder"

    def test_settings_refuse_the_placeholder_secrets(
        self, objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {k: str(v) for k, v in _of_kind(objects, "ConfigMap")[0]["data"].items()}
        env |= _of_kind(objects, "Secret")[0]["stringData"]
        with pytest.raises(pydantic.ValidationError, match="placeholder"):
            settings_from_env(env, monkeypatch)
