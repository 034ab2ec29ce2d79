"""A grpclib codec for the dataclass target that encodes and parses with upb (the protobuf runtime).

betterproto2 encodes and parses in pure Python, two orders of magnitude slower than
upb; on a stream that is most of the client's time. :class:`FastCodec` keeps the
dataclasses as the API and moves the wire work to upb::

    channel = chat_sdk.connect("127.0.0.1:50051", codec=chat_sdk.FastCodec())
    stub = chat_sdk.v1.MessageServiceStub(channel)

The dataclasses it returns equal betterproto2's own parse of the same bytes (the
targets-agree tests check this on random messages of every type); bytes carrying
fields of a newer schema go through betterproto2, which keeps them. `_pb2` messages
pass through unchanged, so one channel serves both targets.
"""

from __future__ import annotations

from typing import Any

import betterproto2
from grpclib.encoding.proto import ProtoCodec

from chat_sdk import _convert


class FastCodec(ProtoCodec):
    """grpclib's protobuf codec, with upb doing the wire work for betterproto2 dataclasses."""

    def encode(self, message: Any, message_type: Any) -> bytes:
        """Serialize ``message``; a dataclass goes through its `_pb2` twin."""
        if isinstance(message, betterproto2.Message):
            if not isinstance(message, message_type):
                raise TypeError(f"message must be of type {message_type!r}, not {type(message)!r}")
            return _convert.serialize(message)
        return super().encode(message, message_type)

    def decode(self, data: bytes, message_type: Any) -> Any:
        """Parse ``data`` into ``message_type``; a dataclass is built from upb's parse."""
        if isinstance(message_type, type) and issubclass(message_type, betterproto2.Message):
            return _convert.parse(data, message_type)
        return super().decode(data, message_type)
