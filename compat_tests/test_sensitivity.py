"""Every check of the compatibility suite can fire: each is shown a planted difference it must report.

First, a wire-incompatible schema made in a scratch copy that skips the breaking check:
``chat.v1.Message.sequence`` retyped from int64 to string under the same number, which
the golden-fixture check and the forward check must each report on their own. Then
each comparison inside the checks, one at a time, against a difference only it sees.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from typing import cast

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import chat_sdk.schema
from compat_tests.checks import ClassFor, fixture_decode_problems, fixture_reencode_problems, forward_problems
from compat_tests.current import standard_class
from compat_tests.releases import ROOT, Fixture, fixtures, release_versions
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


# Each comparison of the checks, proven able to fire on its own planted difference. The
# classes are built from today's image with one descriptor edited, no buf run needed.

MESSAGE = "chat.v1.Message"


def _classes_with(edit: Callable[[descriptor_pb2.DescriptorProto], None], name: str = "Message") -> ClassFor:
    """Today's message classes, with ``edit`` applied to the descriptor of chat.v1.``name``."""
    image = descriptor_pb2.FileDescriptorSet()
    image.CopyFrom(chat_sdk.schema.file_descriptor_set())
    (message,) = [m for f in image.file if f.package == "chat.v1" for m in f.message_type if m.name == name]
    edit(message)
    pool = pool_of(image)
    return lambda name: GetMessageClass(pool.FindMessageTypeByName(name))


def _field(message: descriptor_pb2.DescriptorProto, name: str) -> descriptor_pb2.FieldDescriptorProto:
    return next(field for field in message.field if field.name == name)


def _max_message_fixture() -> Fixture:
    release = release_versions()[0]
    return next(f for f in fixtures(release) if f.message == MESSAGE and f.case == "max")


def test_the_decode_check_reports_bytes_it_cannot_decode() -> None:
    broken = dataclasses.replace(_max_message_fixture(), binary=b"\x0a\xff")  # a length past the end
    for problems in (
        fixture_decode_problems(broken, standard_class),
        fixture_reencode_problems(broken, standard_class),
    ):
        assert len(problems) == 1 and problems[0].startswith(f"{broken.id}: cannot decode: "), problems


def test_the_decode_check_compares_binary_with_json() -> None:
    fixture = _max_message_fixture()
    assert fixture_decode_problems(fixture, standard_class) == []
    edited = dataclasses.replace(fixture, json={**fixture.json, "content": "something else"})
    assert fixture_decode_problems(edited, standard_class) == [
        f"{edited.id}: binary and JSON decode to different values"
    ]


def test_the_decode_check_compares_with_the_release_reading() -> None:
    # int64 -> sint64 keeps the wire type: the bytes still parse, to other numbers.
    zigzag = _classes_with(lambda m: _field(m, "sequence").__setattr__("type", FieldDescriptor.TYPE_SINT64))
    fixture = _max_message_fixture()
    assert f"{fixture.id}: values differ from the release's own reading" in fixture_decode_problems(
        fixture, zigzag
    )


def test_the_re_encode_check_compares_bytes() -> None:
    fixture = _max_message_fixture()
    assert fixture_reencode_problems(fixture, standard_class) == []
    # The same message twice over parses to the same values, but is not what the encoder writes.
    doubled = dataclasses.replace(fixture, binary=fixture.binary + _field_bytes(fixture))
    assert fixture_reencode_problems(doubled, standard_class) == [f"{doubled.id}: re-encoded bytes differ"]


def _field_bytes(fixture: Fixture) -> bytes:
    """The fixture's ``id`` field alone, re-sent: parsing keeps the last value, which is the same."""
    message = standard_class(fixture.message).FromString(fixture.binary)
    only_id = standard_class(fixture.message)()
    only_id.MergeFrom(message)
    for field, _ in message.ListFields():
        if field.name != "id":
            only_id.ClearField(field.name)
    return only_id.SerializeToString()


def test_the_re_encode_check_compares_json() -> None:
    fixture = _max_message_fixture()
    edited = dataclasses.replace(fixture, json={**fixture.json, "content": "something else"})
    assert fixture_reencode_problems(edited, standard_class) == [f"{edited.id}: re-encoded JSON differs"]


def test_the_forward_check_compares_the_round_trip() -> None:
    release = release_versions()[0]
    descriptor = cast(Descriptor, standard_class(MESSAGE).DESCRIPTOR)
    sample = next(message for name, message in cases(descriptor) if name == "max")
    assert forward_problems(release, MESSAGE, sample, standard_class) == []
    # A reader that lost field 1 keeps it as unknown and writes it last: not the bytes it was given.
    lost_id = _classes_with(lambda m: m.field.remove(_field(m, "id")))
    assert forward_problems(release, MESSAGE, sample, lost_id) == [
        f"{release}:{MESSAGE}: changed on the way through {release}"
    ]


def test_the_forward_check_names_a_known_field_that_arrived_with_another_wire_type(
    broken_classes: dict[str, type[Message]],
) -> None:
    release = release_versions()[0]
    descriptor = cast(Descriptor, broken_classes[MESSAGE].DESCRIPTOR)
    sample = next(m for name, m in cases(descriptor) if name == "max")
    problems = forward_problems(release, MESSAGE, sample, broken_classes.__getitem__)
    assert f"{release}:{MESSAGE}: chat.v1.Message.sequence (8) arrived with another wire type" in problems


def test_the_forward_check_looks_inside_nested_messages() -> None:
    # File.size_bytes retyped to a string: inside a Message, after its scalar fields.
    retyped = _classes_with(
        lambda m: _field(m, "size_bytes").__setattr__("type", FieldDescriptor.TYPE_STRING), "File"
    )
    release = release_versions()[0]
    descriptor = cast(Descriptor, retyped(MESSAGE).DESCRIPTOR)
    sample = next(m for name, m in cases(descriptor) if name == "max")
    problems = forward_problems(release, MESSAGE, sample, retyped)
    assert f"{release}:{MESSAGE}: chat.v1.File.size_bytes (4) arrived with another wire type" in problems


MAPS = ("chat.v1.Document", "chat.v1.InvokePluginRequest", "chat.v1.PluginEvent")


@pytest.mark.parametrize("message", MAPS)
def test_map_fields_are_compared_in_canonical_order(message: str) -> None:
    # Map entries are written in hash order unless serialization is deterministic: the
    # checks must compare canonical bytes, or a hundred-entry map never matches itself.
    release = release_versions()[-1]
    large = next(f for f in fixtures(release) if f.message == message and f.case == "large")
    decoded = standard_class(message).FromString(large.binary)
    assert decoded.SerializeToString() != large.binary, "hash order differs from canonical order"
    assert fixture_reencode_problems(large, standard_class) == []
    descriptor = cast(Descriptor, standard_class(message).DESCRIPTOR)
    sample = next(m for name, m in cases(descriptor) if name == "large")
    assert forward_problems(release, message, sample, standard_class) == []
