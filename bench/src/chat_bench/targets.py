"""Issue 26's latency targets for the `_pb2` client at c=1: the small calls at least as fast as
HTTP/JSON, every other shape twice as fast (p50 ÷ the HTTP/JSON server's p50)."""

from __future__ import annotations

LATENCY_TARGET = 0.5  # gRPC p50 at most half the baseline's: >= 50% lower
SMALL_CALLS = {"GetMessage small": 1.0, "StreamCompletion": 1.0}


def latency_target(shape: str) -> float:
    """The p50 ratio a shape must reach: 1.0 for the small calls, 0.5 for the rest."""
    return SMALL_CALLS.get(shape, LATENCY_TARGET)


def target_groups(shapes: list[str]) -> list[tuple[str, list[str]]]:
    """``shapes`` split by target, in their order: the small calls, then every other shape (none empty)."""
    groups = [
        ("small calls", [name for name in shapes if name in SMALL_CALLS]),
        ("every other shape", [name for name in shapes if name not in SMALL_CALLS]),
    ]
    return [(label, names) for label, names in groups if names]
