"""Comparing two compiled schemas: the walkers, run in order over one recorder."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2 as dpb

from registry.diff.change import Change
from registry.diff.enums import walk_enums
from registry.diff.extensions import walk_extensions
from registry.diff.files import walk_files
from registry.diff.messages import walk_messages
from registry.diff.recorder import Recorder
from registry.diff.schema import Schema, package_renames
from registry.diff.services import walk_services


def load_image(path: Path) -> dpb.FileDescriptorSet:
    """Read a ``buf build`` image (a serialized ``FileDescriptorSet``) from ``path``."""
    return dpb.FileDescriptorSet.FromString(path.read_bytes())


def diff_schemas(base: dpb.FileDescriptorSet, head: dpb.FileDescriptorSet) -> list[Change]:
    """Every change from ``base`` to ``head`` in our own files, sorted by file, line and element."""
    rec = Recorder(Schema(base, package_renames(base, head)), Schema(head, {}))
    for walk in (walk_files, walk_messages, walk_enums, walk_services, walk_extensions):
        walk(rec)
    return sorted(rec.changes, key=lambda c: (c.file, c.line, c.element, c.kind, c.side))
