"""Opening channels to a chat service: address, TLS and mTLS, tokens, a connection pool, deadlines, traces."""

from __future__ import annotations

import inspect
import ipaddress
import itertools
import socket
import ssl as _ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from grpclib.client import Channel, Stream
from grpclib.config import Configuration
from grpclib.const import Cardinality
from grpclib.encoding.base import CodecBase
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.events import SendRequest, listen
from grpclib.metadata import Deadline
from grpclib.protocol import H2Protocol

from chat_sdk._compressed import DEFAULT_MAX_MESSAGE_BYTES, ClientCompression, CompressedStream
from chat_sdk._tracing import TracedStream, start_client_span, tracer_from
from chat_sdk.compression import DEFAULT_MIN_BYTES, check_encoding
from chat_sdk.schema import file_descriptor_set

AUTHORIZATION = "authorization"
DEFAULT_UNARY_TIMEOUT = 30.0  # seconds; streams get no default deadline

TokenProvider = Callable[[], "str | Awaitable[str]"]
"""Returns the current token on every call; may be async, and may refresh it when it nears expiry."""

_Send = TypeVar("_Send")
_Recv = TypeVar("_Recv")


def parse_target(target: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 as ``[::1]:50051``) into host and port, with a clear error."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"target {target!r} is not host:port (IPv6 as [::1]:50051)")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"target {target!r} has port {port}, outside 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


@cache
def default_timeouts() -> Mapping[str, float]:
    """The default deadline of every unary method of the schema (``/chat.v1.Service/Method``)."""
    return {
        f"/{file.package}.{service.name}/{method.name}": DEFAULT_UNARY_TIMEOUT
        for file in file_descriptor_set().file
        for service in file.service
        for method in service.method
        if not method.client_streaming and not method.server_streaming
    }


def tls_context(
    root_certificates: Path | str | None = None,
    client_cert: Path | str | None = None,
    client_key: Path | str | None = None,
) -> _ssl.SSLContext:
    """A client TLS context speaking h2, trusting ``root_certificates`` (else the system's CAs).

    ``client_cert`` (and ``client_key``, unless the key is in the same PEM) turn on mutual TLS.
    """
    context = _ssl.create_default_context(
        cafile=None if root_certificates is None else str(root_certificates)
    )
    if client_cert is not None:
        context.load_cert_chain(str(client_cert), None if client_key is None else str(client_key))
    elif client_key is not None:
        raise ValueError("client_key needs client_cert")
    context.set_alpn_protocols(["h2"])
    return context


# Passive health, as gRPC's round_robin does it: an endpoint whose connection attempt failed
# is skipped for a backoff that doubles with each failure in a row, and tried again after it.
EJECTION_BASE_SECONDS = 1.0
EJECTION_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class Endpoint:
    """One address to connect to; ``server_name`` is checked in TLS when it differs from ``host``."""

    host: str
    port: int
    server_name: str | None = None


class _Endpointed(Channel):
    """A connection that remembers failed connection attempts (the balancer skips it meanwhile)."""

    failures: int = 0
    ejected_until: float = 0.0

    async def __connect__(self) -> H2Protocol:
        try:
            protocol = await super().__connect__()
        except OSError:  # refused, reset, unreachable, TLS handshake failures
            self.failures += 1
            backoff = EJECTION_BASE_SECONDS * 2 ** min(self.failures - 1, 16)
            self.ejected_until = time.monotonic() + min(EJECTION_MAX_SECONDS, backoff)
            raise
        self.failures, self.ejected_until = 0, 0.0
        return protocol


def _member(
    endpoint: Endpoint, ssl: _ssl.SSLContext | None, codec: CodecBase | None, details: ProtoStatusDetailsCodec
) -> _Endpointed:
    config = Configuration(ssl_target_name_override=endpoint.server_name) if endpoint.server_name else None
    return _Endpointed(
        endpoint.host, endpoint.port, ssl=ssl, codec=codec, status_details_codec=details, config=config
    )


class ChatChannel(_Endpointed):
    """A grpclib ``Channel`` over ``pool_size`` HTTP/2 connections to each endpoint, used round-robin.

    With several endpoints (``endpoints``, or a DNS name with several addresses given to
    :func:`connect`), calls go round-robin over those whose last connection attempt did not
    fail; a failed one is skipped for a backoff (1 s, doubling, at most 30 s), then tried
    again, as gRPC's ``round_robin`` policy does. When every endpoint is failing, the one
    that failed longest ago is tried. Calls without a timeout get the method's default
    deadline; with OpenTelemetry installed each call is a client span whose context travels
    as ``traceparent``. ``compression`` says how calls compress (see :func:`connect`); None
    sends and accepts plain messages only, as grpclib does.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: _ssl.SSLContext | None = None,
        pool_size: int = 1,
        timeouts: Mapping[str, float] | None = None,
        tracer_provider: Any | None = None,
        codec: CodecBase | None = None,
        endpoints: Sequence[Endpoint] = (),
        server_name: str | None = None,
        compression: ClientCompression | None = None,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        details = ProtoStatusDetailsCodec()
        config = Configuration(ssl_target_name_override=server_name) if server_name else None
        super().__init__(host, port, ssl=ssl, codec=codec, status_details_codec=details, config=config)
        first = Endpoint(host, port, server_name)
        others: list[_Endpointed] = [
            _member(endpoint, ssl, codec, details)
            for index, endpoint in enumerate([first, *endpoints])
            for _ in range(pool_size - 1 if index == 0 else pool_size)
        ]
        self.members: list[_Endpointed] = [self, *others]
        self._next = itertools.cycle(self.members)
        self.timeouts = {**default_timeouts(), **(timeouts or {})}
        self._tracer = tracer_from(tracer_provider)
        self.compression = compression

    def _pick(self) -> _Endpointed:
        """The next member not ejected for a failed connection; the longest-ejected if all are."""
        now = time.monotonic()
        for _ in range(len(self.members)):
            member = next(self._next)
            if member.ejected_until <= now:
                return member
        return min(self.members, key=lambda member: member.ejected_until)

    def request(
        self,
        name: str,
        cardinality: Cardinality,
        request_type: type[_Send],
        reply_type: type[_Recv],
        *,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        metadata: Any = None,
    ) -> Stream[_Send, _Recv]:
        """Open a call on the next connection of the pool (see ``grpclib.client.Channel.request``)."""
        if timeout is None and deadline is None:
            timeout = self.timeouts.get(name)
        member = self._pick()
        span = None
        if self._tracer is not None:
            metadata = list(metadata.items() if isinstance(metadata, Mapping) else metadata or ())
            span = start_client_span(self._tracer, name, metadata)
        stream = Channel.request(
            member,
            name,
            cardinality,
            request_type,
            reply_type,
            timeout=timeout,
            deadline=deadline,
            metadata=metadata,
        )
        if self.compression is not None:
            stream = CompressedStream.adopt(stream, self.compression)
        if span is None:
            return stream
        # Same interface as the stream; its ``async with`` also ends the span.
        return cast("Stream[_Send, _Recv]", TracedStream(stream, span))

    def close(self) -> None:
        """Close every connection of the pool."""
        for member in self.members:
            Channel.close(member)


def connect(
    target: str | Sequence[str],
    *,
    ssl: _ssl.SSLContext | None = None,
    token: str | TokenProvider | None = None,
    root_certificates: Path | str | None = None,
    client_cert: Path | str | None = None,
    client_key: Path | str | None = None,
    pool_size: int = 1,
    timeouts: Mapping[str, float] | None = None,
    tracer_provider: Any | None = None,
    codec: CodecBase | None = None,
    compression: str | None = None,
    accept_compression: bool = True,
    compress_min_bytes: int = DEFAULT_MIN_BYTES,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> ChatChannel:
    """Return a channel to ``target`` (``host:port``); close it with ``channel.close()`` or ``async with``.

    ``target`` may also be several ``host:port`` targets (a list, or one string separated
    by commas), and a DNS name is resolved once here to every address it has (a
    Kubernetes headless Service, say): calls are then balanced round-robin over the
    addresses that are up (see :class:`ChatChannel`); TLS still checks the certificate
    against the name. TLS: pass ``ssl``, or ``root_certificates`` (a CA bundle; the
    system's if omitted with a client certificate) and, for mutual TLS, ``client_cert``
    and ``client_key``. ``token`` is sent on every call as ``authorization: Bearer
    <token>``: a string, or a provider called before each call (sync or async) that
    returns the current token. ``pool_size`` opens that many HTTP/2 connections per
    address, used round-robin. ``timeouts`` overrides the per-method default deadlines
    (:func:`default_timeouts`). ``tracer_provider`` is an OpenTelemetry provider (the
    global one by default). ``codec`` replaces grpclib's protobuf codec (both targets
    already encode with upb).

    Compression (gRPC's, per message): ``compression="zstd"`` (or ``"gzip"``, ``"deflate"``)
    sends requests of ``compress_min_bytes`` or more compressed, when that makes them
    shorter (the server must accept the encoding: the chat services do; a plain grpclib
    server does not, and grpcio reads gzip and deflate only, so it is off by default).
    ``accept_compression`` (on by default) sends
    ``grpc-accept-encoding: identity,zstd,gzip,deflate``, so the server may compress replies;
    a compressed reply is inflated up to ``max_message_bytes``. With
    ``accept_compression=False`` and no ``compression`` the channel sends no compression
    header at all and never receives a compressed message.
    """
    endpoints = [endpoint for one in _targets(target) for endpoint in resolve(*parse_target(one))]
    if isinstance(token, str):
        _check_token(token)
    if ssl is None and (root_certificates or client_cert or client_key):
        ssl = tls_context(root_certificates, client_cert, client_key)
    encoding = check_encoding(compression)
    if compress_min_bytes < 0 or max_message_bytes < 1:
        raise ValueError("compress_min_bytes must be at least 0 and max_message_bytes at least 1")
    compressing = (
        ClientCompression(encoding, compress_min_bytes, accept_compression, max_message_bytes)
        if encoding is not None or accept_compression
        else None
    )
    first, *others = endpoints
    channel = ChatChannel(
        first.host,
        first.port,
        ssl=ssl,
        pool_size=pool_size,
        timeouts=timeouts,
        tracer_provider=tracer_provider,
        codec=codec,
        endpoints=others,
        server_name=first.server_name,
        compression=compressing,
    )
    if token is not None:
        add_token = _token_listener(token)
        for member in channel.members:
            listen(member, SendRequest, add_token)
    return channel


def _targets(target: str | Sequence[str]) -> list[str]:
    targets = [t.strip() for t in target.split(",")] if isinstance(target, str) else list(target)
    if not targets or not all(targets):
        raise ValueError("connect needs at least one host:port target")
    return targets


def resolve(host: str, port: int) -> list[Endpoint]:
    """The addresses of ``host`` (in the resolver's order, each once); an IP address is itself.

    A name with one address stays a name (connecting resolves it again); one with several
    becomes one endpoint per address, each checked in TLS against the name.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [Endpoint(host, port)]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ValueError(f"cannot resolve {host[:200]!r}: {error.strerror}") from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if len(addresses) == 1:
        return [Endpoint(host, port)]
    return [Endpoint(address, port, server_name=host) for address in addresses]


def _check_token(token: str) -> None:
    if not token or any(c in token for c in "\r\n"):
        raise ValueError("token must be a non-empty single line")


def _token_listener(token: str | TokenProvider) -> Callable[[SendRequest], Coroutine[Any, Any, None]]:
    async def add_token(event: SendRequest) -> None:
        if isinstance(token, str):
            current = token
        else:
            produced = token()
            current = await produced if inspect.isawaitable(produced) else produced
            _check_token(current)
        event.metadata[AUTHORIZATION] = f"Bearer {current}"

    return add_token
