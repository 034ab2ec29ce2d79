"""The latency floor in the benchmark's report: each shape's p50 at c=1 on the protocol stacks alone.

Measured in the same interleaved rounds as every client's p50 (runner._rounds): the `_pb2`
client against (a) a bare grpclib server and the HTTP/JSON client against (b) the HTTP/JSON
baseline's stack, each answering the real server's replies, recorded once, with no storage
and no layers (chat_bench.floor_servers). Each stack decodes the request and encodes the
reply with its own codec, so what (a) and (b) leave out is the work the two real servers
share: the HTTP/JSON server runs this server's very handler objects and storage.

Write that shared work H: the gRPC call takes about a + H, the HTTP/JSON call b + H, and
their ratio (a + H) ÷ (b + H) lies between a ÷ b and 1 whatever H is. So when a ÷ b is
above a shape's target in every round (and the target is at most 1), no server on this
stack meets the target while doing the same work as the HTTP/JSON server: that is the
floor. When a ÷ b is below it, a server on this stack could meet it with little enough
work, and what a server adds above the stack decides. Each shape's row says in one
sentence what its figures show, and no more.
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
    """Whether the run measured ``shape`` on both stacks alone and on the HTTP/JSON server."""
    return _has(results, shape, FLOOR_GRPCLIB) and _has(results, shape, FLOOR_HTTP_JSON)


def measured_shapes(results: Results) -> list[str]:
    """The shapes with a floor figure, in the run's order."""
    return [shape.name for shape in results.shapes if measured(results, shape.name)]


def stacks_ratio(results: Results, shape: str) -> Spread:
    """In-round p50 of the `_pb2` client on the bare grpclib server ÷ the HTTP/JSON client's on its stack."""
    return results.ratios(shape, FLOOR_GRPCLIB, FLOOR_HTTP_JSON)


def word(results: Results, shape: str) -> str:
    """floor (the stacks' ratio above the target in every round), not the floor (below in every
    round), or unsettled."""
    ratio, target = stacks_ratio(results, shape), latency_target(shape)
    if ratio.low > target:
        return FLOOR
    if ratio.high < target:
        return NOT_FLOOR
    return UNSETTLED


def _ms(results: Results, shape: str, name: str) -> str:
    return Spread.of(results.p50s(shape, name)).text(2, 1000)


def sentence(results: Results, shape: str) -> str:
    """What the stacks' ratio against the shape's target shows, in one or two sentences."""
    ratio, target = stacks_ratio(results, shape), latency_target(shape)
    figures = (
        f"the HTTP/2 stack alone answers in {_ms(results, shape, FLOOR_GRPCLIB)} ms, "
        f"{ratio.text()}x the HTTP/JSON stack alone ({_ms(results, shape, FLOOR_HTTP_JSON)} ms)"
    )
    found = word(results, shape)
    if found == FLOOR:
        return (
            f"The floor: {figures}, above {target:.1f}x in every round. Both servers run the same "
            f"handlers, so their calls' ratio lies between {ratio.median:.2f} and 1.0 whatever that "
            f"work costs: doing the HTTP/JSON server's work, no server on this stack meets "
            f"≤ {target:.1f}x on this shape."
        )
    if found == NOT_FLOOR:
        return (
            f"Not the floor: {figures}, below {target:.1f}x in every round: with little enough work "
            f"above it a server on this stack could meet ≤ {target:.1f}x; what a server adds decides."
        )
    return (
        f"Unsettled: {figures}; the rounds disagree on which side of {target:.1f}x it is (inside the "
        "noise), so this run does not show the stack to be the floor."
    )


def table(results: Results) -> str:
    """Per shape: the p50s of the HTTP/JSON server and of each stack alone, their ratios, a sentence."""
    header = [
        "shape (p50, c=1)",
        "target",
        "HTTP/JSON server ms",
        "(a) bare grpclib ms",
        "(b) HTTP/JSON stack ms",
        "(a) ÷ (b)",
        "(a) ÷ HTTP/JSON server",
        "this server ÷ HTTP/JSON server",
        "what it shows",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for shape in measured_shapes(results):
        mine = results.ratios(shape, CLIENT).text() if _has(results, shape, CLIENT) else "-"
        cells = [
            shape,
            f"≤ {latency_target(shape):.1f}x",
            _ms(results, shape, BASELINE),
            _ms(results, shape, FLOOR_GRPCLIB),
            _ms(results, shape, FLOOR_HTTP_JSON),
            stacks_ratio(results, shape).text(),
            results.ratios(shape, FLOOR_GRPCLIB).text(),
            mine,
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
                f"latency floor, {label}: bare grpclib server / HTTP/JSON stack alone,"
                " the same replies (p50, c=1)",
                f"the floor if > {target:.1f}x in every round (≤ {target:.1f}x then out of reach"
                " on this stack doing the HTTP/JSON server's work)",
                "; ".join(f"{name} {stacks_ratio(results, name).text()}" for name in names),
                result,
            )
        )
    return rows


def section(results: Results) -> str:
    """The report's latency-floor section: the table, or a line saying it was not measured."""
    if not measured_shapes(results):
        return "Not measured in this run."
    return table(results)
