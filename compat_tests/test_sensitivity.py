"""A wire-incompatible schema, made in a scratch copy that skips the breaking check, is caught twice.

The change retypes ``chat.v1.Message.sequence`` from int64 to string under the same
number: what the release wrote no longer reads back. Both the golden-fixture check
and the forward-compatibility check must report it on their own.
"""

from __future__ import annotations

import shutil
from typing import cast

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from compat_tests.checks import fixture_decode_problems, forward_problems
from compat_tests.releases import ROOT, fixtures, release_versions
from registry.buf import run_buf
from registry.fixtures import cases, pool_of


@pytest.fixture(scope="module")
def broken_classes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, type[Message]]:
    """Message classes of a scratch schema where Message.sequence became a string."""
    scratch = tmp_path_factory.mktemp("broken")
    shutil.copy2(ROOT / "buf.yaml", scratch / "buf.yaml")
    shutil.copytree(ROOT / "proto", scratch / "proto")
    proto = scratch / "proto" / "chat" / "v1" / "message_service.proto"
    text = proto.read_text()
    assert "  int64 sequence = 8;" in text
    proto.write_text(text.replace("  int64 sequence = 8;", "  string sequence = 8;"))
    image_path = scratch / "broken.binpb"
    run_buf(["build", "--as-file-descriptor-set", "--output", str(image_path)], cwd=scratch)
    image = descriptor_pb2.FileDescriptorSet.FromString(image_path.read_bytes())
    pool = pool_of(image)
    return {
        f"{f.package}.{m.name}": GetMessageClass(pool.FindMessageTypeByName(f"{f.package}.{m.name}"))
        for f in image.file
        if f.package.startswith("chat.")
        for m in f.message_type
    }


def test_the_fixture_check_catches_it(broken_classes: dict[str, type[Message]]) -> None:
    release = release_versions()[0]
    problems = [
        p
        for f in fixtures(release)
        if f.message == "chat.v1.Message"
        for p in fixture_decode_problems(f, broken_classes.__getitem__)
    ]
    assert problems, "decoding the release's fixtures with the broken schema must fail"


def test_the_forward_check_catches_it(broken_classes: dict[str, type[Message]]) -> None:
    release = release_versions()[0]
    descriptor = cast(Descriptor, broken_classes["chat.v1.Message"].DESCRIPTOR)
    problems = [
        problem
        for _, sample in cases(descriptor)
        for problem in forward_problems(release, "chat.v1.Message", sample, broken_classes.__getitem__)
    ]
    assert problems, "bytes of the broken schema must not survive the release's classes"
