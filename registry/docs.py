"""The API reference: a static HTML site rendered from the schema images, one version per release.

``python -m registry.docs [--output dist/docs]`` (run by ``nox -s docs``) writes:

* ``index.html``: every version, the working tree first;
* ``<version>/index.html``: every service, method (streaming kind, examples in Python
  and TypeScript), message, field (type, number, behaviour label) and enum of that
  version, each with its comment from the schema;
* ``<version>/changes.html``: the changes since the previous release, as the review
  engine reports them (``python -m registry review --base <previous> --format json``).

A release's changes are reviewed in the tree of the commit that recorded it
(``git archive``), so each page compares exactly the two released schemas.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from registry.docs_examples import python_example, typescript_example
from registry.docs_model import Enum, Field, Message, Schema, Service, load_schema
from registry.images import build_image
from registry.layout import RepoLayout, find_root
from registry.releases import list_releases

HEAD = "head"  # the working tree's directory in the site
# What the review engine needs to compile a tree: the module, its releases and waivers.
_REVIEW_INPUTS = ("buf.yaml", "buf.gen.yaml", "proto", "releases", "waivers.toml")
_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2433; }
header { background: #1d2433; color: #fff; padding: 12px 24px; }
header a { color: #9cc4ff; margin-right: 16px; }
main { max-width: 1000px; margin: 0 auto; padding: 8px 24px 48px; }
nav.toc { columns: 3; font-size: 14px; }
section { border-top: 1px solid #dde3ee; margin-top: 24px; }
h3 code { font-size: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef1f6; vertical-align: top; }
pre { background: #f5f7fb; padding: 8px 12px; overflow-x: auto; font-size: 13px; }
.label { font-size: 12px; padding: 1px 6px; border-radius: 8px; background: #e8eefc; white-space: nowrap; }
.breaking { background: #fde2e1; } .safe { background: #e1f5e6; }
.comment { white-space: pre-wrap; }
"""


@dataclass(frozen=True)
class Version:
    """One version of the schema in the site."""

    slug: str  # directory name: the release version, or HEAD
    title: str
    image: descriptor_pb2.FileDescriptorSet
    previous: str | None  # the release before it, for the changes page
    commit: str | None  # the commit that recorded a release; None for the working tree


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _page(title: str, body: str, *, depth: int) -> str:
    up = "../" * depth
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><link rel='stylesheet' href='{up}style.css'></head>\n"
        f"<body><header><a href='{up}index.html'>chat.v1 API reference</a>{_e(title)}</header>\n"
        f"<main>\n{body}\n</main></body></html>\n"
    )


def _type_link(name: str, known: frozenset[str]) -> str:
    return (
        f"<a href='#{_e(name)}'><code>{_e(name)}</code></a>" if name in known else f"<code>{_e(name)}</code>"
    )


def _field_type(field: Field, known: frozenset[str]) -> str:
    if field.link is None or field.link not in known:
        return f"<code>{_e(field.type_name)}</code>"
    return f"<code>{_e(field.type_name.replace(field.link, ''))}</code>" + _type_link(field.link, known)


def _comment(text: str) -> str:
    return f"<p class='comment'>{_e(text)}</p>" if text else ""


def _service_html(service: Service, messages: dict[str, Message], known: frozenset[str]) -> str:
    parts = [f"<section id='{_e(service.full_name)}'><h3>service <code>{_e(service.full_name)}</code></h3>"]
    parts.append(_comment(service.comment))
    for method in service.methods:
        anchor = f"{service.full_name}.{method.name}"
        request = messages.get(method.input)
        read_only = " <span class='label'>read-only, safe to retry</span>" if method.read_only else ""
        parts.append(
            f"<h4 id='{_e(anchor)}'><code>{_e(method.name)}</code> "
            f"<span class='label'>{_e(method.kind.value)}</span>{read_only}</h4>"
            f"<p>{_type_link(method.input, known)} → {_type_link(method.output, known)}</p>"
            + _comment(method.comment)
            + "<p>Python:</p><pre><code class='language-python'>"
            + _e(python_example(service, method, request))
            + "</code></pre><p>TypeScript:</p><pre><code class='language-typescript'>"
            + _e(typescript_example(service, method, request))
            + "</code></pre>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _message_html(message: Message, known: frozenset[str]) -> str:
    rows = "".join(
        "<tr>"
        f"<td><code>{_e(f.name)}</code><br><small>JSON <code>{_e(f.json_name)}</code></small></td>"
        f"<td>{f.number}</td><td>{_field_type(f, known)}"
        + (f"<br><small>oneof <code>{_e(f.oneof)}</code></small>" if f.oneof else "")
        + "</td>"
        f"<td>{'<span class=label>' + _e(f.behaviour) + '</span>' if f.behaviour else ''}"
        f"{' <span class=label>deprecated</span>' if f.deprecated else ''}</td>"
        f"<td class='comment'>{_e(f.comment)}</td></tr>"
        for f in message.fields
    )
    table = (
        "<table><tr><th>field</th><th>number</th><th>type</th><th>behaviour</th><th>description</th></tr>"
        f"{rows}</table>"
        if message.fields
        else "<p>No fields.</p>"
    )
    deprecated = " <span class='label'>deprecated</span>" if message.deprecated else ""
    return (
        f"<section id='{_e(message.full_name)}'>"
        f"<h3>message <code>{_e(message.full_name)}</code>{deprecated}</h3>"
        f"{_comment(message.comment)}{table}</section>"
    )


def _enum_html(enum: Enum) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(v.name)}</code></td><td>{v.number}</td>"
        f"<td class='comment'>{_e(v.comment)}</td></tr>"
        for v in enum.values
    )
    return (
        f"<section id='{_e(enum.full_name)}'><h3>enum <code>{_e(enum.full_name)}</code></h3>"
        f"{_comment(enum.comment)}<table><tr><th>value</th><th>number</th><th>description</th></tr>{rows}</table>"
        "<p><small>The Python dataclass target and TypeScript drop the enum's prefix "
        "(<code>FINISH_REASON_STOP</code> is <code>FinishReason.STOP</code>); the standard target keeps it."
        "</small></p></section>"
    )


def render_version(version: Version, schema: Schema) -> str:
    """The reference page of one schema version."""
    known = schema.type_names()
    messages = {m.full_name: m for m in schema.messages}
    toc = "".join(
        f"<li><a href='#{_e(name)}'>{_e(name)}</a></li>"
        for name in [s.full_name for s in schema.services] + sorted(known)
    )
    changes = (
        f"<p><a href='changes.html'>Changes since {_e(version.previous)}</a></p>"
        if version.previous
        else "<p><a href='changes.html'>Changes</a>: the first release.</p>"
    )
    body = [
        f"<h1>{_e(version.title)}</h1>",
        changes,
        _comment(schema.package_comment),
        f"<nav class='toc'><ul>{toc}</ul></nav>",
        "<h2>Services</h2>",
        *(_service_html(service, messages, known) for service in schema.services),
        "<h2>Messages</h2>",
        *(_message_html(message, known) for message in schema.messages),
        "<h2>Enums</h2>",
        *(_enum_html(enum) for enum in schema.enums),
    ]
    return _page(version.title, "\n".join(body), depth=1)


def render_changes(version: Version, review: dict[str, Any] | None) -> str:
    """The changes page: the review engine's report of ``version`` against the release before it."""
    if review is None:
        body = f"<h1>{_e(version.title)}: changes</h1><p>The first release: nothing to compare with.</p>"
        return _page(f"{version.title}: changes", body, depth=1)
    rows = "".join(
        f"<tr class='{'safe' if c['effect'] == 'safe' else 'breaking'}'><td>{_e(c['kind'])}</td>"
        f"<td><code>{_e(c['element'])}</code></td><td>{_e(c['effect'])}</td><td>{_e(c['detail'])}</td></tr>"
        for c in review["changes"]
    )
    sdk = "".join(f"<li>{_e(line)}</li>" for line in review.get("sdk_api", []))
    body = (
        f"<h1>{_e(version.title)}: changes since {_e(str(version.previous))}</h1>"
        f"<p><a href='index.html'>Back to the {_e(version.title)} reference</a></p>"
        f"<p>Required bump: <strong>{_e(str(review['bump']))}</strong>. "
        f"Compared: {_e(str(review['base']))} → {_e(str(review['head']))}.</p>"
        "<table><tr><th>kind</th><th>element</th><th>effect</th><th>detail</th></tr>"
        f"{rows}</table>" + (f"<h2>Python SDK API</h2><ul>{sdk}</ul>" if sdk else "")
    )
    return _page(f"{version.title}: changes", body, depth=1)


AUTHORIZATION_TABLE = Path("docs") / "authorization.json"  # python -m chat_services.security.scopes --json


def render_authorization(rows: Sequence[dict[str, str]]) -> str:
    """Who may call what: the services' authorization table (method, scopes, data rule, admin scope)."""
    cells = "".join(
        f"<tr><td><code>{_e(row['method'])}</code></td><td>{_e(row['scopes'])}</td>"
        f"<td>{_e(row['data_rule'])}</td><td>{_e(row['admin_scope']) or '—'}</td></tr>"
        for row in rows
    )
    body = (
        "<h1>Who may call what</h1><p>With authentication on, chat-services checks every method's scopes, "
        "then its data rule on what the call touches. An admin scope lifts the data rule, for service "
        "accounts only.</p><table><tr><th>method</th><th>scopes (all required)</th><th>data rule</th>"
        f"<th>admin scope</th></tr>{cells}</table>"
    )
    return _page("authorization", body, depth=0)


def render_index(versions: Sequence[Version]) -> str:
    """The site's front page: every version."""
    items = "".join(
        f"<li><a href='{_e(v.slug)}/index.html'>{_e(v.title)}</a>"
        + (f" (<a href='{_e(v.slug)}/changes.html'>changes since {_e(v.previous)}</a>)" if v.previous else "")
        + "</li>"
        for v in versions
    )
    body = (
        "<h1>chat.v1 API reference</h1><p>Generated from the schema images by <code>nox -s docs</code>: "
        "the working tree and every release.</p>"
        f"<ul>{items}</ul>"
        "<p><a href='authorization.html'>Who may call what</a>: the services' authorization table.</p>"
    )
    return _page("versions", body, depth=0)


def review_json(cwd: Path, base: str) -> dict[str, Any]:
    """The review engine's JSON report of the schema in ``cwd`` against ``base`` (its CLI, run in ``cwd``)."""
    result = subprocess.run(
        [sys.executable, "-m", "registry", "review", "--base", base, "--format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"review against {base} failed: {result.stderr.strip()[-2000:]}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _release_commit(layout: RepoLayout, version: str) -> str | None:
    """The commit that recorded ``version`` (added its release.json), or None outside git."""
    result = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", f"releases/{version}/release.json"],
        cwd=layout.root,
        capture_output=True,
        text=True,
        check=False,
    )
    commits = result.stdout.split()
    return commits[-1] if result.returncode == 0 and commits else None


def _review_release(layout: RepoLayout, version: Version) -> dict[str, Any]:
    """Review a release against the one before it, in the tree of the commit that recorded it."""
    assert version.previous is not None and version.commit is not None
    with tempfile.TemporaryDirectory(prefix="chat-docs-") as scratch:
        archive = Path(scratch) / "tree.tar"
        with archive.open("wb") as out:
            subprocess.run(["git", "archive", version.commit], cwd=layout.root, stdout=out, check=True)
        tree = Path(scratch) / "tree"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.split("/")[0] in _REVIEW_INPUTS]
            tar.extractall(tree, members=members, filter="data")
        return review_json(tree, version.previous)


def _review(layout: RepoLayout, version: Version) -> dict[str, Any] | None:
    """The review of ``version`` against the release before it; None for the first release."""
    if version.previous is None:
        return None
    if version.slug == HEAD:
        return review_json(layout.root, version.previous)
    if version.commit is None:
        raise RuntimeError(f"release {version.slug}: no commit records it (a shallow clone?), so no review")
    return _review_release(layout, version)


def versions_of(layout: RepoLayout) -> list[Version]:
    """The working tree, then every release, newest first."""
    releases = list_releases(layout)
    found: list[Version] = []
    latest = releases[-1].version if releases else None
    head = build_image(layout)
    found.append(Version(HEAD, "working tree", head, latest, None))
    for index in range(len(releases) - 1, -1, -1):
        release = releases[index]
        previous = releases[index - 1].version if index else None
        commit = _release_commit(layout, release.version)
        found.append(Version(release.version, f"release {release.version}", release.load(), previous, commit))
    return found


def build_site(layout: RepoLayout, output: Path) -> list[Version]:
    """Render the whole site into ``output`` (replacing what was there); return the versions."""
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    (output / "style.css").write_text(_STYLE)
    versions = versions_of(layout)
    for version in versions:
        directory = output / version.slug
        directory.mkdir()
        (directory / "index.html").write_text(render_version(version, load_schema(version.image)))
        (directory / "changes.html").write_text(render_changes(version, _review(layout, version)))
    rows = json.loads((layout.root / AUTHORIZATION_TABLE).read_text())
    (output / "authorization.html").write_text(render_authorization(rows))
    (output / "index.html").write_text(render_index(versions))
    return versions


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m registry.docs [--output DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m registry.docs", description="Render the API reference.")
    parser.add_argument("--output", default="dist/docs", help="the site's directory (default: dist/docs)")
    args = parser.parse_args(argv)
    layout = RepoLayout(find_root())
    output = Path(args.output).resolve()
    versions = build_site(layout, output)
    print(f"wrote {output / 'index.html'}: {', '.join(v.title for v in versions)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
