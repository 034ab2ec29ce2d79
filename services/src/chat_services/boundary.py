"""The wire boundary: every request message is size-checked, parsed by the protobuf runtime, then validated.

grpclib accepts messages of any size and the dataclass codec accepts truncated bytes
silently, so the server decodes with the standard target's runtime (upb), which
rejects malformed input, after refusing anything over the configured limit. The
parsed message is then held to the buf.validate rules of its schema, so no handler
sees a request that breaks a declared limit.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError

from chat_services.validation import RequestValidator


def too_large(name: str, size: int, limit: int) -> GRPCError:
    """RESOURCE_EXHAUSTED for a ``name`` message of ``size`` bytes over the ``limit``."""
    return GRPCError(
        Status.RESOURCE_EXHAUSTED, f"{name} of {size} bytes exceeds the {limit}-byte message limit"
    )


class BoundedProtoCodec(ProtoCodec):
    """grpclib's protobuf codec with a message size limit, clear decode errors and schema rules."""

    def __init__(self, max_message_bytes: int, validator: RequestValidator | None = None) -> None:
        self.max_message_bytes = max_message_bytes
        self.validator = validator or RequestValidator()

    def decode(self, data: bytes, message_type: Any) -> Any:
        """Parse ``data``: RESOURCE_EXHAUSTED if too big, INVALID_ARGUMENT if malformed or breaking a rule."""
        name = message_type.DESCRIPTOR.full_name
        if len(data) > self.max_message_bytes:
            raise too_large(name, len(data), self.max_message_bytes)
        try:
            message = message_type.FromString(data)
        except DecodeError as error:
            raise GRPCError(Status.INVALID_ARGUMENT, f"malformed {name}: {error}") from error
        self.validator.check(message)
        return message
