"""Client-side helpers for the service tests: channels that decode error details, status checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest
from google.rpc import error_details_pb2
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError

T = TypeVar("T")


@asynccontextmanager
async def channel(port: int) -> AsyncIterator[Channel]:
    """A grpclib channel to 127.0.0.1 that decodes ``google.rpc`` status details."""
    async with Channel("127.0.0.1", port, status_details_codec=ProtoStatusDetailsCodec()) as opened:
        yield opened


async def status_of(call: Awaitable[object]) -> GRPCError:
    """The ``GRPCError`` that ``call`` fails with (failing the test if it succeeds)."""
    with pytest.raises(GRPCError) as raised:
        await call
    return raised.value


async def expect_status(call: Awaitable[object], status: Status, field: str | None = None) -> GRPCError:
    """Assert ``call`` fails with ``status`` and, if given, a BadRequest detail naming ``field``."""
    error = await status_of(call)
    assert error.status is status, (error.status, error.message)
    assert error.message, "every error carries a message"
    if field is not None:
        violations = [
            v.field
            for detail in error.details or []
            if isinstance(detail, error_details_pb2.BadRequest)
            for v in detail.field_violations
        ]
        assert violations == [field], (violations, error.message)
    return error
