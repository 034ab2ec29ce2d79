"""The recorded releases, their schemas and their golden fixtures, as the compatibility suite reads them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ROOT / "releases"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def release_versions() -> list[str]:
    """Every recorded release, oldest first."""
    return sorted((path.name for path in RELEASES.iterdir() if (path / "schema.binpb").is_file()), key=_key)


@dataclass(frozen=True)
class Fixture:
    """One golden case: a message type, a case name, its canonical bytes and ProtoJSON."""

    release: str
    message: str
    case: str
    binary: bytes
    json: dict[str, Any]

    @property
    def id(self) -> str:
        """``1.0.0:chat.v1.Message:max``."""
        return f"{self.release}:{self.message}:{self.case}"


def fixtures(release: str) -> list[Fixture]:
    """Every fixture recorded for ``release``."""
    found = []
    for path in sorted((FIXTURES / release).glob("*.json")):
        document = json.loads(path.read_text())
        for case, encoded in sorted(document["cases"].items()):
            binary = base64.b64decode(encoded["binary"])
            found.append(Fixture(release, document["message"], case, binary, encoded["json"]))
    return found


@cache
def release_pool(release: str) -> DescriptorPool:
    """The release's own schema in a private pool: its classes, as that release's clients had them."""
    image = descriptor_pb2.FileDescriptorSet.FromString((RELEASES / release / "schema.binpb").read_bytes())
    pool = DescriptorPool()
    for file in image.file:
        pool.Add(file)
    return pool


def release_class(release: str, message: str) -> type[Message]:
    """The message class of ``message`` as ``release`` defined it."""
    descriptor: Descriptor = release_pool(release).FindMessageTypeByName(message)
    return GetMessageClass(descriptor)


def release_record(release: str) -> dict[str, Any]:
    """What was recorded when the release was cut."""
    record: dict[str, Any] = json.loads((RELEASES / release / "release.json").read_text())
    return record
