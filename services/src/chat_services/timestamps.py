"""Wall-clock instants on the wire: nanoseconds since the epoch as ``google.protobuf.Timestamp``."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(nanoseconds: int) -> Timestamp:
    """The Timestamp of ``nanoseconds`` since 1970-01-01 UTC."""
    stamp = Timestamp()
    stamp.FromNanoseconds(nanoseconds)
    return stamp
