"""The record of released schema versions: ``releases/<X.Y.Z>/`` holds each one as shipped."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from registry.layout import RepoLayout
from registry.semver import parse_version

IMAGE_NAME = "schema.binpb"
RECORD_NAME = "release.json"


@dataclass(frozen=True)
class Release:
    """One released version of the schema."""

    version: str
    directory: Path

    @property
    def image(self) -> Path:
        """The schema as shipped: ``buf build --as-file-descriptor-set`` output."""
        return self.directory / IMAGE_NAME

    @property
    def record(self) -> dict[str, object]:
        """What was recorded when the release was cut (date, SDK version, digest)."""
        data: dict[str, object] = json.loads((self.directory / RECORD_NAME).read_text())
        return data

    def verify(self) -> None:
        """Raise ValueError when the image is not the one recorded at release time."""
        recorded = self.record.get("image_sha256")
        if recorded != image_digest(self.image.read_bytes()):
            raise ValueError(
                f"release {self.version}: {self.image.name} no longer matches the digest recorded in "
                f"{RECORD_NAME}; a released schema is never edited, restore it from git"
            )

    def load(self) -> descriptor_pb2.FileDescriptorSet:
        """The released schema, parsed."""
        return descriptor_pb2.FileDescriptorSet.FromString(self.image.read_bytes())


def list_releases(layout: RepoLayout) -> list[Release]:
    """Every recorded release, oldest first; folders that are not versions are an error."""
    if not layout.releases_dir.is_dir():
        return []
    releases = []
    for directory in layout.releases_dir.iterdir():
        if not directory.is_dir():
            continue
        parse_version(directory.name)
        if not (directory / IMAGE_NAME).is_file():
            raise FileNotFoundError(f"release {directory.name} has no {IMAGE_NAME} in {directory}")
        releases.append(Release(directory.name, directory))
    return sorted(releases, key=lambda release: parse_version(release.version))


def latest_release(layout: RepoLayout) -> Release | None:
    """The newest release, or None before the first one."""
    releases = list_releases(layout)
    return releases[-1] if releases else None


def image_digest(image: bytes) -> str:
    """The sha256 of an image, recorded so a tampered release file is noticed."""
    return hashlib.sha256(image).hexdigest()
