"""The review report built from the engine's changes: SDK modules, effect counts, the next release."""

from __future__ import annotations

from registry.diff import Change, diff_schemas
from registry.review import Review, effects
from registry.semver import Bump, dev_version, required_bump

from .schemas import DEMO, Compile, proto

LINKED = proto(
    """
    message A {
      string a = 1;
    }
    service S {
      rpc Get(A) returns (A);
    }
    """
)


def _review(changes: list[Change], packages: dict[str, str], previous: str = "1.0.0") -> Review:
    bump = required_bump(changes)
    return Review(
        base="base",
        head="head",
        previous_release=previous,
        bump=bump,
        release_bump=bump,
        sdk_version=dev_version(previous, bump),
        module_dir="proto",
        changes=changes,
        packages=packages,
    )


def test_a_package_change_moves_every_class_to_the_new_packages_module(compile_files: Compile) -> None:
    head = LINKED.replace("package demo.v1;", "package demo.v2;")
    changes = diff_schemas(compile_files({DEMO: LINKED}), compile_files({DEMO: head}))

    review = _review(changes, {DEMO: "demo.v2"})

    assert [c.kind for c in changes] == ["package_changed"]
    modules = "from module `chat_sdk._generated.demo.v1` to `chat_sdk._generated.demo.v2`"
    assert review.api_changes() == [f"moved every class of `{DEMO}` {modules}"]


def test_the_chat_packages_are_named_by_the_sdks_re_export_modules(compile_files: Compile) -> None:
    base = LINKED.replace("package demo.v1;", "package chat.v1;")
    head = base.replace("package chat.v1;", "package chat.v2;")
    changes = diff_schemas(compile_files({DEMO: base}), compile_files({DEMO: head}))

    [line] = _review(changes, {DEMO: "chat.v2"}).api_changes()

    assert "from module `chat_sdk.v1` to `chat_sdk.v2`" in line


def test_sdk_api_lines_name_the_module_of_the_changed_package(compile_files: Compile) -> None:
    head = LINKED.replace("string a = 1;", "string a = 1;\n  string b = 2;")
    changes = diff_schemas(compile_files({DEMO: LINKED}), compile_files({DEMO: head}))

    [line] = _review(changes, {DEMO: "demo.v1"}).api_changes()

    assert line.startswith("added attribute `chat_sdk._generated.demo.v1.A.b`")
    assert "chat_sdk.v1" not in line


def test_the_summary_counts_every_effect_of_each_change(compile_files: Compile) -> None:
    head = LINKED.replace("string a = 1;", "string renamed = 1;")
    changes = diff_schemas(compile_files({DEMO: LINKED}), compile_files({DEMO: head}))

    summary = _review(changes, {DEMO: "demo.v1"}).summary()

    [rename] = changes
    assert effects(rename) == ["JSON-breaking", "source-breaking"]
    assert "changes: 1 JSON-breaking, 1 source-breaking" in summary


def test_nothing_changed_since_the_last_release_needs_no_release() -> None:
    review = _review([], {}, previous="1.1.0")

    assert review.release_bump is Bump.NONE
    assert review.next_release is None
    assert "no release needed: nothing changed since 1.1.0" in review.summary()
    assert "next release 1.1.0" not in review.summary()
    assert "No release needed: nothing changed since 1.1.0" in review.to_markdown()
    assert review.to_json()["next_release"] is None


def test_the_markdown_lists_every_effect_and_explains_a_stricter_buf_rule() -> None:
    change = Change(
        "demo.v1.M.n", "field_number_changed", DEMO, 7, "head", True, False, True, "field `n` changed number"
    )

    report = _review([change], {DEMO: "demo.v1"}).to_markdown()

    assert "| field `n` changed number | wire-breaking, source-breaking | 7 |" in report
