"""Client-side helpers for the service tests: channels that decode error details, status checks, polling."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from google.rpc import error_details_pb2
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError

CALL_TIMEOUT = 30.0  # seconds a call may take before a status check fails instead of hanging


@asynccontextmanager
async def channel(port: int) -> AsyncIterator[Channel]:
    """A grpclib channel to 127.0.0.1 that decodes ``google.rpc`` status details."""
    async with Channel("127.0.0.1", port, status_details_codec=ProtoStatusDetailsCodec()) as opened:
        yield opened


async def status_of(call: Awaitable[object], timeout: float = CALL_TIMEOUT) -> GRPCError:
    """The ``GRPCError`` that ``call`` fails with (failing the test if it succeeds or hangs)."""
    with pytest.raises(GRPCError) as raised:
        await asyncio.wait_for(call, timeout)
    return raised.value


def violated_fields(error: GRPCError) -> list[str]:
    """The fields the error's ``google.rpc.BadRequest`` details blame, in order."""
    return [
        violation.field
        for detail in error.details or []
        if isinstance(detail, error_details_pb2.BadRequest)
        for violation in detail.field_violations
    ]


async def expect_status(
    call: Awaitable[object], status: Status, field: str | None = None, timeout: float = CALL_TIMEOUT
) -> GRPCError:
    """Assert ``call`` fails with ``status``, a message and, if given, a BadRequest naming ``field``."""
    error = await status_of(call, timeout)
    assert error.status is status, (error.status, error.message)
    assert error.message, "every error carries a message"
    if field is not None:
        assert violated_fields(error) == [field], (violated_fields(error), error.message)
    return error


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds (it may be async: a call, say), polling; fail after ``timeout`` s."""

    async def holds() -> bool:
        result = condition()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    async def poll() -> None:
        while not await holds():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)
