"""The checks refuse a planted error: each case breaks a copy of deploy/kubernetes one way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .manifests import (
    KUBERNETES,
    Manifest,
    RenderError,
    memory_bound,
    problems,
    quantity,
    render,
    schema_errors,
)


def planted(tmp_path: Path, file: str, old: str, new: str) -> list[Manifest]:
    """The overlay ``file`` is in (else production), rendered from a copy whose ``file`` has ``old``
    (once) replaced by ``new``."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    path = copy / file
    text = path.read_text()
    assert text.count(old) == 1, f"the plant must hit exactly one place in {file}"
    path.write_text(text.replace(old, new))
    overlay = file.split("/")[1] if file.startswith("overlays/") else "production"
    return render(copy / "overlays" / overlay)


def test_the_unbroken_copy_passes(tmp_path: Path) -> None:
    rendered = planted(tmp_path, "base/services-service.yaml", "clusterIP: None", "clusterIP: None")
    assert schema_errors(rendered) == []
    assert problems(rendered) == []


@pytest.mark.parametrize(
    ("file", "old", "new", "error"),
    [
        # A misspelt field: Kubernetes would drop it silently, the strict schema refuses it.
        (
            "base/gateway-deployment.yaml",
            "          readinessProbe:",
            "          readinesProbe:",
            "readinesProbe",
        ),
        ("base/services-deployment.yaml", "replicas: 1", "replicas: one", "replicas"),
        ("base/services-pdb.yaml", "maxUnavailable: 1", "maxUnavailable: [1]", "maxUnavailable"),
        (
            "base/networkpolicy.yaml",
            "    - Ingress\n  ingress:\n    - from:\n        - podSelector:",
            "    - Ingress\n  ingres:\n    - from:\n        - podSelector:",
            "ingres",
        ),
    ],
)
def test_a_wrong_field_fails_the_schemas(tmp_path: Path, file: str, old: str, new: str, error: str) -> None:
    errors = schema_errors(planted(tmp_path, file, old, new))
    assert errors
    assert any(error in message for message in errors), errors


@pytest.mark.parametrize(
    ("file", "old", "new", "problem"),
    [
        (
            "base/gateway-deployment.yaml",
            "runAsUser: 10001",
            "runAsUser: 0",
            "chat-gateway/chat-gateway may run as root",
        ),
        (
            "base/services-deployment.yaml",
            "runAsNonRoot: true",
            "runAsNonRoot: false",
            "chat-services/chat-services may run as root",
        ),
        (
            "base/services-deployment.yaml",
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
            "allows privilege escalation",
        ),
        (
            "base/gateway-deployment.yaml",
            "          livenessProbe:\n            httpGet:",
            "          startupProbe:\n            httpGet:",
            "chat-gateway/chat-gateway has no livenessProbe",
        ),
        (
            "base/services-deployment.yaml",
            "              memory: 768Mi\n",
            "",
            "chat-services/chat-services has no limits for memory",
        ),
        (
            "base/gateway-service.yaml",
            "targetPort: http",
            "targetPort: web",
            "sends port web to chat-gateway",
        ),
        (
            "base/services-service.yaml",
            "app.kubernetes.io/name: chat-services\n  ports:",
            "app.kubernetes.io/name: chat-service\n  ports:",
            "Service chat-services selects no pods",
        ),
        (
            "base/services-pdb.yaml",
            "app.kubernetes.io/name: chat-services",
            "app: chat-services",
            "PodDisruptionBudget chat-services selects no pods",
        ),
        # The ADR's policy opened to every namespace, dropped, or the public policy widened to the backend.
        (
            "base/networkpolicy.yaml",
            "        - podSelector:\n            matchLabels:\n              tier: backend",
            "        - namespaceSelector: {}",
            "lets non-backend traffic reach chat-services's gRPC port",
        ),
        (
            "base/kustomization.yaml",
            "  - networkpolicy.yaml\n",
            "",
            "no NetworkPolicy isolates the gRPC pods of chat-services",
        ),
        (
            "base/networkpolicy.yaml",
            "        - port: metrics",
            "        - port: grpc",
            "NetworkPolicy metrics-from-monitoring lets non-backend traffic",
        ),
        # A JSON patch appends to the list: a second value of a variable the base sets.
        (
            "overlays/dev/kustomization.yaml",
            "{name: CHAT_SERVICES_LOG_LEVEL,",
            "{name: CHAT_SERVICES_LOG_FORMAT,",
            "sets CHAT_SERVICES_LOG_FORMAT twice",
        ),
        # Kubernetes leaves $(POD_NAME) as it is when POD_NAME comes later in the list.
        (
            "base/services-deployment.yaml",
            "            - name: POD_NAME\n",
            "            - name: EARLY\n              value: pod-$(POD_NAME)\n            - name: POD_NAME\n",
            "EARLY refers to $(POD_NAME) before it is defined",
        ),
    ],
)
def test_a_broken_rule_is_a_problem(tmp_path: Path, file: str, old: str, new: str, problem: str) -> None:
    found = problems(planted(tmp_path, file, old, new))
    assert any(problem in message for message in found), found


def test_more_connections_than_the_memory_limit_holds_is_refused(tmp_path: Path) -> None:
    rendered = planted(tmp_path, "base/services-deployment.yaml", 'value: "100"', 'value: "1000"')
    [services] = [
        m for m in rendered if m["kind"] == "Deployment" and m["metadata"]["name"] == "chat-services"
    ]
    [container] = services["spec"]["template"]["spec"]["containers"]
    assert memory_bound(container) > quantity(container["resources"]["limits"]["memory"])


def test_a_patch_that_names_a_missing_file_does_not_render(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"services-auth\.yml"):
        planted(
            tmp_path,
            "overlays/production/kustomization.yaml",
            "path: services-auth.yaml",
            "path: services-auth.yml",
        )
