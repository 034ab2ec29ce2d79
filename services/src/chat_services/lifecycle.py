"""Serving, draining, stopped: what every handler needs to know about the server's life.

On SIGTERM the server starts draining: health turns NOT_SERVING, new calls get
UNAVAILABLE, long-lived streams are told to end, and running calls get a grace
period to finish before the server closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from grpclib.const import Status
from grpclib.events import RecvRequest
from grpclib.exceptions import GRPCError

from chat_services.errors import ServiceError, to_grpc_error

T = TypeVar("T")
log = logging.getLogger("chat_services.calls")

# Health and reflection keep answering while draining (health then says NOT_SERVING),
# and their long-lived Watch streams do not hold shutdown up.
INFRASTRUCTURE_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class Lifecycle:
    """Tracks running calls and the draining state; shared by every service."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def draining(self) -> bool:
        """True once shutdown has begun."""
        return self.stopping.is_set()

    @property
    def active_calls(self) -> int:
        """How many calls are running now."""
        return self._active

    def begin_draining(self) -> None:
        """Refuse new calls and ask long-lived streams to end."""
        self.stopping.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no call runs, at most ``timeout`` seconds; True if idle."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def until_stopping(self, awaitable: Awaitable[T]) -> T | None:
        """Await ``awaitable``, or return None as soon as draining begins (cancelling it)."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()  # also when this call itself is cancelled: nothing is left pending
        if task in done:
            return task.result()
        return None

    async def on_request(self, event: RecvRequest) -> None:
        """grpclib ``RecvRequest`` listener: refuse while draining, count and log every call."""
        if event.method_name.startswith(INFRASTRUCTURE_PREFIXES):
            return
        if self.draining:
            raise GRPCError(Status.UNAVAILABLE, "the server is shutting down; retry on another instance")
        handler = event.method_func
        method = event.method_name
        peer = event.peer  # its address is looked up only for the log of an unexpected error

        async def tracked(stream: Any) -> None:
            self._active += 1
            self._idle.clear()
            try:
                await handler(stream)
            except GRPCError:
                raise
            except asyncio.CancelledError:
                raise
            except ServiceError as error:  # raised outside a handler's grpc_status(), e.g. by storage
                raise to_grpc_error(error) from None
            except Exception:
                log.exception("unexpected error in %s from %s", method, peer.addr())
                raise GRPCError(
                    Status.INTERNAL, f"internal error in {method}; the server logged it"
                ) from None
            finally:
                self._active -= 1
                if self._active == 0:
                    self._idle.set()

        event.method_func = tracked
