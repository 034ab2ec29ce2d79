"""Typed Python SDK for the chat platform's internal gRPC API.

Two targets of the same schema ship side by side:

* ``chat_sdk.v1``: betterproto2 dataclasses with grpclib stubs (``MessageServiceStub``)
  and server bases (``MessageServiceBase``);
* ``chat.v1``: the standard protobuf ``_pb2`` modules with mypy-protobuf stubs, and
  grpclib stubs over them in ``chat.v1.<file>_grpc``.

Both encode to the same bytes; convert between them through bytes. This package adds
a small client layer: :func:`connect` (address, TLS, token) and
:func:`call_with_retry` (backoff within one deadline, for calls safe to repeat), and
:class:`FastCodec` (upb encodes and parses the dataclasses: ``connect(..., codec=FastCodec())``). The
compiled schema is available from :mod:`chat_sdk.schema`.
"""

from chat_sdk._version import __version__
from chat_sdk.channel import connect, parse_target
from chat_sdk.codec import FastCodec
from chat_sdk.retry import RetryPolicy, call_with_retry, is_retry_safe

__all__ = [
    "FastCodec",
    "RetryPolicy",
    "__version__",
    "call_with_retry",
    "connect",
    "is_retry_safe",
    "parse_target",
]
