"""The latency floor in the benchmark's report: each shape's p50 at c=1 on the protocol stacks alone.

Measured in the same interleaved rounds as every client's p50 (runner._rounds): the `_pb2`
client against (a) a bare grpclib server and the HTTP/JSON client against (b) the HTTP/JSON
baseline's stack, each answering the real server's replies, recorded once, with no storage
and no layers (chat_bench.floor_servers). (a) ÷ the HTTP/JSON server's whole call, in-round,
is what the HTTP/2 stack alone takes with this client: if it is above a shape's target in
every round, no server on this stack meets that target (none answers with less work), and
that is the floor. Each shape's row says in one sentence what its figures show, and no more.
"""

from __future__ import annotations

from chat_bench.floor_servers import FLOOR_GRPCLIB, FLOOR_HTTP_JSON
from chat_bench.runner import BASELINE, Results
from chat_bench.spread import Spread
from chat_bench.targets import latency_target, target_groups

CLIENT = "pb2"  # the client whose targets the floor bounds (issue 26)
FLOOR, NOT_FLOOR, UNSETTLED = "floor", "not the floor", "unsettled"


def _has(results: Results, shape: str, name: str) -> bool:
    """Whether ``name`` has a p50 in every round the HTTP/JSON server has one."""
    rounds = len(results.p50s(shape, BASELINE))
    return rounds > 0 and len(results.p50s(shape, name)) == rounds


def measured(results: Results, shape: str) -> bool:
    """Whether the run measured ``shape`` on the bare grpclib server and on the HTTP/JSON server."""
    return _has(results, shape, FLOOR_GRPCLIB)


def measured_shapes(results: Results) -> list[str]:
    """The shapes with a floor figure, in the run's order."""
    return [shape.name for shape in results.shapes if measured(results, shape.name)]


def floor_ratio(results: Results, shape: str) -> Spread:
    """In-round p50 of the `_pb2` client on the bare grpclib server ÷ the HTTP/JSON server's."""
    return results.ratios(shape, FLOOR_GRPCLIB)


def word(results: Results, shape: str) -> str:
    """floor (above the target in every round), not the floor (below in every round), or unsettled."""
    ratio, target = floor_ratio(results, shape), latency_target(shape)
    if ratio.low > target:
        return FLOOR
    if ratio.high < target:
        return NOT_FLOOR
    return UNSETTLED


def _ms(results: Results, shape: str, name: str) -> str:
    return Spread.of(results.p50s(shape, name)).text(2, 1000)


def sentence(results: Results, shape: str) -> str:
    """What the bare stack's ratio against the shape's target shows, in one sentence."""
    ratio, target = floor_ratio(results, shape), latency_target(shape)
    figures = (
        f"the HTTP/2 stack alone answers in {_ms(results, shape, FLOOR_GRPCLIB)} ms, "
        f"{ratio.text()}x the HTTP/JSON server's whole call ({_ms(results, shape, BASELINE)} ms)"
    )
    found = word(results, shape)
    if found == FLOOR:
        return (
            f"The floor: {figures}, above {target:.1f}x in every round: on this stack no server "
            f"meets ≤ {target:.1f}x on this shape, before any handler work."
        )
    if found == NOT_FLOOR:
        return (
            f"Not the floor: {figures}, below {target:.1f}x in every round: the stack alone does not "
            f"rule out ≤ {target:.1f}x; what a server adds above it decides."
        )
    return (
        f"Unsettled: {figures}; the rounds disagree on which side of {target:.1f}x it is (inside the "
        "noise), so this run does not show the stack alone to be the floor."
    )


def table(results: Results) -> str:
    """Per shape: the HTTP/JSON server's p50, the stacks' alone and this server's as ratios, a sentence."""
    header = [
        "shape (p50, c=1)",
        "target",
        "HTTP/JSON server ms",
        "(a) bare grpclib ms",
        "(a) ÷ HTTP/JSON server",
        "(b) HTTP/JSON stack ÷ HTTP/JSON server",
        "this server ÷ HTTP/JSON server",
        "what it shows",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for shape in measured_shapes(results):
        others = [
            results.ratios(shape, name).text() if _has(results, shape, name) else "-"
            for name in (FLOOR_HTTP_JSON, CLIENT)
        ]
        cells = [
            shape,
            f"≤ {latency_target(shape):.1f}x",
            _ms(results, shape, BASELINE),
            _ms(results, shape, FLOOR_GRPCLIB),
            floor_ratio(results, shape).text(),
            *others,
            sentence(results, shape),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def criteria_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """One row per latency target (the small calls, every other shape) over the shapes measured."""
    rows = []
    for label, names in target_groups(measured_shapes(results)):
        target = latency_target(names[0])
        words = {name: word(results, name) for name in names}
        result = (
            f"**{words[names[0]]}**"
            if len(set(words.values())) == 1
            else "; ".join(f"{name} **{found}**" for name, found in words.items())
        )
        rows.append(
            (
                f"latency floor, {label}: bare grpclib server with constant replies"
                " / HTTP/JSON server's whole call (p50, c=1)",
                f"the floor if > {target:.1f}x in every round"
                f" (≤ {target:.1f}x then out of reach on this stack)",
                "; ".join(f"{name} {floor_ratio(results, name).text()}" for name in names),
                result,
            )
        )
    return rows


def section(results: Results) -> str:
    """The report's latency-floor section: the table, or a line saying it was not measured."""
    if not measured_shapes(results):
        return "Not measured in this run."
    return table(results)
