"""The wire boundary: every request message is size-checked, then parsed by the protobuf runtime.

grpclib accepts messages of any size and the dataclass codec accepts truncated bytes
silently, so the server decodes with the standard target's runtime (upb), which
rejects malformed input, after refusing anything over the configured limit.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError


def too_large(name: str, size: int, limit: int) -> GRPCError:
    """RESOURCE_EXHAUSTED for a ``name`` message of ``size`` bytes over the ``limit``."""
    return GRPCError(
        Status.RESOURCE_EXHAUSTED, f"{name} of {size} bytes exceeds the {limit}-byte message limit"
    )


class BoundedProtoCodec(ProtoCodec):
    """grpclib's protobuf codec with a message size limit and clear decode errors."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes

    def decode(self, data: bytes, message_type: Any) -> Any:
        """Parse ``data``: RESOURCE_EXHAUSTED if too big, INVALID_ARGUMENT if malformed."""
        name = message_type.DESCRIPTOR.full_name
        if len(data) > self.max_message_bytes:
            raise too_large(name, len(data), self.max_message_bytes)
        try:
            return message_type.FromString(data)
        except DecodeError as error:
            raise GRPCError(Status.INVALID_ARGUMENT, f"malformed {name}: {error}") from error
