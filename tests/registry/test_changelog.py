"""The changelog a release cut writes: the new entry first, hand-written Unreleased notes folded in."""

from __future__ import annotations

from pathlib import Path

from registry.layout import RepoLayout
from registry.release import CHANGELOG_HEADER, _prepend_changelog

OLD = """# Changelog

Every release of the chat schema and its `chat-sdk` wheel, newest first.

## Unreleased

### Changed

- The distribution is renamed.

## 1.0.0 (2026-01-01)

The first release.
"""


def test_unreleased_notes_join_the_new_entry_and_older_entries_stay(tmp_path: Path) -> None:
    layout = RepoLayout(tmp_path)
    layout.changelog.write_text(OLD)
    _prepend_changelog(layout, "## 1.1.0 (2026-02-01)\n\nA minor release.\n")
    assert layout.changelog.read_text() == (
        f"{CHANGELOG_HEADER}\n## 1.1.0 (2026-02-01)\n\nA minor release.\n\n"
        "### Changed\n\n- The distribution is renamed.\n"
        "\n## 1.0.0 (2026-01-01)\n\nThe first release.\n"
    )


def test_the_first_release_starts_the_file(tmp_path: Path) -> None:
    layout = RepoLayout(tmp_path)
    _prepend_changelog(layout, "## 1.0.0 (2026-01-01)\n\nThe first release.\n")
    expected = f"{CHANGELOG_HEADER}\n## 1.0.0 (2026-01-01)\n\nThe first release.\n"
    assert layout.changelog.read_text() == expected


ENTRY = "## 1.0.0 (2026-01-01)\n\nThe first release.\n"


def prepended(tmp_path: Path, old: str, entry: str = ENTRY) -> str:
    """The changelog after a cut writes ``entry`` into a file that read ``old``."""
    layout = RepoLayout(tmp_path)
    layout.changelog.write_text(old)
    _prepend_changelog(layout, entry)
    return layout.changelog.read_text()


def test_notes_written_before_the_first_release_join_its_entry(tmp_path: Path) -> None:
    old = "# Changelog\n\n## Unreleased\n\nX-Request-Id is echoed by every service.\n"
    assert prepended(tmp_path, old) == (
        f"{CHANGELOG_HEADER}\n{ENTRY.rstrip()}\n\nX-Request-Id is echoed by every service.\n"
    )


def test_a_changelog_with_only_its_title_gets_the_standard_title_and_the_entry(tmp_path: Path) -> None:
    assert prepended(tmp_path, "# Changes\n\nNothing released yet.\n") == f"{CHANGELOG_HEADER}\n{ENTRY}"


def test_a_changelog_that_starts_with_its_unreleased_section_keeps_the_notes(tmp_path: Path) -> None:
    # Written by hand: no title, and no newline at the end of the file.
    assert prepended(tmp_path, "## Unreleased\n\n- Renamed.") == f"{CHANGELOG_HEADER}\n{ENTRY}\n- Renamed.\n"


def test_a_changelog_that_starts_with_a_release_keeps_it(tmp_path: Path) -> None:
    second = "## 1.1.0 (2026-02-01)\n\nA minor release.\n"
    assert prepended(tmp_path, ENTRY, second) == f"{CHANGELOG_HEADER}\n{second}\n{ENTRY}"


def test_notes_keep_their_text_and_lose_only_the_blank_lines_around_them(tmp_path: Path) -> None:
    # An indented first line is a Markdown code block; the blank lines before the next
    # release are the writer's, and every older release stays as it was.
    old = (
        "# Changelog\n\n## Unreleased\n\n\n    pip install chatplatform-schema-sdk\n\nRenamed.\n\n\n\n"
        "## 1.1.0 (2026-02-01)\n\nsecond\n\n## 1.0.0 (2026-01-01)\n\nfirst\n"
    )
    assert prepended(tmp_path, old, "## 2.0.0 (2026-03-01)\n\nA major release.\n") == (
        f"{CHANGELOG_HEADER}\n## 2.0.0 (2026-03-01)\n\nA major release.\n\n"
        "    pip install chatplatform-schema-sdk\n\nRenamed.\n"
        "\n## 1.1.0 (2026-02-01)\n\nsecond\n\n## 1.0.0 (2026-01-01)\n\nfirst\n"
    )


def test_notes_need_no_blank_line_before_the_next_release(tmp_path: Path) -> None:
    old = "# Changelog\n\n## Unreleased\n- Renamed.\n## 1.0.0 (2026-01-01)\n\nfirst\n"
    second = "## 1.1.0 (2026-02-01)\n\nA minor release.\n"
    assert prepended(tmp_path, old, second) == (
        f"{CHANGELOG_HEADER}\n{second}\n- Renamed.\n\n## 1.0.0 (2026-01-01)\n\nfirst\n"
    )


def test_an_empty_unreleased_section_is_dropped(tmp_path: Path) -> None:
    old = f"{CHANGELOG_HEADER}\n## Unreleased\n\n\n{ENTRY}"
    second = "## 1.1.0 (2026-02-01)\n\nA minor release.\n"
    assert prepended(tmp_path, old, second) == f"{CHANGELOG_HEADER}\n{second}\n{ENTRY}"


def test_an_empty_unreleased_heading_right_above_a_release_leaves_the_releases_as_written(
    tmp_path: Path,
) -> None:
    older = f"{ENTRY}\n\n## 0.9.0 (2025-12-01)\n\nA preview.\n"
    second = "## 1.1.0 (2026-02-01)\n\nA minor release.\n"
    assert prepended(tmp_path, f"# Changelog\n\n## Unreleased\n{older}", second) == (
        f"{CHANGELOG_HEADER}\n{second}\n{older}"
    )
