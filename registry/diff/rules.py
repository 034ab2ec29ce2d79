"""The one table of rules: for every kind of change, whom it breaks, the bump, and buf's rule.

Walkers never decide a verdict on their own: they name a kind, and the verdict is
the table's. A few kinds *vary* (a type change breaks the wire or not depending on
the two types); for those the walker computes the verdict and the table gives the
strongest it can be, which the recorder enforces.

``docs/review-rules.md`` is generated from this table (``python -m registry rules
--write``) and a test fails when the two drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from registry.diff.change import (
    ALL,
    CLIENTS,
    JSON_SOURCE,
    SAFE,
    SOURCE,
    WIRE_SOURCE,
    Verdict,
)
from registry.diff.measured import MEASURED, Oracle
from registry.diff.option_table import CODEGEN_OPTIONS


@dataclass(frozen=True)
class Rule:
    """How one kind of change is judged."""

    kind: str
    element: str  # what it is about: "file", "field", "enum value", ...
    verdict: Verdict  # the verdict; for a varying kind, the strongest it can be
    summary: str  # when it is reported, for the table
    buf: tuple[str, ...] = ()  # the buf breaking rules that flag the same change
    bump: str = "patch"  # for a safe change: "patch" or "minor"; a breaking one is major
    varies: str = ""  # when the verdict depends on the change: on what
    least: Verdict = SAFE  # for a varying kind, the flags it always has
    differs: str = ""  # a deliberate difference from buf, with its reason
    lenient: tuple[str, ...] = ()  # the buf rules this kind judges more leniently than buf
    check: str = ""  # the rule id `registry breaking` reports for a client-breaking change
    oracle: tuple[Oracle, ...] = ()  # what the empirical oracle measured, scenario by scenario


_FOREIGN_OPTION_REASON = (
    "buf's FILE rules guard every language's generated code; this registry ships the Python "
    "and TypeScript SDKs, so an option only other languages read breaks no SDK it "
    "ships: the review calls it safe, names the language, and the FILE finding needs a waiver"
)
_MAP_REASON = (
    "a map is encoded exactly as a repeated entry message with key = 1 and value = 2, so "
    "bytes written either way parse the same; buf compares the declared types and calls it "
    "wire-breaking, the review calls it JSON- and source-breaking only"
)

_FOREIGN_BUF_RULES = tuple(option.buf for option in CODEGEN_OPTIONS.values() if not option.shipped)

_TABLE: tuple[Rule, ...] = (
    # files and packages
    Rule("file_added", "file", SAFE, "a new file", bump="minor"),
    Rule(
        "file_removed", "file", SOURCE, "a file is deleted (its types are reported too)", ("FILE_NO_DELETE",)
    ),
    Rule(
        "syntax_changed",
        "file",
        ALL,
        "a file's syntax or edition changes",
        ("FILE_SAME_SYNTAX",),
        varies="proto3 <-> editions is judged on the features both sides resolve to (presence, "
        "enum openness, defaults), reported as their own kinds, and is safe itself; to or from "
        "proto2 (closed enums, no UTF-8 checks, groups) breaks everything: review by hand",
        differs="buf's FILE rules fail on any syntax change; the review compares what the syntax "
        "decides (each field's presence, each enum's openness, defaults, encodings), so a proto3 "
        "file rewritten as an equivalent editions file changes no generated API and no byte",
        lenient=("FILE_SAME_SYNTAX",),
    ),
    Rule(
        "feature_changed",
        "any",
        ALL,
        "an editions feature the review does not model changes (`utf8_validation`, "
        "`message_encoding`, `json_format`, ...): review by hand, treated as breaking",
    ),
    Rule(
        "package_changed",
        "file",
        ALL,
        "a file's package changes: every type gets a new full name and SDK module",
        ("FILE_SAME_PACKAGE",),
    ),
    # messages
    Rule("message_added", "message", SAFE, "a new message", bump="minor"),
    Rule("message_removed", "message", SOURCE, "a message is deleted", ("MESSAGE_NO_DELETE",)),
    Rule("message_moved", "message", SOURCE, "a message moves to another file", ("MESSAGE_NO_DELETE",)),
    Rule("oneof_added", "oneof", SAFE, "a new oneof", bump="minor"),
    Rule("oneof_removed", "oneof", SOURCE, "a oneof is deleted", ("ONEOF_NO_DELETE",)),
    # fields
    Rule("field_added", "field", SAFE, "a new field", bump="minor"),
    Rule(
        "field_removed_reserved",
        "field",
        SOURCE,
        "a field is deleted with its number and name reserved",
        ("FIELD_NO_DELETE",),
    ),
    Rule(
        "field_removed_unreserved",
        "field",
        ALL,
        "a field is deleted without reserving its number or its name",
        ("FIELD_NO_DELETE", "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", "FIELD_NO_DELETE_UNLESS_NAME_RESERVED"),
        varies="wire-breaking only when the number is not reserved",
        least=JSON_SOURCE,
    ),
    Rule(
        "field_renamed",
        "field",
        JSON_SOURCE,
        "a field keeps its number, changes its name",
        ("FIELD_SAME_NAME",),
    ),
    Rule(
        "field_json_name_changed",
        "field",
        JSON_SOURCE,
        "a field's `json_name` changes (generated code writes the other name)",
        ("FIELD_SAME_JSON_NAME",),
    ),
    Rule(
        "field_number_changed",
        "field",
        WIRE_SOURCE,
        "a field keeps its name, changes its number (generated `*_FIELD_NUMBER` constants change)",
        ("FIELD_NO_DELETE", "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED"),
    ),
    Rule(
        "field_type_changed",
        "field",
        ALL,
        "a field's type changes",
        ("FIELD_SAME_TYPE", "FIELD_WIRE_COMPATIBLE_TYPE", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"),
        varies="wire and JSON follow the type tables below; always source-breaking",
        least=SOURCE,
    ),
    Rule(
        "field_map_shape_changed",
        "field",
        JSON_SOURCE,
        "`map<K, V>` becomes `repeated XEntry` (key = 1, value = 2) or back",
        ("FIELD_SAME_TYPE", "FIELD_WIRE_COMPATIBLE_TYPE", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"),
        differs=_MAP_REASON,
        lenient=("FIELD_WIRE_COMPATIBLE_TYPE",),
    ),
    Rule(
        "field_label_changed",
        "field",
        ALL,
        "a field becomes repeated or singular",
        (
            "FIELD_SAME_CARDINALITY",
            "FIELD_WIRE_COMPATIBLE_CARDINALITY",
            "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY",
        ),
    ),
    Rule(
        "field_presence_changed",
        "field",
        SOURCE,
        "a scalar or enum field gains or loses explicit presence (proto3 `optional`, editions' "
        "`features.field_presence`): `_pb2`'s HasField starts or stops raising, the dataclass "
        "SDK's attribute becomes or stops being `int | None` (unset reads None), and "
        "TypeScript's property becomes or stops being optional (`n?: number`); on a message "
        "field presence never changes and nothing is reported",
        ("FIELD_SAME_CARDINALITY",),
    ),
    Rule(
        "field_default_changed",
        "field",
        ALL,
        "a field's default value changes (`[default = ...]`): an unset field reads another value",
        ("FIELD_SAME_DEFAULT",),
    ),
    Rule("field_moved_into_oneof", "field", ALL, "a field moves into a oneof", ("FIELD_SAME_ONEOF",)),
    Rule("field_moved_out_of_oneof", "field", ALL, "a field leaves its oneof", ("FIELD_SAME_ONEOF",)),
    Rule("field_oneof_changed", "field", ALL, "a field moves to another oneof", ("FIELD_SAME_ONEOF",)),
    # reservations
    Rule("reserved_added", "message or enum", SAFE, "numbers or names newly reserved"),
    Rule(
        "reserved_removed",
        "message or enum",
        ALL,
        "reserved numbers or names are deleted, or a range is split or shrunk: they become free for reuse",
        ("RESERVED_MESSAGE_NO_DELETE", "RESERVED_ENUM_NO_DELETE"),
    ),
    # enums
    Rule("enum_added", "enum", SAFE, "a new enum", bump="minor"),
    Rule("enum_removed", "enum", SOURCE, "an enum is deleted", ("ENUM_NO_DELETE",)),
    Rule("enum_moved", "enum", SOURCE, "an enum moves to another file", ("ENUM_NO_DELETE",)),
    Rule(
        "enum_made_closed",
        "enum",
        ALL,
        "an open enum becomes closed (proto2, or editions' `features.enum_type = CLOSED`): "
        "values it does not name are dropped to unknown fields and the field reads its default",
        ("ENUM_SAME_TYPE",),
    ),
    Rule(
        "enum_made_open",
        "enum",
        SOURCE,
        "a closed enum becomes open: fields keep numbers it does not name, which generated "
        "code never returned before",
        ("ENUM_SAME_TYPE",),
    ),
    Rule("enum_value_added", "enum value", SAFE, "a new enum value", bump="minor"),
    Rule(
        "enum_value_alias_first_changed",
        "enum value",
        JSON_SOURCE,
        "an alias (`allow_alias`) is inserted before, or moved in front of, the name a number "
        "had first: `Name(n)` and the JSON name written change",
    ),
    Rule(
        "enum_value_removed_reserved",
        "enum value",
        SOURCE,
        "an enum value is deleted with its number and name reserved",
        ("ENUM_VALUE_NO_DELETE",),
    ),
    Rule(
        "enum_value_removed_unreserved",
        "enum value",
        ALL,
        "an enum value is deleted without reserving its number or its name",
        (
            "ENUM_VALUE_NO_DELETE",
            "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
            "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED",
        ),
        varies="wire-breaking only when the number is not reserved",
        least=JSON_SOURCE,
    ),
    Rule(
        "enum_value_renamed",
        "enum value",
        JSON_SOURCE,
        "an enum value keeps its number, changes its name",
        ("ENUM_VALUE_SAME_NAME",),
    ),
    Rule(
        "enum_value_number_changed",
        "enum value",
        WIRE_SOURCE,
        "an enum value keeps its name, changes its number (the generated member's value changes)",
        ("ENUM_VALUE_NO_DELETE", "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED"),
    ),
    # services and methods
    Rule("service_added", "service", SAFE, "a new service", bump="minor"),
    Rule(
        "service_removed",
        "service",
        ALL,
        "a service is deleted: callers get UNIMPLEMENTED",
        ("SERVICE_NO_DELETE",),
    ),
    Rule("service_moved", "service", SOURCE, "a service moves to another file", ("SERVICE_NO_DELETE",)),
    Rule("method_added", "method", SAFE, "a new RPC", bump="minor"),
    Rule("method_removed", "method", ALL, "an RPC is deleted: callers get UNIMPLEMENTED", ("RPC_NO_DELETE",)),
    Rule(
        "method_input_changed", "method", ALL, "an RPC takes another request type", ("RPC_SAME_REQUEST_TYPE",)
    ),
    Rule(
        "method_output_changed",
        "method",
        ALL,
        "an RPC returns another response type",
        ("RPC_SAME_RESPONSE_TYPE",),
    ),
    Rule(
        "method_streaming_changed",
        "method",
        ALL,
        "an RPC changes between unary and streaming",
        ("RPC_SAME_CLIENT_STREAMING", "RPC_SAME_SERVER_STREAMING"),
    ),
    Rule(
        "method_idempotency_changed",
        "method",
        WIRE_SOURCE,
        "an RPC's `idempotency_level` changes: clients retry it or send it as a GET differently, "
        "and generated descriptors (connect's GET support) change",
        ("RPC_SAME_IDEMPOTENCY_LEVEL",),
    ),
    Rule("http_route_added", "method", SAFE, "a `google.api.http` route is added", bump="minor"),
    Rule(
        "http_route_removed",
        "method",
        CLIENTS,
        "a `google.api.http` route is deleted: breaking for external REST clients",
        check="HTTP_ROUTE_REMOVED",
    ),
    Rule(
        "http_route_changed",
        "method",
        CLIENTS,
        "a `google.api.http` route changes verb, path template or body: breaking for external REST clients",
        check="HTTP_ROUTE_CHANGED",
    ),
    # extensions (custom options and extension fields), file-level and message-level
    Rule("extension_added", "extension", SAFE, "a new extension", bump="minor"),
    Rule(
        "extension_removed",
        "extension",
        ALL,
        "an extension is deleted: its number is free again and generated code loses it",
        ("EXTENSION_NO_DELETE",),
    ),
    Rule(
        "extension_renamed",
        "extension",
        JSON_SOURCE,
        "an extension keeps its number, changes its name",
        ("FIELD_SAME_NAME",),
    ),
    Rule(
        "extension_number_changed",
        "extension",
        WIRE_SOURCE,
        "an extension keeps its name, changes its number",
        ("EXTENSION_NO_DELETE",),
    ),
    Rule(
        "extension_type_changed",
        "extension",
        ALL,
        "an extension's type changes",
        ("FIELD_SAME_TYPE", "FIELD_WIRE_COMPATIBLE_TYPE", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"),
        varies="wire and JSON follow the type tables below; always source-breaking",
        least=SOURCE,
    ),
    Rule(
        "extension_label_changed",
        "extension",
        ALL,
        "an extension becomes repeated or singular",
        ("FIELD_SAME_CARDINALITY",),
    ),
    Rule(
        "extension_extendee_changed",
        "extension",
        ALL,
        "an extension now extends another message",
        ("EXTENSION_NO_DELETE",),
    ),
    # options
    Rule("option_changed", "any", SAFE, "an option that changes no generated code, wire or JSON"),
    Rule(
        "generated_code_option_changed",
        "any",
        SOURCE,
        "an option that changes the code of an SDK this registry ships (see the option table)",
        tuple(option.buf for option in CODEGEN_OPTIONS.values() if option.shipped),
    ),
    Rule(
        "generated_code_added",
        "any",
        SAFE,
        "an option that only adds generated code is turned on (`py_generic_services`: the _pb2 "
        "module gains service classes; the dataclass and TypeScript SDKs do not read it)",
        tuple(option.buf for option in CODEGEN_OPTIONS.values() if option.additive),
        bump="minor",
        differs="buf's FILE rules fail on any change of the option; turning it on only adds "
        "classes to the _pb2 module, so code generated from the base still runs (turning it "
        "off removes them and is `generated_code_option_changed`)",
        lenient=tuple(option.buf for option in CODEGEN_OPTIONS.values() if option.additive),
    ),
    Rule(
        "other_language_option_changed",
        "any",
        SAFE,
        "an option that changes only code generated by others for a language this registry does not ship",
        _FOREIGN_BUF_RULES,
        differs=_FOREIGN_OPTION_REASON,
        lenient=_FOREIGN_BUF_RULES,
    ),
    Rule("comment_changed", "any", SAFE, "leading or trailing comments change"),
    # buf.validate limits (protovalidate)
    Rule(
        "limit_tightened",
        "field, message or oneof",
        CLIENTS,
        "a `buf.validate` rule is added or made stricter: "
        "requests that passed are refused with INVALID_ARGUMENT",
        check="LIMIT_TIGHTENED",
    ),
    Rule(
        "limit_changed",
        "field, message or oneof",
        CLIENTS,
        "a `buf.validate` rule changes in a way the engine cannot rank (CEL, pattern, formats): "
        "review by hand, treated as tightened",
        check="LIMIT_CHANGED",
    ),
    Rule(
        "limit_loosened",
        "field, message or oneof",
        SAFE,
        "a `buf.validate` rule is removed or relaxed: requests that were refused are accepted, "
        "a minor release because clients that rely on it need the new servers",
        bump="minor",
    ),
)

_DEPRECATABLE = ("file", "message", "field", "oneof", "enum", "enum_value", "service", "method", "extension")
_DEPRECATIONS = tuple(
    Rule(
        f"{what}_{verb}",
        what.replace("_", " "),
        SAFE,
        f"a {what.replace('_', ' ')} is {verb.replace('_', ' ')}",
        bump="minor",
    )
    for what in _DEPRECATABLE
    for verb in ("deprecated", "undeprecated")
)

RULES: dict[str, Rule] = {
    rule.kind: replace(rule, oracle=MEASURED.get(rule.kind, ())) for rule in (*_TABLE, *_DEPRECATIONS)
}


def deliberate_differences() -> list[tuple[str, str, str]]:
    """(kind, buf rule, reason) for every buf rule the review judges more leniently: the one list."""
    return [(rule.kind, buf, rule.differs) for rule in RULES.values() for buf in rule.lenient]
