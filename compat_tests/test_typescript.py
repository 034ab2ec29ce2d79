"""The TypeScript package reads every release's golden fixtures as the Python standard target does.

For each release, the cases go to a file with the standard target's reading of each
binary fixture as ProtoJSON; `sdk/typescript/test/fixtures.test.ts` (run by node's test
runner) decodes each binary and ProtoJSON fixture with the generated TypeScript classes
and checks the values and the re-encoded bytes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from compat_tests.current import standard_class
from compat_tests.node import failure_report, run_node_suite
from compat_tests.releases import fixtures, release_versions


def _cases(release: str) -> list[dict[str, Any]]:
    return [
        {
            "id": fixture.id,
            "message": fixture.message,
            "binary": base64.b64encode(fixture.binary).decode(),
            "json": fixture.json,
            "python": json_format.MessageToDict(standard_class(fixture.message).FromString(fixture.binary)),
        }
        for fixture in fixtures(release)
    ]


@pytest.mark.compat("TypeScript")
@pytest.mark.parametrize("release", release_versions())
def test_typescript_reads_the_fixtures_as_python_does_and_writes_the_same_bytes(
    release: str, tmp_path: Path
) -> None:
    cases = _cases(release)
    assert cases, f"release {release} has no fixtures"
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    result = run_node_suite("fixtures", {"CHAT_FIXTURE_CASES": str(path)})
    assert result.returncode == 0, failure_report(result)
    assert f"\N{INFORMATION SOURCE} pass {len(cases) + 1}\n" in result.stdout, failure_report(result)


def test_the_typescript_check_fails_when_python_reads_another_value(tmp_path: Path) -> None:
    release = release_versions()[-1]
    (case,) = [c for c in _cases(release) if c["id"] == f"{release}:chat.v1.Message:max"]
    python = dict(case["python"])
    python["content"] = "something else"
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([{**case, "python": python}]))
    result = run_node_suite("fixtures", {"CHAT_FIXTURE_CASES": str(path)})
    assert result.returncode != 0
    assert "binary decodes to the Python values" in result.stdout
