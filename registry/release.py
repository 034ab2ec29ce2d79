"""Cutting a release: refuse what would ship a broken or mislabelled schema, then record it."""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from registry.breaking import BreakingCheck, check_releases
from registry.buf import run_buf
from registry.codegen import DriftKind, find_drift, generate
from registry.diff import Change, diff_schemas
from registry.diff.schema import is_ours
from registry.fixtures import write_fixtures
from registry.layout import RepoLayout
from registry.lint import lint_findings
from registry.releases import IMAGE_NAME, RECORD_NAME, Release, image_digest, latest_release
from registry.semver import Bump, next_version, parse_version, required_bump


class ReleaseRefused(Exception):
    """The release cannot be cut; the message says why and what to do."""


@dataclass(frozen=True)
class ReleasePlan:
    """What a release of the working schema would record."""

    version: str
    previous: str | None
    bump: Bump
    changes: list[Change]
    checks: list[BreakingCheck]
    services: list[str]  # "chat.v1.MessageService: GetMessage, ...", for the changelog


def _check_version(version: str, previous: Release | None, bump: Bump) -> None:
    try:
        wanted = parse_version(version)
    except ValueError as error:
        raise ReleaseRefused(str(error)) from error
    if previous is None:
        if wanted[1:] != (0, 0) or wanted[0] < 1:
            raise ReleaseRefused(f"the first release must be a major version such as 1.0.0, not {version}")
        return
    if bump is Bump.NONE:
        raise ReleaseRefused(f"the schema has not changed since {previous.version}: nothing to release")
    expected = next_version(previous.version, bump)
    if version != expected:
        raise ReleaseRefused(
            f"the changes since {previous.version} require a {bump.value} bump: "
            f"release {expected}, not {version}"
        )


def plan_release(layout: RepoLayout, version: str, head: descriptor_pb2.FileDescriptorSet) -> ReleasePlan:
    """Check everything a release needs; raise :class:`ReleaseRefused` with the reasons otherwise."""
    problems = [f"lint: {finding}" for finding in lint_findings(layout)]
    drift = [d for d in find_drift(layout) if d.kind is not DriftKind.UNCOMMITTED]
    problems += [f"generated code: {item}" for item in drift]
    checks = check_releases(layout)
    problems += [f"breaking against {c.label}: {f}" for c in checks for f in c.findings]
    if problems:
        raise ReleaseRefused("cannot release while checks fail:\n  " + "\n  ".join(problems))
    previous = latest_release(layout)
    changes = diff_schemas(previous.load(), head) if previous else []
    bump = required_bump(changes) if previous else Bump.MAJOR
    _check_version(version, previous, bump)
    services = [
        f"`{file.package}.{service.name}`: {', '.join(method.name for method in service.method)}"
        for file in head.file
        if is_ours(file.package)
        for service in file.service
    ]
    return ReleasePlan(version, previous.version if previous else None, bump, changes, checks, services)


def changelog_entry(plan: ReleasePlan, date: str) -> str:
    """The CHANGELOG.md section of a release: what changed, grouped by effect, and any waivers."""
    lines = [f"## {plan.version} ({date})", ""]
    if plan.previous is None:
        lines.append(
            "First release of the schema and of the `chatplatform-schema-sdk` wheel, with these services:"
        )
        lines += ["", *(f"- {service}" for service in plan.services)]
    else:
        lines.append(f"A {plan.bump.value} release after {plan.previous}: {len(plan.changes)} change(s).")
    groups: dict[str, list[str]] = {}
    for change in plan.changes:
        if change.wire_breaking or change.json_breaking:
            group = "Breaking (wire or JSON)"
        elif change.source_breaking:
            group = "Breaking for generated code"
        elif change.client_breaking:
            group = "Breaking for clients (limits, HTTP routes)"
        elif change.kind.endswith("_added"):
            group = "Added"
        elif "deprecated" in change.kind:
            group = "Deprecated"
        else:
            group = "Changed"
        groups.setdefault(group, []).append(f"- `{change.element}`: {change.detail}")
    order = (
        "Breaking (wire or JSON)",
        "Breaking for generated code",
        "Breaking for clients (limits, HTTP routes)",
        "Added",
        "Deprecated",
        "Changed",
    )
    for group in order:
        if group in groups:
            lines += ["", f"### {group}", "", *groups[group]]
    waived = [(check, finding, waiver) for check in plan.checks for finding, waiver in check.waived]
    if waived:
        lines += ["", "### Waived breaking changes", ""]
        lines += [
            f"- `{w.element}`: {f.rule} in {f.path}:{f.line} against {c.label}: {w.reason}"
            for c, f, w in waived
        ]
    return "\n".join(lines) + "\n"


CHANGELOG_HEADER = (
    "# Changelog\n\nEvery release of the chat schema and its SDK wheel (`chatplatform-schema-sdk`; "
    "`chat-sdk`\nbefore 2.0.0), newest first.\n"
)
UNRELEASED = "## Unreleased\n"


def _first_section(text: str) -> int:
    """Where the first ``## `` heading of ``text`` starts (on any line, the first too); -1 for none."""
    return f"\n{text}".find("\n## ")


def _prepend_changelog(layout: RepoLayout, entry: str) -> None:
    """Put ``entry`` first; notes written by hand under ``## Unreleased`` become part of it."""
    text = layout.changelog.read_text() if layout.changelog.exists() else ""
    first = _first_section(text)
    body = text[first:] if first >= 0 else ""  # everything from the first section on
    if body.startswith(UNRELEASED):
        rest = body[len(UNRELEASED) :]
        following = _first_section(rest)
        notes = (rest[:following] if following >= 0 else rest).strip("\n")
        body = rest[following:] if following >= 0 else ""
        if notes:
            entry = f"{entry.rstrip(chr(10))}\n\n{notes}\n"
    layout.changelog.write_text(f"{CHANGELOG_HEADER}\n{entry}" + (f"\n{body}" if body else ""))


def cut_release(layout: RepoLayout, version: str, *, date: str | None = None) -> ReleasePlan:
    """Record the working schema as ``version``: image, fixtures, record, changelog entry, SDK version."""
    with tempfile.TemporaryDirectory(prefix="chat-release-") as scratch:
        image = Path(scratch) / IMAGE_NAME
        run_buf(["build", "--as-file-descriptor-set", "--output", str(image)], cwd=layout.root)
        head = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
        plan = plan_release(layout, version, head)
        day = date or datetime.date.today().isoformat()
        directory = layout.releases_dir / version
        directory.mkdir(parents=True)
        shutil.copyfile(image, directory / IMAGE_NAME)
    fixtures_digest = write_fixtures(head, layout.fixtures_dir / version)
    record = {
        "version": version,
        "date": day,
        "sdk_version": version,
        "previous": plan.previous,
        "bump": plan.bump.value,
        "image_sha256": image_digest((directory / IMAGE_NAME).read_bytes()),
        "fixtures_sha256": fixtures_digest,
        "waivers": [
            {"element": w.element, "rule": f.rule, "path": f.path, "against": c.label, "reason": w.reason}
            for c in plan.checks
            for f, w in c.waived
        ],
    }
    (directory / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n")
    _prepend_changelog(layout, changelog_entry(plan, day))
    generate(layout)
    return plan
