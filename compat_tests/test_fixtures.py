"""Golden fixtures of every release decode, in both targets of the current SDK, to the same values."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from compat_tests.checks import fixture_decode_problems, fixture_reencode_problems
from compat_tests.current import (
    as_the_dataclass_carries,
    dataclass_class,
    dataclass_mangles_duration,
    has_negative_duration,
    standard_class,
    truncate_to_microseconds,
    without_durations,
)
from compat_tests.releases import FIXTURES, Fixture, fixtures, release_record, release_versions
from registry.fixtures import corpus_digest


@pytest.mark.parametrize("release", release_versions())
def test_every_release_has_its_untouched_fixtures(release: str) -> None:
    recorded = release_record(release)["fixtures_sha256"]
    assert corpus_digest(FIXTURES / release) == recorded, "fixtures are written once, never regenerated"
    assert fixtures(release), f"release {release} has no fixtures"


def _params(check: str) -> list[object]:
    return [
        pytest.param(f.release, f, id=f.id, marks=pytest.mark.compat(check))
        for release in release_versions()
        for f in fixtures(release)
    ]


@pytest.mark.parametrize(("release", "fixture"), _params("fixtures decode"))
def test_standard_target_decodes_binary_and_json_to_the_release_values(
    release: str, fixture: Fixture
) -> None:
    assert fixture_decode_problems(fixture, standard_class) == []


@pytest.mark.parametrize(("release", "fixture"), _params("fixtures re-encode"))
def test_standard_target_re_encodes_to_the_same_bytes_and_json(release: str, fixture: Fixture) -> None:
    assert fixture_reencode_problems(fixture, standard_class) == []


@pytest.mark.parametrize(("release", "fixture"), _params("targets agree"))
def test_dataclass_target_decodes_to_the_same_values(release: str, fixture: Fixture) -> None:
    standard = standard_class(fixture.message)
    expected = standard.FromString(fixture.binary)
    dataclass = dataclass_class(fixture.message)

    truncated = truncate_to_microseconds(expected)
    # Binary goes through upb: exact apart from sub-microsecond nanoseconds.
    via_binary = standard.FromString(bytes(dataclass.parse(fixture.binary)))
    assert via_binary == as_the_dataclass_carries(expected)
    if dataclass_mangles_duration(expected):
        # Known difference of betterproto2's ProtoJSON, recorded: see compat_tests/current.py
        # and sdk/python/README.md.
        if has_negative_duration(expected):
            with pytest.raises(ValueError, match="Invalid duration string"):
                dataclass.from_json(json.dumps(fixture.json))
            return
        expected, truncated = without_durations(expected), without_durations(truncated)
        via_json = without_durations(
            json_format.Parse(dataclass.from_json(json.dumps(fixture.json)).to_json(), standard())
        )
    else:
        via_json = json_format.Parse(dataclass.from_json(json.dumps(fixture.json)).to_json(), standard())
    assert via_json == truncated
    if truncated != expected:
        # Known difference: sub-microsecond nanoseconds are dropped by the dataclass target.
        assert via_binary != expected and via_json != expected
