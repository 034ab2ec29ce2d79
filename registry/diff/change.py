"""One difference between two schemas, and the four ways it can break someone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

Side = Literal["head", "base"]


class Verdict(NamedTuple):
    """Whom a change breaks: each flag is one audience (see :class:`Change`)."""

    wire: bool = False
    json: bool = False
    source: bool = False
    clients: bool = False

    def names(self) -> tuple[str, ...]:
        """The names of the flags that are set, in the order wire, json, source, clients."""
        return tuple(name for name, flag in zip(self._fields, self, strict=True) if flag)

    def within(self, other: Verdict) -> bool:
        """True when every flag set here is also set in ``other``."""
        return all(other_flag or not flag for flag, other_flag in zip(self, other, strict=True))


SAFE = Verdict()
WIRE = Verdict(wire=True)
WIRE_JSON = Verdict(wire=True, json=True)
WIRE_SOURCE = Verdict(wire=True, source=True)
JSON_SOURCE = Verdict(json=True, source=True)
SOURCE = Verdict(source=True)
CLIENTS = Verdict(clients=True)
ALL = Verdict(wire=True, json=True, source=True)


@dataclass(frozen=True)
class Change:
    """One difference between the base and the head schema.

    * ``wire_breaking``: data written by one side's code is misread by the other's
      binary parser, or a number becomes free for reuse.
    * ``json_breaking``: the same for the proto3 JSON mapping.
    * ``source_breaking``: code generated from the base no longer compiles or behaves
      the same against the head (names, types, imports, constants), as buf's FILE
      rules judge it.
    * ``client_breaking``: requests that were accepted are now refused (a tightened
      ``buf.validate`` limit) or sent elsewhere (a changed HTTP route).
    """

    element: str  # full proto name (``chat.v1.Message.content``), or the file path
    kind: str  # snake_case, one of the kinds of :data:`registry.diff.rules.RULES`
    file: str  # the proto file holding the element, as named in the descriptor
    line: int  # 1-based line of the element in ``file`` on ``side``
    side: Side  # "base" for removed elements, else "head"
    wire_breaking: bool
    json_breaking: bool
    source_breaking: bool
    detail: str  # one sentence for a reviewer
    client_breaking: bool = False
    old: str = ""  # the value before (a package, a bound), when the change has one
    new: str = ""  # the value after

    @property
    def verdict(self) -> Verdict:
        """The four flags together."""
        return Verdict(self.wire_breaking, self.json_breaking, self.source_breaking, self.client_breaking)

    @property
    def safe(self) -> bool:
        """True when the change breaks neither the wire format, JSON, generated code nor clients."""
        return not any(self.verdict)

    @property
    def breaks(self) -> tuple[str, ...]:
        """The names of what the change breaks: a subset of ``("wire", "json", "source", "clients")``."""
        return self.verdict.names()

    def __str__(self) -> str:
        verdict = f"breaks {', '.join(self.breaks)}" if self.breaks else "safe"
        return f"{self.file}:{self.line}: {self.kind}: {self.detail} [{verdict}]"
