"""The review report of a schema change: what changed, what it breaks, and the version it needs.

Changes come from the compiled descriptors (:mod:`registry.diff`), never from text
diffs; lint and breaking results come from buf. The same facts render as Markdown
for a reviewer and as JSON for machines.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from registry.breaking import BreakingCheck
from registry.diff import Change, deliberate_differences
from registry.lint import Finding
from registry.remedies import changes_to_fix
from registry.semver import Bump, next_version

# The Python SDK's distribution on the package index (PyPI's `chat-sdk` is somebody else's).
SDK_DISTRIBUTION = "chatplatform-schema-sdk"
EFFECT_ORDER = ("wire-breaking", "JSON-breaking", "source-breaking", "client-breaking", "safe")
_EFFECT_OF_FLAG = {
    "wire": "wire-breaking",
    "json": "JSON-breaking",
    "source": "source-breaking",
    "clients": "client-breaking",
}
RULES_MEANING = {
    "WIRE_JSON": "wire and JSON compatibility: released clients and servers still read every message",
    "FILE": "source compatibility: code generated from the base still compiles and runs",
    "CLIENTS": "clients' requests: no tightened buf.validate limit, no removed or changed HTTP route",
    "WAIVERS": "every waiver excuses a finding, names a release that exists and has not expired",
}
_METHOD_API_KINDS = frozenset(
    {
        "method_added",
        "method_removed",
        "method_input_changed",
        "method_output_changed",
        "method_streaming_changed",
    }
)
# buf rules stricter than the review's verdict, and why: the report says so beside each finding.
LENIENT = {buf: reason for _, buf, reason in deliberate_differences()}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def effects(change: Change) -> list[str]:
    """Every effect of a change, strongest first, as a reviewer reads them (``["safe"]`` for none)."""
    return [_EFFECT_OF_FLAG[name] for name in change.breaks] or ["safe"]


def effect(change: Change) -> str:
    """The strongest effect of a change."""
    return effects(change)[0]


def effect_counts(changes: list[Change]) -> str:
    """ "2 wire-breaking, 1 source-breaking, 3 safe": each change counted under every effect it has."""
    counts = {name: sum(1 for c in changes if name in effects(c)) for name in EFFECT_ORDER}
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n)


def _pascal(name: str) -> str:
    return "".join(word.capitalize() for word in _WORD.findall(name))


def _snake(name: str) -> str:
    return "_".join(word.lower() for word in _WORD.findall(name))


def python_module(package: str) -> str:
    """The dataclass SDK's module for a proto package.

    betterproto2 writes package ``a.b`` into ``chat_sdk._generated.a.b``; the SDK
    re-exports its own ``chat.<version>`` packages as ``chat_sdk.<version>``.
    """
    if package.startswith("chat.") and package.count(".") == 1:
        return "chat_sdk." + package.split(".", 1)[1]
    return f"chat_sdk._generated.{package}" if package else "chat_sdk._generated"


def _split(element: str, package: str) -> list[str]:
    return element.removeprefix(package + ".").split(".")


def sdk_api_change(change: Change, package: str) -> str | None:
    """How a change shows in the dataclass SDK's public API, or None when it does not."""
    kind, parts = change.kind, _split(change.element, package)
    module = python_module(package)
    if kind == "package_changed":
        old, new = python_module(change.old), python_module(change.new)
        return f"moved every class of `{change.element}` from module `{old}` to `{new}`"
    if kind.startswith(("limit_", "http_route_", "reserved_", "extension_")) or "option" in kind:
        return None
    added = kind.endswith("_added")
    removed = "_removed" in kind
    verb = "added" if added else "removed" if removed else "changed"
    if kind.startswith("message_"):
        return f"{verb} class `{module}.{''.join(_pascal(p) for p in parts)}`" if added or removed else None
    if kind.startswith("field_") and not kind.endswith(("deprecated", "json_name_changed", "number_changed")):
        owner, name = "".join(_pascal(p) for p in parts[:-1]), parts[-1]
        return f"{verb} attribute `{module}.{owner}.{name}` ({change.detail})"
    if kind.startswith("enum_value_"):
        owner, name = "".join(_pascal(p) for p in parts[:-1]), parts[-1]
        prefix = _snake(parts[-2]).upper() + "_" if len(parts) >= 2 else ""
        return f"{verb} member `{module}.{owner}.{name.removeprefix(prefix)}`"
    if kind.startswith("enum_") and (added or removed):
        return f"{verb} enum `{module}.{''.join(_pascal(p) for p in parts)}`"
    if kind.startswith("service_") and (added or removed):
        service = _pascal(parts[0])
        return f"{verb} classes `{module}.{service}Stub` and `{module}.{service}Base`"
    if kind in _METHOD_API_KINDS:
        service, method = _pascal(parts[0]), _snake(parts[-1])
        return (
            f"{verb} method `{module}.{service}Stub.{method}` and `{service}Base.{method}` ({change.detail})"
        )
    return None


@dataclass
class Review:
    """Everything a reviewer needs to approve a schema change."""

    base: str
    head: str
    previous_release: str | None
    bump: Bump  # what the changes against the base require
    release_bump: Bump  # what everything since the previous release requires
    sdk_version: str
    module_dir: str
    changes: list[Change] = field(default_factory=list)
    lint: list[Finding] = field(default_factory=list)
    breaking: list[BreakingCheck] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)  # file -> proto package

    @property
    def next_release(self) -> str | None:
        """The release these changes lead to (the first release is 1.0.0); None when nothing changed."""
        if self.previous_release is None:
            return "1.0.0"
        if self.release_bump is Bump.NONE:
            return None
        return next_version(self.previous_release, self.release_bump)

    def _next_release_words(self) -> str:
        if self.next_release is None:
            return f"no release needed: nothing changed since {self.previous_release}"
        return f"next release {self.next_release}"

    @property
    def passed(self) -> bool:
        """True when lint is clean and no breaking check has an unexcused finding."""
        return not self.lint and all(check.passed for check in self.breaking)

    def path(self, change: Change) -> str:
        """The change's file as a path in the repository."""
        return f"{self.module_dir}/{change.file}"

    def api_changes(self) -> list[str]:
        """The dataclass SDK's public API changes, in change order."""
        found = (sdk_api_change(c, self.packages.get(c.file, "")) for c in self.changes)
        return [line for line in found if line is not None]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable form of the report."""
        return {
            "base": self.base,
            "head": self.head,
            "bump": self.bump.value,
            "previous_release": self.previous_release,
            "next_release": self.next_release,
            "sdk_version": self.sdk_version,
            "passed": self.passed,
            "changes": [
                {
                    "element": c.element,
                    "kind": c.kind,
                    "file": self.path(c),
                    "line": c.line,
                    "side": c.side,
                    "effect": effect(c),
                    "effects": effects(c),
                    "wire_breaking": c.wire_breaking,
                    "json_breaking": c.json_breaking,
                    "source_breaking": c.source_breaking,
                    "client_breaking": c.client_breaking,
                    "detail": c.detail,
                }
                for c in self.changes
            ],
            "lint": [asdict(f) for f in self.lint],
            "breaking": [
                {
                    "against": check.label,
                    "rules": check.rules,
                    "passed": check.passed,
                    "findings": [asdict(f) for f in check.findings],
                    "waived": [{**asdict(f), "reason": w.reason} for f, w in check.waived],
                    "permitted": [{**asdict(f), "reason": reason} for f, reason in check.permitted],
                }
                for check in self.breaking
            ],
            "to_fix": [
                {
                    "element": item.element,
                    "file": item.path,
                    "line": item.line,
                    "rules": list(item.rules),
                    "against": list(item.against),
                    "message": item.message,
                    "next_step": item.step,
                }
                for item in changes_to_fix(self.breaking)
            ],
            "sdk_api": self.api_changes(),
        }

    def summary(self) -> str:
        """A few lines for a terminal: verdict, bump, counts by effect."""
        shown = effect_counts(self.changes) or "no changes"
        failing = sum(len(check.findings) for check in self.breaking) + len(self.lint)
        verdict = "passes" if self.passed else f"FAILS ({failing} finding(s) to fix)"
        return (
            f"schema review {self.base} -> {self.head}: {verdict}\n"
            f"  changes: {shown}\n"
            f"  required bump: {self.bump.value}; {self._next_release_words()}; "
            f"SDK version {self.sdk_version}"
        )

    def to_markdown(self) -> str:
        """The report a reviewer reads."""
        out = [f"# Schema review: {self.base} → {self.head}", ""]
        failing = sum(len(check.findings) for check in self.breaking)
        if self.passed:
            out.append("**Verdict:** ✅ lint is clean and every breaking-change check passes.  ")
        else:
            out.append(
                f"**Verdict:** ❌ {failing} breaking-change finding(s) and {len(self.lint)} lint finding(s) "
                "must be fixed (or waived with a reason) before this can merge.  "
            )
        if self.next_release is None:
            release = f"No release needed: nothing changed since {self.previous_release}; "
        elif self.previous_release:
            since = f"{self.release_bump.value} since {self.previous_release}"
            release = f"Next release: **{self.next_release}** ({since}); "
        else:
            release = f"Next release: **{self.next_release}** (the first release); "
        out.append(
            f"**Required bump:** {self.bump.value}. {release}"
            f"the SDK built from this tree is `{SDK_DISTRIBUTION} {self.sdk_version}`."
        )
        out += ["", "## Changes", ""]
        if not self.changes:
            out.append("The compiled schema is identical to the base.")
        else:
            out.append(effect_counts(self.changes) + " (a change counts under each of its effects).")
            by_file: dict[str, list[Change]] = {}
            for change in self.changes:
                by_file.setdefault(self.path(change), []).append(change)
            for path, changes in by_file.items():
                out += [
                    "",
                    f"### `{path}`",
                    "",
                    "| element | change | effect | line |",
                    "| --- | --- | --- | --- |",
                ]
                for c in changes:
                    where = f"{c.line}" + (" (base)" if c.side == "base" else "")
                    out.append(f"| `{c.element}` | {c.detail} | {', '.join(effects(c))} | {where} |")
        out += ["", "## Breaking-change checks", ""]
        if not self.breaking:
            out.append("No release or base to compare with.")
        for check in self.breaking:
            status = "passed" if check.passed else f"**{len(check.findings)} breaking finding(s)**"
            out.append(
                f"- Against {check.label}, {check.rules} ({RULES_MEANING.get(check.rules, '')}): {status}."
            )
            out += [f"  - permitted, `{f.path}:{f.line}` {f.rule}: {reason}" for f, reason in check.permitted]
            out += [f"  - waived, `{f.path}:{f.line}` {f.rule}: {w.reason}" for f, w in check.waived]
        to_fix = changes_to_fix(self.breaking)
        if to_fix:
            out += ["", f"### To fix: {len(to_fix)} change(s), each once with every check it fails", ""]
        for item in to_fix:
            notes = [LENIENT[rule] for rule in item.rules if rule in LENIENT]
            note = f" (stricter than the review, which judges it safe: {notes[0]})" if notes else ""
            out.append(
                f"- `{item.path}:{item.line}` `{item.element}`: {', '.join(item.rules)}, against "
                f"{', '.join(item.against)}: {item.message}{note}  \n  Next: {item.step}"
            )
        out += ["", "## Lint", ""]
        out += [f"- `{f.path}:{f.line}` {f.rule}: {f.message}" for f in self.lint] or ["No findings."]
        out += ["", "## Generated SDK API", ""]
        out += [f"- {line}" for line in self.api_changes()] or ["No change to the public API of the SDK."]
        return "\n".join(out) + "\n"
