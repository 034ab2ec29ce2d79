"""Old clients against today's services, and today's client against servers on older SDKs.

For every release, that release's SDK wheel is built from its recorded image into a
virtual environment of its own; a client script from it calls every RPC kind of the
current services over a real socket, and a server written on it answers today's client.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

import chat_sdk
from compat_tests.peers import client
from compat_tests.releases import release_versions
from compat_tests.sdk_builds import release_environment

PEERS = Path(__file__).parent / "peers"


@pytest.fixture(scope="session")
def release_python() -> Callable[[str], Path]:
    """The python of a virtual environment holding only a release's SDK (cached by its wheel's digest)."""
    return release_environment


@pytest.mark.compat("old client, new server")
@pytest.mark.parametrize("release", release_versions())
async def test_a_release_client_calls_every_kind_of_rpc_on_the_current_services(
    release: str, release_python: Callable[[str], Path], tmp_path: Path
) -> None:
    from chat_services.config import ServiceConfig
    from chat_services.server import build_app

    python = await asyncio.to_thread(release_python, release)
    app = await build_app(ServiceConfig(port=0, database=tmp_path / "chat.db", completion_chunk_delay=0.0))
    port = await app.start()
    try:
        command = [str(python), "-I", str(PEERS / "client.py"), str(port), "--all"]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, check=False, timeout=120
        )
    finally:
        await app.shutdown()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sdk_version"] == release
    expected = ["unary", "server-streaming", "client-streaming", "bidirectional", "rag", "ai", "plugin"]
    if Version(release) >= Version("1.1.0"):
        expected.append("edit")  # EditMessage arrived in 1.1.0
    assert report["calls"] == expected


@pytest.mark.compat("new client, old server")
@pytest.mark.parametrize("release", release_versions())
async def test_the_current_client_calls_every_kind_of_rpc_on_a_server_built_on_a_release(
    release: str, release_python: Callable[[str], Path]
) -> None:
    python = await asyncio.to_thread(release_python, release)
    peer = subprocess.Popen(
        [python, "-I", str(PEERS / "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert peer.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(peer.stdout.readline), 60)
        assert line.startswith("PORT "), line
        # A server on 1.1.0 or later implements EditMessage; one on 1.0.0 predates it.
        edits = Version(release) >= Version("1.1.0")
        report = await asyncio.wait_for(client.run(int(line.split()[1]), everything=False, edit=edits), 60)
    finally:
        assert peer.stdin is not None
        peer.stdin.close()
        peer.wait(timeout=30)
        if peer.stdout is not None:
            peer.stdout.close()
    assert report["sdk_version"] == chat_sdk.__version__
    expected = ["unary", "server-streaming", "client-streaming", "bidirectional"]
    assert report["calls"] == [*expected, "edit"] if edits else expected
