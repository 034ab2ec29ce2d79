"""Opening a grpclib channel to a chat service: address, TLS and token authentication."""

from __future__ import annotations

import ssl as _ssl

from grpclib.client import Channel
from grpclib.encoding.base import CodecBase
from grpclib.events import SendRequest, listen

AUTHORIZATION = "authorization"


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


def connect(
    target: str,
    *,
    ssl: _ssl.SSLContext | None = None,
    token: str | None = None,
    codec: CodecBase | None = None,
) -> Channel:
    """Return a channel to ``target`` (``host:port``); close it with ``channel.close()`` or ``async with``.

    ``ssl`` turns on TLS (set ALPN ``h2`` on your own contexts; grpclib's default
    client context does). ``token`` is sent on every call as ``authorization: Bearer
    <token>``, the way the platform's services authenticate callers without mTLS.
    ``codec=FastCodec()`` has upb encode and parse the dataclass target's messages.
    """
    host, port = parse_target(target)
    if token is not None and (not token or any(c in token for c in "\r\n")):
        raise ValueError("token must be a non-empty single line")
    channel = Channel(host, port, ssl=ssl, codec=codec)
    if token is not None:
        header = f"Bearer {token}"

        async def add_token(event: SendRequest) -> None:
            event.metadata[AUTHORIZATION] = header

        listen(channel, SendRequest, add_token)
    return channel
