"""``google.api.http`` routes of a method before and after: added, removed or changed."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from registry.diff.recorder import Recorder
from registry.diff.schema import At

EXTENSION = "google.api.http"
_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Route:
    """One HTTP binding of an RPC."""

    verb: str
    path: str
    body: str = ""
    response_body: str = ""

    def __str__(self) -> str:
        extra = "".join(
            f", {name} `{value}`"
            for name, value in (("body", self.body), ("response_body", self.response_body))
            if value
        )
        return f"`{self.verb} {self.path}`{extra}"


def routes(rule: object) -> list[Route]:
    """The routes of an ``HttpRule`` and its ``additional_bindings``."""
    if not isinstance(rule, Message):
        return []
    fields = {fd.name: value for fd, value in rule.ListFields()}
    found: list[Route] = []
    body, response = str(fields.get("body", "")), str(fields.get("response_body", ""))
    for verb in _VERBS:
        if verb in fields:
            found.append(Route(verb.upper(), str(fields[verb]), body, response))
    custom = fields.get("custom")
    if isinstance(custom, Message):
        parts = {fd.name: str(value) for fd, value in custom.ListFields()}
        found.append(Route(parts.get("kind", "").upper(), parts.get("path", ""), body, response))
    for binding in fields.get("additional_bindings", ()):
        found += routes(binding)
    return found


def compare_routes(
    rec: Recorder, label: str, at: At, before: dict[str, object], after: dict[str, object]
) -> None:
    """Report the routes of a method that were removed, changed or added."""
    old = [r for r in routes(before.get(f"({EXTENSION})")) if r not in routes(after.get(f"({EXTENSION})"))]
    new = [r for r in routes(after.get(f"({EXTENSION})")) if r not in routes(before.get(f"({EXTENSION})"))]
    # A route is "changed" when only its body differs, or when one route replaced another.
    pairs = [(o, n) for o in old for n in new if (o.verb, o.path) == (n.verb, n.path)]
    for o, n in pairs:
        old.remove(o)
        new.remove(n)
    while old and new:
        pairs.append((old.pop(0), new.pop(0)))
    for o, n in pairs:
        detail = f"HTTP route of {label} changed from {o} to {n}: breaking for external REST clients of {o}"
        rec.add("http_route_changed", at, "head", detail, old=str(o), new=str(n))
    for o in old:
        detail = f"HTTP route {o} of {label} removed: breaking for external REST clients, who get 404"
        rec.add("http_route_removed", at, "head", detail, old=str(o))
    for n in new:
        rec.add("http_route_added", at, "head", f"HTTP route {n} added to {label}", new=str(n))
