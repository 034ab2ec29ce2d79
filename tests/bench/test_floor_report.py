"""The server-CPU floor's rows and sentences in the benchmark's report, from known figures.

Every expected figure below was worked out by hand from the µs given (three rounds each),
never copied from the code's output.
"""

from __future__ import annotations

import pytest
from chat_bench import floor_report, report
from chat_bench.floor_servers import FLOOR_GRPCLIB, FLOOR_HTTP_JSON, FLOOR_SHAPE
from chat_bench.runner import BASELINE, Results, Settings

from tests.bench.test_report import load_results

# (a) bare grpclib, (b) the HTTP/JSON stack, (c) this server, (c) the HTTP/JSON server: µs per round.
FLOOR: dict[str, list[float]] = {
    FLOOR_GRPCLIB: [500, 462, 480],
    FLOOR_HTTP_JSON: [200, 210, 160],
    "grpclib": [700, 714, 672],
    BASELINE: [400, 420, 384],
}


def with_floor(results: Results, micros: dict[str, list[float]]) -> Results:
    """``results`` with the small GetMessage's server CPU of each server set to ``micros`` (µs per round)."""
    for name, rounds in micros.items():
        results.cpu_per_call[(FLOOR_SHAPE, name)] = [value / 1e6 for value in rounds]
    return results


def floor_only(grpclib_stack: list[float]) -> Results:
    """Results holding only the floor's four figures, with (a) set to ``grpclib_stack``."""
    results = Results(Settings(rounds=3), ["pb2", BASELINE], [], pinned=False)
    return with_floor(results, {**FLOOR, FLOOR_GRPCLIB: grpclib_stack})


def test_the_floor_table_of_a_known_run() -> None:
    assert floor_report.table(floor_only(FLOOR[FLOOR_GRPCLIB])).splitlines() == [
        "| server (GetMessage small, c=50) | server CPU µs/call | ÷ HTTP/JSON server's whole call "
        "| what it shows |",
        "|---|---|---|---|",
        # 500 / 400, 462 / 420, 480 / 384 = 1.25, 1.10, 1.25: above 1.0 in every round
        "| (a) bare `grpclib.server.Server`, constant reply | 480 (462-500) | 1.25 (1.10-1.25) "
        "| The floor: the HTTP/2 stack alone costs 480 (462-500) µs per call, the HTTP/JSON server's "
        "whole call 400 (384-420) µs (1.25 (1.10-1.25)x), more in every round: on this stack a "
        "GetMessage costs more than the HTTP/JSON server's whole call before any handler work, "
        "so ≤ 1.0x is out of reach on it. |",
        # 200 / 400, 210 / 420, 160 / 384 = 0.50, 0.50, 0.42; (a) / (b) = 2.5, 2.2, 3.0;
        # (a) - (b) = 300, 252, 320 µs
        "| (b) HTTP/JSON stack (aiohttp, ProtoJSON), constant reply | 200 (160-210) | 0.50 (0.42-0.50) "
        "| The HTTP/JSON stack alone costs 200 (160-210) µs per call, the HTTP/2 stack alone "
        "2.50 (2.20-3.00)x that, 300 µs (rounds 252 to 320) more: to meet ≤ 1.0x, the rest of this "
        "server's call must cost that much less than the rest of the HTTP/JSON server's. |",
        # 700 / 400, 714 / 420, 672 / 384 = 1.75, 1.70, 1.75; (c) - (a) = 200, 252, 192 µs
        "| (c) this server (chat-services), whole call | 700 (672-714) | 1.75 (1.70-1.75) "
        "| This server's whole call costs 700 (672-714) µs, 1.75 (1.70-1.75)x the HTTP/JSON server's "
        "(higher): 200 µs (rounds 192 to 252) above the HTTP/2 stack alone (handlers, storage, "
        "this repository's layers). |",
        # 400 - 200, 420 - 210, 384 - 160 = 200, 210, 224 µs
        "| (c) HTTP/JSON server (the same services), whole call | 400 (384-420) | 1.00 "
        "| The HTTP/JSON server's whole call costs 400 (384-420) µs: 210 µs (rounds 200 to 224) "
        "above its stack alone. |",
    ]


@pytest.mark.parametrize(
    ("grpclib_stack", "word", "sentence"),
    [
        # 300 / 400, 330 / 420, 320 / 384 = 0.75, 0.79, 0.83: below 1.0 in every round
        (
            [300, 330, 320],
            "**not the floor**",
            "Not the floor: the HTTP/2 stack alone costs 320 (300-330) µs per call, the HTTP/JSON "
            "server's whole call 400 (384-420) µs (0.79 (0.75-0.83)x), less in every round: the stack "
            "alone does not rule out ≤ 1.0x; what a server adds above it decides.",
        ),
        # 420 / 400, 400 / 420, 400 / 384 = 1.05, 0.95, 1.04: the rounds disagree
        (
            [420, 400, 400],
            "**unsettled**",
            "Unsettled: the HTTP/2 stack alone costs 400 (400-420) µs per call, the HTTP/JSON server's "
            "whole call 400 (384-420) µs (1.04 (0.95-1.05)x); the rounds disagree which is more (inside "
            "the noise), so this run does not show the stack alone to be the floor.",
        ),
        # 500 / 400, 420 / 420, 480 / 384 = 1.25, 1.00, 1.25: one round exactly level is not "more"
        ([500, 420, 480], "**unsettled**", "Unsettled: "),
        # 404 / 400, 424.2 / 420, 387.84 / 384 = 1.01 in every round: just above, the floor
        ([404, 424.2, 387.84], "**floor**", "The floor: "),
    ],
)
def test_the_floor_is_named_only_when_every_round_puts_the_stack_above_the_http_json_call(
    grpclib_stack: list[float], word: str, sentence: str
) -> None:
    results = floor_only(grpclib_stack)
    assert floor_report.floor_sentence(results).startswith(sentence)
    ((criterion, _target, figures, verdict),) = floor_report.criteria_rows(results)
    assert criterion.startswith("server CPU floor: bare grpclib server") and verdict == word
    ratio = results.cpu_ratios(FLOOR_SHAPE, FLOOR_GRPCLIB, BASELINE)
    assert figures.startswith(ratio.text() + " (")


@pytest.mark.parametrize(
    ("json_stack", "words"),
    [
        # 500 / 625, 462 / 525, 480 / 600 = 0.80, 0.88, 0.80; (b) - (a) = 125, 63, 120 µs
        (
            [625, 525, 600],
            "0.80 (0.80-0.88)x that, 120 µs (rounds 63 to 125) less: the rest of this server's call may "
            "cost that much more than the rest of the HTTP/JSON server's and still meet ≤ 1.0x.",
        ),
        # 500 / 400, 462 / 525, 480 / 480 = 1.25, 0.88, 1.00
        ([400, 525, 480], "1.00 (0.88-1.25)x that, 0 µs (rounds -63 to 100): inside the noise"),
    ],
)
def test_the_stacks_sentence_says_which_stack_alone_is_cheaper(json_stack: list[float], words: str) -> None:
    results = with_floor(floor_only(FLOOR[FLOOR_GRPCLIB]), {FLOOR_HTTP_JSON: json_stack})
    assert words in floor_report.stacks_sentence(results)


def test_a_difference_a_hair_below_zero_reads_zero() -> None:
    # (c) - (b) for the HTTP/JSON server: 400 - 400.0000001, 420 - 210, 384 - 160 µs
    results = with_floor(floor_only(FLOOR[FLOOR_GRPCLIB]), {FLOOR_HTTP_JSON: [400.0000001, 210, 160]})
    assert "µs: 210 µs (rounds 0 to 224) above its stack alone." in floor_report.table(results)


def test_the_floor_row_follows_the_server_cpu_rows_and_the_section_follows_their_table() -> None:
    results = with_floor(load_results(), FLOOR)
    rows = report.criteria_table(results).splitlines()
    floor = next(i for i, row in enumerate(rows) if row.startswith("| server CPU floor:"))
    assert rows[floor - 1].startswith("| server CPU per GetMessage, this server / previous release's")
    assert rows[floor] == (
        "| server CPU floor: bare grpclib server with a constant reply / HTTP/JSON server's whole "
        "GetMessage | the floor if > 1.0 in every round (≤ 1.0x then out of reach on this stack) "
        "| 1.25 (1.10-1.25) (480 (462-500) µs against 400 (384-420) µs) | **floor** |"
    )
    text = report.markdown(results, "run.png", "")
    cpu, floor_heading = text.index("## Server CPU per call"), text.index("## Server CPU floor")
    assert cpu < floor_heading < text.index(floor_report.table(results)) < text.index("## Codecs")
    # this server's 1.75x misses the target: the losses name the floor in the same words
    assert "the per-shape table below has the rest. The floor: the HTTP/2 stack alone" in text


def test_a_run_without_the_floor_says_so_and_adds_no_row() -> None:
    results = load_results()
    assert floor_report.criteria_rows(results) == []
    assert "## Server CPU floor" in report.markdown(results, "run.png", "")
    assert floor_report.section(results) == "Not measured in this run."
    losses = report.losses(with_floor(results, {"grpclib": [700, 714, 672]}))
    assert "The floor" not in losses
    (cpu,) = [line for line in losses.splitlines() if line.startswith("- server CPU per")]
    assert cpu.endswith("(higher); the per-shape table below has the rest.")
