"""Running a plugin in a worker process: isolated from the server, bounded in time and output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from time import perf_counter

from chat_services.errors import DeadlineExceeded, Internal, InvalidArgument
from chat_services.plugin.api import PluginOutput

MAX_CONCURRENT = 4
MAX_RESULT_BYTES = 1024 * 1024
STDERR_TAIL_BYTES = 64 * 1024  # what is kept of a worker's stderr, for the error message
CLOSE_TIMEOUT = 10.0  # seconds close() waits for killed workers to be reaped (SIGKILL: milliseconds)


class PluginRunner:
    """Starts ``python -m chat_services.plugin.worker`` per invocation, at most ``max_concurrent`` at once.

    A plugin that crashes, hangs or exits only ends its own process: the caller
    gets INTERNAL or DEADLINE_EXCEEDED and the server carries on.
    """

    def __init__(self, *, max_concurrent: int = MAX_CONCURRENT, python: str = sys.executable) -> None:
        self.python = python
        self._slots = asyncio.Semaphore(max_concurrent)
        self._exiting: set[asyncio.Future[int]] = set()  # killed workers not yet reaped
        # Told (plugin, "ok"/"error", seconds) after each run; the server's metrics set it.
        self.observer: Callable[[str, str, float], None] | None = None

    async def run(self, name: str, target: str, arguments: Mapping[str, str], timeout: float) -> PluginOutput:
        """Run the plugin at ``target``; ``timeout`` seconds cover queueing, start-up and the run."""
        start, outcome = perf_counter(), "error"
        try:
            output = await asyncio.wait_for(self._run(name, target, arguments), timeout)
            outcome = "ok"
            return output
        except TimeoutError:
            raise DeadlineExceeded(f"plugin {name!r} did not finish within {timeout:g} s") from None
        finally:
            if self.observer is not None:
                self.observer(name, outcome, perf_counter() - start)

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
                start_new_session=True,  # its own process group: killing it kills what it started
            )
            if process.stdin is None or process.stdout is None or process.stderr is None:
                _kill_group(process)
                await process.wait()
                raise RuntimeError("the plugin worker started without its pipes")
            errors = asyncio.ensure_future(_tail(process.stderr, STDERR_TAIL_BYTES))
            reading = asyncio.ensure_future(_read_at_most(process.stdout, MAX_RESULT_BYTES))
            exited = asyncio.ensure_future(process.wait())
            try:
                process.stdin.write(payload)
                await process.stdin.drain()
                process.stdin.close()
                await asyncio.wait({reading, exited}, return_when=asyncio.FIRST_COMPLETED)
                if not (reading.done() and reading.result() is None):
                    await exited
                    _kill_group(process)  # what it left running would hold its pipes open
                stdout = await reading
                if stdout is None:
                    raise Internal(f"plugin {name!r} returned more than {MAX_RESULT_BYTES} bytes")
            finally:
                _kill_group(process)
                reading.cancel()
                # Shielded: a second cancellation (the client gone, then the server stopping)
                # must not drop a killed process before it is reaped, or it lingers unwaited;
                # close() waits for those a second cancellation left exiting.
                self._exiting.add(exited)
                exited.add_done_callback(self._exiting.discard)
                await asyncio.shield(exited)
                stderr = await errors
        return _result(name, process.returncode, stdout, stderr)

    async def close(self) -> None:
        """Wait until every killed worker is reaped (one whose call was cancelled twice may still
        be exiting): the event loop must not close before it learns of their exits."""
        if self._exiting:
            await asyncio.wait(set(self._exiting), timeout=CLOSE_TIMEOUT)


async def _read_at_most(stream: asyncio.StreamReader, limit: int) -> bytes | None:
    """Everything until end of file, or None as soon as it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _tail(stream: asyncio.StreamReader, keep: int) -> bytes:
    """The last ``keep`` bytes of the stream (read to its end, so the writer never blocks)."""
    tail = b""
    while chunk := await stream.read(64 * 1024):
        tail = (tail + chunk)[-keep:]
    return tail


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill the worker and anything it started; nothing if all of it already ended."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


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
