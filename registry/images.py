"""Compiled schemas (buf images) of the working tree, a git ref, a release or a directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

from registry.buf import run_buf
from registry.layout import RepoLayout
from registry.releases import list_releases


def build_image(layout: RepoLayout, source: str = ".") -> descriptor_pb2.FileDescriptorSet:
    """Compile ``source`` (any buf input: ``.``, ``.git#ref=main``, a directory) with comments."""
    with tempfile.TemporaryDirectory(prefix="chat-image-") as scratch:
        out = Path(scratch) / "image.binpb"
        run_buf(["build", source, "--as-file-descriptor-set", "--output", str(out)], cwd=layout.root)
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def resolve_base(layout: RepoLayout, base: str) -> tuple[str, descriptor_pb2.FileDescriptorSet]:
    """Load a comparison base: a release version, a directory holding buf.yaml, or a git ref.

    Returns a label a reviewer understands (``release 1.0.0``, ``directory x``,
    ``git main``) and the compiled schema.
    """
    for release in list_releases(layout):
        if base in (release.version, f"v{release.version}"):
            return f"release {release.version}", release.load()
    directory = Path(base)
    if (directory / "buf.yaml").is_file():
        return f"directory {base}", build_image(layout, str(directory.resolve()))
    if directory.suffix in (".binpb", ".pb") and directory.is_file():
        return f"image {base}", descriptor_pb2.FileDescriptorSet.FromString(directory.read_bytes())
    return f"git {base}", build_image(layout, f".git#ref={base}")
