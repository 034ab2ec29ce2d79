"""The codec microbenchmark: encode and parse one realistic Message in each codec the SDK has.

The message is a stored one, as the service returns it (author, a file, timestamps),
so its size and shape are what clients meet. Each codec's encode and parse are timed
in interleaved rounds (every round times every operation once, in a rotated order),
and each figure is the median over rounds of the fastest of a few repeats.

==================  =======================================================
``upb``             the standard target (``_pb2``): the protobuf runtime's C code
``dataclass``       the SDK's dataclass target as shipped (``chat_sdk.v1``):
                    its C codec, ``chat_sdk._fastwire``
``python-path``     the same classes through the SDK's Python path over upb
                    (what a wheel built without the C codec runs)
``betterproto2``    betterproto2's own pure-Python codec on the same classes,
                    timed in a fresh interpreter that never imports
                    ``chat_sdk.v1`` (which installs the SDK's codec)
==================  =======================================================
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field

import chat_sdk.v1 as dc
from chat.v1 import message_service_pb2 as pb
from chat_sdk import _wire

CODECS = ("upb", "dataclass", "python-path", "betterproto2")
PARSE_TARGET = 5.0  # the dataclass target within 5x of upb
ENCODE_TARGET = 5.0


@dataclass
class CodecResults:
    """Microseconds per operation, per round, by (codec, "parse" | "encode")."""

    message_bytes: int
    rounds: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def micros(self, codec: str, operation: str) -> float:
        """The median over rounds."""
        return statistics.median(self.rounds[(codec, operation)])

    def ratio(self, codec: str, operation: str, against: str = "upb") -> float:
        """Median of in-round ratios of ``codec`` to ``against``."""
        pairs = zip(self.rounds[(codec, operation)], self.rounds[(against, operation)], strict=True)
        return statistics.median(mine / theirs for mine, theirs in pairs)


def operations(data: bytes) -> dict[tuple[str, str], Callable[[], object]]:
    """Every in-process codec's parse and encode of ``data`` (a serialized ``chat.v1.Message``)."""
    standard = pb.Message.FromString(data)
    dataclass_message = dc.Message.parse(data)
    timed: dict[tuple[str, str], Callable[[], object]] = {
        ("upb", "parse"): lambda: pb.Message.FromString(data),
        ("upb", "encode"): standard.SerializeToString,
        ("dataclass", "parse"): lambda: dc.Message.parse(data),
        ("dataclass", "encode"): lambda: bytes(dataclass_message),
    }
    if hasattr(_wire, "UPB_PARSERS"):  # SDKs with the C codec keep the Python path beside it
        parse, serialize = _wire.UPB_PARSERS[dc.Message], _wire.UPB_SERIALIZERS[dc.Message]
        timed[("python-path", "parse")] = lambda: parse(data)
        timed[("python-path", "encode")] = lambda: serialize(dataclass_message)
    return timed


# Run by a fresh interpreter: betterproto2's own codec on classes the SDK has not touched,
# timed against upb in the same process; prints {"upb parse": µs, ...} as JSON.
_PURE_BETTERPROTO2 = """
import json, sys, timeit
from chat.v1 import message_service_pb2 as pb
from chat_sdk._generated.chat import v1 as generated
assert "parse" not in vars(generated.Message), "the SDK's codec is installed: not betterproto2's own"
data = sys.stdin.buffer.read()
standard, message = pb.Message.FromString(data), generated.Message.parse(data)
calls = {
    "upb parse": lambda: pb.Message.FromString(data),
    "upb encode": standard.SerializeToString,
    "betterproto2 parse": lambda: generated.Message.parse(data),
    "betterproto2 encode": lambda: bytes(message),
}
number = {"upb parse": 20000, "upb encode": 20000, "betterproto2 parse": 300, "betterproto2 encode": 300}
best = {k: min(timeit.repeat(c, number=number[k], repeat=3)) / number[k] * 1e6 for k, c in calls.items()}
print(json.dumps(best))
"""


def _pure_betterproto2(data: bytes, rounds: int) -> dict[tuple[str, str], list[float]]:
    """betterproto2's own codec, as a ratio to upb per round, scaled onto this process's upb figures."""
    if importlib.util.find_spec("chat_sdk._wire") is None:  # an SDK older than 2.1: no codec of its own
        return {}
    found: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", _PURE_BETTERPROTO2], input=data, capture_output=True, check=True
        )
        figures = json.loads(done.stdout)
        for operation in ("parse", "encode"):
            ratio = figures[f"betterproto2 {operation}"] / figures[f"upb {operation}"]
            found.setdefault(("betterproto2", operation), []).append(ratio)
    return found


def measure(data: bytes, rounds: int = 7, seconds_per_figure: float = 0.05) -> CodecResults:
    """Time every operation of :func:`operations` in ``rounds`` interleaved rounds."""
    timed = operations(data)
    numbers = {key: _number_for(call, seconds_per_figure) for key, call in timed.items()}
    results = CodecResults(len(data))
    keys = list(timed)
    for round_number in range(rounds):
        shift = round_number % len(keys)
        for key in keys[shift:] + keys[:shift]:
            number = numbers[key]
            best = min(timeit.repeat(timed[key], number=number, repeat=3)) / number
            results.rounds.setdefault(key, []).append(best * 1e6)
    # The pure codec's figures come from another process: kept as ratios to upb, shown in
    # this process's microseconds (each round's ratio times this round's upb figure).
    for key, ratios in _pure_betterproto2(data, rounds).items():
        upb = results.rounds[("upb", key[1])]
        results.rounds[key] = [ratio * micros for ratio, micros in zip(ratios, upb, strict=True)]
    return results


def _number_for(call: Callable[[], object], seconds: float) -> int:
    """How many calls take about ``seconds``."""
    number, spent = 1, 0.0
    while spent < seconds / 10:
        number *= 4
        spent = timeit.timeit(call, number=number)
    return max(1, int(number * seconds / max(spent, 1e-9)))


def table(results: CodecResults) -> str:
    """µs per operation and the ratio to upb, for every codec measured."""
    lines = ["| codec | parse µs | parse x upb | encode µs | encode x upb |", "|---|---|---|---|---|"]
    for codec in CODECS:
        if (codec, "parse") not in results.rounds:
            continue
        cells = [codec]
        for operation in ("parse", "encode"):
            if (codec, operation) in results.rounds:
                cells += [f"{results.micros(codec, operation):.2f}", f"{results.ratio(codec, operation):.1f}"]
            else:
                cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
