"""The TypeScript package's own suite: its exports, its version and 64-bit integers as bigint."""

from __future__ import annotations

from compat_tests.node import failure_report, run_node_suite

PACKAGE_TESTS = 3  # the test() calls of sdk/typescript/test/package.test.ts


def test_typescript_package_exports_every_generated_file_and_uses_bigint() -> None:
    result = run_node_suite("package", {})
    assert result.returncode == 0, failure_report(result)
    assert f"\N{INFORMATION SOURCE} pass {PACKAGE_TESTS}\n" in result.stdout, failure_report(result)
