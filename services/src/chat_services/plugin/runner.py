"""Running a plugin in a worker process: isolated from the server, bounded in time and output."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping

from chat_services.errors import DeadlineExceeded, Internal, InvalidArgument
from chat_services.plugin.api import PluginOutput

MAX_CONCURRENT = 4
MAX_RESULT_BYTES = 1024 * 1024


class PluginRunner:
    """Starts ``python -m chat_services.plugin.worker`` per invocation, at most ``max_concurrent`` at once.

    A plugin that crashes, hangs or exits only ends its own process: the caller
    gets INTERNAL or DEADLINE_EXCEEDED and the server carries on.
    """

    def __init__(self, *, max_concurrent: int = MAX_CONCURRENT, python: str = sys.executable) -> None:
        self.python = python
        self._slots = asyncio.Semaphore(max_concurrent)

    async def run(self, name: str, target: str, arguments: Mapping[str, str], timeout: float) -> PluginOutput:
        """Run the plugin at ``target``; ``timeout`` seconds cover queueing, start-up and the run."""
        try:
            return await asyncio.wait_for(self._run(name, target, arguments), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"plugin {name!r} did not finish within {timeout:g} s") from None

    async def _run(self, name: str, target: str, arguments: Mapping[str, str]) -> PluginOutput:
        payload = json.dumps({"target": target, "arguments": dict(arguments)}).encode()
        async with self._slots:
            process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "chat_services.plugin.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_worker_environment(),
            )
            try:
                stdout, stderr = await process.communicate(payload)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        return _result(name, process.returncode, stdout, stderr)


def _worker_environment() -> dict[str, str]:
    """The worker imports plugins from the same path as the server."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return environment


def _result(name: str, returncode: int | None, stdout: bytes, stderr: bytes) -> PluginOutput:
    if len(stdout) > MAX_RESULT_BYTES:
        raise Internal(f"plugin {name!r} returned more than {MAX_RESULT_BYTES} bytes")
    try:
        result = json.loads(stdout) if stdout else None
    except ValueError:
        result = None
    if returncode != 0 or not isinstance(result, dict):
        last_line = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise Internal(f"plugin {name!r} crashed (exit code {returncode}): {last_line[0]}")
    if result["status"] == "ok":
        return PluginOutput(output=result["output"], data=result["data"])
    if result["status"] == "invalid_argument":
        argument = result.get("argument")
        raise InvalidArgument(
            f"plugin {name!r}: {result['message']}",
            field=f"arguments[{argument}]" if argument else "arguments",
        )
    raise Internal(f"plugin {name!r} failed: {result['message']}")
