"""Typed Python SDK for the chat platform's internal gRPC API.

Two targets of the same schema ship side by side:

* ``chat_sdk.v1``: betterproto2 dataclasses with grpclib stubs (``MessageServiceStub``)
  and server bases (``MessageServiceBase``);
* ``chat.v1``: the standard protobuf ``_pb2`` modules with mypy-protobuf stubs, and
  grpclib stubs over them in ``chat.v1.<file>_grpc``.

Both encode to the same bytes; convert between them through bytes. This package adds
a small client layer: :func:`connect` (address, TLS and mTLS, token providers, a
pool of connections, default deadlines, OpenTelemetry client spans when installed,
gRPC compression negotiated per the spec: :mod:`chat_sdk.compression`)
and :func:`call_with_retry` (backoff within one deadline, honouring ``RetryInfo``; a
server that is down or restarting counts as ``UNAVAILABLE``). The
dataclasses encode and parse with upb, the protobuf runtime's C code, on every path
(:class:`FastCodec`, which asked for it in 2.0.0, is now grpclib's plain codec). The
compiled schema is available from :mod:`chat_sdk.schema`.
"""

from chat_sdk._version import __version__
from chat_sdk.channel import ChatChannel, TokenProvider, connect, default_timeouts, parse_target, tls_context
from chat_sdk.codec import FastCodec
from chat_sdk.retry import RetryPolicy, call_with_retry, is_retry_safe, retry_delay

__all__ = [
    "ChatChannel",
    "FastCodec",
    "RetryPolicy",
    "TokenProvider",
    "__version__",
    "call_with_retry",
    "connect",
    "default_timeouts",
    "is_retry_safe",
    "parse_target",
    "retry_delay",
    "tls_context",
]
