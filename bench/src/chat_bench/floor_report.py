"""The server-CPU floor in the benchmark's report: what each protocol stack alone costs per GetMessage.

Four figures of the small GetMessage at 50 in flight, measured in the same interleaved
rounds (runner._server_cpu): (a) a bare grpclib server and (b) the HTTP/JSON baseline's
stack, each answering a constant reply (chat_bench.floor_servers), and (c) the two real
servers' whole calls. If (a) costs more than the HTTP/JSON server's whole call in every
round, no server on this HTTP/2 stack can meet "server CPU ≤ 1.0x HTTP/JSON": that is the
floor. Each row says in one sentence what its figures show, and no more.
"""

from __future__ import annotations

from chat_bench.floor_servers import FLOOR_GRPCLIB, FLOOR_HTTP_JSON, FLOOR_SHAPE
from chat_bench.runner import BASELINE, Results
from chat_bench.spread import Spread, difference

SERVER = "grpclib"  # this repository's server, as the runner names it
NAMES = (FLOOR_GRPCLIB, FLOOR_HTTP_JSON, SERVER, BASELINE)


def measured(results: Results) -> bool:
    """Whether the run has all four figures (the two floor servers and the two real servers)."""
    return all((FLOOR_SHAPE, name) in results.cpu_per_call for name in NAMES)


def _micros(results: Results, name: str) -> Spread:
    return Spread.of(value * 1e6 for value in results.cpu_per_call[(FLOOR_SHAPE, name)])


def _over_baseline(results: Results, name: str) -> Spread:
    return results.cpu_ratios(FLOOR_SHAPE, name, BASELINE)


def _extra(results: Results, whole: str, stack: str) -> Spread:
    """In-round µs that ``whole``'s call costs above ``stack``'s alone."""
    mine, theirs = _micros(results, whole).values, _micros(results, stack).values
    return Spread.of(a - b for a, b in zip(mine, theirs, strict=True))


def _us(spread: Spread) -> str:
    """``420 µs (rounds 400 to 450)``: a difference may be negative, so no dash between the bounds.

    Whole µs by ``round``, so a difference a hair below zero reads 0, not "-0"."""
    return f"{round(spread.median):,} µs (rounds {round(spread.low):,} to {round(spread.high):,})"


def floor_sentence(results: Results) -> str:
    """What (a) against the HTTP/JSON server's whole call shows: the floor, not the floor, or unsettled."""
    stack, whole = _micros(results, FLOOR_GRPCLIB), _micros(results, BASELINE)
    ratio = _over_baseline(results, FLOOR_GRPCLIB)
    figures = (
        f"the HTTP/2 stack alone costs {stack.text(0)} µs per call, "
        f"the HTTP/JSON server's whole call {whole.text(0)} µs ({ratio.text()}x)"
    )
    side = difference(ratio)
    if side == "higher":
        return (
            f"The floor: {figures}, more in every round: on this stack a GetMessage costs more than "
            "the HTTP/JSON server's whole call before any handler work, so ≤ 1.0x is out of reach on it."
        )
    if side == "lower":
        return (
            f"Not the floor: {figures}, less in every round: the stack alone does not rule out "
            "≤ 1.0x; what a server adds above it decides."
        )
    return (
        f"Unsettled: {figures}; the rounds disagree which is more (inside the noise), "
        "so this run does not show the stack alone to be the floor."
    )


def stacks_sentence(results: Results) -> str:
    """What (a) against (b) shows: how much more (or less) the HTTP/2 stack alone costs than HTTP/JSON's."""
    ratio = results.cpu_ratios(FLOOR_SHAPE, FLOOR_GRPCLIB, FLOOR_HTTP_JSON)
    extra = _extra(results, FLOOR_GRPCLIB, FLOOR_HTTP_JSON)
    start = (
        f"The HTTP/JSON stack alone costs {_micros(results, FLOOR_HTTP_JSON).text(0)} µs per call, "
        f"the HTTP/2 stack alone {ratio.text()}x that"
    )
    side = difference(ratio)
    if side == "higher":
        return (
            f"{start}, {_us(extra)} more: to meet ≤ 1.0x, the rest of this server's call must cost "
            "that much less than the rest of the HTTP/JSON server's."
        )
    if side == "lower":
        saved = Spread.of(-value for value in extra.values)
        return (
            f"{start}, {_us(saved)} less: the rest of this server's call may cost that much more "
            "than the rest of the HTTP/JSON server's and still meet ≤ 1.0x."
        )
    return f"{start}, {_us(extra)}: inside the noise, neither stack alone is shown to be cheaper."


def table(results: Results) -> str:
    """The four servers' CPU per call, each ÷ the HTTP/JSON server's whole call, and a sentence each."""
    json_whole = _micros(results, BASELINE)
    server = _over_baseline(results, SERVER)
    rows = [
        (
            "(a) bare `grpclib.server.Server`, constant reply",
            FLOOR_GRPCLIB,
            floor_sentence(results),
        ),
        (
            "(b) HTTP/JSON stack (aiohttp, ProtoJSON), constant reply",
            FLOOR_HTTP_JSON,
            stacks_sentence(results),
        ),
        (
            "(c) this server (chat-services), whole call",
            SERVER,
            f"This server's whole call costs {_micros(results, SERVER).text(0)} µs, {server.text()}x the "
            f"HTTP/JSON server's ({difference(server)}): {_us(_extra(results, SERVER, FLOOR_GRPCLIB))} "
            "above the HTTP/2 stack alone (handlers, storage, this repository's layers).",
        ),
        (
            "(c) HTTP/JSON server (the same services), whole call",
            BASELINE,
            f"The HTTP/JSON server's whole call costs {json_whole.text(0)} µs: "
            f"{_us(_extra(results, BASELINE, FLOOR_HTTP_JSON))} above its stack alone.",
        ),
    ]
    header = ["server (GetMessage small, c=50)", "server CPU µs/call", "÷ HTTP/JSON server's whole call"]
    lines = ["| " + " | ".join([*header, "what it shows"]) + " |", "|---|---|---|---|"]
    for label, name, sentence in rows:
        ratio = "1.00" if name == BASELINE else _over_baseline(results, name).text()
        lines.append(f"| {label} | {_micros(results, name).text(0)} | {ratio} | {sentence} |")
    return "\n".join(lines)


def criteria_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """The floor's row for the criteria table, next to the server-CPU criterion (none if not measured)."""
    if not measured(results):
        return []
    ratio = _over_baseline(results, FLOOR_GRPCLIB)
    word = {"higher": "**floor**", "lower": "**not the floor**"}.get(difference(ratio), "**unsettled**")
    return [
        (
            "server CPU floor: bare grpclib server with a constant reply"
            " / HTTP/JSON server's whole GetMessage",
            "the floor if > 1.0 in every round (≤ 1.0x then out of reach on this stack)",
            f"{ratio.text()} ({_micros(results, FLOOR_GRPCLIB).text(0)} µs against "
            f"{_micros(results, BASELINE).text(0)} µs)",
            word,
        )
    ]


def section(results: Results) -> str:
    """The report's floor section: the table, or a line saying the floor was not measured."""
    if not measured(results):
        return "Not measured in this run."
    return table(results)
