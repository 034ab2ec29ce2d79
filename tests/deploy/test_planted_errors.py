"""The checks refuse a planted error: each case breaks a copy of deploy/kubernetes one way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .manifests import (
    KUBERNETES,
    Manifest,
    RenderError,
    problems,
    render,
    schema_errors,
)


def planted(tmp_path: Path, file: str, old: str, new: str) -> list[Manifest]:
    """A copy of deploy/kubernetes whose ``file`` has ``old`` (once) replaced by ``new``, rendered:
    the overlay ``file`` is in, the production overlay with the component ``file`` is in, or
    the production overlay."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    path = copy / file
    text = path.read_text()
    assert text.count(old) == 1, f"the plant must hit exactly one place in {file}"
    path.write_text(text.replace(old, new))
    place, name = file.split("/")[:2]
    if place == "components":
        return render(copy / "overlays" / "production", [copy / "components" / name])
    return render(copy / "overlays" / (name if place == "overlays" else "production"))


SCALE_OUT = "components/postgres-scale-out/services-postgres.yaml"


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
            "              memory: 1280Mi\n",
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
        # Settings the memory limit cannot hold: more connections, calls, embedding workers.
        (
            "base/services-deployment.yaml",
            'CHAT_SERVICES_MAX_CONNECTIONS\n              value: "100"',
            'CHAT_SERVICES_MAX_CONNECTIONS\n              value: "1000"',
            "over its memory limit of 1280Mi",
        ),
        ("base/services-deployment.yaml", 'value: "33554432"', 'value: "134217728"', "over its memory limit"),
        (
            "base/services-deployment.yaml",
            'CHAT_SERVICES_RAG_WORKERS\n              value: "1"',
            'CHAT_SERVICES_RAG_WORKERS\n              value: "2"',
            "over its memory limit",
        ),
        (SCALE_OUT, 'value: "2"  # one event loop', 'value: "3"  # one event loop', "over its memory limit"),
        (SCALE_OUT, "memory: 1920Mi", "memory: 1600Mi", "over its memory limit of 1600Mi"),
        # Workers and cores out of step.
        (SCALE_OUT, 'cpu: "2"', 'cpu: "4"', "2 worker(s) (one event loop each) under a CPU limit of 4"),
        (
            "base/services-deployment.yaml",
            'cpu: "1"  # one process',
            'cpu: "2"  # one process',
            "1 worker(s)",
        ),
        (
            "base/services-deployment.yaml",
            "cpu: 250m",
            "cpu: 1500m",
            "requests more cpu (1500m) than its limit",
        ),
        # A renamed flag or variable, and a value the services refuse.
        (
            "base/services-deployment.yaml",
            'args: ["serve"]',
            'args: ["serve", "--worker=1"]',
            "has no --worker",
        ),
        (
            "base/services-deployment.yaml",
            "CHAT_SERVICES_MAX_INFLIGHT_BYTES",
            "CHAT_SERVICES_MAX_INFLIGHT",
            "CHAT_SERVICES_MAX_INFLIGHT is not a setting of chat-services serve",
        ),
        ("base/services-deployment.yaml", 'value: "8388608"', 'value: "67108864"', "max_call_bytes"),
        # Prometheus scrapes a port nothing listens on from outside the pod.
        (
            "base/services-deployment.yaml",
            "            - name: CHAT_SERVICES_METRICS_HOST\n              value: 0.0.0.0\n",
            "",
            "/metrics listens on loopback only",
        ),
        (
            "base/services-deployment.yaml",
            'prometheus.io/port: "9464"',
            'prometheus.io/port: "9090"',
            "scrapes port 9090, where no worker",
        ),
        # Two workers, two /metrics ports: each declared, scraped once, open to Prometheus.
        (
            SCALE_OUT,
            "            - name: metrics-1  #",
            "            - name: metrics-2  #",
            "worker 1's /metrics (port 9465) is scraped 0 times",
        ),
        (
            SCALE_OUT,
            "containerPort: 9465",
            "containerPort: 9466",
            "worker 1's /metrics port 9465 is not a container port",
        ),
        (
            "components/postgres-scale-out/podmonitor.yaml",
            "    - port: metrics-1\n      path: /metrics\n",
            "",
            "worker 1's /metrics (port 9465) is scraped 0 times",
        ),
        (
            SCALE_OUT,
            'prometheus.io/scrape: "false"',
            'prometheus.io/scrape: "true"',
            "(port 9464) is scraped 2 times",
        ),
        (
            "components/postgres-scale-out/kustomization.yaml",
            "        value: {port: metrics-1, protocol: TCP}",
            "        value: {port: grpc, protocol: TCP}",
            "no NetworkPolicy lets Prometheus reach worker 1's /metrics (port 9465)",
        ),
        # SQLite: one pod, one process, replaced rather than rolled, its file on the volume.
        (
            "base/services-deployment.yaml",
            "replicas: 1",
            "replicas: 2",
            "SQLite takes one pod of one worker, not 2 pods of 1",
        ),
        (
            "base/services-deployment.yaml",
            "type: Recreate",
            "type: RollingUpdate",
            "a rolling update would open",
        ),
        (
            "base/services-deployment.yaml",
            "value: /var/lib/chat/chat-services.db",
            "value: /tmp/chat-services.db",
            "the SQLite file /tmp/chat-services.db is not on a persistent volume",
        ),
        # PostgreSQL: the DSN replaces the path (not both), and the SQLite volume goes.
        (
            SCALE_OUT,
            "              value: null  # the base's",
            "              # the base's",
            "both value and valueFrom",
        ),
        (
            SCALE_OUT,
            "      volumes:\n        - name: data\n          $patch: delete\n",
            "",
            "on PostgreSQL it still mounts the volume data",
        ),
        (
            "components/postgres-scale-out/kustomization.yaml",
            "  - patch: |-\n      $patch: delete\n",
            "  - patch: |-\n",
            "PersistentVolumeClaim chat-services-data is left over on PostgreSQL",
        ),
        # The gateway refuses plaintext to the services unless told the network is trusted,
        # and an upstream name check without TLS.
        (
            "base/gateway-deployment.yaml",
            "            - --upstream-insecure\n",
            "",
            "chat-gateway: chat-gateway refuses its flags: plaintext to a non-loopback upstream",
        ),
        (
            "components/mtls/gateway-tls.yaml",
            "    - --upstream-cert=/etc/chat/tls/tls.crt\n",
            "",
            "refuses its flags: --upstream-key needs --upstream-cert",
        ),
        # On mutual TLS: the gateway's TLS, its own certificate, its Secret mounted where it reads.
        (
            "components/mtls/gateway-tls.yaml",
            "    - --upstream-cert=/etc/chat/tls/tls.crt\n    - --upstream-key=/etc/chat/tls/tls.key\n",
            "",
            "chat-gateway: presents no client certificate to chat-services (mutual TLS)",
        ),
        (
            "components/mtls/kustomization.yaml",
            "  - target:\n      kind: Deployment\n      name: chat-gateway\n    path: gateway-tls.yaml\n",
            "",
            "chat-gateway: speaks plaintext to chat-services, which serves TLS only",
        ),
        (
            "components/mtls/gateway-tls.yaml",
            "mountPath: /etc/chat/tls, readOnly",
            "mountPath: /etc/chat/gateway, readOnly",
            "chat-gateway: reads /etc/chat/tls/ca.crt from no mounted volume",
        ),
        (
            "base/gateway-deployment.yaml",
            "            - --log-level=INFO\n",
            "            - --log-level=INFO\n            - --upstream-pool=2\n",
            "chat-gateway refuses its flags: usage: chat-gateway",
        ),
        # Budgets that block a drain for good, or let every replica go at once (three gateways).
        (
            "base/gateway-pdb.yaml",
            "maxUnavailable: 1",
            "minAvailable: 3",
            "PodDisruptionBudget chat-gateway blocks every eviction of chat-gateway (3 replicas)",
        ),
        (
            "base/gateway-pdb.yaml",
            "maxUnavailable: 1",
            'maxUnavailable: "100%"',
            "lets every pod of chat-gateway",
        ),
    ],
)
def test_a_broken_rule_is_a_problem(tmp_path: Path, file: str, old: str, new: str, problem: str) -> None:
    found = problems(planted(tmp_path, file, old, new))
    assert any(problem in message for message in found), found


def test_a_patch_that_names_a_missing_file_does_not_render(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"services-auth\.yml"):
        planted(
            tmp_path,
            "overlays/production/kustomization.yaml",
            "path: services-auth.yaml",
            "path: services-auth.yml",
        )
