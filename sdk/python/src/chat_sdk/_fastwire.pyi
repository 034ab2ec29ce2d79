"""Types of the C codec (``_fastwire.c``); plans are built by :mod:`chat_sdk._native`."""

from collections.abc import Callable
from typing import Any

TIMESTAMP: int
DURATION: int
MAP: int
REPEATED: int
PRESENCE: int

class Plan:
    """How one dataclass of the schema is read from and written to the wire."""

    cls: type
    def __init__(
        self, cls: type, parse_fallback: Callable[[bytes], Any], serialize_fallback: Callable[[Any], bytes]
    ) -> None: ...
    def fill(self, fields: tuple[tuple[Any, ...], ...], oneofs: int, /) -> None: ...
    def parse(self, data: bytes, /) -> Any: ...
    def serialize(self, message: Any, /) -> bytes: ...
