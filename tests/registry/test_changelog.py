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
