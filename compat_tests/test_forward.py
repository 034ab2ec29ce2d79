"""Forward compatibility: bytes the current schema writes survive every older release's classes.

An old client or server that reads a newer message must keep what it does not know
(new fields, new enum values) and write it back, so nothing is lost on the way
through it. Samples are built from the current schema by the canonical encoder.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

import chat_sdk.schema
from compat_tests.checks import forward_problems
from compat_tests.current import standard_class
from compat_tests.releases import release_pool, release_versions
from registry.fixtures import cases, chat_messages, pool_of

CURRENT_IMAGE = chat_sdk.schema.file_descriptor_set()
CURRENT_POOL = pool_of(CURRENT_IMAGE)


def _samples() -> list[tuple[str, str, Message]]:
    return [
        (descriptor.full_name, name, message)
        for descriptor in chat_messages(CURRENT_IMAGE, CURRENT_POOL)
        for name, message in cases(descriptor)
    ]


SAMPLES = _samples()


def _known_to(release: str, message: str) -> bool:
    try:
        release_pool(release).FindMessageTypeByName(message)
    except KeyError:
        return False
    return True


@pytest.mark.compat("forward compatible")
@pytest.mark.parametrize("release", release_versions())
def test_old_classes_keep_what_they_do_not_know(release: str) -> None:
    checked = 0
    for message_name, case, sample in SAMPLES:
        if not _known_to(release, message_name):
            continue  # a message added after this release: no old reader exists
        assert forward_problems(release, message_name, sample, standard_class) == [], case
        checked += 1
    assert checked > 0


def test_the_samples_cover_every_current_message() -> None:
    names = {name for name, _, _ in SAMPLES}
    expected = {
        f"{file.package}.{message.name}"
        for file in CURRENT_IMAGE.file
        if file.package.startswith("chat.")
        for message in file.message_type
    }
    assert names == expected
