"""The guard: one grpclib ``RecvRequest`` listener that authenticates, authorizes and rate-limits.

Refusals are decided in the listener; the call then runs a stand-in handler that
raises the refusal, so metrics and traces see it like any other status. An admitted
call runs with its caller bound (see :func:`~chat_services.security.identity.current_identity`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from grpclib._typing import IServerMethodFunc
from grpclib.events import RecvRequest
from grpclib.exceptions import GRPCError

from chat_services.security import refusals
from chat_services.security.authn import Authenticator
from chat_services.security.identity import Identity, bind_identity, unbind_identity
from chat_services.security.meter import Meter, bind_meter, unbind_meter
from chat_services.security.ratelimit import RateLimiter
from chat_services.security.scopes import DEFAULT_OPEN_PREFIXES, missing_scopes
from chat_services.security.tokens import TokenRejected

Handler = IServerMethodFunc


class RefusalCounter(Protocol):
    """Where the guard reports refusals (the server's metrics)."""

    def refused(self, method: str, reason: str) -> None:
        """Count one refused call."""


class Guard:
    """Decides, per call, who is calling and whether they may."""

    def __init__(
        self,
        authenticator: Authenticator,
        limiter: RateLimiter | None,
        *,
        streaming_methods: Collection[str],
        open_prefixes: tuple[str, ...] = DEFAULT_OPEN_PREFIXES,
        counter: RefusalCounter | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.limiter = limiter
        self.streaming_methods = frozenset(streaming_methods)
        self.open_prefixes = open_prefixes
        self.counter = counter

    @property
    def decides(self) -> bool:
        """Whether any call can be refused: an open server without limits admits every one."""
        return self.authenticator.enforced or self.limiter is not None

    async def on_request(self, event: RecvRequest) -> None:
        """grpclib ``RecvRequest`` listener."""
        method = event.method_name
        if not self.decides:
            return  # nothing to decide: an open server without limits
        address = "addr:" + _peer_host(event)
        if method.startswith(self.open_prefixes):
            # Health and reflection need no credentials, but their streams are capped per address.
            if self.limiter is not None and method in self.streaming_methods:
                event.method_func = self._admitted(event.method_func, None, address, method)
            return
        try:
            identity = self._identify(event)
        except GRPCError as unauthenticated:
            # Calls without valid credentials are rate limited by address, like any other.
            event.method_func = _refuse(await self._limited(address, method) or unauthenticated)
            return
        caller = identity.principal if identity else address
        limited = await self._limited(caller, method)
        if limited is not None:
            event.method_func = _refuse(limited)
            return
        event.method_func = self._admitted(event.method_func, identity, caller, method)

    async def _limited(self, caller: str, method: str) -> GRPCError | None:
        """RESOURCE_EXHAUSTED when ``caller`` has no call of ``method`` left, else None (one is taken)."""
        if self.limiter is None:
            return None
        retry_after = await self.limiter.try_acquire(caller, method)
        if retry_after is None:
            return None
        self._count(method, "RATE_LIMITED")
        return refusals.rate_limited(
            method, retry_after, f"too many {method} calls; retry in {retry_after:.3g} s"
        )

    def _identify(self, event: RecvRequest) -> Identity | None:
        if not self.authenticator.enforced:
            return None
        method = event.method_name
        try:
            identity = self.authenticator.authenticate(event.metadata, event.peer.cert())
        except TokenRejected as rejected:
            self._count(method, rejected.reason)
            raise refusals.unauthenticated(rejected.reason, rejected.message, method) from None
        missing = missing_scopes(method, identity.scopes)
        if missing is None or missing:
            self._count(method, "PERMISSION_DENIED")
            raise refusals.permission_denied(method, missing)
        return identity

    def _admitted(self, handler: Handler, identity: Identity | None, caller: str, method: str) -> Handler:
        limiter = self.limiter
        # The limiter that counts this call's open streams, if it is a streaming call.
        streams = limiter if method in self.streaming_methods else None
        meter = None if limiter is None else Meter(limiter, caller, method)

        async def run(stream: Any) -> None:
            if streams is not None and not streams.open_stream(caller):
                self._count(method, "TOO_MANY_STREAMS")
                raise refusals.rate_limited(
                    method, 1.0, f"at most {streams.config.max_streams} open streams per caller"
                )
            token = bind_identity(identity)
            metered = bind_meter(meter)
            try:
                await handler(stream)
            finally:
                unbind_meter(metered)
                unbind_identity(token)
                if streams is not None:
                    streams.close_stream(caller)

        return run

    def _count(self, method: str, reason: str) -> None:
        if self.counter is not None:
            self.counter.refused(method, reason)


def _refuse(refusal: GRPCError) -> Handler:
    async def refuse(stream: Any) -> None:
        raise refusal

    return refuse


def _peer_host(event: RecvRequest) -> str:
    address = event.peer.addr()
    return str(address[0]) if address else "unknown"
