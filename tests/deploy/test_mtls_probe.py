"""components/mtls as written, against a mutual-TLS server: the exec probes, and the gateway as a client."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from grpclib.exceptions import StreamTerminatedError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from chat_gateway.cli import config_from as gateway_config
from chat_gateway.cli import parser as gateway_parser
from chat_gateway.config import UpstreamAddress, UpstreamTls
from chat_gateway.upstream import Upstream
from chat_services.server import App

from ..services.conftest import make_config, running
from ..services.test_probe import run_probe
from .manifests import EXEC_PROBE_BYTES, KUBERNETES, Manifest, render, workloads

TLS_DIRECTORY = "/etc/chat/tls"


@pytest.fixture
async def pod_certificate_app(tmp_path: Path) -> AsyncIterator[App]:
    """A server on the pod's one certificate (server and client use), as the component mounts it."""
    ca = trustme.CA()
    leaf = ca.issue_cert("chat-services", "chat-services.chat.svc")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    # The gateway's Secret chat-gateway-tls: a client certificate of the same CA.
    (tmp_path / "gateway").mkdir()
    gateway = ca.issue_cert("chat-gateway")
    ca.cert_pem.write_to_path(str(tmp_path / "gateway" / "ca.crt"))
    gateway.cert_chain_pems[0].write_to_path(str(tmp_path / "gateway" / "tls.crt"))
    gateway.private_key_pem.write_to_path(str(tmp_path / "gateway" / "tls.key"))
    config = make_config(
        tmp_path,
        tls_cert=tmp_path / "tls.crt",
        tls_key=tmp_path / "tls.key",
        tls_client_ca=tmp_path / "ca.crt",
    )
    async with running(config) as app:
        yield app


def mtls_containers() -> dict[str, Manifest]:
    """The services' and the gateway's containers with components/mtls on the production overlay."""
    rendered = render(KUBERNETES / "overlays" / "production", [KUBERNETES / "components" / "mtls"])
    return {w.name: w.pod["containers"][0] for w in workloads(rendered)}


def probe_commands() -> dict[str, list[str]]:
    """The services' three probe commands with components/mtls on the production overlay."""
    rendered = render(KUBERNETES / "overlays" / "production", [KUBERNETES / "components" / "mtls"])
    [services] = [w for w in workloads(rendered) if w.name == "chat-services"]
    [container] = services.pod["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts["tls"] == TLS_DIRECTORY
    return {
        kind: list(container[kind]["exec"]["command"])
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }


@pytest.mark.parametrize("kind", ["startupProbe", "readinessProbe", "livenessProbe"])
async def test_the_mtls_probe_passes_against_the_pod_certificate(
    kind: str, pod_certificate_app: App, tmp_path: Path
) -> None:
    command = probe_commands()[kind]
    assert command[:2] == ["chat-services", "health"]
    args = [arg.replace(TLS_DIRECTORY, str(tmp_path)) for arg in command[2:]]
    args[args.index("--port") + 1] = str(pod_certificate_app.port)
    code, output = await run_probe(*args)
    assert code == 0, output
    assert "SERVING" in output


async def test_the_mtls_probe_fails_once_the_server_drains(pod_certificate_app: App, tmp_path: Path) -> None:
    pod_certificate_app.begin_draining()
    args = [arg.replace(TLS_DIRECTORY, str(tmp_path)) for arg in probe_commands()["readinessProbe"][2:]]
    args[args.index("--port") + 1] = str(pod_certificate_app.port)
    code, output = await run_probe(*args)
    assert code == 1
    assert "NOT_SERVING" in output


# Runs the command given as its arguments, then prints the peak RSS of that child in KiB.
PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode;"
    " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


async def test_the_mtls_probe_fits_in_what_the_memory_limit_keeps_for_it(
    pod_certificate_app: App, tmp_path: Path
) -> None:
    """Every exec probe is a process in the pod's memory: the installed command, on TLS, as run."""
    command = probe_commands()["livenessProbe"]
    args = [arg.replace(TLS_DIRECTORY, str(tmp_path)) for arg in command[2:]]
    args[args.index("--port") + 1] = str(pod_certificate_app.port)
    script = Path(sys.executable).parent / command[0]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PEAK_RSS, str(script), "health", *args, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output
    peak = int(output.split()[-1]) * 1024
    assert peak < EXEC_PROBE_BYTES, f"the probe peaked at {peak / 2**20:.1f} MiB"


async def test_the_gateway_reaches_the_mtls_services_with_its_certificate(
    pod_certificate_app: App, tmp_path: Path
) -> None:
    """The gateway's rendered flags, its Secret's files in place: a call through its own upstream pool."""
    container = mtls_containers()["chat-gateway"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts["tls"] == TLS_DIRECTORY
    args = [arg.replace(TLS_DIRECTORY, str(tmp_path / "gateway")) for arg in container["args"]]
    config = gateway_config(gateway_parser().parse_args(args))
    assert config.upstream_tls is not None
    address = UpstreamAddress(
        "127.0.0.1", pod_certificate_app.port
    )  # the name checked: --upstream-server-name
    upstream = Upstream(address, unary_timeout=10, tls=config.upstream_tls, pool=config.pool)
    try:
        with upstream.pool.lease("test", long_lived=False) as member:
            reply = await HealthStub(member.channel).Check(HealthCheckRequest())
        assert reply.status == HealthCheckResponse.SERVING
    finally:
        await upstream.close()
    # Without its client certificate the services refuse the gateway: the TLS is mutual.
    server_only = UpstreamTls(config.upstream_tls.ca, None, None, config.upstream_tls.server_name)
    anonymous = Upstream(address, unary_timeout=10, tls=server_only, pool=config.pool)
    try:
        refused = pytest.raises((ssl.SSLError, ConnectionError, StreamTerminatedError))
        with refused, anonymous.pool.lease("test", long_lived=False) as member:
            await HealthStub(member.channel).Check(HealthCheckRequest())
    finally:
        await anonymous.close()
