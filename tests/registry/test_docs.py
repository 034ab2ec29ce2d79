"""The API reference site: complete for every version, no broken link, and it opens in headless Chromium.

``nox -s docs`` renders dist/docs and runs this file against it (CHAT_DOCS_SITE); elsewhere
the site is rendered into a temporary directory first. Chromium comes from Debian's
``chromium`` package, installed by the nox sessions when missing (CHAT_CHROMIUM or PATH).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from compat_tests.node import TS_DIR
from registry.docs import HEAD, build_site
from registry.docs_model import StreamingKind, load_schema
from registry.layout import RepoLayout
from registry.releases import list_releases


class _Page(HTMLParser):
    """The links, ids and code blocks of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.code: list[tuple[str, str]] = []  # (language, text)
        self._language: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "src"):
            if values.get(name):
                self.links.append(str(values[name]))
        if values.get("id"):
            self.ids.add(str(values["id"]))
        language = values.get("class") or ""
        if tag == "code" and language.startswith("language-"):
            self._language = language.removeprefix("language-")
            self.code.append((self._language, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._language = None

    def handle_data(self, data: str) -> None:
        if self._language is not None:
            language, text = self.code[-1]
            self.code[-1] = (language, text + data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


@pytest.fixture(scope="module")
def site(repo: RepoLayout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered site: the one `nox -s docs` wrote, or a fresh one."""
    given = os.environ.get("CHAT_DOCS_SITE")
    if given:
        return Path(given)
    output = tmp_path_factory.mktemp("docs") / "site"
    build_site(repo, output)
    return output


def test_every_link_and_anchor_resolves_and_every_page_is_reachable(site: Path) -> None:
    seen: set[Path] = set()
    pending = [site / "index.html"]
    broken: list[str] = []
    while pending:
        page_path = pending.pop()
        if page_path in seen:
            continue
        seen.add(page_path)
        for link in _parse(page_path).links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, (
                f"{page_path}: the site links outside itself: {link}"
            )
            target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
            if not target.is_file():
                broken.append(f"{page_path.relative_to(site)} -> {link}")
                continue
            if parts.fragment and unquote(parts.fragment) not in _parse(target).ids:
                broken.append(f"{page_path.relative_to(site)} -> {link} (no such anchor)")
            if target.suffix == ".html":
                pending.append(target)
    assert broken == []
    assert seen == set(site.rglob("*.html")), "every page is linked from the front page"


def test_each_release_and_the_working_tree_has_a_reference_and_a_changes_page(
    repo: RepoLayout, site: Path
) -> None:
    slugs = [HEAD, *(release.version for release in list_releases(repo))]
    for slug in slugs:
        assert (site / slug / "index.html").is_file()
        assert (site / slug / "changes.html").is_file()
    first, *later = list_releases(repo)
    assert "The first release" in (site / first.version / "changes.html").read_text()
    for previous, release in zip([first, *later], later, strict=False):
        changes = (site / release.version / "changes.html").read_text()
        assert f"changes since {previous.version}" in changes
        assert f"release {previous.version}" in changes  # the review engine's own base label


def test_release_1_1_0_changes_list_what_it_added(site: Path) -> None:
    changes = (site / "1.1.0" / "changes.html").read_text()
    assert "chat.v1.MessageService.EditMessage" in changes
    assert "method_added" in changes


def test_every_element_of_every_release_is_documented_with_its_comment(repo: RepoLayout, site: Path) -> None:
    for release in list_releases(repo):
        schema = load_schema(release.load())
        page = (site / release.version / "index.html").read_text()
        ids = _parse(site / release.version / "index.html").ids
        for service in schema.services:
            assert service.full_name in ids
            for method in service.methods:
                assert f"{service.full_name}.{method.name}" in ids
                assert method.comment and _escaped(method.comment.splitlines()[0]) in page
        for message in schema.messages:
            assert message.full_name in ids
            for field in message.fields:
                assert f"<code>{field.name}</code>" in page
                assert field.behaviour, f"{message.full_name}.{field.name} has no behaviour label"
        for enum in schema.enums:
            assert enum.full_name in ids
            assert all(f"<code>{value.name}</code>" in page for value in enum.values)
        kinds = {method.kind for service in schema.services for method in service.methods}
        assert kinds == set(StreamingKind), "the schema uses every streaming kind"
        assert all(f">{kind.value}<" in page for kind in kinds)


def _escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_python_examples_are_valid_python_and_typescript_examples_use_the_package(site: Path) -> None:
    page = _parse(site / HEAD / "index.html")
    python = [text for language, text in page.code if language == "python"]
    typescript = [text for language, text in page.code if language == "typescript"]
    assert python and len(python) == len(typescript)
    for example in python:
        compile(example, "<example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        assert "from chat_sdk import connect" in example
    assert all('from "@chat-platform/sdk"' in example for example in typescript)


def test_typescript_examples_and_the_typescript_readme_type_check(site: Path) -> None:
    examples = [
        text for language, text in _parse(site / HEAD / "index.html").code if language == "typescript"
    ]
    readme = (TS_DIR / "README.md").read_text()
    examples += re.findall(r"^```ts\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL)
    # Inside the package's build output, so `@chat-platform/sdk` resolves to the package itself.
    check = TS_DIR / "dist" / "examples-check"
    shutil.rmtree(check, ignore_errors=True)
    check.mkdir(parents=True)
    for index, example in enumerate(examples):
        (check / f"example_{index}.ts").write_text(example)
    config = {
        "extends": "../../tsconfig.json",
        "compilerOptions": {"noEmit": True, "rootDir": ".", "incremental": False},
        "include": ["*.ts"],
        "exclude": [],
    }
    (check / "tsconfig.json").write_text(json.dumps(config))
    tsc = TS_DIR / "node_modules" / ".bin" / "tsc"
    assert tsc.is_file(), "the TypeScript package's tools are installed by the nox sessions (npm ci)"
    result = subprocess.run(
        [str(tsc), "-p", str(check / "tsconfig.json")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def _chromium() -> str:
    found = os.environ.get("CHAT_CHROMIUM") or shutil.which("chromium")
    assert found, "chromium is missing: `nox -s docs` and `nox -s tests` install it with apt-get"
    return found


def _headless(*args: str) -> subprocess.CompletedProcess[str]:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_chromium_renders_the_front_page_with_every_version(repo: RepoLayout, site: Path) -> None:
    result = _headless("--dump-dom", (site / "index.html").as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    page = _Page()
    page.feed(result.stdout)
    targets = {link for link in page.links if link.endswith("/index.html")}
    expected = {f"{slug}/index.html" for slug in [HEAD, *(r.version for r in list_releases(repo))]}
    assert targets == expected


def test_chromium_takes_a_screenshot_of_the_reference(site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "reference.png"
    result = _headless(
        "--window-size=1280,1600", f"--screenshot={shot}", (site / HEAD / "index.html").as_uri()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("CHAT_DOCS_SITE"):
        shutil.copy(shot, site / "screenshot.png")  # beside the site, for a human to look at
