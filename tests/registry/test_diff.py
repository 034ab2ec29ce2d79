"""diff_schemas classifies each kind of schema change as protobuf's rules say; semver follows.

Every scenario compiles a base and a head schema with the real buf, so the
descriptors (json_name, map entries, synthetic oneofs, source info) are exactly
what ``buf build`` writes for the registry.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry.buf import run_buf
from registry.diff import RULES, Change, diff_schemas, load_image
from registry.layout import RepoLayout
from registry.review import Review
from registry.semver import Bump, dev_version, next_version, parse_version, required_bump

from .schemas import DEMO, Compile, proto
from .vendored import google_api_protos, validate_proto


def diff(compile_files: Compile, base: str, head: str) -> list[Change]:
    return diff_schemas(compile_files({DEMO: base}), compile_files({DEMO: head}))


# --- the scenario table ----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One edit of a schema, what diff_schemas must report, and the version bump it needs."""

    id: str
    base: str
    head: str
    kinds: set[str]
    key: str | None  # the kind of the change whose flags are checked
    breaks: set[str] = field(default_factory=set)  # of "wire", "json", "source", "clients"
    bump: Bump = Bump.MAJOR
    imports: tuple[str, ...] = ()  # third-party files both sides hold: "validate", "http"
    says: str = ""  # a phrase the key change's detail must hold


def m(*lines: str, before: str = "", after: str = "") -> str:
    """A file holding message M with body ``lines``, and ``before``/``after`` it other text."""
    body = "\n".join(f"  {line}" for line in lines)
    return proto(f"{before}\nmessage M {{\n{body}\n}}\n{after}")


def with_n(*lines: str, before: str = "", after: str = "") -> str:
    """M with field ``a`` unchanged and field ``n`` replaced by ``lines``."""
    return m("string a = 1;", *lines, before=before, after=after)


M = with_n("int32 n = 2;")


def color(*lines: str) -> str:
    """A file holding enum Color with body ``lines``."""
    body = "\n".join(f"  {line}" for line in lines)
    return proto(f"enum Color {{\n{body}\n}}")


COLOR_VALUES = ("COLOR_UNSPECIFIED = 0;", "COLOR_RED = 1;")
COLOR = color(*COLOR_VALUES, "COLOR_BLUE = 2;")


def service(*rpcs: str, after: str = "") -> str:
    """A file holding service S with ``rpcs``, the messages they use, and ``after``."""
    body = "\n".join(f"  {rpc}" for rpc in rpcs)
    messages = "message GetRequest {}\nmessage GetResponse {}\nmessage OtherRequest {}"
    return proto(f"{messages}\nservice S {{\n{body}\n}}\n{after}")


GET = "rpc Get(GetRequest) returns (GetResponse);"
PUT = "rpc Put(GetRequest) returns (GetResponse);"
S = service(GET)
T = "service T {\n  rpc Get(GetRequest) returns (GetResponse);\n}"
NESTED = proto(
    """
    message Outer {
      message Inner {
        string x = 1;
      }
      Inner inner = 1;
      map<string, int32> counts = 2;
    }
    """
)
# Types referring to each other, nested, and used by a service: all renamed by a package change.
LINKED = proto(
    """
    message A {
      enum Kind {
        KIND_UNSPECIFIED = 0;
      }
      B b = 1;
      Kind kind = 2;
      map<string, B> bs = 3;
    }
    message B {}
    service S {
      rpc Get(A) returns (B);
    }
    """
)
ENUM_E = "enum E {\n  E_UNSPECIFIED = 0;\n}"
A_AND_B = "message A {}\nmessage B {}"
EXTRA = "message Extra {\n  string x = 1;\n}"
KIND = "enum Kind {\n  KIND_UNSPECIFIED = 0;\n}"
IDEMPOTENT = (
    "rpc Get(GetRequest) returns (GetResponse) {\n    option idempotency_level = NO_SIDE_EFFECTS;\n  }"
)
DEPRECATED_RPC = "rpc Get(GetRequest) returns (GetResponse) {\n    option deprecated = true;\n  }"
TIMESTAMP = 'package demo.v1;\n\nimport "google/protobuf/timestamp.proto";'
ALL = {"wire", "json", "source"}

# --- issue 9: breaks the engine missed, and wrong verdicts -------------------------------

WIRE_JSON_SOURCE = ALL
RESERVING = with_n("int32 n = 2;", "reserved 20 to 29;", 'reserved "legacy";')
COLOR_RESERVING = color(*COLOR_VALUES, "reserved 5 to 9;", 'reserved "COLOR_OLD";')
DESCRIPTOR = 'package demo.v1;\n\nimport "google/protobuf/descriptor.proto";'
FILE_EXT = "extend google.protobuf.FieldOptions {\n  string note_label = 50001;\n}"
MESSAGE_EXT = "message Ext {\n  extend google.protobuf.MessageOptions {\n    string tag = 50010;\n  }\n}"


def extended(extension: str) -> str:
    """M beside ``extension``, in a file importing descriptor.proto."""
    return M.replace("package demo.v1;", DESCRIPTOR) + "\n" + extension + "\n"


def file_option(option: str) -> str:
    """M in a file that sets ``option``."""
    return M.replace("package demo.v1;", f"package demo.v1;\n\noption {option};")


ENTRY = "message CountsEntry {\n  string key = 1;\n  int32 value = 2;\n}"
ENTRY_SHAPED = (
    NESTED.replace("map<string, int32> counts = 2;", "repeated CountsEntry counts = 2;") + ENTRY + "\n"
)
ENUMS_E_F = ENUM_E + "\nenum F {\n  F_UNSPECIFIED = 0;\n}"

ISSUE_9_CASES = [
    # 1. deleting reserved numbers or names, in messages and enums; splitting a range
    Case(
        "remove_message_reserved_range",
        RESERVING,
        with_n("int32 n = 2;", 'reserved "legacy";'),
        {"reserved_removed"},
        "reserved_removed",
        ALL,
        says="no longer reserves 20 to 29",
    ),
    Case(
        "remove_message_reserved_name",
        RESERVING,
        with_n("int32 n = 2;", "reserved 20 to 29;"),
        {"reserved_removed"},
        "reserved_removed",
        ALL,
        says='no longer reserves "legacy"',
    ),
    Case(
        "split_message_reserved_range",
        RESERVING,
        with_n("int32 n = 2;", "reserved 20 to 24, 26 to 29;", 'reserved "legacy";'),
        {"reserved_removed"},
        "reserved_removed",
        ALL,
        says="no longer reserves 25:",
    ),
    Case(
        "remove_enum_reserved_range",
        COLOR_RESERVING,
        color(*COLOR_VALUES, 'reserved "COLOR_OLD";'),
        {"reserved_removed"},
        "reserved_removed",
        ALL,
        says="no longer reserves 5 to 9",
    ),
    Case(
        "remove_enum_reserved_name",
        COLOR_RESERVING,
        color(*COLOR_VALUES, "reserved 5 to 9;"),
        {"reserved_removed"},
        "reserved_removed",
        ALL,
        says='no longer reserves "COLOR_OLD"',
    ),
    Case(
        "split_enum_reserved_range",
        COLOR_RESERVING,
        color(*COLOR_VALUES, "reserved 5 to 6, 8 to 9;", 'reserved "COLOR_OLD";'),
        {"reserved_removed"},
        "reserved_removed",
        ALL,
        says="no longer reserves 7:",
    ),
    # 2. extensions, file-level and message-level
    Case(
        "add_file_extension", M, extended(FILE_EXT), {"extension_added"}, "extension_added", bump=Bump.MINOR
    ),
    Case(
        "file_extension_type_changed",
        extended(FILE_EXT),
        extended(FILE_EXT.replace("string", "int32")),
        {"extension_type_changed"},
        "extension_type_changed",
        ALL,
        says="from string to int32",
    ),
    Case(
        "file_extension_renamed",
        extended(FILE_EXT),
        extended(FILE_EXT.replace("note_label", "label")),
        {"extension_renamed"},
        "extension_renamed",
        {"json", "source"},
    ),
    Case(
        "file_extension_number_changed",
        extended(FILE_EXT),
        extended(FILE_EXT.replace("50001", "50002")),
        {"extension_number_changed"},
        "extension_number_changed",
        {"wire", "source"},
    ),
    Case(
        "file_extension_removed",
        extended(FILE_EXT),
        extended(""),
        {"extension_removed"},
        "extension_removed",
        ALL,
    ),
    Case(
        "message_extension_type_changed",
        extended(MESSAGE_EXT),
        extended(MESSAGE_EXT.replace("string", "bytes")),
        {"extension_type_changed"},
        "extension_type_changed",
        {"json", "source"},
    ),
    Case(
        "message_extension_renamed",
        extended(MESSAGE_EXT),
        extended(MESSAGE_EXT.replace("tag", "label")),
        {"extension_renamed"},
        "extension_renamed",
        {"json", "source"},
    ),
    Case(
        "message_extension_number_changed",
        extended(MESSAGE_EXT),
        extended(MESSAGE_EXT.replace("50010", "50011")),
        {"extension_number_changed"},
        "extension_number_changed",
        {"wire", "source"},
    ),
    Case(
        "message_extension_removed",
        extended(MESSAGE_EXT),
        extended("message Ext {}"),
        {"extension_removed"},
        "extension_removed",
        ALL,
    ),
    # 3. options that change generated code: shipped SDKs, and languages the registry does not ship
    Case(
        "jstype_changed",
        m("int64 big = 1;"),
        m("int64 big = 1 [jstype = JS_STRING];"),
        {"generated_code_option_changed"},
        "generated_code_option_changed",
        {"source"},
        says="TypeScript SDK",
    ),
    Case(
        "py_generic_services_turned_on",
        M,
        file_option("py_generic_services = true"),
        {"generated_code_added"},
        "generated_code_added",
        bump=Bump.MINOR,
        says="nothing is removed",
    ),
    Case(
        "ctype_changed",
        m("string s = 1;"),
        m("string s = 1 [ctype = CORD];"),
        {"other_language_option_changed"},
        "other_language_option_changed",
        bump=Bump.PATCH,
        says="affects only C++ code generated by others",
    ),
    *(
        Case(
            f"{option.split(' ')[0]}_changed",
            M,
            file_option(option),
            {"other_language_option_changed"},
            "other_language_option_changed",
            bump=Bump.PATCH,
            says=f"affects only {language} code",
        )
        for option, language in (
            ('go_package = "example.com/demo/v1;demov1"', "Go"),
            ('csharp_namespace = "Demo.V1"', "C#"),
            ('objc_class_prefix = "DMX"', "Objective-C"),
            ('php_namespace = "Demo\\\\V1"', "PHP"),
            ('ruby_package = "Demo::V1"', "Ruby"),
            ('swift_prefix = "Demo"', "Swift"),
            ("optimize_for = LITE_RUNTIME", "C++ and Java"),
            ("cc_enable_arenas = false", "C++"),
            ("cc_generic_services = true", "C++"),
            ("java_generic_services = true", "Java"),
        )
    ),
    # 4. bytes -> string breaks the wire (string -> bytes is above: JSON and source only)
    Case(
        "bytes_to_string",
        m("bytes a = 1;", "int32 n = 2;"),
        M,
        {"field_type_changed"},
        "field_type_changed",
        ALL,
    ),
    # 5. `optional` on a message field changes nothing
    Case(
        "optional_message_field_added",
        m("A x = 1;", after=A_AND_B),
        m("optional A x = 1;", after=A_AND_B),
        set(),
        None,
        bump=Bump.NONE,
    ),
    Case(
        "optional_message_field_removed",
        m("optional A x = 1;", after=A_AND_B),
        m("A x = 1;", after=A_AND_B),
        set(),
        None,
        bump=Bump.NONE,
    ),
    # 6. map <-> repeated XEntry: the same bytes, another JSON form
    Case(
        "map_to_repeated_entry",
        NESTED,
        ENTRY_SHAPED,
        {"field_map_shape_changed", "message_added"},
        "field_map_shape_changed",
        {"json", "source"},
    ),
    Case(
        "repeated_entry_to_map",
        ENTRY_SHAPED,
        NESTED,
        {"field_map_shape_changed", "message_removed"},
        "field_map_shape_changed",
        {"json", "source"},
    ),
    Case(
        "map_to_repeated_other_entry",
        NESTED,
        ENTRY_SHAPED.replace("int32 value", "string value"),
        {"field_type_changed", "message_added"},
        "field_type_changed",
        ALL,
    ),
    # 7. named types: one rule for enums and messages
    Case(
        "enum_to_int32",
        with_n("E n = 2;", before=ENUM_E),
        M,
        {"field_type_changed", "enum_removed"},
        "field_type_changed",
        ALL,
    ),
    Case(
        "enum_to_other_enum",
        with_n("E n = 2;", before=ENUMS_E_F),
        with_n("F n = 2;", before=ENUMS_E_F),
        {"field_type_changed"},
        "field_type_changed",
        ALL,
    ),
]


# --- issue 23: values, aliases, editions; options set to what they already were ---------


def edition(body: str) -> str:
    """An editions 2023 file of package ``demo.v1`` holding ``body`` (dedented)."""
    return f'edition = "2023";\n\npackage demo.v1;\n\n{textwrap.dedent(body).strip()}\n'


def scalar(kind: str) -> str:
    """M holding one field ``v`` of scalar type ``kind``."""
    return m(f"{kind} v = 1;")


ALIASED = ("option allow_alias = true;", "COLOR_UNSPECIFIED = 0;")
PROTO3_BODY = """
    message M {
      string a = 1;
      repeated int32 r = 3;
      E e = 4;
      Inner inner = 5;
      message Inner {}
    }
    enum E {
      E_UNSPECIFIED = 0;
    }
"""
# The same schema as PROTO3_BODY, in an editions file: implicit presence, as proto3 has it.
EQUIVALENT_EDITION = edition("option features.field_presence = IMPLICIT;\n" + PROTO3_BODY)
PROTO3_OPTIONAL = proto("message M {\n  optional int32 n = 1;\n}")
EDITION_EXPLICIT = edition("message M {\n  int32 n = 1;\n}")
OPEN_ENUM = "enum E {\n  E_UNSPECIFIED = 0;\n  E_A = 1;\n}"
CLOSED_ENUM = OPEN_ENUM.replace("{\n", "{\n  option features.enum_type = CLOSED;\n", 1)

# (base type, head type, what breaks): judged on the values each type holds, not the wire type alone.
INTEGER_CHANGES = [
    ("int32", "uint32", ALL),
    ("uint32", "int32", ALL),
    ("int64", "uint64", ALL),
    ("uint64", "int64", ALL),
    ("int32", "uint64", ALL),
    ("int64", "int32", ALL),
    ("uint32", "uint64", {"json", "source"}),
    ("uint32", "int64", {"json", "source"}),
    ("sint32", "int32", {"wire", "source"}),
    ("int64", "sint64", {"wire", "source"}),
    ("sint32", "sint64", {"json", "source"}),
    ("sint64", "sint32", ALL),
    ("fixed32", "sfixed32", ALL),
    ("sfixed32", "fixed32", ALL),
    ("fixed64", "sfixed64", ALL),
    ("sfixed64", "fixed64", ALL),
    ("bool", "int32", {"json", "source"}),
    ("int32", "bool", ALL),
]

ISSUE_23_CASES = [
    # an alias inserted before a name changes Name(n) and the JSON written; after it, nothing
    Case("enum_alias_inserted_before_a_name", color("COLOR_UNSPECIFIED = 0;", "COLOR_RED = 1;"),
         color(*ALIASED, "COLOR_CRIMSON = 1;", "COLOR_RED = 1;"),
         {"enum_value_added", "enum_value_alias_first_changed", "option_changed"},
         "enum_value_alias_first_changed", {"json", "source"}, says="`COLOR_CRIMSON` instead of `COLOR_RED`"),
    Case("enum_alias_appended_after_a_name", color("COLOR_UNSPECIFIED = 0;", "COLOR_RED = 1;"),
         color(*ALIASED, "COLOR_RED = 1;", "COLOR_CRIMSON = 1;"), {"enum_value_added", "option_changed"},
         "enum_value_added", bump=Bump.MINOR),
    Case("enum_aliases_swapped", color(*ALIASED, "COLOR_RED = 1;", "COLOR_CRIMSON = 1;"),
         color(*ALIASED, "COLOR_CRIMSON = 1;", "COLOR_RED = 1;"), {"enum_value_alias_first_changed"},
         "enum_value_alias_first_changed", {"json", "source"}),
    *(
        Case(f"{old}_to_{new}", scalar(old), scalar(new), {"field_type_changed"}, "field_type_changed",
             breaks)
        for old, new, breaks in INTEGER_CHANGES
    ),
    # editions: presence, defaults and enum openness as the runtime resolves them
    Case("editions_presence_explicit_to_implicit", edition("message M {\n  int32 n = 1;\n}"),
         edition("message M {\n  int32 n = 1 [features.field_presence = IMPLICIT];\n}"),
         {"field_presence_changed"}, "field_presence_changed", {"source"}, says="HasField raises"),
    Case("editions_file_presence_implicit", edition("message M {\n  int32 n = 1;\n}"),
         edition("option features.field_presence = IMPLICIT;\nmessage M {\n  int32 n = 1;\n}"),
         {"field_presence_changed"}, "field_presence_changed", {"source"}),
    Case("editions_default_changed", edition("message M {\n  int32 n = 1 [default = 5];\n}"),
         edition("message M {\n  int32 n = 1 [default = 9];\n}"), {"field_default_changed"},
         "field_default_changed", ALL, says="from 5 to 9"),
    Case("editions_enum_open_to_closed", edition(f"{OPEN_ENUM}\nmessage M {{\n  E e = 1;\n}}"),
         edition(f"{CLOSED_ENUM}\nmessage M {{\n  E e = 1;\n}}"), {"enum_made_closed"},
         "enum_made_closed", ALL),
    Case("editions_enum_closed_to_open", edition(f"{CLOSED_ENUM}\nmessage M {{\n  E e = 1;\n}}"),
         edition(f"{OPEN_ENUM}\nmessage M {{\n  E e = 1;\n}}"), {"enum_made_open"}, "enum_made_open",
         {"source"}),
    Case("editions_utf8_validation_off", edition("message M {\n  string s = 1;\n}"),
         edition("message M {\n  string s = 1 [features.utf8_validation = NONE];\n}"),
         {"feature_changed"}, "feature_changed", ALL, says="review by hand"),
    Case("editions_packed_to_expanded", edition("message M {\n  repeated int32 r = 1;\n}"),
         edition("message M {\n  repeated int32 r = 1 [features.repeated_field_encoding = EXPANDED];\n}"),
         {"option_changed"}, "option_changed", bump=Bump.PATCH),
    Case("proto3_to_equivalent_edition", proto(PROTO3_BODY), EQUIVALENT_EDITION, {"syntax_changed"},
         "syntax_changed", bump=Bump.PATCH, says="from proto3 to 2023"),
    Case("proto3_to_edition_with_explicit_presence", proto(PROTO3_BODY), edition(PROTO3_BODY),
         {"syntax_changed", "field_presence_changed"}, "field_presence_changed", {"source"}),
    # presence kept, but protoc-gen-es makes only proto3 `optional` fields optional properties
    Case("proto3_optional_to_editions_explicit", PROTO3_OPTIONAL, EDITION_EXPLICIT,
         {"syntax_changed", "field_presence_changed"}, "field_presence_changed", {"source"},
         says="TypeScript property changes from `n?: T | undefined` to `n: T`"),
    # options set to the value they already had; options that only add code
    Case("jstype_set_to_its_default", m("int64 big = 1;"), m("int64 big = 1 [jstype = JS_NORMAL];"),
         {"option_changed"}, "option_changed", bump=Bump.PATCH),
    Case("py_generic_services_turned_off", file_option("py_generic_services = true"), M,
         {"generated_code_option_changed"}, "generated_code_option_changed", {"source"}, says="Python SDK"),
]  # fmt: skip

# --- issue 8: buf.validate limits; issue 12: google.api.http routes ------------------------

V = "(buf.validate.field)"


def limited(*lines: str, message: str = "") -> str:
    """M with ``lines``, in a file importing protovalidate's validate.proto."""
    body = "\n".join(f"  {line}" for line in lines)
    return proto(f'import "buf/validate/validate.proto";\n\nmessage M {{\n{message}{body}\n}}\n{ENUM_E}')


def limit(id: str, base: str, head: str, kind: str, says: str = "", *, message: str = "") -> Case:
    """A limit scenario: field lines before and after, the one kind it reports."""
    before = limited(*base.split("\n"), message=message.split("|")[0] if message else "")
    after = limited(*head.split("\n"), message=message.split("|")[-1] if message else "")
    breaks = {"clients"} if kind != "limit_loosened" else set()
    bump = Bump.MAJOR if breaks else Bump.MINOR
    return Case(id, before, after, {kind}, kind, breaks, bump, imports=("validate",), says=says)


TIGHT = "limit_tightened"
LOOSE = "limit_loosened"
LIMIT_CASES = [
    limit(
        "max_len_added",
        "string a = 1;",
        f"string a = 1 [{V}.string.max_len = 1024];",
        TIGHT,
        "clients that send `a` longer than 1024 characters are now refused with INVALID_ARGUMENT",
    ),
    limit(
        "max_len_lowered",
        f"string a = 1 [{V}.string.max_len = 4096];",
        f"string a = 1 [{V}.string.max_len = 1024];",
        TIGHT,
        "`string.max_len` from 4096 to 1024; clients that send `a` longer than 1024 characters",
    ),
    limit(
        "max_len_raised",
        f"string a = 1 [{V}.string.max_len = 1024];",
        f"string a = 1 [{V}.string.max_len = 4096];",
        LOOSE,
        "`string.max_len` from 1024 to 4096; requests the base refused are now accepted (minor",
    ),
    limit(
        "max_len_removed",
        f"string a = 1 [{V}.string.max_len = 1024];",
        "string a = 1;",
        LOOSE,
        "`string.max_len` (was 1024) removed",
    ),
    limit(
        "min_len_raised",
        f"string a = 1 [{V}.string.min_len = 1];",
        f"string a = 1 [{V}.string.min_len = 3];",
        TIGHT,
        "clients that send `a` with fewer than 3 characters",
    ),
    limit(
        "max_bytes_lowered",
        f"bytes a = 1 [{V}.bytes.max_len = 100];",
        f"bytes a = 1 [{V}.bytes.max_len = 10];",
        TIGHT,
        "`bytes.max_len` from 100 to 10",
    ),
    limit(
        "max_items_lowered",
        f"repeated string r = 1 [{V}.repeated.max_items = 10];",
        f"repeated string r = 1 [{V}.repeated.max_items = 5];",
        TIGHT,
        "clients that send `r` with more than 5 items",
    ),
    limit(
        "max_pairs_lowered",
        f"map<string, string> p = 1 [{V}.map.max_pairs = 10];",
        f"map<string, string> p = 1 [{V}.map.max_pairs = 5];",
        TIGHT,
        "`p` with more than 5 entries",
    ),
    limit(
        "item_max_len_lowered",
        f"repeated string r = 1 [{V}.repeated.items.string.max_len = 10];",
        f"repeated string r = 1 [{V}.repeated.items.string.max_len = 5];",
        TIGHT,
        "`repeated.items.string.max_len` from 10 to 5",
    ),
    limit(
        "required_added",
        "string a = 1;",
        f"string a = 1 [{V}.required = true];",
        TIGHT,
        "clients that send no `a` are now refused",
    ),
    limit("required_removed", f"string a = 1 [{V}.required = true];", "string a = 1;", LOOSE),
    limit(
        "gt_to_gte_same_value", f"int32 n = 1 [{V}.int32.gt = 0];", f"int32 n = 1 [{V}.int32.gte = 0];", LOOSE
    ),
    limit(
        "lte_lowered",
        f"int32 n = 1 [{V}.int32.lte = 100];",
        f"int32 n = 1 [{V}.int32.lte = 10];",
        TIGHT,
        "`n` above 10",
    ),
    limit("lt_raised", f"int32 n = 1 [{V}.int32.lt = 10];", f"int32 n = 1 [{V}.int32.lt = 100];", LOOSE),
    limit(
        "in_list_shrunk",
        f"int32 n = 1 [{V}.int32 = {{in: [1, 2, 3]}}];",
        f"int32 n = 1 [{V}.int32 = {{in: [1, 2]}}];",
        TIGHT,
        "outside (1, 2)",
    ),
    limit(
        "not_in_list_grown",
        f"int32 n = 1 [{V}.int32 = {{not_in: [1]}}];",
        f"int32 n = 1 [{V}.int32 = {{not_in: [1, 2]}}];",
        TIGHT,
    ),
    limit(
        "defined_only_added",
        "E e = 1;",
        f"E e = 1 [{V}.enum.defined_only = true];",
        TIGHT,
        "an enum number `e` does not define",
    ),
    limit(
        "pattern_changed",
        f'string a = 1 [{V}.string.pattern = "^[a-z]+$"];',
        f'string a = 1 [{V}.string.pattern = "^[a-z0-9]+$"];',
        "limit_changed",
        "review by hand",
    ),
    limit(
        "message_cel_added",
        "string a = 1;",
        "string a = 1;",
        "limit_changed",
        "message `demo.v1.M`",
        message='|  option (buf.validate.message).cel = {id: "a_set", expression: "this.a != \'\'"};\n',
    ),
    limit(
        "oneof_required_added",
        "oneof choice {\n  string x = 1;\n}",
        "oneof choice {\n  option (buf.validate.oneof).required = true;\n  string x = 1;\n}",
        TIGHT,
        "clients that send no `choice`",
    ),
    # A new field: old clients never set it, so only rules its unset value fails refuse them.
    *(
        Case(id, limited("string a = 1;"), limited("string a = 1;", line), kinds, key, breaks, bump,
             imports=("validate",), says=says)
        for id, line, kinds, key, breaks, bump, says in (
            ("new_field_with_max_len", f"string b = 2 [{V}.string.max_len = 9];", {"field_added"},
             "field_added", set(), Bump.MINOR, ""),
            ("new_field_with_min_len", f"string b = 2 [{V}.string.min_len = 1];", {"field_added", TIGHT},
             TIGHT, {"clients"}, Bump.MAJOR, "clients that do not know the field send no `b`"),
            ("new_optional_field_with_min_len", f"optional string b = 2 [{V}.string.min_len = 1];",
             {"field_added"}, "field_added", set(), Bump.MINOR, ""),
            ("new_required_message_field", f"M b = 2 [{V}.required = true];", {"field_added", TIGHT}, TIGHT,
             {"clients"}, Bump.MAJOR, "`required` = True"),
            ("new_field_ignored_when_empty",
             f"string b = 2 [{V}.string.min_len = 1, {V}.ignore = IGNORE_IF_ZERO_VALUE];",
             {"field_added"}, "field_added", set(), Bump.MINOR, ""),
        )
    ),
]  # fmt: skip


def routed(*routes: str) -> str:
    """Service S whose Get carries ``routes`` as its google.api.http option."""
    rule = " ".join(routes)
    rpc = GET.replace(";", f" {{\n    option (google.api.http) = {{{rule}}};\n  }}") if routes else GET
    return service(rpc).replace(
        "package demo.v1;", 'package demo.v1;\n\nimport "google/api/annotations.proto";'
    )


def route(id: str, base: str, head: str, kind: str, says: str = "") -> Case:
    """A route scenario: the rule before and after (empty for none)."""
    breaks = set() if kind == "http_route_added" else {"clients"}
    bump = Bump.MINOR if kind == "http_route_added" else Bump.MAJOR
    before, after = routed(base) if base else routed(), routed(head) if head else routed()
    return Case(id, before, after, {kind}, kind, breaks, bump, imports=("http",), says=says)


GET_ROUTE = 'get: "/v1/things/{id}"'
ROUTE_CASES = [
    route("route_added", "", GET_ROUTE, "http_route_added", "`GET /v1/things/{id}` added"),
    route("route_removed", GET_ROUTE, "", "http_route_removed", "breaking for external REST clients"),
    route(
        "route_verb_changed",
        GET_ROUTE,
        'post: "/v1/things/{id}" body: "*"',
        "http_route_changed",
        "from `GET /v1/things/{id}` to `POST /v1/things/{id}`, body `*`",
    ),
    route("route_path_changed", GET_ROUTE, 'get: "/v2/things/{id}"', "http_route_changed"),
    route(
        "route_binding_added",
        GET_ROUTE,
        GET_ROUTE + ' additional_bindings {post: "/v1/things" body: "*"}',
        "http_route_added",
    ),
]


CASES = [
    Case("no_change", M, M, set(), None, bump=Bump.NONE),
    # fields
    Case("add_field", M, with_n("int32 n = 2;", "string c = 3;"), {"field_added"}, "field_added",
         bump=Bump.MINOR),
    Case("add_optional_field", M, with_n("int32 n = 2;", "optional string c = 3;"), {"field_added"},
         "field_added", bump=Bump.MINOR),
    Case("add_field_of_imported_type", M,
         with_n("int32 n = 2;", "google.protobuf.Timestamp at = 3;").replace("package demo.v1;", TIMESTAMP),
         {"field_added"}, "field_added", bump=Bump.MINOR),
    Case("delete_field_unreserved", M, with_n(), {"field_removed_unreserved"}, "field_removed_unreserved",
         ALL),
    Case("delete_field_reserved", M, with_n("reserved 2;", 'reserved "n";'), {"field_removed_reserved"},
         "field_removed_reserved", {"source"}),
    Case("delete_field_number_only_reserved", M, with_n("reserved 2;"), {"field_removed_unreserved"},
         "field_removed_unreserved", {"json", "source"}),
    Case("deprecate_field", M, with_n("int32 n = 2 [deprecated = true];"), {"field_deprecated"},
         "field_deprecated", bump=Bump.MINOR),
    Case("rename_field", M, with_n("int32 count = 2;"), {"field_renamed"}, "field_renamed",
         {"json", "source"}),
    Case("rename_field_keeping_json_name", M, with_n('int32 count = 2 [json_name = "n"];'), {"field_renamed"},
         "field_renamed", {"json", "source"}),
    Case("change_json_name", M, with_n('int32 n = 2 [json_name = "num"];'), {"field_json_name_changed"},
         "field_json_name_changed", {"json", "source"}),
    Case("change_field_number", M, with_n("int32 n = 3;"), {"field_number_changed"}, "field_number_changed",
         {"wire", "source"}),
    Case("swap_field_numbers", M, m("string a = 2;", "int32 n = 1;"), {"field_number_changed"},
         "field_number_changed", {"wire", "source"}),
    Case("int32_to_int64", M, with_n("int64 n = 2;"), {"field_type_changed"}, "field_type_changed",
         {"json", "source"}),
    Case("int32_to_sint32", M, with_n("sint32 n = 2;"), {"field_type_changed"}, "field_type_changed",
         {"wire", "source"}),
    Case("int32_to_string", M, with_n("string n = 2;"), {"field_type_changed"}, "field_type_changed", ALL),
    Case("int32_to_enum", M, with_n("E n = 2;", before=ENUM_E), {"field_type_changed", "enum_added"},
         "field_type_changed", ALL),
    Case("string_to_bytes", M, m("bytes a = 1;", "int32 n = 2;"), {"field_type_changed"},
         "field_type_changed", {"json", "source"}),
    Case("float_to_double", m("float f = 1;"), m("double f = 1;"), {"field_type_changed"},
         "field_type_changed", {"wire", "source"}),
    Case("message_type_changed", m("A x = 1;", after=A_AND_B), m("B x = 1;", after=A_AND_B),
         {"field_type_changed"}, "field_type_changed", ALL),
    Case("make_field_repeated", M, with_n("repeated int32 n = 2;"), {"field_label_changed"},
         "field_label_changed", ALL),
    Case("make_field_optional", M, with_n("optional int32 n = 2;"), {"field_presence_changed"},
         "field_presence_changed", {"source"}),
    # oneofs and reservations
    Case("move_field_into_new_oneof", M, with_n("oneof choice {", "  int32 n = 2;", "}"),
         {"field_moved_into_oneof", "oneof_added"}, "field_moved_into_oneof", ALL),
    Case("move_field_into_existing_oneof", with_n("oneof choice {", "  int32 n = 2;", "}"),
         m("oneof choice {", "  string a = 1;", "  int32 n = 2;", "}"), {"field_moved_into_oneof"},
         "field_moved_into_oneof", ALL),
    Case("move_field_out_of_shared_oneof", m("oneof choice {", "  string a = 1;", "  int32 n = 2;", "}"),
         with_n("oneof choice {", "  int32 n = 2;", "}"), {"field_moved_out_of_oneof"},
         "field_moved_out_of_oneof", ALL),
    Case("rename_oneof", with_n("oneof choice {", "  int32 n = 2;", "}"),
         with_n("oneof pick {", "  int32 n = 2;", "}"),
         {"field_oneof_changed", "oneof_added", "oneof_removed"}, "field_oneof_changed", ALL),
    Case("add_oneof", M, with_n("int32 n = 2;", "oneof choice {", "  string c = 3;", "}"),
         {"oneof_added", "field_added"}, "oneof_added", bump=Bump.MINOR),
    Case("remove_oneof", with_n("int32 n = 2;", "oneof choice {", "  string c = 3;", "}"), M,
         {"oneof_removed", "field_removed_unreserved"}, "oneof_removed", {"source"}),
    Case("add_reserved", M, with_n("int32 n = 2;", "reserved 5 to 7;", 'reserved "old";'), {"reserved_added"},
         "reserved_added", bump=Bump.PATCH),
    # messages, nesting, maps
    Case("add_message", M, with_n("int32 n = 2;", after=EXTRA), {"message_added"}, "message_added",
         bump=Bump.MINOR),
    Case("remove_message", with_n("int32 n = 2;", after=EXTRA), M, {"message_removed"},
         "message_removed", {"source"}),
    Case("remove_message_still_referenced", m("Extra a = 1;", after=EXTRA), m("string a = 1;"),
         {"message_removed", "field_type_changed"}, "field_type_changed", ALL),
    Case("nested_message_field_added", NESTED, NESTED.replace("x = 1;", "x = 1;\n    string y = 2;"),
         {"field_added"}, "field_added", bump=Bump.MINOR),
    Case("nested_message_added", NESTED, NESTED.replace("Inner inner", "message Deeper {}\n  Inner inner"),
         {"message_added"}, "message_added", bump=Bump.MINOR),
    Case("map_value_int32_to_string", NESTED, NESTED.replace("int32>", "string>"), {"field_type_changed"},
         "field_type_changed", ALL),
    Case("map_value_int32_to_uint32", NESTED, NESTED.replace("int32>", "uint32>"), {"field_type_changed"},
         "field_type_changed", ALL),  # a value of -3 reads as 4294967293
    Case("map_value_int32_to_int64", NESTED, NESTED.replace("int32>", "int64>"), {"field_type_changed"},
         "field_type_changed", {"json", "source"}),
    # enums
    Case("add_enum_value", COLOR, color(*COLOR_VALUES, "COLOR_BLUE = 2;", "COLOR_GREEN = 3;"),
         {"enum_value_added"}, "enum_value_added", bump=Bump.MINOR),
    Case("remove_enum_value_unreserved", COLOR, color(*COLOR_VALUES), {"enum_value_removed_unreserved"},
         "enum_value_removed_unreserved", ALL),
    Case("remove_enum_value_reserved", COLOR, color(*COLOR_VALUES, "reserved 2;", 'reserved "COLOR_BLUE";'),
         {"enum_value_removed_reserved"}, "enum_value_removed_reserved", {"source"}),
    Case("rename_enum_value", COLOR, color(*COLOR_VALUES, "COLOR_NAVY = 2;"), {"enum_value_renamed"},
         "enum_value_renamed", {"json", "source"}),
    Case("change_enum_value_number", COLOR, color(*COLOR_VALUES, "COLOR_BLUE = 3;"),
         {"enum_value_number_changed"}, "enum_value_number_changed", {"wire", "source"}),
    Case("add_enum", M, with_n("int32 n = 2;", after=KIND), {"enum_added"}, "enum_added",
         bump=Bump.MINOR),
    Case("remove_enum", with_n("int32 n = 2;", after=KIND), M, {"enum_removed"}, "enum_removed",
         {"source"}),
    # services and methods
    Case("add_rpc", S, service(GET, PUT), {"method_added"}, "method_added", bump=Bump.MINOR),
    Case("remove_rpc", service(GET, PUT), S, {"method_removed"}, "method_removed", ALL),
    Case("change_streaming", S, service("rpc Get(GetRequest) returns (stream GetResponse);"),
         {"method_streaming_changed"}, "method_streaming_changed", ALL),
    Case("change_input_type", S, service("rpc Get(OtherRequest) returns (GetResponse);"),
         {"method_input_changed"}, "method_input_changed", ALL),
    Case("change_output_type", S, service("rpc Get(GetRequest) returns (OtherRequest);"),
         {"method_output_changed"}, "method_output_changed", ALL),
    Case("add_service", S, service(GET, after=T), {"service_added"}, "service_added", bump=Bump.MINOR),
    Case("remove_service", service(GET, after=T), S, {"service_removed"}, "service_removed", ALL),
    Case("add_idempotency_level", S, service(IDEMPOTENT), {"method_idempotency_changed"},
         "method_idempotency_changed", {"wire", "source"}),
    Case("deprecate_rpc", S, service(DEPRECATED_RPC), {"method_deprecated"}, "method_deprecated",
         bump=Bump.MINOR),
    # files and documentation
    Case("change_package", LINKED, LINKED.replace("package demo.v1;", "package demo.v2;"),
         {"package_changed"}, "package_changed", ALL),
    Case("change_file_option", M, M.replace("demo.v1;", 'demo.v1;\noption java_package = "com.demo.v1";'),
         {"other_language_option_changed"}, "other_language_option_changed", bump=Bump.PATCH),
    Case("change_plain_option", m("repeated int32 r = 1;"), m("repeated int32 r = 1 [packed = false];"),
         {"option_changed"}, "option_changed", bump=Bump.PATCH),
    *ISSUE_9_CASES,
    *ISSUE_23_CASES,
    *LIMIT_CASES,
    *ROUTE_CASES,
    Case("comments_only", M,
         m("// a is the first field.", "string a = 1;", "int32 n = 2; // n counts.", before="// M is M."),
         {"comment_changed"}, "comment_changed", bump=Bump.PATCH),
]  # fmt: skip


def _files(case: Case, text: str) -> dict[str, str]:
    """The scratch module of one side of ``case``: the demo file and the third-party files it imports."""
    files = {DEMO: text}
    for name in case.imports:
        files.update(validate_proto() if name == "validate" else google_api_protos())
    return files


def case_diff(compile_files: Compile, case: Case) -> list[Change]:
    """What diff_schemas reports for ``case``."""
    return diff_schemas(compile_files(_files(case, case.base)), compile_files(_files(case, case.head)))


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_scenario(compile_files: Compile, case: Case) -> None:
    changes = case_diff(compile_files, case)

    assert {change.kind for change in changes} == case.kinds, "\n".join(map(str, changes))
    if case.key is not None:
        key = [change for change in changes if change.kind == case.key]
        assert key, case.key
        for change in key:
            assert set(change.breaks) == case.breaks, str(change)
            assert change.safe == (not case.breaks)
            assert case.says in change.detail
    assert required_bump(changes) == case.bump


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_scenario_through_the_review_report(compile_files: Compile, case: Case) -> None:
    changes = case_diff(compile_files, case)
    review = Review(
        base="base",
        head="head",
        previous_release="1.0.0",
        bump=required_bump(changes),
        release_bump=required_bump(changes),
        sdk_version=dev_version("1.0.0", required_bump(changes)),
        module_dir="proto",
        changes=changes,
    )

    report = review.to_json()

    assert report["bump"] == case.bump.value
    expected = None if case.bump is Bump.NONE else next_version("1.0.0", case.bump)
    assert report["next_release"] == expected
    assert {c["kind"] for c in report["changes"]} == case.kinds
    for entry in report["changes"]:
        if entry["kind"] == case.key:
            flagged = {name for name in ("wire", "json", "source") if entry[f"{name}_breaking"]}
            flagged |= {"clients"} if entry["client_breaking"] else set()
            assert flagged == case.breaks
            assert entry["file"] == f"proto/{DEMO}"


# --- cross-check against buf itself --------------------------------------------------------

# What each buf category failing requires of the review's verdicts on the same schemas.
_REQUIRED = {"WIRE": {"wire"}, "WIRE_JSON": {"wire", "json"}, "FILE": {"source"}}
_BUF_CONFIG = json.dumps({"version": "v2", "breaking": {"use": list(_REQUIRED)}})


@pytest.fixture(scope="session")
def buf_categories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """buf rule -> the categories (of WIRE, WIRE_JSON, FILE) it belongs to, as buf itself lists them."""
    result = run_buf(
        ["config", "ls-breaking-rules", "--version", "v2", "--format", "json"],
        cwd=tmp_path_factory.mktemp("rules"),
    )
    rules = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {rule["id"]: set(rule["categories"]) & set(_REQUIRED) for rule in rules}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_the_review_judges_at_least_as_strictly_as_buf(
    compile_files: Compile, case: Case, tmp_path: Path, buf_categories: dict[str, set[str]]
) -> None:
    """Each buf category that fails is matched by the review's verdict, or by a documented difference."""
    base, head = tmp_path / "base.binpb", tmp_path / "head.binpb"
    base.write_bytes(compile_files(_files(case, case.base)).SerializeToString())
    head.write_bytes(compile_files(_files(case, case.head)).SerializeToString())

    result = run_buf(
        ["breaking", str(head), "--against", str(base), "--config", _BUF_CONFIG, "--error-format", "json"],
        cwd=tmp_path,
        check=False,
    )

    assert result.returncode in (0, 100), result.stderr
    changes = case_diff(compile_files, case)
    verdicts = {name for change in changes for name in change.breaks}
    lenient = {buf for change in changes for buf in RULES[change.kind].lenient}
    findings = [json.loads(line)["type"] for line in result.stdout.splitlines() if line.strip()]
    for rule in findings:
        if rule in lenient:
            continue  # a deliberate difference, documented in docs/review-rules.md
        for category in buf_categories[rule]:
            assert _REQUIRED[category] & verdicts, f"buf {category} fails ({rule}); the review says {changes}"


def test_there_are_enough_scenarios() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


# --- where a change is, and what it says -----------------------------------------------


def test_a_change_names_the_element_its_file_and_head_line(compile_files: Compile) -> None:
    base = proto("message Message {\n  string id = 1;\n  string author = 2;\n  string content = 3;\n}")
    head = base.replace("string content", "bytes content")

    [change] = diff(compile_files, base, head)

    assert change == Change(
        element="demo.v1.Message.content",
        kind="field_type_changed",
        file=DEMO,
        line=8,
        side="head",
        wire_breaking=False,
        json_breaking=True,
        source_breaking=True,
        detail="field `content` (3) changed type from string to bytes",
        old="string",
        new="bytes",
    )
    assert head.splitlines()[change.line - 1].strip() == "bytes content = 3;"


def test_a_removed_element_points_into_the_base_file(compile_files: Compile) -> None:
    base = proto("message M {\n  string a = 1;\n\n\n  int32 gone = 2;\n}")

    [change] = diff(compile_files, base, proto("message M {\n  string a = 1;\n}"))

    assert change.side == "base" and change.element == "demo.v1.M.gone"
    assert base.splitlines()[change.line - 1].strip() == "int32 gone = 2;"
    assert change.detail == "field `gone` (2) removed without reserving its number and name"


def test_enum_values_and_methods_are_named_below_their_parent(compile_files: Compile) -> None:
    enums = diff(compile_files, COLOR, color(*COLOR_VALUES))
    methods = diff(compile_files, S, service(GET, PUT))

    assert [c.element for c in enums] == ["demo.v1.Color.COLOR_BLUE"]
    assert [c.element for c in methods] == ["demo.v1.S.Put"]


def test_added_nested_message_fields_are_named_in_full(compile_files: Compile) -> None:
    head = NESTED.replace("string x = 1;", "string x = 1;\n    string y = 2;")

    [change] = diff(compile_files, NESTED, head)

    assert change.element == "demo.v1.Outer.Inner.y"
    assert head.splitlines()[change.line - 1].strip() == "string y = 2;"


def test_a_removed_file_reports_its_types(compile_files: Compile) -> None:
    main = proto("message M {\n  string a = 1;\n}")
    extra = proto("message Old {}\nenum Mood {\n  MOOD_UNSPECIFIED = 0;\n}")
    newer = proto("message New {}")
    base = compile_files({DEMO: main, "demo/v1/extra.proto": extra})
    head = compile_files({DEMO: main, "demo/v1/newer.proto": newer})

    changes = diff_schemas(base, head)

    assert {(c.kind, c.element, c.side) for c in changes} == {
        ("file_removed", "demo/v1/extra.proto", "base"),
        ("message_removed", "demo.v1.Old", "base"),
        ("enum_removed", "demo.v1.Mood", "base"),
        ("file_added", "demo/v1/newer.proto", "head"),
        ("message_added", "demo.v1.New", "head"),
    }
    assert required_bump(changes) == Bump.MAJOR


def test_a_type_moved_to_another_file_breaks_generated_imports(compile_files: Compile) -> None:
    base = compile_files({DEMO: proto("message M {}\nmessage N {}")})
    head = compile_files({DEMO: proto("message M {}"), "demo/v1/n.proto": proto("message N {}")})

    changes = diff_schemas(base, head)

    assert {(c.kind, c.element) for c in changes} == {
        ("file_added", "demo/v1/n.proto"),
        ("message_moved", "demo.v1.N"),
    }
    [moved] = [c for c in changes if c.kind == "message_moved"]
    assert moved.breaks == ("source",)


def test_changes_are_sorted_by_file_and_line(compile_files: Compile) -> None:
    base = m("string a = 1;", "int32 n = 2;", "bool b = 3;")
    head = m("bytes a = 1;", "int64 n = 2;", "string b = 3;")

    changes = diff(compile_files, base, head)

    assert [c.element for c in changes] == ["demo.v1.M.a", "demo.v1.M.n", "demo.v1.M.b"]
    assert changes == sorted(changes, key=lambda c: (c.file, c.line))


def test_the_registry_image_has_no_changes_against_itself(repo: RepoLayout) -> None:
    if not repo.image.is_file():
        pytest.skip("the schema image has not been generated")
    image = load_image(repo.image)

    assert diff_schemas(image, load_image(repo.image)) == []
    assert any(file.package.startswith("google.") for file in image.file)


def test_load_image_reads_a_buf_build_output(compile_files: Compile, tmp_path: Path) -> None:
    image = compile_files({DEMO: M})
    path = tmp_path / "image.binpb"
    path.write_bytes(image.SerializeToString())

    assert load_image(path) == image


def test_change_text_says_what_breaks() -> None:
    change = Change("demo.v1.M.a", "field_renamed", DEMO, 6, "head", False, True, True, "field 1 renamed")

    assert not change.safe
    assert str(change) == f"{DEMO}:6: field_renamed: field 1 renamed [breaks json, source]"


# --- semver ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "bump", "expected"),
    [
        ("1.2.3", Bump.MAJOR, "2.0.0"),
        ("1.2.3", Bump.MINOR, "1.3.0"),
        ("1.2.3", Bump.PATCH, "1.2.4"),
        ("1.2.3", Bump.NONE, "1.2.3"),
        ("0.9.9", Bump.MAJOR, "1.0.0"),
        ("10.0.19", Bump.PATCH, "10.0.20"),
    ],
)
def test_next_version(current: str, bump: Bump, expected: str) -> None:
    assert next_version(current, bump) == expected


@pytest.mark.parametrize(
    "version", ["", "1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.2.3-rc.1", "1.2.x", " 1.2.3"]
)
def test_malformed_versions_are_refused(version: str) -> None:
    with pytest.raises(ValueError, match=r"not a X\.Y\.Z version"):
        next_version(version, Bump.PATCH)
    with pytest.raises(ValueError, match=r"not a X\.Y\.Z version"):
        dev_version(version, Bump.NONE)


def _pep440_key(version: str) -> tuple[tuple[int, ...], int, int]:
    """Sort key of the ``X.Y.Z`` and ``X.Y.Z.devN`` versions used here, as PEP 440 orders them."""
    release, _, dev = version.partition(".dev")
    numbers = tuple(int(part) for part in release.split("."))
    # A .devN release sorts before the release itself.
    return (numbers, 0, int(dev)) if dev else (numbers, 1, 0)


@pytest.mark.parametrize("bump", [Bump.PATCH, Bump.MINOR, Bump.MAJOR])
def test_dev_versions_sort_after_the_last_release_and_before_the_next(bump: Bump) -> None:
    dev = dev_version("1.4.2", bump)

    assert dev == f"{next_version('1.4.2', bump)}.dev0"
    assert _pep440_key("1.4.2") < _pep440_key(dev) < _pep440_key(next_version("1.4.2", bump))


def test_dev_version_without_changes_or_releases() -> None:
    assert dev_version("1.4.2", Bump.NONE) == "1.4.2"
    assert dev_version(None, Bump.MINOR) == "1.0.0.dev0"
    assert dev_version(None, Bump.NONE) == "1.0.0.dev0"


def test_bumps_are_ordered() -> None:
    assert [b.rank for b in (Bump.NONE, Bump.PATCH, Bump.MINOR, Bump.MAJOR)] == [0, 1, 2, 3]
    assert Bump.highest([Bump.PATCH, Bump.MAJOR, Bump.MINOR]) == Bump.MAJOR
    assert Bump.highest([]) == Bump.NONE
    assert required_bump([]) == Bump.NONE
    assert parse_version("3.2.1") == (3, 2, 1)


def test_limits_without_the_imported_validate_proto_are_still_seen_as_changed_options(
    compile_files: Compile,
) -> None:
    case = next(case for case in LIMIT_CASES if case.id == "max_len_lowered")
    base, head = (compile_files(_files(case, text)) for text in (case.base, case.head))
    for image in (base, head):  # as `buf build --exclude-imports` writes them
        kept = [file for file in image.file if file.name == DEMO]
        del image.file[:]
        image.file.extend(kept)

    [change] = diff_schemas(base, head)

    assert (change.kind, change.element) == ("option_changed", "demo.v1.M.a")
    assert change.detail == "options of field `a` (1) changed: custom options"


def test_a_message_moved_behind_import_public_names_what_each_sdk_does(compile_files: Compile) -> None:
    base = compile_files({DEMO: proto("message M {}\nmessage N {}")})
    head = compile_files(
        {
            DEMO: proto('import public "demo/v1/n.proto";\n\nmessage M {}'),
            "demo/v1/n.proto": proto("message N {}"),
        }
    )

    [moved] = [c for c in diff_schemas(base, head) if c.kind == "message_moved"]

    # protoc-gen-es does not re-export public imports: TypeScript imports of demo_pb break.
    assert moved.breaks == ("source",)
    assert "the _pb2 module re-exports public imports" in moved.detail
    assert "TypeScript imports break" in moved.detail
