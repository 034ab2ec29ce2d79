"""What the empirical oracle measured for each kind of change, scenario by scenario.

``tests/registry/test_oracle.py`` generates the ``_pb2`` modules of both sides of each
scenario with protoc, runs each side in a process of its own, writes sample messages
(values the base's types hold) with each side and reads them with the other, in binary
and in ProtoJSON, and looks up in the head's generated code what the base's used. It
fails when a measurement here is not what it measures, or when the review's verdict
misses a break it measures. ``docs/review-rules.md`` renders this table.

The ``_pb2`` target is the one measured; the dataclass (betterproto2) and TypeScript
(protoc-gen-es) SDKs are named in the notes where they differ.
"""

from __future__ import annotations

from typing import NamedTuple


class Oracle(NamedTuple):
    """One measured scenario of a kind."""

    scenario: str  # the scenario's id in tests/registry/test_oracle.py
    wire: bool  # a value written by one side reads otherwise, or is refused, in binary
    json: bool  # the same in ProtoJSON
    python_api: bool  # a name, HasField, *_FIELD_NUMBER or enum Name() the base's code used changed
    typescript_api: bool  # an export, property declaration or enum member of protoc-gen-es's output changed
    note: str = ""  # what was seen, and why the verdict differs from the measurement where it does


_JSON_FORMS = (
    "in-range values parse both ways in ProtoJSON (parsers take numbers and strings), so the "
    "review's JSON verdict, which follows buf's WIRE_JSON on the written forms, is stricter; "
    "TypeScript's `v: number` becomes `v: bigint`"
)

# (scenario, wire, JSON, _pb2 API, TypeScript API, what was seen), per kind.
_ROWS: dict[str, tuple[tuple[str, bool, bool, bool, bool, str], ...]] = {
    "field_type_changed": (
        ("int32_to_uint32", True, True, False, False, "-3 reads as 4294967293; uint32 JSON refuses -3"),
        ("uint32_to_int32", True, True, False, False, "4294967295 reads as -1"),
        ("int32_to_int64", False, False, False, True, _JSON_FORMS),
        ("fixed32_to_sfixed32", True, True, False, False, "4294967295 reads as -1"),
        (
            "sint32_to_int32",
            True,
            False,
            False,
            False,
            "sint32 -3 is zigzag-encoded as 5 and reads as int32 5",
        ),
    ),
    "field_renamed": (
        (
            "field_renamed",
            False,
            True,
            True,
            True,
            "JSON spelling the old name is refused; N_FIELD_NUMBER gone",
        ),
    ),
    "field_number_changed": (
        ("field_number_changed", True, False, True, False, "the value lands in an unknown field"),
    ),
    "field_label_changed": (("field_made_repeated", True, True, False, True, "5 reads as [5]"),),
    "field_removed_unreserved": (
        (
            "field_removed_unreserved",
            False,
            True,
            True,
            True,
            "bytes of the old field are kept as unknown; the wire verdict is for the number left free",
        ),
    ),
    "field_added": (("field_added", False, False, False, False, ""),),
    "field_presence_changed": (
        (
            "editions_presence_explicit_to_implicit",
            False,
            False,
            True,
            False,
            "HasField raises; TypeScript's `n: number` stays (protoc-gen-es gives editions fields defaults)",
        ),
        (
            "proto3_optional_added",
            False,
            False,
            False,
            True,
            "_pb2 unchanged; TypeScript `n: number` becomes `n?: number | undefined` (and the dataclass "
            "SDK's `int` becomes `int | None`)",
        ),
        (
            "proto3_optional_to_editions_explicit",
            False,
            False,
            False,
            True,
            "presence is kept, but TypeScript `n?: number | undefined` becomes `n: number`",
        ),
    ),
    "field_default_changed": (
        ("editions_default_changed", True, True, False, False, "an unset field reads 9 instead of 5"),
    ),
    "enum_made_closed": (
        ("editions_enum_open_to_closed", True, True, False, False, "7 is dropped: the field reads 0"),
    ),
    "enum_made_open": (
        (
            "editions_enum_closed_to_open",
            False,
            False,
            False,
            False,
            "nothing measured on values both sides name; generated code may now hold unnamed numbers",
        ),
    ),
    "enum_value_added": (("enum_value_added", False, False, False, False, ""),),
    "enum_value_renamed": (
        ("enum_value_renamed", False, True, True, True, "JSON with the old name is refused; Name(1) changes"),
    ),
    "enum_value_alias_first_changed": (
        (
            "enum_alias_inserted_before_a_name",
            False,
            True,
            True,
            False,
            "the head writes COLOR_CRIMSON, which the base refuses; Name(1) changes",
        ),
    ),
    "syntax_changed": (
        (
            "proto3_to_equivalent_edition",
            False,
            False,
            False,
            False,
            "nothing changes in _pb2 or TypeScript (betterproto2 and grpclib refuse editions files)",
        ),
    ),
    "generated_code_added": (
        ("py_generic_services_turned_on", False, False, False, False, "service classes added"),
    ),
    "generated_code_option_changed": (
        ("py_generic_services_turned_off", False, False, True, False, "the service classes are gone"),
    ),
    "option_changed": (("jstype_set_to_its_default", False, False, False, False, ""),),
    "message_moved": (
        (
            "message_moved_behind_import_public",
            False,
            False,
            False,
            True,
            "the _pb2 module re-exports it; protoc-gen-es does not re-export public imports: "
            "TypeScript's `N` and `NSchema` are gone from demo_pb.ts",
        ),
    ),
}
MEASURED: dict[str, tuple[Oracle, ...]] = {
    kind: tuple(Oracle(*row) for row in rows) for kind, rows in _ROWS.items()
}
