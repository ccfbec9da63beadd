"""deploy/: what can be validated without a Docker engine or a cluster.

* every YAML file parses;
* the compose file validates against the Compose Specification's JSON schema (vendored by the
  ``check-jsonschema`` package, so no network is needed);
* the Kubernetes manifests validate against Kubernetes' own schemas (shipped offline by the
  ``kubernetes-validate`` package), strictly: unknown fields are errors;
* cross-references hold (probe paths exist in the app, ports line up, referenced Secret/ConfigMap
  exist, the configs load as vectorseam settings), and the Dockerfile is multi-stage and non-root.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from vectorseam.config import ServiceSettings, Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
K8S_VERSION = "1.30.0"


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def manifests() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in MANIFESTS for doc in load_yaml(path)}


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: p.name)
def test_yaml_is_well_formed(path: Path) -> None:
    assert load_yaml(path), f"{path} holds no YAML document"


def test_compose_file_matches_the_compose_spec() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    compose = load_yaml(DEPLOY / "docker-compose.yml")[0]
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    services = compose["services"]
    assert set(services) == {"vectorseam", "postgres", "qdrant", "weaviate"}
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag, got {image}"
        assert all(p.startswith("127.0.0.1:") for p in svc.get("ports", [])), f"{name} publishes beyond localhost"
    assert "healthcheck" in services["vectorseam"] and "healthcheck" in services["postgres"]
    assert services["vectorseam"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert named <= set(compose["volumes"])


def test_a_broken_compose_file_is_caught() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    broken = {"services": {"web": {"image": "x:1", "ports": [{"target": "not-a-port"}], "restart_policy": 1}}}
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_match_the_kubernetes_schemas(path: Path) -> None:
    import kubernetes_validate

    for doc in load_yaml(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    import kubernetes_validate

    bad = manifests()["Deployment"]
    bad = json.loads(json.dumps(bad))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = ["http"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_manifests_fit_together_and_match_the_app() -> None:
    from vectorseam.service.routes_ops import router

    docs = manifests()
    assert set(docs) == {"Deployment", "Service", "ConfigMap", "Secret"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    paths = {route.path for route in router.routes}  # type: ignore[attr-defined]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in paths
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    port_names = {p["name"] for p in container["ports"]}
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] in port_names
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert container["envFrom"][0]["secretRef"]["name"] == docs["Secret"]["metadata"]["name"]
    assert pod["volumes"][0]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    config = tomllib.loads(docs["ConfigMap"]["data"]["vectorseam.toml"])
    secret_keys = json.loads(docs["Secret"]["stringData"]["VECTORSEAM_SERVICE__API_KEYS"])
    service = ServiceSettings(**{**config["service"], "api_keys": secret_keys})
    assert service.host == "0.0.0.0" and len(service.api_keys) == 2  # keys are required off loopback


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    config = tomllib.loads((DEPLOY / "vectorseam.example.toml").read_text(encoding="utf-8"))
    settings = Settings(**config)
    assert settings.service.host == "127.0.0.1"
    assert {k.scope for k in settings.service.api_keys} == {"admin", "read"}


def test_dockerfile_is_multi_stage_non_root_and_cpu_torch() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 2, "expected a build stage and a runtime stage"
    final = text[text.rindex("\nFROM "):]
    user = re.findall(r"^USER\s+(\S+)", final, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert "--constraint constraints.txt" in text and "download.pytorch.org/whl/cpu" in text
    assert "COPY --from=build" in final and "EXPOSE 8000" in final and "HEALTHCHECK" in final
