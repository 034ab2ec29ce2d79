"""Breaking-change checks against every release (wire and JSON) and the base (source).

buf compares against one input at a time; a registry must hold every change
compatible with *all* releases, as Confluent's BACKWARD_TRANSITIVE mode does, so
this module runs ``buf breaking`` once per recorded release image:

* ``WIRE_JSON`` against every release: bytes and ProtoJSON written by any released
  client or server are still read correctly.
* ``CLIENTS`` against the base: no ``buf.validate`` limit tightened and no
  ``google.api.http`` route removed or changed (buf reads neither; the review engine,
  :mod:`registry.diff`, finds them, and each is a finding here).
* ``FILE`` against the base (the pull request's target branch): generated code that
  compiled against the base still compiles. One deliberate exception: a field that was
  deprecated in the base and is now deleted with its number and name reserved is the
  documented way to retire a field; buf's FILE rules flag it anyway (buf issue 2629),
  so it is reported as *permitted* instead of failing.

Findings excused by a waiver (see :mod:`registry.waivers`) are reported as waived; a
waiver names one element (:mod:`registry.elements` reads it from each finding), and
:func:`check_waivers` fails on waivers that excuse nothing, name no release or expired.
"""

from __future__ import annotations

import datetime
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2

from registry.buf import BufError, run_buf
from registry.diff import RULES, Change
from registry.elements import finding_element
from registry.layout import RepoLayout
from registry.lint import Finding, parse_findings
from registry.releases import list_releases
from registry.waivers import Waiver, load_waivers

WIRE_JSON = "WIRE_JSON"
FILE = "FILE"
CLIENTS = "CLIENTS"
WAIVERS = "WAIVERS"
ElementOf = Callable[[Finding], str]
_DELETED_FIELD = re.compile(
    r'field "(?P<number>\d+)" with name "(?P<name>\w+)" on message "(?P<message>[\w.]+)"'
)


@dataclass(frozen=True)
class BreakingCheck:
    """The outcome of one ``buf breaking`` run against one input."""

    against: str  # a release version, or "base"
    label: str  # what a reviewer reads: "release 1.0.0", "base main"
    rules: str  # WIRE_JSON or FILE
    findings: list[Finding] = field(default_factory=list)
    waived: list[tuple[Finding, Waiver]] = field(default_factory=list)
    permitted: list[tuple[Finding, str]] = field(default_factory=list)
    elements: dict[Finding, str] = field(default_factory=dict)  # the element each finding is about

    @property
    def passed(self) -> bool:
        """True when nothing unexcused breaks."""
        return not self.findings


def _buf_breaking(layout: RepoLayout, against_image: Path, rules: str) -> list[Finding]:
    module = layout.proto_dir.relative_to(layout.root).as_posix()
    config = json.dumps({"version": "v2", "modules": [{"path": module}], "breaking": {"use": [rules]}})
    result = run_buf(
        ["breaking", "--against", str(against_image), "--config", config, "--error-format", "json"],
        cwd=layout.root,
        check=False,
    )
    if result.returncode not in (0, 100):
        raise BufError(f"buf breaking failed with exit code {result.returncode}:\n{result.stderr.strip()}")
    return parse_findings(result.stdout)


def _messages(
    messages: list[descriptor_pb2.DescriptorProto], prefix: str
) -> dict[str, descriptor_pb2.DescriptorProto]:
    found = {}
    for message in messages:
        name = f"{prefix}{message.name}"
        found[name] = message
        found.update(_messages(list(message.nested_type), f"{name}."))
    return found


def _message_in(
    image: descriptor_pb2.FileDescriptorSet, path: str, name: str
) -> descriptor_pb2.DescriptorProto | None:
    for file in image.file:
        if path.endswith(file.name):
            return _messages(list(file.message_type), "").get(name)
    return None


def _retired_properly(
    finding: Finding, base: descriptor_pb2.FileDescriptorSet, head: descriptor_pb2.FileDescriptorSet
) -> str | None:
    """Why a FIELD_NO_DELETE finding is a proper retirement, or None when it is not one."""
    match = _DELETED_FIELD.search(finding.message)
    if finding.rule != "FIELD_NO_DELETE" or match is None:
        return None
    number, name, message_name = int(match["number"]), match["name"], match["message"]
    old, new = _message_in(base, finding.path, message_name), _message_in(head, finding.path, message_name)
    if old is None or new is None:
        return None
    old_field = next((f for f in old.field if f.number == number), None)
    reserved_number = any(r.start <= number < r.end for r in new.reserved_range)
    if (
        old_field is None
        or not old_field.options.deprecated
        or not reserved_number
        or name not in new.reserved_name
    ):
        return None
    return (
        f"field {message_name}.{name} ({number}) was deprecated "
        "and is now deleted with its number and name reserved"
    )


def _excuse(
    check: BreakingCheck,
    found: list[Finding],
    waivers: list[Waiver],
    element_of: ElementOf,
    base: descriptor_pb2.FileDescriptorSet | None = None,
    head: descriptor_pb2.FileDescriptorSet | None = None,
) -> BreakingCheck:
    today = datetime.date.today()
    for finding in found:
        element = check.elements[finding] = element_of(finding)
        reason = _retired_properly(finding, base, head) if base is not None and head is not None else None
        waiver = next(
            (w for w in waivers if not w.expired(today) and w.covers(element, finding.rule, check.against)),
            None,
        )
        if reason is not None:
            check.permitted.append((finding, reason))
        elif waiver is not None:
            check.waived.append((finding, waiver))
        else:
            check.findings.append(finding)
    return check


def _module(layout: RepoLayout) -> str:
    return layout.proto_dir.relative_to(layout.root).as_posix()


def _elements(layout: RepoLayout, against: descriptor_pb2.FileDescriptorSet) -> ElementOf:
    module = _module(layout)
    return lambda finding: finding_element(finding, module, against)


def check_releases(layout: RepoLayout) -> list[BreakingCheck]:
    """WIRE_JSON against every recorded release, oldest first."""
    waivers = load_waivers(layout)
    checks = []
    for release in list_releases(layout):
        release.verify()
        check = BreakingCheck(release.version, f"release {release.version}", WIRE_JSON)
        found = _buf_breaking(layout, release.image, WIRE_JSON)
        checks.append(_excuse(check, found, waivers, _elements(layout, release.load())))
    return checks


def check_base(
    layout: RepoLayout,
    label: str,
    base: descriptor_pb2.FileDescriptorSet,
    head: descriptor_pb2.FileDescriptorSet,
) -> BreakingCheck:
    """FILE (source compatibility) against the base schema."""
    with tempfile.TemporaryDirectory(prefix="chat-base-") as scratch:
        image = Path(scratch) / "base.binpb"
        image.write_bytes(base.SerializeToString())
        found = _buf_breaking(layout, image, FILE)
    check = BreakingCheck("base", label, FILE)
    return _excuse(check, found, load_waivers(layout), _elements(layout, base), base, head)


def check_clients(layout: RepoLayout, label: str, changes: list[Change]) -> BreakingCheck:
    """CLIENTS against the base: every change that refuses or misroutes requests that worked."""
    module = _module(layout)
    elements = {
        Finding(f"{module}/{c.file}", c.line, 1, RULES[c.kind].check, f"{c.element}: {c.detail}"): c.element
        for c in changes
        if c.client_breaking
    }
    check = BreakingCheck("base", label, CLIENTS)
    return _excuse(check, list(elements), load_waivers(layout), elements.__getitem__)


def check_waivers(
    layout: RepoLayout, checks: list[BreakingCheck], today: datetime.date | None = None
) -> BreakingCheck:
    """WAIVERS: every waiver excuses a finding, names a release that exists, and has not expired."""
    day = today or datetime.date.today()
    releases = {release.version for release in list_releases(layout)}
    used = {waiver for check in checks for _, waiver in check.waived}
    check = BreakingCheck("waivers", layout.waivers.name, WAIVERS)
    for waiver in load_waivers(layout):
        if waiver.expired(day):
            rule, message = (
                "WAIVER_EXPIRED",
                f"{waiver} expired on {waiver.expires}: fix the break or renew it",
            )
        elif waiver.against not in ("", "base", *releases):
            rule, message = (
                "WAIVER_UNKNOWN_RELEASE",
                f"{waiver} names release {waiver.against}, which does not exist",
            )
        elif waiver not in used:
            rule, message = "WAIVER_UNUSED", f"{waiver} excuses no finding: delete it"
        else:
            continue
        check.findings.append(Finding(layout.waivers.name, waiver.line, 1, rule, message))
    return check
