"""The ``python -m registry`` command line: one sub-command per repository task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from registry.buf import BufError
from registry.codegen import DriftKind, find_drift, generate
from registry.layout import RepoLayout, find_root
from registry.lint import format_diff, lint_findings, unformatted_files


def _generate(layout: RepoLayout, args: argparse.Namespace) -> int:
    if not args.check:
        generate(layout)
        print(f"generated: {', '.join(str(p.relative_to(layout.root)) for p in layout.generated)}")
        return 0
    drift = find_drift(layout)
    if not drift:
        print("generated code matches `buf generate` and `buf build` output")
        return 0
    print("generated code differs from what buf writes:", file=sys.stderr)
    for item in drift:
        print(f"  {item}", file=sys.stderr)
    if all(item.kind is DriftKind.UNCOMMITTED for item in drift):
        print("the files match buf but are not committed yet: `git add` them", file=sys.stderr)
    else:
        print("run `nox -s generate` and commit the result", file=sys.stderr)
    return 1


def _lint(layout: RepoLayout, args: argparse.Namespace) -> int:
    findings = lint_findings(layout)
    for finding in findings:
        print(finding, file=sys.stderr)
    diff = format_diff(layout)
    if diff:
        print(diff, file=sys.stderr)
        for path in unformatted_files(diff):
            print(f"{path}: not formatted: run `buf format -w`", file=sys.stderr)
    if findings or diff:
        return 1
    print("schema lint clean: buf lint (STANDARD, COMMENTS) and buf format")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests and for ``--help`` output."""
    parser = argparse.ArgumentParser(prog="python -m registry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="regenerate the SDK targets and the schema image")
    gen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail, listing the files, when the tree differs from buf's output",
    )
    gen.set_defaults(handler=_generate)
    lint = commands.add_parser("lint", help="buf lint and buf format, findings as file:line:column: RULE")
    lint.set_defaults(handler=_lint)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen command, and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        layout = RepoLayout(find_root())
        code: int = args.handler(layout, args)
    except (BufError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return code
