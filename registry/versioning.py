"""The SDK's version, derived from the schema: the last release plus what changed since.

Between releases the SDK carries a PEP 440 development version of the release the
pending changes require (``1.1.0.dev0`` after ``1.0.0`` with an added field), which
sorts after the last release and before the next. Generation writes it, so the drift
check catches a schema change committed without its version.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2

from registry.diff import diff_schemas
from registry.layout import RepoLayout
from registry.releases import latest_release
from registry.semver import Bump, dev_version, required_bump

VERSION_TEMPLATE = '''"""The SDK's version, written by `nox -s generate` from the releases: do not edit."""

__version__ = "{version}"
'''


def derived_version(layout: RepoLayout, head: descriptor_pb2.FileDescriptorSet) -> str:
    """The version an SDK built from ``head`` carries."""
    last = latest_release(layout)
    if last is None:
        return dev_version(None, Bump.MAJOR)
    return dev_version(last.version, required_bump(diff_schemas(last.load(), head)))


def write_version_file(path: Path, version: str) -> None:
    """Write the SDK's ``_version.py``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(VERSION_TEMPLATE.format(version=version))
