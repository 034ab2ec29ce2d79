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
    note: str = ""  # what was seen, and why the verdict differs from the measurement where it does


_JSON_FORMS = (
    "in-range values parse both ways in ProtoJSON (parsers take numbers and strings); "
    "the review follows buf's WIRE_JSON, which compares the written forms"
)
_OTHER_SDKS = "the dataclass SDK and TypeScript change the attribute's type: source-breaking"

MEASURED: dict[str, tuple[Oracle, ...]] = {
    "field_type_changed": (
        Oracle("int32_to_uint32", True, True, False, "-3 reads as 4294967293; uint32 JSON refuses -3"),
        Oracle("uint32_to_int32", True, True, False, "4294967295 reads as -1"),
        Oracle("int32_to_int64", False, False, False, _JSON_FORMS),
        Oracle("fixed32_to_sfixed32", True, True, False, "4294967295 reads as -1"),
        Oracle(
            "sint32_to_int32", True, False, False, "sint32 -3 is zigzag-encoded as 5 and reads as int32 5"
        ),
    ),
    "field_renamed": (
        Oracle(
            "field_renamed", False, True, True, "JSON spelling the old name is refused; N_FIELD_NUMBER gone"
        ),
    ),
    "field_number_changed": (
        Oracle("field_number_changed", True, False, True, "the value lands in an unknown field"),
    ),
    "field_label_changed": (Oracle("field_made_repeated", True, True, False, "5 reads as [5]"),),
    "field_removed_unreserved": (
        Oracle(
            "field_removed_unreserved",
            False,
            True,
            True,
            "bytes of the old field are kept as unknown; the wire verdict is for the number left free",
        ),
    ),
    "field_added": (Oracle("field_added", False, False, False),),
    "field_presence_changed": (
        Oracle("editions_presence_explicit_to_implicit", False, False, True, "HasField raises"),
        Oracle("proto3_optional_added", False, False, False, _OTHER_SDKS + " (`int | None`, `n?: number`)"),
    ),
    "field_default_changed": (
        Oracle("editions_default_changed", True, True, False, "an unset field reads 9 instead of 5"),
    ),
    "enum_made_closed": (
        Oracle("editions_enum_open_to_closed", True, True, False, "7 is dropped: the field reads 0"),
    ),
    "enum_made_open": (
        Oracle(
            "editions_enum_closed_to_open", False, False, False, "generated code may now hold unnamed numbers"
        ),
    ),
    "enum_value_added": (Oracle("enum_value_added", False, False, False),),
    "enum_value_renamed": (
        Oracle("enum_value_renamed", False, True, True, "JSON with the old name is refused; Name(1) changes"),
    ),
    "enum_value_alias_first_changed": (
        Oracle(
            "enum_alias_inserted_before_a_name",
            False,
            True,
            True,
            "the head writes COLOR_CRIMSON, which the base refuses; Name(1) changes",
        ),
    ),
    "syntax_changed": (Oracle("proto3_to_equivalent_edition", False, False, False),),
    "generated_code_added": (
        Oracle("py_generic_services_turned_on", False, False, False, "service classes added"),
    ),
    "generated_code_option_changed": (
        Oracle("py_generic_services_turned_off", False, False, True, "the service classes are gone"),
    ),
    "option_changed": (Oracle("jstype_set_to_its_default", False, False, False),),
    "message_moved": (
        Oracle(
            "message_moved_behind_import_public",
            False,
            False,
            False,
            "the _pb2 module re-exports it; protoc-gen-es does not re-export it: TypeScript breaks",
        ),
    ),
}
