"""grpclib's protobuf codec, named for the SDK: the dataclasses already encode and parse with upb.

Every dataclass of :mod:`chat_sdk.v1` encodes and parses through its ``_pb2`` twin
(``chat_sdk._wire``), so grpclib's own codec, which calls ``SerializeToString`` and
``FromString``, is fast for both targets on any channel. :class:`FastCodec` is kept for
code written when it had to be asked for::

    channel = chat_sdk.connect("127.0.0.1:50051", codec=chat_sdk.FastCodec())
"""

from __future__ import annotations

from grpclib.encoding.proto import ProtoCodec


class FastCodec(ProtoCodec):
    """grpclib's protobuf codec: dataclasses and ``_pb2`` messages alike go through upb."""
