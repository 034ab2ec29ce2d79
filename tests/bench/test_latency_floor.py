"""The latency floor in the report (chat_bench.latency_floor), from known p50s.

Each round here is one call, so a round's p50 is the value given (ms). Every expected
figure was worked out by hand from those values, never copied from the code's output.
"""

from __future__ import annotations

import pytest
from chat_bench import latency_floor, report
from chat_bench.floor_servers import FLOOR_GRPCLIB, FLOOR_HTTP_JSON
from chat_bench.runner import BASELINE, Results, Settings, Shape

from tests.bench.test_report import load_results

SHAPES = [
    "GetMessage small",
    "GetMessage large",
    "ListMessages 50",
    "SendMessages 10",
    "StreamMessages 1000",
    "StreamCompletion",
]
# p50 per round, ms: (shape, server) -> three rounds. StreamMessages 1000 has no floor figure.
# The comments give (a) ÷ (b), the bare grpclib server's p50 ÷ the HTTP/JSON stack's, per round.
P50S: dict[tuple[str, str], list[float]] = {
    ("GetMessage small", BASELINE): [1.0, 1.2, 0.8],
    ("GetMessage small", FLOOR_GRPCLIB): [0.55, 0.78, 0.44],  # 1.10, 1.30, 1.10: above 1.0 every round
    ("GetMessage small", FLOOR_HTTP_JSON): [0.5, 0.6, 0.4],
    ("GetMessage small", "pb2"): [1.2, 1.5, 1.0],  # 1.20, 1.25, 1.25 the HTTP/JSON server's
    ("GetMessage large", BASELINE): [1.0, 1.0, 1.0],
    ("GetMessage large", FLOOR_GRPCLIB): [0.45, 0.55, 0.6],  # 0.45, 0.55, 0.60: spans 0.5
    ("GetMessage large", FLOOR_HTTP_JSON): [1.0, 1.0, 1.0],
    ("ListMessages 50", BASELINE): [4.0, 4.0, 4.0],
    ("ListMessages 50", FLOOR_GRPCLIB): [1.2, 1.6, 1.0],  # 0.40, 0.40, 0.40: below 0.5 every round
    ("ListMessages 50", FLOOR_HTTP_JSON): [3.0, 4.0, 2.5],
    ("SendMessages 10", BASELINE): [5.0, 5.0, 5.0],
    ("SendMessages 10", FLOOR_GRPCLIB): [3.0, 3.5, 4.0],  # 0.75, 0.70, 0.80: above 0.5 every round
    ("SendMessages 10", FLOOR_HTTP_JSON): [4.0, 5.0, 5.0],
    ("StreamMessages 1000", BASELINE): [50.0, 50.0, 50.0],
    ("StreamCompletion", BASELINE): [2.0, 2.0, 2.5],
    ("StreamCompletion", FLOOR_GRPCLIB): [1.6, 1.8, 2.0],  # 0.80, 0.90, 0.80: below 1.0 every round
    ("StreamCompletion", FLOOR_HTTP_JSON): [2.0, 2.0, 2.5],
}


async def _never(*_args: object) -> None:
    raise AssertionError("a report never makes calls")


def known_run(p50s: dict[tuple[str, str], list[float]] = P50S) -> Results:
    results = Results(
        Settings(rounds=3),
        ["pb2", BASELINE],
        [Shape(name, "", _never, lambda _s: 1) for name in SHAPES],
        False,
    )
    for key, rounds in p50s.items():
        results.latencies[key] = [[ms / 1000] for ms in rounds]
    return results


def test_the_latency_floor_table_of_a_known_run() -> None:
    lines = latency_floor.table(known_run()).splitlines()
    assert lines[0] == (
        "| shape (p50, c=1) | target | HTTP/JSON server ms | (a) bare grpclib ms | (b) HTTP/JSON stack ms "
        "| (a) ÷ (b) | (a) ÷ HTTP/JSON server | this server ÷ HTTP/JSON server | what it shows |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|"
    # the measured shapes in the run's order; no row for the replay, which has no floor figure
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| GetMessage small",
        "| GetMessage large",
        "| ListMessages 50",
        "| SendMessages 10",
        "| StreamCompletion",
    ]
    assert lines[2] == (
        "| GetMessage small | ≤ 1.0x | 1.00 (0.80-1.20) | 0.55 (0.44-0.78) | 0.50 (0.40-0.60) "
        "| 1.10 (1.10-1.30) | 0.55 (0.55-0.65) | 1.25 (1.20-1.25) | The floor: the HTTP/2 stack alone "
        "answers in 0.55 (0.44-0.78) ms, 1.10 (1.10-1.30)x the HTTP/JSON stack alone (0.50 (0.40-0.60) "
        "ms), above 1.0x in every round. Both servers run the same handlers, so their calls' ratio lies "
        "between 1.10 and 1.0 whatever that work costs: doing the HTTP/JSON server's work, no server on "
        "this stack meets ≤ 1.0x on this shape. |"
    )
    assert lines[5] == (
        "| SendMessages 10 | ≤ 0.5x | 5.00 (5.00-5.00) | 3.50 (3.00-4.00) | 5.00 (4.00-5.00) "
        "| 0.75 (0.70-0.80) | 0.70 (0.60-0.80) | - | The floor: the HTTP/2 stack alone answers in "
        "3.50 (3.00-4.00) ms, 0.75 (0.70-0.80)x the HTTP/JSON stack alone (5.00 (4.00-5.00) ms), above "
        "0.5x in every round. Both servers run the same handlers, so their calls' ratio lies between "
        "0.75 and 1.0 whatever that work costs: doing the HTTP/JSON server's work, no server on this "
        "stack meets ≤ 0.5x on this shape. |"
    )


@pytest.mark.parametrize(
    ("shape", "word", "start"),
    [
        ("GetMessage small", "floor", "The floor: "),
        ("SendMessages 10", "floor", "The floor: "),
        (
            "StreamCompletion",
            "not the floor",
            "Not the floor: the HTTP/2 stack alone answers in 1.80 (1.60-2.00) ms, 0.80 (0.80-0.90)x the "
            "HTTP/JSON stack alone (2.00 (2.00-2.50) ms), below 1.0x in every round: with little enough "
            "work above it a server on this stack could meet ≤ 1.0x; what a server adds decides.",
        ),
        ("ListMessages 50", "not the floor", "Not the floor: "),
        (
            "GetMessage large",
            "unsettled",
            "Unsettled: the HTTP/2 stack alone answers in 0.55 (0.45-0.60) ms, 0.55 (0.45-0.60)x the "
            "HTTP/JSON stack alone (1.00 (1.00-1.00) ms); the rounds disagree on which side of "
            "0.5x it is (inside the noise), so this run does not show the stack to be the floor.",
        ),
    ],
)
def test_each_shape_is_judged_against_its_own_target(shape: str, word: str, start: str) -> None:
    results = known_run()
    assert latency_floor.word(results, shape) == word
    assert latency_floor.sentence(results, shape).startswith(start)


def test_the_floor_is_judged_on_the_stacks_ratio_not_on_the_http_json_servers_whole_call() -> None:
    # The bare grpclib server is well below the HTTP/JSON server's whole call (0.55x), yet
    # 1.10x and more the HTTP/JSON stack alone: with the same handler work on both, the floor.
    results = known_run()
    assert max(results.ratios("GetMessage small", FLOOR_GRPCLIB).values) < 1.0
    assert latency_floor.word(results, "GetMessage small") == "floor"


def test_a_round_exactly_on_the_target_is_not_above_it() -> None:
    # 0.5 / 0.5, 0.78 / 0.6, 0.44 / 0.4 = 1.00, 1.30, 1.10: one round level with 1.0x
    results = known_run({**P50S, ("GetMessage small", FLOOR_GRPCLIB): [0.5, 0.78, 0.44]})
    assert latency_floor.word(results, "GetMessage small") == "unsettled"


def test_one_criteria_row_per_target_naming_each_shapes_verdict() -> None:
    rows = latency_floor.criteria_rows(known_run())
    assert rows == [
        (
            "latency floor, small calls: bare grpclib server / HTTP/JSON stack alone, the same replies "
            "(p50, c=1)",
            "the floor if > 1.0x in every round (≤ 1.0x then out of reach on this stack doing the "
            "HTTP/JSON server's work)",
            "GetMessage small 1.10 (1.10-1.30); StreamCompletion 0.80 (0.80-0.90)",
            "GetMessage small **floor**; StreamCompletion **not the floor**",
        ),
        (
            "latency floor, every other shape: bare grpclib server / HTTP/JSON stack alone, the same "
            "replies (p50, c=1)",
            "the floor if > 0.5x in every round (≤ 0.5x then out of reach on this stack doing the "
            "HTTP/JSON server's work)",
            "GetMessage large 0.55 (0.45-0.60); ListMessages 50 0.40 (0.40-0.40); "
            "SendMessages 10 0.75 (0.70-0.80)",
            "GetMessage large **unsettled**; ListMessages 50 **not the floor**; SendMessages 10 **floor**",
        ),
    ]


def test_a_target_whose_shapes_agree_gets_one_word() -> None:
    only_send = {
        key: value for key, value in P50S.items() if key[0] in ("SendMessages 10", "StreamMessages 1000")
    }
    ((_criterion, _target, figures, result),) = latency_floor.criteria_rows(known_run(only_send))
    assert (figures, result) == ("SendMessages 10 0.75 (0.70-0.80)", "**floor**")


def test_the_report_places_the_rows_and_section_and_names_the_floor_where_a_target_is_missed() -> None:
    results = load_results()
    # The fixture's HTTP/JSON p50 of GetMessage small is 4 ms in each round (the middle of three);
    # the HTTP/JSON stack alone 4 ms too: 4.8 / 4, 5 / 4, 4.4 / 4 = 1.20, 1.25, 1.10
    results.latencies[("GetMessage small", FLOOR_GRPCLIB)] = [[0.0048], [0.005], [0.0044]]
    results.latencies[("GetMessage small", FLOOR_HTTP_JSON)] = [[0.004]] * 3
    results.latencies[("GetMessage small", "pb2")] = [[0.006]] * 3  # 1.50x: the small calls' target missed
    rows = [row[0] for row in report.criteria_rows(results)]
    floor = rows.index(
        "latency floor, small calls: bare grpclib server / HTTP/JSON stack alone, the same replies (p50, c=1)"
    )
    assert rows[floor - 1].startswith("latency, pb2 client (p50, c=1), ")
    text = report.markdown(results, "run.png", "")
    shapes, section = (
        text.index("## Per call shape"),
        text.index("## Latency floor: the protocol stacks alone"),
    )
    assert shapes < section < text.index(latency_floor.table(results)) < text.index("## Compression")
    (loss,) = [line for line in text.splitlines() if line.startswith("- GetMessage small: the `_pb2`")]
    assert loss.startswith(
        "- GetMessage small: the `_pb2` client's p50 is 1.50x the baseline's (slower than it)."
    )
    assert loss.endswith(
        " The floor: the HTTP/2 stack alone answers in 4.80 (4.40-5.00) ms, 1.20 (1.10-1.25)x the HTTP/JSON "
        "stack alone (4.00 (4.00-4.00) ms), above 1.0x in every round. Both servers run the same handlers, "
        "so their calls' ratio lies between 1.20 and 1.0 whatever that work costs: doing the HTTP/JSON "
        "server's work, no server on this stack meets ≤ 1.0x on this shape."
    )


def test_a_run_without_the_floor_figures_renders_without_them() -> None:
    results = load_results()  # an older run: no floor server measured at c=1
    assert latency_floor.criteria_rows(results) == []
    assert latency_floor.section(results) == "Not measured in this run."
    text = report.markdown(results, "run.png", "")
    assert "## Latency floor: the protocol stacks alone (p50, c=1)\n" in text
    assert "the HTTP/2 stack alone answers" not in text


@pytest.mark.parametrize("stack", [FLOOR_GRPCLIB, FLOOR_HTTP_JSON])
def test_a_floor_with_fewer_rounds_than_the_http_json_server_is_not_measured(stack: str) -> None:
    results = known_run()
    results.latencies[("SendMessages 10", stack)].pop()
    assert not latency_floor.measured(results, "SendMessages 10")
    assert "SendMessages 10" not in latency_floor.criteria_rows(results)[1][2]


def test_a_round_exactly_on_the_target_from_below_is_not_below_it() -> None:
    # 1.2 / 3.0, 2.0 / 4.0, 1.0 / 2.5 = 0.40, 0.50, 0.40: one round level with 0.5x
    results = known_run({**P50S, ("ListMessages 50", FLOOR_GRPCLIB): [1.2, 2.0, 1.0]})
    assert latency_floor.word(results, "ListMessages 50") == "unsettled"


def test_a_run_of_one_round_is_measured_and_shows_milliseconds_to_the_hundredth() -> None:
    one_round = {
        ("SendMessages 10", BASELINE): [9.99],
        ("SendMessages 10", FLOOR_GRPCLIB): [4.0],
        ("SendMessages 10", FLOOR_HTTP_JSON): [5.0],  # 0.80
    }
    results = known_run(one_round)
    assert latency_floor.measured_shapes(results) == ["SendMessages 10"]
    row = latency_floor.table(results).splitlines()[2]
    assert row.startswith(
        "| SendMessages 10 | ≤ 0.5x | 9.99 (9.99-9.99) | 4.00 (4.00-4.00) | 5.00 (5.00-5.00) "
        "| 0.80 (0.80-0.80) "
    )
