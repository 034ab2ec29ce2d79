"""Every rendering of deploy/kubernetes passes the Kubernetes schemas and the project's own rules."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chat_gateway.cli import parser as gateway_parser

from .manifests import (
    KUBERNETES,
    Manifest,
    memory_bound,
    of_kind,
    problems,
    quantity,
    render,
    schema_errors,
    selects,
    workloads,
)

OVERLAYS = sorted(path.parent for path in (KUBERNETES / "overlays").glob("*/kustomization.yaml"))
COMPONENTS = sorted(path.parent for path in (KUBERNETES / "components").glob("*/kustomization.yaml"))
# Flags the manifests use before `chat-services serve` has them, each with the issue that adds it.
PENDING_FLAGS: dict[str, str] = {}

RENDERINGS = {
    **{f"overlays/{overlay.name}": (overlay, ()) for overlay in OVERLAYS},
    **{
        f"overlays/production+components/{component.name}": (
            KUBERNETES / "overlays" / "production",
            (component,),
        )
        for component in COMPONENTS
    },
}


@pytest.fixture(scope="module", params=sorted(RENDERINGS))
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    overlay, components = RENDERINGS[request.param]
    return render(overlay, components)


def test_there_is_an_overlay_per_environment_and_a_component_per_option() -> None:
    assert {path.name for path in OVERLAYS} == {"dev", "production"}
    assert {path.name for path in COMPONENTS} == {"mtls", "postgres-scale-out"}


def test_every_manifest_passes_the_kubernetes_schemas(rendered: list[Manifest]) -> None:
    assert schema_errors(rendered) == []


def test_every_manifest_keeps_the_project_rules(rendered: list[Manifest]) -> None:
    assert problems(rendered) == []


def test_the_pieces_the_issue_asks_for_are_there(rendered: list[Manifest]) -> None:
    kinds = [manifest["kind"] for manifest in rendered]
    assert kinds.count("Deployment") == 2
    assert kinds.count("PodDisruptionBudget") == 2
    services = {m["metadata"]["name"]: m["spec"] for m in of_kind(rendered, "Service")}
    assert services["chat-services"]["clusterIP"] == "None"  # headless: clients balance per call
    assert services["chat-gateway"]["type"] == "ClusterIP"
    policies = {m["metadata"]["name"] for m in of_kind(rendered, "NetworkPolicy")}
    assert "grpc-internal-only" in policies


def test_the_adr_network_policy_selects_exactly_the_backend_pods(rendered: list[Manifest]) -> None:
    [policy] = [
        m for m in of_kind(rendered, "NetworkPolicy") if m["metadata"]["name"] == "grpc-internal-only"
    ]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    selected = {w.name for w in workloads(rendered) if selects(selector, w.labels)}
    assert selected == {"chat-services", "chat-gateway"}
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": selector}}]


def test_services_probe_the_grpc_health_protocol(rendered: list[Manifest]) -> None:
    [services] = [w for w in workloads(rendered) if w.name == "chat-services"]
    [container] = services.pod["containers"]
    tls = any(variable["name"] == "CHAT_SERVICES_TLS_CERT" for variable in container["env"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if tls:  # kubelet's grpc probes cannot speak TLS: the image's own health command does
            assert container[probe]["exec"]["command"][:2] == ["chat-services", "health"]
        else:
            assert container[probe]["grpc"]["port"] == services.ports()["grpc"]


def test_the_services_memory_limit_covers_what_clients_may_make_them_hold(rendered: list[Manifest]) -> None:
    [services] = [w for w in workloads(rendered) if w.name == "chat-services"]
    [container] = services.pod["containers"]
    assert memory_bound(container) <= quantity(container["resources"]["limits"]["memory"])


def test_every_environment_variable_is_a_real_setting(rendered: list[Manifest]) -> None:
    settings = set(serve_help_flags())
    for workload in workloads(rendered):
        for container in workload.containers:
            for variable in container.get("env", []):
                name = variable["name"]
                if name.startswith("CHAT_SERVICES_"):
                    flag = "--" + name.removeprefix("CHAT_SERVICES_").lower().replace("_", "-")
                    assert flag in settings, f"{name} is not a setting of chat-services serve"


def test_every_flag_is_a_real_flag(rendered: list[Manifest]) -> None:
    settings = set(serve_help_flags())
    for workload in workloads(rendered):
        [container] = workload.pod["containers"]
        if workload.name == "chat-gateway":
            gateway_parser().parse_args(container["args"])  # exits on an unknown flag
            continue
        for arg in container["args"][1:]:
            flag = arg.split("=", 1)[0]
            assert flag in settings or flag in PENDING_FLAGS, f"chat-services serve has no {flag}"


def test_pending_flags_are_still_missing() -> None:
    """When one lands, its component becomes deployable: drop it from PENDING_FLAGS and its PENDING note."""
    for flag, where in PENDING_FLAGS.items():
        assert flag not in serve_help_flags(), f"{flag} exists now: {where} is no longer pending"


@functools.cache
def serve_help_flags() -> tuple[str, ...]:
    """The flags `chat-services serve --help` lists, read from the installed command."""
    script = Path(sys.executable).parent / "chat-services"
    result = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    return tuple(re.findall(r"(--[a-z][a-z0-9-]*)", result.stdout))
