"""The rules table's claims, proved with generated code: both sides' ``_pb2`` modules cross-serialized.

Each scenario is generated with grpcio-tools' protoc (offline), each side runs in a
process of its own (:mod:`.oracle`), and what breaks is measured, not asserted: a
value written by one side that the other reads otherwise, in binary or ProtoJSON, and
what the base's generated code used that the head's no longer offers, in ``_pb2`` and
in protoc-gen-es's TypeScript. The measurement must be the one ``registry.diff.measured``
records (and ``docs/review-rules.md`` shows), and the review's verdict must flag every
break measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry.diff import RULES, diff_schemas

from .oracle import Sample, measure
from .schemas import DEMO, Compile, proto
from .test_diff import ALIASED, CASES, EQUIVALENT_EDITION, PROTO3_BODY, M, color, file_option, m, scalar

MODULE = "demo.v1.demo_pb2"
INT32_EDGES = (-(2**31), -3, 0, 7, 2**31 - 1)
UINT32_EDGES = (0, 7, 2**31, 2**32 - 1)


@dataclass(frozen=True)
class Scenario:
    """A schema change, the samples to write, and what generated code to compare."""

    id: str
    kind: str
    base: Mapping[str, str]
    head: Mapping[str, str]
    samples: Sequence[Sample]
    messages: Sequence[str] = ("M",)
    enums: Sequence[str] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


def demo(base: str, head: str) -> tuple[dict[str, str], dict[str, str]]:
    return {DEMO: base}, {DEMO: head}


def values(name: str, *samples: object) -> list[Sample]:
    """One sample of M per value of field ``name``, and one with nothing set."""
    return [Sample("M", {}), *(Sample("M", {name: value}) for value in samples)]


def from_case(id: str, kind: str, samples: Sequence[Sample], **kwargs: object) -> Scenario:
    """A scenario of test_diff's table (the same base and head)."""
    case = next(case for case in CASES if case.id == id)
    return Scenario(id, kind, {DEMO: case.base}, {DEMO: case.head}, samples, **kwargs)  # type: ignore[arg-type]


COLOR_M = "\nmessage M {\n  Color c = 1;\n}\n"
SERVICE = "\nservice S {\n  rpc Get(M) returns (M);\n}\n"

SCENARIOS = [
    from_case("int32_to_uint32", "field_type_changed", values("v", *INT32_EDGES)),
    from_case("uint32_to_int32", "field_type_changed", values("v", *UINT32_EDGES)),
    Scenario("int32_to_int64", "field_type_changed", *demo(scalar("int32"), scalar("int64")),
             values("v", *INT32_EDGES)),
    from_case("fixed32_to_sfixed32", "field_type_changed", values("v", *UINT32_EDGES)),
    from_case("sint32_to_int32", "field_type_changed", values("v", -3, 0, 7)),
    Scenario("field_renamed", "field_renamed", *demo(m("int32 n = 2;"), m("int32 count = 2;")),
             values("n", 5)),
    Scenario("field_number_changed", "field_number_changed", *demo(m("int32 n = 2;"), m("int32 n = 3;")),
             values("n", 5)),
    Scenario("field_made_repeated", "field_label_changed",
             *demo(m("int32 n = 2;"), m("repeated int32 n = 2;")), values("n", 5)),
    Scenario("field_removed_unreserved", "field_removed_unreserved",
             *demo(m("string a = 1;", "int32 n = 2;"), m("string a = 1;")), values("n", 5)),
    Scenario("field_added", "field_added", *demo(m("string a = 1;"), m("string a = 1;", "int32 n = 2;")),
             values("a", "x")),
    from_case("editions_presence_explicit_to_implicit", "field_presence_changed", values("n", 0, 5)),
    Scenario("proto3_optional_added", "field_presence_changed",
             *demo(m("int32 n = 1;"), m("optional int32 n = 1;")), values("n", 0, 5)),
    from_case("proto3_optional_to_editions_explicit", "field_presence_changed", values("n", 0, 5)),
    from_case("editions_default_changed", "field_default_changed", values("n", 5, 0)),
    from_case("editions_enum_open_to_closed", "enum_made_closed", values("e", 0, 1, 7)),
    from_case("editions_enum_closed_to_open", "enum_made_open", values("e", 0, 1)),
    Scenario("enum_value_added", "enum_value_added",
             *demo(color("COLOR_UNSPECIFIED = 0;") + COLOR_M,
                   color("COLOR_UNSPECIFIED = 0;", "COLOR_RED = 1;") + COLOR_M),
             values("c", 0), enums=("Color",)),
    Scenario("enum_value_renamed", "enum_value_renamed",
             *demo(color("COLOR_UNSPECIFIED = 0;", "COLOR_RED = 1;") + COLOR_M,
                   color("COLOR_UNSPECIFIED = 0;", "COLOR_CRIMSON = 1;") + COLOR_M),
             values("c", 1), enums=("Color",)),
    Scenario("enum_alias_inserted_before_a_name", "enum_value_alias_first_changed",
             *demo(color("COLOR_UNSPECIFIED = 0;", "COLOR_RED = 1;") + COLOR_M,
                   color(*ALIASED, "COLOR_CRIMSON = 1;", "COLOR_RED = 1;") + COLOR_M),
             values("c", 0, 1), enums=("Color",)),
    Scenario("proto3_to_equivalent_edition", "syntax_changed", *demo(proto(PROTO3_BODY), EQUIVALENT_EDITION),
             [Sample("M", {}), Sample("M", {"a": "x", "r": [1, 2], "e": 0})], messages=("M", "M.Inner"),
             enums=("E",)),
    Scenario("py_generic_services_turned_on", "generated_code_added",
             *demo(M + SERVICE, file_option("py_generic_services = true") + SERVICE),
             values("n", 1)),
    Scenario("py_generic_services_turned_off", "generated_code_option_changed",
             *demo(file_option("py_generic_services = true") + SERVICE, M + SERVICE),
             values("n", 1)),
    from_case("jstype_set_to_its_default", "option_changed", values("big", -(2**63), 5)),
    Scenario("message_moved_behind_import_public", "message_moved",
             {DEMO: proto("message M {\n  int32 n = 1;\n}\nmessage N {}")},
             {DEMO: proto('import public "demo/v1/n.proto";\n\nmessage M {\n  int32 n = 1;\n}'),
              "demo/v1/n.proto": proto("message N {}")},
             values("n", 1), messages=("M", "N")),
]  # fmt: skip


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in SCENARIOS])
def test_the_oracle_measures_what_the_rules_table_records(
    scenario: Scenario, tmp_path: Path, compile_files: Compile
) -> None:
    measured = measure(
        tmp_path,
        scenario.base,
        scenario.head,
        module=MODULE,
        samples=scenario.samples,
        messages=scenario.messages,
        enums=scenario.enums,
    )

    [recorded] = [o for o in RULES[scenario.kind].oracle if o.scenario == scenario.id]
    got = (measured.wire, measured.json, measured.python_api, measured.typescript_api)
    assert got == (recorded.wire, recorded.json, recorded.python_api, recorded.typescript_api), (
        measured.evidence
    )
    # The review flags every break the oracle measures (source covers the _pb2 API).
    changes = [
        c
        for c in diff_schemas(compile_files(scenario.base), compile_files(scenario.head))
        if c.kind == scenario.kind
    ]
    assert changes, f"the review does not report {scenario.kind}"
    for change in changes:
        assert change.wire_breaking or not measured.wire, measured.evidence
        assert change.json_breaking or not measured.json, measured.evidence
        assert change.source_breaking or not (measured.python_api or measured.typescript_api), (
            measured.evidence
        )


def test_every_recorded_measurement_has_its_scenario() -> None:
    recorded = {(kind, o.scenario) for kind, rule in RULES.items() for o in rule.oracle}

    assert recorded == {(s.kind, s.id) for s in SCENARIOS}


def test_the_oracle_sees_a_change_of_sign_that_buf_calls_wire_compatible(tmp_path: Path) -> None:
    measured = measure(
        tmp_path, *demo(scalar("int32"), scalar("uint32")), module=MODULE, samples=values("v", -3)
    )

    assert "base -> head: field 1:v written as -3 reads 4294967293" in measured.evidence
