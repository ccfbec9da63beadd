"""deploy/k8s/ray/: the KubeRay RayJob that runs ``vectorseam ingest --engine ray``, checked offline.

KubeRay's CRDs are not among the schemas ``kubernetes-validate`` ships, so the RayJob is checked in
two parts: its own fields against a JSON schema written from the RayJob CRD (``ray.io/v1``; only the
fields used here, unknown ones refused, as ``strict`` does for built-in kinds), and every pod template
inside it as a real Pod against Kubernetes' own schema. Then the cross-references: the entrypoint
parses as the CLI's ``ingest`` command, and the ConfigMap and Secret it mounts are the ones deploy/k8s
defines.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RAYJOB = DEPLOY / "k8s" / "ray" / "ingest-rayjob.yaml"
K8S_VERSION = "1.30.0"

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_TEMPLATE = {"type": "object", "required": ["spec"], "properties": {"metadata": {"type": "object"},
                                                                    "spec": {"type": "object"}},
             "additionalProperties": False}
# From the RayJob CRD (ray.io/v1, KubeRay 1.x): spec.rayClusterSpec is a RayCluster's spec.
RAYJOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["entrypoint", "rayClusterSpec"],
            "additionalProperties": False,
            "properties": {
                "entrypoint": {"type": "string", "minLength": 1},
                "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]},
                "shutdownAfterJobFinishes": {"type": "boolean"},
                "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
                "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
                "backoffLimit": {"type": "integer", "minimum": 0},
                "runtimeEnvYAML": {"type": "string"},
                "rayClusterSpec": {
                    "type": "object",
                    "required": ["headGroupSpec"],
                    "additionalProperties": False,
                    "properties": {
                        "rayVersion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "headGroupSpec": {
                            "type": "object",
                            "required": ["rayStartParams", "template"],
                            "additionalProperties": False,
                            "properties": {"rayStartParams": _STR_MAP, "serviceType": {"type": "string"},
                                           "template": _TEMPLATE},
                        },
                        "workerGroupSpecs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["groupName", "rayStartParams", "template"],
                                "additionalProperties": False,
                                "properties": {
                                    "groupName": {"type": "string", "minLength": 1},
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "minReplicas": {"type": "integer", "minimum": 0},
                                    "maxReplicas": {"type": "integer", "minimum": 0},
                                    "rayStartParams": _STR_MAP,
                                    "template": _TEMPLATE,
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def rayjob() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(RAYJOB.read_text(encoding="utf-8")) if d is not None]
    assert len(docs) == 1
    return docs[0]  # type: ignore[no-any-return]


def _templates(job: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = job["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]


def test_rayjob_matches_the_crd_fields(rayjob: dict[str, Any]) -> None:
    jsonschema.validate(rayjob, RAYJOB_SCHEMA)
    for group in rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]


def test_a_broken_rayjob_is_caught(rayjob: dict[str, Any]) -> None:
    bad = yaml.safe_load(yaml.safe_dump(rayjob))
    bad["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, RAYJOB_SCHEMA)
    bad = yaml.safe_load(yaml.safe_dump(rayjob))
    bad["spec"]["entryPoint"] = bad["spec"].pop("entrypoint")  # a misspelt field
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, RAYJOB_SCHEMA)


def test_pod_templates_match_the_kubernetes_schemas(rayjob: dict[str, Any]) -> None:
    import kubernetes_validate

    for template in _templates(rayjob):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ray-node"}, "spec": template["spec"]}
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True


def test_entrypoint_is_an_ingest_on_ray_with_the_service_config(rayjob: dict[str, Any]) -> None:
    import typer

    import vectorseam.cli.core  # noqa: F401  (registers the ingest command)
    from vectorseam.cli import app

    args = shlex.split(rayjob["spec"]["entrypoint"])
    assert args[:2] == ["vectorseam", "ingest"]
    command = typer.main.get_command(app)
    ctx = command.make_context("vectorseam", args[1:], resilient_parsing=False)  # unknown options raise here
    sub = command.get_command(ctx, "ingest")  # type: ignore[attr-defined]
    params = sub.make_context("ingest", args[2:]).params
    assert params["engine"] == "ray" and params["ray_address"] == "auto" and params["cleanup"] == "full"

    k8s = {doc["kind"]: doc for path in (DEPLOY / "k8s").glob("*.yaml")
           for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc}
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    container = head["containers"][0]
    assert container["envFrom"][0]["secretRef"]["name"] == k8s["Secret"]["metadata"]["name"]
    assert {v["configMap"]["name"] for v in head["volumes"] if "configMap" in v} == {k8s["ConfigMap"]["metadata"]["name"]}
    assert "store" in k8s["ConfigMap"]["data"]["vectorseam.toml"]  # pgvector: its database holds the record manager
    source_dir = str(Path(params["source"]).parent)
    for template in _templates(rayjob):  # every node reads the sources at the same path
        mounts = {m["mountPath"] for c in template["spec"]["containers"] for m in c["volumeMounts"]}
        assert source_dir in mounts
