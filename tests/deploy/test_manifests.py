"""Every rendering of deploy/kubernetes passes the Kubernetes schemas and the project's own rules."""

from __future__ import annotations

import itertools

import pytest

from .manifests import (
    KUBERNETES,
    Manifest,
    SettingsError,
    cores,
    memory_bound,
    of_kind,
    problems,
    quantity,
    read_settings,
    render,
    schema_errors,
    selects,
    serve_flags,
    settings,
    workloads,
)

OVERLAYS = sorted(path.parent for path in (KUBERNETES / "overlays").glob("*/kustomization.yaml"))
COMPONENTS = sorted(path.parent for path in (KUBERNETES / "components").glob("*/kustomization.yaml"))
# Every overlay with every set of components (none, each, all).
RENDERINGS = {
    "+".join([f"overlays/{overlay.name}", *(f"components/{c.name}" for c in chosen)]): (overlay, chosen)
    for overlay in OVERLAYS
    for size in range(len(COMPONENTS) + 1)
    for chosen in itertools.combinations(COMPONENTS, size)
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


def test_the_services_limits_cover_what_their_settings_allow(rendered: list[Manifest]) -> None:
    [services] = [w for w in workloads(rendered) if w.name == "chat-services"]
    [container] = services.pod["containers"]
    setting, _ = read_settings(container)  # refused names: test_every_manifest_keeps_the_project_rules
    assert memory_bound(setting, container) <= quantity(container["resources"]["limits"]["memory"])
    assert cores(container["resources"]["limits"]["cpu"]) == setting.workers


def test_the_scale_out_runs_several_pods_of_several_workers_on_postgresql() -> None:
    rendered = render(
        KUBERNETES / "overlays" / "production", [KUBERNETES / "components" / "postgres-scale-out"]
    )
    [services] = [w for w in workloads(rendered) if w.name == "chat-services"]
    [container] = services.pod["containers"]
    environment = {variable["name"]: variable for variable in container["env"]}
    assert environment["CHAT_SERVICES_DATABASE"] == {
        "name": "CHAT_SERVICES_DATABASE",
        "valueFrom": {"secretKeyRef": {"name": "chat-services-database", "key": "dsn"}},
    }
    assert int(environment["CHAT_SERVICES_WORKERS"]["value"]) > 1
    assert services.replicas > 1
    assert services.manifest["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not list(of_kind(rendered, "PersistentVolumeClaim"))
    assert "persistentVolumeClaim" not in str(services.pod["volumes"])


def test_a_flag_the_services_lack_is_refused_and_the_ones_they_have_are_not() -> None:
    """The settings check holds each flag to the real `chat-services serve`, not to a list."""
    [services] = [w for w in workloads(render(KUBERNETES / "overlays" / "dev")) if w.name == "chat-services"]
    [container] = services.pod["containers"]
    assert "--max-inflight-bytes" in serve_flags()
    settings({**container, "args": ["serve", "--max-inflight-bytes=1048576", "--max-call-bytes=1048576"]})
    for renamed in ("--max-inflight", "--no-such-flag"):
        with pytest.raises(SettingsError, match=f"chat-services serve has no {renamed}$"):
            settings({**container, "args": ["serve", f"{renamed}=1"]})
    renamed_variable = [*container["env"], {"name": "CHAT_SERVICES_MAX_INFLIGHT", "value": "1"}]
    with pytest.raises(SettingsError, match="CHAT_SERVICES_MAX_INFLIGHT is not a setting"):
        settings({**container, "env": renamed_variable})
    with pytest.raises(SettingsError, match="refuses its settings"):
        settings({**container, "args": ["serve", "--max-call-bytes=2", "--max-inflight-bytes=1"]})
